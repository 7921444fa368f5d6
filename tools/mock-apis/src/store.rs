//! What the server remembers of each API, under one lock: effects, declines, the first answer per
//! idempotency key, calls per key, released orders, the call journal, counters and faults. Checking a key
//! and recording its effect happen under that lock with no `.await` inside, so two concurrent requests
//! with one key never both take effect. Every change wakes whoever waits ([`Store::wait_until`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::api::{Answer, Api, Outcome, Reservation, order_id_text, spec};
use crate::faults::Faults;

/// A request that took effect (the first with its idempotency key), or one that was declined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// The request's `Idempotency-Key`.
    pub idempotency_key: String,
    /// The body as received (a release's gets the path's `order_id` when it leaves it out).
    pub body: Value,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub received_at_unix_ms: u64,
    /// The request's `traceparent` header, if any.
    pub traceparent: Option<String>,
    /// The request's `content-type` and CloudEvents binary-mode (`ce-*`) headers, by lower-case name.
    pub cloudevent: BTreeMap<String, String>,
    /// The body answered (a replay answers the same).
    pub response: Value,
}

/// One `POST` to an API, as kept in its call journal once answered: every call, malformed, failed and
/// replayed ones included, in arrival order. A call whose client left first keeps the status the server
/// had settled on by then, or 499 (client closed request).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The `Idempotency-Key`, trimmed; `None` when missing, blank or not visible ASCII.
    pub idempotency_key: Option<String>,
    /// The status answered.
    pub status: u16,
    /// When the request arrived (before any latency), in milliseconds since the Unix epoch.
    pub received_at_unix_ms: u64,
    /// When the answer was produced (after latency and hangs), in milliseconds since the Unix epoch.
    pub answered_at_unix_ms: u64,
    /// The body as JSON; `Null` when it is not JSON.
    pub body: Value,
}

/// Counters of one API since start (`GET /stats`). Once answered, each call is also counted in exactly one
/// of `rejected`, `unauthorized`, `injected_failures`, `effects`, `declines`, `refused` and `duplicates`,
/// but for an `already_released` answer, counted only in `calls`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiStats {
    /// Every `POST` to the API.
    pub calls: u64,
    /// Requests that took effect (one per idempotency key).
    pub effects: u64,
    /// Requests declined by a business rule and remembered under their key (402 `card_declined`).
    pub declines: u64,
    /// Requests refused by a business rule, not remembered (409 `unknown_sku`, 404 `reservation_not_found`).
    pub refused: u64,
    /// Requests with a used key, answered the first answer again.
    pub duplicates: u64,
    /// Requests answered an injected failure.
    pub injected_failures: u64,
    /// Requests held back `hang_ms` (they took effect or were duplicates).
    pub hangs: u64,
    /// Requests whose connection was reset instead of answered (they took effect or were duplicates).
    pub resets: u64,
    /// Malformed requests answered 400.
    pub rejected: u64,
    /// Requests answered 401 for lacking the credentials the API requires.
    pub unauthorized: u64,
    /// Requests being served now.
    pub in_flight: u64,
    /// Highest `in_flight` since start.
    pub peak_in_flight: u64,
}

/// The state of one API.
#[derive(Debug, Default)]
pub(crate) struct ApiState {
    /// Counters.
    pub stats: ApiStats,
    /// Effects, in the order they were recorded.
    pub effects: Vec<Effect>,
    /// Declines, in the order they were recorded.
    pub declines: Vec<Effect>,
    /// The first answer per idempotency key.
    answers: HashMap<String, (StatusCode, Value)>,
    /// Calls per idempotency key that reached the `fail_first_per_key` check.
    attempts: HashMap<String, u64>,
    /// Every call in arrival order, and whether it was answered yet.
    journal: Vec<(Call, bool)>,
    /// Per released order id, how many reservations the inventory API held when it was last released.
    released: HashMap<String, usize>,
    /// Current faults.
    pub faults: Faults,
}

impl ApiState {
    /// The answered calls, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.journal.iter().filter(|(_, answered)| *answered).map(|(call, _)| call.clone()).collect()
    }
}

/// The state of every API, indexed by [`Api`].
#[derive(Debug)]
pub(crate) struct Store {
    /// One state per API.
    apis: Mutex<[ApiState; Api::ALL.len()]>,
    /// Sent on every change.
    changed: watch::Sender<()>,
}

/// Locks `mutex`, going on if a holder panicked (each update under these locks is a few assignments).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

impl Store {
    /// An empty store whose APIs start with `faults`.
    pub fn new(faults: Faults) -> Self {
        let faults = faults.sanitized();
        let apis = Api::ALL.map(|_| ApiState { faults: faults.clone(), ..ApiState::default() });
        Self { apis: Mutex::new(apis), changed: watch::Sender::new(()) }
    }

    /// Runs `read` on the state of `api`.
    pub fn read<T>(&self, api: Api, read: impl FnOnce(&ApiState) -> T) -> T {
        read(&lock(&self.apis)[api as usize])
    }

    /// Runs `update` on the state of `api`, then wakes the waiters.
    pub fn update<T>(&self, api: Api, update: impl FnOnce(&mut ApiState) -> T) -> T {
        self.update_all(|apis| update(&mut apis[api as usize]))
    }

    /// Runs `update` on the state of every API, then wakes the waiters.
    fn update_all<T>(&self, update: impl FnOnce(&mut [ApiState; Api::ALL.len()]) -> T) -> T {
        let result = update(&mut lock(&self.apis));
        self.changed.send_replace(());
        result
    }

    /// Counts a call to `api` with `key` and `body` and keeps it in flight until the guard drops, which
    /// journals it.
    pub fn arrive(self: &Arc<Self>, api: Api, key: Option<String>, body: Value, received: SystemTime) -> InFlight {
        let index = self.update(api, |state| {
            state.stats.calls += 1;
            state.stats.in_flight += 1;
            state.stats.peak_in_flight = state.stats.peak_in_flight.max(state.stats.in_flight);
            let received_at_unix_ms = unix_ms(received);
            let call = Call { idempotency_key: key, status: 0, received_at_unix_ms, answered_at_unix_ms: 0, body };
            state.journal.push((call, false));
            state.journal.len() - 1
        });
        InFlight { store: Arc::clone(self), api, index, status: 499 }
    }

    /// Counts a call with `key` reaching the `fail_first_per_key` check; how many there were, this one too.
    pub fn attempt(&self, api: Api, key: &str) -> u64 {
        self.update(api, |state| {
            let attempts = state.attempts.entry(key.to_owned()).or_default();
            *attempts += 1;
            *attempts
        })
    }

    /// Answers `request` (its `response` left `null`) by the first answer to its key, or decides it by the
    /// business rules of `api`, recording its effect or decline and remembering the answer unless refused.
    pub fn apply(&self, api: Api, mut request: Effect) -> Answer {
        self.update_all(|apis| {
            let order = (api == Api::InventoryRelease).then(|| order_id_text(&request.body["order_id"])).flatten();
            let same_order = |effect: &&Effect| order_id_text(&effect.body["order_id"]) == order;
            let reservations =
                order.as_ref().map_or(0, |_| apis[Api::Inventory as usize].effects.iter().filter(same_order).count());
            let state = &mut apis[api as usize];
            if let Some((status, body)) = state.answers.get(&request.idempotency_key) {
                state.stats.duplicates += 1;
                return (Outcome::Replayed, *status, body.clone());
            }
            let reservation = match order.as_ref().and_then(|order| state.released.get(order)) {
                _ if reservations == 0 => Reservation::Missing,
                Some(&released) if released >= reservations => Reservation::Released,
                _ => Reservation::Held,
            };
            let (outcome, status, answer) = (spec(api).decide)(&request.body, reservation);
            request.response = answer.clone();
            match outcome {
                Outcome::Refused => state.stats.refused += 1,
                _ => drop(state.answers.insert(request.idempotency_key.clone(), (status, answer.clone()))),
            }
            if outcome == Outcome::Effect {
                state.stats.effects += 1;
                state.effects.push(request);
                if let Some(order) = order {
                    state.released.insert(order, reservations);
                }
            } else if outcome == Outcome::Decline {
                state.stats.declines += 1;
                state.declines.push(request);
            }
            (outcome, status, answer)
        })
    }

    /// Waits until `check` returns `Some` for the state of `api`, at most `timeout`; `check` runs now and
    /// after every change. The error says what was `wanted` and gives the counters then.
    pub async fn wait_until<T>(
        &self,
        api: Api,
        timeout: Duration,
        wanted: &str,
        mut check: impl FnMut(&ApiState) -> Option<T>,
    ) -> anyhow::Result<T> {
        // Subscribed before the first check: no change between a check and the wait is missed.
        let mut changes = self.changed.subscribe();
        let waiting = async {
            loop {
                if let Some(found) = self.read(api, &mut check) {
                    return found;
                }
                // The sender lives as long as `self`.
                let _ = changes.changed().await;
            }
        };
        let stats = || self.read(api, |state| state.stats);
        let timed_out =
            |_| anyhow::anyhow!("timed out after {timeout:?} waiting on {api} for {wanted}; counters: {:?}", stats());
        tokio::time::timeout(timeout, waiting).await.map_err(timed_out)
    }
}

/// One request in flight; when dropped, journals the call (with its answer, or as abandoned) and ends it.
#[derive(Debug)]
pub(crate) struct InFlight {
    /// The store to update.
    store: Arc<Store>,
    /// The API called.
    api: Api,
    /// The call's place in the journal.
    index: usize,
    /// The status the call is answered, or would be should its client leave first.
    pub status: u16,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.store.update(self.api, |state| {
            let (call, answered) = &mut state.journal[self.index];
            (call.status, call.answered_at_unix_ms, *answered) = (self.status, unix_ms(SystemTime::now()), true);
            state.stats.in_flight -= 1;
        });
    }
}
