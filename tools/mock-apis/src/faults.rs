//! Fault injection: what can go wrong with an API ([`Faults`]) and the per-request draw that decides
//! which fault, if any, a request gets.

use rand::Rng;

/// The faults one API injects (set with [`crate::MockApis::set_faults`], or for every API with the
/// binary's flags). Every field has a default, none of them a fault: write
/// `Faults { latency_ms: 20, ..Faults::default() }`.
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
#[derive(Debug, Clone, PartialEq)]
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
    /// by `fail_body_contains` do not count. The counts per key are kept for the server's life, and every
    /// call counts even while this is 0, so raising it later does not fail keys that are already past it.
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

    /// Checks that every rate is a number between 0.0 and 1.0 and every failure status is between 400
    /// and 599.
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
            ("hang_rate", self.hang_rate),
            ("reset_rate", self.reset_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0.0 and 1.0, got {rate}"));
            }
        }
        for (name, status) in
            [("fail_body_status", self.fail_body_status), ("fail_first_status", self.fail_first_status)]
        {
            if !is_failure_status(status) {
                return Err(format!("{name} must be between 400 and 599, got {status}"));
            }
        }
        Ok(())
    }

    /// The same faults with every rate forced into 0.0–1.0 (a NaN becomes 0.0) and every failure status
    /// outside 400–599 replaced by [`Faults::DEFAULT_FAIL_STATUS`].
    pub(crate) fn sanitized(self) -> Self {
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
    /// No faults at all: answers at once and always succeeds.
    fn default() -> Self {
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
}

/// Whether `status` may be answered as an injected failure: 400–599.
fn is_failure_status(status: u16) -> bool {
    (400..=599).contains(&status)
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
        let faults =
            Faults { error_rate: 0.2, throttle_rate: 0.3, hang_rate: 0.1, reset_rate: 0.1, ..Faults::default() };
        assert_eq!(faults.injection(0.0), Injection::Error);
        assert_eq!(faults.injection(0.19), Injection::Error);
        assert_eq!(faults.injection(0.2), Injection::Throttle);
        assert_eq!(faults.injection(0.49), Injection::Throttle);
        assert_eq!(faults.injection(0.55), Injection::Hang);
        assert_eq!(faults.injection(0.65), Injection::Reset);
        assert_eq!(faults.injection(0.7), Injection::None);
        assert_eq!(Faults::default().injection(0.0), Injection::None);
        let always = Faults { error_rate: 1.0, ..Faults::default() };
        assert_eq!(always.injection(0.999_999), Injection::Error);
    }

    #[test]
    fn rates_are_checked_and_clamped() {
        assert!(Faults::default().validate().is_ok());
        let bad = Faults { throttle_rate: 1.5, hang_rate: f64::NAN, ..Faults::default() };
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
    fn delay_is_latency_plus_uniform_jitter() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let fixed = Faults { latency_ms: 25, ..Faults::default() };
        assert!((0..100).all(|_| fixed.delay_ms(&mut rng) == 25));
        let jittery = Faults { latency_ms: 10, latency_jitter_ms: 3, ..Faults::default() };
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            seen.insert(jittery.delay_ms(&mut rng));
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [10, 11, 12, 13]);
        let huge = Faults { latency_ms: u64::MAX, latency_jitter_ms: 5, ..Faults::default() };
        assert_eq!(huge.delay_ms(&mut rng), u64::MAX);
    }

    #[test]
    fn body_and_attempt_failures_pick_their_requests() {
        let faults = Faults { fail_body_contains: Some("o-13".to_owned()), fail_first_per_key: 2, ..Faults::default() };
        assert!(faults.body_fails(r#"{"order_id":"o-13"}"#));
        assert!(!faults.body_fails(r#"{"order_id":"o-14"}"#));
        assert!(!Faults::default().body_fails("o-13"));
        assert!(faults.attempt_fails(1) && faults.attempt_fails(2));
        assert!(!faults.attempt_fails(3));
        assert!(!Faults::default().attempt_fails(1));
        assert_eq!(faults.fail_body_status, 503);
        assert_eq!(faults.fail_first_status, 503);
    }

    #[test]
    fn failure_statuses_are_checked_and_sanitized() {
        for status in [400, 429, 503, 599] {
            let faults = Faults { fail_body_status: status, fail_first_status: status, ..Faults::default() };
            assert!(faults.validate().is_ok(), "{status}");
        }
        for status in [0, 200, 399, 600] {
            let body = Faults { fail_body_status: status, ..Faults::default() };
            let error = body.validate().expect_err("refused");
            assert!(error.contains("fail_body_status"), "{error}");
            assert_eq!(body.sanitized().fail_body_status, 503);
            let first = Faults { fail_first_status: status, ..Faults::default() };
            let error = first.validate().expect_err("refused");
            assert!(error.contains("fail_first_status"), "{error}");
            assert_eq!(first.sanitized().fail_first_status, 503);
        }
    }
}
