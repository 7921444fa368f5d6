//! The dead-letter guard: a limit on the rate of dead letters of one consumer.
//!
//! A downstream outage or a bad deploy can make every event fail for good; dead-lettering them all at full
//! speed would empty the topic into the DLQ and leave an operator to replay everything. So at most `max`
//! events are dead-lettered within any `window`; past that, an event bound for the dead-letter topic waits
//! its turn (its offset stays uncommitted, and its wait takes room in the consumer's budget, which slows
//! consumption down when most events fail). Nothing is held for good: as the window slides, the waiting
//! events are dead-lettered one by one, and events that succeed keep flowing meanwhile. While events wait,
//! the guard is reported to [`Health`] (`/readyz` answers 503 with the reason) and the log says so.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::health::Health;
use crate::telemetry::metrics::{self, Label};

/// Name under which the guard reports to [`Health`].
const COMPONENT: &str = "dlq_guard";

#[derive(Debug, Default)]
struct State {
    /// When the dead letters admitted within the window were admitted.
    admitted: VecDeque<Instant>,
    /// Events waiting for their turn now.
    waiting: usize,
}

/// The guard of one consumer; clones share it.
#[derive(Debug, Clone)]
pub struct DlqGuard {
    /// Most dead letters within `window`; 0 disables the guard.
    max: u32,
    /// The sliding window.
    window: Duration,
    /// Admissions and waiters.
    state: Arc<Mutex<State>>,
    /// Where throttling is reported.
    health: Health,
    /// The consumer, as `courier_dlq_guard_waiting` is labelled.
    consumer: Label,
}

/// Counts an event as waiting while it lives.
struct Waiting<'g>(&'g DlqGuard);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.waiting -= 1;
        metrics::dlq_guard_waiting(&self.0.consumer, state.waiting);
        if state.waiting == 0 {
            drop(state);
            tracing::info!("dead-letter guard: no event waits any more; dead letters flow freely");
            self.0.health.clear(COMPONENT);
        }
    }
}

impl DlqGuard {
    /// A guard of `consumer` allowing `max` dead letters per `window` (0: no limit).
    pub fn new(max: u32, window: Duration, consumer: Label, health: Health) -> Self {
        metrics::dlq_guard_waiting(&consumer, 0);
        Self { max, window, state: Arc::default(), health, consumer }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one dead letter's turn now, or says how long until the oldest admission leaves the window.
    fn try_admit(&self) -> Result<(), Duration> {
        let mut state = self.lock();
        let now = Instant::now();
        while state.admitted.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            state.admitted.pop_front();
        }
        if state.admitted.len() < self.max as usize {
            state.admitted.push_back(now);
            return Ok(());
        }
        let oldest = state.admitted.front().copied().unwrap_or(now);
        Err((oldest + self.window).saturating_duration_since(now).max(Duration::from_millis(1)))
    }

    /// Waits until one more event may be dead-lettered. Cancel it by dropping the future.
    pub async fn admit(&self) {
        if self.max == 0 {
            return;
        }
        let Err(mut wait) = self.try_admit() else {
            return;
        };
        let waiting = {
            let mut state = self.lock();
            state.waiting += 1;
            metrics::dlq_guard_waiting(&self.consumer, state.waiting);
            if state.waiting == 1 {
                let why = format!(
                    "more than {} events would be dead-lettered within {} ms: dead letters are throttled, and \
                     events bound for the dead-letter topic wait their turn",
                    self.max,
                    self.window.as_millis()
                );
                tracing::warn!("dead-letter guard throttles: {why}");
                self.health.set_problem(COMPONENT, why);
            }
            Waiting(self)
        };
        loop {
            tokio::time::sleep(wait).await;
            match self.try_admit() {
                Ok(()) => break,
                Err(again) => wait = again,
            }
        }
        drop(waiting);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttles_to_the_rate_and_never_holds_for_good() {
        let health = Health::default();
        let window = Duration::from_millis(200);
        let guard = DlqGuard::new(3, window, Arc::from("test"), health.clone());
        let started = Instant::now();
        for _ in 0..3 {
            guard.admit().await;
        }
        assert!(started.elapsed() < window, "the first three pass at once");
        let waiter = {
            let guard = guard.clone();
            tokio::spawn(async move { guard.admit().await })
        };
        assert!(
            health.wait_for(Duration::from_secs(5), |p| p.contains_key(COMPONENT)).await,
            "readiness says it throttles"
        );
        waiter.await.expect("joins");
        assert!(started.elapsed() >= window, "the fourth waited for the window to slide");
        assert!(health.is_ready(), "nobody waits: ready again");
        // Seven more: at most three per window, and every one passes.
        for _ in 0..7 {
            guard.admit().await;
        }
        assert!(started.elapsed() >= window * 3, "11 dead letters at 3 per window take at least 3 windows");
    }

    #[tokio::test]
    async fn zero_disables() {
        let guard = DlqGuard::new(0, Duration::from_secs(60), Arc::from("test"), Health::default());
        for _ in 0..1000 {
            guard.admit().await;
        }
    }
}
