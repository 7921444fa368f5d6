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
//!   topic ([`crate::position`]) and streams: a batch of at most `BATCH` sends is read, sent, and once the
//!   broker acknowledged all of it the position moves past it. A rerun after an interruption goes on from
//!   there, and the marks committed with the position ([`crate::resume`]) let it find the records of the
//!   batch that was cut short and pass over their dead letters: nothing is skipped, nothing is sent twice.
//!   Dead letters the filter leaves out are passed over: the position moves past them too (replay them with
//!   `--from-beginning` and a filter that selects them). A file (`--from`) has no position: it is sent whole.
//! * **Never from a lost position.** When the broker expired the position (or its group was deleted) while
//!   the ledger ([`crate::ledger`]) records one above the topic's oldest dead letters, the replay refuses to
//!   start: `--restore-position` goes on from the recorded position, `--from-beginning` sends everything
//!   again ([`crate::position`]).
//! * **One at a time.** A replay of a topic (not a dry run) holds the topic's lock ([`crate::lock`]) from
//!   before it reads the position to its end: a second replay or drain of the topic refuses to start, and a
//!   replay that lost the lock stops before its next send or commit.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use courier::delivery::dlq::{
    HEADER_PREFIX, REPLAY_CHANNEL_HEADER, REPLAY_CONSUMER_HEADER, REPLAY_COUNT_HEADER, REPLAY_FROM_HEADER,
    REPLAY_ORIGINAL_OFFSET_HEADER, REPLAY_ORIGINAL_PARTITION_HEADER, REPLAY_ORIGINAL_TOPIC_HEADER,
};
use courier::formats::identity;
use courier::kafka::headers::RawHeader;
use courier::kafka::{self, headers};
use courier::settings::{KafkaSettings, Settings};
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::DlqError;
use crate::filter::Filter;
use crate::letter::{DeadLetter, RawRecord};
use crate::lock::{Lock, LockWatch};
use crate::position::{Position, StartFrom};
use crate::read::{DLQ_SUFFIX, Start, Starts, TopicReader};
use crate::resume::{self, Marks, Sent};
use crate::{blocking, drain};

/// The prefix of every header the replay adds (and removes from a dead letter replayed again).
pub const REPLAY_PREFIX: &str = "courier.replay.";
/// Records sent between two commits of the position (and dead letters buffered ahead of the sending).
const BATCH: usize = 100;

/// How many times `record` was replayed already (`courier.replay.count`; 0 without it).
pub fn replay_count(record: &RawRecord) -> u32 {
    record.header(REPLAY_COUNT_HEADER).and_then(|c| c.trim().parse().ok()).unwrap_or(0)
}

/// The headers of the replayed record: the original ones without any `courier.dlq.*` or `courier.replay.*`,
/// then the count, the origin, where the record was first read (`courier.replay.original.*`: a record
/// identified by its coordinates keeps its idempotency key, replay after replay) and the consumer (and
/// channel) the replay is meant for.
pub fn replayed_headers(record: &RawRecord, letter: &DeadLetter) -> Vec<RawHeader> {
    let (first_topic, first_partition, first_offset) =
        identity::first_read_at(&record.headers, &record.topic, record.partition, record.offset);
    let first = [
        (REPLAY_ORIGINAL_TOPIC_HEADER, first_topic.to_owned()),
        (REPLAY_ORIGINAL_PARTITION_HEADER, first_partition.to_string()),
        (REPLAY_ORIGINAL_OFFSET_HEADER, first_offset.to_string()),
    ];
    let ours = |key: &[u8]| key.starts_with(HEADER_PREFIX.as_bytes()) || key.starts_with(REPLAY_PREFIX.as_bytes());
    let mut out: Vec<RawHeader> = record.headers.iter().filter(|(k, _)| !ours(k)).cloned().collect();
    let mut add = |k: &str, v: String| out.push((k.as_bytes().to_vec(), Some(v.into_bytes())));
    add(REPLAY_COUNT_HEADER, (letter.replay_count + 1).to_string());
    add(REPLAY_FROM_HEADER, format!("{}:{}:{}", record.topic, record.partition, record.offset));
    for (key, value) in first {
        add(key, value);
    }
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
    /// Where reading the topic starts: the tool's position, the beginning, or the position the ledger recorded.
    pub start: StartFrom,
    /// Draw a progress bar (stdout is a terminal).
    pub progress: bool,
}

/// What one dead letter comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Sent back (or, in a dry run, would be).
    Replay,
    /// Sent by an interrupted run after its last commit (found by [`resume::look_back`]): passed over.
    AlreadyReplayed,
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
    /// Dead letters an interrupted run had sent already, passed over.
    pub resumed: usize,
    /// Dead letters held by the loop guard (`--max-replays`).
    pub held: usize,
    /// Dead letters that cannot be replayed (no original topic, or no value).
    pub unreplayable: usize,
    /// Records after the position when the run stopped, for the next run (`--limit`); 0 for a file.
    pub left: i64,
    /// Whether nothing was sent (`--dry-run`).
    pub dry_run: bool,
}

impl ReplaySummary {
    /// Counts a dead letter in.
    fn count(&mut self, action: Action) {
        self.read += 1;
        self.matched += usize::from(action != Action::Filtered);
        match action {
            Action::Replay => self.replayed += 1,
            Action::AlreadyReplayed => self.resumed += 1,
            Action::LoopGuard => self.held += 1,
            Action::Unreplayable => self.unreplayable += 1,
            Action::Filtered => {}
        }
    }
}

/// What to do with `letter`, `sent` holding the dead letters an interrupted run sent.
fn decide(letter: &DeadLetter, options: &ReplayOptions, sent: &Sent) -> Action {
    if !options.filter.matches(letter) {
        Action::Filtered
    } else if sent.contains(&(letter.partition, letter.offset)) {
        Action::AlreadyReplayed
    } else if letter.original_topic.is_none() || letter.value_omitted {
        Action::Unreplayable
    } else if letter.replay_count >= options.max_replays {
        Action::LoopGuard
    } else {
        Action::Replay
    }
}

/// A dead letter read and decided.
struct Planned {
    /// The record, byte for byte.
    record: RawRecord,
    /// What its headers say.
    letter: DeadLetter,
    /// What to do with it.
    action: Action,
}

/// The source, opened: its records as they are read and, for a topic, where the tool stands on it.
struct Opened {
    /// The records, streamed by a reading thread (100 of them buffered).
    records: mpsc::Receiver<Result<RawRecord, DlqError>>,
    /// The tool's position on the topic (none for a file).
    position: Option<Arc<Position>>,
    /// Partition → the next offset to read; what the position is moved to.
    next: Starts,
    /// Partition → its end when reading began.
    ends: BTreeMap<i32, i64>,
    /// The marks on the topics replayed to, as committed and then as moved by this run.
    marks: Marks,
    /// The original topics looked back on ([`resume::look_back`]) so far.
    looked: HashSet<String>,
    /// The dead letters an interrupted run sent after its last commit, found so far.
    sent: Sent,
}

/// Opens `source`: for a topic, reads the position and starts reading there (or at the beginning); for a
/// file, starts reading it.
async fn open(settings: &Settings, source: &Source, from: StartFrom) -> Result<Opened, DlqError> {
    let (tx, records) = mpsc::channel(BATCH);
    let failed = tx.clone();
    let read = move |result: Result<(), DlqError>| {
        if let Err(error) = result {
            let _ = failed.blocking_send(Err(error));
        }
    };
    match source {
        Source::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || read(drain::read_file(&path, |r| tx.blocking_send(Ok(r)).is_ok())));
            let none = Opened {
                records,
                position: None,
                next: Starts::new(),
                ends: BTreeMap::new(),
                marks: Marks::new(),
                looked: HashSet::new(),
                sent: HashSet::new(),
            };
            Ok(none)
        }
        Source::Topic(topic) => {
            let (settings, topic) = (settings.clone(), topic.clone());
            let (reader, opened) = blocking(move || {
                let reader = TopicReader::open(&settings.kafka, &topic)?;
                let mut position = Position::open(&settings, &topic)?;
                let next = position.start(&reader.watermarks, from)?;
                let ends = reader.watermarks.iter().map(|(p, w)| (*p, w.high)).collect();
                let position = Some(Arc::new(position));
                let (marks, looked, sent) = (Marks::new(), HashSet::new(), Sent::new());
                Ok((reader, Opened { records, position, next, ends, marks, looked, sent }))
            })
            .await?;
            let start = Start::At(opened.next.clone());
            tokio::task::spawn_blocking(move || read(reader.read(&start, |r| tx.blocking_send(Ok(r)).is_ok())));
            Ok(opened)
        }
    }
}

/// Reads and decides the next batch: dead letters up to 100 to send, the end of the source, or the
/// `--limit`; says whether reading is over. The first dead letter naming an original topic has the tool look
/// back on that topic for what an interrupted run sent to it.
async fn next_batch(
    settings: &Settings,
    opened: &mut Opened,
    options: &ReplayOptions,
    summary: &mut ReplaySummary,
) -> Result<(Vec<Planned>, bool), DlqError> {
    let mut batch = Vec::new();
    let mut sends = 0;
    while sends < BATCH {
        let Some(record) = opened.records.recv().await else { return Ok((batch, true)) };
        let record = record?;
        let letter = DeadLetter::parse(&record);
        if let (Some(position), Some(topic)) = (&opened.position, &letter.original_topic)
            && opened.looked.insert(topic.clone())
        {
            let (kafka, position, topic) = (settings.kafka.clone(), Arc::clone(position), topic.clone());
            let look = options.start != StartFrom::Beginning;
            let (topic, marks, sent) =
                blocking(move || resume::look_back(&kafka, &position, &topic, look).map(|(m, s)| (topic, m, s)))
                    .await?;
            if !marks.is_empty() {
                opened.marks.insert(topic, marks);
            }
            opened.sent.extend(sent);
        }
        let action = decide(&letter, options, &opened.sent);
        if action == Action::Replay && options.limit.is_some_and(|limit| summary.replayed >= limit) {
            // Not decided: the position stays before it, the next run starts with it.
            return Ok((batch, true));
        }
        summary.count(action);
        sends += usize::from(action == Action::Replay);
        batch.push(Planned { record, letter, action });
    }
    Ok((batch, false))
}

/// A line about `letter`.
fn line(letter: &DeadLetter, action: Action, dry_run: bool) -> String {
    let what = match action {
        Action::Replay if dry_run => "would replay",
        Action::Replay => "replayed",
        Action::AlreadyReplayed => "passed over (already replayed by an interrupted run)",
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

/// Writes `text` to `out`, above the progress bar when there is one.
fn say(bar: Option<&ProgressBar>, out: &mut (dyn Write + Send), text: &str) -> Result<(), DlqError> {
    match bar {
        Some(bar) => bar.suspend(|| writeln!(out, "{text}")),
        None => writeln!(out, "{text}"),
    }
    .map_err(io_error)
}

/// Replays the dead letters of `source` as `options` say, a batch at a time, writing a line per dead letter
/// acted on to `out`; returns the summary.
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
    // One run at a time sends from a topic and moves its position; a dry run does neither.
    let lock = match source {
        Source::Topic(topic) if !options.dry_run => {
            let (settings, topic) = (settings.clone(), topic.clone());
            Some(blocking(move || Lock::take(&settings, &topic)).await?)
        }
        _ => None,
    };
    let mut opened = open(settings, source, options.start).await?;
    let mut sender = match options.dry_run {
        true => None,
        false => Some(Sender::new(settings, &opened, options.rate, lock.as_ref().map(Lock::watch))?),
    };
    let bar = options.progress.then(|| progress_bar(&opened));
    let mut summary = ReplaySummary { dry_run: options.dry_run, ..ReplaySummary::default() };
    loop {
        let (batch, over) = next_batch(settings, &mut opened, options, &mut summary).await?;
        for Planned { letter, action, .. } in &batch {
            let now = match action {
                Action::Filtered => false,
                Action::Replay => options.dry_run,
                Action::AlreadyReplayed | Action::LoopGuard | Action::Unreplayable => true,
            };
            if now {
                say(bar.as_ref(), out, &line(letter, *action, options.dry_run))?;
            }
        }
        if let Some(sender) = &mut sender {
            sender.send(&batch, &opened.next, &mut opened.marks, bar.as_ref(), out).await?;
        }
        for Planned { record, .. } in &batch {
            opened.next.insert(record.partition, record.offset + 1);
        }
        // Until something matched, nothing moves: a filter that matches nothing leaves the position.
        if let Some(sender) = &sender
            && summary.matched > 0
            && !batch.is_empty()
        {
            sender.commit(&opened.next, &opened.marks).await?;
        }
        if let Some(bar) = &bar {
            bar.inc(batch.len() as u64);
            bar.set_message(format!("replayed {}", summary.replayed));
        }
        if over {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if options.filter.is_set() && summary.matched == 0 {
        let name = match source {
            Source::Topic(topic) => topic.clone(),
            Source::File(path) => path.display().to_string(),
        };
        return Err(DlqError::NoMatch { topic: name, read: summary.read });
    }
    if let Some(sender) = &mut sender
        && summary.matched > 0
    {
        sender.finish(&opened.next, &mut opened.marks).await?;
    }
    summary.left = opened.ends.iter().map(|(p, end)| (end - opened.next.get(p).copied().unwrap_or(*end)).max(0)).sum();
    Ok(summary)
}

/// The progress bar: dead letters read of those after the position (a spinner for a file).
fn progress_bar(opened: &Opened) -> ProgressBar {
    if opened.position.is_none() {
        return ProgressBar::new_spinner();
    }
    let total: i64 = opened.ends.iter().map(|(p, end)| end - opened.next.get(p).copied().unwrap_or(*end)).sum();
    let bar = ProgressBar::new(total.max(0) as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} read  {msg}  {per_sec}  ETA {eta}") {
        bar.set_style(style);
    }
    bar
}

/// An output error.
fn io_error(error: std::io::Error) -> DlqError {
    DlqError::Io { path: "stdout".into(), source: error }
}

/// What sends the replays and moves the position.
struct Sender {
    /// courier's producer configuration: idempotent, `acks=all`, murmur2.
    producer: FutureProducer,
    /// The cluster's settings (for the ends of the topics replayed to).
    kafka: KafkaSettings,
    /// The tool's position on the topic (none for a file).
    position: Option<Arc<Position>>,
    /// At most this many records per second.
    rate: Option<f64>,
    /// When sending began (for the rate).
    started: tokio::time::Instant,
    /// Records sent so far (for the rate).
    sent: usize,
    /// The lock on the topic (none for a file), checked before each send and commit.
    lock: Option<LockWatch>,
}

impl Sender {
    /// A sender for `opened`.
    fn new(settings: &Settings, opened: &Opened, rate: Option<f64>, lock: Option<LockWatch>) -> Result<Self, DlqError> {
        let producer = kafka::producer_config(&settings.kafka, "dlq-replay", settings.producer.publish_timeout_ms)
            .create()
            .map_err(DlqError::kafka("creating the replay producer"))?;
        Ok(Self {
            producer,
            kafka: settings.kafka.clone(),
            position: opened.position.clone(),
            rate,
            started: tokio::time::Instant::now(),
            sent: 0,
            lock,
        })
    }

    /// `Ok` while the lock is held (always for a file).
    fn check(&self) -> Result<(), DlqError> {
        self.lock.as_ref().map_or(Ok(()), LockWatch::check)
    }

    /// Before sending to a topic without marks, marks its partitions' ends and commits the marks with the
    /// position as it stands (`next`), so that a rerun knows where to look back from.
    async fn mark(&self, batch: &[Planned], next: &Starts, marks: &mut Marks) -> Result<(), DlqError> {
        let Some(position) = &self.position else { return Ok(()) };
        self.check()?;
        let new: BTreeSet<String> = batch
            .iter()
            .filter(|p| p.action == Action::Replay)
            .filter_map(|p| p.letter.original_topic.clone())
            .filter(|topic| !marks.contains_key(topic))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        for topic in new {
            let kafka = self.kafka.clone();
            let ends = blocking(move || resume::ends(&kafka, &topic).map(|ends| (topic, ends))).await?;
            marks.insert(ends.0, ends.1);
        }
        let (position, next, marks) = (Arc::clone(position), next.clone(), marks.clone());
        blocking(move || position.commit(&next, &marks)).await
    }

    /// Sends the replays of `batch` (at the rate) and waits until the broker acknowledged every one, moving
    /// the marks past each.
    async fn send(
        &mut self,
        batch: &[Planned],
        next: &Starts,
        marks: &mut Marks,
        bar: Option<&ProgressBar>,
        out: &mut (dyn Write + Send),
    ) -> Result<(), DlqError> {
        self.mark(batch, next, marks).await?;
        let pending = batch.iter().filter(|p| p.action == Action::Replay);
        let mut deliveries = Vec::new();
        for Planned { record, letter, .. } in pending {
            if let Some(rate) = self.rate {
                tokio::time::sleep_until(self.started + Duration::from_secs_f64(self.sent as f64 / rate)).await;
            }
            self.check()?;
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
            let delivery = self.producer.send_result(out_record).map_err(|(e, _)| {
                DlqError::kafka(&format!("queueing the replay of {}:{}", record.partition, record.offset))(e)
            })?;
            deliveries.push((delivery, letter));
            self.sent += 1;
        }
        for (delivery, letter) in deliveries {
            let from = format!("{}:{}:{}", letter.topic, letter.partition, letter.offset);
            let to = letter.original_topic.as_deref().unwrap_or("-");
            let acknowledged = delivery.await.map_err(|_| DlqError::Kafka {
                context: "the replay producer stopped".into(),
                source: rdkafka::error::KafkaError::Canceled,
            })?;
            let delivered = acknowledged.map_err(|(e, _)| DlqError::kafka(&format!("replaying {from} to {to}"))(e))?;
            resume::advance(marks, to, delivered.partition, delivered.offset);
            tracing::info!(%from, to = %format!("{to}:{}:{}", delivered.partition, delivered.offset), "replayed");
            if bar.is_none() {
                say(None, out, &line(letter, Action::Replay, false))?;
            }
        }
        Ok(())
    }

    /// Moves the position to `next`, with `marks`.
    async fn commit(&self, next: &Starts, marks: &Marks) -> Result<(), DlqError> {
        let Some(position) = &self.position else { return Ok(()) };
        self.check()?;
        let (position, next, marks) = (Arc::clone(position), next.clone(), marks.clone());
        blocking(move || position.commit(&next, &marks)).await
    }

    /// At the clean end of a run everything sent is committed: the marks move to the partitions' ends, so
    /// the next run looks back only over what comes after.
    async fn finish(&self, next: &Starts, marks: &mut Marks) -> Result<(), DlqError> {
        if self.position.is_none() {
            return Ok(());
        }
        for (topic, marks) in marks.iter_mut() {
            let (kafka, topic) = (self.kafka.clone(), topic.clone());
            let ends = blocking(move || resume::ends(&kafka, &topic)).await?;
            for (partition, end) in ends {
                let mark = marks.entry(partition).or_insert(end);
                *mark = (*mark).max(end);
            }
        }
        self.commit(next, marks).await
    }
}

/// Writes the summary.
pub fn write_summary(out: &mut dyn Write, s: &ReplaySummary) -> std::io::Result<()> {
    let verb = if s.dry_run { "would replay" } else { "replayed" };
    writeln!(
        out,
        "{verb} {} of {} dead letters read ({} matched the filter); {} already replayed by an interrupted run; {} held by the loop guard; {} unreplayable; {} records left for the next run{}",
        s.replayed,
        s.read,
        s.matched,
        s.resumed,
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
        let extra =
            [("courier.dlq.original.offset", "41"), ("courier.replay.count", "1"), ("courier.replay.from", "old:0:0")];
        let (record, letter) = dead_letter(7, &extra);
        let headers = text(&replayed_headers(&record, &letter));
        let expected = [
            ("traceparent", "00-abc-def-01"),
            ("courier.replay.count", "2"),
            ("courier.replay.from", "orders.created.inventory.dlq:2:7"),
            ("courier.replay.original.topic", "orders.created"),
            ("courier.replay.original.partition", "2"),
            ("courier.replay.original.offset", "41"),
            ("courier.replay.consumer", "notification"),
            ("courier.replay.channel", "sms"),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        assert_eq!(headers, expected);
    }

    #[test]
    fn a_record_replayed_again_keeps_where_it_was_first_read() {
        let extra = [
            ("courier.dlq.original.offset", "900"),
            ("courier.replay.original.topic", "orders.created"),
            ("courier.replay.original.partition", "0"),
            ("courier.replay.original.offset", "41"),
        ];
        let (record, letter) = dead_letter(8, &extra);
        let headers = text(&replayed_headers(&record, &letter));
        let first: Vec<&(String, String)> =
            headers.iter().filter(|(k, _)| k.starts_with("courier.replay.original.")).collect();
        let first: Vec<(&str, &str)> = first.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            first,
            [
                ("courier.replay.original.topic", "orders.created"),
                ("courier.replay.original.partition", "0"),
                ("courier.replay.original.offset", "41"),
            ],
            "the first coordinates, not those of its replayed copy (900)"
        );
    }

    fn options(max_replays: u32, limit: Option<usize>) -> ReplayOptions {
        ReplayOptions {
            filter: Filter::default(),
            max_replays,
            dry_run: false,
            rate: None,
            limit,
            start: StartFrom::Position,
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
        let none = HashSet::new();
        let sent = HashSet::from([(fresh.partition, fresh.offset)]);
        assert_eq!(decide(&fresh, &three, &sent), Action::AlreadyReplayed, "sent by an interrupted run");
        assert_eq!(decide(&fresh, &three, &none), Action::Replay);
        assert_eq!(decide(&twice, &three, &none), Action::Replay);
        assert_eq!(decide(&thrice, &three, &none), Action::LoopGuard);
        assert_eq!(decide(&no_value, &three, &none), Action::Unreplayable);
        let sms_only = ReplayOptions { filter: Filter { channel: Some("email".into()), ..Filter::default() }, ..three };
        assert_eq!(decide(&fresh, &sms_only, &none), Action::Filtered);
    }
}
