//! What every binary does first: read its command line, load and validate settings, start logging.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::settings::Settings;
use crate::telemetry;

/// Command-line arguments every courier binary accepts.
#[derive(Debug, Parser)]
pub struct CommonArgs {
    /// A settings file (TOML) layered over the defaults; environment variables COURIER__* override both.
    #[arg(long, env = "COURIER_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Parses the command line, loads the settings and installs logging. A bad setting prints an error naming
/// it and yields exit code 2, which the binary returns.
pub fn start(binary: &str) -> Result<Settings, ExitCode> {
    let args = CommonArgs::parse();
    match Settings::load(args.config.as_deref()) {
        Ok(settings) => {
            telemetry::init(&settings.telemetry);
            tracing::info!(binary, version = env!("CARGO_PKG_VERSION"), "starting");
            Ok(settings)
        }
        Err(error) => {
            eprintln!("{binary}: {error}");
            Err(ExitCode::from(2))
        }
    }
}
