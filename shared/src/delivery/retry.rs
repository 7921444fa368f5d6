//! When to try again: exponential backoff with full jitter, capped, and the server's Retry-After honoured.

use std::time::Duration;

use rand::Rng;

use super::handler::RetryBudget;
use crate::settings::ConsumerSettings;

/// The retry budget and schedule of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay cap of the first retry; doubles with each attempt.
    pub initial_backoff: Duration,
    /// Upper bound of any delay, Retry-After included.
    pub max_backoff: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Longest time from the first attempt after which no retry is started.
    pub max_elapsed: Duration,
}

impl RetryPolicy {
    /// The policy the consumer settings describe.
    pub fn from_settings(settings: &ConsumerSettings) -> Self {
        Self {
            initial_backoff: settings.retry_initial_backoff_ms,
            max_backoff: settings.retry_max_backoff_ms,
            max_attempts: settings.retry_max_attempts,
            max_elapsed: settings.retry_max_elapsed_ms,
        }
    }

    /// This policy with the limits `budget` sets in place of its own: the budget of the API whose call
    /// failed (carried by the failure), for a consumer whose APIs have budgets of their own.
    pub fn within(&self, budget: RetryBudget) -> Self {
        Self {
            max_attempts: budget.max_attempts().unwrap_or(self.max_attempts),
            max_backoff: budget.max_backoff().unwrap_or(self.max_backoff),
            ..*self
        }
    }

    /// Whether another attempt is allowed after `attempts` failed ones, `elapsed` after the first started.
    pub fn allows_another(&self, attempts: u32, elapsed: Duration) -> bool {
        attempts < self.max_attempts && elapsed < self.max_elapsed
    }

    /// The delay before attempt `attempts + 1`, after `attempts` failed ones: a uniformly random delay up to
    /// `initial · 2^(attempts-1)` ("full jitter", so that many consumers failing together do not retry
    /// together), or the server's Retry-After when it asks for longer; capped by `max_backoff` either way.
    ///
    /// A Retry-After never makes the retries faster than the backoff would: a storm of `429 Retry-After: 1`
    /// spends an event's attempts no faster than any other transient failure.
    pub fn delay(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        let exponent = attempts.saturating_sub(1).min(31);
        let ceiling = self.initial_backoff.saturating_mul(1u32 << exponent).min(self.max_backoff);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let backoff = Duration::from_millis(rand::rng().random_range(0..=ceiling_ms));
        backoff.max(retry_after.unwrap_or(Duration::ZERO)).min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(5),
        max_attempts: 4,
        max_elapsed: Duration::from_secs(60),
    };

    #[test]
    fn delays_grow_exponentially_within_the_cap() {
        for attempts in 1..=12u32 {
            let ceiling = Duration::from_millis(100 * 2u64.pow(attempts - 1)).min(POLICY.max_backoff);
            let max_seen = (0..200).map(|_| POLICY.delay(attempts, None)).max().expect("samples");
            assert!(max_seen <= ceiling, "attempt {attempts}: {max_seen:?} > {ceiling:?}");
            // Full jitter spreads over the whole range: with 200 samples the largest is near the ceiling.
            assert!(max_seen >= ceiling / 2, "attempt {attempts}: {max_seen:?} never near {ceiling:?}");
        }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        assert_eq!(POLICY.delay(1, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(POLICY.delay(1, Some(Duration::from_secs(60))), Duration::from_secs(5));
        assert_eq!(POLICY.delay(1, Some(Duration::from_secs(3600))), Duration::from_secs(5), "never an hour");
    }

    #[test]
    fn a_short_retry_after_does_not_speed_up_the_backoff() {
        // After 6 failures the backoff draws up to 3.2 s: a `Retry-After: 0` must not shorten that.
        let delays: Vec<Duration> = (0..200).map(|_| POLICY.delay(6, Some(Duration::ZERO))).collect();
        assert!(delays.iter().max().is_some_and(|d| *d > Duration::from_secs(1)), "the backoff still applies");
        let with_one: Vec<Duration> = (0..200).map(|_| POLICY.delay(6, Some(Duration::from_secs(1)))).collect();
        assert!(with_one.iter().all(|d| *d >= Duration::from_secs(1)), "and the server's wait is a floor");
    }

    #[test]
    fn an_apis_budget_replaces_the_limits_it_sets() {
        let budget = RetryBudget::new(Some(2), Some(Duration::from_millis(300)));
        let api = POLICY.within(budget);
        assert_eq!((api.max_attempts, api.max_backoff), (2, Duration::from_millis(300)));
        assert_eq!((api.initial_backoff, api.max_elapsed), (POLICY.initial_backoff, POLICY.max_elapsed));
        assert!(!api.allows_another(2, Duration::ZERO));
        assert!((0..200).all(|_| api.delay(8, Some(Duration::from_secs(9))) == Duration::from_millis(300)));
        let attempts_only = POLICY.within(RetryBudget::new(Some(9), None));
        assert_eq!((attempts_only.max_attempts, attempts_only.max_backoff), (9, POLICY.max_backoff));
        assert_eq!(POLICY.within(RetryBudget::default()), POLICY, "no budget of its own: the consumer's");
    }

    #[test]
    fn budget_counts_attempts() {
        assert!(POLICY.allows_another(3, Duration::ZERO));
        assert!(!POLICY.allows_another(4, Duration::ZERO));
        assert!(!POLICY.allows_another(1, Duration::from_secs(60)), "the time budget is spent");
    }
}
