//! The event as a mapping sees it: one JSON value, read once per event and given to each of its programs.

use jaq_json::{Map, Val};

use super::MappingError;
use super::projection::Projection;
use crate::delivery::Incoming;
use crate::formats::Decoded;

/// The event as a mapping's programs see it (`.`): a CloudEvent, read in either mode, as its structured JSON
/// (`.id`, `.type`, `.source`, `.data.user_id`, extension attributes); any other record as an object:
///
/// | member | what |
/// |---|---|
/// | `key` | the record key, a string (`null`: none, or not UTF-8) |
/// | `value` | a JSON record's value (a registry format's: the JSON its schema decodes it to); bytes as a string |
/// | `headers` | the record's headers, name → value (a string; `null` for a header without one; of two headers of one name, the last) |
/// | `topic`, `partition`, `offset` | where the record was read |
/// | `timestamp` | the record's timestamp, milliseconds since the epoch (`null`: none) |
///
/// Built once per event and dropped when the request is made: it is not `Send` (jaq's values share their
/// parts by reference counts), so it never lives across an `.await`.
#[derive(Debug, Clone)]
pub struct Input(Val);

impl Input {
    /// The event `incoming` holds, as a mapping sees it, all of it.
    pub fn of(incoming: &Incoming) -> Result<Self, MappingError> {
        Self::projected(incoming, &Projection::All)
    }

    /// The event `incoming` holds, as much of it as `projection` sees (what a mapping's programs can see).
    pub fn projected(incoming: &Incoming, projection: &Projection) -> Result<Self, MappingError> {
        match &incoming.decoded {
            Decoded::CloudEvent { structured, .. } => read(structured, projection).map(Self),
            Decoded::Json(json) => Self::record(incoming, projection, |value| read(json.get().as_bytes(), value)),
            Decoded::Bytes { .. } => Self::record(incoming, projection, |_| Ok(Val::utf8_str(incoming.value.clone()))),
        }
    }

    /// `json` as the input, e.g. a CloudEvent in structured mode.
    pub fn from_json(json: &[u8]) -> Result<Self, MappingError> {
        read(json, &Projection::All).map(Self)
    }

    /// The record around its value, `value` read as much as the projection given to it sees; of the record's
    /// members, those `projection` sees.
    fn record(
        incoming: &Incoming,
        projection: &Projection,
        value: impl FnOnce(&Projection) -> Result<Val, MappingError>,
    ) -> Result<Self, MappingError> {
        let text = |s: &str| Val::utf8_str(s.to_owned().into_bytes());
        let bytes = |b: &[u8]| Val::utf8_str(b.to_vec());
        let number = |n: i64| Val::Num(jaq_json::Num::from_integral(n));
        let value = projection.member("value").map(value).transpose()?;
        let members: [(&str, &dyn Fn() -> Val); 7] = [
            ("key", &|| incoming.key.as_deref().map_or(Val::Null, text)),
            ("value", &|| value.clone().unwrap_or(Val::Null)),
            ("headers", &|| {
                let headers = incoming.headers.iter();
                Val::obj(
                    headers.map(|(name, value)| (bytes(name), value.as_deref().map_or(Val::Null, bytes))).collect(),
                )
            }),
            ("topic", &|| text(&incoming.topic)),
            ("partition", &|| number(incoming.partition.into())),
            ("offset", &|| number(incoming.offset)),
            ("timestamp", &|| incoming.timestamp_ms.map_or(Val::Null, number)),
        ];
        let members = members.into_iter().filter(|(name, _)| projection.member(name).is_some());
        let members: Map = members.map(|(name, value)| (text(name), value())).collect();
        Ok(Self(Val::obj(members)))
    }

    /// The value.
    pub(crate) fn value(&self) -> &Val {
        &self.0
    }
}

#[cfg(test)]
impl Input {
    /// The JSON text `json` as the input, which must be JSON: what the tests of the mapping read.
    pub(crate) fn of_text(json: &str) -> Self {
        Self::from_json(json.as_bytes()).expect("JSON")
    }
}

/// `json` read as a jaq value, as much of it as `projection` sees.
fn read(json: &[u8], projection: &Projection) -> Result<Val, MappingError> {
    projection
        .read(json)
        .map_err(|e| MappingError { key: "input".to_owned(), reason: format!("the event is not JSON: {e}") })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Program;
    use super::*;

    fn seen(incoming: &Incoming) -> serde_json::Value {
        let input = Input::of(incoming).expect("an input");
        let body = Program::compile("body", ".").expect("ok").json(&input).expect("JSON");
        serde_json::from_slice(&body).expect("JSON")
    }

    #[test]
    fn a_cloudevent_is_seen_as_its_structured_json() {
        let event = json!({"specversion": "1.0", "id": "e-1", "source": "/s", "type": "t", "tenant": "eu",
            "time": "2026-12-03T00:00:00Z", "datacontenttype": "application/json",
            "data": {"user_id": "u-1"}});
        let incoming = Incoming::new("users", &event).expect("an event");
        assert_eq!(seen(&incoming), event);
    }

    #[test]
    fn any_other_record_is_seen_as_the_record() {
        let mut incoming = Incoming::new(
            "users",
            &json!({"specversion": "1.0", "id": "e", "source": "/s",
            "type": "t", "time": "2026-12-03T00:00:00Z", "datacontenttype": "application/json"}),
        )
        .expect("an event");
        incoming.decoded = Decoded::Json(serde_json::from_str(r#"{"user_id": "u-1"}"#).expect("JSON"));
        incoming.partition = 3;
        incoming.offset = 42;
        incoming.key = Some("u-1".into());
        incoming.timestamp_ms = Some(1_700_000_000_000);
        incoming.headers = vec![(b"source".to_vec(), Some(b"crm".to_vec())), (b"empty".to_vec(), None)];
        let expected = json!({"key": "u-1", "value": {"user_id": "u-1"}, "headers": {"source": "crm", "empty": null},
            "topic": "users", "partition": 3, "offset": 42, "timestamp": 1_700_000_000_000_i64});
        assert_eq!(seen(&incoming), expected);
        incoming.decoded = Decoded::Bytes { content_type: "text/csv".into() };
        incoming.value = bytes::Bytes::from_static(b"u-1,ada");
        incoming.key = None;
        incoming.timestamp_ms = None;
        let seen = seen(&incoming);
        assert_eq!((&seen["value"], &seen["key"], &seen["timestamp"]), (&json!("u-1,ada"), &json!(null), &json!(null)));
    }
}
