//! The W3C trace context across process boundaries, with OpenTelemetry's propagator: written into Kafka
//! record headers and HTTP request headers from a span, read back from them as the parent of the next span.
//! When spans are not exported there are no OpenTelemetry spans: a unit of work runs in its [`Trace`] (the
//! context it came with), which its records and calls then carry on.

use std::sync::LazyLock;

use opentelemetry::context::{FutureExt, WithContext};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::traces;
use crate::kafka::headers::RawHeader;

/// Name of the record header and HTTP header that carry the trace context.
pub const TRACEPARENT: &str = "traceparent";

static PROPAGATOR: LazyLock<TraceContextPropagator> = LazyLock::new(TraceContextPropagator::new);

/// The trace context of `span`, as the headers to send: `traceparent` (and `tracestate` when there is one).
/// Without exported spans, the context of the current [`Trace`]; empty outside any.
pub fn headers_of(span: &tracing::Span) -> Vec<(&'static str, String)> {
    struct Collect(Vec<(&'static str, String)>);
    impl Injector for Collect {
        fn set(&mut self, key: &str, value: String) {
            // The propagator only writes its own two fields.
            let key = if key == TRACEPARENT { TRACEPARENT } else { "tracestate" };
            self.0.push((key, value));
        }
    }
    let mut collect = Collect(Vec::with_capacity(1));
    PROPAGATOR.inject_context(&context_of(span), &mut collect);
    collect.0
}

/// The remote parent carried by a record's headers (none: an empty context, and the span starts a trace).
pub fn from_record(headers: &[RawHeader]) -> opentelemetry::Context {
    struct Headers<'a>(&'a [RawHeader]);
    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key.as_bytes()))
                .and_then(|(_, v)| v.as_deref())
                .and_then(|v| std::str::from_utf8(v).ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.iter().filter_map(|(k, _)| std::str::from_utf8(k).ok()).collect()
        }
    }
    PROPAGATOR.extract(&Headers(headers))
}

/// The remote parent carried by HTTP request headers.
pub fn from_http(headers: &http::HeaderMap) -> opentelemetry::Context {
    struct Headers<'a>(&'a http::HeaderMap);
    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(http::HeaderName::as_str).collect()
        }
    }
    PROPAGATOR.extract(&Headers(headers))
}

/// The trace a unit of work (a consumed event, an order request) belongs to: the context its HTTP calls and
/// publishes continue. With exported spans it is the context of the work's own span; without, the one the
/// work came with, passed through unchanged (courier makes no span of its own then), or a new trace when it
/// came with none.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The context the work's calls and publishes continue.
    context: opentelemetry::Context,
    /// Its trace id (32 hex digits), written out once: every log line of the work carries it.
    id: String,
}

impl Trace {
    /// The trace of `context`.
    fn new(context: opentelemetry::Context) -> Self {
        let id = context.span().span_context().trace_id().to_string();
        Self { context, id }
    }

    /// The trace id (32 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs `work` in this trace: the headers made inside it ([`headers_of`]) carry its context.
    pub fn scope<F>(&self, work: F) -> WithContext<F> {
        work.with_context(self.context.clone())
    }
}

/// Starts the span of a unit of work that came with `parent` (from [`from_record`] or [`from_http`]) and
/// returns it with the trace the work belongs to. `make_span` makes the span, given its `trace_id` field's value
/// when it is known already: always when spans are not exported (the trace is then `parent`'s, or a new one
/// when `parent` has no valid span), so that the span gets every field at once. When spans are exported the
/// trace id is the span's own, known once it was made: it is recorded then (`trace_id` must be a field).
pub fn start_trace(
    parent: opentelemetry::Context,
    make_span: impl FnOnce(Option<&str>) -> tracing::Span,
) -> (tracing::Span, Trace) {
    let continued = parent.span().span_context().is_valid();
    if traces::exporting() {
        let span = make_span(None);
        if continued {
            let _ = span.set_parent(parent);
        }
        let trace = Trace::new(span.context());
        span.record("trace_id", trace.id());
        return (span, trace);
    }
    let trace = Trace::new(if continued { parent } else { new_trace() });
    (make_span(Some(trace.id())), trace)
}

/// A new trace, for work that came without one while spans are not exported: random ids, sampled (so that
/// the APIs called record their side).
fn new_trace() -> opentelemetry::Context {
    let ids = RandomIdGenerator::default();
    let root = SpanContext::new(ids.new_trace_id(), ids.new_span_id(), TraceFlags::SAMPLED, false, TraceState::NONE);
    opentelemetry::Context::new().with_remote_span_context(root)
}

/// The context `span` sends: its own when spans are exported, else the current [`Trace`]'s.
fn context_of(span: &tracing::Span) -> opentelemetry::Context {
    if traces::exporting() { span.context() } else { opentelemetry::Context::current() }
}

/// The trace id of `span` (32 hex digits), or empty when it is in no trace.
pub fn trace_id(span: &tracing::Span) -> String {
    let context = context_of(span);
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() { span_context.trace_id().to_string() } else { String::new() }
}

/// The trace id a `traceparent` value names (32 hex digits), when it is a valid one.
pub fn trace_id_of(traceparent: &str) -> Option<String> {
    let headers = [(TRACEPARENT.as_bytes().to_vec(), Some(traceparent.as_bytes().to_vec()))];
    let context = from_record(&headers);
    let span = context.span();
    let parent = span.span_context();
    parent.is_valid().then(|| parent.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_traceparent_is_read_and_a_malformed_one_ignored() {
        let known = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let headers = vec![(b"traceparent".to_vec(), Some(known.as_bytes().to_vec()))];
        let context = from_record(&headers);
        let span = context.span();
        let parent = span.span_context();
        assert!(parent.is_valid());
        assert_eq!(parent.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent.span_id().to_string(), "00f067aa0ba902b7");
        assert!(parent.is_remote() && parent.is_sampled());
        for bad in ["", "00-xyz", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"] {
            let headers = vec![(b"traceparent".to_vec(), Some(bad.as_bytes().to_vec()))];
            assert!(!from_record(&headers).span().span_context().is_valid(), "{bad}");
        }
        assert!(!from_record(&[]).span().span_context().is_valid());
    }
}
