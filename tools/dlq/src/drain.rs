//! `courier-dlq drain TOPIC --to FILE`: archives the matching dead letters from the tool's position on to a
//! JSON-lines file (appended to), then moves the position past everything read, for teams that triage
//! offline. `replay --from FILE` sends such a file back ([`read_file`]).
//!
//! One line per dead letter: its coordinates, key and value in base64 (byte for byte), its headers (as text
//! when UTF-8, else base64) and, for people and `jq`, the [`DeadLetter`] summary (ignored when read back).

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use courier::kafka::headers::RawHeader;
use courier::settings::Settings;
use serde::{Deserialize, Serialize};

use crate::blocking;
use crate::error::DlqError;
use crate::filter::Filter;
use crate::letter::{DeadLetter, RawRecord};
use crate::lock::{Lock, LockWatch};
use crate::position::{Position, StartFrom};
use crate::read::{DLQ_SUFFIX, Start, TopicReader};
use crate::resume::{self, Marks};

/// One header in a drained file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    /// The key, when UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The key in base64, when not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    /// The value, when UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value in base64, when not UTF-8 (neither: a null value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
}

/// One dead letter in a drained file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The dead-letter topic.
    pub topic: String,
    /// Its partition there.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// Its timestamp (ms since the epoch).
    pub timestamp_ms: Option<i64>,
    /// The key in base64.
    pub key_base64: Option<String>,
    /// The value in base64 (`null`: no value).
    pub value_base64: Option<String>,
    /// The headers, in order.
    pub headers: Vec<FileHeader>,
    /// What the headers say, for people (not read back).
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub letter: Option<DeadLetter>,
}

impl FileRecord {
    /// The line of `record`.
    pub fn from_record(record: &RawRecord) -> Self {
        let header = |(k, v): &RawHeader| {
            let mut h = FileHeader::default();
            match std::str::from_utf8(k) {
                Ok(text) => h.key = Some(text.to_owned()),
                Err(_) => h.key_base64 = Some(STANDARD.encode(k)),
            }
            if let Some(v) = v {
                match std::str::from_utf8(v) {
                    Ok(text) => h.value = Some(text.to_owned()),
                    Err(_) => h.value_base64 = Some(STANDARD.encode(v)),
                }
            }
            h
        };
        Self {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            key_base64: record.key.as_deref().map(|k| STANDARD.encode(k)),
            value_base64: record.value.as_deref().map(|v| STANDARD.encode(v)),
            headers: record.headers.iter().map(header).collect(),
            letter: Some(DeadLetter::parse(record)),
        }
    }

    /// The record again, byte for byte.
    pub fn to_record(&self) -> Result<RawRecord, String> {
        let decode = |what: &str, b64: &str| STANDARD.decode(b64).map_err(|e| format!("{what}: bad base64: {e}"));
        let mut headers = Vec::with_capacity(self.headers.len());
        for h in &self.headers {
            let key = match (&h.key, &h.key_base64) {
                (Some(k), _) => k.clone().into_bytes(),
                (None, Some(b64)) => decode("header key", b64)?,
                (None, None) => return Err("a header without key".into()),
            };
            let value = match (&h.value, &h.value_base64) {
                (Some(v), _) => Some(v.clone().into_bytes()),
                (None, Some(b64)) => Some(decode("header value", b64)?),
                (None, None) => None,
            };
            headers.push((key, value));
        }
        Ok(RawRecord {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            key: self.key_base64.as_deref().map(|k| decode("key", k)).transpose()?,
            value: self.value_base64.as_deref().map(|v| decode("value", v)).transpose()?,
            headers,
        })
    }
}

/// Reads a drained file back (blocking), handing each record to `visit` in file order; `visit` returns
/// `false` to stop.
pub fn read_file(path: &Path, mut visit: impl FnMut(RawRecord) -> bool) -> Result<(), DlqError> {
    let io = |source| DlqError::Io { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| DlqError::BadFile { path: path.to_owned(), line: index + 1, reason };
        let parsed: FileRecord = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        if !visit(parsed.to_record().map_err(bad)?) {
            break;
        }
    }
    Ok(())
}

/// What a drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrainSummary {
    /// Dead letters read (from the position on).
    pub read: usize,
    /// Dead letters written to the file.
    pub drained: usize,
    /// Dead letters passed over because the file holds them already (a drain interrupted after writing).
    pub in_file: usize,
    /// Dead letters passed over because an interrupted replay sent them.
    pub replayed: usize,
}

/// Dead letters written between two commits of the position.
const BATCH: usize = 1000;

/// Appends the dead letters of `topic` that pass `filter`, from where `from` says (the tool's position, the
/// beginning, the recorded position) to the end, to `to`. Every `BATCH` dead letters, and at the end, the
/// file is synced and then the position moved past what was read. A rerun after an interruption passes over
/// what the file holds already and what an interrupted replay sent ([`resume::look_back`]). The topic's lock
/// ([`Lock`]) is held throughout: a replay or drain of it running already makes this one refuse to start.
pub async fn drain(
    settings: &Settings,
    topic: &str,
    filter: &Filter,
    from: StartFrom,
    to: &Path,
) -> Result<DrainSummary, DlqError> {
    if !topic.ends_with(DLQ_SUFFIX) {
        return Err(DlqError::NotDeadLetterTopic(topic.to_owned()));
    }
    let (owned_settings, owned_topic) = (settings.clone(), topic.to_owned());
    let lock = blocking(move || Lock::take(&owned_settings, &owned_topic)).await?;
    let watch = lock.watch();
    let (settings, topic, filter, to) = (settings.clone(), topic.to_owned(), filter.clone(), to.to_owned());
    let summary = blocking(move || drain_locked(&settings, &topic, &filter, from, &to, &watch)).await;
    drop(lock);
    summary
}

/// [`drain`] once the lock is held (blocking), checking `lock` before each commit.
fn drain_locked(
    settings: &Settings,
    topic: &str,
    filter: &Filter,
    from: StartFrom,
    to: &PathBuf,
    lock: &LockWatch,
) -> Result<DrainSummary, DlqError> {
    let kafka = &settings.kafka;
    let from_beginning = from == StartFrom::Beginning;
    let reader = TopicReader::open(kafka, topic)?;
    let mut position = Position::open(settings, topic)?;
    let start = Start::At(position.start(&reader.watermarks, from)?);
    // What an interrupted replay sent, per original topic the dead letters name ([`resume::look_back`]).
    let mut looked = HashSet::new();
    let mut sent = HashSet::new();
    let in_file = drained_already(to, topic)?;
    let io = |source| DlqError::Io { path: to.clone(), source };
    let mut file: Option<File> = None;
    let mut next = BTreeMap::new();
    let mut summary = DrainSummary::default();
    let mut failure = None;
    let write = |record: &RawRecord, file: &mut Option<File>| -> Result<(), DlqError> {
        let file = match file {
            Some(file) => file,
            None => file.insert(OpenOptions::new().create(true).append(true).open(to).map_err(io)?),
        };
        let mut text = serde_json::to_string(&FileRecord::from_record(record)).map_err(|e| io(e.into()))?;
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io)
    };
    let sync_and_commit = |file: &Option<File>, next: &BTreeMap<i32, i64>| -> Result<(), DlqError> {
        match file {
            Some(file) => file.sync_all().map_err(io)?,
            None => return Ok(()),
        }
        lock.check()?;
        position.commit(next, &Marks::new())
    };
    reader.read(&start, |record| {
        summary.read += 1;
        let at = (record.partition, record.offset);
        let letter = DeadLetter::parse(&record);
        let looked_back = match &letter.original_topic {
            Some(original) if !from_beginning && looked.insert(original.clone()) => {
                resume::look_back(kafka, &position, original, true).map(|(_, found)| sent.extend(found))
            }
            _ => Ok(()),
        };
        let step = looked_back.and_then(|()| {
            if in_file.contains(&at) {
                summary.in_file += 1;
                Ok(())
            } else if sent.contains(&at) {
                summary.replayed += 1;
                Ok(())
            } else if filter.matches(&letter) {
                summary.drained += 1;
                write(&record, &mut file)
            } else {
                Ok(())
            }
        });
        next.insert(record.partition, record.offset + 1);
        let step = step.and_then(|()| match summary.read % BATCH {
            0 => sync_and_commit(&file, &next),
            _ => Ok(()),
        });
        match step {
            Ok(()) => true,
            Err(error) => {
                failure = Some(error);
                false
            }
        }
    })?;
    if let Some(error) = failure {
        return Err(error);
    }
    if summary.drained == 0 && summary.in_file == 0 && filter.is_set() {
        return Err(DlqError::NoMatch { topic: topic.to_owned(), read: summary.read });
    }
    // Nothing written (an empty topic, or all in the file already): the position still moves past it.
    if file.is_none() && summary.read > 0 {
        lock.check()?;
        position.commit(&next, &Marks::new())?;
    }
    sync_and_commit(&file, &next)?;
    Ok(summary)
}

/// The dead letters of `topic` (partition, offset) that the file `path` holds already (none when it does not
/// exist yet).
fn drained_already(path: &Path, topic: &str) -> Result<HashSet<(i32, i64)>, DlqError> {
    let mut held = HashSet::new();
    if !path.exists() {
        return Ok(held);
    }
    read_file(path, |record| {
        if record.topic == topic {
            held.insert((record.partition, record.offset));
        }
        true
    })?;
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::letter;

    #[test]
    fn a_drained_line_gives_the_record_back_byte_for_byte() {
        let mut record = letter::letter_record(5, &[("courier.dlq.consumer", "inventory")], b"\xff\x00 not json");
        record.headers.push((vec![0xfe, b'k'], Some(vec![0x80])));
        record.headers.push((b"null".to_vec(), None));
        let line = serde_json::to_string(&FileRecord::from_record(&record)).expect("serializes");
        let back: FileRecord = serde_json::from_str(&line).expect("parses");
        assert_eq!(back.to_record(), Ok(record));
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(parsed["letter"]["consumer"], "inventory", "the summary is there for people");
    }

    #[test]
    fn a_bad_file_names_its_line() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("letters.jsonl");
        std::fs::write(&path, "\n{\"not\":\"a record\"}\n").expect("written");
        let error = read_file(&path, |_| true).expect_err("refused");
        assert!(matches!(error, DlqError::BadFile { line: 2, .. }), "{error}");
    }
}
