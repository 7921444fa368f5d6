//! Batching: attempts at events of different keys, gathered into one call of [`Handler::handle_batch`].
//!
//! A handler whose API takes several events in one request declares a [`Batching`] policy: up to
//! `max_events` events in a call, waiting at most `max_wait` for them. Only the attempt is shared. Each event
//! keeps its own delivery, exactly as with a call per event: its key's order (a key has one event in flight,
//! so a batch never holds two events of one key), its own outcome, retries with their own backoff, its own dead
//! letter, and its own commit. A failed event is retried alone, or in whatever batch its next attempt joins;
//! never the whole batch.
//!
//! The first attempt that finds no batch open opens one and leads it. It waits until the batch is full or
//! `max_wait` has passed, makes the call for every event in it (in its own span: the call continues the
//! leader's trace), and hands each event its outcome.
//!
//! A batch holds events of several partitions, and a partition may be revoked while one of its events is in
//! another partition's batch. The batch keeps the promise a call per event keeps: once a revoke has returned,
//! no event of the revoked partitions is sent or still being sent by this member.
//! * When an event's partition stops (its `cancel` fires: revoke or shutdown), the event leaves a batch not yet
//!   sent; a leader whose own partition stops sends nothing.
//! * An event whose batch is being sent waits for the call's answer (so the revoke waits for it, as for a call
//!   of its own); when its partition's calls must be dropped (its `abort` fires), the batch's call is dropped
//!   before the event lets the revoke go on.
//! * An event taken out of a batch this way, or whose batch was dropped before its answer, gets a retry that
//!   spends no attempt.
//! * A panic while the batch is handled fails the attempt of every event in it ([`panics`](super::panics)).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use super::handler::{Failure, Handler, Incoming, Outcome};
use super::panics;
use super::worker::Stops;

/// How a handler batches its attempts ([`Handler::batching`]): up to `max_events` events of different keys in
/// one call of [`Handler::handle_batch`], waiting at most `max_wait` for them. Only the attempt is shared: each
/// event keeps its key's order, its own outcome, retries, dead letter and commit, and a failed event is retried
/// alone or in whatever batch its next attempt joins, never with the whole batch. Once a revoke has returned,
/// no event of the revoked partitions is sent or still being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// The most events in one call (at least 2; 1 means no batching).
    pub max_events: usize,
    /// The longest an attempt waits for others to join its batch.
    pub max_wait: Duration,
}

/// The batches being gathered, one per channel at a time.
pub struct Batches {
    /// The policy.
    policy: Batching,
    /// The batches still open to new events, and those full but not yet taken by their leader.
    gathering: Mutex<Gathering>,
    /// The id of the next batch opened or event joined.
    next_id: AtomicU64,
}

/// Batches between their opening and their call.
#[derive(Default)]
struct Gathering {
    /// Per channel, the batch new attempts join.
    open: HashMap<Option<&'static str>, Open>,
    /// Full batches (closed to new events) whose leader has not yet taken its events, by batch id.
    full: HashMap<u64, Vec<Joined>>,
}

/// A batch open to new events.
struct Open {
    /// Its id.
    id: u64,
    /// The events that joined it (the leader's own is not among them).
    joined: Vec<Joined>,
    /// Wakes the leader when the batch is full.
    full: Arc<Notify>,
    /// Cancelled to drop the batch's call (an event's partition must drop its calls).
    drop_call: CancellationToken,
}

/// An event that joined another's batch, and where its outcome goes.
struct Joined {
    /// Tells it apart from the other events of its batch, to take it out.
    entry: u64,
    /// The event.
    incoming: Incoming,
    /// Its partition's `cancel`: once fired, the event is not sent.
    cancel: CancellationToken,
    /// Its outcome, sent by the leader.
    reply: oneshot::Sender<Outcome>,
}

impl Batches {
    /// Batches gathered by `policy`.
    pub fn new(policy: Batching) -> Self {
        Self { policy, gathering: Mutex::new(Gathering::default()), next_id: AtomicU64::new(0) }
    }

    /// One attempt at `incoming` on `channel`, made in a batch with other events' attempts. It ends within
    /// `stops` as a call of its own would (see the module doc): the caller must not drop it on `abort`.
    pub async fn attempt<H: Handler>(
        &self,
        handler: &H,
        incoming: &Incoming,
        channel: Option<&'static str>,
        stops: &Stops,
    ) -> Outcome {
        if stops.cancel.is_cancelled() {
            return abandoned();
        }
        match self.join_or_open(incoming, channel, &stops.cancel) {
            Entry::Joined(joining) => self.follow(joining, stops).await,
            Entry::Opened { id, full, drop_call } => {
                self.lead(handler, incoming, channel, stops, id, full, drop_call).await
            }
        }
    }

    /// Leads batch `id`: waits until it is full, `max_wait` has passed or the leader's partition stops, then
    /// makes the call for the events still in it and hands each its outcome.
    #[allow(clippy::too_many_arguments)]
    async fn lead<H: Handler>(
        &self,
        handler: &H,
        incoming: &Incoming,
        channel: Option<&'static str>,
        stops: &Stops,
        id: u64,
        full: Arc<Notify>,
        drop_call: CancellationToken,
    ) -> Outcome {
        let taken = Leader { batches: self, channel, id };
        tokio::select! {
            () = full.notified() => {}
            () = tokio::time::sleep(self.policy.max_wait) => {}
            () = stops.cancel.cancelled() => {}
        }
        let joined = taken.take();
        if stops.cancel.is_cancelled() {
            // The leader's partition stops: nothing is sent; dropping the replies abandons the others.
            return abandoned();
        }
        let mut events = Vec::with_capacity(joined.len() + 1);
        events.push(incoming.clone());
        let mut replies = Vec::with_capacity(joined.len());
        for Joined { incoming, cancel, reply, .. } in joined {
            if cancel.is_cancelled() {
                // Its partition stopped between its joining and now: it is not sent.
                let _ = reply.send(abandoned());
                continue;
            }
            events.push(incoming);
            replies.push(reply);
        }
        let answered = tokio::select! {
            biased;
            () = drop_call.cancelled() => None,
            () = stops.abort.cancelled() => None,
            answered = panics::contain(handler.handle_batch(&events, channel)) => Some(answered),
        };
        let mut outcomes = match answered {
            // The call was dropped: an event's partition (maybe the leader's own) must drop its calls.
            None => vec![abandoned(); events.len()],
            Some(Err(failure)) => vec![Outcome::Retry(failure); events.len()],
            Some(Ok(outcomes)) if outcomes.len() != events.len() => {
                let failure = Failure::new(
                    "batch",
                    format!("the handler answered a batch of {} events with {} outcomes", events.len(), outcomes.len()),
                );
                vec![Outcome::Permanent(failure); events.len()]
            }
            Some(Ok(outcomes)) => outcomes,
        }
        .into_iter();
        let own = outcomes.next().unwrap_or_else(abandoned);
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // An event whose attempt was dropped meanwhile no longer waits for its outcome.
            let _ = reply.send(outcome);
        }
        own
    }

    /// Waits for the outcome of an event in another's batch: taken out of the batch when its partition stops
    /// before the batch is sent; once sent, waiting for the answer, and dropping the call when its partition
    /// must drop its calls.
    async fn follow(&self, joining: Joining, stops: &Stops) -> Outcome {
        let Joining { channel, batch, entry, mut outcome, drop_call } = joining;
        let mut withdraw = Withdraw { batches: self, channel, batch, entry, armed: true };
        let (mut stopped, mut aborted) = (false, false);
        loop {
            tokio::select! {
                biased;
                outcome = &mut outcome => {
                    withdraw.armed = false;
                    return outcome.unwrap_or_else(|_| abandoned());
                }
                () = stops.cancel.cancelled(), if !stopped => {
                    stopped = true;
                    if withdraw.now() {
                        return abandoned();
                    }
                }
                () = stops.abort.cancelled(), if !aborted => {
                    aborted = true;
                    if withdraw.now() {
                        return abandoned();
                    }
                    // Sent already: the call is dropped, and the leader answers every event of it.
                    drop_call.cancel();
                }
            }
        }
    }

    /// Adds `incoming` to the open batch of `channel`, or opens one for it to lead when there is none.
    fn join_or_open(&self, incoming: &Incoming, channel: Option<&'static str>, cancel: &CancellationToken) -> Entry {
        let mut gathering = self.lock();
        let Some(open) = gathering.open.get_mut(&channel) else {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let full = Arc::new(Notify::new());
            let drop_call = CancellationToken::new();
            let open = Open { id, joined: Vec::new(), full: Arc::clone(&full), drop_call: drop_call.clone() };
            gathering.open.insert(channel, open);
            return Entry::Opened { id, full, drop_call };
        };
        let (reply, outcome) = oneshot::channel();
        let entry = self.next_id.fetch_add(1, Ordering::Relaxed);
        open.joined.push(Joined { entry, incoming: incoming.clone(), cancel: cancel.clone(), reply });
        let joining = Joining { channel, batch: open.id, entry, outcome, drop_call: open.drop_call.clone() };
        if open.joined.len() + 1 >= self.policy.max_events {
            // Full: closed to new events (the next attempt opens another batch), and its leader woken.
            if let Some(open) = gathering.open.remove(&channel) {
                open.full.notify_one();
                gathering.full.insert(open.id, open.joined);
            }
        }
        Entry::Joined(joining)
    }

    /// Takes event `entry` out of batch `batch` of `channel` if the batch was not taken by its leader yet;
    /// `true` when it was.
    fn withdraw(&self, channel: Option<&'static str>, batch: u64, entry: u64) -> bool {
        let mut gathering = self.lock();
        let Gathering { open, full } = &mut *gathering;
        let joined = match open.get_mut(&channel) {
            Some(open) if open.id == batch => &mut open.joined,
            _ => match full.get_mut(&batch) {
                Some(joined) => joined,
                None => return false,
            },
        };
        let before = joined.len();
        joined.retain(|j| j.entry != entry);
        joined.len() < before
    }

    /// Events waiting in batches not yet sent (the leaders not counted).
    #[cfg(test)]
    pub(super) fn joined(&self) -> usize {
        let gathering = self.lock();
        gathering.open.values().map(|o| o.joined.len()).sum::<usize>()
            + gathering.full.values().map(Vec::len).sum::<usize>()
    }

    /// Batches open to new events.
    #[cfg(test)]
    pub(super) fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// The batches; a task that panicked while holding them leaves them usable.
    fn lock(&self) -> MutexGuard<'_, Gathering> {
        self.gathering.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How an attempt entered a batch.
enum Entry {
    /// It joined another's batch.
    Joined(Joining),
    /// It opened batch `id` and leads it.
    Opened {
        /// The batch's id.
        id: u64,
        /// Notified when the batch is full.
        full: Arc<Notify>,
        /// Cancelled when the batch's call must be dropped.
        drop_call: CancellationToken,
    },
}

/// An event's place in another's batch.
struct Joining {
    /// The batch's channel.
    channel: Option<&'static str>,
    /// The batch's id.
    batch: u64,
    /// The event's entry in it.
    entry: u64,
    /// Its outcome, from the leader.
    outcome: oneshot::Receiver<Outcome>,
    /// Cancelled to drop the batch's call.
    drop_call: CancellationToken,
}

/// The outcome of an event whose batch was dropped before its call answered, or that left its batch before
/// the call: tried again, no attempt spent.
fn abandoned() -> Outcome {
    Outcome::Retry(
        Failure::new("batch", "the batch this event was in was abandoned before its call answered").uncharged(),
    )
}

/// An event's hold on its place in a batch: dropped while armed (its attempt was dropped before its outcome
/// came), it takes the event out of the batch if the batch was not sent yet.
struct Withdraw<'a> {
    /// Where the batch is gathered.
    batches: &'a Batches,
    /// The batch's channel.
    channel: Option<&'static str>,
    /// The batch's id.
    batch: u64,
    /// The event's entry.
    entry: u64,
    /// Whether the event may still be in a batch not yet sent.
    armed: bool,
}

impl Withdraw<'_> {
    /// Takes the event out of its batch; `true` when the batch was not sent yet.
    fn now(&mut self) -> bool {
        self.armed = false;
        self.batches.withdraw(self.channel, self.batch, self.entry)
    }
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.batches.withdraw(self.channel, self.batch, self.entry);
        }
    }
}

/// A leader's hold on its batch until it takes the events: dropped before (its attempt was dropped while it
/// waited), it closes the batch, and the events that joined it get [`abandoned`].
struct Leader<'a> {
    /// Where the batch is gathered.
    batches: &'a Batches,
    /// Its channel.
    channel: Option<&'static str>,
    /// Its id.
    id: u64,
}

impl Leader<'_> {
    /// Closes the batch and takes the events that joined it; the hold ends here.
    fn take(self) -> Vec<Joined> {
        let joined = self.remove();
        // Nothing is left for the drop to close (the hold owns no resource: forgetting it leaks nothing).
        std::mem::forget(self);
        joined
    }

    /// Removes the batch, open or full, with the events that joined it.
    fn remove(&self) -> Vec<Joined> {
        let mut gathering = self.batches.lock();
        match gathering.open.get(&self.channel) {
            Some(open) if open.id == self.id => {
                gathering.open.remove(&self.channel).map(|o| o.joined).unwrap_or_default()
            }
            _ => gathering.full.remove(&self.id).unwrap_or_default(),
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        // Dropping the joined events' senders gives each of them `abandoned`.
        drop(self.remove());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A handler that records each batch it gets and fails the events whose id ends in `x`.
    #[derive(Default)]
    struct Recorder {
        /// The ids of each batch, in call order.
        batches: Mutex<Vec<Vec<String>>>,
        /// Calls of `handle` (there must be none).
        single: AtomicUsize,
    }

    impl Handler for Recorder {
        async fn handle(&self, _incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
            self.single.fetch_add(1, Ordering::SeqCst);
            Outcome::Done
        }

        async fn handle_batch(&self, batch: &[Incoming], _channel: Option<&'static str>) -> Vec<Outcome> {
            let ids: Vec<String> = batch.iter().map(|i| i.id().to_owned()).collect();
            self.batches.lock().expect("batches").push(ids.clone());
            ids.iter()
                .map(|id| {
                    if id.ends_with('x') { Outcome::Permanent(Failure::new("http_status", id)) } else { Outcome::Done }
                })
                .collect()
        }
    }

    /// An event with `id`, keyed by it.
    fn event(id: &str) -> Incoming {
        let json = serde_json::json!({
            "specversion": "1.0", "id": id, "source": "/t", "type": "order.created", "subject": id,
            "time": "2026-12-03T00:00:00Z", "datacontenttype": "application/json", "data": {},
        });
        Incoming::new("t", &json).expect("an event")
    }

    fn stops() -> Stops {
        Stops { cancel: CancellationToken::new(), abort: CancellationToken::new() }
    }

    fn batches(max_events: usize, max_wait: Duration) -> Batches {
        Batches::new(Batching { max_events, max_wait })
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_is_one_call_and_each_event_gets_its_own_outcome() {
        let stops = stops();
        let (handler, batches) = (Recorder::default(), batches(3, Duration::from_secs(60)));
        let events: Vec<Incoming> = ["a", "bx", "c", "d", "ex", "f"].into_iter().map(event).collect();
        let started = tokio::time::Instant::now();
        let outcomes =
            futures::future::join_all(events.iter().map(|event| batches.attempt(&handler, event, None, &stops))).await;
        let classes: Vec<&str> = outcomes.iter().map(Outcome::class).collect();
        assert_eq!(classes, ["done", "permanent", "done", "done", "permanent", "done"]);
        let calls = handler.batches.lock().expect("batches").clone();
        assert_eq!(calls, [vec!["a", "bx", "c"], vec!["d", "ex", "f"]]);
        assert_eq!(started.elapsed(), Duration::ZERO, "full batches go at once, without waiting max_wait");
        assert_eq!(handler.single.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_that_does_not_fill_goes_after_max_wait() {
        let stops = stops();
        let (handler, batches) = (Recorder::default(), batches(10, Duration::from_millis(50)));
        let (a, b) = (event("a"), event("b"));
        let started = tokio::time::Instant::now();
        let (first, second) =
            tokio::join!(batches.attempt(&handler, &a, None, &stops), batches.attempt(&handler, &b, None, &stops));
        assert_eq!((first, second), (Outcome::Done, Outcome::Done));
        assert_eq!(started.elapsed(), Duration::from_millis(50), "the leader waited max_wait, no longer");
        assert_eq!(*handler.batches.lock().expect("batches"), [vec!["a", "b"]]);
    }

    #[tokio::test(start_paused = true)]
    async fn channels_are_batched_apart() {
        let stops = stops();
        let (handler, batches) = (Recorder::default(), batches(10, Duration::from_millis(5)));
        let (a, b) = (event("a"), event("b"));
        let _ = tokio::join!(
            batches.attempt(&handler, &a, Some("email"), &stops),
            batches.attempt(&handler, &b, Some("sms"), &stops)
        );
        assert_eq!(handler.batches.lock().expect("batches").len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn when_the_leader_is_dropped_the_events_that_joined_it_retry_without_spending_an_attempt() {
        let stops = stops();
        let (handler, batches) = (Recorder::default(), batches(10, Duration::from_secs(1)));
        let (a, b) = (event("a"), event("b"));
        let mut leader = Box::pin(batches.attempt(&handler, &a, None, &stops));
        // The leader opens the batch and waits; `b` joins it.
        assert!(futures::poll!(leader.as_mut()).is_pending());
        let mut follower = Box::pin(batches.attempt(&handler, &b, None, &stops));
        assert!(futures::poll!(follower.as_mut()).is_pending());
        drop(leader);
        match tokio::time::timeout(Duration::from_secs(5), follower).await.expect("the follower is answered") {
            Outcome::Retry(failure) => assert!(!failure.charged && failure.kind == "batch", "{failure:?}"),
            other => panic!("expected an uncharged retry, got {other:?}"),
        }
        assert!(handler.batches.lock().expect("batches").is_empty(), "no call was made");
        // The next attempt opens a new batch.
        assert_eq!(batches.attempt(&handler, &b, None, &stops).await, Outcome::Done);
    }

    /// A handler whose batch calls never answer (they end only when dropped) or panic, counting both.
    #[derive(Default)]
    struct Hanging {
        /// Batch calls started.
        started: AtomicUsize,
        /// Batch calls dropped before they answered.
        dropped: Arc<AtomicUsize>,
        /// Whether a call panics instead.
        panics: bool,
    }

    /// Counts its drop.
    struct CountDrop(Arc<AtomicUsize>);

    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Handler for Hanging {
        async fn handle(&self, _incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
            Outcome::Done
        }

        async fn handle_batch(&self, _batch: &[Incoming], _channel: Option<&'static str>) -> Vec<Outcome> {
            self.started.fetch_add(1, Ordering::SeqCst);
            assert!(!self.panics, "the API client tripped over its own feet");
            let _dropped = CountDrop(Arc::clone(&self.dropped));
            std::future::pending().await
        }
    }

    /// An attempt in progress, as a test holds it.
    type Attempt<'a> = std::pin::Pin<Box<dyn Future<Output = Outcome> + 'a>>;

    /// The attempts of `events[0]` (the leader: it opens a batch and waits for it to fill) and `events[1]` (the
    /// follower: it joins that batch), each with its own `stops`, polled once each.
    async fn gathered<'a, H: Handler>(
        handler: &'a H,
        batches: &'a Batches,
        events: &'a [Incoming; 2],
        stops: &'a [Stops; 2],
    ) -> (Attempt<'a>, Attempt<'a>) {
        let mut leader: Attempt<'a> = Box::pin(batches.attempt(handler, &events[0], None, &stops[0]));
        let mut follower: Attempt<'a> = Box::pin(batches.attempt(handler, &events[1], None, &stops[1]));
        assert!(futures::poll!(leader.as_mut()).is_pending(), "the leader waits for its batch to fill");
        assert!(futures::poll!(follower.as_mut()).is_pending(), "the follower waits for the leader's call");
        (leader, follower)
    }

    fn uncharged_batch_retry(outcome: &Outcome) -> bool {
        matches!(outcome, Outcome::Retry(f) if !f.charged && f.kind == "batch")
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_whose_partition_stops_leaves_its_batch_before_the_batch_is_sent() {
        let (handler, batches) = (Recorder::default(), batches(10, Duration::from_secs(1)));
        let (events, stops) = ([event("a"), event("b")], [stops(), stops()]);
        let (leader, follower) = gathered(&handler, &batches, &events, &stops).await;
        // b's partition is revoked while the batch gathers: b leaves it at once, without a call.
        let started = tokio::time::Instant::now();
        stops[1].cancel.cancel();
        assert!(uncharged_batch_retry(&follower.await), "b leaves with an uncharged retry");
        assert_eq!(started.elapsed(), Duration::ZERO, "at once, not at the batch's max_wait");
        assert_eq!(leader.await, Outcome::Done);
        assert_eq!(*handler.batches.lock().expect("batches"), [vec!["a"]], "b was not sent");
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_whose_partition_stops_sends_nothing() {
        let (handler, batches) = (Recorder::default(), batches(10, Duration::from_secs(1)));
        let (events, stops) = ([event("a"), event("b")], [stops(), stops()]);
        let (leader, follower) = gathered(&handler, &batches, &events, &stops).await;
        stops[0].cancel.cancel();
        assert!(uncharged_batch_retry(&leader.await));
        assert!(uncharged_batch_retry(&follower.await), "the others try again in another batch");
        assert!(handler.batches.lock().expect("batches").is_empty(), "no call was made");
    }

    #[tokio::test(start_paused = true)]
    async fn aborting_an_event_of_a_batch_in_flight_drops_the_call_before_the_event_returns() {
        let (handler, batches) = (Hanging::default(), batches(2, Duration::from_secs(1)));
        let (events, stops) = ([event("a"), event("b")], [stops(), stops()]);
        let (mut leader, mut follower) = gathered(&handler, &batches, &events, &stops).await;
        assert!(futures::poll!(leader.as_mut()).is_pending());
        assert_eq!(handler.started.load(Ordering::SeqCst), 1, "the full batch is sent");
        // b's partition is revoked: b cannot leave a batch in flight, so it waits for the call...
        stops[1].cancel.cancel();
        assert!(futures::poll!(follower.as_mut()).is_pending(), "b waits for the call it is in");
        // ...until its calls must be dropped: then the call is dropped before b returns.
        stops[1].abort.cancel();
        let (own, theirs) = tokio::join!(leader, follower);
        assert!(uncharged_batch_retry(&theirs), "{theirs:?}");
        assert!(uncharged_batch_retry(&own), "the leader tries again: {own:?}");
        assert_eq!(handler.dropped.load(Ordering::SeqCst), 1, "the call was dropped, not left running");
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_batch_fails_the_attempt_of_every_event_in_it() {
        let handler = Hanging { panics: true, ..Hanging::default() };
        let batches = batches(2, Duration::from_secs(1));
        let (a, b) = (event("a"), event("b"));
        let stops = stops();
        let (own, theirs) =
            tokio::join!(batches.attempt(&handler, &a, None, &stops), batches.attempt(&handler, &b, None, &stops));
        for outcome in [own, theirs] {
            match outcome {
                Outcome::Retry(failure) => {
                    assert!(failure.charged && failure.kind == "panic", "{failure:?}");
                    assert!(failure.message.contains("tripped over its own feet"), "{failure:?}");
                }
                other => panic!("expected a charged retry, got {other:?}"),
            }
        }
    }
}
