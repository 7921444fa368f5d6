//! Publishing events to Kafka: an idempotent producer (acks=all) whose sends complete only when the broker
//! acknowledged the record, or fail within the publish timeout.
//!
//! An idempotent producer carries state the broker must know (its producer id and sequence numbers). When
//! the broker keeps refusing every record with an error other than a timeout for a while — it lost that
//! state, or librdkafka raised a fatal error — the producer is replaced by a new one, with a new producer id,
//! rather than answering 503 until the process restarts. (Seen with Tansu 0.6.0 after a kill -9 of the
//! broker: its storage panics on the old producer id, "more or less than one row", and answers every
//! produce request with an unknown error; RELIABILITY.md.) On Apache Kafka the same replacement is what a
//! fatal idempotence error requires.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::delivery::{Failure, Incoming, Outcome};
use crate::events::{CLOUDEVENTS_CONTENT_TYPE, CloudEvent, EventData, caused_id};
use crate::settings::Settings;
use crate::telemetry::metrics::{self, Label};
use crate::telemetry::{propagation, traces};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use tracing::Instrument;

/// Where an acknowledged event was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Partition of the record.
    pub partition: i32,
    /// Offset of the record.
    pub offset: i64,
}

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The event could not be serialized (a bug, never bad input).
    #[error("cannot serialize the event: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The broker did not acknowledge the record within the publish timeout, or refused it.
    #[error("the broker did not acknowledge the record: {0}")]
    Kafka(#[from] KafkaError),
}

/// Refused records in a row, over at least [`REPLACE_AFTER`], after which the producer is replaced.
const REPLACE_AFTER_REFUSALS: u32 = 10;
/// How long the broker must have refused every record before the producer is replaced.
const REPLACE_AFTER: Duration = Duration::from_secs(5);

/// Records the broker refused in a row (timeouts do not count: the broker may just be away).
#[derive(Debug, Default)]
struct Refusals {
    /// How many.
    count: u32,
    /// When the first of them was refused.
    since: Option<Instant>,
}

/// Publishes events to one topic.
#[derive(Clone)]
pub struct Publisher {
    /// The idempotent producer; replaced when the broker keeps refusing it.
    producer: Arc<Mutex<FutureProducer>>,
    /// The producer's configuration, to create a new one.
    config: ClientConfig,
    /// Refused records in a row.
    refusals: Arc<Mutex<Refusals>>,
    /// The topic events go to.
    topic: Label,
    /// Longest wait for an acknowledgement, queueing included.
    timeout: Duration,
}

impl Publisher {
    /// Creates the producer for `topic` from settings; `role` names the client in broker logs.
    pub fn new(settings: &Settings, topic: &str, role: &str) -> Result<Self, KafkaError> {
        let config = crate::kafka::producer_config(&settings.kafka, role, settings.producer.publish_timeout_ms);
        let producer = config.create()?;
        Ok(Self {
            producer: Arc::new(Mutex::new(producer)),
            config,
            refusals: Arc::default(),
            topic: Label::from(topic),
            timeout: settings.producer.publish_timeout_ms,
        })
    }

    fn producer(&self) -> FutureProducer {
        self.producer.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Counts the outcome of one send; replaces the producer when the broker has refused every record for
    /// long enough.
    fn count(&self, result: Result<(), &KafkaError>) {
        let mut refusals = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        let error = match result {
            Ok(()) => {
                *refusals = Refusals::default();
                return;
            }
            Err(error) => error,
        };
        if matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::QueueFull | RDKafkaErrorCode::MessageSizeTooLarge
            )
        ) {
            return;
        }
        refusals.count += 1;
        let since = *refusals.since.get_or_insert_with(Instant::now);
        if refusals.count < REPLACE_AFTER_REFUSALS || since.elapsed() < REPLACE_AFTER {
            return;
        }
        match self.config.create::<FutureProducer>() {
            Ok(fresh) => {
                tracing::warn!(
                    %error, refused = refusals.count,
                    "the broker refused every record for {} s: replacing the producer (a new producer id)",
                    since.elapsed().as_secs()
                );
                *self.producer.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
                *refusals = Refusals::default();
            }
            Err(create) => tracing::error!(%create, "cannot create a new producer; keeping the old one"),
        }
    }

    /// The publish timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Publishes `event` keyed by `key`, with `content-type`, CloudEvents and trace context headers, and
    /// waits for the broker's acknowledgement. With spans exported, the publish is a producer span of the
    /// current span; its context is what the record's `traceparent` carries, so the consumers' spans are its
    /// children. Without, the record carries the current trace ([`propagation::Trace`]).
    pub async fn publish<T: EventData>(&self, key: &str, event: &CloudEvent<T>) -> Result<Published, PublishError> {
        self.publish_to(&self.topic, key, event).await
    }

    /// [`Publisher::publish`] to `topic` rather than the publisher's own.
    pub async fn publish_to<T: EventData>(
        &self,
        topic: &Label,
        key: &str,
        event: &CloudEvent<T>,
    ) -> Result<Published, PublishError> {
        let payload = serde_json::to_vec(event)?;
        self.publish_raw(topic, key, &payload, &event.id, &event.event_type).await
    }

    /// Publishes `payload`, a structured CloudEvent whose `id` and `type` are given, to `topic` (see
    /// [`Publisher::publish`]).
    pub async fn publish_raw(
        &self,
        topic: &Label,
        key: &str,
        payload: &[u8],
        id: &str,
        event_type: &str,
    ) -> Result<Published, PublishError> {
        let span = traces::exported_span(|| {
            tracing::info_span!(
                "publish",
                otel.kind = "producer",
                otel.name = %format_args!("publish {topic}"),
                messaging.destination.name = %topic,
                event_type = %event_type,
            )
        });
        let mut headers = OwnedHeaders::new()
            .insert(Header { key: "content-type", value: Some(CLOUDEVENTS_CONTENT_TYPE) })
            .insert(Header { key: "ce_id", value: Some(id) })
            .insert(Header { key: "ce_type", value: Some(event_type) });
        for (name, value) in propagation::headers_of(&span) {
            headers = headers.insert(Header { key: name, value: Some(value.as_str()) });
        }
        let record = FutureRecord::to(topic).key(key).payload(payload).headers(headers);
        let started = Instant::now();
        let sent = self
            .producer()
            .send(record, Timeout::After(self.timeout))
            .instrument(span)
            .await
            .map_err(|(error, _)| error);
        metrics::published(topic, sent.is_ok(), started.elapsed());
        self.count(sent.as_ref().map(|_| ()));
        let delivery = sent?;
        Ok(Published { partition: delivery.partition, offset: delivery.offset })
    }

    /// Publishes `data` as the event caused by `incoming` (its id derived from `incoming`'s, so a redelivery
    /// publishes the same event again: see [`caused_id`]) to `topic`, keyed and with subject `key`, from
    /// `source`. The delivery's outcome: done once the broker acknowledged it, else a transient failure (the
    /// event is handled again, its downstream call answered from the API's idempotency memory).
    pub async fn publish_caused<T: EventData>(
        &self,
        topic: &Label,
        incoming: &Incoming,
        source: &str,
        key: &str,
        data: T,
    ) -> Outcome {
        let id = caused_id::<T>(incoming.id());
        let event = CloudEvent::new(id, source, chrono::Utc::now(), Some(key.to_owned()), data);
        match self.publish_to(topic, key, &event).await {
            Ok(_) => Outcome::Done,
            Err(error) => {
                Outcome::Retry(Failure::new("publish", format!("{} not acknowledged: {error}", T::EVENT_TYPE)))
            }
        }
    }

    /// Which of the topics it publishes to, its own and `others`, cannot be used (they do not exist, or the
    /// cluster refuses them), asked over the producer's own connections; an error when no broker answers
    /// within `timeout`.
    pub async fn unusable_topics(
        &self,
        others: &[&str],
        timeout: Duration,
    ) -> Result<Vec<crate::kafka::UnusableTopic>, KafkaError> {
        let producer = self.producer();
        let mut topics = vec![self.topic.to_string()];
        topics.extend(others.iter().filter(|topic| **topic != &*self.topic).map(|topic| (*topic).to_owned()));
        tokio::task::spawn_blocking(move || crate::kafka::unusable_topics_with(producer.client(), &topics, timeout))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }

    /// Waits up to the publish timeout for records still queued (on shutdown).
    pub fn flush(&self) {
        if let Err(error) = self.producer().flush(Timeout::After(self.timeout)) {
            tracing::warn!(%error, "some events were still unacknowledged at shutdown");
        }
    }
}
