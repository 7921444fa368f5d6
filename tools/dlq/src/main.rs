//! `courier-dlq`: list, inspect, replay and drain courier's dead-letter topics (see `courier-dlq --help`).

use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr (warnings by default, RUST_LOG to see more), so stdout stays the command's output.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let interactive = std::io::stdout().is_terminal();
    let code =
        courier_dlq::cli::run(std::env::args_os(), None, interactive, &mut std::io::stdout(), &mut std::io::stderr())
            .await;
    ExitCode::from(code)
}
