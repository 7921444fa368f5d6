//! The tool's position on a dead-letter topic: the offsets of its own consumer group
//! (`courier-dlq-replay-<topic>`, after `kafka.group_id_prefix`), committed by `replay` and `drain` once what
//! they read was acknowledged (or written), so that a rerun goes on where the last one stopped. The group
//! never joins: offsets are committed for assigned partitions only. With the position, the group commits
//! `replay`'s marks ([`crate::resume`]) as its offsets on the topics replayed to.
//!
//! **A lost position is noticed.** A broker deletes committed offsets after `offsets.retention.minutes`
//! without a commit (and so does deleting the group). Every commit is therefore first written to the ledger
//! ([`crate::ledger`]), which no time limit deletes, and [`Position::start`] compares the two: a partition
//! with no committed offset whose recorded position lies above its oldest record was handled up to there
//! before, and starting at its oldest record would send that again. Such a start is refused
//! ([`DlqError::PositionLost`]) unless the operator chooses: `--restore-position` goes on from the recorded
//! position (and marks), `--from-beginning` starts at the oldest record, sending again what was replayed. A
//! partition whose records below the recorded position were all deleted by retention starts at its oldest
//! record without question: nothing there was handled before.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use chrono::SecondsFormat;
use courier::kafka;
use courier::settings::{KafkaSettings, Settings};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::DlqError;
use crate::ledger::{LEDGER_TOPIC, Ledger, Recorded};
use crate::read::{REQUEST_TIMEOUT, Starts, Watermarks};
use crate::resume::Marks;

/// Where a run starts on the dead-letter topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// At the tool's position; refused when the position was lost.
    #[default]
    Position,
    /// At the oldest record of each partition (`--from-beginning`): what was replayed is sent again.
    Beginning,
    /// At the tool's position, and where it was lost at the position the ledger recorded
    /// (`--restore-position`), with the recorded marks.
    Recorded,
}

/// The tool's consumer group on one dead-letter topic.
pub struct Position {
    /// A client of the group (it never subscribes).
    client: BaseConsumer,
    /// The group id.
    pub group: String,
    /// The dead-letter topic.
    topic: String,
    /// The durable record of every commit.
    ledger: Ledger,
    /// The ledger's newest record of the group: as read by [`Position::start`], then as written.
    recorded: Mutex<Option<Recorded>>,
    /// Marks taken from the ledger when the position was restored, for the topics the group has none
    /// committed on.
    restored: Marks,
}

/// The group id of the tool's position on `topic`.
pub fn group_for(kafka: &KafkaSettings, topic: &str) -> String {
    kafka.group_id(&format!("courier-dlq-replay-{topic}"))
}

/// Where a run starts in each partition of `watermarks`, given the `committed` position and the position the
/// ledger `recorded`. The error lists the partitions whose position was lost (no committed offset, a recorded
/// one above the partition's oldest record) when `from` is [`StartFrom::Position`].
pub fn starts(
    watermarks: &BTreeMap<i32, Watermarks>,
    committed: &Starts,
    recorded: Option<&Starts>,
    from: StartFrom,
) -> Result<Starts, Starts> {
    let lost: Starts = watermarks
        .iter()
        .filter(|(p, _)| !committed.contains_key(p))
        .filter_map(|(p, w)| recorded.and_then(|r| r.get(p)).filter(|&&next| next > w.low).map(|&next| (*p, next)))
        .collect();
    if from == StartFrom::Position && !lost.is_empty() {
        return Err(lost);
    }
    let start = |p: &i32, w: &Watermarks| match from {
        StartFrom::Beginning => w.low,
        StartFrom::Position => committed.get(p).copied().unwrap_or(w.low).max(w.low),
        StartFrom::Recorded => committed.get(p).or(lost.get(p)).copied().unwrap_or(w.low).max(w.low),
    };
    Ok(watermarks.iter().map(|(p, w)| (*p, start(p, w))).collect())
}

impl Position {
    /// A client of the position on `topic` (blocking).
    pub fn open(settings: &Settings, topic: &str) -> Result<Self, DlqError> {
        let group = group_for(&settings.kafka, topic);
        let client: BaseConsumer = kafka::base_config(&settings.kafka, "dlq-position")
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create()
            .map_err(DlqError::kafka("creating a Kafka client"))?;
        let ledger = Ledger::open(settings)?;
        let recorded = Mutex::new(None);
        Ok(Self { client, group, topic: topic.to_owned(), ledger, recorded, restored: Marks::new() })
    }

    /// The dead-letter topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Where a run starts in each partition of `watermarks` ([`starts`]), after reading the ledger's record of
    /// the position (blocking); [`DlqError::PositionLost`] when the position was lost and `from` does not say
    /// what to do. Restoring takes the recorded marks too.
    pub fn start(&mut self, watermarks: &BTreeMap<i32, Watermarks>, from: StartFrom) -> Result<Starts, DlqError> {
        let committed = self.committed_on(&self.topic, watermarks.keys().copied())?;
        let recorded = match self.ledger.read(&self.group) {
            // Starting over needs no record, and its first commit replaces the unreadable one.
            Err(DlqError::Ledger(reason)) if from == StartFrom::Beginning => {
                tracing::warn!(group = %self.group, %reason, "the ledger's record is unreadable: starting over");
                None
            }
            read => read?,
        };
        *self.recorded.lock().unwrap_or_else(PoisonError::into_inner) = recorded.clone();
        let next = recorded.as_ref().map(|r| &r.next);
        let lost = |lost: Starts| DlqError::PositionLost {
            topic: self.topic.clone(),
            group: self.group.clone(),
            recorded: Recorded::describe(&lost),
            written_at: recorded
                .as_ref()
                .map(|r| r.written_at.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_default(),
        };
        let starts = starts(watermarks, &committed, next, from).map_err(lost)?;
        if from == StartFrom::Recorded
            && let Some(recorded) = &recorded
            && starts.iter().any(|(p, o)| !committed.contains_key(p) && recorded.next.get(p) == Some(o))
        {
            tracing::warn!(
                group = %self.group, topic = %self.topic, position = %Recorded::describe(&starts),
                "position restored from {LEDGER_TOPIC}"
            );
            self.restored = recorded.marks.clone();
        }
        Ok(starts)
    }

    /// The offset the group committed in each of `partitions` of `topic` that has one: the position on the
    /// dead-letter topic, the marks on a topic replayed to (for a topic without any, the marks restored from
    /// the ledger).
    pub fn committed_on(&self, topic: &str, partitions: impl IntoIterator<Item = i32>) -> Result<Starts, DlqError> {
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            list.add_partition(topic, partition);
        }
        let committed = self
            .client
            .committed_offsets(list, REQUEST_TIMEOUT)
            .map_err(DlqError::kafka(&format!("reading the position of group {}", self.group)))?;
        let committed: Starts = committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect();
        match self.restored.get(topic) {
            Some(restored) if committed.is_empty() && topic != self.topic => Ok(restored.clone()),
            _ => Ok(committed),
        }
    }

    /// Records `next` (partition → the next offset to handle) and `marks` in the ledger, then commits them, in
    /// one request, waiting for the broker each time.
    pub fn commit(&self, next: &BTreeMap<i32, i64>, marks: &Marks) -> Result<(), DlqError> {
        let mut list = TopicPartitionList::new();
        let all_marks = marks.iter().flat_map(|(topic, marks)| marks.iter().map(move |(p, o)| (topic.as_str(), p, o)));
        for (topic, &partition, &offset) in next.iter().map(|(p, o)| (self.topic.as_str(), p, o)).chain(all_marks) {
            list.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(DlqError::kafka("building the commit"))?;
        }
        if list.count() == 0 {
            return Ok(());
        }
        {
            let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
            let moved = Recorded::moved(recorded.as_ref(), &self.topic, next, marks);
            self.ledger.write(&self.group, &moved)?;
            *recorded = Some(moved);
        }
        self.client
            .commit(&list, CommitMode::Sync)
            .map_err(DlqError::kafka(&format!("committing the position of group {}", self.group)))?;
        tracing::info!(group = %self.group, topic = %self.topic, ?next, "position committed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(pairs: &[(i32, i64)]) -> Starts {
        pairs.iter().copied().collect()
    }

    fn watermarks(pairs: &[(i32, i64, i64)]) -> BTreeMap<i32, Watermarks> {
        pairs.iter().map(|&(p, low, high)| (p, Watermarks { low, high })).collect()
    }

    #[test]
    fn never_replayed_starts_at_the_oldest_record() {
        let w = watermarks(&[(0, 0, 10), (1, 4, 9)]);
        assert_eq!(starts(&w, &Starts::new(), None, StartFrom::Position), Ok(offsets(&[(0, 0), (1, 4)])));
    }

    #[test]
    fn a_committed_position_is_where_a_run_starts_whatever_the_ledger_says() {
        let w = watermarks(&[(0, 0, 10), (1, 4, 9)]);
        // An operator may move the group's offsets back on purpose: the committed position wins.
        let committed = offsets(&[(0, 3), (1, 2)]);
        let recorded = offsets(&[(0, 8), (1, 9)]);
        assert_eq!(starts(&w, &committed, Some(&recorded), StartFrom::Position), Ok(offsets(&[(0, 3), (1, 4)])));
        assert_eq!(starts(&w, &committed, Some(&recorded), StartFrom::Beginning), Ok(offsets(&[(0, 0), (1, 4)])));
    }

    #[test]
    fn a_lost_position_is_refused_unless_restored_or_replayed_from_the_beginning() {
        let w = watermarks(&[(0, 0, 10), (1, 4, 9), (2, 0, 0)]);
        let recorded = offsets(&[(0, 8), (1, 9)]);
        assert_eq!(
            starts(&w, &Starts::new(), Some(&recorded), StartFrom::Position),
            Err(offsets(&[(0, 8), (1, 9)])),
            "records below the recorded position are still there"
        );
        assert_eq!(
            starts(&w, &Starts::new(), Some(&recorded), StartFrom::Recorded),
            Ok(offsets(&[(0, 8), (1, 9), (2, 0)]))
        );
        assert_eq!(
            starts(&w, &Starts::new(), Some(&recorded), StartFrom::Beginning),
            Ok(offsets(&[(0, 0), (1, 4), (2, 0)]))
        );
        // One partition lost, the other still committed.
        assert_eq!(starts(&w, &offsets(&[(1, 9)]), Some(&recorded), StartFrom::Position), Err(offsets(&[(0, 8)])));
    }

    #[test]
    fn a_lost_position_below_what_retention_deleted_starts_at_the_oldest_record() {
        // Everything below the recorded position was deleted: nothing there can be sent again.
        let w = watermarks(&[(0, 8, 12), (1, 20, 20)]);
        let recorded = offsets(&[(0, 8), (1, 9)]);
        assert_eq!(starts(&w, &Starts::new(), Some(&recorded), StartFrom::Position), Ok(offsets(&[(0, 8), (1, 20)])));
    }
}
