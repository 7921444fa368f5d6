//! The poll thread: it owns the rdkafka consumer, hands records to the dispatcher, applies the dispatcher's
//! pause/resume requests, and commits the partitions' watermarks every `consumer.commit_interval_ms`
//! (auto-commit is off: only the contiguous finished prefix is ever committed).
//!
//! Each assigned partition has a queue of its own (see the context). In turns that start with a different
//! partition each time, the thread takes from each queue what the dispatcher grants it (its share of the
//! budget, see the dispatcher), so a partition full of one hot key's records cannot crowd out the others.
//! When it may take nothing, it waits on the dispatcher's doorbell: rung by librdkafka when a partition's
//! queue receives records, and by the dispatcher when a batch of events has finished. Between turns it serves
//! the consumer's own queue: rebalances, statistics, errors, commit results.
//!
//! librdkafka reports the result of a manual asynchronous commit only to an `offset_commit_cb`, which rdkafka's
//! event API never sets, so a failed periodic commit goes unnoticed where it happens. Instead, every
//! [`RECOMMIT_EVERY`] the poll thread commits every watermark again, moved or not: a lost commit is repaired
//! within that time (the commit callback still handles a reported failure, should one come). When librdkafka
//! reports every broker down, readiness says so until the cluster answers again.
//!
//! On shutdown the thread pauses every partition (no more fetching), keeps polling (heartbeats, rebalances)
//! while running events finish for up to `consumer.drain_timeout_ms`, commits the watermarks, and closes the
//! consumer, which leaves the group.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::dispatcher::{Dispatcher, Grants};
use super::failure::FailureRoute;
use super::handler::Handler;
use super::kafka_context::{KAFKA, OwnQueue, RuntimeContext};
use super::record::{Record, TopicPartition};
use crate::telemetry::metrics::{self, Label};

/// How often every watermark is committed again, moved or not: a commit that failed without notice (an
/// asynchronous commit's result goes unreported) is repaired within this time.
pub const RECOMMIT_EVERY: Duration = Duration::from_secs(10);

/// At most this many records are taken from one partition's queue in one turn, so that the budget's room is
/// shared out in turns.
const TAKE_PER_TURN: usize = 64;

/// How long the poll thread waits for work, or on the consumer's queue while no partition is assigned, before
/// it serves the consumer's queue again.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Commits `watermarks` of the consumer `label`s metrics name; `false` when the commit could not be sent or
/// (synchronous) was refused. An asynchronous commit's result is not reported (see the module): the poll loop
/// sends every watermark again every [`RECOMMIT_EVERY`].
pub(super) fn commit<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    label: &Label,
    watermarks: &[(TopicPartition, i64)],
    mode: CommitMode,
) -> bool {
    if watermarks.is_empty() {
        return true;
    }
    let mut list = TopicPartitionList::with_capacity(watermarks.len());
    for ((topic, partition), offset) in watermarks {
        if let Err(error) = list.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::warn!(%error, "cannot build the commit list");
            return false;
        }
    }
    match consumer.commit(&list, mode) {
        Ok(()) => {
            metrics::committed(label, watermarks);
            true
        }
        Err(error) => {
            tracing::warn!(%error, ?mode, "commit failed");
            metrics::commit_refused(label);
            false
        }
    }
}

/// The poll thread's state.
pub(super) struct PollLoop<H: Handler, R: FailureRoute> {
    /// The Kafka consumer.
    pub(super) consumer: Arc<BaseConsumer<RuntimeContext<H, R>>>,
    /// The queue of each assigned partition, in the order turns go round.
    pub(super) queues: Vec<OwnQueue<RuntimeContext<H, R>>>,
    /// What the dispatcher granted each of `queues` in this turn.
    pub(super) granted: Vec<Option<usize>>,
    /// Which queue the next turn starts with.
    pub(super) turn: usize,
    /// The scheduler.
    pub(super) dispatcher: Arc<Dispatcher<H, R>>,
    /// The process-wide shutdown signal.
    pub(super) shutdown: CancellationToken,
    /// Cancels every event task (a child of `shutdown`).
    pub(super) events: CancellationToken,
    /// Set when the owning future was dropped: stop without draining or committing.
    pub(super) abandoned: Arc<AtomicBool>,
    /// How often watermarks are committed.
    pub(super) commit_interval: Duration,
    /// How long running events may take after shutdown.
    pub(super) drain_timeout: Duration,
    /// How long without any assigned partition before leaving and joining the group again (`None`: never).
    pub(super) rejoin_after: Option<Duration>,
    /// Since when no partition is assigned, while none is.
    pub(super) unassigned_since: Option<Instant>,
    /// The subscribed topics, for joining again.
    pub(super) subscription: Vec<String>,
    /// The group, for logs.
    pub(super) group: String,
    /// Interned topic names.
    pub(super) topics: HashMap<String, Arc<str>>,
    /// The consumer, as its metrics are labelled.
    pub(super) consumer_label: Label,
    /// `consumer.max_in_flight`, for the in-flight gauge.
    pub(super) max_in_flight: usize,
}

impl<H: Handler, R: FailureRoute> PollLoop<H, R> {
    /// Polls until shutdown (then drains, commits and leaves the group) or until abandoned.
    pub(super) fn run(mut self) {
        let mut last_commit = Instant::now();
        let mut last_recommit = Instant::now();
        while !self.shutdown.is_cancelled() && !self.abandoned.load(Ordering::SeqCst) {
            self.serve_consumer_queue(if self.queues.is_empty() { POLL_TIMEOUT } else { Duration::ZERO });
            self.take_split_queues();
            let (took, grants) = self.take_granted();
            if took == 0 && !self.queues.is_empty() {
                self.dispatcher.wait_for_work(&grants, POLL_TIMEOUT);
            }
            self.apply_flow_changes();
            if last_commit.elapsed() >= self.commit_interval {
                let mut watermarks = self.dispatcher.take_commits();
                if last_recommit.elapsed() >= RECOMMIT_EVERY {
                    // All of them, moved or not: a failed asynchronous commit is not reported (see the module).
                    watermarks = self.dispatcher.watermarks();
                    last_recommit = Instant::now();
                }
                if !commit(&self.consumer, &self.consumer_label, &watermarks, CommitMode::Async) {
                    self.dispatcher.commit_failed(&watermarks.into_iter().map(|(tp, _)| tp).collect::<Vec<_>>());
                }
                self.check_brokers();
                self.rejoin_when_unassigned();
                metrics::occupancy(&self.consumer_label, self.dispatcher.occupancy(self.max_in_flight));
                last_commit = Instant::now();
            }
        }
        if self.abandoned.load(Ordering::SeqCst) {
            self.drop_queues();
            self.events.cancel();
            self.dispatcher.abort_all();
            tracing::warn!(group = %self.group, "consumer abandoned: stopping without drain or commit");
            return;
        }
        self.shut_down();
    }

    /// Serves the consumer's own queue (callbacks; the records of a partition without a queue of its own),
    /// waiting up to `timeout` for the first thing to serve.
    fn serve_consumer_queue(&mut self, timeout: Duration) {
        let mut timeout = timeout;
        for _ in 0..TAKE_PER_TURN {
            match self.consumer.poll(timeout) {
                Some(Ok(message)) => {
                    let topic = match self.topics.get(message.topic()) {
                        Some(t) => Arc::clone(t),
                        None => {
                            let t: Arc<str> = Arc::from(message.topic());
                            self.topics.insert(message.topic().to_owned(), Arc::clone(&t));
                            t
                        }
                    };
                    self.dispatcher.submit(Record::from_message(topic, &message));
                }
                Some(Err(error)) => tracing::warn!(%error, "kafka consumer error; continuing"),
                None => return,
            }
            timeout = Duration::ZERO;
        }
    }

    /// Takes the queues the context split off for newly assigned partitions (replacing an earlier queue of
    /// the same partition).
    fn take_split_queues(&mut self) {
        for own in self.consumer.context().take_split_queues() {
            self.queues.retain(|q| q.tp != own.tp);
            self.queues.push(own);
        }
    }

    /// One turn: takes from each partition's queue what the dispatcher grants, starting with a different
    /// partition each turn; drops the queues of partitions no longer assigned. Returns how many records
    /// were taken, and the grants.
    fn take_granted(&mut self) -> (usize, Grants) {
        let grants = self.dispatcher.grants(self.queues.iter().map(|q| &q.tp), &mut self.granted);
        if self.granted.iter().any(Option::is_none) {
            let mut granted = self.granted.iter();
            self.queues.retain(|_| granted.next().is_some_and(Option::is_some));
            self.granted.retain(Option::is_some);
        }
        let count = self.queues.len();
        let mut room = grants.room;
        let mut took = 0;
        for i in 0..count {
            if room == 0 {
                break;
            }
            let at = (self.turn + i) % count;
            let limit = self.granted[at].unwrap_or(0).min(room).min(TAKE_PER_TURN);
            let own = &self.queues[at];
            let mut taken = 0;
            while taken < limit {
                match own.queue.poll(Duration::ZERO) {
                    Some(Ok(message)) => {
                        self.dispatcher.submit(Record::from_message(Arc::clone(&own.tp.0), &message));
                        taken += 1;
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, topic = %own.tp.0, partition = own.tp.1, "kafka consumer error; continuing");
                        break;
                    }
                    None => break,
                }
            }
            room -= taken;
            took += taken;
        }
        self.turn = self.turn.wrapping_add(1);
        (took, grants)
    }

    /// Drops every partition queue, those the context still holds included: each holds the consumer, which
    /// only closes (and leaves the group) once the last of them is gone.
    fn drop_queues(&mut self) {
        self.queues.clear();
        drop(self.consumer.context().take_split_queues());
    }

    fn apply_flow_changes(&self) {
        let changes = self.dispatcher.take_flow_changes();
        for (list, pause) in [(changes.pause, true), (changes.resume, false)] {
            if list.is_empty() {
                continue;
            }
            let mut tpl = TopicPartitionList::new();
            for (topic, partition) in &list {
                tpl.add_partition(topic, *partition);
            }
            let result = if pause { self.consumer.pause(&tpl) } else { self.consumer.resume(&tpl) };
            match result {
                Ok(()) => tracing::debug!(partitions = ?list, pause, "partition flow changed"),
                Err(error) => {
                    tracing::debug!(%error, pause, "pause/resume of a partition no longer assigned")
                }
            }
        }
    }

    /// Leaves and joins the group again when no partition has been assigned for `rejoin_after`
    /// (`kafka.rejoin_unassigned_after_ms`).
    ///
    /// Tansu 0.6.0's group coordinator can complete a rebalance with an empty assignment for a member that
    /// joined while a dead member was still its leader, and then never rebalances again (RELIABILITY.md: the
    /// cause, and the reproduction without courier). Leaving makes the coordinator drop the member and the
    /// next join elects it leader, which assigns the partitions. On Apache Kafka the same rejoin is only an
    /// extra rebalance, which is why the setting is off by default.
    fn rejoin_when_unassigned(&mut self) {
        let Some(rejoin_after) = self.rejoin_after else {
            return;
        };
        if self.dispatcher.assigned() > 0 {
            self.unassigned_since = None;
            return;
        }
        let since = *self.unassigned_since.get_or_insert_with(Instant::now);
        if since.elapsed() < rejoin_after {
            return;
        }
        tracing::warn!(
            group = %self.group,
            unassigned_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
            "no partition assigned for too long (kafka.rejoin_unassigned_after_ms): leaving and joining the group again"
        );
        self.consumer.unsubscribe();
        let topics: Vec<&str> = self.subscription.iter().map(String::as_str).collect();
        if let Err(error) = self.consumer.subscribe(&topics) {
            tracing::error!(%error, group = %self.group, "cannot subscribe again");
        }
        self.unassigned_since = Some(Instant::now());
    }

    /// While librdkafka reports every broker down, asks the cluster for its metadata (briefly: this blocks
    /// the poll thread) and, when it answers, clears the readiness problem.
    fn check_brokers(&self) {
        let context = self.consumer.context();
        if !context.brokers_down.load(Ordering::SeqCst) {
            return;
        }
        if self.consumer.fetch_metadata(None, Duration::from_millis(500)).is_ok() {
            context.brokers_down.store(false, Ordering::SeqCst);
            context.health.clear(KAFKA);
            tracing::info!(group = %self.group, "the Kafka cluster answers again: ready");
        }
    }

    fn shut_down(mut self) {
        tracing::info!(group = %self.group, "shutting down: no more fetching, waiting for running events");
        self.events.cancel();
        if let Ok(assignment) = self.consumer.assignment() {
            let _ = self.consumer.pause(&assignment);
        }
        let deadline = Instant::now() + self.drain_timeout;
        // Keep serving the group (heartbeats, callbacks) while events finish; fetched records are dropped:
        // they were never started, so nothing past them is committed.
        loop {
            if self.dispatcher.wait_until_idle(Duration::from_millis(100)) {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    running = self.dispatcher.running(),
                    "events still running at the drain timeout: they will be delivered again"
                );
                break;
            }
            let _ = self.consumer.poll(Duration::ZERO);
        }
        if !self.dispatcher.abort_all() {
            tracing::error!(
                running = self.dispatcher.running(),
                "event tasks did not end after their calls were aborted"
            );
        }
        let watermarks = self.dispatcher.watermarks();
        commit(&self.consumer, &self.consumer_label, &watermarks, CommitMode::Sync);
        tracing::info!(
            group = %self.group,
            committed = ?watermarks.iter().map(|(tp, o)| format!("{}/{}@{o}", tp.0, tp.1)).collect::<Vec<_>>(),
            "watermarks committed; leaving the group"
        );
        self.drop_queues();
        self.consumer.unsubscribe();
        self.drop_queues();
        drop(self.consumer);
        tracing::info!(group = %self.group, "consumer stopped");
    }
}
