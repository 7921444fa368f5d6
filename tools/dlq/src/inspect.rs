//! `courier-dlq inspect TOPIC`: one line per dead letter (table or JSON lines), filtered; `--show` prints one
//! record whole: its headers and its value, pretty-printed when it is JSON, in hex when it is not.

use std::io::Write;

use courier::settings::KafkaSettings;
use serde::Serialize;

use crate::error::DlqError;
use crate::filter::Filter;
use crate::letter::{DeadLetter, RawRecord};
use crate::list::time;
use crate::read::{Start, TopicReader};

/// A `--show` position: `partition:offset`, or an offset alone (looked for in every partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// The partition, when given.
    pub partition: Option<i32>,
    /// The offset.
    pub offset: i64,
}

impl std::str::FromStr for At {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let number = |s: &str, what: &str| {
            s.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| format!("`{s}` is not a {what}"))
        };
        match text.split_once(':') {
            Some((p, o)) => {
                let partition = i32::try_from(number(p, "partition")?).map_err(|_| format!("`{p}` is too large"))?;
                Ok(At { partition: Some(partition), offset: number(o, "offset")? })
            }
            None => Ok(At { partition: None, offset: number(text, "offset")? }),
        }
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.partition {
            Some(p) => write!(f, "{p}:{}", self.offset),
            None => write!(f, "offset {} (any partition)", self.offset),
        }
    }
}

/// The dead letters of `topic` that pass `filter`, in partition and offset order, and how many were read
/// (blocking). A filter that matches nothing is [`DlqError::NoMatch`].
pub fn letters(kafka: &KafkaSettings, topic: &str, filter: &Filter) -> Result<Vec<DeadLetter>, DlqError> {
    let reader = TopicReader::open(kafka, topic)?;
    let mut read = 0;
    let mut letters = Vec::new();
    reader.read(&Start::Beginning, |record| {
        read += 1;
        let letter = DeadLetter::parse(&record);
        if filter.matches(&letter) {
            letters.push(letter);
        }
        true
    })?;
    if letters.is_empty() && filter.is_set() {
        return Err(DlqError::NoMatch { topic: topic.to_owned(), read });
    }
    letters.sort_by_key(|l| (l.partition, l.offset));
    Ok(letters)
}

/// `value` or `-`.
fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

/// Writes `letters` one a line, as a table.
pub fn write_table(out: &mut dyn Write, letters: &[DeadLetter]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>9}  {:20}  {:20}  {:13}  {:>6}  {:>8}  {:>7}  {:36}  {:36}  REASON",
        "P:OFFSET", "TIME", "CONSUMER/CHANNEL", "KIND", "STATUS", "ATTEMPTS", "REPLAYS", "ORIGINAL", "EVENT ID"
    )?;
    for l in letters {
        let who = match (&l.consumer, &l.channel) {
            (Some(c), Some(ch)) => format!("{c}/{ch}"),
            (consumer, _) => or_dash(consumer.as_deref()),
        };
        let original = match (&l.original_topic, l.original_partition, l.original_offset) {
            (Some(t), Some(p), Some(o)) => format!("{t}:{p}:{o}"),
            (topic, _, _) => or_dash(topic.as_deref()),
        };
        writeln!(
            out,
            "{:>9}  {:20}  {:20}  {:13}  {:>6}  {:>8}  {:>7}  {:36}  {:36}  {}",
            format!("{}:{}", l.partition, l.offset),
            time(l.time),
            who,
            or_dash(l.error_kind.as_deref()),
            or_dash(l.http_status),
            or_dash(l.attempts),
            l.replay_count,
            original,
            or_dash(l.event_id.as_deref()),
            l.reason
        )?;
    }
    Ok(())
}

/// Writes `letters` as JSON lines (one object per dead letter, for `jq`).
pub fn write_json_lines(out: &mut dyn Write, letters: &[DeadLetter]) -> std::io::Result<()> {
    for letter in letters {
        serde_json::to_writer(&mut *out, letter)?;
        writeln!(out)?;
    }
    Ok(())
}

/// The record of `topic` at `at` (blocking).
pub fn show(kafka: &KafkaSettings, topic: &str, at: At) -> Result<RawRecord, DlqError> {
    let reader = TopicReader::open(kafka, topic)?;
    let partitions: Vec<i32> = match at.partition {
        Some(p) => vec![p],
        None => reader.watermarks.keys().copied().collect(),
    };
    let mut found = Vec::new();
    for partition in partitions {
        if let Some(record) = reader.fetch_one(partition, at.offset)? {
            found.push(record);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(DlqError::NoRecord { topic: topic.to_owned(), at: at.to_string() }),
        n => Err(DlqError::NoRecord {
            topic: topic.to_owned(),
            at: format!("{at} alone: {n} partitions hold that offset, give partition:offset"),
        }),
    }
}

/// A header or key shown as text, or as hex when it is not UTF-8.
fn text_or_hex(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => format!("0x{}", hex(bytes)),
    }
}

/// `bytes` in lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `--show` prints, for `--format json`.
#[derive(Serialize)]
struct Shown<'a> {
    /// The dead letter's summary.
    letter: &'a DeadLetter,
    /// Headers, as text (hex when not UTF-8).
    headers: Vec<(String, Option<String>)>,
    /// The value: JSON when it is JSON, else text or hex.
    value: serde_json::Value,
}

/// Writes `record` whole: its coordinates, key, headers and value (pretty JSON, text or hex).
pub fn write_record(out: &mut dyn Write, record: &RawRecord, json: bool) -> std::io::Result<()> {
    let letter = DeadLetter::parse(record);
    let value_json = record.value.as_deref().and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok());
    if json {
        let shown = Shown {
            letter: &letter,
            headers: record.headers.iter().map(|(k, v)| (text_or_hex(k), v.as_deref().map(text_or_hex))).collect(),
            value: match (&value_json, &record.value) {
                (Some(v), _) => v.clone(),
                (None, Some(v)) => serde_json::Value::String(text_or_hex(v)),
                (None, None) => serde_json::Value::Null,
            },
        };
        serde_json::to_writer_pretty(&mut *out, &shown)?;
        return writeln!(out);
    }
    writeln!(out, "{} partition {} offset {}", record.topic, record.partition, record.offset)?;
    writeln!(out, "time: {}", time(letter.time))?;
    writeln!(out, "key: {}", record.key.as_deref().map_or_else(|| "(none)".into(), text_or_hex))?;
    writeln!(out, "headers:")?;
    for (k, v) in &record.headers {
        writeln!(out, "  {}: {}", text_or_hex(k), v.as_deref().map_or_else(|| "(null)".into(), text_or_hex))?;
    }
    match (&value_json, &record.value) {
        (Some(v), _) => {
            writeln!(out, "value (JSON):")?;
            writeln!(out, "{}", serde_json::to_string_pretty(v).unwrap_or_default())?;
        }
        (None, Some(v)) => {
            writeln!(out, "value ({} bytes, not JSON, hex):", v.len())?;
            for chunk in v.chunks(32) {
                writeln!(out, "  {}", hex(chunk))?;
            }
        }
        (None, None) => writeln!(out, "value: (none)")?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::letter;

    #[test]
    fn positions_parse() {
        assert_eq!("2:17".parse(), Ok(At { partition: Some(2), offset: 17 }));
        assert_eq!("17".parse(), Ok(At { partition: None, offset: 17 }));
        assert!("a:1".parse::<At>().is_err() && "1:".parse::<At>().is_err() && "-3".parse::<At>().is_err());
    }

    #[test]
    fn a_record_is_shown_as_pretty_json_or_hex() {
        let mut record = letter::letter_record(3, &[("courier.dlq.consumer", "inventory")], br#"{"id":"ev-1"}"#);
        let mut out = Vec::new();
        write_record(&mut out, &record, false).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("value (JSON):\n{\n  \"id\": \"ev-1\"\n}"), "{text}");
        assert!(text.contains("  courier.dlq.consumer: inventory"), "{text}");
        record.value = Some(vec![0xff, 0x00, 0x41]);
        let mut out = Vec::new();
        write_record(&mut out, &record, false).expect("written");
        assert!(String::from_utf8(out).expect("utf-8").contains("not JSON, hex):\n  ff0041"));
        let mut out = Vec::new();
        write_record(&mut out, &record, true).expect("written");
        let parsed: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(parsed["value"], "0xff0041");
        assert_eq!(parsed["letter"]["consumer"], "inventory");
    }
}
