//! What the server remembers, per API: the effects, the declines, the answer given to each idempotency
//! key, the calls with each key, the journal of every call, the released orders, the counters and the
//! current faults. Every change wakes whoever waits on the API (see [`Store::wait_until`]).
//!
//! Checking a key and recording its effect happen under one per-API lock with no `.await` inside, so two
//! concurrent requests with the same key can never both take effect. The business rules of
//! [`Api::decide`] run under that lock too; a release also reads the inventory API's effects, taking its
//! lock inside the release API's (the only place two locks are held, always in that order).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::api::{Api, Decision, Reservation, order_id_text};
use crate::clock;
use crate::faults::Faults;

/// One request that took effect (the first one with its idempotency key), as listed by
/// [`crate::MockApis::effects`]; or one that was declined (a charge declined with 402), as listed by
/// [`crate::MockApis::declines`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// The request's `Idempotency-Key` header.
    pub idempotency_key: String,
    /// The request body, as received (every field kept, e.g. the `to` of an e-mail or SMS). For
    /// [`Api::InventoryRelease`], the path's `order_id` is added when the body leaves it out.
    pub body: Value,
    /// When the request arrived, RFC 3339 in UTC with milliseconds.
    pub received_at: String,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub received_at_unix_ms: u64,
    /// The request's `traceparent` header, if it had one.
    pub traceparent: Option<String>,
    /// The request's `content-type` and CloudEvents binary-mode (`ce-*`) headers, by lower-case name.
    pub cloudevent: BTreeMap<String, String>,
    /// The body answered (with the id the API assigned, or the decline); a replay answers the same.
    pub response: Value,
}

/// One `POST` to an API's endpoint, as kept in the call journal ([`crate::MockApis::calls`]): every call
/// is there, malformed, failed and replayed ones included, in the order they arrived, once answered.
///
/// A call whose client went away before the answer is kept too, with the status the server had settled
/// on by then (an injected failure, or the answer of an effect already recorded, as for a hang), or 499
/// (client closed request) when it had settled on none.
#[derive(Debug, Clone, PartialEq)]
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

/// Counters of one API since start, as served by `GET /stats` (keyed by API name).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiStats {
    /// Every `POST` to the API's endpoint, whatever its answer. Once answered, each is also counted in
    /// exactly one of `rejected`, `injected_failures`, `effects`, `declines`, `refused` and `duplicates`,
    /// but for an `already_released` answer of `inventory_release`, which is counted only here.
    pub calls: u64,
    /// Requests that took effect (one per idempotency key).
    pub effects: u64,
    /// Requests declined by a business rule, with no effect but remembered under their key (a replay
    /// counts as a duplicate): charges answered 402 `card_declined` (see
    /// [`DECLINED_AMOUNT_SUFFIX`](crate::DECLINED_AMOUNT_SUFFIX)). Listed by
    /// [`declines`](crate::MockApis::declines).
    pub declines: u64,
    /// Requests refused by a business rule, with no effect and not remembered (a retry is decided
    /// afresh): 409 `unknown_sku` on `inventory`, 404 `reservation_not_found` on `inventory_release`.
    pub refused: u64,
    /// Requests with an already used key, answered with the first answer and no new effect.
    pub duplicates: u64,
    /// Requests answered with an injected failure, with no effect: 503 or 429 from the rates, and the
    /// statuses of `fail_body_contains` and `fail_first_per_key`.
    pub injected_failures: u64,
    /// Requests held back `hang_ms` by fault injection (they took effect or were duplicates).
    pub hangs: u64,
    /// Requests whose connection was reset by fault injection instead of answered (they took effect or
    /// were duplicates).
    pub resets: u64,
    /// Requests refused as malformed (400: no `Idempotency-Key`, body not a JSON object).
    pub rejected: u64,
    /// Requests refused 401 for lacking the credentials the API requires.
    pub unauthorized: u64,
    /// Requests being served right now (latency and hangs included).
    pub in_flight: u64,
    /// Highest `in_flight` seen since start.
    pub peak_in_flight: u64,
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
    /// First use of the key, declined by a business rule: the answer is remembered for the key and the
    /// request recorded among the declines.
    Declined {
        /// The answer, now remembered for the key.
        answer: Answer,
        /// The decline recorded.
        decline: Effect,
    },
    /// First use of the key, with nothing left to do (a release of an already released reservation): the
    /// answer is remembered for the key, nothing is recorded.
    Unchanged(Answer),
    /// Refused by a business rule: nothing recorded, the key not remembered.
    Refused(Answer),
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
    /// `content-type` and `ce-*` headers.
    pub cloudevent: BTreeMap<String, String>,
    /// Arrival time.
    pub received: SystemTime,
}

/// The state of every API.
#[derive(Debug)]
pub(crate) struct Store {
    /// One slot per API, indexed by [`Api::index`].
    slots: [Slot; Api::ALL.len()],
}

/// What [`Store::release_check`] found about the order a release names.
#[derive(Debug)]
struct ReleaseCheck {
    /// The order id, as text; `None` when the body names none.
    order_id: Option<String>,
    /// How many reservations of the order the inventory API has recorded.
    reservations: usize,
    /// Where the order's reservation stands.
    reservation: Reservation,
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
    /// Declined requests in the order they were recorded.
    declines: Vec<Effect>,
    /// For [`Api::InventoryRelease`]: per released order id, how many reservations of the order the
    /// inventory API had recorded when it was last released.
    released: HashMap<String, usize>,
    /// First answer per idempotency key.
    answers: HashMap<String, Answer>,
    /// Calls per idempotency key that reached the `fail_first_per_key` check.
    attempts: HashMap<String, u64>,
    /// The call journal, in arrival order.
    calls: Vec<Call>,
    /// The arrival number of each entry of `calls`, ascending.
    call_numbers: Vec<u64>,
    /// Arrival number of the next call.
    next_number: u64,
}

impl SlotState {
    /// Inserts `call`, whose arrival number is `number`, into the journal at its arrival position.
    fn journal(&mut self, number: u64, call: Call) {
        let at = self.call_numbers.partition_point(|&n| n < number);
        self.call_numbers.insert(at, number);
        self.calls.insert(at, call);
    }
}

/// Locks `mutex`, going on with the data if a holder panicked (the data stays consistent: every update
/// under these locks is a handful of assignments).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
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

    /// Counts a request refused as malformed.
    pub fn count_rejected(&self, api: Api) {
        self.update(api, |state| state.stats.rejected += 1);
    }

    /// Counts a request refused 401 for its credentials.
    pub fn count_unauthorized(&self, api: Api) {
        self.update(api, |state| state.stats.unauthorized += 1);
    }

    /// Counts a failure answered by fault injection.
    pub fn count_injected_failure(&self, api: Api) {
        self.update(api, |state| state.stats.injected_failures += 1);
    }

    /// Counts a request held back by fault injection.
    pub fn count_hang(&self, api: Api) {
        self.update(api, |state| state.stats.hangs += 1);
    }

    /// Counts a request whose connection was reset after it took effect.
    pub fn count_reset(&self, api: Api) {
        self.update(api, |state| state.stats.resets += 1);
    }

    /// Decides `request` by the business rules of `api` if its key is new (recording its effect or
    /// decline, and remembering the answer unless it is refused), or finds the answer given to the key
    /// before.
    pub fn apply(&self, api: Api, request: Request) -> Outcome {
        self.update(api, |state| {
            if let Some(answer) = state.answers.get(&request.idempotency_key) {
                state.stats.duplicates += 1;
                return Outcome::Replayed(answer.clone());
            }
            let release = (api == Api::InventoryRelease).then(|| self.release_check(state, &request.body));
            let decision = api.decide(&request.body, release.as_ref().map_or(Reservation::Missing, |r| r.reservation));
            let (status, body) = decision.answer();
            let answer = Answer { status, body: body.clone() };
            let record = |request: Request| Effect {
                idempotency_key: request.idempotency_key,
                body: request.body,
                received_at: clock::rfc3339(request.received),
                received_at_unix_ms: clock::unix_ms(request.received),
                traceparent: request.traceparent,
                cloudevent: request.cloudevent,
                response: answer.body.clone(),
            };
            match decision {
                Decision::Refuse(..) => {
                    state.stats.refused += 1;
                    Outcome::Refused(answer)
                }
                Decision::Unchanged(..) => {
                    state.answers.insert(request.idempotency_key, answer.clone());
                    Outcome::Unchanged(answer)
                }
                Decision::Decline(..) => {
                    let decline = record(request);
                    state.answers.insert(decline.idempotency_key.clone(), answer.clone());
                    state.declines.push(decline.clone());
                    state.stats.declines += 1;
                    Outcome::Declined { answer, decline }
                }
                Decision::Effect(..) => {
                    let effect = record(request);
                    state.answers.insert(effect.idempotency_key.clone(), answer.clone());
                    state.effects.push(effect.clone());
                    state.stats.effects += 1;
                    if let Some(ReleaseCheck { order_id: Some(order_id), reservations, .. }) = release {
                        state.released.insert(order_id, reservations);
                    }
                    Outcome::Applied { answer, effect }
                }
            }
        })
    }

    /// Where the reservation of the order a release `body` names stands: counts the inventory effects
    /// with that `order_id` and compares with what `release_state` (the release API's state) released.
    /// Takes the inventory API's lock: call it only under the release API's lock, never the other way.
    fn release_check(&self, release_state: &SlotState, body: &Value) -> ReleaseCheck {
        let Some(order_id) = order_id_text(body.get("order_id")) else {
            return ReleaseCheck { order_id: None, reservations: 0, reservation: Reservation::Missing };
        };
        let reservations = lock(&self.slot(Api::Inventory).state)
            .effects
            .iter()
            .filter(|effect| order_id_text(effect.body.get("order_id")).as_deref() == Some(order_id.as_str()))
            .count();
        let reservation = if reservations == 0 {
            Reservation::Missing
        } else if release_state.released.get(&order_id).is_some_and(|&released| released >= reservations) {
            Reservation::Released
        } else {
            Reservation::Held
        };
        ReleaseCheck { order_id: Some(order_id), reservations, reservation }
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

    /// A snapshot of the counters of every API, in the order of [`Api::ALL`].
    pub fn all_stats(&self) -> BTreeMap<Api, ApiStats> {
        Api::ALL.into_iter().map(|api| (api, self.stats(api))).collect()
    }

    /// A snapshot of the effects of `api`, in the order they were recorded.
    pub fn effects(&self, api: Api) -> Vec<Effect> {
        lock(&self.slot(api).state).effects.clone()
    }

    /// A snapshot of the declines of `api` (requests declined by a business rule), in the order they were
    /// recorded.
    pub fn declines(&self, api: Api) -> Vec<Effect> {
        lock(&self.slot(api).state).declines.clone()
    }

    /// A snapshot of the call journal of `api`, in arrival order.
    pub fn calls(&self, api: Api) -> Vec<Call> {
        lock(&self.slot(api).state).calls.clone()
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
            cloudevent: BTreeMap::new(),
            received: SystemTime::now(),
        }
    }

    #[test]
    fn a_key_takes_effect_once() {
        let store = Store::new(Faults::default());
        let first = match store.apply(Api::Inventory, request("k")) {
            Outcome::Applied { answer, .. } => answer,
            other => panic!("first use not applied: {other:?}"),
        };
        match store.apply(Api::Inventory, request("k")) {
            Outcome::Replayed(answer) => assert_eq!(answer, first),
            other => panic!("second use not replayed: {other:?}"),
        }
        // Keys are per API.
        assert!(matches!(store.apply(Api::Payment, request("k")), Outcome::Applied { .. }));
        let stats = store.stats(Api::Inventory);
        assert_eq!((stats.effects, stats.duplicates), (1, 1));
        assert_eq!(store.effects(Api::Inventory).len(), 1);
    }

    fn request_with(key: &str, body: Value) -> Request {
        Request { body, ..request(key) }
    }

    fn release(key: &str, order: &str) -> Outcome {
        store_release(&Store::new(Faults::default()), key, order)
    }

    fn store_release(store: &Store, key: &str, order: &str) -> Outcome {
        store.apply(Api::InventoryRelease, request_with(key, json!({"order_id": order})))
    }

    fn status(outcome: &Outcome) -> (&'static str, Option<&str>) {
        match outcome {
            Outcome::Applied { answer, .. } => ("applied", answer.body["status"].as_str()),
            Outcome::Replayed(answer) => ("replayed", answer.body["status"].as_str()),
            Outcome::Declined { answer, .. } => ("declined", answer.body["error"].as_str()),
            Outcome::Unchanged(answer) => ("unchanged", answer.body["status"].as_str()),
            Outcome::Refused(answer) => ("refused", answer.body["error"].as_str()),
        }
    }

    #[test]
    fn declines_are_remembered_but_are_not_effects() {
        let store = Store::new(Faults::default());
        let charge = json!({"order_id": "o-1", "amount": 2013, "currency": "EUR"});
        let first = store.apply(Api::Payment, request_with("k", charge.clone()));
        assert_eq!(status(&first), ("declined", Some("card_declined")));
        assert_eq!(status(&store.apply(Api::Payment, request_with("k", charge.clone()))), ("replayed", None));
        let stats = store.stats(Api::Payment);
        assert_eq!((stats.effects, stats.declines, stats.duplicates, stats.refused), (0, 1, 1, 0));
        assert!(store.effects(Api::Payment).is_empty());
        let declines = store.declines(Api::Payment);
        assert_eq!(declines.len(), 1);
        assert_eq!((declines[0].idempotency_key.as_str(), &declines[0].body), ("k", &charge));
    }

    #[test]
    fn refusals_are_not_remembered() {
        let store = Store::new(Faults::default());
        let unknown = json!({"order_id": "o-1", "items": [{"sku": "UNKNOWN-1", "quantity": 1}]});
        for _ in 0..2 {
            let outcome = store.apply(Api::Inventory, request_with("k", unknown.clone()));
            assert_eq!(status(&outcome), ("refused", Some("unknown_sku")));
        }
        // The key was not used up: a good body with it takes effect.
        assert_eq!(status(&store.apply(Api::Inventory, request("k"))), ("applied", None));
        let stats = store.stats(Api::Inventory);
        assert_eq!((stats.effects, stats.refused, stats.duplicates), (1, 2, 0));
    }

    #[test]
    fn releases_follow_the_reservations_of_the_order() {
        assert_eq!(status(&release("r", "o-1")), ("refused", Some("reservation_not_found")));
        let store = Store::new(Faults::default());
        assert_eq!(status(&store_release(&store, "r-0", "o-1")), ("refused", Some("reservation_not_found")));
        // `request` reserves for o-1.
        store.apply(Api::Inventory, request("reserve-1"));
        assert_eq!(status(&store_release(&store, "r-1", "o-1")), ("applied", Some("released")));
        assert_eq!(status(&store_release(&store, "r-1", "o-1")), ("replayed", Some("released")));
        assert_eq!(status(&store_release(&store, "r-2", "o-1")), ("unchanged", Some("already_released")));
        assert_eq!(status(&store_release(&store, "r-2", "o-1")), ("replayed", Some("already_released")));
        assert_eq!(status(&store_release(&store, "r-3", "o-2")), ("refused", Some("reservation_not_found")));
        // A new reservation of the order can be released again.
        store.apply(Api::Inventory, request("reserve-2"));
        assert_eq!(status(&store_release(&store, "r-4", "o-1")), ("applied", Some("released")));
        // An order id given as a number matches the same number in the reservation.
        store.apply(Api::Inventory, request_with("reserve-3", json!({"order_id": 7})));
        assert_eq!(status(&store_release(&store, "r-5", "7")), ("applied", Some("released")));
        let stats = store.stats(Api::InventoryRelease);
        assert_eq!((stats.effects, stats.duplicates, stats.refused), (3, 2, 2));
        assert_eq!(store.effects(Api::InventoryRelease).len(), 3);
        assert_eq!(store.stats(Api::Inventory).effects, 3);
        assert_eq!(store.all_stats()[&Api::InventoryRelease], stats);
    }

    #[test]
    fn in_flight_follows_the_guards() {
        let store = Arc::new(Store::new(Faults::default()));
        let a = store.arrive(Api::Sms, arrival("a"));
        let b = store.arrive(Api::Sms, arrival("b"));
        drop(a);
        let stats = store.stats(Api::Sms);
        assert_eq!((stats.calls, stats.in_flight, stats.peak_in_flight), (2, 1, 2));
        drop(b);
        assert_eq!(store.stats(Api::Sms).in_flight, 0);
    }

    #[tokio::test]
    async fn waiting_wakes_on_change_and_times_out() {
        let store = Arc::new(Store::new(Faults::default()));
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
        let store = Arc::new(Store::new(Faults::default()));
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
    fn attempts_are_counted_per_key_and_api() {
        let store = Store::new(Faults::default());
        assert_eq!(store.count_attempt(Api::Email, "k"), 1);
        assert_eq!(store.count_attempt(Api::Email, "k"), 2);
        assert_eq!(store.count_attempt(Api::Email, "other"), 1);
        assert_eq!(store.count_attempt(Api::Sms, "k"), 1);
    }
}
