//! A dead letter read back from a `<topic>.<group>.dlq` topic: the raw record ([`RawRecord`]) and what its
//! `courier.dlq.*` headers say about it ([`DeadLetter`]).
//!
//! Headers are read by their last occurrence: a record replayed by hand keeps its old `courier.dlq.*` headers,
//! and when it is dead-lettered again the new ones come after them.

use chrono::{DateTime, TimeZone, Utc};
use courier::delivery::dlq::{
    ATTEMPTS_HEADER as ATTEMPTS, CHANNEL_HEADER, CONSUMER_HEADER, ERROR_KIND_HEADER as ERROR_KIND,
    ERROR_MESSAGE_HEADER as ERROR_MESSAGE, GROUP_HEADER as GROUP, HTTP_STATUS_HEADER as HTTP_STATUS,
    LAST_FAILURE_AT_HEADER as LAST_FAILURE_AT, ORIGINAL_OFFSET_HEADER as ORIGINAL_OFFSET,
    ORIGINAL_PARTITION_HEADER as ORIGINAL_PARTITION, ORIGINAL_TOPIC_HEADER as ORIGINAL_TOPIC, VALUE_OMITTED_HEADER,
};
use courier::kafka::headers::RawHeader;
use serde::Serialize;

/// The longest reason shown on a dead letter's line.
const REASON_CHARS: usize = 80;

/// One record as read from a topic, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// The topic it was read from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its timestamp in ms since the epoch, when it has one.
    pub timestamp_ms: Option<i64>,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value (`None`: a null value, e.g. a dead letter published without its value).
    pub value: Option<Vec<u8>>,
    /// Its headers, in order, byte for byte.
    pub headers: Vec<RawHeader>,
}

impl RawRecord {
    /// The value of the last header named `name`, as text, when it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k.as_slice() == name.as_bytes())
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// What a dead letter says about itself: where it is, who gave up on it, why, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The dead-letter topic.
    pub topic: String,
    /// Its partition in the dead-letter topic.
    pub partition: i32,
    /// Its offset in the dead-letter topic.
    pub offset: i64,
    /// When it was dead-lettered (`courier.dlq.last_failure_at`, else the record's timestamp).
    pub time: Option<DateTime<Utc>>,
    /// The consumer that gave up (`courier.dlq.consumer`).
    pub consumer: Option<String>,
    /// The channel that failed, for a consumer with several (`courier.dlq.channel`).
    pub channel: Option<String>,
    /// The consumer group (`courier.dlq.group`).
    pub group: Option<String>,
    /// The kind of error (`courier.dlq.error.kind`): `http_status`, `timeout`, `decode`, …
    pub error_kind: Option<String>,
    /// The last response's HTTP status, when there was one.
    pub http_status: Option<u16>,
    /// Calls made before giving up.
    pub attempts: Option<u32>,
    /// The topic the record was read from.
    pub original_topic: Option<String>,
    /// Its partition there.
    pub original_partition: Option<i32>,
    /// Its offset there.
    pub original_offset: Option<i64>,
    /// The CloudEvent `id` of the value, when the value is a JSON object with one.
    pub event_id: Option<String>,
    /// The record's key as text (lossy for bytes that are not UTF-8).
    pub key: Option<String>,
    /// The error message, on one line, at most 80 characters.
    pub reason: String,
    /// How many times it was replayed already (`courier.replay.count`, 0 when never).
    pub replay_count: u32,
    /// Whether it was published without its value (`courier.dlq.value_omitted`): it cannot be replayed.
    pub value_omitted: bool,
}

impl DeadLetter {
    /// Reads what `record`'s headers and value say.
    pub fn parse(record: &RawRecord) -> Self {
        let h = |name: &str| record.header(name).map(str::to_owned);
        let time = record
            .header(LAST_FAILURE_AT)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| record.timestamp_ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single()));
        Self {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            time,
            consumer: h(CONSUMER_HEADER),
            channel: h(CHANNEL_HEADER),
            group: h(GROUP),
            error_kind: h(ERROR_KIND),
            http_status: record.header(HTTP_STATUS).and_then(|s| s.trim().parse().ok()),
            attempts: record.header(ATTEMPTS).and_then(|s| s.trim().parse().ok()),
            original_topic: h(ORIGINAL_TOPIC),
            original_partition: record.header(ORIGINAL_PARTITION).and_then(|s| s.trim().parse().ok()),
            original_offset: record.header(ORIGINAL_OFFSET).and_then(|s| s.trim().parse().ok()),
            event_id: record.value.as_deref().and_then(event_id),
            key: record.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned()),
            reason: short(record.header(ERROR_MESSAGE).unwrap_or("")),
            replay_count: crate::replay::replay_count(record),
            value_omitted: record.header(VALUE_OMITTED_HEADER).is_some(),
        }
    }
}

/// The CloudEvent `id` of `value`, when it is a JSON object with a string `id`.
fn event_id(value: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Option<serde_json::Value>,
    }
    let id: Id = serde_json::from_slice(value).ok()?;
    match id.id? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    }
}

/// `message` on one line, cut at [`REASON_CHARS`] characters (with `…`).
fn short(message: &str) -> String {
    let line: String = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= REASON_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(REASON_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Test records of dead letters, for the other files' tests.
#[cfg(test)]
pub(crate) use tests::letter_record;

#[cfg(test)]
mod tests {
    use super::*;

    fn header(k: &str, v: &str) -> RawHeader {
        (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
    }

    pub(crate) fn letter_record(offset: i64, headers: &[(&str, &str)], value: &[u8]) -> RawRecord {
        RawRecord {
            topic: "orders.created.inventory.dlq".into(),
            partition: 2,
            offset,
            timestamp_ms: Some(1_700_000_000_000),
            key: Some(b"order-1".to_vec()),
            value: Some(value.to_vec()),
            headers: headers.iter().map(|(k, v)| header(k, v)).collect(),
        }
    }

    #[test]
    fn a_dead_letter_is_read_from_its_headers_and_value() {
        let record = letter_record(
            7,
            &[
                ("traceparent", "00-abc"),
                (ORIGINAL_TOPIC, "orders.created"),
                (ORIGINAL_PARTITION, "2"),
                (ORIGINAL_OFFSET, "41"),
                (GROUP, "inventory"),
                (CONSUMER_HEADER, "inventory"),
                (ERROR_KIND, "http_status"),
                (ERROR_MESSAGE, "HTTP 409 from\nPOST http://api/inventory/reservations: unknown sku"),
                (HTTP_STATUS, "409"),
                (ATTEMPTS, "1"),
                (LAST_FAILURE_AT, "2026-12-03T10:00:00.000Z"),
            ],
            br#"{"specversion":"1.0","id":"ev-1","type":"order.created"}"#,
        );
        let letter = DeadLetter::parse(&record);
        assert_eq!(letter.offset, 7);
        assert_eq!(letter.consumer.as_deref(), Some("inventory"));
        assert_eq!(letter.channel, None);
        assert_eq!(letter.error_kind.as_deref(), Some("http_status"));
        assert_eq!(letter.http_status, Some(409));
        assert_eq!(letter.attempts, Some(1));
        assert_eq!(
            (letter.original_topic.as_deref(), letter.original_partition, letter.original_offset),
            (Some("orders.created"), Some(2), Some(41))
        );
        assert_eq!(letter.event_id.as_deref(), Some("ev-1"));
        assert_eq!(letter.reason, "HTTP 409 from POST http://api/inventory/reservations: unknown sku");
        assert_eq!(letter.time.map(|t| t.to_rfc3339()), Some("2026-12-03T10:00:00+00:00".to_owned()));
        assert_eq!(letter.replay_count, 0);
        assert!(!letter.value_omitted);
    }

    #[test]
    fn the_last_header_wins_and_bad_values_are_absent_not_fatal() {
        let record = letter_record(
            1,
            &[(CONSUMER_HEADER, "payment"), (CONSUMER_HEADER, "inventory"), (HTTP_STATUS, "abc"), (ATTEMPTS, "-1")],
            b"\xff not json",
        );
        let letter = DeadLetter::parse(&record);
        assert_eq!(letter.consumer.as_deref(), Some("inventory"));
        assert_eq!((letter.http_status, letter.attempts, letter.event_id), (None, None, None));
        assert_eq!(letter.time.map(|t| t.timestamp_millis()), Some(1_700_000_000_000), "the record's timestamp");
        let long = "x".repeat(200);
        assert_eq!(short(&long).chars().count(), REASON_CHARS);
    }
}
