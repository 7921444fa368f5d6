//! Adaptive concurrency: how many calls one API gets at once, found by watching how it answers.
//!
//! A fixed `max_in_flight` is right for one API and wrong for the next: a payment provider that slows down
//! beyond 50 concurrent requests, or answers 429, gets 512 at once from a consumer tuned for a fast API. So
//! each API client holds an [`AdaptiveConcurrency`] limit that moves between 1 and `apis.<name>.max_in_flight`
//! (its ceiling), adjusted once per round trip (a *window*: at least the API's unloaded latency, and until a
//! call that started in it has ended, so that each window judges the limit it began with):
//!
//! * **slow start**: from [`INITIAL_LIMIT`] (enough for a few partitions' calls at once even when the API
//!   answers only after seconds, so that the first round trips do not hold every partition up), the limit
//!   doubles after each window in which it was reached and latency stayed near its floor, so that a fast API
//!   is at its ceiling within six round trips;
//! * **additive increase**: after the first back-off, it grows by one per such window instead;
//! * **multiplicative decrease**: a window in which the API answered 429 or 503, a call timed out, or the
//!   mean latency rose past [`LATENCY_TOLERANCE`] × the floor while the limit was reached halves it (429, 503,
//!   timeouts: the API said so) or takes a tenth off (latency), never below 1. A latency that rises while
//!   courier does not use its whole limit is not courier's load: at a trickle of events, the noise of single
//!   calls would otherwise wear the limit down, and the next burst would find it low;
//! * **decay while idle**: a limit is only known to be right while it is used. When a call comes after the
//!   API had no call in flight for at least the idle period (`apis.<name>.adaptive_idle_ms`), the limit is
//!   halved once per whole idle period that passed, never below the restart value min(limit,
//!   [`INITIAL_LIMIT`]) (TCP's congestion window after idle: RFC 5681 §4.1, RFC 2861, RFC 7661). After a quiet
//!   minute the first wave into an API is the restart value, as at start-up, so an API that went down in the
//!   meantime meets a few calls (and its breaker opens on their answers) rather than hundreds; a short pause
//!   costs one halving. The limit then doubles per round trip again up to the height it had before the idle
//!   period (as slow start does up to TCP's threshold), and goes on as before from there. A limit in use
//!   never decays: the period counts only while no call is in flight or waiting for a slot, and it is judged
//!   when a call asks for a slot (no timer).
//!
//! The floor is the lowest window mean seen: the API's latency when courier does not load it. When the limit
//! is down to 1 and the latency is still high, the API is slow for everyone, not because of courier: the
//! floor becomes that latency. This is the adaptive request concurrency of Vector's HTTP sinks (after
//! Netflix's concurrency-limits), with key order left to the dispatcher: a call waits here only for a slot
//! of its API.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
// Tokio's clock: the same as std's, but the tests can pause it.
use tokio::time::Instant;

use crate::telemetry::metrics::{self, Label};

/// The limit an adaptive API starts at (or its ceiling, when lower).
pub const INITIAL_LIMIT: usize = 16;

/// Mean latency, as a multiple of the floor, past which a window counts as loaded.
pub const LATENCY_TOLERANCE: f64 = 1.5;

/// Share kept of the limit after a window with a rising latency.
const LATENCY_DECREASE: f64 = 0.9;

/// Share kept of the limit after a window with a 429, a 503 or a timeout.
const BACKPRESSURE_DECREASE: f64 = 0.5;

/// The shortest window: below it, windows would be too short to hold a call.
const MIN_WINDOW: Duration = Duration::from_millis(1);

/// How one call ended, for the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallSignal {
    /// An answer (any status but 429 and 503): its latency is a sample.
    Answered,
    /// 429, 503 or a timeout: the API is overloaded.
    Backpressure,
    /// No answer for another reason (a refused connection, a certificate): says nothing about load.
    Ignored,
}

/// The concurrency limit of one API (see the module).
#[derive(Debug)]
pub struct AdaptiveConcurrency {
    /// The API, for metrics and logs.
    api: Label,
    /// Free slots: the limit minus the calls in flight (minus `debt`).
    slots: std::sync::Arc<Semaphore>,
    /// The highest limit (`apis.<name>.max_in_flight`).
    ceiling: usize,
    /// Whether the limit adapts; when not, it stays at the ceiling.
    adaptive: bool,
    /// The idle period after which the limit decays (see the module); `None`: it never does.
    idle: Option<Duration>,
    /// Everything that changes per call.
    state: Mutex<LimitState>,
}

/// The limit and the window being observed.
#[derive(Debug)]
struct LimitState {
    /// The current limit.
    limit: usize,
    /// Slots to take out of circulation as calls end (the limit went down while they were in flight).
    debt: usize,
    /// Whether the limit still doubles (no back-off yet).
    slow_start: bool,
    /// The lowest window mean latency seen.
    floor: Option<Duration>,
    /// When the current window started.
    window_started: Instant,
    /// Calls answered in the window, and the sum of their latencies.
    answered: u32,
    /// Sum of the answered calls' latencies.
    latency_sum: Duration,
    /// Whether a call of the window found every slot taken.
    saturated: bool,
    /// Whether the API pushed back in the window.
    backpressure: bool,
    /// Calls holding a slot or waiting for one.
    active: usize,
    /// When the last call ended (or asked for a slot): the idle period runs from it while `active` is 0.
    last_active: Instant,
    /// The limit before it last decayed while idle: it doubles back up to it (0: it does not).
    regrow_to: usize,
}

/// A slot held for one call; [`CallSlot::finish`] hands it back with how the call went.
#[derive(Debug)]
pub struct CallSlot<'a> {
    /// The limit it belongs to.
    limit: &'a AdaptiveConcurrency,
    /// The semaphore permit (`None` only if the semaphore was closed, which it never is).
    permit: Option<OwnedSemaphorePermit>,
    /// When the call started.
    started: Instant,
    /// Whether the call still counts as active: from the request for a slot (adaptive limits only) until the
    /// call is finished or given up.
    active: bool,
}

impl AdaptiveConcurrency {
    /// A limit for `api` between 1 and `ceiling`, starting at [`INITIAL_LIMIT`] when `adaptive`, else fixed
    /// at `ceiling`; an adaptive limit decays after each `idle` period without calls (never, when `None`).
    pub fn new(api: Label, ceiling: usize, adaptive: bool, idle: Option<Duration>) -> Self {
        let ceiling = ceiling.max(1);
        let limit = if adaptive { INITIAL_LIMIT.min(ceiling) } else { ceiling };
        metrics::concurrency_limit(&api, limit);
        Self {
            api,
            slots: std::sync::Arc::new(Semaphore::new(limit)),
            ceiling,
            adaptive,
            idle,
            state: Mutex::new(LimitState {
                limit,
                debt: 0,
                slow_start: true,
                floor: None,
                window_started: Instant::now(),
                answered: 0,
                latency_sum: Duration::ZERO,
                saturated: false,
                backpressure: false,
                active: 0,
                last_active: Instant::now(),
                regrow_to: 0,
            }),
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimitState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a slot.
    pub async fn acquire(&self) -> CallSlot<'_> {
        // Counted as active from here: dropped while it waits (its caller gave up), the slot still ends it.
        let mut slot = CallSlot { limit: self, permit: None, started: Instant::now(), active: self.adaptive };
        if self.adaptive {
            self.begin();
        }
        slot.permit = match std::sync::Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                if self.adaptive {
                    self.lock().saturated = true;
                }
                // The semaphore is never closed.
                std::sync::Arc::clone(&self.slots).acquire_owned().await.ok()
            }
        };
        if self.adaptive && self.slots.available_permits() == 0 {
            self.lock().saturated = true;
        }
        slot.started = Instant::now();
        slot
    }

    /// A call asks for a slot: after an idle period the limit decays first (see the module); the call counts
    /// as active.
    fn begin(&self) {
        let mut state = self.lock();
        if state.active == 0
            && let Some(idle) = self.idle
        {
            let periods = state.last_active.elapsed().as_nanos() / idle.as_nanos().max(1);
            if periods > 0 {
                self.decay(&mut state, periods);
            }
        }
        state.active += 1;
    }

    /// Halves the limit once per idle period of `periods`, never below min(limit, [`INITIAL_LIMIT`]), and
    /// starts a new window with the call that found it idle.
    fn decay(&self, state: &mut LimitState, periods: u128) {
        let old = state.limit;
        let halvings = u32::try_from(periods).unwrap_or(u32::MAX).min(usize::BITS - 1);
        let new = (old >> halvings).max(INITIAL_LIMIT.min(old));
        if new < old {
            state.regrow_to = state.regrow_to.max(old);
            self.set_limit(state, new);
            tracing::debug!(api = %self.api, limit = new, previous = old, "concurrency limit decayed while idle");
        }
        state.window_started = Instant::now();
        state.answered = 0;
        state.latency_sum = Duration::ZERO;
        state.saturated = false;
        state.backpressure = false;
    }

    /// A call that held `permit` (or still waited for one) was given up: it no longer counts as active, and
    /// its slot goes back unless the limit went down while it was held.
    fn abandon(&self, permit: Option<OwnedSemaphorePermit>) {
        let mut state = self.lock();
        state.active = state.active.saturating_sub(1);
        state.last_active = Instant::now();
        if let Some(permit) = permit
            && state.debt > 0
        {
            state.debt -= 1;
            permit.forget();
        }
    }

    /// Sets the limit to `new`, adding slots or taking them out of circulation (as calls end, for those in
    /// flight).
    fn set_limit(&self, state: &mut LimitState, new: usize) {
        let old = state.limit;
        if new > old {
            let grow = new - old;
            let repaid = grow.min(state.debt);
            state.debt -= repaid;
            self.slots.add_permits(grow - repaid);
        } else if new < old {
            let shrink = old - new;
            let forgotten = self.slots.forget_permits(shrink);
            state.debt += shrink - forgotten;
        }
        if new != old {
            state.limit = new;
            metrics::concurrency_limit(&self.api, new);
        }
    }

    /// A call that started at `started` ended with `signal`: the sample joins the window, and the window,
    /// when it is over, moves the limit. Only calls that started in the window are its samples: a call that
    /// started before ran under the previous limit (which its answer already moved, or which it would move
    /// twice), and judging the new limit by it would let slow start double again before the latency of the
    /// doubled load is seen (overshooting into 429s).
    fn record(&self, started: Instant, signal: CallSignal) -> bool {
        let latency = started.elapsed();
        let mut state = self.lock();
        state.active = state.active.saturating_sub(1);
        state.last_active = Instant::now();
        let in_window = started >= state.window_started;
        match signal {
            CallSignal::Answered if in_window => {
                state.answered += 1;
                state.latency_sum += latency;
            }
            CallSignal::Backpressure if in_window => state.backpressure = true,
            CallSignal::Answered | CallSignal::Backpressure | CallSignal::Ignored => {}
        }
        let window = state.floor.unwrap_or(latency).max(MIN_WINDOW);
        if state.window_started.elapsed() >= window && (state.answered > 0 || state.backpressure) {
            self.adjust(&mut state);
        }
        // Hand the slot back unless the limit went down while it was in flight.
        if state.debt > 0 {
            state.debt -= 1;
            return false;
        }
        true
    }

    /// Ends the window: moves the limit (see the module) and starts the next window.
    fn adjust(&self, state: &mut LimitState) {
        let mean = (state.answered > 0).then(|| state.latency_sum / state.answered);
        if let Some(mean) = mean {
            state.floor = Some(state.floor.map_or(mean, |floor| floor.min(mean)));
        }
        let floor = state.floor.unwrap_or(Duration::MAX);
        let loaded = mean.is_some_and(|mean| mean.as_secs_f64() > floor.as_secs_f64() * LATENCY_TOLERANCE);
        let old = state.limit;
        let new = if state.backpressure {
            state.slow_start = false;
            state.regrow_to = 0;
            scale(old, BACKPRESSURE_DECREASE)
        } else if loaded && state.saturated {
            state.slow_start = false;
            state.regrow_to = 0;
            if old == 1 {
                // At one call at a time the latency is the API's own: that is the floor now.
                state.floor = mean;
            }
            scale(old, LATENCY_DECREASE)
        } else if state.saturated && old < state.regrow_to {
            // Back up to the height it had before it decayed while idle, doubling.
            let grown = old.saturating_mul(2).min(state.regrow_to);
            if grown == state.regrow_to {
                state.regrow_to = 0;
            }
            grown.min(self.ceiling)
        } else if state.saturated {
            if state.slow_start { old.saturating_mul(2) } else { old + 1 }.min(self.ceiling)
        } else {
            old
        };
        self.set_limit(state, new);
        if new != old {
            tracing::debug!(
                api = %self.api, limit = new, previous = old,
                mean_ms = mean.map(|m| m.as_secs_f64() * 1000.0), floor_ms = floor.as_secs_f64() * 1000.0,
                backpressure = state.backpressure, "concurrency limit moved"
            );
        }
        state.window_started = Instant::now();
        state.answered = 0;
        state.latency_sum = Duration::ZERO;
        state.saturated = false;
        state.backpressure = false;
    }
}

/// `limit` × `share`, at least 1.
fn scale(limit: usize, share: f64) -> usize {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let scaled = (limit as f64 * share).floor() as usize;
    scaled.max(1)
}

impl CallSlot<'_> {
    /// The call ended with `signal`: hands the slot back and lets the limit learn from it.
    pub fn finish(mut self, signal: CallSignal) {
        let permit = self.permit.take();
        if !self.active {
            return;
        }
        self.active = false;
        let keep = self.limit.record(self.started, signal);
        if !keep && let Some(permit) = permit {
            permit.forget();
        }
    }
}

impl Drop for CallSlot<'_> {
    /// A slot dropped unfinished (the call was given up, or never got its slot) ends the call without a
    /// sample.
    fn drop(&mut self) {
        if self.active {
            self.limit.abandon(self.permit.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The idle period of the tests: the default of `apis.<name>.adaptive_idle_ms`.
    const IDLE: Option<Duration> = Some(Duration::from_secs(1));

    /// Slots a burst of calls gets at once (without waiting): the limit it meets.
    async fn burst(limit: &AdaptiveConcurrency) -> usize {
        let first = limit.acquire().await;
        let admitted = limit.slots.available_permits() + 1;
        first.finish(CallSignal::Ignored);
        admitted
    }

    /// Runs `calls` windows of calls through `limit`, each call taking `latency(limit)` and ending with
    /// `signal(limit)`, filling every slot; returns the limit after each window.
    async fn windows(
        limit: &AdaptiveConcurrency,
        count: usize,
        latency: impl Fn(usize) -> Duration,
        signal: impl Fn(usize) -> CallSignal,
    ) -> Vec<usize> {
        let mut seen = Vec::new();
        for _ in 0..count {
            let n = limit.limit();
            let mut slots = Vec::new();
            for _ in 0..n {
                slots.push(limit.acquire().await);
            }
            tokio::time::sleep(latency(n)).await;
            for slot in slots {
                slot.finish(signal(n));
            }
            seen.push(limit.limit());
        }
        seen
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_api_gets_the_ceiling_within_six_round_trips() {
        let limit = AdaptiveConcurrency::new(Label::from("fast"), 512, true, IDLE);
        let seen = windows(&limit, 6, |_| Duration::from_millis(20), |_| CallSignal::Answered).await;
        assert_eq!(seen.last(), Some(&512), "doubled each window up to the ceiling: {seen:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_api_with_a_capacity_is_held_near_it() {
        // Latency is 20 ms up to 16 calls in flight and grows linearly beyond; 429 past 32.
        let latency = |n: usize| Duration::from_millis(20 * n.max(16) as u64 / 16);
        let signal = |n: usize| if n > 32 { CallSignal::Backpressure } else { CallSignal::Answered };
        let limit = AdaptiveConcurrency::new(Label::from("capacity"), 512, true, IDLE);
        let seen = windows(&limit, 200, latency, signal).await;
        let settled = &seen[50..];
        assert!(settled.iter().all(|&n| (14..=25).contains(&n)), "held near 16: {settled:?}");
        assert!(settled.iter().filter(|&&n| n > 16).count() > 10, "it probes past the capacity: {settled:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn backpressure_halves_the_limit_and_it_never_goes_below_one() {
        let limit = AdaptiveConcurrency::new(Label::from("busy"), 64, true, IDLE);
        windows(&limit, 8, |_| Duration::from_millis(10), |_| CallSignal::Answered).await;
        assert_eq!(limit.limit(), 64);
        let seen = windows(&limit, 10, |_| Duration::from_millis(10), |_| CallSignal::Backpressure).await;
        assert_eq!(&seen[..3], &[32, 16, 8], "halved per window");
        assert_eq!(seen.last(), Some(&1), "never below one");
    }

    #[tokio::test(start_paused = true)]
    async fn an_api_slow_for_everyone_is_not_throttled_to_nothing() {
        let limit = AdaptiveConcurrency::new(Label::from("slower"), 64, true, IDLE);
        windows(&limit, 8, |_| Duration::from_millis(10), |_| CallSignal::Answered).await;
        // The API becomes five times slower whatever the load: the limit falls to 1, then learns the new floor
        // and grows again.
        let seen = windows(&limit, 200, |_| Duration::from_millis(50), |_| CallSignal::Answered).await;
        assert_eq!(seen.last(), Some(&64), "back at the ceiling once the new latency is the floor: {seen:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn slow_calls_at_a_trickle_do_not_wear_the_limit_down() {
        let limit = AdaptiveConcurrency::new(Label::from("quiet"), 512, true, IDLE);
        // One call at a time, every other one three times slower: latency noise, not courier's load.
        for n in 0..50_u64 {
            let slot = limit.acquire().await;
            tokio::time::sleep(Duration::from_millis(if n % 2 == 0 { 10 } else { 30 })).await;
            slot.finish(CallSignal::Answered);
        }
        assert_eq!(limit.limit(), INITIAL_LIMIT, "unused, the limit neither grows nor shrinks");
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_quiet_minute_a_burst_meets_the_restart_value_and_regrows_within_two_seconds() {
        // An API answering in 200 ms: slow enough that six round trips are over a second.
        let round_trip = Duration::from_millis(200);
        let limit = AdaptiveConcurrency::new(Label::from("idle"), 512, true, IDLE);
        windows(&limit, 6, |_| round_trip, |_| CallSignal::Answered).await;
        assert_eq!(limit.limit(), 512);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(burst(&limit).await, INITIAL_LIMIT, "the first wave after idle is the restart value");
        let started = Instant::now();
        let mut seen = Vec::new();
        while limit.limit() < 512 && seen.len() < 20 {
            seen.extend(windows(&limit, 1, |_| round_trip, |_| CallSignal::Answered).await);
        }
        assert_eq!(seen, vec![32, 64, 128, 256, 512], "doubled per round trip");
        assert!(started.elapsed() <= Duration::from_secs(2), "at the ceiling after {:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_pause_halves_the_limit_once_per_idle_period() {
        let limit = AdaptiveConcurrency::new(Label::from("pause"), 512, true, IDLE);
        windows(&limit, 6, |_| Duration::from_millis(20), |_| CallSignal::Answered).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(burst(&limit).await, 256, "one idle period: halved once");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(burst(&limit).await, 64, "two more: halved twice");
        let limit = AdaptiveConcurrency::new(Label::from("never"), 512, true, None);
        windows(&limit, 6, |_| Duration::from_millis(20), |_| CallSignal::Answered).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(burst(&limit).await, 512, "without an idle period it never decays");
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_that_backed_off_regrows_to_its_height_before_idle_then_by_one() {
        let limit = AdaptiveConcurrency::new(Label::from("capped"), 512, true, IDLE);
        windows(&limit, 6, |_| Duration::from_millis(20), |_| CallSignal::Answered).await;
        windows(&limit, 3, |_| Duration::from_millis(20), |_| CallSignal::Backpressure).await;
        assert_eq!(limit.limit(), 64);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(burst(&limit).await, INITIAL_LIMIT);
        let seen = windows(&limit, 4, |_| Duration::from_millis(20), |_| CallSignal::Answered).await;
        assert_eq!(seen, vec![32, 64, 65, 66], "doubles from 16 back to 64, then grows by one");
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_in_steady_use_never_decays() {
        let limit = AdaptiveConcurrency::new(Label::from("steady"), 64, true, IDLE);
        // Back-to-back windows for a minute.
        let seen = windows(&limit, 3000, |_| Duration::from_millis(20), |_| CallSignal::Answered).await;
        assert!(seen[5..].iter().all(|&n| n == 64), "at the ceiling throughout");
        // Gaps shorter than the idle period between calls.
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(900)).await;
            burst(&limit).await;
        }
        assert_eq!(limit.limit(), 64, "gaps shorter than the idle period do not count");
        // One call in flight for a minute: the API is in use.
        let long = limit.acquire().await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(burst(&limit).await, 63, "a call in flight keeps the limit");
        long.finish(CallSignal::Answered);
        // A caller that gave up waiting for a slot ends its call too: the idle period still runs.
        let held: Vec<_> = futures::future::join_all((0..64).map(|_| limit.acquire())).await;
        assert!(tokio::time::timeout(Duration::from_millis(10), limit.acquire()).await.is_err(), "no slot free");
        drop(held);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(burst(&limit).await, INITIAL_LIMIT, "idle once every call ended or was given up");
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_limit_stays_at_the_ceiling() {
        let limit = AdaptiveConcurrency::new(Label::from("fixed"), 8, false, IDLE);
        let seen = windows(&limit, 5, |_| Duration::from_millis(10), |_| CallSignal::Backpressure).await;
        assert_eq!(seen, vec![8; 5]);
    }
}
