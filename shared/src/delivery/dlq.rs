//! The dead-letter topic: where an event goes when it cannot be delivered, with everything an operator needs
//! to understand and replay it.
//!
//! Dead letters of group G reading topic T go to `T.G.dlq`, created when absent with T's partition count.
//! A dead letter keeps the original key, value (byte for byte) and headers, goes to the original partition
//! number, and carries these headers (UTF-8 text):
//!
//! | header | value |
//! |---|---|
//! | `courier.dlq.original.topic` / `.partition` / `.offset` / `.timestamp` | where the record was (timestamp in ms since the epoch) |
//! | `courier.dlq.group`, `courier.dlq.consumer` | who gave up on it |
//! | `courier.dlq.channel` | the channel that failed, for a consumer with several (e-mail, SMS) |
//! | `courier.dlq.error.kind` | `http_status`, `timeout`, `connect`, `transport`, `decode`, `unknown_type`, `unknown_version`, … |
//! | `courier.dlq.error.message` | what happened, in words (for a record that did not decode: the format, then why) |
//! | `courier.dlq.format` | the format a record that did not decode was read in (`cloudevents`, `json`, …) |
//! | `courier.dlq.http.status`, `courier.dlq.http.body` | the last response's status and first KiB of body (when there was one) |
//! | `courier.dlq.endpoint` | `METHOD url` of the call, never with credentials or query |
//! | `courier.dlq.attempts` | calls made (0 for an undecodable record) |
//! | `courier.dlq.first_failure_at`, `courier.dlq.last_failure_at` | RFC 3339 times |
//!
//! `courier-dlq replay` (tools/dlq) sends a dead letter back without these headers and with
//! `courier.replay.count`, `.from`, `.consumer` and `.channel` instead ([`REPLAY_CONSUMER_HEADER`], …): only the
//! named consumer (and channel) handles it again. It carries where the record was first read too
//! (`courier.replay.original.topic`, `.partition`, `.offset`), so that a record identified by its coordinates
//! keeps its idempotency key.
//!
//! The source offset counts as finished only once the broker acknowledged the dead letter (idempotent
//! producer, acks=all); a failed publish keeps the event unfinished and is tried again.
//!
//! A dead letter is larger than its record (the headers above come on top), so the dead-letter producer may
//! send up to [`MAX_DEAD_LETTER_BYTES`], room for the largest record a topic holds by default plus the
//! headers. When a dead letter is still refused for its size (by the producer, or by a broker whose topic
//! holds less), it is published without its value and marked `courier.dlq.value_omitted` (the value's size
//! in bytes); its coordinates say where the original is. It is never dropped, and its partition never
//! stalls on it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::SecondsFormat;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;

use super::failure::{FailedRecord, FailureRoute};
use crate::kafka::{self, headers};
use crate::settings::{Settings, TopicSettings};

/// Prefix of every header courier adds to a dead letter.
pub const HEADER_PREFIX: &str = "courier.dlq.";
/// The header naming the channel of a dead letter; a replayed dead letter re-runs only that channel.
pub const CHANNEL_HEADER: &str = "courier.dlq.channel";
/// The header naming the consumer that dead-lettered a record.
pub const CONSUMER_HEADER: &str = "courier.dlq.consumer";
/// The header `courier-dlq replay` puts on a replayed dead letter: the consumer that dead-lettered it, the only
/// one that handles it again (every other consumer group skips it).
pub const REPLAY_CONSUMER_HEADER: &str = "courier.replay.consumer";
/// The header `courier-dlq replay` puts on a replayed dead letter of one channel: the only channel re-run.
pub const REPLAY_CHANNEL_HEADER: &str = "courier.replay.channel";
/// How many times a record was replayed from a dead-letter topic (the replay loop guard reads it).
pub const REPLAY_COUNT_HEADER: &str = "courier.replay.count";
/// Where a replayed record was replayed from: `<dead-letter topic>:<partition>:<offset>`.
pub const REPLAY_FROM_HEADER: &str = "courier.replay.from";
/// The topic a replayed record was first read from (before any dead letter and replay): a record identified by
/// its coordinates keeps its identity across replays (see `courier::formats::identity`).
pub const REPLAY_ORIGINAL_TOPIC_HEADER: &str = "courier.replay.original.topic";
/// Its partition there.
pub const REPLAY_ORIGINAL_PARTITION_HEADER: &str = "courier.replay.original.partition";
/// Its offset there.
pub const REPLAY_ORIGINAL_OFFSET_HEADER: &str = "courier.replay.original.offset";
/// The header marking a dead letter published without its value (too large), holding the value's size.
pub const VALUE_OMITTED_HEADER: &str = "courier.dlq.value_omitted";
/// The topic the dead-lettered record was read from.
pub const ORIGINAL_TOPIC_HEADER: &str = "courier.dlq.original.topic";
/// Its partition there.
pub const ORIGINAL_PARTITION_HEADER: &str = "courier.dlq.original.partition";
/// Its offset there.
pub const ORIGINAL_OFFSET_HEADER: &str = "courier.dlq.original.offset";
/// Its timestamp there (ms since the epoch), when it had one.
pub const ORIGINAL_TIMESTAMP_HEADER: &str = "courier.dlq.original.timestamp";
/// The consumer group that gave up.
pub const GROUP_HEADER: &str = "courier.dlq.group";
/// The kind of error: `http_status`, `timeout`, `decode`, …
pub const ERROR_KIND_HEADER: &str = "courier.dlq.error.kind";
/// The format the record could not be decoded in (`json`, `cloudevents-binary`, …), for a record that did not
/// decode.
pub const FORMAT_HEADER: &str = "courier.dlq.format";
/// What happened, in words.
pub const ERROR_MESSAGE_HEADER: &str = "courier.dlq.error.message";
/// The last response's HTTP status.
pub const HTTP_STATUS_HEADER: &str = "courier.dlq.http.status";
/// The first KiB of the last response's body.
pub const HTTP_BODY_HEADER: &str = "courier.dlq.http.body";
/// `METHOD url` of the call.
pub const ENDPOINT_HEADER: &str = "courier.dlq.endpoint";
/// Calls made before giving up.
pub const ATTEMPTS_HEADER: &str = "courier.dlq.attempts";
/// When the first call failed (RFC 3339).
pub const FIRST_FAILURE_AT_HEADER: &str = "courier.dlq.first_failure_at";
/// When the last call failed (RFC 3339).
pub const LAST_FAILURE_AT_HEADER: &str = "courier.dlq.last_failure_at";
/// The largest dead letter the dead-letter producer sends: Kafka's default largest record (1 MB,
/// `message.max.bytes`) plus room for the `courier.dlq.*` headers.
pub const MAX_DEAD_LETTER_BYTES: usize = 1_048_588 + 256 * 1024;

/// The dead-letter topic of `group` reading `topic`.
pub fn dlq_topic(topic: &str, group: &str) -> String {
    format!("{topic}.{group}.dlq")
}

/// Publishes dead letters to `<topic>.<group>.dlq`.
#[derive(Clone)]
pub struct DeadLetterRoute {
    /// Idempotent producer, acks=all.
    producer: FutureProducer,
    /// The consumer group.
    group: Arc<str>,
    /// The consumer's name.
    consumer: Arc<str>,
    /// Source topic → (dead-letter topic, its partition count).
    topics: Arc<HashMap<String, (String, i32)>>,
    /// Longest wait for the broker's acknowledgement.
    timeout: Duration,
}

impl DeadLetterRoute {
    /// Creates the dead-letter topics of `source_topics` (when `topics.create`, with the source's partition
    /// count) and the producer.
    pub async fn new(
        settings: &Settings,
        group: &str,
        consumer: &str,
        source_topics: &[String],
    ) -> Result<Self, KafkaError> {
        let timeout = settings.producer.publish_timeout_ms;
        let mut topics = HashMap::new();
        for source in source_topics {
            let dlq = dlq_topic(source, group);
            if settings.topics.create {
                let partitions = partition_count(settings, source).await?.unwrap_or(settings.topics.partitions);
                let spec = TopicSettings { partitions, ..settings.topics.clone() };
                kafka::ensure_topics(&settings.kafka, &spec, &[&dlq]).await?;
            }
            let partitions = partition_count(settings, &dlq).await?.unwrap_or(0);
            topics.insert(source.clone(), (dlq, partitions));
        }
        let producer = kafka::producer_config(&settings.kafka, &format!("{group}-dlq"), timeout)
            .set("message.max.bytes", MAX_DEAD_LETTER_BYTES.to_string())
            .create()?;
        Ok(Self { producer, group: Arc::from(group), consumer: Arc::from(consumer), topics: Arc::new(topics), timeout })
    }

    /// The dead-letter topic for records of `source`.
    pub fn topic_for(&self, source: &str) -> String {
        self.topics.get(source).map(|(t, _)| t.clone()).unwrap_or_else(|| dlq_topic(source, &self.group))
    }
}

/// The partition count of `topic`, `None` when it does not exist.
async fn partition_count(settings: &Settings, topic: &str) -> Result<Option<i32>, KafkaError> {
    let client: BaseConsumer = kafka::base_config(&settings.kafka, "dlq-admin").create()?;
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let metadata = client.fetch_metadata(Some(&topic), Timeout::After(Duration::from_secs(10)))?;
        Ok(metadata
            .topics()
            .first()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| i32::try_from(t.partitions().len()).unwrap_or(i32::MAX)))
    })
    .await
    .unwrap_or(Err(KafkaError::Canceled))
}

/// The `courier.dlq.*` headers of a dead letter, in order.
pub fn dlq_headers(record: &FailedRecord<'_>, group: &str, consumer: &str) -> Vec<(String, String)> {
    let f = record.failure;
    let mut headers = vec![
        (ORIGINAL_TOPIC_HEADER, record.topic.to_owned()),
        (ORIGINAL_PARTITION_HEADER, record.partition.to_string()),
        (ORIGINAL_OFFSET_HEADER, record.offset.to_string()),
    ];
    if let Some(ts) = record.timestamp_ms {
        headers.push((ORIGINAL_TIMESTAMP_HEADER, ts.to_string()));
    }
    headers.extend([(GROUP_HEADER, group.to_owned()), (CONSUMER_HEADER, consumer.to_owned())]);
    if let Some(channel) = record.channel {
        headers.push((CHANNEL_HEADER, channel.to_owned()));
    }
    headers.extend([(ERROR_KIND_HEADER, f.kind.to_owned()), (ERROR_MESSAGE_HEADER, f.message.clone())]);
    if let Some(format) = record.format {
        headers.push((FORMAT_HEADER, format.to_owned()));
    }
    if let Some(status) = f.http_status {
        headers.push((HTTP_STATUS_HEADER, status.to_string()));
    }
    if let Some(body) = &f.http_body {
        headers.push((HTTP_BODY_HEADER, body.clone()));
    }
    if let Some(endpoint) = &f.endpoint {
        headers.push((ENDPOINT_HEADER, endpoint.clone()));
    }
    headers.extend([
        (ATTEMPTS_HEADER, record.attempts.to_string()),
        (FIRST_FAILURE_AT_HEADER, record.first_failure_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
        (LAST_FAILURE_AT_HEADER, record.last_failure_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
    ]);
    headers.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

impl DeadLetterRoute {
    /// Publishes the dead letter of `record`, with its value or (`omit_value`) without it, marked.
    async fn publish(
        &self,
        record: &FailedRecord<'_>,
        topic: &str,
        partitions: i32,
        omit_value: bool,
    ) -> Result<(i32, i64), KafkaError> {
        let mut added = dlq_headers(record, &self.group, &self.consumer);
        if omit_value {
            added.push((VALUE_OMITTED_HEADER.to_owned(), record.value.map_or(0, <[u8]>::len).to_string()));
        }
        let original = record.headers.iter().map(|(k, v)| (k.as_slice(), v.as_deref()));
        let headers = headers::to_owned(original.chain(added.iter().map(|(k, v)| (k.as_bytes(), Some(v.as_bytes())))));
        let mut out: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
        if let Some(key) = record.key {
            out = out.key(key);
        }
        if let Some(value) = record.value.filter(|_| !omit_value) {
            out = out.payload(value);
        }
        if record.partition < partitions {
            out = out.partition(record.partition);
        }
        let delivery = self.producer.send(out, Timeout::After(self.timeout)).await.map_err(|(error, _)| error)?;
        Ok((delivery.partition, delivery.offset))
    }
}

/// Whether the producer or the broker refused a record for its size.
fn too_large(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize)
    )
}

impl FailureRoute for DeadLetterRoute {
    fn outcome(&self) -> &'static str {
        "dead_lettered"
    }

    async fn route(&self, record: FailedRecord<'_>) -> Result<(), String> {
        let (topic, partitions) =
            self.topics.get(record.topic).cloned().unwrap_or_else(|| (dlq_topic(record.topic, &self.group), 0));
        let mut published = self.publish(&record, &topic, partitions, false).await;
        if let Err(error) = &published
            && too_large(error)
        {
            tracing::warn!(
                %error, topic = record.topic, partition = record.partition, offset = record.offset,
                size = record.value.map_or(0, <[u8]>::len),
                "dead letter too large to publish: publishing it without its value, marked {VALUE_OMITTED_HEADER}"
            );
            published = self.publish(&record, &topic, partitions, true).await;
        }
        match published {
            Ok((partition, offset)) => {
                record.log(&format!("event could not be delivered: dead-lettered to {topic}/{partition}@{offset}"));
                Ok(())
            }
            Err(error) => Err(format!("dead letter to {topic} not acknowledged: {error}")),
        }
    }
}
