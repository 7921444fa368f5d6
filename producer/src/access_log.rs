//! The access log, request metrics and the server span of every request.
//!
//! Each request runs in a server span whose parent is the caller's `traceparent` (when it sent one), so an
//! order's trace starts at the client that placed it. When the request is answered, one line at info says
//! what happened (method, route, status, latency, request id; probes and scrapes at debug) and `courier_http_requests_total` and
//! `courier_http_request_duration_seconds` count it. The route is the matched pattern, never the raw path,
//! and a method HTTP does not define is `_OTHER`, so the metrics' labels stay few.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use courier::telemetry::{metrics, propagation};
use tracing::Instrument;

/// The header carrying the request id (set by the request-id layer when the client sent none).
pub const REQUEST_ID: &str = "x-request-id";

/// Routes whose answers are logged at debug: orchestrators' probes and Prometheus' scrapes.
const PROBES: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// Runs the request in its server span, then logs and counts its answer.
pub async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // A made-up method is `_OTHER` wherever it could become a label (metrics, span name, log fields); only the
    // span keeps the original, cut short, as `http.request.method_original` (OpenTelemetry's conventions).
    let request_method = request.method().clone();
    let method = metrics::method_label(&request_method);
    let original = (method == metrics::OTHER_METHOD).then(|| truncated(request_method.as_str()));
    let span_method = if method == metrics::OTHER_METHOD { "HTTP" } else { method };
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let request_id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let (span, trace) = propagation::start_trace(propagation::from_http(request.headers()), |trace_id| {
        tracing::info_span!(
            "http request",
            otel.kind = "server",
            otel.name = %format_args!("{span_method} {route}"),
            http.request.method = %method,
            http.request.method_original = original,
            http.route = %route,
            request_id = %request_id,
            trace_id,
            http.response.status_code = tracing::field::Empty,
        )
    });
    let response = trace.scope(next.run(request).instrument(span.clone())).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        // Probes and scrapes come every few seconds: at debug, so that the info log stays about orders.
        if PROBES.contains(&route.as_str()) {
            tracing::debug!(method = %method, route = %route, status, latency_ms, request_id = %request_id, "request answered");
        } else {
            tracing::info!(method = %method, route = %route, status, latency_ms, request_id = %request_id, "request answered");
        }
    });
    metrics::http_request(&route, &request_method, status, elapsed);
    response
}

/// Longest original method a span keeps.
const MAX_ORIGINAL_METHOD: usize = 32;

/// `method` cut to [`MAX_ORIGINAL_METHOD`] bytes (a method is ASCII: any cut is on a character boundary).
fn truncated(method: &str) -> &str {
    method.get(..MAX_ORIGINAL_METHOD).unwrap_or(method)
}
