//! A circuit breaker per downstream API, judging the API by what many calls say.
//!
//! Closed: calls go through, and the breaker keeps a sliding window (`window`, in ten buckets) of how many
//! calls ended and how many of them failed (5xx, timeout, connection error), plus which events (idempotency
//! keys) the failed calls were made for (an event is forgotten once its last failure left the window, so the
//! map stays as large as one window's failing events, whether the breaker ever opens or not). It opens only
//! when all of these hold within the window:
//! * at least `minimum_calls` calls ended;
//! * at least `failure_rate_percent` of them failed;
//! * the failed calls came from at least `minimum_failing_keys` different events.
//!
//! The last condition is what keeps one bad event from stopping everyone: a single key whose calls keep
//! failing while hundreds of others succeed (or after they drained) never opens the breaker. Its failures
//! are its own: they spend its retry attempts and, in the end, dead-letter it (see `worker`). A real outage
//! fails many events at once and opens the breaker within a window.
//!
//! A call is let through twice: when it asks ([`CircuitBreaker::admit`]) and again when its turn comes after
//! the API's rate and concurrency limits ([`Ticket::recheck`]), so that the calls queued behind those limits
//! when the breaker opens do not all reach an API that is down.
//!
//! Open: no call goes to the API for `cooldown`; callers are told how long to wait and spend no attempt
//! while they wait. Then half-open: exactly one probe call goes through; success closes the breaker (with an
//! empty window), failure opens it again. State changes are logged and reported to [`Health`] (so `/readyz`
//! shows an open breaker).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::health::Health;
use crate::telemetry::metrics::{self, BreakerState};

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

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Share of failed calls (1–100) within the window that opens the breaker; 0 disables the breaker.
    pub failure_rate_percent: u8,
    /// Calls that must have ended within the window before the failure rate is judged.
    pub minimum_calls: u32,
    /// Different events (idempotency keys) whose calls must have failed within the window.
    pub minimum_failing_keys: u32,
    /// The sliding window.
    pub window: Duration,
    /// How long the breaker stays open before it lets one probe call through.
    pub cooldown: Duration,
}

/// Buckets of the sliding window.
const BUCKETS: u32 = 10;

/// Calls and failures counted in one slice of the window.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which slice of time (`elapsed / slice`) the counts belong to.
    slice: u64,
    /// Calls that ended in it.
    calls: u32,
    /// Of those, failed calls.
    failures: u32,
}

/// The closed breaker's view of recent calls.
#[derive(Debug)]
struct Window {
    /// The start of slice 0.
    epoch: Instant,
    /// One bucket per slice, reused round-robin.
    buckets: [Bucket; BUCKETS as usize],
    /// Hash of each event whose call failed → the slice of its last failure.
    failing: HashMap<u64, u64>,
}

impl Window {
    fn new(epoch: Instant) -> Self {
        Self { epoch, buckets: [Bucket::default(); BUCKETS as usize], failing: HashMap::new() }
    }
}

#[derive(Debug)]
enum State {
    Closed(Box<Window>),
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The breaker of one API; clones share it.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    /// The API's name.
    name: Arc<str>,
    /// When it opens and for how long.
    policy: BreakerPolicy,
    /// Current state.
    state: Arc<Mutex<State>>,
    /// Hashes idempotency keys (the window keeps hashes, not keys).
    hasher: RandomState,
    /// Where an open breaker is reported.
    health: Health,
}

/// Permission to make one call; report how it ended with [`Ticket::finish`]. Dropped unfinished, it counts
/// as [`CallResult::Neutral`].
#[derive(Debug)]
pub struct Ticket {
    /// The breaker it came from.
    breaker: CircuitBreaker,
    /// Hash of the call's idempotency key.
    key: u64,
    /// Whether this call is the half-open probe.
    probe: bool,
    /// Whether the result was reported.
    finished: bool,
}

impl CircuitBreaker {
    /// A closed breaker for API `name`.
    pub fn new(name: &str, policy: BreakerPolicy, health: Health) -> Self {
        let name: Arc<str> = Arc::from(name);
        metrics::breaker(&name, BreakerState::Closed, false);
        Self {
            name,
            policy,
            state: Arc::new(Mutex::new(State::Closed(Box::new(Window::new(Instant::now()))))),
            hasher: RandomState::new(),
            health,
        }
    }

    fn enabled(&self) -> bool {
        self.policy.failure_rate_percent > 0
    }

    fn component(&self) -> String {
        format!("breaker.{}", self.name)
    }

    fn slice_length(&self) -> Duration {
        (self.policy.window / BUCKETS).max(Duration::from_millis(1))
    }

    /// Asks to make a call for the event with idempotency key `key`: a ticket, or how long to wait before
    /// asking again.
    pub fn admit(&self, key: &str) -> Result<Ticket, Duration> {
        let ticket = |probe| Ticket { breaker: self.clone(), key: self.hasher.hash_one(key), probe, finished: false };
        if !self.enabled() {
            return Ok(ticket(false));
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let probe = match *state {
            State::Closed(_) => false,
            State::Open { until } if now < until => return Err(until - now),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                if matches!(*state, State::Open { .. }) {
                    metrics::breaker(&self.name, BreakerState::HalfOpen, true);
                }
                *state = State::HalfOpen { probing: true };
                tracing::info!(api = %self.name, "circuit breaker half-open: letting one probe call through");
                true
            }
            // A probe is out: wait a fraction of the cool-down for its verdict.
            State::HalfOpen { probing: true } => {
                return Err((self.policy.cooldown / 10).max(Duration::from_millis(50)));
            }
        };
        Ok(ticket(probe))
    }

    fn record(&self, key: u64, probe: bool, result: CallResult) {
        self.record_at(key, probe, result, Instant::now());
    }

    /// Records how a call ended, at `now`.
    fn record_at(&self, key: u64, probe: bool, result: CallResult, now: Instant) {
        if !self.enabled() {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match (&mut *state, result) {
            (State::HalfOpen { .. }, CallResult::Healthy) if probe => {
                *state = State::Closed(Box::new(Window::new(now)));
                drop(state);
                tracing::info!(api = %self.name, "circuit breaker closed: the probe call succeeded");
                metrics::breaker(&self.name, BreakerState::Closed, true);
                self.health.clear(&self.component());
            }
            (State::HalfOpen { .. }, CallResult::Failed) if probe => self.open(&mut state, "the probe call failed"),
            (State::HalfOpen { .. }, CallResult::Neutral) if probe => *state = State::HalfOpen { probing: false },
            (State::Closed(window), CallResult::Healthy | CallResult::Failed) => {
                if let Some(why) = self.count(window, key, result == CallResult::Failed, now) {
                    self.open(&mut state, &why);
                }
            }
            _ => {}
        }
    }

    /// Counts one call ended at `now` in the window; says why the breaker must open, when it must.
    fn count(&self, window: &mut Window, key: u64, failed: bool, now: Instant) -> Option<String> {
        let slice_length = self.slice_length();
        let elapsed = now.saturating_duration_since(window.epoch);
        let slice = u64::try_from(elapsed.as_nanos() / slice_length.as_nanos()).unwrap_or(u64::MAX);
        let oldest = slice.saturating_sub(u64::from(BUCKETS) - 1);
        let bucket = &mut window.buckets[(slice % u64::from(BUCKETS)) as usize];
        if bucket.slice != slice {
            *bucket = Bucket { slice, calls: 0, failures: 0 };
            // The first call of a new slice forgets the events whose last failure left the window: the map
            // holds at most one window (and a slice) of failing events, whatever the rate, and the cost is
            // spread over the slice's calls.
            window.failing.retain(|_, last| *last >= oldest);
        }
        bucket.calls += 1;
        if !failed {
            return None;
        }
        bucket.failures += 1;
        window.failing.insert(key, slice);
        let live = window.buckets.iter().filter(|b| b.slice >= oldest && b.slice <= slice);
        let (calls, failures) =
            live.fold((0u64, 0u64), |(c, f), b| (c + u64::from(b.calls), f + u64::from(b.failures)));
        let p = &self.policy;
        if calls < u64::from(p.minimum_calls) || failures * 100 < calls * u64::from(p.failure_rate_percent) {
            return None;
        }
        // Pruned at the start of this slice: every event in the map failed within the window.
        let keys = window.failing.len();
        if keys < p.minimum_failing_keys as usize {
            return None;
        }
        Some(format!(
            "{failures} of {calls} calls failed within {} ms, for {keys} different events",
            p.window.as_millis()
        ))
    }

    fn open(&self, state: &mut State, why: &str) {
        *state = State::Open { until: Instant::now() + self.policy.cooldown };
        metrics::breaker(&self.name, BreakerState::Open, true);
        tracing::warn!(
            api = %self.name,
            cooldown_ms = u64::try_from(self.policy.cooldown.as_millis()).unwrap_or(u64::MAX),
            "circuit breaker opened ({why}): no calls until the cool-down ends"
        );
        self.health.set_problem(&self.component(), format!("circuit breaker of API {} is open ({why})", self.name));
    }

    /// Whether the breaker is open or half-open now.
    pub fn is_open(&self) -> bool {
        !matches!(*self.state.lock().unwrap_or_else(|e| e.into_inner()), State::Closed(_))
    }
}

impl Ticket {
    /// Whether this call is the half-open breaker's probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Whether the call may still go out now that its turn came (after the rate and concurrency limits): a
    /// call let through while the breaker was closed does not go out once it has opened; the probe always
    /// may. `Err`: how long to wait before asking again.
    pub fn recheck(&self) -> Result<(), Duration> {
        let breaker = &self.breaker;
        if self.probe || !breaker.enabled() {
            return Ok(());
        }
        match *breaker.state.lock().unwrap_or_else(|e| e.into_inner()) {
            State::Closed(_) => Ok(()),
            State::Open { until } => Err(until.saturating_duration_since(Instant::now())),
            State::HalfOpen { .. } => Err((breaker.policy.cooldown / 10).max(Duration::from_millis(50))),
        }
    }

    /// Reports how the call ended.
    pub fn finish(mut self, result: CallResult) {
        self.finished = true;
        self.breaker.record(self.key, self.probe, result);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.finished {
            self.breaker.record(self.key, self.probe, CallResult::Neutral);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(cooldown_ms: u64) -> BreakerPolicy {
        BreakerPolicy {
            failure_rate_percent: 50,
            minimum_calls: 10,
            minimum_failing_keys: 3,
            window: Duration::from_secs(60),
            cooldown: Duration::from_millis(cooldown_ms),
        }
    }

    fn call(breaker: &CircuitBreaker, key: &str, result: CallResult) {
        breaker.admit(key).expect("closed").finish(result);
    }

    #[test]
    fn one_failing_key_never_opens_it() {
        let health = Health::default();
        let breaker = CircuitBreaker::new("inventory", policy(100), health.clone());
        for k in 0..300 {
            call(&breaker, &format!("ok-{k}"), CallResult::Healthy);
            call(&breaker, "bad", CallResult::Failed);
        }
        // The others drained: only the failing key's retries remain, far above the rate and the minimum.
        for _ in 0..1000 {
            call(&breaker, "bad", CallResult::Failed);
        }
        assert!(!breaker.is_open() && health.is_ready(), "one event's failures are its own");
    }

    #[test]
    fn many_failing_events_open_it_and_a_probe_closes_it() {
        let health = Health::default();
        let breaker = CircuitBreaker::new("inventory", policy(100), health.clone());
        for k in 0..9 {
            call(&breaker, &format!("k-{k}"), CallResult::Failed);
        }
        assert!(!breaker.is_open(), "9 calls: below the minimum of 10");
        call(&breaker, "k-9", CallResult::Failed);
        let wait = breaker.admit("k-10").expect_err("open");
        assert!(wait <= Duration::from_millis(100));
        assert!(!health.is_ready());

        std::thread::sleep(wait);
        let probe = breaker.admit("k-1").expect("half-open lets one probe through");
        assert!(breaker.admit("k-2").is_err(), "only one probe at a time");
        probe.finish(CallResult::Failed);
        let wait = breaker.admit("k-1").expect_err("re-opened");
        std::thread::sleep(wait);
        drop(breaker.admit("k-1").expect("probe"));
        let probe = breaker.admit("k-1").expect("an abandoned probe frees the slot");
        probe.finish(CallResult::Healthy);
        assert!(!breaker.is_open());
        assert!(health.is_ready());
        call(&breaker, "k-1", CallResult::Failed);
        assert!(!breaker.is_open(), "closing starts an empty window");
    }

    #[test]
    fn a_call_let_through_before_it_opened_does_not_go_out_after() {
        let breaker = CircuitBreaker::new("inventory", policy(60_000), Health::default());
        let waiting = breaker.admit("waiting").expect("closed");
        assert_eq!(waiting.recheck(), Ok(()), "still closed");
        for k in 0..10 {
            call(&breaker, &format!("k-{k}"), CallResult::Failed);
        }
        let wait = waiting.recheck().expect_err("opened while it waited for its turn");
        assert!(
            wait > Duration::from_secs(59) && wait <= Duration::from_secs(60),
            "until the cool-down ends: {wait:?}"
        );
        drop(waiting);
        assert!(breaker.is_open(), "given up, it changes nothing");
    }

    #[test]
    fn a_low_failure_rate_keeps_it_closed() {
        let breaker = CircuitBreaker::new("inventory", policy(100), Health::default());
        for k in 0..100 {
            let result = if k % 3 == 0 { CallResult::Failed } else { CallResult::Healthy };
            call(&breaker, &format!("k-{k}"), result);
        }
        assert!(!breaker.is_open(), "a third failed: below 50 %");
    }

    #[test]
    fn failures_leave_the_window() {
        let breaker = CircuitBreaker::new(
            "x",
            BreakerPolicy { window: Duration::from_millis(50), ..policy(100) },
            Health::default(),
        );
        for k in 0..9 {
            call(&breaker, &format!("k-{k}"), CallResult::Failed);
        }
        std::thread::sleep(Duration::from_millis(60));
        call(&breaker, "k-9", CallResult::Failed);
        assert!(!breaker.is_open(), "the first nine left the window");
    }

    #[test]
    fn hours_of_rare_failures_of_unique_keys_keep_the_failing_events_bounded() {
        // 50 calls a second for three hours, one in 50 failing, each failure for an event of its own: one
        // failure a second, 10 within the 10 s window. The breaker never opens (2 % is far below 50 %).
        let window = Duration::from_secs(10);
        let breaker =
            CircuitBreaker::new("x", BreakerPolicy { window, minimum_calls: 20, ..policy(1000) }, Health::default());
        let start = Instant::now();
        let (calls_per_second, one_in) = (50u64, 50u64);
        let failures_per_window = window.as_secs() * calls_per_second / one_in;
        let mut largest = 0;
        for call in 0..3 * 3600 * calls_per_second {
            let now = start + Duration::from_millis(call * 1000 / calls_per_second);
            let result = if call % one_in == 0 { CallResult::Failed } else { CallResult::Healthy };
            breaker.record_at(call, false, result, now);
            let state = breaker.state.lock().expect("state");
            let State::Closed(window) = &*state else { panic!("2 % of failures opened the breaker") };
            largest = largest.max(window.failing.len());
        }
        // One window and the slice under way: 11 slices of one failure a second each, at most.
        let bound = usize::try_from(failures_per_window + failures_per_window / u64::from(BUCKETS) + 1).expect("small");
        assert!(largest >= failures_per_window as usize, "the window's failing events are kept ({largest})");
        assert!(largest <= bound, "at most {bound} failing events kept, found {largest}");
    }

    #[test]
    fn rate_zero_disables() {
        let breaker =
            CircuitBreaker::new("x", BreakerPolicy { failure_rate_percent: 0, ..policy(1000) }, Health::default());
        for k in 0..100 {
            call(&breaker, &format!("k-{k}"), CallResult::Failed);
        }
    }
}
