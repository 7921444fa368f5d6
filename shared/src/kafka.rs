//! Kafka client set-up: the rdkafka configuration built from [`KafkaSettings`], and topic administration
//! (creating topics, and naming those that do not exist).
//!
//! [`headers`] reads and writes record headers byte for byte (rdkafka's safe API panics on a key that is not
//! UTF-8); [`security`] holds the security settings (TLS, SASL, further librdkafka properties) and applies them
//! to every client made here; [`connectivity`] checks that the cluster can be reached and logged into, and
//! names why not.

pub mod connectivity;
pub mod headers;
pub mod security;

use std::fmt;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;

use crate::settings::{KafkaSettings, TopicSettings};

/// The configuration every client shares: brokers, client id (`<client_id>-<role>`), security (protocol, SASL
/// login, certificates) and `[kafka.properties]`.
pub fn base_config(kafka: &KafkaSettings, role: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.bootstrap_servers).set("client.id", format!("{}-{role}", kafka.client_id));
    kafka.security().apply(&mut config);
    config
}

/// An idempotent producer that waits for every in-sync replica (`acks=all`): a record acknowledged to the
/// caller is durable and a retried send never duplicates or reorders it. `delivery_timeout` bounds how long a
/// record may wait for its acknowledgement before the send fails.
///
/// Keys are partitioned as the Java client does (`murmur2_random`: murmur2 of the key, a random partition for
/// a record without key), not with librdkafka's default (CRC32): a Java producer writing events for the same
/// order id then uses the same partition, and per-key order holds across both.
pub fn producer_config(kafka: &KafkaSettings, role: &str, delivery_timeout: Duration) -> ClientConfig {
    let mut config = base_config(kafka, role);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", delivery_timeout.as_millis().to_string())
        .set("linger.ms", "5");
    config
}

/// The default of `queued.max.messages.kbytes`: what librdkafka prefetches for one partition, in KiB.
pub const PREFETCH_KBYTES_PER_PARTITION: u32 = 512;

/// The default of `fetch.max.bytes`: the most one fetch response may hold, over all its partitions.
pub const FETCH_MAX_BYTES: u32 = 16 * 1024 * 1024;

/// A consumer in `group` that never commits by itself: the delivery runtime commits the contiguous prefix
/// of handled events.
pub fn consumer_config(kafka: &KafkaSettings, group: &str) -> ClientConfig {
    let mut config = base_config(kafka, group);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", &kafka.auto_offset_reset)
        .set("session.timeout.ms", kafka.session_timeout_ms.as_millis().to_string())
        .set("heartbeat.interval.ms", kafka.heartbeat_interval_ms.as_millis().to_string())
        .set("max.poll.interval.ms", kafka.max_poll_interval_ms.as_millis().to_string())
        .set("fetch.wait.max.ms", kafka.fetch_wait_max_ms.as_millis().to_string())
        .set("partition.assignment.strategy", &kafka.partition_assignment_strategy);
    if config.get("queued.max.messages.kbytes").is_none() {
        // What librdkafka prefetches ahead of the runtime for each partition (each has a queue of its own, see
        // the poll loop; librdkafka's default is 64 MiB): 512 KiB, about 1,000 events of 500 bytes, and 4 MiB
        // over eight partitions. Every queued record keeps the whole fetch response it came in alive, so a
        // deeper queue costs far more memory than its records (BENCHMARKS.md, memory: 2 MiB per partition peaked
        // at 163 MiB RSS, 512 KiB at 131 MiB, and was faster). `[kafka.properties]` may set another.
        config.set("queued.max.messages.kbytes", PREFETCH_KBYTES_PER_PARTITION.to_string());
    }
    if config.get("fetch.max.bytes").is_none() && config.get("message.max.bytes").is_none() {
        // Left alone, librdkafka lowers fetch.max.bytes to queued.max.messages.kbytes (but not below
        // message.max.bytes, 1 MB), and a partition holding a record larger than that (a topic may allow more
        // than Kafka's 1 MB) stalls after it (the e2e test of an oversized dead letter, on Tansu). Apache
        // Kafka bounds each partition's part of a response anyway (max.partition.fetch.bytes, 1 MiB), so
        // 16 MiB costs nothing in everyday traffic. Tansu 0.6.0 ignores that bound and fills a response from
        // one partition up to fetch.max.bytes: on it, the queues hold several times their 512 KiB
        // (BENCHMARKS.md, memory).
        config.set("fetch.max.bytes", FETCH_MAX_BYTES.to_string());
    }
    if !kafka.group_instance_id.is_empty() {
        config.set("group.instance.id", &kafka.group_instance_id);
    }
    config
}

/// Creates each of `names` with the configured partitions and replication factor; a topic that exists
/// already is left as it is.
pub async fn ensure_topics(kafka: &KafkaSettings, topics: &TopicSettings, names: &[&str]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = base_config(kafka, "admin").create()?;
    let new_topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| NewTopic::new(name, topics.partitions, TopicReplication::Fixed(topics.replication_factor)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(name) => {
                tracing::info!(topic = %name, partitions = topics.partitions, "created topic")
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                tracing::error!(topic = %name, error = %code, "could not create topic");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}

/// A topic a client cannot use: it does not exist, or the cluster answers for it with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableTopic {
    /// The topic's name.
    pub name: String,
    /// Why, in words: `does not exist`, or the cluster's error for it (e.g. an authorization failure).
    pub reason: String,
}

impl fmt::Display for UnusableTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.reason)
    }
}

/// Which of `names` cannot be used, asked with a client of its own: one metadata request per topic, each
/// waiting up to `timeout`. An error when the cluster does not answer.
pub async fn unusable_topics(
    kafka: &KafkaSettings,
    names: &[String],
    timeout: Duration,
) -> Result<Vec<UnusableTopic>, KafkaError> {
    // A consumer's metadata requests never create a topic (`allow.auto.create.topics` is off for consumers).
    let client: BaseConsumer = base_config(kafka, "topic-check").create()?;
    let names = names.to_vec();
    tokio::task::spawn_blocking(move || unusable_topics_with(client.client(), &names, timeout))
        .await
        .unwrap_or(Err(KafkaError::Canceled))
}

/// [`unusable_topics`] with the caller's client; blocks.
pub fn unusable_topics_with<C: ClientContext>(
    client: &Client<C>,
    names: &[String],
    timeout: Duration,
) -> Result<Vec<UnusableTopic>, KafkaError> {
    let mut unusable = Vec::new();
    for name in names {
        let metadata = client.fetch_metadata(Some(name), Timeout::After(timeout))?;
        let topic = metadata.topics().iter().find(|topic| topic.name() == name);
        let reason = match topic.map(|topic| (topic.error().map(RDKafkaErrorCode::from), topic.partitions().len())) {
            None
            | Some((Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic), _))
            | Some((None, 0)) => "does not exist".to_owned(),
            Some((Some(code), _)) => code.to_string(),
            Some((None, _)) => continue,
        };
        unusable.push(UnusableTopic { name: name.clone(), reason });
    }
    Ok(unusable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let env = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Settings::load_with_env(None, Some(env)).expect("valid settings")
    }

    #[test]
    fn consumers_take_the_group_settings_and_producers_partition_as_java_does() {
        let defaults = settings(&[]);
        let consumer = consumer_config(&defaults.kafka, "inventory");
        assert_eq!(consumer.get("partition.assignment.strategy"), Some("cooperative-sticky"));
        assert_eq!(consumer.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(consumer.get("group.instance.id"), None, "dynamic membership by default");
        assert_eq!(consumer.get("enable.auto.commit"), Some("false"));
        assert_eq!(consumer.get("queued.max.messages.kbytes"), Some("512"), "512 KiB prefetched per partition");
        assert_eq!(consumer.get("fetch.max.bytes"), Some("16777216"), "a fetch may hold a record beyond 2 MiB");
        let producer = producer_config(&defaults.kafka, "producer", Duration::from_secs(5));
        assert_eq!(producer.get("partitioner"), Some("murmur2_random"));
        assert_eq!((producer.get("acks"), producer.get("enable.idempotence")), (Some("all"), Some("true")));

        let custom = settings(&[
            ("COURIER__KAFKA__AUTO_OFFSET_RESET", "latest"),
            ("COURIER__KAFKA__GROUP_INSTANCE_ID", "inventory-0"),
            ("COURIER__KAFKA__PROPERTIES__CLIENT_RACK", "az1"),
            ("COURIER__KAFKA__PROPERTIES__QUEUED_MAX_MESSAGES_KBYTES", "8192"),
        ]);
        let consumer = consumer_config(&custom.kafka, "inventory");
        assert_eq!(consumer.get("auto.offset.reset"), Some("latest"));
        assert_eq!(consumer.get("group.instance.id"), Some("inventory-0"));
        assert_eq!(consumer.get("client.rack"), Some("az1"), "properties reach every client");
        assert_eq!(consumer.get("queued.max.messages.kbytes"), Some("8192"), "a property beats courier's default");
        assert_eq!(base_config(&custom.kafka, "admin").get("client.rack"), Some("az1"));
    }
}
