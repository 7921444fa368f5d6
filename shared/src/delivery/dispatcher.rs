//! Key-ordered scheduling with bounded memory.
//!
//! Records arrive from the poll thread in offset order. Per partition, the dispatcher keeps a queue per key:
//! the first record of an idle key starts at once (as its own task), later records of a busy key wait behind
//! it, so events with the same key are handled one at a time in offset order while different keys run
//! concurrently (the in-flight bound is the worker's semaphore). Records without a key share one queue per
//! partition, so they keep partition order.
//!
//! Memory is bounded at two levels:
//! * everyday flow control is consumer-wide: the poll thread stops taking records while `budget` events are
//!   unfinished ([`Dispatcher::wait_for_room`]) and goes on as soon as one finishes. Nothing is paused, so
//!   librdkafka keeps what it prefetched and goes on fetching in the background;
//! * a backstop per partition, for a partition whose events do not finish (a key retrying for long) while the
//!   poll thread still takes a record now and then to serve callbacks: when its started-but-unfinished events
//!   reach `max_buffered_per_partition` (more than `budget`, so healthy traffic never gets there), the
//!   partition is paused, and resumed once half has drained. A paused partition's events no longer count
//!   against the budget, so the other partitions keep flowing. Pausing makes librdkafka drop what it had
//!   prefetched for the partition and fetch it again on resume, which is why it is not the everyday tool.
//!
//! Each partition tracks its offsets ([`OffsetTracker`]). The poll thread applies pause/resume and commits; on a revoke or shutdown the dispatcher stops starting work for the
//! partitions concerned, waits (bounded) for their running events, and hands back their watermarks.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::failure::FailureRoute;
use super::handler::Handler;
use super::offsets::OffsetTracker;
use super::record::{Record, TopicPartition};
use super::worker::{Delivery, Worker};

/// Scheduling state of one assigned partition.
struct PartitionState {
    /// Distinguishes this assignment from an earlier one of the same partition.
    epoch: u64,
    /// Started and finished offsets.
    offsets: OffsetTracker,
    /// Per key, the records waiting behind the running one; a key is present while it has a running task.
    keys: HashMap<Option<Vec<u8>>, VecDeque<Record>>,
    /// Tasks running for this partition (one per busy key).
    running: usize,
    /// Whether the dispatcher asked the poll thread to pause the partition.
    paused: bool,
    /// Fires on revoke or shutdown: start nothing new for this partition.
    cancel: CancellationToken,
}

/// Everything behind the lock.
#[derive(Default)]
struct State {
    /// Assigned partitions.
    partitions: HashMap<TopicPartition, PartitionState>,
    /// The next assignment epoch.
    next_epoch: u64,
    /// Partitions the poll thread must pause.
    to_pause: Vec<TopicPartition>,
    /// Partitions the poll thread must resume.
    to_resume: Vec<TopicPartition>,
    /// Whether the poll thread waits for an event to finish (see [`Dispatcher::wait_for_room`]).
    waiting_for_room: bool,
}

impl State {
    /// Unfinished events of the partitions that are not paused: what counts against the budget.
    fn unfinished(&self) -> usize {
        self.partitions.values().filter(|p| !p.paused).map(|p| p.offsets.unfinished()).sum()
    }
}

/// Pause/resume requests for the poll thread.
#[derive(Debug, Default)]
pub struct FlowChanges {
    /// Partitions to pause.
    pub pause: Vec<TopicPartition>,
    /// Partitions to resume.
    pub resume: Vec<TopicPartition>,
}

/// The key-ordered scheduler of one consumer.
pub struct Dispatcher<H, R> {
    /// Scheduling state, shared by the poll thread and the event tasks.
    state: Mutex<State>,
    /// Signalled whenever a partition's running task count drops.
    idle: Condvar,
    /// Signalled when a quarter of the budget has finished while the poll thread waits for room.
    room: Condvar,
    /// Unfinished events (of partitions not paused) at which the poll thread stops taking records.
    budget: usize,
    /// Delivers single events.
    worker: Worker<H, R>,
    /// Bound of started-but-unfinished events per partition.
    max_buffered: usize,
    /// Where event tasks are spawned.
    runtime: Handle,
    /// Parent of every partition's cancel token: shutdown.
    shutdown: CancellationToken,
}

impl<H: Handler, R: FailureRoute> Dispatcher<H, R> {
    /// A dispatcher spawning event tasks on `runtime`; `shutdown` stops them all. The poll thread stops
    /// taking records at `budget` unfinished events; a partition is paused at `max_buffered` of its own.
    pub fn new(
        worker: Worker<H, R>,
        budget: usize,
        max_buffered: usize,
        runtime: Handle,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            idle: Condvar::new(),
            room: Condvar::new(),
            budget: budget.max(1),
            worker,
            max_buffered: max_buffered.max(1),
            runtime,
            shutdown,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a task while holding the lock cannot leave the offsets in a state that commits too
        // far (offsets only move when an event finished), so a poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts tracking newly assigned partitions.
    pub fn assign(&self, partitions: &[TopicPartition]) {
        let mut state = self.lock();
        for tp in partitions {
            if state.partitions.contains_key(tp) {
                continue;
            }
            state.next_epoch += 1;
            let partition = PartitionState {
                epoch: state.next_epoch,
                offsets: OffsetTracker::default(),
                keys: HashMap::new(),
                running: 0,
                paused: false,
                cancel: self.shutdown.child_token(),
            };
            state.partitions.insert(tp.clone(), partition);
        }
    }

    /// Takes a record from the poll thread: starts it now if its key is idle, queues it behind its key
    /// otherwise. Records of unassigned or revoking partitions, and offsets already seen, are dropped (they
    /// were not started, so their offsets are never committed past).
    pub fn submit(self: &Arc<Self>, record: Record) {
        let mut state = self.lock();
        let max_buffered = self.max_buffered;
        let State { partitions, to_pause, .. } = &mut *state;
        let Some(partition) = partitions.get_mut(&record.tp) else {
            return;
        };
        if partition.cancel.is_cancelled() || !partition.offsets.start(record.offset) {
            return;
        }
        if partition.offsets.unfinished() >= max_buffered && !partition.paused {
            partition.paused = true;
            to_pause.push(record.tp.clone());
        }
        match partition.keys.entry(record.key.clone()) {
            Entry::Occupied(mut waiting) => waiting.get_mut().push_back(record),
            Entry::Vacant(slot) => {
                slot.insert(VecDeque::new());
                partition.running += 1;
                let (epoch, cancel) = (partition.epoch, partition.cancel.clone());
                let this = Arc::clone(self);
                self.runtime.spawn(async move { this.run_key(record, epoch, cancel).await });
            }
        }
    }

    /// Runs the events of one key of one partition, one after the other, until its queue is empty.
    async fn run_key(self: Arc<Self>, first: Record, epoch: u64, cancel: CancellationToken) {
        let mut record = first;
        loop {
            let delivery = self.worker.deliver(&record, &cancel).await;
            let mut state = self.lock();
            let Some(partition) = state.partitions.get_mut(&record.tp).filter(|p| p.epoch == epoch) else {
                // The partition was revoked and given up on while this event ran: its new owner has it.
                return;
            };
            if delivery == Delivery::Handled {
                partition.offsets.finish(record.offset);
            }
            // The waiting poll thread is woken once a quarter of the budget has finished, so that it takes
            // records in batches rather than one context switch per event.
            if state.waiting_for_room && state.unfinished() <= self.budget - self.budget / 4 {
                state.waiting_for_room = false;
                self.room.notify_one();
            }
            let State { partitions, to_resume, .. } = &mut *state;
            let Some(partition) = partitions.get_mut(&record.tp) else {
                return;
            };
            if partition.paused && partition.offsets.unfinished() <= self.max_buffered / 2 {
                partition.paused = false;
                to_resume.push(record.tp.clone());
            }
            let next = match delivery {
                Delivery::Handled if !cancel.is_cancelled() => {
                    partition.keys.get_mut(&record.key).and_then(VecDeque::pop_front)
                }
                _ => None,
            };
            match next {
                Some(next) => record = next,
                None => {
                    // Records still queued behind an abandoned one stay unfinished: never committed past.
                    partition.keys.remove(&record.key);
                    partition.running -= 1;
                    drop(state);
                    self.idle.notify_all();
                    return;
                }
            }
        }
    }

    /// Waits until fewer than `budget` events are unfinished, at most `limit`; returns whether there is room.
    /// The poll thread calls it before taking a record, and polls anyway after `limit` (for callbacks).
    pub fn wait_for_room(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut state = self.lock();
        loop {
            if state.unfinished() < self.budget {
                state.waiting_for_room = false;
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                state.waiting_for_room = false;
                return false;
            }
            state.waiting_for_room = true;
            state = self.room.wait_timeout(state, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Pause/resume requests since the last call.
    pub fn take_flow_changes(&self) -> FlowChanges {
        let mut state = self.lock();
        FlowChanges { pause: std::mem::take(&mut state.to_pause), resume: std::mem::take(&mut state.to_resume) }
    }

    /// Watermarks that moved since they were last taken, for the periodic commit.
    pub fn take_commits(&self) -> Vec<(TopicPartition, i64)> {
        let mut state = self.lock();
        state.partitions.iter_mut().filter_map(|(tp, p)| p.offsets.take_commit().map(|w| (tp.clone(), w))).collect()
    }

    /// Stops starting work for `partitions`, waits up to `timeout` for their running events, forgets them and
    /// returns their watermarks (to commit before the partitions go).
    pub fn revoke(&self, partitions: &[TopicPartition], timeout: Duration) -> Vec<(TopicPartition, i64)> {
        let mut state = self.lock();
        for tp in partitions {
            if let Some(p) = state.partitions.get(tp) {
                p.cancel.cancel();
            }
        }
        state = self.wait_idle(state, partitions, timeout);
        partitions
            .iter()
            .filter_map(|tp| {
                let p = state.partitions.remove(tp)?;
                if p.running > 0 {
                    tracing::warn!(
                        topic = %tp.0, partition = tp.1, running = p.running,
                        "events still running after the rebalance timeout: their new owner will deliver them again"
                    );
                }
                p.offsets.watermark().map(|w| (tp.clone(), w))
            })
            .collect()
    }

    /// Waits up to `timeout` until no event of any partition runs (shutdown must have been signalled, so
    /// nothing new starts); `true` when none runs.
    pub fn wait_until_idle(&self, timeout: Duration) -> bool {
        let state = self.lock();
        let all: Vec<TopicPartition> = state.partitions.keys().cloned().collect();
        let state = self.wait_idle(state, &all, timeout);
        state.partitions.values().all(|p| p.running == 0)
    }

    /// Every partition's watermark.
    pub fn watermarks(&self) -> Vec<(TopicPartition, i64)> {
        let state = self.lock();
        state.partitions.iter().filter_map(|(tp, p)| p.offsets.watermark().map(|w| (tp.clone(), w))).collect()
    }

    fn wait_idle<'a>(
        &self,
        mut state: MutexGuard<'a, State>,
        partitions: &[TopicPartition],
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        let deadline = Instant::now() + timeout;
        while partitions.iter().any(|tp| state.partitions.get(tp).is_some_and(|p| p.running > 0)) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self.idle.wait_timeout(state, deadline - now).map(|(s, _)| s).unwrap_or_else(|e| e.into_inner().0);
        }
        state
    }

    /// Whether the dispatcher holds `tp` paused (too many unfinished events).
    pub fn is_paused(&self, tp: &TopicPartition) -> bool {
        self.lock().partitions.get(tp).is_some_and(|p| p.paused)
    }

    /// Event tasks running, over all partitions.
    pub fn running(&self) -> usize {
        self.lock().partitions.values().map(|p| p.running).sum()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::delivery::dlq_guard::DlqGuard;
    use crate::delivery::failure::LogFailureRoute;
    use crate::delivery::handler::{Incoming, Outcome};
    use crate::delivery::retry::RetryPolicy;
    use crate::events::{CloudEvent, Customer, OrderCreated, OrderItem, PRODUCER_SOURCE};
    use crate::health::Health;

    /// A handler whose calls finish only as the test hands out permits.
    struct Gate(Arc<Semaphore>);

    impl Handler for Gate {
        fn name(&self) -> &str {
            "gate"
        }

        async fn handle(&self, _incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
            if let Ok(permit) = self.0.acquire().await {
                permit.forget();
            }
            Outcome::Done
        }
    }

    fn record(partition: i32, offset: i64) -> Record {
        let now = Utc::now();
        let data = OrderCreated {
            order_id: format!("o-{offset}"),
            customer: Customer { id: "c".into(), email: "c@example.com".into(), phone: None },
            items: vec![OrderItem { sku: "s".into(), quantity: 1, unit_price: 1 }],
            currency: "EUR".into(),
            total: 1,
            created_at: now,
        };
        let event = CloudEvent::new(uuid::Uuid::now_v7(), PRODUCER_SOURCE, now, None, data);
        Record {
            tp: (Arc::from("t"), partition),
            offset,
            key: Some(format!("k{offset}").into_bytes()),
            value: Some(serde_json::to_vec(&event).expect("serializes")),
            trace: None,
            timestamp_ms: None,
            headers: Vec::new(),
        }
    }

    fn gated_worker(gate: &Arc<Semaphore>) -> Worker<Gate, LogFailureRoute> {
        let health = Health::default();
        Worker {
            handler: Gate(Arc::clone(gate)),
            route: LogFailureRoute,
            policy: RetryPolicy {
                initial_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(1),
                max_attempts: 1,
                max_elapsed: Duration::from_secs(1),
            },
            in_flight: Arc::new(Semaphore::new(100)),
            guard: DlqGuard::new(100, Duration::from_secs(60), Duration::from_secs(60), health.clone()),
            health,
        }
    }

    #[test]
    fn the_budget_holds_back_the_poll_thread_and_only_a_stuck_partition_is_paused() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let gate = Arc::new(Semaphore::new(0));
        let worker = gated_worker(&gate);
        let dispatcher = Dispatcher::new(worker, 4, 10, runtime.handle().clone(), CancellationToken::new());
        let (p0, p1): (TopicPartition, TopicPartition) = ((Arc::from("t"), 0), (Arc::from("t"), 1));
        dispatcher.assign(&[p0.clone(), p1.clone()]);

        for offset in 0..3 {
            dispatcher.submit(record(0, offset));
        }
        assert!(dispatcher.wait_for_room(Duration::from_millis(10)), "3 unfinished, budget 4");
        dispatcher.submit(record(1, 0));
        assert!(!dispatcher.wait_for_room(Duration::from_millis(50)), "4 unfinished over two partitions: full");
        assert!(dispatcher.take_flow_changes().pause.is_empty(), "the budget pauses nothing");

        gate.add_permits(1);
        assert!(dispatcher.wait_for_room(Duration::from_secs(5)), "one finished: room again, without polling");

        // Records taken while full (the poll thread polls now and then) pile up on partition 0 until its
        // backstop pauses it; its events then stop counting, so partition 1 has room again.
        for offset in 3..12 {
            dispatcher.submit(record(0, offset));
        }
        assert_eq!(dispatcher.take_flow_changes().pause, vec![p0.clone()]);
        assert!(dispatcher.is_paused(&p0) && !dispatcher.is_paused(&p1));
        assert!(dispatcher.wait_for_room(Duration::from_millis(10)), "a paused partition holds no one back");

        gate.add_permits(100);
        assert!(dispatcher.wait_until_idle(Duration::from_secs(5)), "everything finishes");
        assert_eq!(dispatcher.take_flow_changes().resume, vec![p0.clone()], "resumed once half drained");
        assert_eq!(dispatcher.watermarks().into_iter().collect::<HashMap<_, _>>(), HashMap::from([(p0, 12), (p1, 1)]));
    }
}
