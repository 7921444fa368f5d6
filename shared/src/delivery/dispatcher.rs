//! Key-ordered scheduling with bounded memory.
//!
//! Records arrive from the poll thread in offset order. Per partition, the dispatcher keeps a queue per key:
//! the first record of an idle key starts at once (as its own task), later records of a busy key wait behind
//! it, so events with the same key are handled one at a time in offset order while different keys run
//! concurrently (the in-flight bound is the worker's semaphore). Records without a key share one queue per
//! partition, so they keep partition order.
//!
//! Memory is bounded at three levels, and the budget is shared fairly between partitions:
//! * everyday flow control: the poll thread reads each partition from its own queue and takes only what
//!   [`Dispatcher::grants`] allows: in all, no more than `budget` unfinished events; per partition, no more
//!   than its share of the budget (`budget` / partitions) waiting behind busy keys. So a partition whose
//!   records all belong to one hot key holds at most its share, and the other partitions keep moving. Nothing
//!   is paused: a partition held back keeps what librdkafka prefetched for it, and when events finish the
//!   poll thread is woken ([`Dispatcher::wait_for_work`]) to take more;
//! * a backstop per partition, for records taken outside the grants (those librdkafka hands to the
//!   consumer's own queue, for a partition that has no queue of its own): when its started-but-unfinished
//!   events reach `max_buffered_per_partition` (more than `budget`, so healthy traffic never gets there), the
//!   partition is paused, and resumed once half has drained. A paused partition's events no longer count
//!   against the budget, so the other partitions keep flowing. Pausing makes librdkafka drop what it had
//!   prefetched for the partition and fetch it again on resume, which is why it is not the everyday tool;
//! * a bound for the whole process: when the unfinished events of all partitions, paused ones included,
//!   reach `max_total` (several partitions stuck at once in a long outage), every partition is paused until
//!   half of that has finished. So memory stays bounded whatever the number of partitions.
//!
//! Each partition tracks its offsets ([`OffsetTracker`]). The poll thread applies pause/resume and commits.
//! On a revoke or shutdown the dispatcher stops starting work for the partitions concerned, waits (bounded)
//! for their running events, then aborts the calls still in flight (dropping an HTTP call closes its
//! request), so that a key's calls never overlap with those of the partition's next owner, and hands back
//! the watermarks. An event in a batch led by another partition's event is no exception: it leaves the batch
//! if the batch was not sent, and otherwise its task runs until the batch's call answers or is dropped (see
//! `batch`), so the revoke waits for it, and aborts it, like a call of its own.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::doorbell::Doorbell;
use super::failure::FailureRoute;
use super::handler::Handler;
use super::offsets::OffsetTracker;
use super::record::{Record, TopicPartition};
use super::worker::{Delivery, Stops, Worker};
use crate::telemetry::metrics::Occupancy;

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
    /// Whether the dispatcher asked the poll thread to pause the partition (its own backstop).
    paused: bool,
    /// Fires on revoke or shutdown: start nothing new for this partition.
    cancel: CancellationToken,
    /// Fires when the partition's calls still in flight must be dropped (revoke, or the drain timed out).
    abort: CancellationToken,
}

/// Everything behind the lock.
#[derive(Default)]
struct State {
    /// Assigned partitions.
    partitions: HashMap<TopicPartition, PartitionState>,
    /// The next assignment epoch.
    next_epoch: u64,
    /// Partitions paused or resumed since the poll thread last looked: it applies the state each has then.
    flow_changed: Vec<TopicPartition>,
    /// Whether every partition is paused because the process holds `max_total` unfinished events.
    over_total: bool,
}

impl State {
    /// Unfinished events of the partitions that are not paused: what counts against the budget.
    fn unfinished(&self) -> usize {
        if self.over_total {
            return 0;
        }
        self.partitions.values().filter(|p| !p.paused).map(|p| p.offsets.unfinished()).sum()
    }

    /// Unfinished events of every partition.
    fn total_unfinished(&self) -> usize {
        self.partitions.values().map(|p| p.offsets.unfinished()).sum()
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
    /// Rung when events finished while the poll thread waits for work (and by librdkafka, see the poll loop).
    doorbell: Arc<Doorbell>,
    /// Events finished so far (handled or given up), to wake the poll thread after a batch of them.
    finished: AtomicU64,
    /// The value of `finished` at which to ring the doorbell (`u64::MAX`: the poll thread does not wait).
    wake_at: AtomicU64,
    /// Unfinished events (of partitions not paused) at which the poll thread stops taking records.
    budget: usize,
    /// Delivers single events.
    worker: Worker<H, R>,
    /// Bound of started-but-unfinished events per partition.
    max_buffered: usize,
    /// Bound of started-but-unfinished events of the whole process.
    max_total: usize,
    /// Where event tasks are spawned.
    runtime: Handle,
    /// Parent of every partition's cancel token: shutdown.
    shutdown: CancellationToken,
    /// Parent of every partition's abort token.
    abort: CancellationToken,
}

/// Bounds of the unfinished events a dispatcher holds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Unfinished events (of partitions not paused) at which the poll thread stops taking records.
    pub budget: usize,
    /// Unfinished events of one partition at which it is paused.
    pub per_partition: usize,
    /// Unfinished events of the whole process at which every partition is paused.
    pub total: usize,
}

/// What [`Dispatcher::grants`] allows beyond each partition's grant.
#[derive(Debug, Clone, Copy)]
pub struct Grants {
    /// Records the poll thread may take in all.
    pub room: usize,
    /// Events finished when the grants were given.
    pub finished: u64,
}

/// The poll thread waiting for work is woken after `budget / WAKE_BATCHES` events finished.
const WAKE_BATCHES: usize = 32;

/// How long aborted calls get to notice and end.
const ABORT_GRACE: Duration = Duration::from_secs(2);

impl<H: Handler, R: FailureRoute> Dispatcher<H, R> {
    /// A dispatcher spawning event tasks on `runtime`, within `limits`; `shutdown` stops them all.
    pub fn new(worker: Worker<H, R>, limits: Limits, runtime: Handle, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            idle: Condvar::new(),
            doorbell: Arc::new(Doorbell::default()),
            finished: AtomicU64::new(0),
            wake_at: AtomicU64::new(u64::MAX),
            budget: limits.budget.max(1),
            worker,
            max_buffered: limits.per_partition.max(1),
            max_total: limits.total.max(1),
            runtime,
            shutdown,
            abort: CancellationToken::new(),
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
            if state.over_total {
                state.flow_changed.push(tp.clone());
            }
            let partition = PartitionState {
                epoch: state.next_epoch,
                offsets: OffsetTracker::default(),
                keys: HashMap::new(),
                running: 0,
                paused: false,
                cancel: self.shutdown.child_token(),
                abort: self.abort.child_token(),
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
        let State { partitions, flow_changed, over_total, .. } = &mut *state;
        let Some(partition) = partitions.get_mut(&record.tp) else {
            return;
        };
        if partition.cancel.is_cancelled() || !partition.offsets.start(record.offset) {
            return;
        }
        if partition.offsets.unfinished() >= max_buffered && !partition.paused {
            partition.paused = true;
            if !*over_total {
                flow_changed.push(record.tp.clone());
            }
        }
        match partition.keys.entry(record.key.clone()) {
            Entry::Occupied(mut waiting) => waiting.get_mut().push_back(record),
            Entry::Vacant(slot) => {
                slot.insert(VecDeque::new());
                partition.running += 1;
                let stops = Stops { cancel: partition.cancel.clone(), abort: partition.abort.clone() };
                let epoch = partition.epoch;
                let this = Arc::clone(self);
                self.runtime.spawn(async move { this.run_key(record, epoch, stops).await });
            }
        }
        if !state.over_total && state.total_unfinished() >= self.max_total {
            state.over_total = true;
            let State { partitions, flow_changed, .. } = &mut *state;
            flow_changed.extend(partitions.iter().filter(|(_, p)| !p.paused).map(|(tp, _)| tp.clone()));
            tracing::warn!(
                unfinished = self.max_total,
                "the process holds its most unfinished events (consumer.max_buffered_total): every partition paused"
            );
        }
    }

    /// Runs the events of one key of one partition, one after the other, until its queue is empty.
    async fn run_key(self: Arc<Self>, first: Record, epoch: u64, stops: Stops) {
        let mut record = first;
        loop {
            let delivery = self.worker.deliver(&record, &stops).await;
            let mut state = self.lock();
            let Some(partition) = state.partitions.get_mut(&record.tp).filter(|p| p.epoch == epoch) else {
                // The partition was revoked and given up on while this event ran: its new owner has it.
                return;
            };
            if delivery == Delivery::Handled {
                partition.offsets.finish(record.offset);
            }
            // The waiting poll thread is woken after a batch of finished events, so that it takes records in
            // batches rather than one context switch per event.
            let finished = self.finished.fetch_add(1, Ordering::SeqCst) + 1;
            if finished >= self.wake_at.load(Ordering::SeqCst) {
                self.wake_at.store(u64::MAX, Ordering::SeqCst);
                self.doorbell.ring();
            }
            if state.over_total && state.total_unfinished() <= self.max_total / 2 {
                state.over_total = false;
                let State { partitions, flow_changed, .. } = &mut *state;
                flow_changed.extend(partitions.iter().filter(|(_, p)| !p.paused).map(|(tp, _)| tp.clone()));
                tracing::info!("half of the process's unfinished events finished: partitions resumed");
            }
            let State { partitions, flow_changed, over_total, .. } = &mut *state;
            let Some(partition) = partitions.get_mut(&record.tp) else {
                return;
            };
            if partition.paused && partition.offsets.unfinished() <= self.max_buffered / 2 {
                partition.paused = false;
                if !*over_total {
                    flow_changed.push(record.tp.clone());
                }
            }
            let next = match delivery {
                Delivery::Handled if !stops.cancel.is_cancelled() => {
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

    /// What the poll thread may take now from each of `partitions`, written to `grants` in the same order
    /// (`None`: the partition is no longer assigned): at most its share of the budget minus the records
    /// already waiting behind its busy keys, nothing while it is paused; and, returned, how many in all.
    pub fn grants<'a>(
        &self,
        partitions: impl Iterator<Item = &'a TopicPartition>,
        grants: &mut Vec<Option<usize>>,
    ) -> Grants {
        let state = self.lock();
        let flowing = state.partitions.values().filter(|p| !p.paused).count();
        let share = (self.budget / flowing.max(1)).max(1);
        grants.clear();
        grants.extend(partitions.map(|tp| {
            state.partitions.get(tp).map(|p| {
                if p.paused || state.over_total || p.cancel.is_cancelled() {
                    0
                } else {
                    share.saturating_sub(p.offsets.unfinished() - p.running)
                }
            })
        }));
        Grants { room: self.budget.saturating_sub(state.unfinished()), finished: self.finished.load(Ordering::SeqCst) }
    }

    /// The poll thread took nothing it was granted: waits until a batch of events has finished since
    /// `grants.finished` (so that the shares and the budget may have room again), or the doorbell rings (a
    /// partition's queue received records), at most `limit`.
    pub fn wait_for_work(&self, grants: &Grants, limit: Duration) {
        let batch = u64::try_from(self.budget / WAKE_BATCHES).unwrap_or(u64::MAX).max(1);
        let wake_at = grants.finished.saturating_add(batch);
        self.wake_at.store(wake_at, Ordering::SeqCst);
        if self.finished.load(Ordering::SeqCst) < wake_at {
            self.doorbell.wait(limit);
        }
        self.wake_at.store(u64::MAX, Ordering::SeqCst);
    }

    /// The doorbell [`Dispatcher::wait_for_work`] waits on, for librdkafka to ring when a partition's queue
    /// receives records.
    pub fn doorbell(&self) -> Arc<Doorbell> {
        Arc::clone(&self.doorbell)
    }

    /// How full the runtime is now, for the occupancy gauges: `max_in_flight` is the size of the worker's
    /// in-flight semaphore.
    pub fn occupancy(&self, max_in_flight: usize) -> Occupancy {
        let in_flight = max_in_flight.saturating_sub(self.worker.in_flight.available_permits());
        let state = self.lock();
        let partitions = state.partitions.values();
        Occupancy {
            in_flight,
            buffered: state.total_unfinished(),
            keys_waiting: partitions.clone().map(|p| p.keys.values().filter(|q| !q.is_empty()).count()).sum(),
            assigned: state.partitions.len(),
            paused: if state.over_total { state.partitions.len() } else { partitions.filter(|p| p.paused).count() },
        }
    }

    /// The partitions paused or resumed since the last call, each once, with the state it must have now: a
    /// partition paused, resumed and paused again in between is paused.
    pub fn take_flow_changes(&self) -> FlowChanges {
        let mut state = self.lock();
        let changed = std::mem::take(&mut state.flow_changed);
        let mut changes = FlowChanges::default();
        let mut seen = HashSet::with_capacity(changed.len());
        for tp in changed {
            let Some(partition) = state.partitions.get(&tp) else {
                continue;
            };
            if !seen.insert(tp.clone()) {
                continue;
            }
            if state.over_total || partition.paused {
                changes.pause.push(tp);
            } else {
                changes.resume.push(tp);
            }
        }
        changes
    }

    /// Watermarks that moved since they were last taken, for the periodic commit.
    pub fn take_commits(&self) -> Vec<(TopicPartition, i64)> {
        let mut state = self.lock();
        state.partitions.iter_mut().filter_map(|(tp, p)| p.offsets.take_commit().map(|w| (tp.clone(), w))).collect()
    }

    /// Stops starting work for `partitions`, waits up to `timeout` for their running events, aborts the calls
    /// still in flight (at once when the assignment was `lost`: another member owns the partitions already),
    /// forgets the partitions and returns their watermarks (to commit before the partitions go).
    pub fn revoke(&self, partitions: &[TopicPartition], timeout: Duration, lost: bool) -> Vec<(TopicPartition, i64)> {
        let mut state = self.lock();
        for tp in partitions {
            if let Some(p) = state.partitions.get(tp) {
                p.cancel.cancel();
            }
        }
        if !lost {
            state = self.wait_idle(state, partitions, timeout);
        }
        let mut aborted = 0;
        for tp in partitions {
            if let Some(p) = state.partitions.get(tp).filter(|p| p.running > 0) {
                aborted += p.running;
                p.abort.cancel();
            }
        }
        if aborted > 0 {
            state = self.wait_idle(state, partitions, ABORT_GRACE);
            tracing::warn!(
                aborted,
                lost,
                "calls of revoked partitions aborted{}: their new owner delivers those events again (same idempotency keys)",
                if lost { " at once, the assignment was lost" } else { " after the rebalance timeout" }
            );
        }
        partitions
            .iter()
            .filter_map(|tp| {
                let p = state.partitions.remove(tp)?;
                if p.running > 0 {
                    tracing::error!(
                        topic = %tp.0, partition = tp.1, running = p.running,
                        "event tasks of a revoked partition did not end after their calls were aborted"
                    );
                }
                p.offsets.watermark().map(|w| (tp.clone(), w))
            })
            .collect()
    }

    /// Aborts every call still in flight (shutdown, after the drain timeout) and waits briefly for the tasks
    /// to end; `true` when none runs any more.
    pub fn abort_all(&self) -> bool {
        self.abort.cancel();
        self.wait_until_idle(ABORT_GRACE)
    }

    /// An asynchronous commit of `partitions` failed: their watermarks will be committed again.
    pub fn commit_failed(&self, partitions: &[TopicPartition]) {
        let mut state = self.lock();
        for tp in partitions {
            if let Some(p) = state.partitions.get_mut(tp) {
                p.offsets.commit_failed();
            }
        }
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
    #[cfg(test)]
    pub fn is_paused(&self, tp: &TopicPartition) -> bool {
        self.lock().partitions.get(tp).is_some_and(|p| p.paused)
    }

    /// Partitions assigned now.
    pub fn assigned(&self) -> usize {
        self.lock().partitions.len()
    }

    /// Event tasks running, over all partitions.
    pub fn running(&self) -> usize {
        self.lock().partitions.values().map(|p| p.running).sum()
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::Semaphore;

    use super::*;
    use crate::delivery::batch::{Batches, Batching};
    use crate::delivery::dlq_guard::DlqGuard;
    use crate::delivery::failure::LogFailureRoute;
    use crate::delivery::handler::{Incoming, Outcome};
    use crate::delivery::retry::RetryPolicy;
    use crate::delivery::throttle::{ThrottlePolicy, Throttles};
    use crate::health::Health;

    /// A handler whose calls finish only as the test hands out permits.
    struct Gate(Arc<Semaphore>);

    impl Handler for Gate {
        async fn handle(&self, _incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
            if let Ok(permit) = self.0.acquire().await {
                permit.forget();
            }
            Outcome::Done
        }
    }

    fn record(partition: i32, offset: i64) -> Record {
        crate::delivery::record::order_record((Arc::from("t"), partition), offset, &format!("k{offset}"))
    }

    fn gated_worker(gate: &Arc<Semaphore>) -> Worker<Gate, LogFailureRoute> {
        worker_of(Gate(Arc::clone(gate)), None)
    }

    /// A worker for `handler` (one attempt per event, a route that logs), batching with `batches`.
    fn worker_of<H: Handler>(handler: H, batches: Option<Batches>) -> Worker<H, LogFailureRoute> {
        let health = Health::default();
        let metrics = crate::telemetry::metrics::EventMetrics::new(Arc::from("gate"));
        let throttle = ThrottlePolicy { alert_after: Duration::from_secs(60), charge_after: None };
        Worker {
            handler,
            decoder: crate::formats::Decoder::new(crate::formats::Reading::cloudevents()),
            throttles: Throttles::new(throttle, &metrics, health.clone()),
            metrics,
            route: LogFailureRoute,
            policy: RetryPolicy {
                initial_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(1),
                max_attempts: 1,
                max_elapsed: Duration::from_secs(1),
            },
            in_flight: Arc::new(Semaphore::new(100)),
            guard: DlqGuard::new(100, Duration::from_secs(60), Arc::from("gate"), health.clone()),
            batches,
            health,
        }
    }

    /// A dispatcher over a [`gated_worker`].
    type GatedDispatcher = Dispatcher<Gate, LogFailureRoute>;

    /// A dispatcher with `limits` over a [`gated_worker`], partitions 0..`partitions` of topic `t` assigned; the
    /// runtime comes first so that it outlives the dispatcher.
    fn gated_dispatcher(
        limits: Limits,
        partitions: i32,
    ) -> (tokio::runtime::Runtime, Arc<Semaphore>, Arc<GatedDispatcher>, Vec<TopicPartition>) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let gate = Arc::new(Semaphore::new(0));
        let dispatcher =
            Dispatcher::new(gated_worker(&gate), limits, runtime.handle().clone(), CancellationToken::new());
        let parts: Vec<TopicPartition> = (0..partitions).map(|p| (Arc::from("t"), p)).collect();
        dispatcher.assign(&parts);
        (runtime, gate, dispatcher, parts)
    }

    /// The grants for `partitions`, and the room in all.
    fn grants_of<H: Handler, R: FailureRoute>(
        dispatcher: &Dispatcher<H, R>,
        partitions: &[TopicPartition],
    ) -> (Vec<Option<usize>>, Grants) {
        let mut granted = Vec::new();
        let grants = dispatcher.grants(partitions.iter(), &mut granted);
        (granted, grants)
    }

    #[test]
    fn the_budget_holds_back_the_poll_thread_and_only_a_stuck_partition_is_paused() {
        let (_runtime, gate, dispatcher, both) =
            gated_dispatcher(Limits { budget: 4, per_partition: 10, total: 1000 }, 2);
        let (p0, p1) = (both[0].clone(), both[1].clone());

        for offset in 0..3 {
            dispatcher.submit(record(0, offset));
        }
        assert_eq!(grants_of(&dispatcher, &both).1.room, 1, "3 unfinished, budget 4");
        dispatcher.submit(record(1, 0));
        let (_, full) = grants_of(&dispatcher, &both);
        assert_eq!(full.room, 0, "4 unfinished over two partitions: full");
        assert!(dispatcher.take_flow_changes().pause.is_empty(), "the budget pauses nothing");

        // The poll thread waits for work; an event finishing wakes it (budget 4: a batch of one).
        let waiter = {
            let dispatcher = Arc::clone(&dispatcher);
            std::thread::spawn(move || {
                let started = Instant::now();
                dispatcher.wait_for_work(&full, Duration::from_secs(30));
                started.elapsed()
            })
        };
        gate.add_permits(1);
        assert!(waiter.join().expect("waits") < Duration::from_secs(30), "woken by the finished event");
        assert_eq!(grants_of(&dispatcher, &both).1.room, 1, "one finished: room again");

        // Records taken outside the grants (the consumer's own queue) pile up on partition 0 until its
        // backstop pauses it; its events then stop counting, so partition 1 has room again.
        for offset in 3..12 {
            dispatcher.submit(record(0, offset));
        }
        assert_eq!(dispatcher.take_flow_changes().pause, vec![p0.clone()]);
        assert!(dispatcher.is_paused(&p0) && !dispatcher.is_paused(&p1));
        let (granted, grants) = grants_of(&dispatcher, &both);
        assert!(grants.room > 0, "a paused partition holds no one back");
        assert_eq!(granted, vec![Some(0), Some(4)], "nothing for the paused partition, the whole budget for the other");

        gate.add_permits(100);
        assert!(dispatcher.wait_until_idle(Duration::from_secs(5)), "everything finishes");
        assert_eq!(dispatcher.take_flow_changes().resume, vec![p0.clone()], "resumed once half drained");
        assert_eq!(dispatcher.watermarks().into_iter().collect::<HashMap<_, _>>(), HashMap::from([(p0, 12), (p1, 1)]));
    }

    #[test]
    fn a_partition_paused_resumed_and_paused_again_before_the_poll_thread_looks_is_asked_to_pause() {
        let (_runtime, gate, dispatcher, parts) =
            gated_dispatcher(Limits { budget: 2, per_partition: 4, total: 1000 }, 1);
        let p0 = parts[0].clone();
        let fill = |offsets: std::ops::Range<i64>| {
            for offset in offsets {
                dispatcher.submit(record(0, offset));
            }
        };
        fill(0..5);
        gate.add_permits(5);
        assert!(dispatcher.wait_until_idle(Duration::from_secs(5)), "the first five finish");
        fill(5..10);
        assert!(dispatcher.is_paused(&p0));
        let changes = dispatcher.take_flow_changes();
        assert_eq!((changes.pause, changes.resume), (vec![p0], vec![]), "its last state, once");
    }

    #[test]
    fn a_partition_full_of_one_hot_key_holds_its_share_and_the_others_keep_theirs() {
        let (_runtime, gate, dispatcher, parts) =
            gated_dispatcher(Limits { budget: 8, per_partition: 100, total: 1000 }, 2);
        let hot = |offset| crate::delivery::record::order_record(parts[0].clone(), offset, "hot");

        // One running, three waiting behind it: partition 0 may take one more (its share is 8 / 2 = 4).
        for offset in 0..4 {
            dispatcher.submit(hot(offset));
        }
        assert_eq!(grants_of(&dispatcher, &parts).0, vec![Some(1), Some(4)]);
        dispatcher.submit(hot(4));
        let (granted, grants) = grants_of(&dispatcher, &parts);
        assert_eq!(granted, vec![Some(0), Some(4)], "partition 0 holds its share: nothing more for it");
        assert_eq!(grants.room, 3, "the rest of the budget is left for partition 1");
        // Partition 1's keys all start: they wait behind no one, so its share is not used up.
        for offset in 0..3 {
            dispatcher.submit(record(1, offset));
        }
        assert_eq!(grants_of(&dispatcher, &parts).0, vec![Some(0), Some(4)]);
        assert_eq!(dispatcher.running(), 4, "the hot key and partition 1's three keys");

        // The four running events get a permit each (the gate serves its waiters in order): the hot key's
        // first finishes, its next starts, and a place of partition 0's share is free again.
        gate.add_permits(4);
        let deadline = Instant::now() + Duration::from_secs(5);
        while grants_of(&dispatcher, &parts).0[0] == Some(0) && Instant::now() < deadline {
            dispatcher.wait_until_idle(Duration::from_millis(5));
        }
        assert!(grants_of(&dispatcher, &parts).0[0].is_some_and(|g| g >= 1), "the hot key moved on");
        assert!(!dispatcher.is_paused(&parts[0]), "held back by its share, never paused");
        gate.add_permits(100);
        assert!(dispatcher.wait_until_idle(Duration::from_secs(5)));
        assert!(dispatcher.take_flow_changes().pause.is_empty());
    }

    #[test]
    fn the_process_bound_pauses_every_partition_until_half_has_finished() {
        let (_runtime, gate, dispatcher, parts) = gated_dispatcher(Limits { budget: 4, per_partition: 5, total: 8 }, 3);
        // Partitions 0 and 1 take four records each, below their own backstop of 5 (as the poll thread takes
        // a record now and then past the budget): on the 8th unfinished event of the process, every partition
        // is paused.
        for offset in 0..4 {
            dispatcher.submit(record(0, offset));
            dispatcher.submit(record(1, offset));
        }
        let paused: HashSet<TopicPartition> = dispatcher.take_flow_changes().pause.into_iter().collect();
        assert_eq!(paused, parts.iter().cloned().collect(), "8 unfinished: every partition paused");
        dispatcher.submit(record(2, 0));
        assert_eq!(dispatcher.running(), 9, "a record already fetched is still taken");
        assert!(dispatcher.take_flow_changes().pause.is_empty(), "nothing left to pause");

        // Half of the bound finished: every partition not held by its own backstop resumes.
        gate.add_permits(5);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut resumed = HashSet::new();
        while resumed.len() < 3 && Instant::now() < deadline {
            resumed.extend(dispatcher.take_flow_changes().resume);
            dispatcher.wait_until_idle(Duration::from_millis(10));
        }
        assert_eq!(resumed, parts.iter().cloned().collect::<HashSet<_>>(), "all resumed once half finished");
        gate.add_permits(100);
        assert!(dispatcher.wait_until_idle(Duration::from_secs(5)));
    }

    /// A handler that sends its events in batches, recording the partitions of each call's events; a call
    /// answers once the gate gives it a permit, and counts itself running until it answers or is dropped.
    struct GatedBatches {
        /// Lets calls answer.
        gate: Arc<Semaphore>,
        /// The partitions of each call's events, in call order.
        calls: Mutex<Vec<Vec<i32>>>,
        /// Calls running now.
        running: Arc<std::sync::atomic::AtomicUsize>,
    }

    /// Counts a call running while it lives.
    struct Running(Arc<std::sync::atomic::AtomicUsize>);

    impl Drop for Running {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl Handler for GatedBatches {
        async fn handle(&self, _incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
            Outcome::Done
        }

        async fn handle_batch(&self, batch: &[Incoming], _channel: Option<&'static str>) -> Vec<Outcome> {
            self.calls.lock().expect("calls").push(batch.iter().map(|i| i.partition).collect());
            self.running.fetch_add(1, Ordering::SeqCst);
            let _running = Running(Arc::clone(&self.running));
            if let Ok(permit) = self.gate.acquire().await {
                permit.forget();
            }
            vec![Outcome::Done; batch.len()]
        }
    }

    /// A dispatcher over [`GatedBatches`] batching up to `max_events` for up to `max_wait`, partitions 0 and 1
    /// assigned; partition 0's record 0 leads a batch that partition 1's record 0 joins.
    fn batch_across_partitions(
        max_events: usize,
        max_wait: Duration,
    ) -> (tokio::runtime::Runtime, Arc<Dispatcher<GatedBatches, LogFailureRoute>>, Vec<TopicPartition>) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let handler =
            GatedBatches { gate: Arc::new(Semaphore::new(0)), calls: Mutex::default(), running: Arc::default() };
        let worker = worker_of(handler, Some(Batches::new(Batching { max_events, max_wait })));
        let limits = Limits { budget: 100, per_partition: 100, total: 1000 };
        let dispatcher = Dispatcher::new(worker, limits, runtime.handle().clone(), CancellationToken::new());
        let parts: Vec<TopicPartition> = (0..2).map(|p| (Arc::from("t"), p)).collect();
        dispatcher.assign(&parts);
        let batches = dispatcher.worker.batches.as_ref().expect("batching");
        let deadline = Instant::now() + Duration::from_secs(5);
        // Partition 1's record is submitted once partition 0's has opened the batch, so the leader is known.
        dispatcher.submit(record(0, 0));
        while batches.open() < 1 {
            assert!(Instant::now() < deadline, "partition 0's event opens a batch");
            std::thread::yield_now();
        }
        dispatcher.submit(record(1, 0));
        while batches.joined() < 1 && dispatcher.worker.handler.calls.lock().expect("calls").is_empty() {
            assert!(Instant::now() < deadline, "partition 1's event joins partition 0's batch");
            std::thread::yield_now();
        }
        (runtime, dispatcher, parts)
    }

    #[test]
    fn a_revoked_partitions_event_is_never_sent_in_another_partitions_batch_after_the_revoke() {
        // The batch gathers for 500 ms; the revoke of partition 1 gives its events 50 ms, then aborts them.
        let (_runtime, dispatcher, parts) = batch_across_partitions(10, Duration::from_millis(500));
        let watermarks = dispatcher.revoke(&parts[1..], Duration::from_millis(50), false);
        assert_eq!(watermarks, vec![(parts[1].clone(), 0)], "partition 1's event was not finished: not committed past");
        let handler = &dispatcher.worker.handler;
        handler.gate.add_permits(100);
        assert!(dispatcher.wait_until_idle(Duration::from_secs(5)), "partition 0's event finishes");
        let calls = handler.calls.lock().expect("calls").clone();
        assert_eq!(calls, [vec![0]], "the batch went without the revoked partition's event");
    }

    #[test]
    fn a_revoke_drops_a_batch_call_in_flight_holding_its_events_before_it_returns() {
        // A full batch (two events) is sent at once and its call waits for the gate.
        let (_runtime, dispatcher, parts) = batch_across_partitions(2, Duration::from_millis(200));
        let handler = &dispatcher.worker.handler;
        let deadline = Instant::now() + Duration::from_secs(5);
        while handler.running.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the batch is sent");
            std::thread::yield_now();
        }
        assert_eq!(*handler.calls.lock().expect("calls"), [vec![0, 1]]);
        dispatcher.revoke(&parts[1..], Duration::from_millis(50), false);
        assert_eq!(handler.running.load(Ordering::SeqCst), 0, "the call holding partition 1's event was dropped");
        handler.gate.add_permits(100);
        assert!(dispatcher.wait_until_idle(Duration::from_secs(5)), "partition 0's event is tried again and finishes");
        let calls = handler.calls.lock().expect("calls").clone();
        assert_eq!(calls, [vec![0, 1], vec![0]], "partition 0's event went again alone: {calls:?}");
        assert_eq!(dispatcher.watermarks(), vec![(parts[0].clone(), 1)]);
    }
}
