//! Fault injection: what can go wrong with an API ([`Faults`]), partial updates of it ([`FaultsPatch`]),
//! and the per-request draw that decides which fault, if any, a request gets.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize};

/// The faults one API injects. Every field has a default, so a JSON object may name only some of them
/// (`PUT /admin/faults/{api}` resets the fields it leaves out; `PATCH` keeps them), and Rust code can
/// write `Faults { latency_ms: 20, ..Faults::default() }`.
///
/// A well-formed request (one that is not answered 400) meets the faults in this order, the first that
/// applies deciding its answer:
///
/// 1. [`fail_body_contains`](Faults::fail_body_contains): its body contains the text → `fail_body_status`;
/// 2. [`fail_first_per_key`](Faults::fail_first_per_key): it is among the first calls with its key →
///    `fail_first_status`;
/// 3. the random draw: the first `error_rate` of the range answers 503, the next `throttle_rate` answers
///    429, the next `hang_rate` hangs, the next `reset_rate` has its connection reset; the rest answer
///    normally. When the rates add up to more than 1, the later ones get what is left.
///
/// Every answer, failures included, waits `latency_ms` plus a uniform draw from
/// `0..=latency_jitter_ms` first. Failed requests take no effect and are not remembered, so a retry with
/// the same key may succeed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay, in milliseconds, before every answer of the API (failures included).
    pub latency_ms: u64,
    /// Extra random delay: each answer waits `latency_ms` plus a fresh uniform draw from
    /// `0..=latency_jitter_ms` milliseconds. 0 (the default) means a fixed `latency_ms`.
    pub latency_jitter_ms: u64,
    /// Share of requests (0.0–1.0) answered `503 Service Unavailable`, with no effect.
    pub error_rate: f64,
    /// Share of requests (0.0–1.0) answered `429 Too Many Requests` with `Retry-After`, with no effect.
    pub throttle_rate: f64,
    /// Seconds sent in the `Retry-After` header of a 429 answer.
    pub retry_after_secs: u64,
    /// Share of requests (0.0–1.0) that take effect but wait `hang_ms` before answering, i.e. past a
    /// client's timeout: the client sees a timeout although the effect happened.
    pub hang_rate: f64,
    /// How long, in milliseconds, a hanging request waits before answering.
    pub hang_ms: u64,
    /// Share of requests (0.0–1.0) that take effect, then have their connection reset (TCP RST) instead
    /// of an answer, as when a proxy or a crashing server drops it: the client sees a connection error
    /// although the effect happened.
    pub reset_rate: f64,
    /// When set, every well-formed `POST` whose raw body text contains this text (case-sensitive) is
    /// answered `fail_body_status`, with no effect: a "poison" request. An empty text matches every
    /// body. Checked before every other fault.
    pub fail_body_contains: Option<String>,
    /// Status (400–599) answered to a request picked by `fail_body_contains`; default 503. A 429 or 503
    /// carries `Retry-After: retry_after_secs`.
    pub fail_body_status: u16,
    /// The first `fail_first_per_key` calls with each distinct `Idempotency-Key` are answered
    /// `fail_first_status`, with no effect; later calls with the key go on normally. Calls already failed
    /// by `fail_body_contains` do not count. The counts per key are kept until a reset, and every call
    /// counts even while this is 0, so raising it later does not fail keys that are already past it.
    pub fail_first_per_key: u32,
    /// Status (400–599) answered to a call picked by `fail_first_per_key`; default 503. A 429 or 503
    /// carries `Retry-After: retry_after_secs`.
    pub fail_first_status: u16,
}

impl Faults {
    /// Default of [`Faults::fail_body_status`] and [`Faults::fail_first_status`]:
    /// `503 Service Unavailable`.
    pub const DEFAULT_FAIL_STATUS: u16 = 503;

    /// Default of [`Faults::hang_ms`]: one minute, longer than any sensible client timeout.
    pub const DEFAULT_HANG_MS: u64 = 60_000;
    /// Default of [`Faults::retry_after_secs`].
    pub const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

    /// No faults at all: answers at once and always succeeds.
    pub fn none() -> Self {
        Self {
            latency_ms: 0,
            latency_jitter_ms: 0,
            error_rate: 0.0,
            throttle_rate: 0.0,
            retry_after_secs: Self::DEFAULT_RETRY_AFTER_SECS,
            hang_rate: 0.0,
            hang_ms: Self::DEFAULT_HANG_MS,
            reset_rate: 0.0,
            fail_body_contains: None,
            fail_body_status: Self::DEFAULT_FAIL_STATUS,
            fail_first_per_key: 0,
            fail_first_status: Self::DEFAULT_FAIL_STATUS,
        }
    }

    /// Checks that every rate is a number between 0.0 and 1.0 and every failure status is between 400
    /// and 599.
    pub fn validate(&self) -> Result<(), InvalidFaults> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
            ("hang_rate", self.hang_rate),
            ("reset_rate", self.reset_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(InvalidFaults(format!("{name} must be between 0.0 and 1.0, got {rate}")));
            }
        }
        for (name, status) in
            [("fail_body_status", self.fail_body_status), ("fail_first_status", self.fail_first_status)]
        {
            if !is_failure_status(status) {
                return Err(InvalidFaults(format!("{name} must be between 400 and 599, got {status}")));
            }
        }
        Ok(())
    }

    /// The same faults with every rate forced into 0.0–1.0 (a NaN becomes 0.0) and every failure status
    /// outside 400–599 replaced by [`Faults::DEFAULT_FAIL_STATUS`].
    pub fn sanitized(self) -> Self {
        let clamp = |rate: f64| {
            if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) }
        };
        let status = |status: u16| {
            if is_failure_status(status) { status } else { Self::DEFAULT_FAIL_STATUS }
        };
        Self {
            error_rate: clamp(self.error_rate),
            throttle_rate: clamp(self.throttle_rate),
            hang_rate: clamp(self.hang_rate),
            reset_rate: clamp(self.reset_rate),
            fail_body_status: status(self.fail_body_status),
            fail_first_status: status(self.fail_first_status),
            ..self
        }
    }

    /// The delay before an answer: `latency_ms` plus a draw from `0..=latency_jitter_ms` made with `rng`.
    pub(crate) fn delay_ms(&self, rng: &mut impl Rng) -> u64 {
        let jitter = if self.latency_jitter_ms == 0 { 0 } else { rng.random_range(0..=self.latency_jitter_ms) };
        self.latency_ms.saturating_add(jitter)
    }

    /// Whether `fail_body_contains` picks a request whose raw body is `body`.
    pub(crate) fn body_fails(&self, body: &str) -> bool {
        self.fail_body_contains.as_deref().is_some_and(|text| body.contains(text))
    }

    /// Whether `fail_first_per_key` picks the `attempt`-th call (counted from 1) with a key.
    pub(crate) fn attempt_fails(&self, attempt: u64) -> bool {
        attempt <= u64::from(self.fail_first_per_key)
    }

    /// The fault a request gets for `roll`, a uniform draw from `[0, 1)`.
    pub(crate) fn injection(&self, roll: f64) -> Injection {
        let error = self.error_rate;
        let throttle = error + self.throttle_rate;
        let hang = throttle + self.hang_rate;
        let reset = hang + self.reset_rate;
        if roll < error {
            Injection::Error
        } else if roll < throttle {
            Injection::Throttle
        } else if roll < hang {
            Injection::Hang
        } else if roll < reset {
            Injection::Reset
        } else {
            Injection::None
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self::none()
    }
}

/// Whether `status` may be answered as an injected failure: 400–599.
fn is_failure_status(status: u16) -> bool {
    (400..=599).contains(&status)
}

/// A partial update of [`Faults`] (`PATCH /admin/faults/{api}`): the fields given replace the current
/// ones, the others stay. In JSON, `"fail_body_contains": null` turns that fault off, while leaving the
/// field out keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsPatch {
    /// New [`Faults::latency_ms`], if given.
    pub latency_ms: Option<u64>,
    /// New [`Faults::latency_jitter_ms`], if given.
    pub latency_jitter_ms: Option<u64>,
    /// New [`Faults::error_rate`], if given.
    pub error_rate: Option<f64>,
    /// New [`Faults::throttle_rate`], if given.
    pub throttle_rate: Option<f64>,
    /// New [`Faults::retry_after_secs`], if given.
    pub retry_after_secs: Option<u64>,
    /// New [`Faults::hang_rate`], if given.
    pub hang_rate: Option<f64>,
    /// New [`Faults::hang_ms`], if given.
    pub hang_ms: Option<u64>,
    /// New [`Faults::reset_rate`], if given.
    pub reset_rate: Option<f64>,
    /// New [`Faults::fail_body_contains`], if given: `Some(None)` (JSON `null`) turns it off.
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub fail_body_contains: Option<Option<String>>,
    /// New [`Faults::fail_body_status`], if given.
    pub fail_body_status: Option<u16>,
    /// New [`Faults::fail_first_per_key`], if given.
    pub fail_first_per_key: Option<u32>,
    /// New [`Faults::fail_first_status`], if given.
    pub fail_first_status: Option<u16>,
}

/// Reads a field that is present, `null` included, as `Some` (a missing one stays `None` through
/// `#[serde(default)]`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

impl FaultsPatch {
    /// `current` with the fields of this patch applied.
    pub fn apply(&self, current: Faults) -> Faults {
        Faults {
            latency_ms: self.latency_ms.unwrap_or(current.latency_ms),
            latency_jitter_ms: self.latency_jitter_ms.unwrap_or(current.latency_jitter_ms),
            error_rate: self.error_rate.unwrap_or(current.error_rate),
            throttle_rate: self.throttle_rate.unwrap_or(current.throttle_rate),
            retry_after_secs: self.retry_after_secs.unwrap_or(current.retry_after_secs),
            hang_rate: self.hang_rate.unwrap_or(current.hang_rate),
            hang_ms: self.hang_ms.unwrap_or(current.hang_ms),
            reset_rate: self.reset_rate.unwrap_or(current.reset_rate),
            fail_body_contains: match &self.fail_body_contains {
                Some(text) => text.clone(),
                None => current.fail_body_contains,
            },
            fail_body_status: self.fail_body_status.unwrap_or(current.fail_body_status),
            fail_first_per_key: self.fail_first_per_key.unwrap_or(current.fail_first_per_key),
            fail_first_status: self.fail_first_status.unwrap_or(current.fail_first_status),
        }
    }
}

/// What a request was picked for by the fault draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injection {
    /// Answer normally.
    None,
    /// Answer 503 without effect.
    Error,
    /// Answer 429 with `Retry-After`, without effect.
    Throttle,
    /// Take effect, then wait `hang_ms` before answering.
    Hang,
    /// Take effect, then reset the connection instead of answering.
    Reset,
}

/// Faults that cannot be applied, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFaults(pub String);

impl fmt::Display for InvalidFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidFaults {}

/// Parses a rate between 0.0 and 1.0 (for command-line flags).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&rate) { Ok(rate) } else { Err(format!("{rate} is not between 0.0 and 1.0")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_splits_the_range_in_order() {
        let faults = Faults { error_rate: 0.2, throttle_rate: 0.3, hang_rate: 0.1, reset_rate: 0.1, ..Faults::none() };
        assert_eq!(faults.injection(0.0), Injection::Error);
        assert_eq!(faults.injection(0.19), Injection::Error);
        assert_eq!(faults.injection(0.2), Injection::Throttle);
        assert_eq!(faults.injection(0.49), Injection::Throttle);
        assert_eq!(faults.injection(0.55), Injection::Hang);
        assert_eq!(faults.injection(0.65), Injection::Reset);
        assert_eq!(faults.injection(0.7), Injection::None);
        assert_eq!(Faults::none().injection(0.0), Injection::None);
        let always = Faults { error_rate: 1.0, ..Faults::none() };
        assert_eq!(always.injection(0.999_999), Injection::Error);
    }

    #[test]
    fn rates_are_checked_and_clamped() {
        assert!(Faults::none().validate().is_ok());
        let bad = Faults { throttle_rate: 1.5, hang_rate: f64::NAN, ..Faults::none() };
        assert!(bad.validate().is_err());
        let clamped = bad.sanitized();
        assert_eq!(clamped.throttle_rate, 1.0);
        assert_eq!(clamped.hang_rate, 0.0);
        assert!(clamped.validate().is_ok());
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert!(parse_rate("2").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("x").is_err());
    }

    #[test]
    fn json_fields_default_and_unknown_ones_are_refused() {
        let faults: Faults = serde_json::from_str(r#"{"error_rate": 0.5}"#).expect("parses");
        assert_eq!(faults, Faults { error_rate: 0.5, ..Faults::none() });
        assert!(serde_json::from_str::<Faults>(r#"{"eror_rate": 0.5}"#).is_err());
        let patch: FaultsPatch = serde_json::from_str(r#"{"hang_ms": 5}"#).expect("parses");
        let patched = patch.apply(faults);
        assert_eq!(patched.hang_ms, 5);
        assert_eq!(patched.error_rate, 0.5);
    }

    #[test]
    fn delay_is_latency_plus_uniform_jitter() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let fixed = Faults { latency_ms: 25, ..Faults::none() };
        assert!((0..100).all(|_| fixed.delay_ms(&mut rng) == 25));
        let jittery = Faults { latency_ms: 10, latency_jitter_ms: 3, ..Faults::none() };
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            seen.insert(jittery.delay_ms(&mut rng));
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [10, 11, 12, 13]);
        let huge = Faults { latency_ms: u64::MAX, latency_jitter_ms: 5, ..Faults::none() };
        assert_eq!(huge.delay_ms(&mut rng), u64::MAX);
    }

    #[test]
    fn body_and_attempt_failures_pick_their_requests() {
        let faults = Faults { fail_body_contains: Some("o-13".to_owned()), fail_first_per_key: 2, ..Faults::none() };
        assert!(faults.body_fails(r#"{"order_id":"o-13"}"#));
        assert!(!faults.body_fails(r#"{"order_id":"o-14"}"#));
        assert!(!Faults::none().body_fails("o-13"));
        assert!(faults.attempt_fails(1) && faults.attempt_fails(2));
        assert!(!faults.attempt_fails(3));
        assert!(!Faults::none().attempt_fails(1));
        assert_eq!(faults.fail_body_status, 503);
        assert_eq!(faults.fail_first_status, 503);
    }

    #[test]
    fn failure_statuses_are_checked_and_sanitized() {
        for status in [400, 429, 503, 599] {
            let faults = Faults { fail_body_status: status, fail_first_status: status, ..Faults::none() };
            assert!(faults.validate().is_ok(), "{status}");
        }
        for status in [0, 200, 399, 600] {
            let body = Faults { fail_body_status: status, ..Faults::none() };
            let error = body.validate().expect_err("refused");
            assert!(error.to_string().contains("fail_body_status"), "{error}");
            assert_eq!(body.sanitized().fail_body_status, 503);
            let first = Faults { fail_first_status: status, ..Faults::none() };
            let error = first.validate().expect_err("refused");
            assert!(error.to_string().contains("fail_first_status"), "{error}");
            assert_eq!(first.sanitized().fail_first_status, 503);
        }
    }

    #[test]
    fn new_fields_read_from_json_and_patch() {
        let faults: Faults = serde_json::from_str(
            r#"{"latency_jitter_ms": 5, "fail_body_contains": "boom", "fail_body_status": 422,
                "fail_first_per_key": 2, "fail_first_status": 429}"#,
        )
        .expect("parses");
        let expected = Faults {
            latency_jitter_ms: 5,
            fail_body_contains: Some("boom".to_owned()),
            fail_body_status: 422,
            fail_first_per_key: 2,
            fail_first_status: 429,
            ..Faults::none()
        };
        assert_eq!(faults, expected);
        let round_trip: Faults =
            serde_json::from_value(serde_json::to_value(&faults).expect("serializes")).expect("parses");
        assert_eq!(round_trip, faults);

        // Leaving fail_body_contains out keeps it; null turns it off.
        let keep: FaultsPatch = serde_json::from_str(r#"{"fail_first_per_key": 0}"#).expect("parses");
        assert_eq!(keep.fail_body_contains, None);
        let kept = keep.apply(faults.clone());
        assert_eq!(kept.fail_body_contains.as_deref(), Some("boom"));
        assert_eq!(kept.fail_first_per_key, 0);
        let clear: FaultsPatch = serde_json::from_str(r#"{"fail_body_contains": null}"#).expect("parses");
        assert_eq!(clear.fail_body_contains, Some(None));
        assert_eq!(clear.apply(faults.clone()).fail_body_contains, None);
        let set: FaultsPatch = serde_json::from_str(
            r#"{"fail_body_contains": "x", "latency_jitter_ms": 9, "fail_body_status": 500,
                "fail_first_status": 502}"#,
        )
        .expect("parses");
        let patched = set.apply(Faults::none());
        assert_eq!(
            patched,
            Faults {
                fail_body_contains: Some("x".to_owned()),
                latency_jitter_ms: 9,
                fail_body_status: 500,
                fail_first_status: 502,
                ..Faults::none()
            }
        );
        // An absent patch field is not serialized as null (which would clear it).
        let json = serde_json::to_value(FaultsPatch::default()).expect("serializes");
        assert!(json.get("fail_body_contains").is_none(), "{json}");
    }
}
