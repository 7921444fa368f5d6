//! The `chaos` command: runs the chaos suite and prints its report (see the crate doc).

use std::path::PathBuf;

use clap::Parser;

/// Command line.
#[derive(Debug, Parser)]
#[command(version, about = "courier's chaos suite: kill, restart, scale, fault and poison; count what arrives")]
struct Args {
    /// The short variant (CI): fewer orders, kills and poison records.
    #[arg(long)]
    quick: bool,
    /// Scenarios to run (default: all): kill-consumers, kill-broker, scale-group, api-faults, poison, saga-race,
    /// panicking-handler, batch-rebalance.
    #[arg(long, value_delimiter = ',')]
    scenario: Vec<String>,
    /// Directory of the binaries (default: this executable's).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Where the processes' logs go.
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = match args.bin_dir {
        Some(dir) => dir,
        None => std::env::current_exe()?.parent().map(PathBuf::from).unwrap_or_default(),
    };
    let options = chaos::Options { bin_dir, quick: args.quick, log_dir: args.log_dir };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let outcomes = runtime.block_on(chaos::run(&options, &args.scenario))?;
    println!("{}", chaos::report::markdown(&outcomes, args.quick));
    let failed: Vec<&str> = outcomes.iter().filter(|o| !o.passed()).map(|o| o.name).collect();
    anyhow::ensure!(failed.is_empty(), "scenarios failed: {failed:?}");
    Ok(())
}
