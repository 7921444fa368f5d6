//! Publishing events to Kafka: an idempotent producer (acks=all) whose sends complete only when the broker
//! acknowledged the record, or fail within the publish timeout.

use std::time::Duration;

use crate::events::{CLOUDEVENTS_CONTENT_TYPE, CloudEvent, EventData};
use crate::settings::Settings;
use crate::telemetry::{TRACEPARENT, TraceContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

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

/// Publishes events to one topic.
#[derive(Clone)]
pub struct Publisher {
    /// The idempotent producer.
    producer: FutureProducer,
    /// The topic events go to.
    topic: String,
    /// Longest wait for an acknowledgement, queueing included.
    timeout: Duration,
}

impl Publisher {
    /// Creates the producer for `topic` from settings; `role` names the client in broker logs.
    pub fn new(settings: &Settings, topic: &str, role: &str) -> Result<Self, KafkaError> {
        let timeout = Duration::from_millis(settings.producer.publish_timeout_ms);
        let producer = crate::kafka::producer_config(&settings.kafka, role, timeout).create()?;
        Ok(Self { producer, topic: topic.to_owned(), timeout })
    }

    /// The publish timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Publishes `event` keyed by `key`, with `content-type` and `traceparent` headers, and waits for the
    /// broker's acknowledgement.
    pub async fn publish<T: EventData>(
        &self,
        key: &str,
        event: &CloudEvent<T>,
        trace: &TraceContext,
    ) -> Result<Published, PublishError> {
        let payload = serde_json::to_vec(event)?;
        let traceparent = trace.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "content-type", value: Some(CLOUDEVENTS_CONTENT_TYPE) })
            .insert(Header { key: TRACEPARENT, value: Some(traceparent.as_str()) })
            .insert(Header { key: "ce_id", value: Some(event.id.as_str()) })
            .insert(Header { key: "ce_type", value: Some(event.event_type.as_str()) });
        let record = FutureRecord::to(&self.topic).key(key).payload(&payload).headers(headers);
        let delivery = self.producer.send(record, Timeout::After(self.timeout)).await.map_err(|(error, _)| error)?;
        Ok(Published { partition: delivery.partition, offset: delivery.offset })
    }

    /// Whether the broker answers a metadata request for the topic within `timeout`.
    pub async fn broker_reachable(&self, timeout: Duration) -> Result<(), KafkaError> {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let metadata = producer.client().fetch_metadata(Some(&topic), Timeout::After(timeout))?;
            match metadata.topics().first().and_then(|t| t.error()) {
                Some(code) => Err(KafkaError::MetadataFetch(code.into())),
                None => Ok(()),
            }
        })
        .await
        .unwrap_or(Err(KafkaError::Canceled))
    }

    /// Waits up to the publish timeout for records still queued (on shutdown).
    pub fn flush(&self) {
        if let Err(error) = self.producer.flush(Timeout::After(self.timeout)) {
            tracing::warn!(%error, "some events were still unacknowledged at shutdown");
        }
    }
}
