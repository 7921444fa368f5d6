//! `chaos`: proof that nothing is lost and nothing is done twice when things break. It drives the real
//! binaries (`producer`, `inventory`, `payment`, `notification`) through a real broker (Tansu on sqlite) with
//! downstream APIs whose faults it controls, breaks something in each scenario, and counts per API the
//! effects the accepted orders call for, the raw calls, the duplicates the idempotency keys absorbed, and
//! what was lost or doubled. One command runs it: `scripts/chaos.sh [--quick]`; RELIABILITY.md has a run.
//!
//! The layout:
//! * [`scenarios`]: what is broken in each scenario (kill consumers, kill the broker, scale a group, API
//!   faults, poison records, the saga race) and the [`scenarios::Outcome`] it ends in;
//! * [`stage`]: a scenario's running system — a fresh broker, the mock APIs, the order API, consumer groups;
//! * [`cluster`]: the broker, killed and restarted on its storage; [`fleet`]: the binaries as processes;
//! * [`in_process`]: a group run inside the chaos process with a handler wrapping the real consumer (one that
//!   panics, one that batches), for what cannot be put into a binary;
//! * [`load`]: orders posted as a client would (503 retried with the same idempotency key);
//! * [`audit`]: counting effects and calls against the accepted orders; [`report`]: the Markdown report.

pub mod audit;
pub mod cluster;
pub mod fleet;
pub mod in_process;
pub mod load;
pub mod report;
pub mod scenarios;
pub mod stage;

pub use scenarios::{NAMES, Outcome};
pub use stage::Options;

/// Runs `names` (every scenario when empty) one after the other.
pub async fn run(options: &Options, names: &[String]) -> anyhow::Result<Vec<Outcome>> {
    let names: Vec<&str> = if names.is_empty() { NAMES.to_vec() } else { names.iter().map(String::as_str).collect() };
    if let Some(dir) = &options.log_dir {
        std::fs::create_dir_all(dir)?;
        in_process::log_to(dir)?;
    }
    let mut outcomes = Vec::new();
    for name in names {
        eprintln!("chaos: running {name}…");
        let started = std::time::Instant::now();
        let outcome = scenarios::run(name, options).await?;
        eprintln!(
            "chaos: {name} took {:.0} s: {} accepted, {} lost, {} doubled, {} overlapping calls, {}",
            started.elapsed().as_secs_f64(),
            outcome.accepted,
            outcome.lost(),
            outcome.doubled(),
            outcome.overlapping(),
            if outcome.passed() { "pass" } else { "FAIL" }
        );
        for (api, audit) in outcome.apis.iter().filter(|(_, a)| a.overlapping > 0) {
            eprintln!("chaos: {api}: {} overlapping calls, e.g. {:?}", audit.overlapping, audit.overlapping_examples);
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
