//! courier's consumers. Each is a domain mapping from events to calls of its downstream API(s), run by the
//! delivery runtime of the shared library ([`courier::delivery`]); its binary in `src/bin/` is one line.
//!
//! * [`inventory`]: reserves an order's items; releases them when the payment was declined.
//! * [`payment`]: charges the order; publishes `order.payment_failed` when the charge is declined.
//! * [`notification`]: confirms the order by e-mail and, with a phone number, by SMS (two channels).

pub mod inventory;
pub mod notification;
pub mod payment;

use std::process::ExitCode;

use courier::delivery::RunError;
use courier::settings::Settings;
use tokio_util::sync::CancellationToken;

/// What every consumer binary does: load settings (exit 2 naming a bad one), run until SIGTERM/SIGINT, exit 0
/// after a clean stop and 1 when the consumer could not run.
pub async fn main(
    binary: &'static str,
    about: &'static str,
    run: impl AsyncFnOnce(&Settings, CancellationToken) -> Result<(), RunError>,
) -> ExitCode {
    let settings = match courier::cli::start(binary, about).await {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let code = match run(&settings, courier::shutdown::on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "{binary} consumer failed");
            ExitCode::FAILURE
        }
    };
    courier::telemetry::shutdown();
    code
}
