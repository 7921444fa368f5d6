//! The consumer: one thread polls Kafka and feeds the [`Dispatcher`]; event tasks run on the tokio runtime.
//!
//! The poll thread owns the rdkafka consumer. It hands each record to the dispatcher, applies the
//! dispatcher's pause/resume requests, and commits the partitions' watermarks every
//! `consumer.commit_interval_ms` (auto-commit is off: only the contiguous finished prefix is ever committed).
//! Rebalance callbacks run on this thread too: on revoke, the revoked partitions start no new work, their
//! running events get up to `consumer.rebalance_timeout_ms` to finish, the calls still in flight are then
//! aborted, and the watermark is committed synchronously before the partitions go — unless the assignment
//! was lost (the member was evicted and another owns the partitions already): then calls are aborted at once
//! and nothing is committed. On assign, consumption starts from the committed offsets, and the partitions
//! are resumed (librdkafka keeps a pause across revoke and assign; the new assignment starts unpaused).
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

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use tokio::net::TcpListener;

use super::dispatcher::Dispatcher;
use super::dispatcher::Limits;
use super::dlq::DeadLetterRoute;
use super::dlq_guard::DlqGuard;
use super::failure::{FailureRoute, LogFailureRoute};
use super::handler::Handler;
use super::record::{Record, TopicPartition};
use super::retry::RetryPolicy;
use super::worker::Worker;
use crate::health::{self, Health};
use crate::kafka;
use crate::settings::Settings;
use crate::telemetry::metrics::{self, Label};

/// What a consumer reads.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Consumer group id.
    pub group: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
}

/// Why a consumer could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The Kafka consumer could not be created (a bad client setting).
    #[error("cannot create the Kafka consumer: {0}")]
    Create(#[source] KafkaError),
    /// The subscription was refused.
    #[error("cannot subscribe to {topics:?}: {source}")]
    Subscribe {
        /// The topics.
        topics: Vec<String>,
        /// The client's error.
        source: KafkaError,
    },
    /// Topics could not be created at start-up.
    #[error("cannot create topics {topics:?}: {source}")]
    Topics {
        /// The topics.
        topics: Vec<String>,
        /// The client's error.
        source: KafkaError,
    },
    /// The poll thread could not be started or died.
    #[error("the poll thread failed: {0}")]
    Thread(String),
    /// The dead-letter topics or producer could not be set up.
    #[error("cannot set up dead-lettering: {0}")]
    DeadLetter(#[source] KafkaError),
    /// The handler could not be built (e.g. an API client).
    #[error("cannot build the handler: {0}")]
    Handler(String),
    /// The health server could not listen (`consumer.health_listen`).
    #[error("cannot listen on consumer.health_listen = {0}")]
    Health(String),
}

/// Runs a consumer service: the health server on `consumer.health_listen` and the runtime over `spec`, with
/// the handler `make_handler` builds (its API clients report to the process's [`Health`]).
pub async fn run_service<H, E, F>(
    settings: &Settings,
    spec: &ConsumerSpec,
    make_handler: F,
    shutdown: CancellationToken,
) -> Result<(), RunError>
where
    H: Handler,
    E: std::fmt::Display,
    F: FnOnce(&Health) -> Result<H, E>,
{
    let health = Health::default();
    let handler = make_handler(&health).map_err(|e| RunError::Handler(e.to_string()))?;
    // The binary installed it already (`cli::start`); a consumer run by a test or the bench installs it here.
    metrics::install("consumer");
    let listen = &settings.consumer.health_listen;
    let listener = TcpListener::bind(listen).await.map_err(|e| RunError::Health(format!("{listen}: {e}")))?;
    tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "health server listening");
    let server = tokio::spawn(health::serve(listener, health.clone(), shutdown.clone()));
    let readiness = tokio::spawn(report_readiness(health.clone(), Arc::from(handler.name())));
    let result = run(settings, spec, handler, &health, shutdown).await;
    server.abort();
    readiness.abort();
    result
}

/// Keeps `courier_ready` equal to what `/readyz` answers.
async fn report_readiness(health: Health, consumer: Label) {
    let mut changes = health.subscribe();
    loop {
        metrics::ready(&consumer, health.is_ready());
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Runs `handler` over `spec`'s topics until `shutdown` is cancelled. Undeliverable events go to the
/// dead-letter topic (`dlq.enabled`) or are logged and skipped.
pub async fn run<H: Handler>(
    settings: &Settings,
    spec: &ConsumerSpec,
    handler: H,
    health: &Health,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    if !wait_for_cluster(settings, health, &shutdown).await {
        return Ok(());
    }
    ensure_topics(settings, spec).await?;
    if settings.dlq.enabled {
        let route = DeadLetterRoute::new(settings, &spec.group, handler.name(), &spec.topics)
            .await
            .map_err(RunError::DeadLetter)?;
        consume(settings, spec, handler, route, health, shutdown).await
    } else {
        consume(settings, spec, handler, LogFailureRoute, health, shutdown).await
    }
}

/// Waits until the cluster can be reached and logged into, checking every few seconds; until then the consumer
/// is not ready and says why (a wrong password, a TLS failure, no broker). False when `shutdown` came first.
async fn wait_for_cluster(settings: &Settings, health: &Health, shutdown: &CancellationToken) -> bool {
    let mut reported: Option<String> = None;
    loop {
        match kafka::connectivity::check_cluster(&settings.kafka, CLUSTER_CHECK_TIMEOUT).await {
            Ok(()) => {
                if reported.is_some() {
                    tracing::info!("the Kafka cluster answers: starting");
                    health.clear(KAFKA);
                }
                return true;
            }
            Err(error) => {
                let text = error.to_string();
                if reported.as_deref() != Some(text.as_str()) {
                    tracing::error!(%error, "cannot use the Kafka cluster: not ready, checking again every few seconds");
                    health.set_problem(KAFKA, text.clone());
                    reported = Some(text);
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(CLUSTER_RETRY) => {}
        }
    }
}

/// How long one start-up check of the cluster waits for an answer.
const CLUSTER_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two start-up checks of the cluster.
const CLUSTER_RETRY: Duration = Duration::from_secs(3);

async fn ensure_topics(settings: &Settings, spec: &ConsumerSpec) -> Result<(), RunError> {
    if settings.topics.create {
        let names: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
        kafka::ensure_topics(&settings.kafka, &settings.topics, &names)
            .await
            .map_err(|source| RunError::Topics { topics: spec.topics.clone(), source })?;
    }
    Ok(())
}

/// Like [`run`], with undeliverable events handed to `route`.
pub async fn run_with_route<H: Handler, R: FailureRoute>(
    settings: &Settings,
    spec: &ConsumerSpec,
    handler: H,
    route: R,
    health: &Health,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    if !wait_for_cluster(settings, health, &shutdown).await {
        return Ok(());
    }
    ensure_topics(settings, spec).await?;
    consume(settings, spec, handler, route, health, shutdown).await
}

/// Runs the consumer over topics that exist already.
async fn consume<H: Handler, R: FailureRoute>(
    settings: &Settings,
    spec: &ConsumerSpec,
    handler: H,
    route: R,
    health: &Health,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let c = &settings.consumer;
    let d = &settings.dlq;
    let consumer_label: Label = Arc::from(handler.name());
    let window = Duration::from_millis(d.guard_window_ms);
    let guard = DlqGuard::new(d.guard_max_records, window, consumer_label.clone(), health.clone());
    let worker = Worker {
        handler,
        consumer: consumer_label.clone(),
        route,
        policy: RetryPolicy::from_settings(c),
        in_flight: Arc::new(Semaphore::new(c.max_in_flight)),
        guard,
        health: health.clone(),
    };
    let events = shutdown.child_token();
    let limits = Limits { budget: budget(c), per_partition: c.max_buffered_per_partition, total: c.max_buffered_total };
    let dispatcher = Dispatcher::new(worker, limits, tokio::runtime::Handle::current(), events.clone());
    let abandoned = Arc::new(AtomicBool::new(false));
    let context = RuntimeContext {
        dispatcher: Arc::clone(&dispatcher),
        rebalance_timeout: c.rebalance_timeout(),
        abandoned: Arc::clone(&abandoned),
        health: health.clone(),
        brokers_down: Arc::new(AtomicBool::new(false)),
        consumer: consumer_label.clone(),
    };
    let mut config = kafka::consumer_config(&settings.kafka, &spec.group);
    if settings.telemetry.statistics_interval_ms > 0 {
        // The statistics carry each partition's lag (courier_consumer_lag).
        config.set("statistics.interval.ms", settings.telemetry.statistics_interval_ms.to_string());
    }
    let consumer: BaseConsumer<RuntimeContext<H, R>> = config.create_with_context(context).map_err(RunError::Create)?;
    let topics: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|source| RunError::Subscribe { topics: spec.topics.clone(), source })?;
    tracing::info!(group = %spec.group, topics = ?spec.topics, max_in_flight = c.max_in_flight, "consumer started");

    let poll = PollLoop {
        consumer,
        dispatcher,
        shutdown: shutdown.clone(),
        events,
        abandoned: Arc::clone(&abandoned),
        commit_interval: c.commit_interval(),
        drain_timeout: c.drain_timeout(),
        rejoin_after: Duration::from_millis(settings.kafka.rejoin_unassigned_after_ms),
        unassigned_since: Some(Instant::now()),
        subscription: spec.topics.clone(),
        group: spec.group.clone(),
        topics: HashMap::new(),
        consumer_label,
        max_in_flight: c.max_in_flight,
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("{}-poll", spec.group))
        .spawn(move || {
            poll.run();
            let _ = done_tx.send(());
        })
        .map_err(|e| RunError::Thread(e.to_string()))?;
    // If this future is dropped (the task aborted), the poll thread stops at once without draining or
    // committing, as a crashed process would.
    let _abandon_on_drop = AbandonGuard(abandoned);
    // After shutdown, the drain is bounded by the drain timeout, but the final commit and leaving the group
    // need the broker; if it is gone, do not wait for it forever: nothing unfinished was committed, so
    // exiting without the final commit only means redelivery.
    let close_deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(c.drain_timeout() + CLOSE_GRACE).await;
    };
    tokio::select! {
        done = done_rx => done.map_err(|_| RunError::Thread("the poll thread panicked".into())),
        () = close_deadline => {
            tracing::error!(
                group = %spec.group,
                "the consumer did not close in time (is the broker reachable?): stopping without the final commit"
            );
            Ok(())
        }
    }
}

/// Unfinished events per `max_in_flight` slot the consumer holds before it waits for one to finish: queued
/// work for every slot while events of a busy key wait their turn.
const BUFFERED_PER_SLOT: usize = 4;

/// The consumer-wide budget of unfinished events: `BUFFERED_PER_SLOT` per slot, and at most half of
/// `max_buffered_per_partition`, so that healthy traffic never reaches the per-partition backstop (whose
/// pause makes librdkafka drop and fetch again what it had prefetched).
fn budget(c: &crate::settings::ConsumerSettings) -> usize {
    c.max_in_flight.saturating_mul(BUFFERED_PER_SLOT).min(c.max_buffered_per_partition / 2).max(1)
}

/// How often every watermark is committed again, moved or not (see the module doc).
pub const RECOMMIT_EVERY: Duration = Duration::from_secs(10);

/// How long committing and leaving the group may take after the drain, before the consumer gives up on it.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Sets the flag when dropped.
struct AbandonGuard(Arc<AtomicBool>);

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The rdkafka context: rebalance callbacks drive the dispatcher.
struct RuntimeContext<H, R> {
    /// The scheduler.
    dispatcher: Arc<Dispatcher<H, R>>,
    /// How long revoked partitions' events may run on.
    rebalance_timeout: Duration,
    /// Set when the consumer was abandoned: closing it then revokes without waiting or committing.
    abandoned: Arc<AtomicBool>,
    /// Where an unreachable cluster is reported.
    health: Health,
    /// Set when librdkafka reports every broker down; the poll thread clears it once the cluster answers.
    brokers_down: Arc<AtomicBool>,
    /// The consumer, as its metrics are labelled.
    consumer: Label,
}

/// Name under which an unreachable cluster is reported to [`Health`].
const KAFKA: &str = "kafka";

impl<H: Handler, R: FailureRoute> ClientContext for RuntimeContext<H, R> {
    /// librdkafka's statistics (every `telemetry.statistics_interval_ms`): the lag of each assigned partition.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                // Partition -1 is librdkafka's internal one; `desired` marks the assigned partitions.
                if *partition >= 0 && p.desired && p.consumer_lag >= 0 {
                    metrics::consumer_lag(&self.consumer, topic, *partition, p.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            if !self.brokers_down.swap(true, Ordering::SeqCst) {
                tracing::error!(%error, reason, "no Kafka broker answers: not ready until the cluster is back");
                self.health.set_problem(KAFKA, format!("no Kafka broker answers: {reason}"));
            }
        } else if let Some(failure) = kafka::connectivity::security_failure(&error, reason) {
            // A login refused or a TLS failure mid-run (credentials rotated, a certificate expired): not ready
            // until the cluster answers again (the poll thread checks, as for brokers down).
            if !self.brokers_down.swap(true, Ordering::SeqCst) {
                tracing::error!(%failure, "cannot use the Kafka cluster: not ready until it answers again");
                self.health.set_problem(KAFKA, failure.to_string());
            }
        } else {
            tracing::warn!(%error, reason, "kafka client error");
        }
    }
}

impl<H: Handler, R: FailureRoute> ConsumerContext for RuntimeContext<H, R> {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            if self.abandoned.load(Ordering::SeqCst) {
                return;
            }
            let partitions = partitions_of(list);
            let started = Instant::now();
            let lost = consumer.assignment_lost();
            metrics::rebalance(&self.consumer, if lost { "lost" } else { "revoke" });
            // Their lag is their next owner's to report now.
            for (topic, partition) in &partitions {
                metrics::consumer_lag(&self.consumer, topic, *partition, 0);
            }
            let watermarks = self.dispatcher.revoke(&partitions, self.rebalance_timeout, lost);
            let listed = watermarks.iter().map(|(tp, o)| format!("{}/{}@{o}", tp.0, tp.1)).collect::<Vec<_>>();
            let waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            if lost {
                // Another member owns them already: a commit now could only move its offsets under it.
                tracing::warn!(
                    partitions = partitions.len(), not_committed = ?listed, waited_ms,
                    "assignment lost: partitions dropped without committing; their new owner redelivers what was unfinished"
                );
                self.health.set_assigned(self.dispatcher.assigned());
                return;
            }
            let committed = commit(consumer, &self.consumer, &watermarks, CommitMode::Sync);
            tracing::info!(
                partitions = partitions.len(),
                watermarks = ?listed,
                committed,
                waited_ms,
                "partitions revoked: running events finished or aborted, watermarks committed{}",
                if committed { "" } else { " (the commit failed: their new owner redelivers from the last commit)" }
            );
            self.health.set_assigned(self.dispatcher.assigned());
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                metrics::rebalance(&self.consumer, "assign");
                let partitions = partitions_of(list);
                self.dispatcher.assign(&partitions);
                // librdkafka keeps the application's pause of a partition across revoke and assign, and the
                // dispatcher starts every assignment unpaused: resume, or a partition paused before the
                // rebalance would never be fetched again.
                if let Err(error) = consumer.resume(list) {
                    tracing::warn!(%error, "cannot resume newly assigned partitions");
                }
                tracing::info!(partitions = partitions.len(), "partitions assigned");
                self.health.set_assigned(self.dispatcher.assigned());
            }
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => tracing::debug!(partitions = offsets.count(), "watermarks committed"),
            Err(error) => {
                metrics::commit_refused(&self.consumer);
                let partitions = partitions_of(offsets);
                tracing::warn!(
                    %error, partitions = partitions.len(),
                    "commit failed: these watermarks are committed again with the next periodic commit"
                );
                self.dispatcher.commit_failed(&partitions);
            }
        }
    }
}

fn partitions_of(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements().iter().map(|e| (Arc::from(e.topic()), e.partition())).collect()
}

/// Commits `watermarks` of the consumer `label`s metrics name; `false` when the commit could not be sent or
/// (synchronous) was refused. An asynchronous commit's result is not reported (see the module): the poll loop
/// sends every watermark again every [`RECOMMIT_EVERY`].
fn commit<C: ConsumerContext>(
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
struct PollLoop<H: Handler, R: FailureRoute> {
    /// The Kafka consumer.
    consumer: BaseConsumer<RuntimeContext<H, R>>,
    /// The scheduler.
    dispatcher: Arc<Dispatcher<H, R>>,
    /// The process-wide shutdown signal.
    shutdown: CancellationToken,
    /// Cancels every event task (a child of `shutdown`).
    events: CancellationToken,
    /// Set when the owning future was dropped: stop without draining or committing.
    abandoned: Arc<AtomicBool>,
    /// How often watermarks are committed.
    commit_interval: Duration,
    /// How long running events may take after shutdown.
    drain_timeout: Duration,
    /// How long without any assigned partition before leaving and joining the group again (zero: never).
    rejoin_after: Duration,
    /// Since when no partition is assigned, while none is.
    unassigned_since: Option<Instant>,
    /// The subscribed topics, for joining again.
    subscription: Vec<String>,
    /// The group, for logs.
    group: String,
    /// Interned topic names.
    topics: HashMap<String, Arc<str>>,
    /// The consumer, as its metrics are labelled.
    consumer_label: Label,
    /// `consumer.max_in_flight`, for the in-flight gauge.
    max_in_flight: usize,
}

impl<H: Handler, R: FailureRoute> PollLoop<H, R> {
    fn run(mut self) {
        let poll_timeout = Duration::from_millis(100);
        let mut last_commit = Instant::now();
        let mut last_recommit = Instant::now();
        while !self.shutdown.is_cancelled() && !self.abandoned.load(Ordering::SeqCst) {
            // At the budget, wait for an event to finish rather than take more; after `poll_timeout` poll anyway
            // (callbacks, rebalances), taking at most one record, which the per-partition backstop bounds.
            let room = self.dispatcher.wait_for_room(poll_timeout);
            if let Some(result) = self.consumer.poll(if room { poll_timeout } else { Duration::ZERO }) {
                match result {
                    Ok(message) => {
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
                    Err(error) => tracing::warn!(%error, "kafka consumer error; continuing"),
                }
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
            self.events.cancel();
            self.dispatcher.abort_all();
            tracing::warn!(group = %self.group, "consumer abandoned: stopping without drain or commit");
            return;
        }
        self.shut_down();
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
        if self.rejoin_after.is_zero() {
            return;
        }
        if self.dispatcher.assigned() > 0 {
            self.unassigned_since = None;
            return;
        }
        let since = *self.unassigned_since.get_or_insert_with(Instant::now);
        if since.elapsed() < self.rejoin_after {
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

    fn shut_down(self) {
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
        self.consumer.unsubscribe();
        drop(self.consumer);
        tracing::info!(group = %self.group, "consumer stopped");
    }
}
