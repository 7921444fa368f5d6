//! `courier-dlq replay`: sends dead letters back to their original topic for another attempt, safely.
//!
//! * **As the original.** The original key, value and headers go to the original topic
//!   (`courier.dlq.original.topic`) through courier's own producer configuration (idempotent, `acks=all`,
//!   the Java client's murmur2 partitioner), so a keyed record lands on the partition its key's later events
//!   use and per-key order holds. A record without key goes back to its original partition.
//! * **For the consumer that gave up only.** Every `courier.dlq.*` header is removed and
//!   `courier.replay.consumer` (and `courier.replay.channel`) name the consumer (and channel) that
//!   dead-lettered it: that consumer handles it again, every other group reading the topic skips it.
//! * **Counted.** `courier.replay.count` (the previous count + 1) and `courier.replay.from`
//!   (`<dead-letter topic>:<partition>:<offset>`) are added. A dead letter whose count reached
//!   `--max-replays` is not replayed again but reported: it keeps failing, a person must look at it.
//! * **Resumable, each dead letter sent once.** Reading starts at the tool's position on the dead-letter
//!   topic ([`crate::position`]); after each batch the broker acknowledged, the position moves past it. A rerun
//!   after an interruption goes on from there. Only a batch acknowledged but not yet committed when the tool
//!   was killed is sent again, and the consumers' idempotency keys make that a duplicate call, never a second
//!   effect. Dead letters the filter leaves out are passed over: the position moves past them too (replay them
//!   with `--from-beginning` and a filter that selects them).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use courier::delivery::dlq::{
    HEADER_PREFIX, REPLAY_CHANNEL_HEADER, REPLAY_CONSUMER_HEADER, REPLAY_COUNT_HEADER, REPLAY_FROM_HEADER,
};
use courier::kafka::headers::RawHeader;
use courier::kafka::{self, headers};
use courier::settings::Settings;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;

use crate::error::DlqError;
use crate::filter::Filter;
use crate::letter::{DeadLetter, RawRecord};
use crate::position::Position;
use crate::read::{DLQ_SUFFIX, Start, TopicReader};

/// The prefix of every header the replay adds (and removes from a dead letter replayed again).
pub const REPLAY_PREFIX: &str = "courier.replay.";
/// Records produced between two commits of the position.
const BATCH: usize = 100;

/// How many times `record` was replayed already (`courier.replay.count`; 0 without it).
pub fn replay_count(record: &RawRecord) -> u32 {
    record.header(REPLAY_COUNT_HEADER).and_then(|c| c.trim().parse().ok()).unwrap_or(0)
}

/// The headers of the replayed record: the original ones without any `courier.dlq.*` or `courier.replay.*`,
/// then the count, the origin and the consumer (and channel) the replay is meant for.
pub fn replayed_headers(record: &RawRecord, letter: &DeadLetter) -> Vec<RawHeader> {
    let ours = |key: &[u8]| key.starts_with(HEADER_PREFIX.as_bytes()) || key.starts_with(REPLAY_PREFIX.as_bytes());
    let mut out: Vec<RawHeader> = record.headers.iter().filter(|(k, _)| !ours(k)).cloned().collect();
    let mut add = |k: &str, v: String| out.push((k.as_bytes().to_vec(), Some(v.into_bytes())));
    add(REPLAY_COUNT_HEADER, (letter.replay_count + 1).to_string());
    add(REPLAY_FROM_HEADER, format!("{}:{}:{}", record.topic, record.partition, record.offset));
    if let Some(consumer) = &letter.consumer {
        add(REPLAY_CONSUMER_HEADER, consumer.clone());
    }
    if let Some(channel) = &letter.channel {
        add(REPLAY_CHANNEL_HEADER, channel.clone());
    }
    out
}

/// Where the dead letters to replay come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A dead-letter topic, from the tool's position on it.
    Topic(String),
    /// A file written by `courier-dlq drain` (no position: the whole file).
    File(PathBuf),
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Which dead letters.
    pub filter: Filter,
    /// A dead letter replayed this many times already is reported, not replayed.
    pub max_replays: u32,
    /// Print what would be sent; send and commit nothing.
    pub dry_run: bool,
    /// At most this many records per second.
    pub rate: Option<f64>,
    /// Replay at most this many dead letters, then stop (a rerun goes on after them).
    pub limit: Option<usize>,
    /// Start at the beginning of the topic rather than at the tool's position.
    pub from_beginning: bool,
    /// Draw a progress bar (stdout is a terminal).
    pub progress: bool,
}

/// What one dead letter comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Sent back (or, in a dry run, would be).
    Replay,
    /// Replayed `--max-replays` times already: reported, not replayed.
    LoopGuard,
    /// It cannot be replayed: no original topic, or published without its value.
    Unreplayable,
    /// Left out by the filter.
    Filtered,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplaySummary {
    /// Dead letters read.
    pub read: usize,
    /// Dead letters that passed the filter.
    pub matched: usize,
    /// Dead letters sent back (in a dry run: that would be).
    pub replayed: usize,
    /// Dead letters held by the loop guard (`--max-replays`).
    pub held: usize,
    /// Dead letters that cannot be replayed (no original topic, or no value).
    pub unreplayable: usize,
    /// Dead letters not reached because `--limit` was reached (a rerun goes on with them).
    pub left: usize,
    /// Whether nothing was sent (`--dry-run`).
    pub dry_run: bool,
}

/// What to do with `letter`.
fn decide(letter: &DeadLetter, options: &ReplayOptions) -> Action {
    if !options.filter.matches(letter) {
        Action::Filtered
    } else if letter.original_topic.is_none() || letter.value_omitted {
        Action::Unreplayable
    } else if letter.replay_count >= options.max_replays {
        Action::LoopGuard
    } else {
        Action::Replay
    }
}

/// The dead letters to look at: from the topic (at the tool's position, or the beginning) or the file.
fn load(settings: &Settings, source: &Source, from_beginning: bool) -> Result<Vec<RawRecord>, DlqError> {
    match source {
        Source::File(path) => crate::drain::read_file(path),
        Source::Topic(topic) => {
            let reader = TopicReader::open(&settings.kafka, topic)?;
            let start = if from_beginning {
                Start::Beginning
            } else {
                let position = Position::open(&settings.kafka, topic)?;
                Start::At(position.committed(reader.watermarks.keys().copied())?)
            };
            let mut records = Vec::new();
            reader.read(&start, |record| {
                records.push(record);
                true
            })?;
            Ok(records)
        }
    }
}

/// A line about `letter`.
fn line(letter: &DeadLetter, action: Action, dry_run: bool) -> String {
    let what = match action {
        Action::Replay if dry_run => "would replay",
        Action::Replay => "replayed",
        Action::LoopGuard => "NOT replayed (loop guard: replayed too often already)",
        Action::Unreplayable => "NOT replayed (no original topic or no value)",
        Action::Filtered => "passed over",
    };
    format!(
        "{}:{}:{}  {what}  → {}  consumer={} channel={} replays={} event={}",
        letter.topic,
        letter.partition,
        letter.offset,
        letter.original_topic.as_deref().unwrap_or("-"),
        letter.consumer.as_deref().unwrap_or("-"),
        letter.channel.as_deref().unwrap_or("-"),
        letter.replay_count,
        letter.event_id.as_deref().unwrap_or("-"),
    )
}

/// Replays the dead letters of `source` as `options` say, writing a line per dead letter acted on and the
/// summary to `out`.
pub async fn replay(
    settings: &Settings,
    source: &Source,
    options: &ReplayOptions,
    out: &mut (dyn Write + Send),
) -> Result<ReplaySummary, DlqError> {
    if let Source::Topic(topic) = source
        && !topic.ends_with(DLQ_SUFFIX)
    {
        return Err(DlqError::NotDeadLetterTopic(topic.clone()));
    }
    let records = {
        let (settings, source, from_beginning) = (settings.clone(), source.clone(), options.from_beginning);
        tokio::task::spawn_blocking(move || load(&settings, &source, from_beginning))
            .await
            .unwrap_or_else(|e| Err(DlqError::Io { path: "replay".into(), source: std::io::Error::other(e) }))?
    };
    let name = match source {
        Source::Topic(topic) => topic.clone(),
        Source::File(path) => path.display().to_string(),
    };
    // Decide each dead letter, up to the limit: what comes after it is left for the next run.
    let mut summary = ReplaySummary { read: records.len(), dry_run: options.dry_run, ..ReplaySummary::default() };
    let mut plan: Vec<(RawRecord, DeadLetter, Action)> = Vec::new();
    for record in records {
        let letter = DeadLetter::parse(&record);
        let action = decide(&letter, options);
        if action == Action::Replay && options.limit.is_some_and(|limit| summary.replayed >= limit) {
            summary.left += 1;
            continue;
        }
        if summary.left > 0 {
            // Past the limit in read order: only what matches counts as left; nothing more is decided.
            summary.left += usize::from(action == Action::Replay);
            continue;
        }
        match action {
            Action::Replay => summary.replayed += 1,
            Action::LoopGuard => summary.held += 1,
            Action::Unreplayable => summary.unreplayable += 1,
            Action::Filtered => {}
        }
        summary.matched += usize::from(action != Action::Filtered);
        plan.push((record, letter, action));
    }
    if options.filter.is_set() && summary.matched == 0 && summary.left == 0 {
        return Err(DlqError::NoMatch { topic: name, read: summary.read });
    }
    // What is not replayed is reported now; a replay once the broker acknowledged it (or now, in a dry run).
    for (_, letter, action) in &plan {
        let report = match action {
            Action::Filtered => false,
            Action::Replay => options.dry_run,
            Action::LoopGuard | Action::Unreplayable => true,
        };
        if report {
            writeln!(out, "{}", line(letter, *action, options.dry_run)).map_err(io_error)?;
        }
    }
    if !options.dry_run {
        send(settings, source, &plan, options, out).await?;
    }
    Ok(summary)
}

/// An output error.
fn io_error(error: std::io::Error) -> DlqError {
    DlqError::Io { path: "stdout".into(), source: error }
}

/// Sends the planned replays in batches; after each acknowledged batch commits the position past every dead
/// letter of the batch (sent or not).
async fn send(
    settings: &Settings,
    source: &Source,
    plan: &[(RawRecord, DeadLetter, Action)],
    options: &ReplayOptions,
    out: &mut (dyn Write + Send),
) -> Result<(), DlqError> {
    let timeout = Duration::from_millis(settings.producer.publish_timeout_ms);
    let producer: FutureProducer = kafka::producer_config(&settings.kafka, "dlq-replay", timeout)
        .create()
        .map_err(DlqError::kafka("creating the replay producer"))?;
    let position = match source {
        Source::Topic(topic) => {
            let (kafka, topic) = (settings.kafka.clone(), topic.clone());
            let position = tokio::task::spawn_blocking(move || Position::open(&kafka, &topic))
                .await
                .unwrap_or_else(|e| Err(DlqError::Io { path: "position".into(), source: std::io::Error::other(e) }))?;
            Some(std::sync::Arc::new(position))
        }
        Source::File(_) => None,
    };
    let total = plan.iter().filter(|(_, _, a)| *a == Action::Replay).count();
    let bar = options.progress.then(|| {
        let bar = ProgressBar::new(total as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} replayed  {per_sec}  ETA {eta}") {
            bar.set_style(style);
        }
        bar
    });
    let started = tokio::time::Instant::now();
    let mut sent = 0usize;
    for chunk in batches(plan) {
        let mut pending = Vec::new();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for (record, letter, action) in chunk {
            next.insert(record.partition, record.offset + 1);
            if *action != Action::Replay {
                continue;
            }
            if let Some(rate) = options.rate.filter(|r| *r > 0.0) {
                tokio::time::sleep_until(started + Duration::from_secs_f64(sent as f64 / rate)).await;
            }
            let topic = letter.original_topic.as_deref().unwrap_or_default();
            let owned = replayed_headers(record, letter);
            let mut out_record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(topic).headers(headers::to_owned(owned.iter().map(|(k, v)| (k, v.as_ref()))));
            if let Some(value) = &record.value {
                out_record = out_record.payload(value.as_slice());
            }
            match (&record.key, letter.original_partition) {
                (Some(key), _) => out_record = out_record.key(key.as_slice()),
                (None, Some(partition)) => out_record = out_record.partition(partition),
                (None, None) => {}
            }
            let delivery = producer.send_result(out_record).map_err(|(e, _)| {
                DlqError::kafka(&format!("queueing the replay of {}:{}", record.partition, record.offset))(e)
            })?;
            pending.push((delivery, letter));
            sent += 1;
        }
        for (delivery, letter) in pending {
            let acknowledged = delivery.await.map_err(|_| DlqError::Kafka {
                context: "the replay producer stopped".into(),
                source: rdkafka::error::KafkaError::Canceled,
            })?;
            let delivered = acknowledged.map_err(|(e, _)| {
                DlqError::kafka(&format!(
                    "replaying {}:{}:{} to {}",
                    letter.topic,
                    letter.partition,
                    letter.offset,
                    letter.original_topic.as_deref().unwrap_or("-")
                ))(e)
            })?;
            tracing::info!(from = %format!("{}:{}:{}", letter.topic, letter.partition, letter.offset),
                to = %format!("{}:{}:{}", letter.original_topic.as_deref().unwrap_or("-"), delivered.partition, delivered.offset),
                "replayed");
            match &bar {
                Some(bar) => bar.inc(1),
                None => writeln!(out, "{}", line(letter, Action::Replay, false)).map_err(io_error)?,
            }
        }
        if let Some(position) = &position {
            let position = std::sync::Arc::clone(position);
            tokio::task::spawn_blocking(move || position.commit(&next))
                .await
                .unwrap_or_else(|e| Err(DlqError::Io { path: "position".into(), source: std::io::Error::other(e) }))?;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}

/// `plan` cut into batches of at most [`BATCH`] records to send (with the dead letters between them).
fn batches(plan: &[(RawRecord, DeadLetter, Action)]) -> Vec<&[(RawRecord, DeadLetter, Action)]> {
    let mut out = Vec::new();
    let (mut start, mut sends) = (0, 0);
    for (i, (_, _, action)) in plan.iter().enumerate() {
        sends += usize::from(*action == Action::Replay);
        if sends == BATCH {
            out.push(&plan[start..=i]);
            (start, sends) = (i + 1, 0);
        }
    }
    if start < plan.len() {
        out.push(&plan[start..]);
    }
    out
}

/// Writes the summary.
pub fn write_summary(out: &mut dyn Write, s: &ReplaySummary) -> std::io::Result<()> {
    let verb = if s.dry_run { "would replay" } else { "replayed" };
    writeln!(
        out,
        "{verb} {} of {} dead letters read ({} matched the filter); {} held by the loop guard; {} unreplayable; {} left for the next run{}",
        s.replayed,
        s.read,
        s.matched,
        s.held,
        s.unreplayable,
        s.left,
        if s.dry_run { " (dry run: nothing sent, the position unchanged)" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::letter;

    fn dead_letter(offset: i64, extra: &[(&str, &str)]) -> (RawRecord, DeadLetter) {
        let mut headers = vec![
            ("traceparent", "00-abc-def-01"),
            ("courier.dlq.original.topic", "orders.created"),
            ("courier.dlq.original.partition", "2"),
            ("courier.dlq.consumer", "notification"),
            ("courier.dlq.channel", "sms"),
            ("courier.dlq.error.kind", "http_status"),
        ];
        headers.extend_from_slice(extra);
        let record = letter::letter_record(offset, &headers, br#"{"id":"ev-1"}"#);
        let letter = DeadLetter::parse(&record);
        (record, letter)
    }

    fn text(headers: &[RawHeader]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(k, v)| {
                (String::from_utf8_lossy(k).into(), String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into())
            })
            .collect()
    }

    #[test]
    fn a_replayed_record_loses_the_dead_letter_headers_and_gains_the_replay_ones() {
        let (record, letter) = dead_letter(7, &[("courier.replay.count", "1"), ("courier.replay.from", "old:0:0")]);
        let headers = text(&replayed_headers(&record, &letter));
        let expected = [
            ("traceparent", "00-abc-def-01"),
            ("courier.replay.count", "2"),
            ("courier.replay.from", "orders.created.inventory.dlq:2:7"),
            ("courier.replay.consumer", "notification"),
            ("courier.replay.channel", "sms"),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        assert_eq!(headers, expected);
    }

    fn options(max_replays: u32, limit: Option<usize>) -> ReplayOptions {
        ReplayOptions {
            filter: Filter::default(),
            max_replays,
            dry_run: false,
            rate: None,
            limit,
            from_beginning: false,
            progress: false,
        }
    }

    #[test]
    fn the_loop_guard_holds_a_dead_letter_replayed_too_often() {
        let (_, fresh) = dead_letter(1, &[]);
        let (_, twice) = dead_letter(2, &[("courier.replay.count", "2")]);
        let (_, thrice) = dead_letter(3, &[("courier.replay.count", "3")]);
        let (_, no_value) = dead_letter(4, &[("courier.dlq.value_omitted", "3000000")]);
        let three = options(3, None);
        assert_eq!(decide(&fresh, &three), Action::Replay);
        assert_eq!(decide(&twice, &three), Action::Replay);
        assert_eq!(decide(&thrice, &three), Action::LoopGuard);
        assert_eq!(decide(&no_value, &three), Action::Unreplayable);
        let sms_only = ReplayOptions { filter: Filter { channel: Some("email".into()), ..Filter::default() }, ..three };
        assert_eq!(decide(&fresh, &sms_only), Action::Filtered);
    }

    #[test]
    fn batches_hold_at_most_a_batch_of_sends_and_every_dead_letter_once() {
        let plan: Vec<_> = (0..260)
            .map(|i| {
                let (r, l) = dead_letter(i, &[]);
                (r, l, if i % 5 == 0 { Action::Filtered } else { Action::Replay })
            })
            .collect();
        let cut = batches(&plan);
        assert_eq!(cut.iter().map(|b| b.len()).sum::<usize>(), 260);
        assert!(cut.iter().all(|b| b.iter().filter(|(_, _, a)| *a == Action::Replay).count() <= BATCH));
        assert_eq!(cut.len(), 3);
    }
}
