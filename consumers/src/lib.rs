//! courier's consumers. Each is a domain mapping from events to calls of its downstream API(s), run by the
//! delivery runtime of the shared library ([`courier::delivery`]): it declares itself with a
//! [`courier::delivery::Consumer`] that builds its [`courier::delivery::Handler`], and its binary in `src/bin/`
//! is one line, `main(registry::PAYMENT, about)`.
//!
//! * [`inventory`]: reserves an order's items; releases them when the payment was declined.
//! * [`payment`]: charges the order; publishes `order.paid`, or `order.payment_failed` when it is declined.
//! * [`notification`]: confirms the order by e-mail and, with a phone number, by SMS (two channels).
//! * [`shipping`]: creates the shipping label of each paid order (`order.paid`).
//!
//! [`order_topics`] names the topics of the order flow they read and publish (settings of `[topics]`).
//! [`registry`] is the one list of them that the tests, scripts and deployment files follow. Beside them,
//! [`forward`] needs no code: it delivers the events its `[forward.routes]` settings name to their APIs.

pub mod forward;
pub mod inventory;
pub mod notification;
pub mod order_topics;
pub mod payment;
pub mod registry;
pub mod shipping;
#[cfg(test)]
mod testing;

use std::process::ExitCode;

use courier::delivery::RunError;
use courier::settings::Settings;
use tokio_util::sync::CancellationToken;

use crate::registry::Registration;

/// Every consumer allocates with jemalloc. At full rate a consumer makes about 150 heap allocations per event
/// (the HTTP call, decoding, the log line), and glibc's `malloc` and `free` took a fifth of its CPU; with
/// jemalloc for Rust's allocations (librdkafka keeps the C library's) the benchmark's consumer took 11–23 %
/// less CPU per event in three runs, at a peak RSS no higher (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// What every consumer binary does: read its command line (`--help` opens with `about`), load settings (exit
/// 2 naming a bad one), run the registered `consumer` until SIGTERM/SIGINT, exit 0 after a clean stop and 1
/// when it could not run.
pub async fn main(consumer: Registration, about: &'static str) -> ExitCode {
    main_with(consumer.name, about, async |settings, shutdown| (consumer.run)(settings.clone(), shutdown).await).await
}

/// [`main`] for a program that runs `run` rather than one registered consumer (`forward` runs one per route).
pub async fn main_with(
    name: &'static str,
    about: &'static str,
    run: impl AsyncFnOnce(&Settings, CancellationToken) -> Result<(), RunError>,
) -> ExitCode {
    let settings = match courier::cli::start(name, about).await {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let code = match run(&settings, courier::shutdown::on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "{name} consumer failed");
            ExitCode::FAILURE
        }
    };
    courier::telemetry::shutdown();
    code
}
