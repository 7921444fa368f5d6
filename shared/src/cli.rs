//! What every binary does first: read its command line (`--help`, `--version`, `--config FILE`,
//! `--check`), load and validate settings, start logging, tracing and the metrics recorder.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

use crate::kafka::connectivity::check_cluster;
use crate::settings::Settings;
use crate::telemetry;

/// Command-line arguments every courier binary accepts.
#[derive(Debug, Parser)]
#[command(version)]
pub struct CommonArgs {
    /// A settings file (TOML) layered over the defaults; environment variables COURIER__* override both.
    #[arg(long, env = "COURIER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Check the configuration and exit: load and validate the settings, print the effective ones (secrets
    /// redacted), connect to the Kafka cluster with the configured security; exit 0 when all is well, else
    /// say what failed and exit 1 (2 for a bad setting).
    #[arg(long)]
    pub check: bool,
}

/// What every binary says of itself after its own description.
const SETTINGS_HELP: &str = "Settings: config/default.toml (built in, every key documented), then --config FILE, then \
environment variables COURIER__<SECTION>__<KEY> (e.g. COURIER__KAFKA__BOOTSTRAP_SERVERS=broker:9092). Secrets \
(passwords, tokens, API keys) are never printed.";

/// Parses the command line (`binary`'s `--help` opens with `about`), loads the settings and installs
/// logging. A bad setting prints an error naming it and yields exit code 2, which the binary returns. With
/// `--check`, checks the configuration and the cluster and yields the exit code to return (0 when all is well).
pub async fn start(binary: &'static str, about: &'static str) -> Result<Settings, ExitCode> {
    start_checked(binary, about, |_| Ok(())).await
}

/// [`start`], with `also` checking what the binary reads beyond the settings themselves (e.g. the files they
/// name): with `--check`, an error of `also` is printed, naming its setting, and yields exit code 2, before the
/// cluster is asked.
pub async fn start_checked(
    binary: &'static str,
    about: &'static str,
    also: impl FnOnce(&Settings) -> Result<(), String>,
) -> Result<Settings, ExitCode> {
    let command = CommonArgs::command().name(binary).about(about).after_help(SETTINGS_HELP);
    let args = match CommonArgs::from_arg_matches(&command.get_matches()) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    let settings = match Settings::load(args.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{binary}: {error}");
            return Err(ExitCode::from(2));
        }
    };
    if args.check {
        if let Err(error) = also(&settings) {
            eprintln!("{binary}: {error}");
            return Err(ExitCode::from(2));
        }
        return Err(check(binary, &settings).await);
    }
    telemetry::init(&settings.telemetry, binary);
    // A panic is written as a log line like any other (with the event's span when an event's attempt panics),
    // not as text on stderr: a contained panic (see `delivery::panics`) is an error to find by its event id.
    std::panic::set_hook(Box::new(tracing_panic::panic_hook));
    telemetry::metrics::install(binary);
    tracing::info!(binary, version = env!("CARGO_PKG_VERSION"), "starting");
    if settings.kafka.tls.insecure_skip_verify {
        tracing::warn!("{INSECURE}");
    }
    Ok(settings)
}

/// What every binary says at start-up (and `--check` prints) while `kafka.tls.insecure_skip_verify` is on.
const INSECURE: &str = "kafka.tls.insecure_skip_verify is on: the brokers' certificates and host names are not \
verified, so anyone on the network path can pose as the Kafka cluster";

/// `--check`: prints the effective settings (secrets redacted) and whether the cluster lets us in.
async fn check(binary: &str, settings: &Settings) -> ExitCode {
    println!("{binary} {}: the settings are valid. Effective settings (secrets redacted):", env!("CARGO_PKG_VERSION"));
    println!("{settings:#?}");
    if settings.kafka.tls.insecure_skip_verify {
        println!("warning: {INSECURE}");
    }
    let kafka = &settings.kafka;
    println!(
        "connecting to {} ({}{})…",
        kafka.bootstrap_servers,
        kafka.security_protocol,
        if kafka.sasl.mechanism.is_empty() { String::new() } else { format!(", SASL {}", kafka.sasl.mechanism) }
    );
    match check_cluster(kafka, Duration::from_secs(10)).await {
        Ok(()) => {
            println!("the Kafka cluster answers and lets us in: ok");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{binary}: {error}");
            ExitCode::FAILURE
        }
    }
}
