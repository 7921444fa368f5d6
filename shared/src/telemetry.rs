//! Logs, traces and metrics.
//!
//! [`init`] installs the `tracing` subscriber: log lines (JSON or human-readable, filtered by
//! `telemetry.log_level`, written to stderr by a thread of their own) and, when spans are exported
//! (`telemetry.otlp_endpoint` or the standard `OTEL_*` variables say where), the OpenTelemetry bridge that turns
//! courier's spans into trace spans ([`traces`]).
//! [`propagation`] moves the trace context across process boundaries as a W3C `traceparent`, exported or
//! not: from the order API's request into the Kafka record, from the record into the consumer's event, from
//! there into every HTTP call. [`metrics`] is the Prometheus side.

pub mod metrics;
pub mod propagation;
pub mod traces;

use std::io::BufWriter;
use std::sync::{Mutex, PoisonError};

use tracing::{Level, Subscriber};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::{EnvFilter, LevelFilter, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
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
    let logs = log_lines(settings.log_format, log_writer());
    // Trace spans do not depend on the log level: `log_level = "warn"` must not cut a trace in two. Log lines
    // become span events from `warn` up only: the routine ones (a consumer's "stock reserved", at `debug`)
    // stay in the logs, found by their trace id, and cost the trace nothing.
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

/// The layer that writes log lines to `writer`. A JSON line holds the line's fields and, under `span`, those of
/// the span it was written in: a consumer's lines carry the event's `event_id` and `trace_id` that way.
/// json-subscriber writes a span's fields as JSON once, when the span gets them; tracing-subscriber's own JSON
/// format parses them again for every line (a few µs per event in the benchmark).
fn log_lines<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Json => {
            json_subscriber::fmt::layer().with_writer(writer).flatten_event(true).with_current_span(true).boxed()
        }
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_writer(writer).compact().boxed(),
    }
}

/// Sends the spans still buffered to the collector and writes out the log lines not yet written (at exit).
pub fn shutdown() {
    traces::flush();
    drop(LOG_WRITER.lock().unwrap_or_else(PoisonError::into_inner).take());
}

/// The thread that writes log lines to stderr while it runs; dropping it writes out what is left.
static LOG_WRITER: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Log lines go to stderr from a thread of their own: a consumer writes one line per event, and a write to
/// stderr for each one (a system call, on the event's task) cost a few µs of CPU per event at full rate. The
/// thread writes the lines waiting for it in one go. A full queue of lines makes the logging task wait (it
/// is never lossy), as a slow stderr would; [`shutdown`] writes out the rest.
fn log_writer() -> NonBlocking {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("courier-logs")
        .finish(BufWriter::with_capacity(LOG_BUFFER_BYTES, std::io::stderr()));
    let mut slot = LOG_WRITER.lock().unwrap_or_else(PoisonError::into_inner);
    // A second `init` (tests) keeps the first subscriber, and with it the first writer.
    if slot.is_none() {
        *slot = Some(guard);
    }
    writer
}

/// How many lines may wait for the writing thread (a quarter of a second at full rate); the queue's memory is
/// taken at once, and tracing-appender's default (128,000 lines) took 4 MiB.
const LOG_QUEUE_LINES: usize = 4096;

/// How many bytes of log lines the writing thread gathers before a write to stderr (it also writes whenever
/// no more lines wait).
const LOG_BUFFER_BYTES: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek};
    use std::sync::Arc;

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn a_json_line_carries_its_fields_and_the_event_id_and_trace_id_of_its_span() {
        // `&File` writes, so a shared file is a writer every line can use.
        let file = Arc::new(tempfile::tempfile().expect("a temporary file"));
        let subscriber = Registry::default().with(log_lines(LogFormat::Json, Arc::clone(&file)));
        tracing::subscriber::with_default(subscriber, || {
            let (span, _) = propagation::start_trace(opentelemetry::Context::new(), |trace_id| {
                tracing::info_span!("event", event_id = "e-1", trace_id, offset = 7)
            });
            span.in_scope(|| tracing::info!(order_id = "o-1", "stock reserved"));
            tracing::warn!("outside any event");
        });
        let mut text = String::new();
        let mut file = &*file;
        file.rewind().and_then(|()| file.read_to_string(&mut text)).expect("the lines written");
        let lines: Vec<serde_json::Value> =
            text.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect();
        assert_eq!(lines.len(), 2, "{text}");
        let line = &lines[0];
        assert_eq!(line["message"], "stock reserved", "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["order_id"], "o-1", "{line}");
        assert_eq!(line["span"]["event_id"], "e-1", "{line}");
        assert_eq!(line["span"]["offset"], 7, "{line}");
        let trace_id = line["span"]["trace_id"].as_str().expect("a trace id");
        assert!(trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
        assert!(lines[1].get("span").is_none(), "{}", lines[1]);
    }
}
