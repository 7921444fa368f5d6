//! Logging and trace context.
//!
//! [`init`] installs the `tracing` subscriber (JSON lines or human-readable). [`TraceContext`] is the W3C
//! trace context (`traceparent`) the producer starts or continues for each order, carries on the Kafka record
//! and the consumers send on every downstream call, so one order can be followed end to end.

use std::fmt;

use rand::Rng;
use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, TelemetrySettings};

/// Installs the global `tracing` subscriber. `RUST_LOG`, when set, wins over `telemetry.log_level`.
/// Calling it twice is harmless (the second call keeps the first subscriber).
pub fn init(settings: &TelemetrySettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// Name of the record header and HTTP header that carry the trace context.
pub const TRACEPARENT: &str = "traceparent";

/// A W3C trace context: a 16-byte trace id shared by every hop of one order and the 8-byte id of the span
/// that made the current hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// Identifies the whole trace.
    pub trace_id: u128,
    /// Identifies the span that sent this context.
    pub span_id: u64,
    /// Whether the trace is sampled (W3C flag 01).
    pub sampled: bool,
}

impl TraceContext {
    /// Starts a new trace.
    pub fn new_root() -> Self {
        let mut rng = rand::rng();
        Self { trace_id: rng.random::<u128>().max(1), span_id: rng.random::<u64>().max(1), sampled: true }
    }

    /// The context for the next hop of the same trace (same trace id, new span id).
    pub fn child(&self) -> Self {
        Self { span_id: rand::rng().random::<u64>().max(1), ..*self }
    }

    /// Parses a `traceparent` value (`00-<32 hex>-<16 hex>-<2 hex>`); `None` when malformed or all-zero.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(Self { trace_id, span_id, sampled: flags & 1 == 1 })
    }

    /// The trace id as 32 lower-case hex digits, as logged.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

impl fmt::Display for TraceContext {
    /// Formats as a `traceparent` header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{:032x}-{:016x}-{:02x}", self.trace_id, self.span_id, u8::from(self.sampled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_malformed_values() {
        let ctx = TraceContext::new_root();
        assert_eq!(TraceContext::parse(&ctx.to_string()), Some(ctx));
        let child = ctx.child();
        assert_eq!(child.trace_id, ctx.trace_id);
        let known = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceContext::parse(known).expect("valid");
        assert_eq!(parsed.to_string(), known);
        for bad in [
            "",
            "00-xyz",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }
}
