//! The wiring of one consumer's parts: the worker (retries, breaker waits, failure route), the dispatcher
//! (key order, bounded memory), the rdkafka consumer with its context, and the poll thread; and what a run
//! does before it: wait for the cluster, create the topics (or, where courier does not create them, wait until
//! they exist).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::batch::Batches;
use super::consumer::ConsumerSpec;
use super::dispatcher::{Dispatcher, Limits};
use super::dlq::dlq_topic;
use super::dlq_guard::DlqGuard;
use super::failure::FailureRoute;
use super::handler::Handler;
use super::kafka_context::{KAFKA, RuntimeContext};
use super::poll_loop::PollLoop;
use super::retry::RetryPolicy;
use super::throttle::{ThrottlePolicy, Throttles};
use super::worker::Worker;
use crate::formats::Decoder;
use crate::health::Health;
use crate::kafka;
use crate::schema_registry::SchemaRegistry;
use crate::settings::Settings;
use crate::telemetry::metrics::{self, Label};

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

/// Keeps `courier_ready` equal to what `/readyz` answers.
pub(super) async fn report_readiness(health: Health, consumer: Label) {
    let mut changes = health.subscribe();
    loop {
        metrics::ready(&consumer, health.is_ready());
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Waits until the cluster can be reached and logged into, checking every few seconds; until then the consumer
/// is not ready and says why (a wrong password, a TLS failure, no broker). False when `shutdown` came first.
pub(super) async fn wait_for_cluster(settings: &Settings, health: &Health, shutdown: &CancellationToken) -> bool {
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

/// Creates the topics `spec` reads and writes, when `topics.create`.
pub(super) async fn ensure_topics(settings: &Settings, spec: &ConsumerSpec) -> Result<(), RunError> {
    if settings.topics.create {
        let names: Vec<&str> = spec.topics.iter().chain(&spec.publishes).map(String::as_str).collect();
        kafka::ensure_topics(&settings.kafka, &settings.topics, &names)
            .await
            .map_err(|source| RunError::Topics { topics: spec.topics.clone(), source })?;
    }
    Ok(())
}

/// With `topics.create = false`, waits until every topic `spec` reads or publishes to exists, and its
/// dead-letter topics when `dead_letters`, checking every few seconds; until then the consumer is not ready and
/// names the missing topics (on `/readyz` and in an error log), rather than meet one at its first dead letter
/// and stall that partition. False when `shutdown` came first.
pub(super) async fn wait_for_topics(
    settings: &Settings,
    spec: &ConsumerSpec,
    dead_letters: bool,
    health: &Health,
    shutdown: &CancellationToken,
) -> bool {
    if settings.topics.create {
        // Created at start-up instead (`ensure_topics`, and the dead-letter route's own).
        return true;
    }
    let mut names: Vec<String> = Vec::new();
    let dlq_topics = spec.topics.iter().filter(|_| dead_letters).map(|topic| dlq_topic(topic, &spec.group));
    for name in spec.topics.iter().chain(&spec.publishes).cloned().chain(dlq_topics) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let component = format!("{TOPICS}:{}", spec.group);
    let mut reported: Option<String> = None;
    loop {
        let problem = match kafka::unusable_topics(&settings.kafka, &names, CLUSTER_CHECK_TIMEOUT).await {
            Ok(unusable) if unusable.is_empty() => {
                if reported.is_some() {
                    tracing::info!(group = %spec.group, "every topic exists: starting");
                    health.clear(&component);
                }
                return true;
            }
            Ok(unusable) => {
                let list: Vec<String> = unusable.iter().map(ToString::to_string).collect();
                format!(
                    "topics it reads or writes cannot be used: {} (topics.create is false: create them on the cluster)",
                    list.join(", ")
                )
            }
            Err(error) => format!("cannot check that its topics exist: {error}"),
        };
        if reported.as_deref() != Some(problem.as_str()) {
            tracing::error!(group = %spec.group, %problem, "not ready, checking again every few seconds");
            health.set_problem(&component, problem.clone());
            reported = Some(problem);
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(CLUSTER_RETRY) => {}
        }
    }
}

/// The readiness component under which a consumer names its missing topics: `topics:<group>`.
const TOPICS: &str = "topics";

/// A consumer's parts that [`consume`] wires together, its failure route aside.
pub(super) struct ConsumerParts<'a, H> {
    /// Its settings.
    pub settings: &'a Settings,
    /// What it reads and writes.
    pub spec: &'a ConsumerSpec,
    /// Its name, as its metrics and logs are labelled.
    pub label: Label,
    /// What it does with each event.
    pub handler: H,
    /// The registry a registry format's records are decoded with.
    pub registry: Option<SchemaRegistry>,
    /// Where it reports its problems and readiness.
    pub health: &'a Health,
}

/// Runs a consumer over topics that exist already, undeliverable events going to `route`, until `shutdown`.
pub(super) async fn consume<H: Handler, R: FailureRoute>(
    parts: ConsumerParts<'_, H>,
    route: R,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let ConsumerParts { settings, spec, label: consumer_label, handler, registry, health } = parts;
    let c = &settings.consumer;
    let d = &settings.dlq;
    let guard = DlqGuard::new(d.guard_max_records, d.guard_window_ms, consumer_label.clone(), health.clone());
    let batches = handler.batching().map(Batches::new);
    let event_metrics = metrics::EventMetrics::new(consumer_label.clone());
    let throttle = ThrottlePolicy { alert_after: c.throttle_alert_ms, charge_after: c.max_throttle_ms };
    let worker = Worker {
        handler,
        decoder: Decoder::new(spec.reading.clone()).with_registry(registry),
        throttles: Throttles::new(throttle, &event_metrics, health.clone()),
        metrics: event_metrics,
        route,
        policy: RetryPolicy::from_settings(c),
        in_flight: Arc::new(Semaphore::new(c.max_in_flight)),
        guard,
        batches,
        health: health.clone(),
    };
    let events = shutdown.child_token();
    let limits = Limits {
        budget: budget(c, &settings.apis),
        per_partition: c.max_buffered_per_partition,
        total: c.max_buffered_total,
    };
    let dispatcher = Dispatcher::new(worker, limits, tokio::runtime::Handle::current(), events.clone());
    let abandoned = Arc::new(AtomicBool::new(false));
    let context = RuntimeContext {
        dispatcher: Arc::clone(&dispatcher),
        rebalance_timeout: c.rebalance_timeout_ms,
        abandoned: Arc::clone(&abandoned),
        health: health.clone(),
        brokers_down: Arc::new(AtomicBool::new(false)),
        consumer: consumer_label.clone(),
        client: std::sync::OnceLock::new(),
        split: std::sync::Mutex::new(Vec::new()),
    };
    let mut config = kafka::consumer_config(&settings.kafka, &spec.group);
    if let Some(interval) = settings.telemetry.statistics_interval_ms {
        // The statistics carry each partition's lag (courier_consumer_lag).
        config.set("statistics.interval.ms", interval.as_millis().to_string());
    }
    let consumer: Arc<BaseConsumer<RuntimeContext<H, R>>> =
        Arc::new(config.create_with_context(context).map_err(RunError::Create)?);
    // The context splits a queue off for each partition assigned (see the poll loop): it needs the consumer.
    let _ = consumer.context().client.set(Arc::downgrade(&consumer));
    let topics: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|source| RunError::Subscribe { topics: spec.topics.clone(), source })?;
    tracing::info!(group = %spec.group, topics = ?spec.topics, max_in_flight = c.max_in_flight, "consumer started");

    let poll = PollLoop {
        consumer,
        queues: Vec::new(),
        granted: Vec::new(),
        turn: 0,
        dispatcher,
        shutdown: shutdown.clone(),
        events,
        abandoned: Arc::clone(&abandoned),
        commit_interval: c.commit_interval_ms,
        drain_timeout: c.drain_timeout_ms,
        rejoin_after: settings.kafka.rejoin_unassigned_after_ms,
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
        tokio::time::sleep(c.drain_timeout_ms + CLOSE_GRACE).await;
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
/// work for every slot while events of a busy key wait their turn. Each unfinished event costs memory (its
/// record, its task, its span), so the fewer the better once every slot has work.
const BUFFERED_PER_SLOT: usize = 2;

/// The consumer-wide budget of unfinished events: `BUFFERED_PER_SLOT` per slot, and at most half of
/// `max_buffered_per_partition`, so that healthy traffic never reaches the per-partition backstop (whose
/// pause makes librdkafka drop and fetch again what it had prefetched).
///
/// It is never below the `breaker_minimum_failing_keys` of an API with a breaker: a breaker opens only once
/// that many different events failed, so a consumer holding fewer would spend an event's every attempt (and
/// dead-letter it) at the start of each outage before the breaker could open.
fn budget(c: &crate::settings::ConsumerSettings, apis: &crate::settings::ApisSettings) -> usize {
    let breaker_floor = apis
        .iter()
        .filter(|(_, api)| api.breaker_failure_rate_percent > 0)
        .map(|(_, api)| usize::try_from(api.breaker_minimum_failing_keys).unwrap_or(usize::MAX))
        .max()
        .unwrap_or(1);
    c.max_in_flight.saturating_mul(BUFFERED_PER_SLOT).min(c.max_buffered_per_partition / 2).max(breaker_floor)
}

/// How long committing and leaving the group may take after the drain, before the consumer gives up on it.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Sets the flag when dropped.
struct AbandonGuard(Arc<AtomicBool>);

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
