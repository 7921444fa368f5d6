//! Which dead letters a command acts on: `--kind`, `--status`, `--consumer`, `--channel`, `--since`,
//! `--until`, `--event-id`, `--offset A..B` (all given must hold).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use clap::Args;

use crate::letter::DeadLetter;

/// The filters every command that reads dead letters takes.
#[derive(Debug, Clone, Default, Args)]
pub struct Filter {
    /// Only this error kind (http_status, timeout, connect, transport, decode, unknown_type, unknown_version,
    /// no_reservation); repeat for several.
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    /// Only this HTTP status (e.g. 409); repeat for several.
    #[arg(long = "status", value_name = "STATUS")]
    pub statuses: Vec<u16>,
    /// Only dead letters of this consumer (courier.dlq.consumer).
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<String>,
    /// Only dead letters of this channel (courier.dlq.channel: email, sms).
    #[arg(long, value_name = "NAME")]
    pub channel: Option<String>,
    /// Only dead letters from this time on (RFC 3339, e.g. 2026-12-03T10:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<DateTime<Utc>>,
    /// Only dead letters before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<DateTime<Utc>>,
    /// Only the dead letter(s) of this event (the CloudEvent id).
    #[arg(long, value_name = "ID")]
    pub event_id: Option<String>,
    /// Only dead-letter offsets in this range, inclusive: A..B, A.., ..B or N.
    #[arg(long = "offset", value_name = "A..B")]
    pub offsets: Option<OffsetRange>,
}

impl Filter {
    /// Whether any filter is set.
    pub fn is_set(&self) -> bool {
        !self.kinds.is_empty()
            || !self.statuses.is_empty()
            || self.consumer.is_some()
            || self.channel.is_some()
            || self.since.is_some()
            || self.until.is_some()
            || self.event_id.is_some()
            || self.offsets.is_some()
    }

    /// Whether `letter` passes every filter set.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        let kind_ok = self.kinds.is_empty() || letter.error_kind.as_ref().is_some_and(|k| self.kinds.contains(k));
        let status_ok = self.statuses.is_empty() || letter.http_status.is_some_and(|s| self.statuses.contains(&s));
        let same =
            |wanted: &Option<String>, got: &Option<String>| wanted.as_ref().is_none_or(|w| got.as_ref() == Some(w));
        let since_ok = self.since.is_none_or(|since| letter.time.is_some_and(|t| t >= since));
        let until_ok = self.until.is_none_or(|until| letter.time.is_some_and(|t| t < until));
        let offset_ok = self.offsets.is_none_or(|r| r.contains(letter.offset));
        kind_ok
            && status_ok
            && same(&self.consumer, &letter.consumer)
            && same(&self.channel, &letter.channel)
            && same(&self.event_id, &letter.event_id)
            && since_ok
            && until_ok
            && offset_ok
    }
}

/// An inclusive range of offsets; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRange {
    /// The first offset, when bounded.
    pub first: Option<i64>,
    /// The last offset, when bounded.
    pub last: Option<i64>,
}

impl OffsetRange {
    /// Whether `offset` is in the range.
    pub fn contains(&self, offset: i64) -> bool {
        self.first.is_none_or(|f| offset >= f) && self.last.is_none_or(|l| offset <= l)
    }
}

impl FromStr for OffsetRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let number = |s: &str| -> Result<Option<i64>, String> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            match s.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(Some(n)),
                _ => Err(format!("`{s}` is not an offset (a whole number from 0)")),
            }
        };
        let range = match text.split_once("..") {
            Some((first, last)) => OffsetRange { first: number(first)?, last: number(last)? },
            None => {
                let n = number(text)?.ok_or_else(|| "an offset or a range A..B is needed".to_owned())?;
                OffsetRange { first: Some(n), last: Some(n) }
            }
        };
        if let (Some(first), Some(last)) = (range.first, range.last)
            && first > last
        {
            return Err(format!("the range {text} is empty ({first} is after {last})"));
        }
        Ok(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::letter::{self, DeadLetter};

    fn letter(headers: &[(&str, &str)], offset: i64) -> DeadLetter {
        DeadLetter::parse(&letter::letter_record(offset, headers, br#"{"id":"ev-9"}"#))
    }

    #[test]
    fn offset_ranges_parse_and_bad_ones_are_refused() {
        assert_eq!("3..7".parse(), Ok(OffsetRange { first: Some(3), last: Some(7) }));
        assert_eq!("3..".parse(), Ok(OffsetRange { first: Some(3), last: None }));
        assert_eq!("..7".parse(), Ok(OffsetRange { first: None, last: Some(7) }));
        assert_eq!("5".parse(), Ok(OffsetRange { first: Some(5), last: Some(5) }));
        assert!("7..3".parse::<OffsetRange>().is_err());
        assert!("x..3".parse::<OffsetRange>().is_err());
        assert!("-1".parse::<OffsetRange>().is_err());
        assert!("".parse::<OffsetRange>().is_err());
        assert!(OffsetRange { first: Some(3), last: Some(7) }.contains(7));
        assert!(!OffsetRange { first: Some(3), last: Some(7) }.contains(8));
    }

    #[test]
    fn every_filter_given_must_hold() {
        let inventory = letter(
            &[
                ("courier.dlq.consumer", "inventory"),
                ("courier.dlq.error.kind", "http_status"),
                ("courier.dlq.http.status", "409"),
                ("courier.dlq.last_failure_at", "2026-12-03T10:00:00Z"),
            ],
            4,
        );
        let sms = letter(
            &[
                ("courier.dlq.consumer", "notification"),
                ("courier.dlq.channel", "sms"),
                ("courier.dlq.error.kind", "timeout"),
            ],
            9,
        );
        let none = Filter::default();
        assert!(!none.is_set() && none.matches(&inventory) && none.matches(&sms));
        let by_status = Filter { statuses: vec![409, 422], ..Filter::default() };
        assert!(by_status.matches(&inventory) && !by_status.matches(&sms));
        let by_channel = Filter { channel: Some("sms".into()), ..Filter::default() };
        assert!(!by_channel.matches(&inventory) && by_channel.matches(&sms));
        let by_kind =
            Filter { kinds: vec!["timeout".into()], consumer: Some("notification".into()), ..Filter::default() };
        assert!(!by_kind.matches(&inventory) && by_kind.matches(&sms));
        let time = |t: &str| Some(t.parse::<DateTime<Utc>>().expect("time"));
        let after = Filter { since: time("2026-12-03T10:00:01Z"), ..Filter::default() };
        assert!(!after.matches(&inventory));
        let window =
            Filter { since: time("2026-12-03T09:00:00Z"), until: time("2026-12-03T10:00:01Z"), ..Filter::default() };
        assert!(window.matches(&inventory));
        let by_offset = Filter { offsets: Some("5..".parse().expect("range")), ..Filter::default() };
        assert!(!by_offset.matches(&inventory) && by_offset.matches(&sms));
        let by_event = Filter { event_id: Some("ev-9".into()), ..Filter::default() };
        assert!(by_event.matches(&inventory));
        assert!(!Filter { event_id: Some("ev-8".into()), ..Filter::default() }.matches(&inventory));
    }
}
