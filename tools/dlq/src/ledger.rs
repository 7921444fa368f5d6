//! The **ledger**: a record of the tool's position that the broker does not expire.
//!
//! The position ([`crate::position`]) and the marks ([`crate::resume`]) are committed offsets of a consumer
//! group that never joins. A broker deletes such offsets once `offsets.retention.minutes` (7 days by default
//! on Apache Kafka) passed without a commit, and deleting the group by hand does the same; a replay after that
//! would find no position, start at the oldest dead letter and send again everything replayed before. The
//! committed offsets alone cannot tell "never replayed" from "replayed, but the position is gone".
//!
//! So every commit of the position is first written here too: a record keyed by the position's group id, whose
//! value holds the position and the marks ([`Recorded`]), in the tool's own topic [`LEDGER_TOPIC`]
//! (`cleanup.policy=compact`, one partition). Compaction keeps the newest record of each key however old it
//! is; no time limit deletes it. At start, a partition that has no committed offset but a recorded position
//! above its oldest record means the position was lost (see [`crate::position::Position::start`]).
//!
//! Not chosen: the replayed records' `courier.replay.from` headers on the original topics. Those topics'
//! retention (7 days by default, as the offsets') deletes them, and finding the last one means reading
//! topics of any size from the start.

use std::time::Duration;

use chrono::{DateTime, Utc};
use courier::kafka;
use courier::settings::{KafkaSettings, Settings};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};

use crate::error::DlqError;
use crate::read::{REQUEST_TIMEOUT, Start, Starts, TopicReader};
use crate::resume::Marks;

/// The ledger's topic: compacted, one partition, created by the tool when absent (with `topics.create`).
pub const LEDGER_TOPIC: &str = "courier-dlq.positions";

/// How long writing a ledger record may wait for the broker's acknowledgement.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the ledger holds for one position group: the last position and marks written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The dead-letter topic.
    pub topic: String,
    /// Partition → the next offset to handle.
    pub next: Starts,
    /// The marks on the topics replayed to.
    pub marks: Marks,
    /// When it was written.
    pub written_at: DateTime<Utc>,
}

impl Recorded {
    /// This record moved on by a commit of `next` and `marks`: partitions and marks the commit does not name
    /// keep what they had (as committed offsets do), a mark never moves back.
    pub fn moved(previous: Option<&Recorded>, topic: &str, next: &Starts, marks: &Marks) -> Recorded {
        let mut recorded = previous.cloned().unwrap_or_else(|| Recorded {
            topic: topic.to_owned(),
            next: Starts::new(),
            marks: Marks::new(),
            written_at: Utc::now(),
        });
        recorded.next.extend(next);
        for (to, partitions) in marks {
            let kept = recorded.marks.entry(to.clone()).or_default();
            for (&partition, &mark) in partitions {
                let at = kept.entry(partition).or_insert(mark);
                *at = (*at).max(mark);
            }
        }
        recorded.written_at = Utc::now();
        recorded
    }

    /// `partition:offset` pairs of the position, for people.
    pub fn describe(next: &Starts) -> String {
        next.iter().map(|(p, o)| format!("{p}:{o}")).collect::<Vec<_>>().join(" ")
    }
}

/// The ledger: reads and writes the records of the tool's positions.
pub struct Ledger {
    /// Writes records (courier's producer configuration: idempotent, `acks=all`).
    producer: FutureProducer,
    /// The cluster's settings, for reading the topic.
    kafka: KafkaSettings,
}

impl Ledger {
    /// Opens the ledger (blocking); [`ensure_topic`] made sure its topic exists.
    pub fn open(settings: &Settings) -> Result<Self, DlqError> {
        let producer = kafka::producer_config(&settings.kafka, "dlq-ledger", WRITE_TIMEOUT)
            .create()
            .map_err(DlqError::kafka("creating the ledger producer"))?;
        Ok(Self { producer, kafka: settings.kafka.clone() })
    }

    /// The newest record of `group` (blocking), read from the whole topic; `None` when there is none, the
    /// newest is a tombstone (a deliberate reset) or the topic does not exist yet.
    pub fn read(&self, group: &str) -> Result<Option<Recorded>, DlqError> {
        let reader = match TopicReader::open(&self.kafka, LEDGER_TOPIC) {
            Ok(reader) => reader,
            // Not created yet (a dry run before the first replay): nothing recorded.
            Err(DlqError::UnknownTopic(_)) => return Ok(None),
            Err(error) => return Err(error),
        };
        let mut newest: Option<(i64, Option<Vec<u8>>)> = None;
        reader.read(&Start::Beginning, |record| {
            if record.key.as_deref() == Some(group.as_bytes()) {
                newest = Some((record.offset, record.value));
            }
            true
        })?;
        match newest {
            None | Some((_, None)) => Ok(None),
            Some((offset, Some(value))) => serde_json::from_slice(&value).map(Some).map_err(|error| {
                DlqError::Ledger(format!(
                    "the record of group {group} at {LEDGER_TOPIC}:0:{offset} is not a position ({error}); \
                     run with --from-beginning to start over (its first commit replaces the record)"
                ))
            }),
        }
    }

    /// Writes `recorded` as the newest record of `group` and waits for the broker's acknowledgement (blocking).
    pub fn write(&self, group: &str, recorded: &Recorded) -> Result<(), DlqError> {
        let value = serde_json::to_vec(recorded).map_err(|e| DlqError::Ledger(e.to_string()))?;
        let record = FutureRecord::to(LEDGER_TOPIC).key(group.as_bytes()).payload(&value);
        let delivery = self
            .producer
            .send_result(record)
            .map_err(|(e, _)| DlqError::kafka(&format!("writing the position of {group} to {LEDGER_TOPIC}"))(e))?;
        futures::executor::block_on(delivery)
            .map_err(|_| DlqError::kafka("the ledger producer stopped")(rdkafka::error::KafkaError::Canceled))?
            .map_err(|(e, _)| DlqError::kafka(&format!("writing the position of {group} to {LEDGER_TOPIC}"))(e))?;
        Ok(())
    }
}

/// Checks that [`LEDGER_TOPIC`] exists with one partition; creates it (compacted) when absent and
/// `topics.create` allows (blocking).
pub fn ensure_topic(settings: &Settings) -> Result<(), DlqError> {
    let client: BaseConsumer = kafka::base_config(&settings.kafka, "dlq-ledger")
        .create()
        .map_err(DlqError::kafka("creating a Kafka client"))?;
    let metadata = client
        .fetch_metadata(Some(LEDGER_TOPIC), REQUEST_TIMEOUT)
        .map_err(DlqError::kafka(&format!("reading the metadata of {LEDGER_TOPIC}")))?;
    let partitions: Option<usize> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == LEDGER_TOPIC && t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().len());
    match partitions {
        Some(1) => return Ok(()),
        Some(n) => {
            return Err(DlqError::Ledger(format!(
                "topic {LEDGER_TOPIC} has {n} partitions; the tool needs it with exactly one (and \
                 cleanup.policy=compact)"
            )));
        }
        None if !settings.topics.create => {
            return Err(DlqError::Ledger(format!(
                "topic {LEDGER_TOPIC} does not exist and topics.create is false: create it with one partition and \
                 cleanup.policy=compact (it records the tool's positions)"
            )));
        }
        None => {}
    }
    let admin: AdminClient<DefaultClientContext> = kafka::base_config(&settings.kafka, "dlq-admin")
        .create()
        .map_err(DlqError::kafka("creating a Kafka admin client"))?;
    let replication = TopicReplication::Fixed(settings.topics.replication_factor);
    let topic = NewTopic::new(LEDGER_TOPIC, 1, replication).set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
    let results = futures::executor::block_on(admin.create_topics([&topic], &options))
        .map_err(DlqError::kafka(&format!("creating {LEDGER_TOPIC}")))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic = LEDGER_TOPIC, "created the ledger topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(DlqError::kafka(&format!("creating {LEDGER_TOPIC}"))(rdkafka::error::KafkaError::AdminOp(
                    code,
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(pairs: &[(i32, i64)]) -> Starts {
        pairs.iter().copied().collect()
    }

    #[test]
    fn a_commit_moves_the_record_keeping_what_it_does_not_name() {
        let first = Recorded::moved(
            None,
            "t.g.dlq",
            &starts(&[(0, 5), (1, 7)]),
            &Marks::from([("t".into(), starts(&[(0, 100), (1, 50)]))]),
        );
        assert_eq!(first.next, starts(&[(0, 5), (1, 7)]));
        // A drain commits the partitions it read and no marks.
        let drained = Recorded::moved(Some(&first), "t.g.dlq", &starts(&[(1, 9)]), &Marks::new());
        assert_eq!(drained.next, starts(&[(0, 5), (1, 9)]));
        assert_eq!(drained.marks, first.marks, "marks a commit does not name are kept");
        let marked = Recorded::moved(
            Some(&drained),
            "t.g.dlq",
            &starts(&[(0, 6)]),
            &Marks::from([("t".into(), starts(&[(0, 90), (1, 60)])), ("u".into(), starts(&[(0, 1)]))]),
        );
        assert_eq!(marked.marks["t"], starts(&[(0, 100), (1, 60)]), "a mark never moves back");
        assert_eq!(marked.marks["u"], starts(&[(0, 1)]));
        let json = serde_json::to_string(&marked).expect("serializes");
        assert_eq!(serde_json::from_str::<Recorded>(&json).expect("parses"), marked, "{json}");
    }

    #[test]
    fn a_position_is_described_as_partition_offset_pairs() {
        assert_eq!(Recorded::describe(&starts(&[(0, 120), (3, 98)])), "0:120 3:98");
    }
}
