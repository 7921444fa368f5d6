//! `mock-apis`: serves the demo downstream APIs (inventory and its releases, payment, e-mail, SMS,
//! shipping, auth) on one port until SIGINT or SIGTERM. Every flag has an environment variable; the fault
//! flags apply to every API.

use clap::Parser;
use mock_apis::{DEFAULT_LISTEN, Faults, MockApis, MockApisConfig, parse_rate};
use tracing_subscriber::EnvFilter;

/// Demo downstream APIs with idempotency keys, fault injection and /stats.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on, ip:port.
    #[arg(long, env = "MOCK_APIS_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: String,
    /// Delay before every answer, in milliseconds.
    #[arg(long, env = "MOCK_APIS_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Extra random delay per answer, uniform in 0..=this many milliseconds.
    #[arg(long, env = "MOCK_APIS_LATENCY_JITTER_MS", default_value_t = 0)]
    latency_jitter_ms: u64,
    /// Share of requests answered 503 (0.0–1.0).
    #[arg(long, env = "MOCK_APIS_ERROR_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    error_rate: f64,
    /// Share of requests answered 429 with Retry-After (0.0–1.0).
    #[arg(long, env = "MOCK_APIS_THROTTLE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    throttle_rate: f64,
    /// Seconds sent in Retry-After with a 429.
    #[arg(long, env = "MOCK_APIS_RETRY_AFTER_SECS", default_value_t = Faults::DEFAULT_RETRY_AFTER_SECS)]
    retry_after_secs: u64,
    /// Share of requests that take effect but answer only after --hang-ms (0.0–1.0).
    #[arg(long, env = "MOCK_APIS_HANG_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    hang_rate: f64,
    /// How long a hanging request waits before answering, in milliseconds.
    #[arg(long, env = "MOCK_APIS_HANG_MS", default_value_t = Faults::DEFAULT_HANG_MS)]
    hang_ms: u64,
    /// Share of requests that take effect, then have their connection reset instead of answered (0.0–1.0).
    #[arg(long, env = "MOCK_APIS_RESET_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    reset_rate: f64,
    /// Fail every request whose body contains this text, with --fail-body-status.
    #[arg(long, env = "MOCK_APIS_FAIL_BODY_CONTAINS")]
    fail_body_contains: Option<String>,
    /// Status (400–599) of a request failed by --fail-body-contains.
    #[arg(long, env = "MOCK_APIS_FAIL_BODY_STATUS", default_value_t = Faults::DEFAULT_FAIL_STATUS, value_parser = parse_status)]
    fail_body_status: u16,
    /// Fail the first this many calls with each idempotency key, with --fail-first-status.
    #[arg(long, env = "MOCK_APIS_FAIL_FIRST_PER_KEY", default_value_t = 0)]
    fail_first_per_key: u32,
    /// Status (400–599) of a call failed by --fail-first-per-key.
    #[arg(long, env = "MOCK_APIS_FAIL_FIRST_STATUS", default_value_t = Faults::DEFAULT_FAIL_STATUS, value_parser = parse_status)]
    fail_first_status: u16,
}

/// Parses an injected failure status: 400–599.
fn parse_status(text: &str) -> Result<u16, String> {
    let status: u16 = text.trim().parse().map_err(|_| format!("{text:?} is not a status code"))?;
    if (400..=599).contains(&status) { Ok(status) } else { Err(format!("{status} is not between 400 and 599")) }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .compact()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let faults = Faults {
        latency_ms: args.latency_ms,
        latency_jitter_ms: args.latency_jitter_ms,
        error_rate: args.error_rate,
        throttle_rate: args.throttle_rate,
        retry_after_secs: args.retry_after_secs,
        hang_rate: args.hang_rate,
        hang_ms: args.hang_ms,
        reset_rate: args.reset_rate,
        fail_body_contains: args.fail_body_contains,
        fail_body_status: args.fail_body_status,
        fail_first_per_key: args.fail_first_per_key,
        fail_first_status: args.fail_first_status,
    };
    tracing::info!("faults of every API: {faults:?}");
    let server = MockApis::start(MockApisConfig::new(args.listen).with_faults(faults)).await?;
    wait_for_signal().await;
    tracing::info!("stopping");
    server.shutdown().await;
    Ok(())
}

/// Returns on the first SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM ({e}); only Ctrl-C stops this process");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
