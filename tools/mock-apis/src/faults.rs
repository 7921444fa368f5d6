//! Fault injection: what can go wrong with an API ([`Faults`]) and which fault a request gets.

use http::StatusCode;
use rand::Rng;

/// The faults one API injects ([`crate::MockApis::set_faults`]); the default injects none, so write
/// `Faults { latency_ms: 20, ..Faults::default() }`.
///
/// A well-formed request meets them in this order, the first that applies deciding its answer:
/// `fail_body_contains`, then `fail_first_per_key`, then a random draw: the first `error_rate` of the
/// range answers 503, the next `throttle_rate` 429, the next `hang_rate` hangs, the next `reset_rate` has
/// its connection reset. Every answer waits `latency_ms` plus a uniform draw from `0..=latency_jitter_ms`
/// first. Failures take no effect and are not remembered, so a retry with the same key may succeed.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Delay before every answer, in milliseconds.
    pub latency_ms: u64,
    /// Extra delay per answer, drawn uniformly from `0..=latency_jitter_ms` milliseconds.
    pub latency_jitter_ms: u64,
    /// Share of requests (0.0–1.0) answered 503.
    pub error_rate: f64,
    /// Share of requests (0.0–1.0) answered 429 with `Retry-After`.
    pub throttle_rate: f64,
    /// Seconds in the `Retry-After` of a 429, and of a 429 or 503 from the two `fail_*` faults.
    pub retry_after_secs: u64,
    /// Share of requests (0.0–1.0) that take effect but answer only after `hang_ms`: past a client's timeout.
    pub hang_rate: f64,
    /// How long a hanging request waits before answering, in milliseconds.
    pub hang_ms: u64,
    /// Share of requests (0.0–1.0) that take effect, then have their connection reset instead of answered.
    pub reset_rate: f64,
    /// Fails every request whose raw body contains this text (case-sensitive; empty matches every body)
    /// with `fail_body_status`: a "poison" request.
    pub fail_body_contains: Option<String>,
    /// Status (400–599) of a request failed by `fail_body_contains`.
    pub fail_body_status: u16,
    /// Fails the first this many calls with each `Idempotency-Key` with `fail_first_status`. Every call
    /// that gets past `fail_body_contains` counts, even while this is 0, for the server's life.
    pub fail_first_per_key: u32,
    /// Status (400–599) of a call failed by `fail_first_per_key`.
    pub fail_first_status: u16,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            latency_jitter_ms: 0,
            error_rate: 0.0,
            throttle_rate: 0.0,
            retry_after_secs: 1,
            hang_rate: 0.0,
            hang_ms: 60_000,
            reset_rate: 0.0,
            fail_body_contains: None,
            fail_body_status: 503,
            fail_first_per_key: 0,
            fail_first_status: 503,
        }
    }
}

/// What a request gets from the faults, beyond the latency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// An injected failure, with no effect: its status, the `detail` of its problem body, and whether it
    /// carries `Retry-After`.
    Fail(StatusCode, String, bool),
    /// Take effect, then wait `hang_ms` before answering.
    Hang,
    /// Take effect, then reset the connection instead of answering.
    Reset,
}

impl Faults {
    /// The same faults with every rate forced into 0.0–1.0 (NaN to 0.0) and every failure status outside
    /// 400–599 made 503.
    pub(crate) fn sanitized(self) -> Self {
        let rate = |rate: f64| if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
        let status = |status: u16| if (400..=599).contains(&status) { status } else { 503 };
        Self {
            error_rate: rate(self.error_rate),
            throttle_rate: rate(self.throttle_rate),
            hang_rate: rate(self.hang_rate),
            reset_rate: rate(self.reset_rate),
            fail_body_status: status(self.fail_body_status),
            fail_first_status: status(self.fail_first_status),
            ..self
        }
    }

    /// The delay before an answer: `latency_ms` plus a draw from `0..=latency_jitter_ms`.
    pub(crate) fn delay_ms(&self, rng: &mut impl Rng) -> u64 {
        self.latency_ms.saturating_add(rng.random_range(0..=self.latency_jitter_ms))
    }

    /// The fault of a request whose raw body is `body`, given its `attempt` with its key (counted only when
    /// the body does not fail it) and `roll`, a uniform draw from `[0, 1)`; `None` to answer normally.
    pub(crate) fn pick(&self, body: &[u8], attempt: impl FnOnce() -> u64, roll: f64) -> Option<Fault> {
        let fail = |status: u16, detail: String| {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let retry_after = matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE);
            Some(Fault::Fail(status, detail, retry_after))
        };
        if let Some(text) = &self.fail_body_contains
            && String::from_utf8_lossy(body).contains(text.as_str())
        {
            return fail(self.fail_body_status, format!("injected failure: the body contains {text:?}"));
        }
        let attempt = attempt();
        if attempt <= u64::from(self.fail_first_per_key) {
            let detail = format!("injected failure: call {attempt} of {} with this key", self.fail_first_per_key);
            return fail(self.fail_first_status, detail);
        }
        let rates = [self.error_rate, self.throttle_rate, self.hang_rate, self.reset_rate];
        let mut bound = 0.0;
        match rates.into_iter().position(|rate| {
            bound += rate;
            roll < bound
        }) {
            Some(0) => Some(Fault::Fail(StatusCode::SERVICE_UNAVAILABLE, "injected failure: try again".into(), false)),
            Some(1) => Some(Fault::Fail(StatusCode::TOO_MANY_REQUESTS, "injected throttling".into(), true)),
            Some(2) => Some(Fault::Hang),
            Some(3) => Some(Fault::Reset),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draw_splits_the_range_in_order() {
        let faults =
            Faults { error_rate: 0.2, throttle_rate: 0.3, hang_rate: 0.1, reset_rate: 0.1, ..Faults::default() };
        let pick = |faults: &Faults, roll| match faults.pick(b"{}", || 1, roll) {
            Some(Fault::Fail(status, ..)) => status.as_u16().to_string(),
            other => format!("{other:?}"),
        };
        let picks = [0.0, 0.19, 0.2, 0.49, 0.55, 0.65, 0.7].map(|roll| pick(&faults, roll));
        assert_eq!(picks, ["503", "503", "429", "429", "Some(Hang)", "Some(Reset)", "None"]);
        assert_eq!(pick(&Faults::default(), 0.0), "None");
        assert_eq!(pick(&Faults { error_rate: 1.0, ..Faults::default() }, 0.999_999), "503");
    }
}
