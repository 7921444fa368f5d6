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
//! leader's trace), and hands each event its outcome. A leader dropped before it answered (its partition was
//! revoked, or the process is stopping) leaves the events that joined it a retry that spends no attempt.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use super::handler::{Failure, Handler, Incoming, Outcome};

/// How a handler batches its calls.
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
    /// The id of the next batch opened.
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
}

/// An event that joined another's batch, and where its outcome goes.
struct Joined {
    /// The event.
    incoming: Incoming,
    /// Its outcome, sent by the leader.
    reply: oneshot::Sender<Outcome>,
}

impl Batches {
    /// Batches gathered by `policy`.
    pub fn new(policy: Batching) -> Self {
        Self { policy, gathering: Mutex::new(Gathering::default()), next_id: AtomicU64::new(0) }
    }

    /// One attempt at `incoming` on `channel`, made in a batch with other events' attempts.
    pub async fn attempt<H: Handler>(
        &self,
        handler: &H,
        incoming: &Incoming,
        channel: Option<&'static str>,
    ) -> Outcome {
        let (id, full) = match self.join_or_open(incoming, channel) {
            Entry::Joined(outcome) => return outcome.await.unwrap_or_else(|_| abandoned()),
            Entry::Opened { id, full } => (id, full),
        };
        let taken = Leader { batches: self, channel, id };
        tokio::select! {
            () = full.notified() => {}
            () = tokio::time::sleep(self.policy.max_wait) => {}
        }
        let joined = taken.take();
        let mut events = Vec::with_capacity(joined.len() + 1);
        events.push(incoming.clone());
        let mut replies = Vec::with_capacity(joined.len());
        for Joined { incoming, reply } in joined {
            events.push(incoming);
            replies.push(reply);
        }
        let mut outcomes = handler.handle_batch(&events, channel).await;
        if outcomes.len() != events.len() {
            let failure = Failure::new(
                "batch",
                format!("the handler answered a batch of {} events with {} outcomes", events.len(), outcomes.len()),
            );
            outcomes = vec![Outcome::Permanent(failure); events.len()];
        }
        let mut outcomes = outcomes.into_iter();
        let own = outcomes.next().unwrap_or_else(abandoned);
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // An event whose attempt was dropped meanwhile no longer waits for its outcome.
            let _ = reply.send(outcome);
        }
        own
    }

    /// Adds `incoming` to the open batch of `channel`, or opens one for it to lead when there is none.
    fn join_or_open(&self, incoming: &Incoming, channel: Option<&'static str>) -> Entry {
        let mut gathering = self.lock();
        let Some(open) = gathering.open.get_mut(&channel) else {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let full = Arc::new(Notify::new());
            gathering.open.insert(channel, Open { id, joined: Vec::new(), full: Arc::clone(&full) });
            return Entry::Opened { id, full };
        };
        let (reply, outcome) = oneshot::channel();
        open.joined.push(Joined { incoming: incoming.clone(), reply });
        if open.joined.len() + 1 >= self.policy.max_events {
            // Full: closed to new events (the next attempt opens another batch), and its leader woken.
            if let Some(open) = gathering.open.remove(&channel) {
                open.full.notify_one();
                gathering.full.insert(open.id, open.joined);
            }
        }
        Entry::Joined(outcome)
    }

    /// The batches; a task that panicked while holding them leaves them usable.
    fn lock(&self) -> MutexGuard<'_, Gathering> {
        self.gathering.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How an attempt entered a batch.
enum Entry {
    /// It joined another's batch: its outcome comes through here.
    Joined(oneshot::Receiver<Outcome>),
    /// It opened batch `id` and leads it; `full` wakes it when the batch is full.
    Opened {
        /// The batch's id.
        id: u64,
        /// Notified when the batch is full.
        full: Arc<Notify>,
    },
}

/// The outcome of an event whose batch was dropped before its call answered: tried again, no attempt spent.
fn abandoned() -> Outcome {
    Outcome::Retry(
        Failure::new("batch", "the batch this event was in was abandoned before its call answered").uncharged(),
    )
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
    use crate::events::decode_envelope;

    /// A handler that records each batch it gets and fails the events whose id ends in `x`.
    #[derive(Default)]
    struct Recorder {
        /// The ids of each batch, in call order.
        batches: Mutex<Vec<Vec<String>>>,
        /// Calls of `handle` (there must be none).
        single: AtomicUsize,
    }

    impl Handler for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }

        async fn handle(&self, _incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
            self.single.fetch_add(1, Ordering::SeqCst);
            Outcome::Done
        }

        async fn handle_batch(&self, batch: &[Incoming], _channel: Option<&'static str>) -> Vec<Outcome> {
            let ids: Vec<String> = batch.iter().map(|i| i.event.id.clone()).collect();
            self.batches.lock().expect("batches").push(ids.clone());
            ids.iter()
                .map(|id| {
                    if id.ends_with('x') { Outcome::Permanent(Failure::new("http_status", id)) } else { Outcome::Done }
                })
                .collect()
        }
    }

    fn incoming(id: &str) -> Incoming {
        let value = format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"/t","type":"order.created","time":"2026-12-03T00:00:00Z","datacontenttype":"application/json","data":{{}}}}"#
        );
        let event = decode_envelope(Some(value.as_bytes())).expect("an envelope");
        Incoming {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            key: Some(id.to_owned()),
            trace_id: String::new(),
            event,
            value: value.into_bytes().into(),
        }
    }

    fn batches(max_events: usize, max_wait: Duration) -> Batches {
        Batches::new(Batching { max_events, max_wait })
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_is_one_call_and_each_event_gets_its_own_outcome() {
        let (handler, batches) = (Recorder::default(), batches(3, Duration::from_secs(60)));
        let events: Vec<Incoming> = ["a", "bx", "c", "d", "ex", "f"].into_iter().map(incoming).collect();
        let started = tokio::time::Instant::now();
        let outcomes =
            futures::future::join_all(events.iter().map(|event| batches.attempt(&handler, event, None))).await;
        let classes: Vec<&str> = outcomes.iter().map(Outcome::class).collect();
        assert_eq!(classes, ["done", "permanent", "done", "done", "permanent", "done"]);
        let calls = handler.batches.lock().expect("batches").clone();
        assert_eq!(calls, [vec!["a", "bx", "c"], vec!["d", "ex", "f"]]);
        assert_eq!(started.elapsed(), Duration::ZERO, "full batches go at once, without waiting max_wait");
        assert_eq!(handler.single.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_that_does_not_fill_goes_after_max_wait() {
        let (handler, batches) = (Recorder::default(), batches(10, Duration::from_millis(50)));
        let (a, b) = (incoming("a"), incoming("b"));
        let started = tokio::time::Instant::now();
        let (first, second) = tokio::join!(batches.attempt(&handler, &a, None), batches.attempt(&handler, &b, None));
        assert_eq!((first, second), (Outcome::Done, Outcome::Done));
        assert_eq!(started.elapsed(), Duration::from_millis(50), "the leader waited max_wait, no longer");
        assert_eq!(*handler.batches.lock().expect("batches"), [vec!["a", "b"]]);
    }

    #[tokio::test(start_paused = true)]
    async fn channels_are_batched_apart() {
        let (handler, batches) = (Recorder::default(), batches(10, Duration::from_millis(5)));
        let (a, b) = (incoming("a"), incoming("b"));
        let _ = tokio::join!(batches.attempt(&handler, &a, Some("email")), batches.attempt(&handler, &b, Some("sms")));
        assert_eq!(handler.batches.lock().expect("batches").len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn when_the_leader_is_dropped_the_events_that_joined_it_retry_without_spending_an_attempt() {
        let (handler, batches) = (Recorder::default(), batches(10, Duration::from_secs(1)));
        let (a, b) = (incoming("a"), incoming("b"));
        let mut leader = Box::pin(batches.attempt(&handler, &a, None));
        // The leader opens the batch and waits; `b` joins it.
        assert!(futures::poll!(leader.as_mut()).is_pending());
        let mut follower = Box::pin(batches.attempt(&handler, &b, None));
        assert!(futures::poll!(follower.as_mut()).is_pending());
        drop(leader);
        match tokio::time::timeout(Duration::from_secs(5), follower).await.expect("the follower is answered") {
            Outcome::Retry(failure) => assert!(!failure.charged && failure.kind == "batch", "{failure:?}"),
            other => panic!("expected an uncharged retry, got {other:?}"),
        }
        assert!(handler.batches.lock().expect("batches").is_empty(), "no call was made");
        // The next attempt opens a new batch.
        assert_eq!(batches.attempt(&handler, &b, None).await, Outcome::Done);
    }
}
