//! The consumer loop: read a record, decode it, hand it to the handler (retrying transient failures), route
//! what cannot be delivered, and only then store the record's offset for the next commit.
//!
//! Events of a partition are handled one at a time, in offset order. An offset is stored only after its event
//! was handled (delivered, or reported to the failure route), so a crash or a rebalance never commits past an
//! unhandled event: at worst an event is delivered again, and the downstream API absorbs the repeat through
//! the idempotency key. On shutdown the loop stops between attempts, commits what it stored and leaves the
//! group.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use tokio_util::sync::CancellationToken;

use super::failure::{FailedRecord, FailureRoute, LogFailureRoute};
use super::handler::{Failure, Handler, Incoming, Outcome};
use super::retry::RetryPolicy;
use crate::events;
use crate::kafka;
use crate::settings::Settings;
use crate::telemetry::{TRACEPARENT, TraceContext};

/// What a consumer reads.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Consumer group id; the consumer's name by default.
    pub group: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
}

/// Why the consumer loop could not run.
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
}

/// Runs `handler` over `spec`'s topics until `shutdown` is cancelled, then commits and leaves the group.
pub async fn run<H: Handler>(
    settings: &Settings,
    spec: &ConsumerSpec,
    handler: H,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    if settings.topics.create {
        let names: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
        kafka::ensure_topics(&settings.kafka, &settings.topics, &names)
            .await
            .map_err(|source| RunError::Topics {
                topics: spec.topics.clone(),
                source,
            })?;
    }
    let commit_interval = Duration::from_millis(settings.consumer.commit_interval_ms);
    let consumer: StreamConsumer =
        kafka::consumer_config(&settings.kafka, &spec.group, commit_interval)
            .create()
            .map_err(RunError::Create)?;
    let topics: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|source| RunError::Subscribe {
            topics: spec.topics.clone(),
            source,
        })?;
    tracing::info!(group = %spec.group, topics = ?spec.topics, "consumer started");

    let policy = RetryPolicy::from_settings(&settings.consumer);
    let route = LogFailureRoute;
    loop {
        let message = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "kafka consumer error; continuing");
                continue;
            }
        };
        if !process(&handler, &route, &policy, &message, &shutdown).await {
            // Shutdown arrived while the event was waiting for a retry: leave it unstored.
            break;
        }
        if let Err(error) = consumer.store_offset_from_message(&message) {
            // The partition was revoked meanwhile; its new owner will handle the event again.
            tracing::warn!(%error, topic = message.topic(), partition = message.partition(), offset = message.offset(), "could not store offset");
        }
    }

    tracing::info!(group = %spec.group, "consumer stopping: committing handled offsets");
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => {
            tracing::warn!(%error, "final commit failed; handled events since the last commit will be redelivered")
        }
    }
    consumer.unsubscribe();
    drop(consumer);
    tracing::info!(group = %spec.group, "consumer stopped");
    Ok(())
}

/// Handles one record to the end: delivered, or routed as failed. Returns `false` when shutdown interrupted it
/// before it was handled.
async fn process<H: Handler, R: FailureRoute>(
    handler: &H,
    route: &R,
    policy: &RetryPolicy,
    message: &BorrowedMessage<'_>,
    shutdown: &CancellationToken,
) -> bool {
    let event = match events::decode_envelope(message.payload()) {
        Ok(event) => event,
        Err(error) => {
            route_failed(route, message, None, 0, &Failure::from(&error)).await;
            return true;
        }
    };
    let trace = trace_of(message).unwrap_or_else(TraceContext::new_root);
    let incoming = Incoming {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: message
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .map(str::to_owned),
        trace,
        event,
    };
    let span = tracing::info_span!(
        "event",
        event.id = %incoming.event.id,
        event.type = %incoming.event.event_type,
        trace_id = %trace.trace_id_hex(),
        topic = %incoming.topic,
        partition = incoming.partition,
        offset = incoming.offset,
    );

    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome =
            tracing::Instrument::instrument(handler.handle(&incoming), span.clone()).await;
        match outcome {
            Outcome::Done => {
                span.in_scope(|| tracing::debug!(attempts, "event delivered"));
                return true;
            }
            Outcome::Permanent(failure) => {
                route_failed(route, message, Some(&incoming.event.id), attempts, &failure).await;
                return true;
            }
            Outcome::Retry(failure) if !policy.allows_another(attempts) => {
                route_failed(route, message, Some(&incoming.event.id), attempts, &failure).await;
                return true;
            }
            Outcome::Retry(failure) => {
                let delay = policy.delay(attempts, failure.retry_after);
                span.in_scope(|| {
                    tracing::warn!(
                        attempts,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        error.kind = failure.kind,
                        error.message = %failure.message,
                        "delivery failed; retrying after a delay"
                    )
                });
                tokio::select! {
                    () = shutdown.cancelled() => return false,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Hands a record that could not be delivered to the failure route.
async fn route_failed<R: FailureRoute>(
    route: &R,
    message: &BorrowedMessage<'_>,
    event_id: Option<&str>,
    attempts: u32,
    failure: &Failure,
) {
    let record = FailedRecord {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key(),
        value: message.payload(),
        event_id,
        attempts,
        failure,
    };
    // The log route cannot fail; the dead-letter route will keep retrying here.
    if let Err(error) = route.route(record).await {
        tracing::error!(%error, "failure route refused the record");
    }
}

/// The trace context from the record's `traceparent` header, when it has a valid one.
fn trace_of(message: &BorrowedMessage<'_>) -> Option<TraceContext> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == TRACEPARENT)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(TraceContext::parse)
}
