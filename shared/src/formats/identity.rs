//! The identity of a record that is not a CloudEvent, from which its idempotency key is made
//! (`<consumer>:<identity>`): the same on every redelivery, after a restart or a rebalance.
//!
//! * [`IdFrom::Offset`] (the default): `<topic>-<partition>-<offset>`. Stable while the record stays where it
//!   is; a record that `courier-dlq replay` sends back carries its first coordinates
//!   (`courier.replay.original.*`), and a dead letter produced back by hand its `courier.dlq.original.*`, so
//!   either keeps its identity. A record written again by its application is a new record, with a new key.
//! * [`IdFrom::Key`]: the record key; [`IdFrom::Value`]: a member of the JSON value (`value.order_id`,
//!   `value.order.id`, `value.items.0.sku`). Stable wherever the record is, and the same for two records that
//!   hold the same key or member: the API takes only the first.
//!
//! An identity that cannot travel in a header (not visible ASCII, or over 200 bytes) is replaced by
//! `sha256:<32 hex digits of its SHA-256>`.

use std::str::FromStr;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{RecordRef, Undecodable};
use crate::delivery::dlq::{
    ORIGINAL_OFFSET_HEADER, ORIGINAL_PARTITION_HEADER, ORIGINAL_TOPIC_HEADER, REPLAY_ORIGINAL_OFFSET_HEADER,
    REPLAY_ORIGINAL_PARTITION_HEADER, REPLAY_ORIGINAL_TOPIC_HEADER,
};
use crate::events::validation;
use crate::kafka::headers::{self, RawHeader};

/// What identifies a record that is not a CloudEvent (`id_from`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum IdFrom {
    /// Its coordinates, `<topic>-<partition>-<offset>` (`id_from` empty, the default, or `offset`).
    #[default]
    Offset,
    /// Its key (`id_from = "key"`).
    Key,
    /// A member of its JSON value, by path (`id_from = "value.order_id"`): object members by name, array
    /// elements by index.
    Value(Vec<String>),
}

impl FromStr for IdFrom {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" | "offset" => Ok(IdFrom::Offset),
            "key" => Ok(IdFrom::Key),
            path => match path.strip_prefix("value.") {
                Some(members) if members.split('.').all(|m| !m.is_empty()) => {
                    Ok(IdFrom::Value(members.split('.').map(str::to_owned).collect()))
                }
                _ => Err(format!(
                    "{path:?} is not an identity: \"offset\" (the default), \"key\", or \"value.<member>[.<member>…]\""
                )),
            },
        }
    }
}

impl TryFrom<String> for IdFrom {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl IdFrom {
    /// The identity of `record`, whose value is `json` when it is JSON; why it has none (no key, no such
    /// member) as a permanent failure.
    pub(super) fn identity(&self, record: RecordRef<'_>, json: Option<&RawValue>) -> Result<String, Undecodable> {
        let id = match self {
            IdFrom::Offset => return Ok(coordinates(record)),
            IdFrom::Key => {
                let key = record.key.filter(|k| !k.is_empty()).ok_or_else(|| missing("the record has no key"))?;
                String::from_utf8_lossy(key).into_owned()
            }
            IdFrom::Value(path) => {
                let json = json.ok_or_else(|| missing("the record's value is not JSON"))?;
                member(json, path)
                    .ok_or_else(|| missing(&format!("its value has no string or number at value.{}", path.join("."))))?
            }
        };
        Ok(header_safe(id))
    }
}

/// A record without the identity its rule asks for.
fn missing(why: &str) -> Undecodable {
    Undecodable::Permanent { kind: "decode", reason: format!("id_from: {why}") }
}

/// `<topic>-<partition>-<offset>` of the record where it was first read ([`first_read_at`]).
pub fn coordinates(record: RecordRef<'_>) -> String {
    let (topic, partition, offset) = first_read_at(record.headers, record.topic, record.partition, record.offset);
    format!("{topic}-{partition}-{offset}")
}

/// Where a record with `headers`, read at `topic`/`partition`@`offset`, was first read: its replay headers'
/// coordinates (`courier.replay.original.*`), else those of the dead letter it was produced back from
/// (`courier.dlq.original.*`), else its own. `courier-dlq replay` gives a replayed record these as its
/// `courier.replay.original.*` headers.
pub fn first_read_at<'h>(headers: &'h [RawHeader], topic: &'h str, partition: i32, offset: i64) -> (&'h str, i32, i64) {
    let original = |names: [&str; 3]| {
        Some((
            headers::text(headers, names[0])?,
            headers::text(headers, names[1])?.trim().parse::<i32>().ok()?,
            headers::text(headers, names[2])?.trim().parse::<i64>().ok()?,
        ))
    };
    original([REPLAY_ORIGINAL_TOPIC_HEADER, REPLAY_ORIGINAL_PARTITION_HEADER, REPLAY_ORIGINAL_OFFSET_HEADER])
        .or_else(|| original([ORIGINAL_TOPIC_HEADER, ORIGINAL_PARTITION_HEADER, ORIGINAL_OFFSET_HEADER]))
        .unwrap_or((topic, partition, offset))
}

/// The string or number at `path` in `json`.
fn member(json: &RawValue, path: &[String]) -> Option<String> {
    let mut value: serde_json::Value = serde_json::from_str(json.get()).ok()?;
    for name in path {
        value = match value {
            serde_json::Value::Object(mut members) => members.remove(name)?,
            serde_json::Value::Array(mut elements) => {
                let index: usize = name.parse().ok()?;
                (index < elements.len()).then(|| elements.swap_remove(index))?
            }
            _ => return None,
        };
    }
    match value {
        serde_json::Value::String(text) if !text.is_empty() => Some(text),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// `id` when it can travel in an `Idempotency-Key` header, else `sha256:<32 hex digits of its digest>`.
fn header_safe(id: String) -> String {
    if validation::attribute("id", &id).is_ok() {
        return id;
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(headers: &'a [RawHeader], key: Option<&'a [u8]>) -> RecordRef<'a> {
        RecordRef { topic: "user-events", partition: 2, offset: 17, key, value: None, headers }
    }

    fn raw(json: &str) -> Box<RawValue> {
        serde_json::from_str(json).expect("JSON")
    }

    fn header(key: &str, value: &str) -> RawHeader {
        (key.as_bytes().to_vec(), Some(value.as_bytes().to_vec()))
    }

    #[test]
    fn id_from_is_offset_key_or_a_path_of_the_value() {
        assert_eq!("".parse(), Ok(IdFrom::Offset));
        assert_eq!("offset".parse(), Ok(IdFrom::Offset));
        assert_eq!("key".parse(), Ok(IdFrom::Key));
        assert_eq!("value.order.id".parse(), Ok(IdFrom::Value(vec!["order".into(), "id".into()])));
        for bad in ["value", "value.", "value..id", "headers.x", "order_id"] {
            assert!(bad.parse::<IdFrom>().is_err(), "{bad}");
        }
    }

    #[test]
    fn by_default_a_record_is_identified_by_its_coordinates() {
        assert_eq!(IdFrom::Offset.identity(record(&[], None), None), Ok("user-events-2-17".to_owned()));
    }

    #[test]
    fn a_replayed_record_keeps_the_coordinates_it_was_first_read_at() {
        let dead_letter = [
            header(ORIGINAL_TOPIC_HEADER, "user-events"),
            header(ORIGINAL_PARTITION_HEADER, "0"),
            header(ORIGINAL_OFFSET_HEADER, "5"),
        ];
        assert_eq!(coordinates(record(&dead_letter, None)), "user-events-0-5", "produced back by hand");
        let (topic, partition, offset) = first_read_at(&dead_letter, "user-events.route.dlq", 0, 1);
        let replayed = vec![
            header(REPLAY_ORIGINAL_TOPIC_HEADER, topic),
            header(REPLAY_ORIGINAL_PARTITION_HEADER, &partition.to_string()),
            header(REPLAY_ORIGINAL_OFFSET_HEADER, &offset.to_string()),
        ];
        assert_eq!(coordinates(record(&replayed, None)), "user-events-0-5", "replayed by courier-dlq");
        // Dead-lettered again after its replay (new courier.dlq.original.*), and replayed again.
        let mut again = replayed.clone();
        again.extend([
            header(ORIGINAL_TOPIC_HEADER, "user-events"),
            header(ORIGINAL_PARTITION_HEADER, "1"),
            header(ORIGINAL_OFFSET_HEADER, "99"),
        ]);
        let twice = first_read_at(&again, "user-events.route.dlq", 1, 7);
        assert_eq!(twice, ("user-events", 0, 5), "the first coordinates");
        let broken = [header(REPLAY_ORIGINAL_TOPIC_HEADER, "t"), header(REPLAY_ORIGINAL_PARTITION_HEADER, "x")];
        assert_eq!(coordinates(record(&broken, None)), "user-events-2-17", "incomplete headers are ignored");
    }

    #[test]
    fn a_key_or_a_member_of_the_value_identifies_a_record_wherever_it_is() {
        let value = raw(r#"{"order_id":"o-1","n":7,"items":[{"sku":"S-1"}],"empty":"","nested":{"x":null}}"#);
        let by =
            |rule: &str| rule.parse::<IdFrom>().expect("rule").identity(record(&[], Some(&b"u-1"[..])), Some(&value));
        assert_eq!(by("key"), Ok("u-1".to_owned()));
        assert_eq!(by("value.order_id"), Ok("o-1".to_owned()));
        assert_eq!(by("value.n"), Ok("7".to_owned()));
        assert_eq!(by("value.items.0.sku"), Ok("S-1".to_owned()));
        for absent in ["value.nope", "value.empty", "value.nested.x", "value.items.1.sku", "value.items"] {
            assert!(matches!(by(absent), Err(Undecodable::Permanent { kind: "decode", .. })), "{absent}");
        }
        let no_key = IdFrom::Key.identity(record(&[], None), None);
        assert!(matches!(no_key, Err(Undecodable::Permanent { reason, .. }) if reason.contains("no key")));
    }

    #[test]
    fn an_identity_that_cannot_be_a_header_is_digested() {
        let spaced = IdFrom::Key.identity(record(&[], Some("Zoë Smith".as_bytes())), None).expect("identity");
        assert!(spaced.starts_with("sha256:") && spaced.len() == 7 + 32, "{spaced}");
        let again = IdFrom::Key.identity(record(&[], Some("Zoë Smith".as_bytes())), None).expect("identity");
        assert_eq!(spaced, again, "stable");
    }
}
