//! The OpenTelemetry side of courier's spans: the tracer provider and the `tracing` layer that feeds it.
//!
//! Spans are exported over OTLP/gRPC when `telemetry.otlp_endpoint` is set, or when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variable is (the other `OTEL_*`
//! variables — `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, the exporter's
//! headers and timeout — work as the OpenTelemetry SDK documents them). Without an endpoint there is no
//! OpenTelemetry layer at all: it would cost about a third of a consumer's CPU per event (BENCHMARKS.md) for
//! spans nobody receives. The trace context still reaches Kafka records, HTTP calls and log lines, passed
//! through ([`super::propagation`]).

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::settings::TelemetrySettings;

/// The process's tracer provider when it exports spans, kept to flush it at shutdown.
static PROVIDER: OnceLock<Option<SdkTracerProvider>> = OnceLock::new();

/// Whether this process exports its spans (then each span carries its own trace context).
pub fn exporting() -> bool {
    matches!(PROVIDER.get(), Some(Some(_)))
}

/// The span `make` builds when spans are exported, else none: for spans that exist only for the trace
/// (nothing is logged inside them), which would cost every event for nobody otherwise.
pub fn exported_span(make: impl FnOnce() -> tracing::Span) -> tracing::Span {
    if exporting() { make() } else { tracing::Span::none() }
}

/// Where spans go: the setting, else the standard variables, else nowhere.
fn endpoint(settings: &TelemetrySettings) -> Option<String> {
    let from_env = || {
        ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    };
    Some(settings.otlp_endpoint.trim().to_owned()).filter(|e| !e.is_empty()).or_else(from_env)
}

/// The tracer provider for `service`, exporting in batches to the OTLP endpoint; none without one.
fn provider(settings: &TelemetrySettings, service: &'static str) -> Option<SdkTracerProvider> {
    let endpoint = endpoint(settings)?;
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service);
    }
    match SpanExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build() {
        Ok(exporter) => {
            eprintln!("{service}: exporting traces over OTLP to {endpoint}");
            Some(SdkTracerProvider::builder().with_resource(resource.build()).with_batch_exporter(exporter).build())
        }
        Err(error) => {
            // Logging is not installed yet: say it on stderr, and run without exporting.
            eprintln!("{service}: cannot export traces to telemetry.otlp_endpoint = {endpoint}: {error}");
            None
        }
    }
}

/// The layer that turns `tracing` spans into OpenTelemetry spans of `service`; none when nothing is exported.
pub fn layer<S>(settings: &TelemetrySettings, service: &'static str) -> Option<impl Layer<S>>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let provider = PROVIDER.get_or_init(|| provider(settings, service)).as_ref()?;
    let tracer = provider.tracer("courier");
    // Per-event cost matters (the runtime enters an event's span at every poll of its future): no OpenTelemetry
    // context is activated on entry (parents come from the span tree, and injection reads the span's own
    // context), and no source location, thread, target or busy/idle timing is recorded.
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_context_activation(false)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false);
    Some(layer)
}

/// Exports the spans still buffered (at shutdown; tests call it before reading the collector).
pub fn flush() {
    if let Some(Some(provider)) = PROVIDER.get()
        && let Err(error) = provider.force_flush()
    {
        tracing::warn!(%error, "cannot send the last trace spans to the collector");
    }
}
