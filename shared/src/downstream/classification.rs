//! What the result of a call means for the event. By default 2xx is done; 408, 429 and 5xx are transient (429
//! waits without spending attempts); any other status is permanent; a timeout or a broken connection is
//! transient. An API's [`StatusPolicy`] (`[apis.<name>]`: `success_on`, `retry_on`, `dead_letter_on`) overrides
//! these defaults for the statuses it lists, gives the API a retry budget of its own (`max_attempts`,
//! `max_backoff_ms`), and names the response header by which the API stops the retries of an event
//! (`abort_header`, `abort_value`).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, StatusCode};

use super::client::{ApiResponse, CIRCUIT_OPEN, CallError, CallErrorKind, STOPPED};
use crate::delivery::{Failure, Outcome, RetryBudget};
use crate::settings::StatusCodes;

/// How much of an error response's body is kept for logs and dead letters.
pub const BODY_EXCERPT_BYTES: usize = 1024;

/// The failure kind of an event whose retries the API stopped with its abort header.
pub const ABORTED: &str = "aborted";

/// What one API's answers mean for an event, and how long its failures are retried: the status policy of
/// `[apis.<name>]` ([`crate::settings::ApiSettings::status_policy`]). The default policy is the default
/// classification and the consumer's retry budget.
///
/// Precedence: a status in one of the three lists is classified as that list says (a status may be in one
/// list at most), whatever the defaults say of it: a 429 in `dead_letter_on` is dead-lettered, a 409 in
/// `success_on` is delivered; a status in none keeps its default class. Then a failure the policy would retry
/// is dead-lettered at once when the response carries the abort header with its value. A status retried by
/// the policy spends attempts of [`StatusPolicy::budget`], but a 429 (listed in `retry_on` or not) still waits
/// without spending any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusPolicy {
    /// Statuses that deliver the event.
    pub success_on: StatusCodes,
    /// Statuses after which the event is tried again.
    pub retry_on: StatusCodes,
    /// Statuses that dead-letter the event at once.
    pub dead_letter_on: StatusCodes,
    /// The retry budget of the API's failures, over the consumer's.
    pub budget: RetryBudget,
    /// The header and value by which the API says "never retry this event"; `None`: not read.
    pub abort: Option<AbortSignal>,
}

/// A response header by which an API stops the retries of an event: `webhook-delivery: abort-message` (as
/// Svix reads it) unless the API's settings name another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortSignal {
    /// The header's name.
    pub header: HeaderName,
    /// The value that asks for the stop (compared without regard to case, as one of the header's
    /// comma-separated values).
    pub value: String,
}

/// What a status means for an event under a [`StatusPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// Delivered.
    Success,
    /// The API asks to slow down (a 429 that is retried): waited out without spending an attempt.
    Throttled,
    /// Tried again, spending an attempt.
    Transient,
    /// Dead-lettered at once.
    Permanent,
}

impl StatusPolicy {
    /// What `status` means for an event: as the list naming it says, else as the defaults say.
    pub fn class(&self, status: StatusCode) -> StatusClass {
        let code = status.as_u16();
        if self.success_on.contains(code) {
            StatusClass::Success
        } else if self.dead_letter_on.contains(code) {
            StatusClass::Permanent
        } else if status == StatusCode::TOO_MANY_REQUESTS {
            StatusClass::Throttled
        } else if self.retry_on.contains(code) || is_transient_status(status) {
            StatusClass::Transient
        } else if status.is_success() {
            StatusClass::Success
        } else {
            StatusClass::Permanent
        }
    }

    /// Whether `headers` carry the abort signal.
    fn aborts(&self, headers: &HeaderMap) -> bool {
        let Some(abort) = &self.abort else { return false };
        headers
            .get_all(&abort.header)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| value.split(',').any(|one| one.trim().eq_ignore_ascii_case(&abort.value)))
    }
}

/// Classifies the result of a call by its API's [`StatusPolicy`] (which the result carries): by default 2xx
/// is done; 408, 429 and 5xx are transient (with the server's Retry-After when it sent one); any other status
/// is permanent; a timeout or a connection error is transient; any other transport error (a request that
/// could not be built) is permanent.
pub fn classify(result: &Result<ApiResponse, CallError>) -> Outcome {
    match result {
        Ok(response) => classify_response(response),
        Err(error) => classify_error(error),
    }
}

/// Classifies a response by its status, under its API's policy.
pub fn classify_response(response: &ApiResponse) -> Outcome {
    let (status, policy) = (response.status, &response.policy);
    let class = policy.class(status);
    if class == StatusClass::Success {
        return Outcome::Done;
    }
    let failure = Failure::http(&response.endpoint, status.as_u16(), excerpt(&response.body))
        .with_retry_after(retry_after(&response.headers, SystemTime::now()))
        .with_budget(policy.budget);
    if class != StatusClass::Permanent && policy.aborts(&response.headers) {
        let abort = policy.abort.as_ref().map_or_else(String::new, |a| format!("{}: {}", a.header, a.value));
        let message = format!("{} answered {status} with {abort}: the API asks for no retry", response.endpoint);
        return Outcome::Permanent(Failure { kind: ABORTED, message, ..failure });
    }
    match class {
        StatusClass::Throttled => {
            // The API is fine and asks us to slow down: waiting as asked (at least a second) spends none of
            // the event's attempts, so a storm of 429s never dead-letters anything, as an open breaker does not.
            let wait = failure.retry_after.unwrap_or(THROTTLE_WAIT).max(THROTTLE_WAIT);
            Outcome::Retry(failure.with_retry_after(Some(wait)).uncharged())
        }
        class => retry_or_permanent(failure, class == StatusClass::Transient, response.probe),
    }
}

/// Classifies the result of one call that carried `n` events (a batch): each event's outcome, in order.
///
/// The call's status is read under its API's [`StatusPolicy`], and so is each event's own status.
///
/// - A failed call (no response, a status that does not deliver, the breaker open) is every event's outcome:
///   each is retried or dead-lettered on its own, with the call's HTTP context.
/// - A 2xx (or a status the policy takes as delivered) whose body holds `"results"`, one per event in the batch's order, each with the `status` the API
///   gives that event (and optionally a `detail`), gives each event the outcome of its own status, as if it had
///   been the answer to a call of its own (its `detail` is the body its dead letter shows):
///   `{"results": [{"status": 201}, {"status": 422, "detail": "unknown sku"}]}`.
/// - A 2xx without `"results"` (an empty body, any other JSON, not JSON at all) means the API took every event.
/// - A 2xx whose `"results"` do not match the batch (another count, an entry without a valid status) fails
///   every event for good: the API's answer cannot say which were taken, and the dead letters keep its body.
pub fn classify_batch(result: &Result<ApiResponse, CallError>, n: usize) -> Vec<Outcome> {
    let response = match (result, classify(result)) {
        (Ok(response), Outcome::Done) => response,
        (_, outcome) => return vec![outcome; n],
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
    let budget = error.policy.budget;
    let e = match &error.kind {
        CallErrorKind::CircuitOpen { retry_in } => {
            let failure = Failure::new(CIRCUIT_OPEN, "the API's circuit breaker is open: call not made")
                .with_endpoint(&error.endpoint)
                .with_retry_after(Some(*retry_in))
                .with_budget(budget)
                .uncharged();
            return Outcome::Retry(failure);
        }
        CallErrorKind::Stopped => {
            let failure = Failure::new(STOPPED, "the event stopped before its call's turn came: call not made")
                .with_endpoint(&error.endpoint)
                .uncharged();
            return Outcome::Retry(failure);
        }
        CallErrorKind::Auth(auth) => {
            // The token endpoint failed: like an outage of the API, transient.
            let failure = Failure::new("auth", auth.to_string()).with_endpoint(&error.endpoint).with_budget(budget);
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
    let failure = Failure::new(kind, format!("{e}")).with_endpoint(&error.endpoint).with_budget(budget);
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
    use std::sync::Arc;

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
            policy: Arc::default(),
        }
    }

    /// A policy delivering 409, retrying 404 and dead-lettering 500 and 429, with a budget of 2 attempts.
    fn policy() -> StatusPolicy {
        let codes = |entries: &[&str]| StatusCodes::parse(entries.iter().copied()).expect("valid codes");
        StatusPolicy {
            success_on: codes(&["409"]),
            retry_on: codes(&["404", "423-424"]),
            dead_letter_on: codes(&["500", "429"]),
            budget: RetryBudget::new(Some(2), Some(Duration::from_millis(300))),
            abort: Some(AbortSignal {
                header: HeaderName::from_static("webhook-delivery"),
                value: "abort-message".into(),
            }),
        }
    }

    /// `status` answered by an API with `policy`, with `headers`.
    fn answered(status: u16, policy: &StatusPolicy, headers: &[(&'static str, &str)]) -> ApiResponse {
        let mut response = ApiResponse { policy: Arc::new(policy.clone()), ..response(status, None) };
        for (name, value) in headers {
            response.headers.append(*name, value.parse().expect("header value"));
        }
        response
    }

    #[test]
    fn an_apis_lists_override_the_defaults_for_the_statuses_they_name() {
        let policy = policy();
        // (status, expected class): listed statuses as their list says, the others as the defaults do.
        let table = [
            (409, "done"),
            (404, "retry"),
            (423, "retry"),
            (424, "retry"),
            (500, "permanent"),
            (429, "permanent"),
            (201, "done"),
            (422, "permanent"),
            (425, "permanent"),
            (503, "retry"),
            (408, "retry"),
        ];
        for (status, class) in table {
            let outcome = classify_response(&answered(status, &policy, &[]));
            assert_eq!(outcome.class(), class, "status {status}");
            if let Outcome::Retry(f) | Outcome::Permanent(f) = &outcome {
                assert_eq!((f.kind, f.http_status), ("http_status", Some(status)));
                assert!(f.charged, "{status}: a status retried by the policy spends attempts");
                assert_eq!(f.budget, policy.budget, "{status}: the failure carries the API's budget");
            }
        }
        assert_eq!(StatusPolicy::default().class(StatusCode::CONFLICT), StatusClass::Permanent, "the defaults stay");
        assert_eq!(StatusPolicy::default().class(StatusCode::NOT_FOUND), StatusClass::Permanent);
        assert_eq!(StatusPolicy::default().class(StatusCode::INTERNAL_SERVER_ERROR), StatusClass::Transient);
    }

    #[test]
    fn a_429_the_policy_retries_still_waits_without_spending_an_attempt_and_a_listed_2xx_is_retried() {
        let retried =
            StatusPolicy { retry_on: StatusCodes::parse(["429", "202"]).expect("valid"), ..StatusPolicy::default() };
        match classify_response(&answered(429, &retried, &[])) {
            Outcome::Retry(f) => assert!(!f.charged && f.retry_after == Some(THROTTLE_WAIT), "{f:?}"),
            other => panic!("429 must wait, got {other:?}"),
        }
        assert!(matches!(classify_response(&answered(202, &retried, &[])), Outcome::Retry(f) if f.charged));
        assert_eq!(classify_response(&answered(200, &retried, &[])), Outcome::Done);
    }

    #[test]
    fn the_abort_header_dead_letters_what_would_be_retried_and_nothing_else() {
        let policy = policy();
        let abort = [("webhook-delivery", "abort-message")];
        for status in [503, 404, 408] {
            match classify_response(&answered(status, &policy, &abort)) {
                Outcome::Permanent(f) => {
                    assert_eq!((f.kind, f.http_status), (ABORTED, Some(status)));
                    assert_eq!(f.http_body.as_deref(), Some("{\"error\":\"nope\"}"), "the API's reason is kept");
                    assert!(f.message.contains("webhook-delivery: abort-message"), "{}", f.message);
                }
                other => panic!("{status} with the abort header must be dead-lettered, got {other:?}"),
            }
        }
        assert!(matches!(
            classify_response(&answered(503, &policy, &[("Webhook-Delivery", "disable, ABORT-MESSAGE")])),
            Outcome::Permanent(f) if f.kind == ABORTED
        ));
        assert_eq!(classify_response(&answered(201, &policy, &abort)), Outcome::Done, "delivered: no effect");
        assert_eq!(classify_response(&answered(409, &policy, &abort)), Outcome::Done);
        assert!(
            matches!(classify_response(&answered(422, &policy, &abort)), Outcome::Permanent(f) if f.kind == "http_status")
        );
        assert!(matches!(
            classify_response(&answered(503, &policy, &[("webhook-delivery", "disable")])),
            Outcome::Retry(_)
        ));
        let deaf = StatusPolicy { abort: None, ..policy };
        assert!(matches!(classify_response(&answered(503, &deaf, &abort)), Outcome::Retry(_)), "no header read");
    }

    #[test]
    fn a_call_without_a_response_carries_the_apis_budget() {
        let policy = Arc::new(policy());
        let kind = CallErrorKind::CircuitOpen { retry_in: Duration::from_secs(1) };
        let error = CallError { endpoint: "POST http://api/x".into(), kind, probe: false, policy: policy.clone() };
        assert!(matches!(classify_error(&error), Outcome::Retry(f) if f.budget == policy.budget));
    }

    #[test]
    fn a_batch_follows_the_apis_policy_for_the_call_and_for_each_event() {
        let policy = policy();
        let answer = r#"{"results": [{"status": 409}, {"status": 404}, {"status": 500}, {"status": 422}]}"#;
        let batch = |status: u16, body: &str| {
            Ok(ApiResponse { body: Bytes::from(body.to_owned()), ..answered(status, &policy, &[]) })
        };
        let classes: Vec<&str> = classify_batch(&batch(207, answer), 4).iter().map(Outcome::class).collect();
        assert_eq!(classes, ["done", "retry", "permanent", "permanent"]);
        let taken: Vec<&str> = classify_batch(&batch(409, answer), 4).iter().map(Outcome::class).collect();
        assert_eq!(taken, ["done", "retry", "permanent", "permanent"], "a call the policy delivers is read per event");
        let refused = classify_batch(&batch(500, "down"), 3);
        assert!(
            refused.iter().all(|o| matches!(o, Outcome::Permanent(f) if f.http_status == Some(500))),
            "{refused:?}"
        );
        let retried = classify_batch(&batch(404, "not yet"), 2);
        assert!(retried.iter().all(|o| matches!(o, Outcome::Retry(f) if f.budget == policy.budget)), "{retried:?}");
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
