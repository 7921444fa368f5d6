//! What the server remembers, per API: the effects, the answer given to each idempotency key, the
//! calls with each key, the journal of every call, the counters and the current faults. Every change
//! wakes whoever waits on the API (see [`Store::wait_until`]).
//!
//! Checking a key and recording its effect happen under one per-API lock with no `.await` inside, so two
//! concurrent requests with the same key can never both take effect.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::api::Api;
use crate::clock;
use crate::faults::Faults;

/// One request that took effect (the first one with its idempotency key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// The request's `Idempotency-Key` header.
    pub idempotency_key: String,
    /// The request body, as received.
    pub body: Value,
    /// When the request arrived, RFC 3339 in UTC with milliseconds.
    pub received_at: String,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub received_at_unix_ms: u64,
    /// The request's `traceparent` header, if it had one.
    pub traceparent: Option<String>,
    /// The body answered (with the id the API assigned); a replay answers the same.
    pub response: Value,
}

/// One `POST` to an API's endpoint, as kept in the call journal ([`crate::MockApis::calls`],
/// `GET /{api}/calls`): every call is there, malformed, failed and replayed ones included, in the order
/// they arrived, once answered.
///
/// A call whose client went away before the answer is kept too, with the status the server had settled
/// on by then (an injected failure, or the answer of an effect already recorded, as for a hang), or 499
/// (client closed request) when it had settled on none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The `Idempotency-Key` header, trimmed; `None` when missing, blank or not visible ASCII.
    pub idempotency_key: Option<String>,
    /// The status answered.
    pub status: u16,
    /// When the request arrived (before any latency), in milliseconds since the Unix epoch.
    pub received_at_unix_ms: u64,
    /// When the answer was produced (after latency and hangs), in milliseconds since the Unix epoch.
    pub answered_at_unix_ms: u64,
    /// The request body, parsed as JSON; `Null` when it is not JSON.
    pub body: Value,
}

impl Call {
    /// Status recorded for a call whose client went away before the server settled on an answer.
    pub const CLIENT_CLOSED: u16 = 499;
}

/// Counters of one API since start or the last reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiStats {
    /// Every `POST` to the API's endpoint, whatever its answer.
    pub calls: u64,
    /// Requests that took effect (one per idempotency key).
    pub effects: u64,
    /// Requests with an already used key, answered with the first answer and no new effect.
    pub duplicates: u64,
    /// Requests answered with an injected failure, with no effect: 503 or 429 from the rates, and the
    /// statuses of `fail_body_contains` and `fail_first_per_key`.
    pub injected_failures: u64,
    /// Requests held back `hang_ms` by fault injection (they took effect or were duplicates).
    pub hangs: u64,
    /// Requests refused as malformed (400: no `Idempotency-Key`, body not a JSON object).
    pub rejected: u64,
    /// Requests being served right now (latency and hangs included).
    pub in_flight: u64,
    /// Highest `in_flight` seen since start, the last reset or the last
    /// [`reset_peak`](crate::MockApis::reset_peak).
    pub peak_in_flight: u64,
}

/// The counters of every API, as served by `GET /stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Counters of the inventory API.
    pub inventory: ApiStats,
    /// Counters of the payment API.
    pub payment: ApiStats,
    /// Counters of the e-mail API.
    pub email: ApiStats,
    /// Counters of the SMS API.
    pub sms: ApiStats,
}

impl Stats {
    /// The counters of `api`.
    pub fn get(&self, api: Api) -> &ApiStats {
        match api {
            Api::Inventory => &self.inventory,
            Api::Payment => &self.payment,
            Api::Email => &self.email,
            Api::Sms => &self.sms,
        }
    }
}

/// An answer remembered for an idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    /// Status of the first answer.
    pub status: StatusCode,
    /// Body of the first answer.
    pub body: Value,
}

/// What became of a well-formed request that was not failed by fault injection.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// First use of the key: the effect was recorded.
    Applied {
        /// The answer, now remembered for the key.
        answer: Answer,
        /// The effect recorded.
        effect: Effect,
    },
    /// The key was used before: the first answer, no new effect.
    Replayed(Answer),
}

/// A request that arrived, not yet accepted: its key, body and headers.
#[derive(Debug)]
pub(crate) struct Request {
    /// `Idempotency-Key` header.
    pub idempotency_key: String,
    /// Body, a JSON object.
    pub body: Value,
    /// `traceparent` header, if any.
    pub traceparent: Option<String>,
    /// Arrival time.
    pub received: SystemTime,
}

/// The state of every API.
#[derive(Debug)]
pub(crate) struct Store {
    /// One slot per API, indexed by [`Api::index`].
    slots: [Slot; 4],
}

/// What a waiter sees of one API's state (see [`Store::wait_until`]).
#[derive(Debug)]
pub(crate) struct View<'a> {
    /// Counters.
    pub stats: &'a ApiStats,
    /// Effects in the order they were recorded.
    pub effects: &'a [Effect],
    /// The call journal, in arrival order.
    pub calls: &'a [Call],
}

/// The state of one API.
#[derive(Debug)]
struct Slot {
    /// Effects, remembered answers and counters.
    state: Mutex<SlotState>,
    /// Current faults.
    faults: Mutex<Faults>,
    /// Bumped on every change of `state`, to wake waiters.
    changed: watch::Sender<u64>,
}

/// Effects, remembered answers and counters of one API.
#[derive(Debug, Default)]
struct SlotState {
    /// Counters.
    stats: ApiStats,
    /// Effects in the order they were recorded.
    effects: Vec<Effect>,
    /// First answer per idempotency key.
    answers: HashMap<String, Answer>,
    /// Calls per idempotency key that reached the `fail_first_per_key` check.
    attempts: HashMap<String, u64>,
    /// The call journal, in arrival order.
    calls: Vec<Call>,
    /// The arrival number of each entry of `calls`, ascending.
    call_numbers: Vec<u64>,
    /// Arrival number of the next call; never reset, so calls that arrived before a reset can be told
    /// apart.
    next_number: u64,
    /// Calls numbered below this arrived before the last reset and are left out of the journal.
    first_number: u64,
}

impl SlotState {
    /// Inserts `call`, whose arrival number is `number`, into the journal at its arrival position.
    fn journal(&mut self, number: u64, call: Call) {
        if number < self.first_number {
            return;
        }
        let at = self.call_numbers.partition_point(|&n| n < number);
        self.call_numbers.insert(at, number);
        self.calls.insert(at, call);
    }
}

/// Locks `mutex`, going on with the data if a holder panicked (the data stays consistent: every update
/// under these locks is a handful of assignments).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// An empty store whose APIs all start with `faults`.
    pub fn new(faults: Faults) -> Self {
        let faults = faults.sanitized();
        Self {
            slots: Api::ALL.map(|_| Slot {
                state: Mutex::new(SlotState::default()),
                faults: Mutex::new(faults.clone()),
                changed: watch::Sender::new(0),
            }),
        }
    }

    fn slot(&self, api: Api) -> &Slot {
        &self.slots[api.index()]
    }

    /// Runs `update` on the state of `api`, then wakes its waiters.
    fn update<T>(&self, api: Api, update: impl FnOnce(&mut SlotState) -> T) -> T {
        let slot = self.slot(api);
        let result = update(&mut lock(&slot.state));
        slot.changed.send_modify(|version| *version = version.wrapping_add(1));
        result
    }

    /// Counts a call to `api` and marks it in flight until the returned guard is dropped; the guard then
    /// adds the call to the journal.
    pub fn arrive(self: &Arc<Self>, api: Api, arrival: Arrival) -> InFlight {
        let number = self.update(api, |state| {
            let stats = &mut state.stats;
            stats.calls += 1;
            stats.in_flight += 1;
            stats.peak_in_flight = stats.peak_in_flight.max(stats.in_flight);
            let number = state.next_number;
            state.next_number += 1;
            number
        });
        InFlight { store: Arc::clone(self), api, number, arrival: Some(arrival), settled: None, answered: None }
    }

    /// Counts a call with `key` that reached the `fail_first_per_key` check; returns how many there have
    /// been with the key, this one included.
    pub fn count_attempt(&self, api: Api, key: &str) -> u64 {
        self.update(api, |state| {
            let attempts = state.attempts.entry(key.to_owned()).or_default();
            *attempts += 1;
            *attempts
        })
    }

    /// Sets the peak of requests in flight of `api` to the number in flight now.
    pub fn reset_peak(&self, api: Api) {
        self.update(api, |state| {
            state.stats.peak_in_flight = state.stats.in_flight;
        });
    }

    /// Counts a request refused as malformed.
    pub fn count_rejected(&self, api: Api) {
        self.update(api, |state| state.stats.rejected += 1);
    }

    /// Counts a failure answered by fault injection.
    pub fn count_injected_failure(&self, api: Api) {
        self.update(api, |state| state.stats.injected_failures += 1);
    }

    /// Counts a request held back by fault injection.
    pub fn count_hang(&self, api: Api) {
        self.update(api, |state| state.stats.hangs += 1);
    }

    /// Records the effect of `request` if its key is new, or finds the answer given to the key before.
    pub fn apply(&self, api: Api, request: Request) -> Outcome {
        self.update(api, |state| {
            if let Some(answer) = state.answers.get(&request.idempotency_key) {
                state.stats.duplicates += 1;
                return Outcome::Replayed(answer.clone());
            }
            let (status, body) = api.respond(&request.body);
            let answer = Answer { status, body };
            let effect = Effect {
                idempotency_key: request.idempotency_key,
                body: request.body,
                received_at: clock::rfc3339(request.received),
                received_at_unix_ms: clock::unix_ms(request.received),
                traceparent: request.traceparent,
                response: answer.body.clone(),
            };
            state.answers.insert(effect.idempotency_key.clone(), answer.clone());
            state.effects.push(effect.clone());
            state.stats.effects += 1;
            Outcome::Applied { answer, effect }
        })
    }

    /// The current faults of `api`.
    pub fn faults(&self, api: Api) -> Faults {
        lock(&self.slot(api).faults).clone()
    }

    /// Replaces the faults of `api` (rates forced into 0.0–1.0).
    pub fn set_faults(&self, api: Api, faults: Faults) {
        *lock(&self.slot(api).faults) = faults.sanitized();
    }

    /// A snapshot of the counters of `api`.
    pub fn stats(&self, api: Api) -> ApiStats {
        lock(&self.slot(api).state).stats
    }

    /// A snapshot of the counters of every API.
    pub fn all_stats(&self) -> Stats {
        Stats {
            inventory: self.stats(Api::Inventory),
            payment: self.stats(Api::Payment),
            email: self.stats(Api::Email),
            sms: self.stats(Api::Sms),
        }
    }

    /// A snapshot of the effects of `api`, in the order they were recorded.
    pub fn effects(&self, api: Api) -> Vec<Effect> {
        lock(&self.slot(api).state).effects.clone()
    }

    /// A snapshot of the call journal of `api`, in arrival order.
    pub fn calls(&self, api: Api) -> Vec<Call> {
        lock(&self.slot(api).state).calls.clone()
    }

    /// Forgets every effect, key, call and counter (requests still in flight stay counted in
    /// `in_flight`, but will not enter the journal). Faults are kept.
    pub fn reset(&self) {
        for api in Api::ALL {
            self.update(api, |state| {
                let in_flight = state.stats.in_flight;
                let next_number = state.next_number;
                *state = SlotState::default();
                state.stats.in_flight = in_flight;
                state.stats.peak_in_flight = in_flight;
                state.next_number = next_number;
                state.first_number = next_number;
            });
        }
    }

    /// Waits until `check` returns `Some` for the state of `api`, at most `timeout`. `check` runs now and
    /// after every change; on timeout the error holds the last counters.
    pub async fn wait_until<T>(
        &self,
        api: Api,
        timeout: Duration,
        mut check: impl FnMut(&View<'_>) -> Option<T>,
    ) -> Result<T, ApiStats> {
        let slot = self.slot(api);
        // Subscribing before the first check means no change between the check and the wait is missed.
        let mut changes = slot.changed.subscribe();
        let waiting = async {
            loop {
                {
                    let state = lock(&slot.state);
                    let view = View { stats: &state.stats, effects: &state.effects, calls: &state.calls };
                    if let Some(found) = check(&view) {
                        return found;
                    }
                }
                if changes.changed().await.is_err() {
                    // The sender lives as long as the store: cannot happen, but never spin.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, waiting).await.map_err(|_| self.stats(api))
    }
}

/// What the journal keeps of a call from its arrival.
#[derive(Debug)]
pub(crate) struct Arrival {
    /// `Idempotency-Key` header, trimmed, if usable.
    pub idempotency_key: Option<String>,
    /// Body parsed as JSON, `Null` if not JSON.
    pub body: Value,
    /// Arrival time.
    pub received: SystemTime,
}

/// Marks one request of an API as in flight while it lives; when dropped, adds the call to the journal
/// (with its answer, or as abandoned) and ends it, in one change.
#[derive(Debug)]
pub(crate) struct InFlight {
    /// The store to update when the request ends.
    store: Arc<Store>,
    /// The API the request is for.
    api: Api,
    /// Arrival number of the call, its place in the journal.
    number: u64,
    /// What the journal keeps of the call; taken when it is recorded.
    arrival: Option<Arrival>,
    /// The status the server settled on, if it did.
    settled: Option<u16>,
    /// The status answered and when, once answered.
    answered: Option<(u16, SystemTime)>,
}

impl InFlight {
    /// Notes the status the call will be answered, to record should the client go away before the answer.
    pub fn settle(&mut self, status: StatusCode) {
        self.settled = Some(status.as_u16());
    }

    /// Notes that the call was answered `status` now.
    pub fn answer(&mut self, status: StatusCode) {
        self.answered = Some((status.as_u16(), SystemTime::now()));
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let (status, answered) =
            self.answered.unwrap_or_else(|| (self.settled.unwrap_or(Call::CLIENT_CLOSED), SystemTime::now()));
        let arrival = self.arrival.take();
        let number = self.number;
        self.store.update(self.api, |state| {
            if let Some(arrival) = arrival {
                state.journal(
                    number,
                    Call {
                        idempotency_key: arrival.idempotency_key,
                        status,
                        received_at_unix_ms: clock::unix_ms(arrival.received),
                        answered_at_unix_ms: clock::unix_ms(answered),
                        body: arrival.body,
                    },
                );
            }
            state.stats.in_flight = state.stats.in_flight.saturating_sub(1);
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn arrival(key: &str) -> Arrival {
        Arrival { idempotency_key: Some(key.to_owned()), body: json!({"n": key}), received: SystemTime::now() }
    }

    fn request(key: &str) -> Request {
        Request {
            idempotency_key: key.to_owned(),
            body: json!({"order_id": "o-1"}),
            traceparent: None,
            received: SystemTime::now(),
        }
    }

    #[test]
    fn a_key_takes_effect_once() {
        let store = Store::new(Faults::none());
        let first = match store.apply(Api::Inventory, request("k")) {
            Outcome::Applied { answer, .. } => answer,
            Outcome::Replayed(_) => panic!("first use replayed"),
        };
        match store.apply(Api::Inventory, request("k")) {
            Outcome::Replayed(answer) => assert_eq!(answer, first),
            Outcome::Applied { .. } => panic!("second use applied"),
        }
        // Keys are per API.
        assert!(matches!(store.apply(Api::Payment, request("k")), Outcome::Applied { .. }));
        let stats = store.stats(Api::Inventory);
        assert_eq!((stats.effects, stats.duplicates), (1, 1));
        assert_eq!(store.effects(Api::Inventory).len(), 1);
    }

    #[test]
    fn in_flight_follows_the_guards_and_survives_reset() {
        let store = Arc::new(Store::new(Faults::none()));
        let a = store.arrive(Api::Sms, arrival("a"));
        let b = store.arrive(Api::Sms, arrival("b"));
        assert_eq!(store.stats(Api::Sms).peak_in_flight, 2);
        drop(a);
        store.reset();
        let stats = store.stats(Api::Sms);
        assert_eq!((stats.calls, stats.in_flight, stats.peak_in_flight), (0, 1, 1));
        drop(b);
        assert_eq!(store.stats(Api::Sms).in_flight, 0);
    }

    #[tokio::test]
    async fn waiting_wakes_on_change_and_times_out() {
        let store = Arc::new(Store::new(Faults::none()));
        let writer = Arc::clone(&store);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            writer.apply(Api::Email, request("a"));
        });
        let count = store
            .wait_until(Api::Email, Duration::from_secs(5), |view| {
                (!view.effects.is_empty()).then_some(view.effects.len())
            })
            .await;
        assert_eq!(count, Ok(1));
        let timed_out = store
            .wait_until(Api::Email, Duration::from_millis(10), |view| (view.stats.effects >= 2).then_some(()))
            .await;
        assert_eq!(timed_out.map_err(|stats| stats.effects), Err(1));
    }

    #[test]
    fn the_journal_keeps_arrival_order_and_abandoned_calls() {
        let store = Arc::new(Store::new(Faults::none()));
        let mut first = store.arrive(Api::Payment, arrival("first"));
        let mut second = store.arrive(Api::Payment, arrival("second"));
        let mut third = store.arrive(Api::Payment, arrival("third"));
        let fourth = store.arrive(Api::Payment, arrival("fourth"));
        // Answered out of order: the journal still lists them as they arrived.
        third.answer(StatusCode::CREATED);
        drop(third);
        second.answer(StatusCode::SERVICE_UNAVAILABLE);
        drop(second);
        // Settled on an answer, then abandoned by its client: kept with that status.
        first.settle(StatusCode::TOO_MANY_REQUESTS);
        drop(first);
        // Abandoned before settling on anything.
        drop(fourth);
        let calls = store.calls(Api::Payment);
        let summary: Vec<_> = calls.iter().map(|call| (call.idempotency_key.as_deref(), call.status)).collect();
        assert_eq!(
            summary,
            [(Some("first"), 429), (Some("second"), 503), (Some("third"), 201), (Some("fourth"), Call::CLIENT_CLOSED),]
        );
        assert_eq!(calls[1].body, json!({"n": "second"}));
        assert!(calls.iter().all(|call| call.answered_at_unix_ms >= call.received_at_unix_ms));
        assert_eq!(store.stats(Api::Payment).in_flight, 0);
        assert!(store.calls(Api::Sms).is_empty());
    }

    #[test]
    fn reset_clears_the_journal_and_attempts_and_drops_earlier_calls() {
        let store = Arc::new(Store::new(Faults::none()));
        assert_eq!(store.count_attempt(Api::Email, "k"), 1);
        assert_eq!(store.count_attempt(Api::Email, "k"), 2);
        assert_eq!(store.count_attempt(Api::Email, "other"), 1);
        assert_eq!(store.count_attempt(Api::Sms, "k"), 1, "attempts are per API");
        drop(store.arrive(Api::Email, arrival("done")));
        let straggler = store.arrive(Api::Email, arrival("straggler"));
        store.reset();
        assert!(store.calls(Api::Email).is_empty());
        assert_eq!(store.count_attempt(Api::Email, "k"), 1);
        let after = store.arrive(Api::Email, arrival("after"));
        // Arrived before the reset: counted out of flight, left out of the new journal.
        drop(straggler);
        drop(after);
        let keys: Vec<_> = store.calls(Api::Email).into_iter().map(|call| call.idempotency_key).collect();
        assert_eq!(keys, [Some("after".to_owned())]);
        assert_eq!(store.stats(Api::Email).in_flight, 0);
    }

    #[test]
    fn reset_peak_starts_from_what_is_in_flight() {
        let store = Arc::new(Store::new(Faults::none()));
        let a = store.arrive(Api::Inventory, arrival("a"));
        let b = store.arrive(Api::Inventory, arrival("b"));
        let c = store.arrive(Api::Inventory, arrival("c"));
        drop(a);
        drop(b);
        assert_eq!(store.stats(Api::Inventory).peak_in_flight, 3);
        store.reset_peak(Api::Inventory);
        let stats = store.stats(Api::Inventory);
        assert_eq!((stats.in_flight, stats.peak_in_flight, stats.calls), (1, 1, 3));
        let d = store.arrive(Api::Inventory, arrival("d"));
        assert_eq!(store.stats(Api::Inventory).peak_in_flight, 2);
        drop((c, d));
        assert_eq!(store.stats(Api::Inventory).peak_in_flight, 2);
    }
}
