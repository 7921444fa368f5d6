//! A circuit breaker per downstream API.
//!
//! Closed: calls go through; `threshold` consecutive transient failures (5xx, timeout, connection error)
//! open it. Open: no call goes to the API for `cooldown`; callers are told how long to wait and spend no retry
//! attempt. Then half-open: exactly one probe call goes through; success closes the breaker, failure opens it
//! again. State changes are logged and reported to [`Health`] (so `/readyz` shows an open breaker).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::health::Health;

/// How a call ended, as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    /// The API answered (2xx, or a 4xx that says the request was wrong, not that the API is down).
    Healthy,
    /// 5xx, timeout or connection error.
    Failed,
    /// Says nothing about the API's health (429, or a call abandoned before it ended).
    Neutral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The breaker of one API; clones share it.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    /// The API's name.
    name: Arc<str>,
    /// Consecutive failures that open it; 0 disables it.
    threshold: u32,
    /// How long it stays open before a probe.
    cooldown: Duration,
    /// Current state.
    state: Arc<Mutex<State>>,
    /// Where an open breaker is reported.
    health: Health,
}

/// Permission to make one call; report how it ended with [`Ticket::finish`]. Dropped unfinished, it counts
/// as [`CallResult::Neutral`].
#[derive(Debug)]
pub struct Ticket {
    /// The breaker it came from.
    breaker: CircuitBreaker,
    /// Whether this call is the half-open probe.
    probe: bool,
    /// Whether the result was reported.
    finished: bool,
}

impl CircuitBreaker {
    /// A closed breaker for API `name`.
    pub fn new(name: &str, threshold: u32, cooldown: Duration, health: Health) -> Self {
        Self {
            name: Arc::from(name),
            threshold,
            cooldown,
            state: Arc::new(Mutex::new(State::Closed { failures: 0 })),
            health,
        }
    }

    fn component(&self) -> String {
        format!("breaker.{}", self.name)
    }

    /// Asks to make a call: a ticket, or how long to wait before asking again.
    pub fn admit(&self) -> Result<Ticket, Duration> {
        if self.threshold == 0 {
            return Ok(Ticket { breaker: self.clone(), probe: false, finished: false });
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now < until => return Err(until - now),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                tracing::info!(api = %self.name, "circuit breaker half-open: letting one probe call through");
                true
            }
            // A probe is out: wait a fraction of the cool-down for its verdict.
            State::HalfOpen { probing: true } => {
                return Err((self.cooldown / 10).max(Duration::from_millis(50)));
            }
        };
        Ok(Ticket { breaker: self.clone(), probe, finished: false })
    }

    fn record(&self, probe: bool, result: CallResult) {
        if self.threshold == 0 {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match (*state, result) {
            (State::HalfOpen { .. }, CallResult::Healthy) if probe => {
                *state = State::Closed { failures: 0 };
                drop(state);
                tracing::info!(api = %self.name, "circuit breaker closed: the probe call succeeded");
                self.health.clear(&self.component());
            }
            (State::HalfOpen { .. }, CallResult::Failed) if probe => self.open(&mut state, "the probe call failed"),
            (State::HalfOpen { .. }, CallResult::Neutral) if probe => *state = State::HalfOpen { probing: false },
            (State::Closed { failures }, CallResult::Failed) => {
                let failures = failures + 1;
                if failures >= self.threshold {
                    self.open(&mut state, &format!("{failures} consecutive failures"));
                } else {
                    *state = State::Closed { failures };
                }
            }
            (State::Closed { .. }, CallResult::Healthy) => *state = State::Closed { failures: 0 },
            _ => {}
        }
    }

    fn open(&self, state: &mut State, why: &str) {
        *state = State::Open { until: Instant::now() + self.cooldown };
        tracing::warn!(
            api = %self.name,
            cooldown_ms = u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX),
            "circuit breaker opened after {why}: no calls until the cool-down ends"
        );
        self.health.set_problem(&self.component(), format!("circuit breaker of API {} is open ({why})", self.name));
    }

    /// Whether the breaker is open or half-open now.
    pub fn is_open(&self) -> bool {
        !matches!(*self.state.lock().unwrap_or_else(|e| e.into_inner()), State::Closed { .. })
    }
}

impl Ticket {
    /// Reports how the call ended.
    pub fn finish(mut self, result: CallResult) {
        self.finished = true;
        self.breaker.record(self.probe, result);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.finished {
            self.breaker.record(self.probe, CallResult::Neutral);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_probes_and_closes() {
        let health = Health::default();
        let breaker = CircuitBreaker::new("inventory", 3, Duration::from_millis(100), health.clone());
        for _ in 0..2 {
            breaker.admit().expect("closed").finish(CallResult::Failed);
        }
        breaker.admit().expect("closed").finish(CallResult::Healthy);
        for _ in 0..2 {
            breaker.admit().expect("closed").finish(CallResult::Failed);
        }
        assert!(health.is_ready(), "a success in between resets the count");
        breaker.admit().expect("closed").finish(CallResult::Failed);
        let wait = breaker.admit().expect_err("open");
        assert!(wait <= Duration::from_millis(100));
        assert!(!health.is_ready());

        tokio::time::sleep(wait).await;
        let probe = breaker.admit().expect("half-open lets one probe through");
        assert!(breaker.admit().is_err(), "only one probe at a time");
        probe.finish(CallResult::Failed);
        let wait = breaker.admit().expect_err("re-opened");
        tokio::time::sleep(wait).await;
        let probe = breaker.admit().expect("probe");
        drop(probe);
        let probe = breaker.admit().expect("an abandoned probe frees the slot");
        probe.finish(CallResult::Healthy);
        assert!(!breaker.is_open());
        assert!(health.is_ready());
        breaker.admit().expect("closed").finish(CallResult::Healthy);
    }

    #[test]
    fn threshold_zero_disables() {
        let breaker = CircuitBreaker::new("x", 0, Duration::from_secs(1), Health::default());
        for _ in 0..100 {
            breaker.admit().expect("always admitted").finish(CallResult::Failed);
        }
    }
}
