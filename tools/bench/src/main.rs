//! `bench`: measures courier's consumer runtime against two references on the same broker, API and events,
//! and the order API against a direct produce loop. One command runs it: `scripts/bench.sh [--quick]`.
//!
//! * **courier**: the `inventory` binary a user runs (key-ordered concurrency, watermark commits, retries,
//!   DLQ, a log line per event), with every default but what a row names.
//! * **baseline**: one sequential at-least-once rdkafka consumer per partition in one group (recv → call the
//!   API → store the offset): what Spring Kafka's `concurrency`, Kafka Connect tasks or more replicas give.
//! * **ceiling**: one rdkafka consumer handing every record to its own task, `max_in_flight` calls at once, no
//!   ordering and no offset tracking: incorrect, but it shows what this machine allows.
//!
//! Against an API with a capacity (the sink slows down past N calls at once and answers 429 past 2N), courier's
//! defaults (an adaptive limit per API) are compared with the API's limit fixed at N/2 … 512.
//!
//! The `forward` rows run the `forward` binary over backlogs of each record format (and, row by row, the route
//! settings a row names) and compare its CPU per event with the route that passes CloudEvents through.
//!
//! With `--vector <binary>`, the target scenario also runs a peer, Vector (its `kafka` source with end-to-end
//! acknowledgements into its `http` sink with adaptive request concurrency), with its defaults and tuned.
//!
//! Both references make the cheapest call there is: the record's value as the body, its coordinates as the
//! idempotency key, nothing parsed; so courier's CPU per event is compared with the least it could be.
//!
//! The layout:
//! * [`suite`] runs the scenario matrix, the open-loop latency runs and the producer side, and prints them;
//! * [`scenario`] owns the harness (a Tansu broker on sqlite, the sink, worker processes) and measures one run;
//! * [`workers`] are the two references, each run as a child process (`bench worker …`), as courier's binary
//!   is, so that its CPU time and memory, read from /proc by [`process`], are its own;
//! * [`forward_rows`] is the table of `forward` rows (a label, the route's settings, how its records are
//!   encoded) and runs them in interleaved rounds;
//! * [`peer`] writes Vector's config for a run;
//! * [`sink`] is the API the workers call, [`load`] puts the events on the broker, [`producer_side`] measures
//!   the order API, [`report`] formats tables and judges the targets.

mod forward_rows;
mod load;
mod peer;
mod process;
mod producer_side;
mod report;
mod scenario;
mod sink;
mod suite;
mod workers;

use clap::{Parser, Subcommand};

/// Command line.
#[derive(Debug, Parser)]
#[command(version, about = "courier's benchmark: courier vs. a per-partition baseline and an unordered ceiling")]
struct Args {
    /// What to run; the whole benchmark when absent.
    #[command(subcommand)]
    command: Option<Command>,
    /// The benchmark's options.
    #[command(flatten)]
    suite: suite::SuiteArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one worker until killed (started by the benchmark itself).
    Worker(workers::WorkerArgs),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.command {
        Some(Command::Worker(worker)) => runtime.block_on(workers::run(worker)),
        None => runtime.block_on(suite::run(args.suite)),
    }
}
