//! courier's consumers. Each is a domain mapping from events to calls of its downstream API(s), run by the
//! delivery runtime of the shared library ([`courier::delivery`]): it implements
//! [`courier::delivery::Consumer`], and its binary in `src/bin/` is one line, `main::<Payment>(about)`.
//!
//! * [`inventory`]: reserves an order's items; releases them when the payment was declined.
//! * [`payment`]: charges the order; publishes `order.payment_failed` when the charge is declined.
//! * [`notification`]: confirms the order by e-mail and, with a phone number, by SMS (two channels).

pub mod inventory;
pub mod notification;
pub mod payment;

use std::process::ExitCode;

use courier::delivery::Consumer;

/// What every consumer binary does: read its command line (`--help` opens with `about`), load settings (exit
/// 2 naming a bad one), run consumer `C` until SIGTERM/SIGINT, exit 0 after a clean stop and 1 when it could
/// not run.
pub async fn main<C: Consumer>(about: &'static str) -> ExitCode {
    let settings = match courier::cli::start(C::NAME, about).await {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let code = match courier::delivery::run::<C>(&settings, courier::shutdown::on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "{} consumer failed", C::NAME);
            ExitCode::FAILURE
        }
    };
    courier::telemetry::shutdown();
    code
}
