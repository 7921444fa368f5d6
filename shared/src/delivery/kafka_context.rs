//! The rdkafka context of a consumer: the callbacks librdkafka makes on the poll thread. Rebalances drive the
//! dispatcher. Before an assignment takes effect, each partition gets a queue of its own
//! (`split_partition_queue`), which the poll thread reads within the partition's share (see the dispatcher);
//! librdkafka rings the dispatcher's doorbell when such a queue receives records. On revoke, the revoked
//! partitions start no new work, their running events get up to `consumer.rebalance_timeout_ms` to finish,
//! the calls still in flight are then aborted, and the watermark is committed synchronously before the
//! partitions go — unless the assignment was lost (the member was evicted and another owns the partitions
//! already): then calls are aborted at once and nothing is committed. On assign, the partitions are resumed
//! (librdkafka keeps a pause across revoke and assign). Statistics give the lag of each partition; errors say
//! when every broker is down or the cluster refuses the login.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaErrorCode;

use super::dispatcher::Dispatcher;
use super::failure::FailureRoute;
use super::handler::Handler;
use super::poll_loop::commit;
use super::record::TopicPartition;
use crate::health::Health;
use crate::kafka;
use crate::telemetry::metrics::{self, Label};

/// The rdkafka context: rebalance callbacks drive the dispatcher.
pub(super) struct RuntimeContext<H: Handler, R: FailureRoute> {
    /// The scheduler.
    pub(super) dispatcher: Arc<Dispatcher<H, R>>,
    /// How long revoked partitions' events may run on.
    pub(super) rebalance_timeout: Duration,
    /// Set when the consumer was abandoned: closing it then revokes without waiting or committing.
    pub(super) abandoned: Arc<AtomicBool>,
    /// Where an unreachable cluster is reported.
    pub(super) health: Health,
    /// Set when librdkafka reports every broker down; the poll thread clears it once the cluster answers.
    pub(super) brokers_down: Arc<AtomicBool>,
    /// The consumer, as its metrics are labelled.
    pub(super) consumer: Label,
    /// The rdkafka consumer this is the context of (set once it exists), to split off partition queues.
    pub(super) client: OnceLock<Weak<BaseConsumer<Self>>>,
    /// Queues split off for newly assigned partitions, until the poll thread takes them.
    pub(super) split: Mutex<Vec<OwnQueue<Self>>>,
}

/// The queue of its own of one assigned partition.
pub(super) struct OwnQueue<C: ConsumerContext> {
    /// The partition.
    pub(super) tp: TopicPartition,
    /// Its fetched records.
    pub(super) queue: PartitionQueue<C>,
}

impl<H: Handler, R: FailureRoute> RuntimeContext<H, R> {
    /// The queues split off since the last call.
    pub(super) fn take_split_queues(&self) -> Vec<OwnQueue<Self>> {
        std::mem::take(&mut *self.split.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Gives each partition of `list` a queue of its own, before the assignment starts fetching; librdkafka
    /// rings the dispatcher's doorbell when one receives records. A partition left without one (the consumer
    /// is closing) has its records on the consumer's queue, which the poll thread reads too.
    fn split_queues(&self, list: &TopicPartitionList) {
        let Some(client) = self.client.get().and_then(Weak::upgrade) else {
            return;
        };
        let mut split = self.split.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for element in list.elements() {
            match client.split_partition_queue(element.topic(), element.partition()) {
                Some(mut queue) => {
                    let doorbell = self.dispatcher.doorbell();
                    queue.set_nonempty_callback(move || doorbell.ring());
                    split.push(OwnQueue { tp: (Arc::from(element.topic()), element.partition()), queue });
                }
                None => tracing::warn!(
                    topic = element.topic(),
                    partition = element.partition(),
                    "no queue of its own for an assigned partition: its records come through the consumer's queue"
                ),
            }
        }
    }
}

/// Name under which an unreachable cluster is reported to [`Health`].
pub(super) const KAFKA: &str = "kafka";

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
        if let Rebalance::Assign(list) = rebalance {
            self.split_queues(list);
        }
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
                self.health.set_assigned(&self.consumer, self.dispatcher.assigned());
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
            self.health.set_assigned(&self.consumer, self.dispatcher.assigned());
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
                self.health.set_assigned(&self.consumer, self.dispatcher.assigned());
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
