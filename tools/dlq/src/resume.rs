//! What makes an interrupted replay, rerun, send each dead letter once: the **marks** kept with the tool's
//! position, and the look-back they allow.
//!
//! The position ([`crate::position`]) moves past a batch only once the broker acknowledged every record of it,
//! so a replay killed mid-batch leaves records on the original topic that the position does not account for.
//! To find them, the tool's group also commits a mark per partition of each topic it replays to, as that
//! partition's committed offset: an offset before which none of the records of a batch not yet committed can
//! be. A mark is committed at the partition's end before the tool first sends to the topic (nothing sent after
//! can be before it) and moves past each acknowledged record with the position. A rerun, the first time a
//! dead letter names an original topic, reads that topic from its marks to its end and collects the
//! `courier.replay.from` of the records the interrupted run sent ([`look_back`]): those dead letters are passed
//! over as already replayed, so nothing is skipped and nothing is sent twice.
//!
//! At the clean end of a run nothing is uncommitted, and the marks move to each partition's end, so the next
//! look-back reads only what was written after it.
//!
//! (Committed offsets, not the offset metadata of the position's commits: Tansu 0.6.0 answers every offset
//! fetch with empty metadata; committed offsets work on both it and Apache Kafka.)

use std::collections::{BTreeMap, HashSet};

use courier::delivery::dlq::REPLAY_FROM_HEADER;
use courier::settings::KafkaSettings;

use crate::error::DlqError;
use crate::position::Position;
use crate::read::{Start, TopicReader};

/// Per original topic, per partition: the offset before which no record of an uncommitted batch can be.
pub type Marks = BTreeMap<String, BTreeMap<i32, i64>>;

/// Dead letters (partition, offset in the dead-letter topic) an interrupted replay sent.
pub type Sent = HashSet<(i32, i64)>;

/// The end (high watermark) of each partition of `topic` now (blocking); empty when the topic does not
/// exist (sending to it will fail and say so).
pub fn ends(kafka: &KafkaSettings, topic: &str) -> Result<BTreeMap<i32, i64>, DlqError> {
    match TopicReader::open(kafka, topic) {
        Ok(reader) => Ok(reader.watermarks.iter().map(|(&p, w)| (p, w.high)).collect()),
        Err(DlqError::UnknownTopic(_)) => Ok(BTreeMap::new()),
        Err(error) => Err(error),
    }
}

/// The marks committed for `topic` and the dead letters of `position`'s topic (partition, offset) that an
/// interrupted replay sent to it after them (blocking): `topic` is read from its marks to its end for records
/// whose `courier.replay.from` names the dead-letter topic. With `look` false (`--from-beginning`: replay
/// again) only the marks are read.
pub fn look_back(
    kafka: &KafkaSettings,
    position: &Position,
    topic: &str,
    look: bool,
) -> Result<(BTreeMap<i32, i64>, Sent), DlqError> {
    let mut sent = HashSet::new();
    let reader = match TopicReader::open(kafka, topic) {
        Ok(reader) => reader,
        // Sending to it will fail and say so.
        Err(DlqError::UnknownTopic(_)) => return Ok((BTreeMap::new(), sent)),
        Err(error) => return Err(error),
    };
    let marks = position.committed_on(topic, reader.watermarks.keys().copied())?;
    if look && !marks.is_empty() {
        reader.read(&Start::At(marks.clone()), |record| {
            if let Some(at) = record.header(REPLAY_FROM_HEADER).and_then(|from| origin(from, position.topic())) {
                sent.insert(at);
            }
            true
        })?;
    }
    Ok((marks, sent))
}

/// The (partition, offset) of a `courier.replay.from` value (`<topic>:<partition>:<offset>`) when it names
/// `dead_letter_topic`.
fn origin(from: &str, dead_letter_topic: &str) -> Option<(i32, i64)> {
    let (partition, offset) = from.strip_prefix(dead_letter_topic)?.strip_prefix(':')?.split_once(':')?;
    Some((partition.parse().ok()?, offset.parse().ok()?))
}

/// Moves `marks` of `topic` past an acknowledged record at `partition`/`offset`.
pub fn advance(marks: &mut Marks, topic: &str, partition: i32, offset: i64) {
    let mark = marks.entry(topic.to_owned()).or_default().entry(partition).or_insert(offset + 1);
    *mark = (*mark).max(offset + 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_origin_is_read_only_for_its_own_dead_letter_topic() {
        let dlq = "orders.created.payment.dlq";
        assert_eq!(origin("orders.created.payment.dlq:3:17", dlq), Some((3, 17)));
        assert_eq!(origin("orders.created.payment.dlq.old:3:17", dlq), None);
        assert_eq!(origin("orders.created.inventory.dlq:3:17", dlq), None);
        assert_eq!(origin("orders.created.payment.dlq:x:17", dlq), None);
    }

    #[test]
    fn a_mark_only_moves_forward() {
        let mut marks = Marks::new();
        advance(&mut marks, "t", 0, 9);
        advance(&mut marks, "t", 0, 4);
        assert_eq!(marks["t"][&0], 10);
    }
}
