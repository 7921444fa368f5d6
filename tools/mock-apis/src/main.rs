//! `mock-apis`: serves the demo downstream APIs on one port until SIGINT or SIGTERM.

use clap::Parser;
use mock_apis::{Faults, MockApis, MockApisConfig};
use tracing_subscriber::EnvFilter;

/// Demo downstream APIs with idempotency keys, fault injection and /stats.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on, ip:port (the APIs' base URLs in config/default.toml use 127.0.0.1:8090).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// Answer 503 to every request whose body contains this text, at every API: an outage for one customer,
    /// e.g. a phone number (`MOCK_APIS_FAIL_BODY_CONTAINS=… scripts/run-local.sh`, docs/dead-letters.md).
    #[arg(long, env = "MOCK_APIS_FAIL_BODY_CONTAINS")]
    fail_body_contains: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { listen, fail_body_contains } = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().compact().with_env_filter(filter).init();
    let faults = Faults { fail_body_contains, ..Faults::default() };
    let server = MockApis::start(MockApisConfig { listen, faults }).await?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("stopping");
    server.shutdown().await;
    Ok(())
}
