//! Logs, traces and metrics.
//!
//! [`init`] installs the `tracing` subscriber: log lines (JSON or human-readable, filtered by
//! `telemetry.log_level`) and, when spans are exported (`telemetry.otlp_endpoint` or the standard `OTEL_*`
//! variables say where), the OpenTelemetry bridge that turns courier's spans into trace spans ([`traces`]).
//! [`propagation`] moves the trace context across process boundaries as a W3C `traceparent`, exported or
//! not: from the order API's request into the Kafka record, from the record into the consumer's event, from
//! there into every HTTP call. [`metrics`] is the Prometheus side.

pub mod metrics;
pub mod propagation;
pub mod traces;

use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::settings::{LogFormat, TelemetrySettings};

pub use propagation::TRACEPARENT;

/// Installs the global `tracing` subscriber for `service` (the binary's name: the traces' `service.name`
/// unless `OTEL_SERVICE_NAME` says otherwise). `RUST_LOG`, when set, wins over `telemetry.log_level`. Calling
/// it twice is harmless (the second call keeps the first subscriber). Must run inside the tokio runtime (the
/// OTLP exporter's connection lives on it).
pub fn init(settings: &TelemetrySettings, service: &'static str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match settings.log_format {
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).boxed(),
        LogFormat::Pretty => logs.compact().boxed(),
    };
    // Trace spans do not depend on the log level: `log_level = "warn"` must not cut a trace in two. Log lines
    // become span events from `warn` up only: the routine ones ("stock reserved") stay in the logs, found by
    // their trace id, and cost the trace nothing.
    let traced = filter_fn(|meta| meta.level() <= if meta.is_span() { &Level::INFO } else { &Level::WARN });
    let _ = match traces::layer(settings, service) {
        Some(spans) => Registry::default()
            .with(logs.with_filter(filter))
            .with(spans.with_filter(traced.with_max_level_hint(LevelFilter::INFO)))
            .try_init(),
        // Without exported spans the log filter is the only one, and global: a span or line below the log level
        // is then disabled where it is written and costs nothing. (Behind a per-layer filter, every event's span
        // would still be made, and entered at each poll: 10–15 µs of CPU per event in the benchmark.)
        None => Registry::default().with(logs).with(filter).try_init(),
    };
}

/// Sends the spans still buffered to the collector (at shutdown).
pub fn shutdown() {
    traces::flush();
}
