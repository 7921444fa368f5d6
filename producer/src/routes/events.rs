//! `POST /v1/events`: any CloudEvent whose type `[producer.events]` routes, in structured mode
//! (`Content-Type: application/cloudevents+json`) or binary mode (`ce-*` headers, the data as the body). It is
//! checked, published to its type's topic keyed by its key attribute (`subject` unless configured), and
//! answered 202 once the broker acknowledged it; the same `Idempotency-Key` and problem+json rules as
//! `POST /v1/orders`. A missing `time` is set to now and a missing `datacontenttype` to `application/json`, so
//! that every consumer reads a complete envelope. Only what can be delivered is accepted: attribute values
//! printable and bounded, `id` and `source` fit for an HTTP header, `data_base64` base64
//! ([`courier::events::validation`]); anything else is a 422 naming the attribute, and nothing is published.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use courier::events::{CLOUDEVENTS_CONTENT_TYPE, DATA_CONTENT_TYPE, SPEC_VERSION, http_binding, validation};
use courier::publisher::PublishError;
use courier::settings::EventRoute;
use courier::telemetry::metrics::Label;
use courier::telemetry::propagation;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::Instrument;

use super::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, FieldError};
use crate::extract::RawBody;
use crate::idempotency;
use crate::request_timeout::RequestPhase;

/// The 202 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventAccepted {
    /// The event's id (its `id` attribute).
    pub event_id: String,
    /// The topic it was written to.
    pub topic: String,
    /// Partition the event was written to.
    pub partition: i32,
    /// Offset of the event in its partition.
    pub offset: i64,
}

/// Where each accepted event type goes: `[producer.events]` by type.
#[derive(Debug, Clone, Default)]
pub struct EventTopics {
    /// Event type → its topic and the attribute that keys its records.
    by_type: Arc<HashMap<String, (Label, String)>>,
}

impl EventTopics {
    /// The table of `[producer.events]`.
    pub fn new(events: &BTreeMap<String, EventRoute>) -> Self {
        let by_type = events
            .values()
            .flat_map(|route| {
                route.types.iter().map(|t| (t.clone(), (Label::from(route.topic.as_str()), route.key.clone())))
            })
            .collect();
        Self { by_type: Arc::new(by_type) }
    }

    /// Every topic events go to.
    pub fn topics(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = self.by_type.values().map(|(topic, _)| &**topic).collect();
        topics.sort_unstable();
        topics.dedup();
        topics
    }
}

/// Handles `POST /v1/events`.
pub async fn publish_event(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(phase): Extension<RequestPhase>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let key = idempotency::request_key(&headers, &caller)?;
    let mut event = read(&headers, &body)?;
    let fingerprint = key.as_ref().map_or(0, |_| idempotency::fingerprint(&Value::Object(event.clone())));
    let (topic, record_key) = check(&mut event, &state.events).map_err(ApiError::InvalidEvent)?;
    let text = |name: &str| event.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (id, event_type) = (text("id"), text("type"));
    let payload = serde_json::to_vec(&event).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let span = tracing::info_span!(
        "event", event_id = %id, event_type = %event_type, %topic, trace_id = tracing::field::Empty
    );
    span.record("trace_id", propagation::trace_id(&span).as_str());

    let publish = async {
        let published =
            state.publisher.publish_raw(&topic, &record_key, &payload, &id, &event_type).await.map_err(|error| {
                tracing::warn!(%error, "event not accepted: the broker did not acknowledge it");
                error
            })?;
        tracing::info!(partition = published.partition, offset = published.offset, "event accepted and published");
        Ok::<_, PublishError>(EventAccepted {
            event_id: id.clone(),
            topic: topic.to_string(),
            partition: published.partition,
            offset: published.offset,
        })
    }
    .instrument(span.clone());
    let retry_after_secs = state.publisher.timeout().as_secs().max(1);
    phase.publishing();
    let (answer, replayed) =
        idempotency::once(&state.event_idempotency, key.as_deref(), fingerprint, publish, retry_after_secs)
            .instrument(span)
            .await?;
    Ok(idempotency::accepted(answer, replayed))
}

/// The event of the request, as a structured JSON object: from the body in structured mode, from the `ce-*`
/// headers and the body in binary mode.
fn read(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("(not text)"));
    let essence = content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence == CLOUDEVENTS_CONTENT_TYPE {
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(event)) => Ok(event),
            Ok(_) => Err(ApiError::InvalidEvent(vec![FieldError::new("", "a CloudEvent is a JSON object")])),
            Err(e) => Err(ApiError::MalformedJson(e.to_string())),
        };
    }
    if !headers.contains_key("ce-specversion") {
        return Err(ApiError::NotACloudEvent(content_type.unwrap_or_default().to_owned()));
    }
    let attributes = headers.iter().map(|(name, value)| (name.as_str(), value.as_bytes()));
    http_binding::from_binary(attributes, content_type, body).map_err(|error| {
        let field = match &error {
            http_binding::BindingError::Attribute { name, .. } => name.clone(),
            _ => String::new(),
        };
        ApiError::InvalidEvent(vec![FieldError::new(field, error.to_string())])
    })
}

/// The attributes CloudEvents defines as strings (URI references and timestamps are strings too); an extension
/// may also be a number or a boolean.
const STRING_ATTRIBUTES: [&str; 8] =
    ["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema"];

/// Checks `event`'s attributes and completes its envelope (`time`, `datacontenttype`); its topic and record
/// key, or every attribute that is wrong.
fn check(event: &mut Map<String, Value>, topics: &EventTopics) -> Result<(Label, String), Vec<FieldError>> {
    let mut errors = Vec::new();
    for (name, value) in event.iter() {
        if name == "data" || name == "data_base64" {
            continue;
        }
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            errors.push(FieldError::new(name, "an attribute name is lower-case letters and digits only"));
        } else if STRING_ATTRIBUTES.contains(&name.as_str()) && !value.is_string() {
            errors.push(FieldError::new(name, "is a string (its type in the CloudEvents specification)"));
        } else if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            errors.push(FieldError::new(name, "an attribute is a string, a number or a boolean"));
        } else if let Some(Err(message)) = value.as_str().map(|text| validation::attribute(name, text)) {
            errors.push(FieldError::new(name, message));
        }
    }
    let text = |name: &str| event.get(name).and_then(Value::as_str).filter(|s| !s.trim().is_empty());
    if text("specversion") != Some(SPEC_VERSION) && !errors.iter().any(|e| e.field == "specversion") {
        errors.push(FieldError::new("specversion", format!("is required and must be \"{SPEC_VERSION}\"")));
    }
    for required in ["id", "source", "type"] {
        if text(required).is_none() && !errors.iter().any(|e| e.field == required) {
            errors.push(FieldError::new(required, "is required: a non-empty string"));
        }
    }
    if event.contains_key("data") && event.contains_key("data_base64") {
        errors.push(FieldError::new("data_base64", "an event has data or data_base64, not both"));
    }
    match event.get("data_base64") {
        Some(Value::String(data)) => {
            if let Err(message) = validation::data_base64(data) {
                errors.push(FieldError::new("data_base64", message));
            }
        }
        Some(_) => errors.push(FieldError::new("data_base64", "must be a base64 string")),
        None => {}
    }
    if let Some(time) = event.get("time")
        && time.as_str().is_none_or(|t| DateTime::parse_from_rfc3339(t).is_err())
        && !errors.iter().any(|e| e.field == "time")
    {
        errors.push(FieldError::new("time", "must be an RFC 3339 timestamp, e.g. 2026-12-03T10:00:00Z"));
    }
    let type_reported = errors.iter().any(|e| e.field == "type");
    let route = text("type").filter(|_| !type_reported).map(|t| (t, topics.by_type.get(t)));
    let routed = match route {
        Some((_, Some((topic, key_attribute)))) => match text(key_attribute) {
            Some(key) => Some((topic.clone(), key.to_owned())),
            None => {
                if !errors.iter().any(|e| e.field == *key_attribute) {
                    let message = "is required: its value keys the record, so that one key's events stay in order";
                    errors.push(FieldError::new(key_attribute.as_str(), message));
                }
                None
            }
        },
        Some((event_type, None)) => {
            let message = format!("no topic is configured for event type {event_type:?} (producer.events)");
            errors.push(FieldError::new("type", message));
            None
        }
        None => None,
    };
    match routed {
        Some(routed) if errors.is_empty() => {
            let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
            event.entry("time").or_insert(Value::String(now));
            event.entry("datacontenttype").or_insert(Value::String(DATA_CONTENT_TYPE.to_owned()));
            Ok(routed)
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn topics() -> EventTopics {
        let route = EventRoute { types: vec!["user.registered".into()], topic: "users".into(), key: "subject".into() };
        EventTopics::new(&BTreeMap::from([("users".to_owned(), route)]))
    }

    fn event(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).expect("an object")
    }

    #[test]
    fn a_routed_event_is_completed_and_keyed_by_its_subject() {
        let mut e = event(r#"{"specversion":"1.0","id":"e-1","source":"/s","type":"user.registered","subject":"u-1"}"#);
        let (topic, key) = check(&mut e, &topics()).expect("valid");
        assert_eq!((&*topic, key.as_str()), ("users", "u-1"));
        assert!(e["time"].as_str().is_some_and(|t| DateTime::parse_from_rfc3339(t).is_ok()));
        assert_eq!(e["datacontenttype"], DATA_CONTENT_TYPE);
    }

    #[test]
    fn binary_data_is_accepted_as_data_base64() {
        let headers = [
            ("ce-specversion", &b"1.0"[..]),
            ("ce-id", b"e-9"),
            ("ce-source", b"/s"),
            ("ce-type", b"user.registered"),
            ("ce-subject", b"u-9"),
        ];
        let mut e =
            http_binding::from_binary(headers, Some("application/octet-stream"), &[0, 159, 146]).expect("binary mode");
        check(&mut e, &topics()).expect("valid");
        assert_eq!(e["data_base64"], "AJ+S");
        assert_eq!(e["datacontenttype"], "application/octet-stream");
    }

    #[test]
    fn every_wrong_attribute_is_named() {
        let mut e = event(r#"{"specversion":"0.3","source":"","type":"user.registered","time":"yesterday","Ext":1}"#);
        let errors = check(&mut e, &topics()).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["Ext", "specversion", "id", "source", "time", "subject"]);
        let mut unknown = event(r#"{"specversion":"1.0","id":"e","source":"/s","type":"order.created","subject":"o"}"#);
        let errors = check(&mut unknown, &topics()).expect_err("unrouted");
        assert_eq!(errors[0].field, "type");
        assert!(errors[0].message.contains("order.created"), "{}", errors[0].message);
    }

    /// The attribute names of `errors`, in order.
    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn undeliverable_attribute_values_are_named() {
        let valid = r#"{"specversion":"1.0","id":"e-1","source":"/s","type":"user.registered","subject":"u-1"}"#;
        let with = |name: &str, value: Value| {
            let mut e = event(valid);
            e.insert(name.to_owned(), value);
            check(&mut e, &topics())
        };
        let cases = [
            ("id", json!("a\u{1}b"), "visible ASCII"),
            ("id", json!("x".repeat(20_000)), "at most 200"),
            ("id", json!("two words"), "visible ASCII"),
            ("source", json!("/s\u{0}"), "visible ASCII"),
            ("source", json!(format!("/{}", "s".repeat(300))), "at most 256"),
            ("subject", json!("u\n1"), "printable"),
            ("subject", json!("u".repeat(257)), "at most 256"),
            ("type", json!("user.registered\u{7f}"), "printable"),
            ("tenant", json!("eu\u{85}1"), "printable"),
            ("tenant", json!("t".repeat(1025)), "at most 1024"),
            ("time", json!("2026-12-03T10:00:00Z\u{1}"), "printable"),
            ("data_base64", json!("not base64!"), "must be base64"),
            ("data_base64", json!(12), "base64 string"),
            ("datacontenttype", json!(5), "is a string"),
            ("dataschema", json!(true), "is a string"),
            ("subject", json!(42), "is a string"),
            ("id", json!(7), "is a string"),
        ];
        for (name, value, expected) in cases {
            let errors = with(name, value.clone()).expect_err("refused");
            assert_eq!(fields(&errors), [name], "{name}={value}: one error, naming the attribute");
            assert!(errors[0].message.contains(expected), "{name}: {}", errors[0].message);
        }
        with("data_base64", json!("AAE=")).expect("base64 data");
        with("subject", json!("Zoë's file.jpg")).expect("printable Unicode in a subject");
    }

    #[test]
    fn binary_mode_attributes_are_held_to_the_same_rules() {
        let long = "x".repeat(20_000);
        for (id, expected) in [(&b"a%01b"[..], "visible ASCII"), (long.as_bytes(), "at most 200")] {
            let headers = [
                ("ce-specversion", &b"1.0"[..]),
                ("ce-id", id),
                ("ce-source", b"/s"),
                ("ce-type", b"user.registered"),
                ("ce-subject", b"u-9"),
            ];
            let mut e = http_binding::from_binary(headers, Some("application/json"), b"{}").expect("binary mode");
            let errors = check(&mut e, &topics()).expect_err("refused");
            assert_eq!(fields(&errors), ["id"]);
            assert!(errors[0].message.contains(expected), "{}", errors[0].message);
        }
    }
}
