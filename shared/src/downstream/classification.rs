//! What the result of a call means for the event: 2xx is done; 408, 429 and 5xx are transient (429 waits
//! without spending attempts); any other status is permanent; a timeout or a broken connection is transient.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
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

/// Classifies the result of one call that carried `n` events (a batch): each event's outcome, in order.
///
/// - A failed call (no response, a non-2xx status, the breaker open) is every event's outcome: each is
///   retried or dead-lettered on its own, with the call's HTTP context.
/// - A 2xx whose body holds `"results"`, one per event in the batch's order, each with the `status` the API
///   gives that event (and optionally a `detail`), gives each event the outcome of its own status, as if it had
///   been the answer to a call of its own (its `detail` is the body its dead letter shows):
///   `{"results": [{"status": 201}, {"status": 422, "detail": "unknown sku"}]}`.
/// - A 2xx without `"results"` (an empty body, any other JSON, not JSON at all) means the API took every event.
/// - A 2xx whose `"results"` do not match the batch (another count, an entry without a valid status) fails
///   every event for good: the API's answer cannot say which were taken, and the dead letters keep its body.
pub fn classify_batch(result: &Result<ApiResponse, CallError>, n: usize) -> Vec<Outcome> {
    let response = match result {
        Ok(response) if response.status.is_success() => response,
        _ => return vec![classify(result); n],
    };
    let Ok(BatchAnswer { results: Some(results) }) = serde_json::from_slice::<BatchAnswer>(&response.body) else {
        return vec![Outcome::Done; n];
    };
    let statuses: Option<Vec<(StatusCode, &serde_json::Value)>> = match &results {
        serde_json::Value::Array(items) if items.len() == n => items
            .iter()
            .map(|item| {
                let status = item.get("status")?.as_u64().and_then(|s| u16::try_from(s).ok())?;
                Some((StatusCode::from_u16(status).ok()?, item.get("detail").unwrap_or(&serde_json::Value::Null)))
            })
            .collect(),
        _ => None,
    };
    let Some(statuses) = statuses else {
        let failure = Failure {
            kind: "batch_answer",
            message: format!("{} answered a batch of {n} events without one valid result per event", response.endpoint),
            ..Failure::http(&response.endpoint, response.status.as_u16(), excerpt(&response.body))
        };
        return vec![Outcome::Permanent(failure); n];
    };
    statuses
        .into_iter()
        .map(|(status, detail)| {
            let body = match detail {
                serde_json::Value::Null => Bytes::new(),
                serde_json::Value::String(text) => Bytes::from(text.clone()),
                other => Bytes::from(other.to_string()),
            };
            let own = ApiResponse { status, body, headers: HeaderMap::new(), ..response.clone() };
            classify_response(&own)
        })
        .collect()
}

/// The part of a batch call's answer [`classify_batch`] reads.
#[derive(serde::Deserialize)]
struct BatchAnswer {
    /// One result per event, when the API gives them.
    results: Option<serde_json::Value>,
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

    fn batch_answer(status: u16, body: &str) -> Result<ApiResponse, CallError> {
        Ok(ApiResponse { body: Bytes::from(body.to_owned()), ..response(status, None) })
    }

    #[test]
    fn a_batch_answer_gives_each_event_the_outcome_of_its_own_status() {
        let answer = r#"{"results": [{"status": 201}, {"status": 422, "detail": "unknown sku"}, {"status": 503},
            {"status": 429}, {"status": 409, "detail": {"code": "dup"}}]}"#;
        let outcomes = classify_batch(&batch_answer(207, answer), 5);
        let classes: Vec<&str> = outcomes.iter().map(Outcome::class).collect();
        assert_eq!(classes, ["done", "permanent", "retry", "retry", "permanent"]);
        match &outcomes[1] {
            Outcome::Permanent(f) => {
                assert_eq!((f.http_status, f.http_body.as_deref()), (Some(422), Some("unknown sku")));
                assert_eq!(f.endpoint.as_deref(), Some("POST http://api/x"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&outcomes[3], Outcome::Retry(f) if !f.charged), "a 429 spends no attempt");
        assert!(matches!(&outcomes[4], Outcome::Permanent(f) if f.http_body.as_deref() == Some(r#"{"code":"dup"}"#)));
    }

    #[test]
    fn a_batch_call_that_failed_fails_every_event_and_a_bare_2xx_delivers_every_event() {
        let failed = classify_batch(&batch_answer(503, "down"), 3);
        assert!(failed.iter().all(|o| matches!(o, Outcome::Retry(f) if f.http_status == Some(503))), "{failed:?}");
        let refused = classify_batch(&batch_answer(400, "bad"), 2);
        assert!(refused.iter().all(|o| o.class() == "permanent"), "{refused:?}");
        for body in ["", "accepted", r#"{"accepted": 3}"#] {
            assert_eq!(classify_batch(&batch_answer(200, body), 3), vec![Outcome::Done; 3], "{body:?}");
        }
    }

    #[test]
    fn a_batch_answer_that_does_not_match_the_batch_fails_every_event_for_good() {
        for body in [
            r#"{"results": [{"status": 201}]}"#,
            r#"{"results": [{"status": 201}, {"code": 201}]}"#,
            r#"{"results": [{"status": 201}, {"status": 99}]}"#,
            r#"{"results": "all fine"}"#,
        ] {
            let outcomes = classify_batch(&batch_answer(200, body), 2);
            assert!(
                outcomes.iter().all(|o| matches!(o, Outcome::Permanent(f) if f.kind == "batch_answer")),
                "{body}: {outcomes:?}"
            );
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
