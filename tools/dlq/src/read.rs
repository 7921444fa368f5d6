//! Reading a topic from a start position to the end it had when reading began (its high watermarks), with an
//! assign-based consumer that joins no group and commits nothing; and the dead-letter topics of a cluster.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use courier::kafka::{self, headers};
use courier::settings::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::error::DlqError;
use crate::letter::RawRecord;

/// How long one metadata or watermark request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long reading may go without a record before the broker is taken to have stopped answering.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The suffix of every dead-letter topic (`<topic>.<group>.dlq`).
pub const DLQ_SUFFIX: &str = ".dlq";

/// Partition → the offset to start reading at.
pub type Starts = BTreeMap<i32, i64>;

/// Where reading starts in each partition.
#[derive(Debug, Clone, Default)]
pub enum Start {
    /// At the oldest record each partition still holds.
    #[default]
    Beginning,
    /// At these offsets (a partition missing here starts at its beginning).
    At(Starts),
}

/// A partition's low and high watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// The oldest offset it holds.
    pub low: i64,
    /// One past the newest.
    pub high: i64,
}

/// A reader of one topic.
pub struct TopicReader {
    /// The assign-only consumer (it has a group id, required to ask for offsets, but never joins or commits).
    client: BaseConsumer,
    /// The topic.
    topic: String,
    /// Its partitions' watermarks when the reader was made.
    pub watermarks: BTreeMap<i32, Watermarks>,
}

impl TopicReader {
    /// Connects and reads `topic`'s partitions and watermarks; [`DlqError::UnknownTopic`] when it does not exist.
    pub fn open(kafka: &KafkaSettings, topic: &str) -> Result<Self, DlqError> {
        let client: BaseConsumer = kafka::base_config(kafka, "dlq-reader")
            .set("group.id", "courier-dlq-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .create()
            .map_err(DlqError::kafka("creating a Kafka client"))?;
        let metadata = client
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .map_err(DlqError::kafka(&format!("reading the metadata of {topic}")))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(DlqError::UnknownTopic(topic.to_owned()));
        }
        let mut watermarks = BTreeMap::new();
        for partition in partitions {
            let (low, high) = client
                .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
                .map_err(DlqError::kafka(&format!("reading the watermarks of {topic}/{partition}")))?;
            watermarks.insert(partition, Watermarks { low, high });
        }
        Ok(Self { client, topic: topic.to_owned(), watermarks })
    }

    /// Records in the topic (sum of high minus low watermarks).
    pub fn record_count(&self) -> i64 {
        self.watermarks.values().map(|w| w.high - w.low).sum()
    }

    /// Reads every record from `start` up to the high watermarks of [`TopicReader::open`], handing each to
    /// `visit` in offset order per partition; `visit` returns `false` to stop early.
    pub fn read(&self, start: &Start, mut visit: impl FnMut(RawRecord) -> bool) -> Result<(), DlqError> {
        let mut pending: HashMap<i32, i64> = HashMap::new();
        let mut assignment = TopicPartitionList::new();
        for (&partition, w) in &self.watermarks {
            let from = match start {
                Start::Beginning => w.low,
                Start::At(starts) => starts.get(&partition).copied().unwrap_or(w.low).max(w.low),
            };
            if from < w.high {
                assignment
                    .add_partition_offset(&self.topic, partition, Offset::Offset(from))
                    .map_err(DlqError::kafka("assigning a partition"))?;
                pending.insert(partition, w.high);
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        self.client.assign(&assignment).map_err(DlqError::kafka(&format!("assigning {}", self.topic)))?;
        let mut last_record = Instant::now();
        while !pending.is_empty() {
            let Some(message) = self.client.poll(Duration::from_millis(200)) else {
                if last_record.elapsed() > IDLE_TIMEOUT {
                    return Err(DlqError::Stalled { topic: self.topic.clone(), waited: IDLE_TIMEOUT });
                }
                continue;
            };
            let message = match message {
                Ok(message) => message,
                Err(KafkaError::PartitionEOF(partition)) => {
                    pending.remove(&partition);
                    continue;
                }
                Err(error) => return Err(DlqError::kafka(&format!("reading {}", self.topic))(error)),
            };
            last_record = Instant::now();
            let partition = message.partition();
            let Some(&high) = pending.get(&partition) else { continue };
            if message.offset() >= high {
                pending.remove(&partition);
                continue;
            }
            let record = RawRecord {
                topic: self.topic.clone(),
                partition,
                offset: message.offset(),
                timestamp_ms: message.timestamp().to_millis(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
                headers: headers::read(&message),
            };
            if message.offset() + 1 >= high {
                pending.remove(&partition);
            }
            if !visit(record) {
                break;
            }
        }
        let _ = self.client.unassign();
        Ok(())
    }
}

impl TopicReader {
    /// The record at `offset` of `partition`, when the partition holds it.
    pub fn fetch_one(&self, partition: i32, offset: i64) -> Result<Option<RawRecord>, DlqError> {
        let Some(w) = self.watermarks.get(&partition) else { return Ok(None) };
        if offset < w.low || offset >= w.high {
            return Ok(None);
        }
        let mut found = None;
        self.read(&Start::At(Starts::from([(partition, offset)])), |record| {
            if record.partition == partition {
                found = (record.offset == offset).then_some(record);
                return false;
            }
            true
        })?;
        Ok(found)
    }
}

/// The names of every dead-letter topic (`*.dlq`) of the cluster, sorted.
pub fn dead_letter_topics(kafka: &KafkaSettings) -> Result<Vec<String>, DlqError> {
    let client: BaseConsumer =
        kafka::base_config(kafka, "dlq-list").create().map_err(DlqError::kafka("creating a Kafka client"))?;
    let metadata = client.fetch_metadata(None, REQUEST_TIMEOUT).map_err(DlqError::kafka("listing the topics"))?;
    let mut topics: Vec<String> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && t.name().ends_with(DLQ_SUFFIX))
        .map(|t| t.name().to_owned())
        .collect();
    topics.sort();
    Ok(topics)
}
