//! `courier-dlq`: list, inspect, replay and drain courier's dead-letter topics (see `courier-dlq --help`).

use std::io::{IsTerminal, Write};

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    // Logs go to stderr (warnings by default, RUST_LOG to see more), so stdout stays the command's output.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let interactive = std::io::stdout().is_terminal();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let run = courier_dlq::cli::run(std::env::args_os(), None, interactive, &mut out, &mut err);
    // Interrupted, the run is dropped: a replay or drain leaves its lock's group at once (a rerun need not wait
    // for the session timeout) and its position stays where the last commit put it, as after a kill.
    let code = tokio::select! {
        code = run => code,
        signal = interrupted() => {
            eprintln!("courier-dlq: stopped by {signal}; the position is where the last commit put it");
            128 + signal_number(signal)
        }
    };
    // Not returning: the runtime would wait for blocking work the dropped run left behind.
    let _ = (out.flush(), err.flush());
    std::process::exit(i32::from(code));
}

/// Waits for SIGINT or SIGTERM and names it.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// The number of a signal [`interrupted`] names.
fn signal_number(signal: &str) -> u8 {
    if signal == "SIGINT" { 2 } else { 15 }
}
