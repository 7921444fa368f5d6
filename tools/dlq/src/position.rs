//! The tool's position on a dead-letter topic: the offsets of its own consumer group
//! (`courier-dlq-replay-<topic>`, after `kafka.group_id_prefix`), committed by `replay` and `drain` once what
//! they read was acknowledged (or written), so that a rerun goes on where the last one stopped. The group
//! never joins: offsets are committed for assigned partitions only. With the position, the group commits
//! `replay`'s marks ([`crate::resume`]) as its offsets on the topics replayed to.

use std::collections::BTreeMap;

use courier::kafka;
use courier::settings::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::DlqError;
use crate::read::{REQUEST_TIMEOUT, Starts};
use crate::resume::Marks;

/// The tool's consumer group on one dead-letter topic.
pub struct Position {
    /// A client of the group (it never subscribes).
    client: BaseConsumer,
    /// The group id.
    pub group: String,
    /// The dead-letter topic.
    topic: String,
}

/// The group id of the tool's position on `topic`.
pub fn group_for(kafka: &KafkaSettings, topic: &str) -> String {
    kafka.group_id(&format!("courier-dlq-replay-{topic}"))
}

impl Position {
    /// A client of the position on `topic`.
    pub fn open(kafka: &KafkaSettings, topic: &str) -> Result<Self, DlqError> {
        let group = group_for(kafka, topic);
        let client: BaseConsumer = kafka::base_config(kafka, "dlq-position")
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create()
            .map_err(DlqError::kafka("creating a Kafka client"))?;
        Ok(Self { client, group, topic: topic.to_owned() })
    }

    /// The dead-letter topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next offset to handle in each of `partitions` of the dead-letter topic that has one committed.
    pub fn committed(&self, partitions: impl IntoIterator<Item = i32>) -> Result<Starts, DlqError> {
        self.committed_on(&self.topic, partitions)
    }

    /// The offset the group committed in each of `partitions` of `topic` that has one: the position on the
    /// dead-letter topic, the marks on a topic replayed to.
    pub fn committed_on(&self, topic: &str, partitions: impl IntoIterator<Item = i32>) -> Result<Starts, DlqError> {
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            list.add_partition(topic, partition);
        }
        let committed = self
            .client
            .committed_offsets(list, REQUEST_TIMEOUT)
            .map_err(DlqError::kafka(&format!("reading the position of group {}", self.group)))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect())
    }

    /// Commits `next` (partition → the next offset to handle) and `marks`, in one request, waiting for the
    /// broker.
    pub fn commit(&self, next: &BTreeMap<i32, i64>, marks: &Marks) -> Result<(), DlqError> {
        let mut list = TopicPartitionList::new();
        let marks = marks.iter().flat_map(|(topic, marks)| marks.iter().map(move |(p, o)| (topic.as_str(), p, o)));
        for (topic, &partition, &offset) in next.iter().map(|(p, o)| (self.topic.as_str(), p, o)).chain(marks) {
            list.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(DlqError::kafka("building the commit"))?;
        }
        if list.count() == 0 {
            return Ok(());
        }
        self.client
            .commit(&list, CommitMode::Sync)
            .map_err(DlqError::kafka(&format!("committing the position of group {}", self.group)))?;
        tracing::info!(group = %self.group, topic = %self.topic, ?next, "position committed");
        Ok(())
    }
}
