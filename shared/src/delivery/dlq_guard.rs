//! The dead-letter guard: a limit on how many events one consumer may dead-letter within a window.
//!
//! A downstream outage or a bad deploy makes every event fail; dead-lettering them all would empty the topic
//! into the DLQ and leave an operator to replay everything. So when more than `max` events would be
//! dead-lettered within `window`, the guard *holds*: no more dead letters, the consumer pauses and reports
//! not-ready, and every `probe_interval` one held event is tried again at its API. When a probe succeeds the
//! guard releases: held events start their delivery over, consumption resumes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::health::Health;

/// Name under which the guard reports to [`Health`].
const COMPONENT: &str = "dlq_guard";

/// What a held event should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// Try the event at its API once; report with [`DlqGuard::probe_succeeded`] or
    /// [`DlqGuard::probe_failed`].
    Probe,
    /// The guard released: deliver the event from the start.
    Released,
}

#[derive(Debug, Default)]
struct State {
    /// When the events admitted within the window were admitted.
    admitted: VecDeque<Instant>,
    /// Whether the guard holds.
    holding: bool,
    /// Whether a probe is out.
    probing: bool,
    /// When the last probe was let out.
    last_probe: Option<Instant>,
}

/// The guard of one consumer; clones share it.
#[derive(Debug, Clone)]
pub struct DlqGuard {
    /// Most dead letters within `window`; 0 disables the guard.
    max: u32,
    /// The counting window.
    window: Duration,
    /// Time between probes while holding.
    probe_interval: Duration,
    /// Counters and state.
    state: Arc<Mutex<State>>,
    /// Whether the guard holds, for the poll thread and waiting events.
    holding: Arc<watch::Sender<bool>>,
    /// Where holding is reported.
    health: Health,
}

impl DlqGuard {
    /// A guard allowing `max` dead letters per `window` (0: no limit).
    pub fn new(max: u32, window: Duration, probe_interval: Duration, health: Health) -> Self {
        Self { max, window, probe_interval, state: Arc::default(), holding: Arc::new(watch::channel(false).0), health }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks to dead-letter one event: `true` (counted) when within the limit; `false` when the guard holds
    /// (it starts holding when this event would pass the limit).
    pub fn try_admit(&self) -> bool {
        if self.max == 0 {
            return true;
        }
        let mut state = self.lock();
        if state.holding {
            return false;
        }
        let now = Instant::now();
        while state.admitted.front().is_some_and(|t| now.duration_since(*t) > self.window) {
            state.admitted.pop_front();
        }
        if state.admitted.len() < self.max as usize {
            state.admitted.push_back(now);
            return true;
        }
        state.holding = true;
        state.last_probe = Some(now);
        drop(state);
        let why = format!(
            "more than {} events would be dead-lettered within {} s: dead-lettering stopped, consumption paused, \
             probing every {} s",
            self.max,
            self.window.as_secs(),
            self.probe_interval.as_secs_f32()
        );
        tracing::error!("dead-letter guard holds: {why}");
        self.health.set_problem(COMPONENT, why);
        self.holding.send_replace(true);
        false
    }

    /// Whether the guard holds now.
    pub fn is_holding(&self) -> bool {
        *self.holding.borrow()
    }

    /// For a held event: waits for its turn to probe, or for the guard to release.
    pub async fn next_turn(&self) -> Turn {
        let mut holding = self.holding.subscribe();
        loop {
            let wait = {
                let mut state = self.lock();
                if !state.holding {
                    return Turn::Released;
                }
                let due = state.last_probe.map_or(Duration::ZERO, |t| self.probe_interval.saturating_sub(t.elapsed()));
                if !state.probing && due.is_zero() {
                    state.probing = true;
                    state.last_probe = Some(Instant::now());
                    return Turn::Probe;
                }
                if state.probing { self.probe_interval } else { due }
            };
            tokio::select! {
                _ = holding.changed() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// A probe was delivered: release the guard.
    pub fn probe_succeeded(&self) {
        {
            let mut state = self.lock();
            state.holding = false;
            state.probing = false;
            state.admitted.clear();
        }
        tracing::info!("dead-letter guard released: a probe was delivered; resuming consumption");
        self.health.clear(COMPONENT);
        self.holding.send_replace(false);
    }

    /// A probe failed again: keep holding.
    pub fn probe_failed(&self) {
        self.lock().probing = false;
        tracing::warn!("dead-letter guard still holds: the probe failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_after_the_limit_probes_and_releases() {
        let health = Health::default();
        let guard = DlqGuard::new(3, Duration::from_secs(60), Duration::from_millis(20), health.clone());
        assert!((0..3).all(|_| guard.try_admit()));
        assert!(!guard.try_admit(), "the 4th within the window is held");
        assert!(guard.is_holding());
        assert!(!health.is_ready());
        assert_eq!(guard.next_turn().await, Turn::Probe);
        guard.probe_failed();
        assert_eq!(guard.next_turn().await, Turn::Probe);
        let waiter = {
            let g = guard.clone();
            tokio::spawn(async move { g.next_turn().await })
        };
        guard.probe_succeeded();
        assert_eq!(waiter.await.expect("joins"), Turn::Released);
        assert!(health.is_ready());
        assert!(guard.try_admit(), "the count starts over");
    }

    #[test]
    fn zero_disables() {
        let guard = DlqGuard::new(0, Duration::from_secs(1), Duration::from_secs(1), Health::default());
        assert!((0..1000).all(|_| guard.try_admit()));
    }
}
