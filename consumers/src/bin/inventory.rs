//! The `inventory` binary: reserves stock for every order. See [`courier_consumers::inventory`].

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match courier::cli::start("inventory") {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    match courier_consumers::inventory::run(&settings, courier::shutdown::on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "inventory consumer failed");
            ExitCode::FAILURE
        }
    }
}
