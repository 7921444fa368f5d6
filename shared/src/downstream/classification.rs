//! What the result of a call means for the event: 2xx is done; 408, 429 and 5xx are transient (429 waits
//! without spending attempts); any other status is permanent; a timeout or a broken connection is transient.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use super::client::{ApiResponse, CIRCUIT_OPEN, CallError, CallErrorKind};
use crate::delivery::{Failure, Outcome};

/// How much of an error response's body is kept for logs and dead letters.
pub const BODY_EXCERPT_BYTES: usize = 1024;

/// Classifies the result of a call: 2xx is done; 408, 429 and 5xx are transient (with the server's
/// Retry-After when it sent one); any other status is permanent; a timeout or a connection error is
/// transient; any other transport error (a request that could not be built) is permanent.
pub fn classify(result: &Result<ApiResponse, CallError>) -> Outcome {
    match result {
        Ok(response) => classify_response(response),
        Err(error) => classify_error(error),
    }
}

/// Classifies a response by its status.
pub fn classify_response(response: &ApiResponse) -> Outcome {
    let status = response.status;
    if status.is_success() {
        return Outcome::Done;
    }
    let failure = Failure::http(&response.endpoint, status.as_u16(), excerpt(&response.body))
        .with_retry_after(retry_after(&response.headers, SystemTime::now()));
    if status == StatusCode::TOO_MANY_REQUESTS {
        // The API is fine and asks us to slow down: waiting as asked (at least a second) spends none of the
        // event's attempts, so a storm of 429s never dead-letters anything, as an open breaker does not.
        let wait = failure.retry_after.unwrap_or(THROTTLE_WAIT).max(THROTTLE_WAIT);
        return Outcome::Retry(failure.with_retry_after(Some(wait)).uncharged());
    }
    retry_or_permanent(failure, is_transient_status(status), response.probe)
}

/// The least wait after a 429.
const THROTTLE_WAIT: Duration = Duration::from_secs(1);

/// A transient failure is retried; any other is permanent. A call made through the closed breaker spends
/// one of the event's attempts (even the one whose failure opens it); while the breaker is open because many
/// events failed, waiting spends nothing, and neither does the half-open probe, which tests the API on
/// behalf of every waiting event.
fn retry_or_permanent(failure: Failure, transient: bool, probe: bool) -> Outcome {
    match (transient, probe) {
        (true, true) => Outcome::Retry(failure.uncharged()),
        (true, false) => Outcome::Retry(failure),
        (false, _) => Outcome::Permanent(failure),
    }
}

/// Whether a status is worth retrying.
pub fn is_transient_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS
}

/// Classifies a call that got no response.
pub fn classify_error(error: &CallError) -> Outcome {
    let e = match &error.kind {
        CallErrorKind::CircuitOpen { retry_in } => {
            let failure = Failure::new(CIRCUIT_OPEN, "the API's circuit breaker is open: call not made")
                .with_endpoint(&error.endpoint)
                .with_retry_after(Some(*retry_in))
                .uncharged();
            return Outcome::Retry(failure);
        }
        CallErrorKind::Auth(auth) => {
            // The token endpoint failed: like an outage of the API, transient.
            let failure = Failure::new("auth", auth.to_string()).with_endpoint(&error.endpoint);
            return retry_or_permanent(failure, true, error.probe);
        }
        CallErrorKind::Encode(encode) => {
            let failure = Failure::new("encode", format!("cannot encode the request body: {encode}"));
            return Outcome::Permanent(failure.with_endpoint(&error.endpoint));
        }
        CallErrorKind::Transport(e) => e,
    };
    let (kind, transient) = if e.is_timeout() {
        ("timeout", true)
    } else if e.is_connect() {
        ("connect", true)
    } else if e.is_request() || e.is_body() || e.is_decode() {
        // The connection broke while sending or reading: the server may or may not have acted; the
        // idempotency key makes a retry safe.
        ("transport", true)
    } else {
        ("request", false)
    };
    let failure = Failure::new(kind, format!("{e}")).with_endpoint(&error.endpoint);
    retry_or_permanent(failure, transient, error.probe)
}

/// The first [`BODY_EXCERPT_BYTES`] of a body as text (cut at a character boundary).
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(BODY_EXCERPT_BYTES)]);
    text.trim_end_matches('\u{FFFD}').to_owned()
}

/// The delay a `Retry-After` header asks for: delta-seconds or an HTTP date (relative to `now`).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn response(status: u16, retry_after_value: Option<&str>) -> ApiResponse {
        let mut headers = HeaderMap::new();
        if let Some(v) = retry_after_value {
            headers.insert(http::header::RETRY_AFTER, v.parse().expect("header value"));
        }
        ApiResponse {
            endpoint: "POST http://api/x".into(),
            status: StatusCode::from_u16(status).expect("status"),
            headers,
            body: Bytes::from_static(b"{\"error\":\"nope\"}"),
            probe: false,
        }
    }

    #[test]
    fn statuses_are_classified() {
        // (status, expected class)
        let table = [
            (200, "done"),
            (201, "done"),
            (202, "done"),
            (204, "done"),
            (400, "permanent"),
            (401, "permanent"),
            (403, "permanent"),
            (404, "permanent"),
            (409, "permanent"),
            (422, "permanent"),
            (408, "retry"),
            (429, "retry"),
            (500, "retry"),
            (502, "retry"),
            (503, "retry"),
            (504, "retry"),
        ];
        for (status, class) in table {
            let outcome = classify_response(&response(status, None));
            assert_eq!(outcome.class(), class, "status {status}");
            if let Outcome::Retry(f) | Outcome::Permanent(f) = &outcome {
                assert_eq!(f.http_status, Some(status));
                assert_eq!(f.kind, "http_status");
                assert_eq!(f.http_body.as_deref(), Some("{\"error\":\"nope\"}"));
            }
        }
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(http::header::RETRY_AFTER, "2".parse().expect("v"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(2)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert(http::header::RETRY_AFTER, later.parse().expect("v"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(http::header::RETRY_AFTER, "soon".parse().expect("v"));
        assert_eq!(retry_after(&h, now), None);
        match classify_response(&response(429, Some("2"))) {
            Outcome::Retry(f) => {
                assert_eq!(f.retry_after, Some(Duration::from_secs(2)));
                assert!(!f.charged, "a 429 spends no attempt");
            }
            other => panic!("429 must be retried, got {other:?}"),
        }
        match classify_response(&response(429, None)) {
            Outcome::Retry(f) => assert_eq!(f.retry_after, Some(Duration::from_secs(1)), "at least a second"),
            other => panic!("429 must be retried, got {other:?}"),
        }
        match classify_response(&response(503, Some("2"))) {
            Outcome::Retry(f) => assert!(f.charged, "a 503 spends an attempt"),
            other => panic!("503 must be retried, got {other:?}"),
        }
    }

    #[test]
    fn excerpt_is_bounded() {
        let body = "é".repeat(2000);
        let e = excerpt(body.as_bytes());
        assert!(e.len() <= BODY_EXCERPT_BYTES);
        assert!(e.chars().all(|c| c == 'é'));
    }
}
