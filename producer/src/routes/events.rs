//! `POST /v1/events`: any CloudEvent whose type `[producer.events]` routes, in structured mode
//! (`Content-Type: application/cloudevents+json`) or binary mode (`ce-*` headers, the data as the body). It is
//! checked, published to its type's topic keyed by its key attribute (`subject` unless configured), and
//! answered 202 once the broker acknowledged it; the same `Idempotency-Key` and problem+json rules as
//! `POST /v1/orders`. A missing `time` is set to now and a missing `datacontenttype` to `application/json`, so
//! that every consumer reads a complete envelope. Only what can be delivered is accepted: attribute values
//! printable and bounded, `id` and `source` fit for an HTTP header, `data_base64` base64
//! ([`courier::events::validation`]); anything else is a 422 naming the attribute, and nothing is published.
//! A type whose group has a JSON Schema (`producer.events.<name>.schema`) is published only with `data` that
//! matches it ([`crate::data_schema`]); else a 422 lists each violation by its JSON Pointer.

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
use crate::data_schema::{DataSchema, SchemaFileError};
use crate::error::{ApiError, FieldError, SchemaViolation};
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

/// Where each accepted event type goes and what its data must match: `[producer.events]` by type.
#[derive(Debug, Clone, Default)]
pub struct EventTopics {
    /// Event type → its topic and the attribute that keys its records.
    by_type: Arc<HashMap<String, (Label, String)>>,
    /// Event type → the JSON Schema of its data, for the types whose group has one.
    schemas: Arc<HashMap<String, Arc<DataSchema>>>,
    /// Group name (`producer.events.<name>`) → the JSON Schema of its data, for the groups that have one.
    data_schemas: Arc<BTreeMap<String, Arc<DataSchema>>>,
}

impl EventTopics {
    /// The table of `[producer.events]`, with each group's schema file read and compiled.
    pub fn new(events: &BTreeMap<String, EventRoute>) -> Result<Self, SchemaFileError> {
        let by_type = events
            .values()
            .flat_map(|route| {
                route.types.iter().map(|t| (t.clone(), (Label::from(route.topic.as_str()), route.key.clone())))
            })
            .collect();
        let (mut schemas, mut data_schemas) = (HashMap::new(), BTreeMap::new());
        for (name, route) in events.iter().filter(|(_, route)| !route.schema.is_empty()) {
            let schema = Arc::new(DataSchema::load(&format!("producer.events.{name}.schema"), &route.schema)?);
            data_schemas.insert(name.clone(), Arc::clone(&schema));
            schemas.extend(route.types.iter().map(|t| (t.clone(), Arc::clone(&schema))));
        }
        Ok(Self { by_type: Arc::new(by_type), schemas: Arc::new(schemas), data_schemas: Arc::new(data_schemas) })
    }

    /// The JSON Schema of each group's data, by the group's name, for the groups that have one.
    pub fn data_schemas(&self) -> &BTreeMap<String, Arc<DataSchema>> {
        &self.data_schemas
    }

    /// Checks the data of `event` (checked by [`check`]) against the schema of its type, when it has one.
    fn check_data(&self, event: &Map<String, Value>) -> Result<(), Vec<SchemaViolation>> {
        let schema = event.get("type").and_then(Value::as_str).and_then(|t| self.schemas.get(t));
        schema.map_or(Ok(()), |schema| schema.check(event))
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
    state.events.check_data(&event).map_err(|violations| {
        // The pointers and messages stay out of the log: a property's name can be personal data too.
        tracing::debug!(%event_type, violations = violations.len(), "event refused: its data does not match its schema");
        ApiError::SchemaViolation(violations)
    })?;
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
    use axum::response::IntoResponse;
    use serde_json::json;

    fn topics() -> EventTopics {
        let route = EventRoute {
            types: vec!["user.registered".into()],
            topic: "users".into(),
            key: "subject".into(),
            schema: String::new(),
        };
        EventTopics::new(&BTreeMap::from([("users".to_owned(), route)])).expect("no schema to read")
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

    /// The state of an API whose `users` group has the shipped `user.registered` schema, over a broker that
    /// does not answer: an event that reaches the publisher is answered 503 within 200 ms.
    fn schema_checking_state() -> AppState {
        let env = [
            ("COURIER__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1"),
            ("COURIER__PRODUCER__PUBLISH_TIMEOUT_MS", "200"),
            (
                "COURIER__PRODUCER__EVENTS__USERS__SCHEMA",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/events/user.registered.json"),
            ),
        ];
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let settings = courier::settings::Settings::load_with_env(None, Some(env)).expect("valid settings");
        AppState {
            publisher: courier::publisher::Publisher::new(&settings, "orders", "producer").expect("a producer"),
            idempotency: crate::idempotency::IdempotencyStore::from_settings(&settings.producer),
            events: EventTopics::new(&settings.producer.events).expect("the shipped schema compiles"),
            event_idempotency: crate::idempotency::IdempotencyStore::from_settings(&settings.producer),
            readiness_timeout: std::time::Duration::from_secs(1),
            kafka: settings.kafka.clone(),
        }
    }

    /// `POST /v1/events` of `body` with `headers`, as the handler answers it.
    async fn post(state: &AppState, headers: &[(&'static str, &str)], body: &str) -> Result<Response, ApiError> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().expect("a header value"));
        }
        let (caller, phase) = (Extension(Caller(None)), Extension(RequestPhase::default()));
        publish_event(State(state.clone()), caller, phase, map, RawBody(body.to_owned().into())).await
    }

    /// The pointers of a schema violation, sorted.
    fn violations(answer: Result<Response, ApiError>) -> Vec<String> {
        match answer {
            Err(ApiError::SchemaViolation(violations)) => {
                let mut pointers: Vec<String> = violations.into_iter().map(|v| v.pointer).collect();
                pointers.sort();
                pointers
            }
            Err(other) => panic!("not a schema violation: {other:?}"),
            Ok(answer) => panic!("accepted: {answer:?}"),
        }
    }

    #[tokio::test]
    async fn data_that_does_not_match_its_schema_is_refused_before_anything_is_published() {
        let state = schema_checking_state();
        let structured = [("content-type", CLOUDEVENTS_CONTENT_TYPE)];
        let event = |data: Value| {
            json!({"specversion": "1.0", "id": "e-1", "source": "/signup", "type": "user.registered",
                   "subject": "u-1", "data": data})
            .to_string()
        };
        let no_email = post(&state, &structured, &event(json!({"user_id": "u-1"}))).await;
        let problem = no_email.expect_err("refused").into_response();
        assert_eq!(problem.status(), 422);
        assert_eq!(problem.headers()[header::CONTENT_TYPE], crate::error::PROBLEM_JSON);
        let body = axum::body::to_bytes(problem.into_body(), usize::MAX).await.expect("a body");
        let body: Value = serde_json::from_slice(&body).expect("a problem document");
        assert_eq!(body["type"], "/problems/schema-violation");
        assert_eq!(body["title"], "Event data does not match its schema");
        assert_eq!(body["errors"], json!([{"pointer": "/data/email", "message": "is required"}]), "{body}");

        let bad = post(&state, &structured, &event(json!({"user_id": 7, "email": "ada.example.com"}))).await;
        assert_eq!(violations(bad), ["/data/email", "/data/user_id"]);
        let binary = |content_type| {
            [
                ("content-type", content_type),
                ("ce-specversion", "1.0"),
                ("ce-id", "e-2"),
                ("ce-source", "/signup"),
                ("ce-type", "user.registered"),
                ("ce-subject", "u-2"),
            ]
        };
        let bad = post(&state, &binary("application/json"), r#"{"email": "grace@example.com"}"#).await;
        assert_eq!(violations(bad), ["/data/user_id"], "binary mode: pointers rooted at /data");
        let not_json = post(&state, &binary("text/plain"), "u-2 grace@example.com").await;
        assert_eq!(violations(not_json), ["/data"]);
        let bytes = post(&state, &binary("application/octet-stream"), "\u{0}\u{1}").await;
        assert_eq!(violations(bytes), ["/data"]);

        // Matching data gets as far as the publisher, which the broker that does not answer fails.
        let valid = json!({"user_id": "u-1", "email": "ada@example.com", "plan": "pro"});
        let answer = post(&state, &structured, &event(valid)).await;
        assert!(matches!(answer, Err(ApiError::BrokerUnavailable { .. })), "{answer:?}");
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
