//! `courier-dlq list`: every dead-letter topic with its record count, its oldest and newest dead letter, and
//! how many dead letters each consumer, channel and error kind has.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use courier::settings::KafkaSettings;
use serde::Serialize;

use crate::error::DlqError;
use crate::letter::DeadLetter;
use crate::read::{self, Start, TopicReader};

/// One dead-letter topic, summed up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TopicSummary {
    /// The dead-letter topic.
    pub topic: String,
    /// Dead letters it holds.
    pub records: usize,
    /// The oldest dead letter's time.
    pub oldest: Option<DateTime<Utc>>,
    /// The newest dead letter's time.
    pub newest: Option<DateTime<Utc>>,
    /// Dead letters per consumer (`-` when the header is missing).
    pub by_consumer: BTreeMap<String, usize>,
    /// Dead letters per channel, for those that have one.
    pub by_channel: BTreeMap<String, usize>,
    /// Dead letters per error kind (`-` when the header is missing).
    pub by_kind: BTreeMap<String, usize>,
}

impl TopicSummary {
    /// Counts `letter` in.
    fn add(&mut self, letter: &DeadLetter) {
        self.records += 1;
        if let Some(time) = letter.time {
            self.oldest = Some(self.oldest.map_or(time, |o| o.min(time)));
            self.newest = Some(self.newest.map_or(time, |n| n.max(time)));
        }
        *self.by_consumer.entry(letter.consumer.clone().unwrap_or_else(|| "-".into())).or_default() += 1;
        if let Some(channel) = &letter.channel {
            *self.by_channel.entry(channel.clone()).or_default() += 1;
        }
        *self.by_kind.entry(letter.error_kind.clone().unwrap_or_else(|| "-".into())).or_default() += 1;
    }
}

/// Reads every dead-letter topic of the cluster whole and sums each up (blocking).
pub fn list(kafka: &KafkaSettings) -> Result<Vec<TopicSummary>, DlqError> {
    let mut summaries = Vec::new();
    for topic in read::dead_letter_topics(kafka)? {
        let reader = TopicReader::open(kafka, &topic)?;
        let mut summary = TopicSummary { topic: topic.clone(), ..TopicSummary::default() };
        reader.read(&Start::Beginning, |record| {
            summary.add(&DeadLetter::parse(&record));
            true
        })?;
        summaries.push(summary);
    }
    Ok(summaries)
}

/// `name=count` pairs, or `-`.
fn counts(map: &BTreeMap<String, usize>) -> String {
    if map.is_empty() {
        return "-".into();
    }
    map.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// A time as RFC 3339 to the second, or `-`.
pub fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".into(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Writes `summaries` as a table.
pub fn write_table(out: &mut dyn Write, summaries: &[TopicSummary]) -> std::io::Result<()> {
    if summaries.is_empty() {
        return writeln!(out, "no dead-letter topic (*.dlq) in the cluster");
    }
    let width = summaries.iter().map(|s| s.topic.len()).max().unwrap_or(5).max(5);
    writeln!(
        out,
        "{:width$}  {:>7}  {:20}  {:20}  {:24}  {:12}  KINDS",
        "TOPIC", "RECORDS", "OLDEST", "NEWEST", "CONSUMERS", "CHANNELS"
    )?;
    for s in summaries {
        writeln!(
            out,
            "{:width$}  {:>7}  {:20}  {:20}  {:24}  {:12}  {}",
            s.topic,
            s.records,
            time(s.oldest),
            time(s.newest),
            counts(&s.by_consumer),
            counts(&s.by_channel),
            counts(&s.by_kind)
        )?;
    }
    Ok(())
}

/// Writes `summaries` as one JSON array.
pub fn write_json(out: &mut dyn Write, summaries: &[TopicSummary]) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, summaries)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::letter;

    #[test]
    fn a_summary_counts_per_consumer_channel_and_kind() {
        let a = DeadLetter::parse(&letter::letter_record(
            0,
            &[
                ("courier.dlq.consumer", "notification"),
                ("courier.dlq.channel", "sms"),
                ("courier.dlq.error.kind", "timeout"),
            ],
            b"{}",
        ));
        let b = DeadLetter::parse(&letter::letter_record(1, &[("courier.dlq.consumer", "inventory")], b"{}"));
        let mut summary = TopicSummary::default();
        summary.add(&a);
        summary.add(&b);
        assert_eq!(summary.records, 2);
        assert_eq!(counts(&summary.by_consumer), "inventory=1,notification=1");
        assert_eq!(counts(&summary.by_channel), "sms=1");
        assert_eq!(counts(&summary.by_kind), "-=1,timeout=1");
        assert!(summary.oldest.is_some() && summary.oldest <= summary.newest);
        let mut table = Vec::new();
        write_table(&mut table, &[summary]).expect("written");
        let table = String::from_utf8(table).expect("utf-8");
        assert!(table.lines().nth(1).is_some_and(|l| l.contains("inventory=1,notification=1")), "{table}");
    }
}
