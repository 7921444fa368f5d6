//! The `forward` consumer: "deliver these events to this URL", configured by settings alone, with every
//! guarantee of the coded consumers.
//!
//! Each `[forward.routes.<name>]` is a consumer of its own, run side by side in one process that serves one
//! health server: consumer group `<name>` (after `kafka.group_id_prefix`), `Idempotency-Key: <name>:<event
//! identity>` (the digest of its source and its id; see `CloudEvent::identity`), per-key order, retries, the circuit breaker and rate limit of its API (`[apis.<api>]`), and dead
//! letters in `<topic>.<name>.dlq`. An event whose type the route does not deliver is skipped (committed
//! without a call). The route reads its records in its format (`courier::formats`): a CloudEvent goes out
//! in structured mode (`application/cloudevents+json`) or in CloudEvents HTTP binary mode (`ce-*` headers,
//! `data` as the body), whichever mode it was read in; any other record goes out as its value, JSON as
//! `application/json`, bytes of their content type; a record of a registry format (`avro`, `protobuf`,
//! `json-schema`) as the JSON its schema decodes it to, `application/json`. The routes of one process share one
//! schema registry client, built at start-up.
//!
//! A route may map its requests (`courier::mapping`): its `path`, `query` and `headers` are templates over the
//! event, its `body` and `filter` jq programs, all compiled at start-up. An event the filter rejects is skipped
//! like a type the route does not deliver; an event whose mapping fails is dead-lettered at once
//! (`courier.dlq.error.kind = mapping`). In a batch, the filter and the body program run for each event (the
//! body gives its element of the array); the path, query and headers are one for the call, so they cannot
//! depend on the event (refused at start-up).

use bytes::Bytes;
use courier::delivery::{
    self, Batching, BuildError, Consumer, ConsumerSpec, Failure, Handler, Incoming, Outcome, RunError, Runner,
};
use courier::downstream::{self, ApiClient, CallContext, Payload};
use courier::events::{CLOUDEVENTS_BATCH_CONTENT_TYPE, CLOUDEVENTS_CONTENT_TYPE, DATA_CONTENT_TYPE, http_binding};
use courier::formats::Decoded;
use courier::health::Health;
use courier::settings::{BodyMode, ForwardRoute, Settings};
use std::borrow::Cow;
use std::sync::Arc;

use courier::mapping::RequestMapping;
use http::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

/// The binary's name.
pub const NAME: &str = "forward";

/// One route's declaration: the consumer `[forward.routes.<name>]` describes.
#[derive(Debug, Clone)]
pub struct Forward {
    /// The route's name: its consumer group and the prefix of its idempotency keys.
    name: String,
    /// Its settings.
    route: ForwardRoute,
}

impl Forward {
    /// Route `name`, as `route` describes it.
    pub fn new(name: &str, route: &ForwardRoute) -> Self {
        Self { name: name.to_owned(), route: route.clone() }
    }
}

impl Consumer for Forward {
    type Handler = ForwardHandler;

    fn name(&self) -> &str {
        &self.name
    }

    fn spec(&self, settings: &Settings) -> ConsumerSpec {
        ConsumerSpec::reads(settings, &self.name, &self.route.topics).reading(self.route.reading())
    }

    /// Its handler; an error names the route.
    fn build(&self, settings: &Settings, health: &Health) -> Result<ForwardHandler, BuildError> {
        let (name, route) = (&self.name, &self.route);
        let handler = || -> Result<ForwardHandler, BuildError> {
            Ok(ForwardHandler {
                name: name.clone(),
                schema_decoded: route.format.schema_format().is_some(),
                types: route.types.clone(),
                api: ApiClient::new(name, settings.apis.get(route.api_name(name))?, health)?,
                method: Method::from_bytes(route.method.as_bytes())?,
                mapping: Arc::new(RequestMapping::compile(&format!("forward.routes.{name}"), &route.request())?),
                mode: route.mode,
                batching: (route.batch_max_events > 1)
                    .then_some(Batching { max_events: route.batch_max_events, max_wait: route.batch_max_wait_ms }),
            })
        };
        handler().map_err(|e| format!("route {name}: {e}").into())
    }
}

/// One route's handler: delivers the events of its types to its API.
#[derive(Debug, Clone)]
pub struct ForwardHandler {
    /// The route's name: the prefix of its idempotency keys.
    name: String,
    /// Whether its JSON records are decoded by a schema (a registry format): their JSON is sent, not their
    /// value.
    schema_decoded: bool,
    /// The event types delivered; empty: every type.
    types: Vec<String>,
    /// Client of the route's API (its metrics and breaker are named after the route).
    api: ApiClient,
    /// The HTTP method.
    method: Method,
    /// Which events are sent, and their path, query, headers and body.
    mapping: Arc<RequestMapping>,
    /// Structured or binary mode.
    mode: BodyMode,
    /// How events are batched, when the route sends several in one call.
    batching: Option<Batching>,
}

impl ForwardHandler {
    /// Whether the route delivers events of `incoming`'s type (a record that is not a CloudEvent has none: a
    /// route that names types skips it).
    fn delivers(&self, incoming: &Incoming) -> bool {
        self.types.is_empty() || incoming.event_type().is_some_and(|t| self.types.iter().any(|wanted| wanted == t))
    }

    /// The JSON sent for a JSON record: the value as it was written, or the JSON its schema decoded it to.
    fn json_body(&self, incoming: &Incoming, json: &RawValue) -> Bytes {
        if self.schema_decoded { Bytes::copy_from_slice(json.get().as_bytes()) } else { incoming.value.clone() }
    }

    /// The request for `incoming`, or why it cannot be sent (in binary mode, or with its content type).
    fn payload(&self, incoming: &Incoming) -> Result<Payload, Failure> {
        let structured = match &incoming.decoded {
            Decoded::CloudEvent { structured, .. } => structured,
            Decoded::Json(json) => {
                let content_type = HeaderValue::from_static(DATA_CONTENT_TYPE);
                return Ok(Payload { body: self.json_body(incoming, json), content_type, headers: HeaderMap::new() });
            }
            Decoded::Bytes { content_type } => {
                let content_type = HeaderValue::try_from(content_type.as_str()).map_err(|_| {
                    Failure::new("decode", format!("content type {content_type:?} cannot be sent as an HTTP header"))
                })?;
                return Ok(Payload { body: incoming.value.clone(), content_type, headers: HeaderMap::new() });
            }
        };
        if self.mode == BodyMode::Structured {
            let content_type = HeaderValue::from_static(CLOUDEVENTS_CONTENT_TYPE);
            return Ok(Payload { body: structured.clone(), content_type, headers: HeaderMap::new() });
        }
        let binary = http_binding::to_binary(structured).map_err(|e| Failure::new("decode", e.to_string()))?;
        let invalid = |what: &str| Failure::new("decode", format!("{what} cannot be sent as an HTTP header"));
        let mut headers = HeaderMap::with_capacity(binary.headers.len());
        for (name, value) in binary.headers {
            let header = HeaderName::try_from(name.as_str()).map_err(|_| invalid(&name))?;
            headers.insert(header, HeaderValue::try_from(value).map_err(|_| invalid(&name))?);
        }
        let content_type = HeaderValue::try_from(binary.content_type).map_err(|_| invalid("datacontenttype"))?;
        Ok(Payload { body: binary.body, content_type, headers })
    }
}

impl ForwardHandler {
    /// The path (query included) and payload of `incoming`'s call, as the route maps them; `None`: its filter
    /// does not send the event.
    fn request(&self, incoming: &Incoming) -> Result<Option<(Cow<'_, str>, Payload)>, Failure> {
        let mapping = &*self.mapping;
        if !mapping.needs_input() {
            let mut payload = self.payload(incoming)?;
            mapping.add_headers(None, &mut payload.headers).map_err(|e| e.failure())?;
            return Ok(Some((mapping.target(None).map_err(|e| e.failure())?, payload)));
        }
        let input = mapping.input(incoming).map_err(|e| e.failure())?;
        if !mapping.sends(&input).map_err(|e| e.failure())? {
            return Ok(None);
        }
        let mut payload = match mapping.body(&input) {
            Some(body) => self.mapped(incoming, body.map_err(|e| e.failure())?)?,
            None => self.payload(incoming)?,
        };
        mapping.add_headers(Some(&input), &mut payload.headers).map_err(|e| e.failure())?;
        let target = mapping.target(Some(&input)).map_err(|e| e.failure())?.into_owned();
        Ok(Some((Cow::Owned(target), payload)))
    }

    /// The payload of a mapped `body` (`application/json`), with the event's `ce-*` headers in binary mode.
    fn mapped(&self, incoming: &Incoming, body: Bytes) -> Result<Payload, Failure> {
        let headers = match (&incoming.decoded, self.mode) {
            (Decoded::CloudEvent { .. }, BodyMode::Binary) => self.payload(incoming)?.headers,
            _ => HeaderMap::new(),
        };
        Ok(Payload { body, content_type: HeaderValue::from_static(DATA_CONTENT_TYPE), headers })
    }
}

impl Handler for ForwardHandler {
    async fn handle(&self, incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
        if !self.delivers(incoming) {
            tracing::debug!(route = %self.name, "event type not delivered by this route: skipped");
            return Outcome::Done;
        }
        let (target, payload) = match self.request(incoming) {
            Ok(Some(request)) => request,
            Ok(None) => {
                tracing::debug!(route = %self.name, "event not sent by the route's filter: skipped");
                return Outcome::Done;
            }
            Err(failure) => return Outcome::Permanent(failure),
        };
        let call = CallContext::for_event(&self.name, incoming);
        let result = self.api.send(self.method.clone(), &target, &payload, &call).await;
        downstream::classify(&result).on_done(|| tracing::debug!(route = %self.name, "event forwarded"))
    }

    fn batching(&self) -> Option<Batching> {
        self.batching
    }

    /// The events of the types the route delivers (and its filter sends), as one JSON array: of the CloudEvents
    /// in structured mode (`application/cloudevents-batch+json`) when every event is one, else of each event's
    /// JSON (a CloudEvent in structured mode, a JSON record's value) as `application/json`; with a mapped body,
    /// of each event's body, as `application/json`. The others are skipped; a record read as bytes cannot be an
    /// element of a JSON array unless a body program maps it, and fails for good; so does an event whose
    /// mapping fails.
    async fn handle_batch(&self, batch: &[Incoming], _channel: Option<&'static str>) -> Vec<Outcome> {
        let mut outcomes = vec![Outcome::Done; batch.len()];
        let mut sent = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        let mut elements = Vec::with_capacity(batch.len());
        for (i, incoming) in batch.iter().enumerate().filter(|(_, incoming)| self.delivers(incoming)) {
            match self.element(incoming) {
                Ok(Some(element)) => {
                    sent.push(i);
                    events.push(incoming);
                    elements.push(element);
                }
                Ok(None) => {}
                Err(failure) => outcomes[i] = Outcome::Permanent(failure),
            }
        }
        if events.is_empty() {
            return outcomes;
        }
        let every_cloudevent = !self.mapping.maps_body() && events.iter().all(|incoming| incoming.event().is_some());
        let content_type =
            HeaderValue::from_static(if every_cloudevent { CLOUDEVENTS_BATCH_CONTENT_TYPE } else { DATA_CONTENT_TYPE });
        let mut payload = Payload { body: json_array(&elements).into(), content_type, headers: HeaderMap::new() };
        let target = self
            .mapping
            .add_headers(None, &mut payload.headers)
            .and_then(|()| self.mapping.target(None))
            .map_err(|e| e.failure());
        let target = match target {
            Ok(target) => target,
            Err(failure) => {
                for i in sent {
                    outcomes[i] = Outcome::Permanent(failure.clone());
                }
                return outcomes;
            }
        };
        let call = CallContext::for_batch(&self.name, &events);
        let result = self.api.send(self.method.clone(), &target, &payload, &call).await;
        for (i, outcome) in sent.into_iter().zip(downstream::classify_batch(&result, events.len())) {
            outcomes[i] = outcome;
        }
        tracing::debug!(route = %self.name, events = events.len(), "batch forwarded");
        outcomes
    }
}

impl ForwardHandler {
    /// `incoming`'s element of a batch: its mapped body, else the CloudEvent in structured mode or the JSON
    /// record's JSON; `None`: the route's filter does not send it. A record read as bytes without a mapped body
    /// cannot be one.
    fn element(&self, incoming: &Incoming) -> Result<Option<Bytes>, Failure> {
        let mapping = &*self.mapping;
        if mapping.needs_input() {
            let input = mapping.input(incoming).map_err(|e| e.failure())?;
            if !mapping.sends(&input).map_err(|e| e.failure())? {
                return Ok(None);
            }
            if let Some(body) = mapping.body(&input) {
                return body.map(Some).map_err(|e| e.failure());
            }
        }
        match &incoming.decoded {
            Decoded::CloudEvent { structured, .. } => Ok(Some(structured.clone())),
            Decoded::Json(json) => Ok(Some(self.json_body(incoming, json))),
            Decoded::Bytes { content_type } => {
                let why = format!("bytes of {content_type} cannot be an element of a batch (a JSON array)");
                Err(Failure::new("decode", why))
            }
        }
    }
}

/// `elements` (each JSON) as one JSON array.
fn json_array(elements: &[Bytes]) -> Vec<u8> {
    let mut body = Vec::with_capacity(elements.iter().map(|b| b.len() + 1).sum::<usize>() + 1);
    body.push(b'[');
    for (n, element) in elements.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(element);
    }
    body.push(b']');
    body
}

/// Runs every route of `[forward.routes]` until `shutdown`, serving one health server for all; stops them
/// all when one fails. Refuses to start without a route, or with a route whose API is not configured.
pub async fn run(settings: &Settings, shutdown: CancellationToken) -> Result<(), RunError> {
    if settings.forward.routes.is_empty() {
        return Err(RunError::Handler(
            "forward.routes: no route is configured; add a [forward.routes.<name>] block (see \
             config/examples/user-registration.toml)"
                .to_owned(),
        ));
    }
    let health = Health::default();
    // One registry client for every route of a registry format: each schema is fetched once per process.
    let registry = match settings.forward.routes.iter().find(|(_, route)| route.format.schema_format().is_some()) {
        Some((name, route)) => Some(delivery::registry_for(settings, name, route.format)?),
        None => None,
    };
    let mut routes = Vec::with_capacity(settings.forward.routes.len());
    for (name, route) in &settings.forward.routes {
        // Built before anything runs, so that a missing API stops the start with its name.
        let mut runner = Runner::new(settings).health(&health).without_health_server();
        if let Some(registry) = &registry {
            runner = runner.schema_registry(registry);
        }
        let forward = runner.build(&Forward::new(name, route))?;
        tracing::info!(
            route = %name, topics = ?route.topics, types = ?route.types, format = %route.format, mode = ?route.mode,
            "route configured"
        );
        routes.push(forward);
    }
    let server = delivery::serve_health(settings, &health, &shutdown).await?;
    let stop = shutdown.child_token();
    let runs = routes.into_iter().map(|forward| {
        let stop = stop.clone();
        async move {
            let result = forward.run(stop.clone()).await;
            // One route failing stops the others: the process exits and its orchestrator restarts it.
            stop.cancel();
            result
        }
    });
    let results = futures::future::join_all(runs).await;
    server.abort();
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{MockApi, Received, permanent};

    /// Route `crm` (`[forward.routes.crm]`: `users.registered` to `crm`'s `contacts`, with `route`'s other
    /// settings) calling `api`.
    fn handler(api: &MockApi, route: &[(&str, &str)]) -> ForwardHandler {
        let mut overrides = vec![
            ("COURIER__FORWARD__ROUTES__CRM__TOPICS", "users.registered"),
            ("COURIER__FORWARD__ROUTES__CRM__PATH", "contacts"),
        ];
        overrides.extend_from_slice(route);
        let settings = api.settings(&["crm"], &overrides);
        let forward = Forward::new("crm", &settings.forward.routes["crm"]);
        forward.build(&settings, &Health::default()).expect("built")
    }

    /// An event `id` of `event_type` from another application, with an extension attribute.
    fn registered(id: &str, event_type: &str) -> Incoming {
        let event = json!({
            "specversion": "1.0", "id": id, "source": "/signup", "type": event_type, "subject": "u-1",
            "time": "2026-12-03T00:00:00Z", "datacontenttype": "application/json", "tenant": "eu",
            "data": {"user_id": "u-1", "email": "ada@example.com"},
        });
        Incoming::new("users.registered", &event).expect("an event")
    }

    #[tokio::test]
    async fn a_route_sends_the_event_as_it_was_published() {
        let api = MockApi::answering(201, json!({})).await;
        let incoming = registered("e-1", "user.registered");
        assert_eq!(handler(&api, &[]).handle(&incoming, None).await, Outcome::Done);
        let sent = api.only().await;
        assert_eq!((&sent.method, sent.path()), (&Method::POST, "/crm/contacts"));
        assert_eq!(sent.header("idempotency-key"), Some(format!("crm:{}", incoming.identity).as_str()));
        assert_eq!(sent.header("content-type"), Some(CLOUDEVENTS_CONTENT_TYPE));
        assert_eq!(sent.body, incoming.value, "byte for byte, the extension attribute included");
    }

    #[tokio::test]
    async fn a_route_in_binary_mode_sends_the_attributes_as_headers_and_the_data_as_body() {
        let api = MockApi::answering(204, json!(null)).await;
        let route =
            [("COURIER__FORWARD__ROUTES__CRM__MODE", "binary"), ("COURIER__FORWARD__ROUTES__CRM__METHOD", "PUT")];
        let incoming = registered("e-1", "user.registered");
        assert_eq!(handler(&api, &route).handle(&incoming, None).await, Outcome::Done);
        let sent = api.only().await;
        assert_eq!((&sent.method, sent.path()), (&Method::PUT, "/crm/contacts"));
        let attributes = ["ce-id", "ce-source", "ce-type", "ce-tenant"].map(|name| sent.header(name));
        assert_eq!(attributes, [Some("e-1"), Some("/signup"), Some("user.registered"), Some("eu")]);
        assert_eq!(sent.header("idempotency-key"), Some(format!("crm:{}", incoming.identity).as_str()));
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(sent.json(), json!({"user_id": "u-1", "email": "ada@example.com"}));
    }

    /// A record that is not a CloudEvent, decoded as `decoded`, holding `value`, identified as `orders-0-7`.
    fn plain(decoded: Decoded, value: &[u8]) -> Incoming {
        let mut incoming = registered("unused", "user.registered");
        incoming.decoded = decoded;
        incoming.identity = "orders-0-7".to_owned();
        incoming.value = value.to_vec().into();
        incoming
    }

    #[tokio::test]
    async fn a_json_record_is_sent_as_its_value_keyed_by_its_identity() {
        let api = MockApi::answering(201, json!({})).await;
        let value = br#"{"user_id": "u-1", "email": "ada@example.com"}"#;
        for mode in ["structured", "binary"] {
            let handler = handler(&api, &[("COURIER__FORWARD__ROUTES__CRM__MODE", mode)]);
            let raw = serde_json::from_slice(value).expect("JSON");
            assert_eq!(handler.handle(&plain(Decoded::Json(raw), value), None).await, Outcome::Done);
            let sent = api.sent().await.pop().expect("a call");
            assert_eq!(sent.header("idempotency-key"), Some("crm:orders-0-7"), "{mode}");
            assert_eq!(sent.header("content-type"), Some("application/json"), "{mode}");
            assert_eq!(&sent.body[..], value, "{mode}: the value byte for byte");
            assert_eq!(sent.header("ce-id"), None, "{mode}: no CloudEvent, no ce-* headers");
        }
    }

    #[tokio::test]
    async fn a_bytes_record_is_sent_as_it_is_with_its_content_type() {
        let api = MockApi::answering(201, json!({})).await;
        let incoming = plain(Decoded::Bytes { content_type: "text/csv".into() }, b"u-1,ada@example.com");
        assert_eq!(handler(&api, &[]).handle(&incoming, None).await, Outcome::Done);
        let sent = api.only().await;
        assert_eq!((sent.header("content-type"), &sent.body[..]), (Some("text/csv"), &b"u-1,ada@example.com"[..]));
        assert_eq!(sent.header("idempotency-key"), Some("crm:orders-0-7"));
    }

    #[tokio::test]
    async fn a_route_that_names_types_skips_records_that_have_none() {
        let api = MockApi::answering(201, json!({})).await;
        let handler = handler(&api, &[("COURIER__FORWARD__ROUTES__CRM__TYPES", "user.registered")]);
        let raw = serde_json::from_str("{}").expect("JSON");
        assert_eq!(handler.handle(&plain(Decoded::Json(raw), b"{}"), None).await, Outcome::Done);
        assert!(api.sent().await.is_empty());
    }

    #[tokio::test]
    async fn a_batch_of_json_records_is_an_array_of_their_values_and_bytes_cannot_join_it() {
        let api = MockApi::answering(200, json!({})).await;
        let handler = handler(&api, &[("COURIER__FORWARD__ROUTES__CRM__BATCH_MAX_EVENTS", "10")]);
        let one = plain(Decoded::Json(serde_json::from_str("{}").expect("JSON")), br#"{"n":1}"#);
        let bytes = plain(Decoded::Bytes { content_type: "text/plain".into() }, b"two");
        let outcomes = handler.handle_batch(&[one, bytes, registered("e-3", "user.registered")], None).await;
        assert_eq!(outcomes[0], Outcome::Done);
        assert!(matches!(&outcomes[1], Outcome::Permanent(f) if f.kind == "decode"), "{outcomes:?}");
        assert_eq!(outcomes[2], Outcome::Done);
        let sent = api.only().await;
        assert_eq!(sent.header("content-type"), Some("application/json"), "not every event is a CloudEvent");
        let body = sent.json();
        assert_eq!(
            (body[0].clone(), body[1]["id"].clone(), body.as_array().map(Vec::len)),
            (json!({"n": 1}), json!("e-3"), Some(2))
        );
    }

    #[tokio::test]
    async fn an_event_of_a_type_the_route_does_not_deliver_is_skipped_without_a_call() {
        let api = MockApi::answering(201, json!({})).await;
        let handler = handler(&api, &[("COURIER__FORWARD__ROUTES__CRM__TYPES", "user.registered")]);
        assert_eq!(handler.handle(&registered("e-1", "user.deleted"), None).await, Outcome::Done);
        assert!(api.sent().await.is_empty());
    }

    #[tokio::test]
    async fn an_event_the_api_refuses_is_dead_lettered() {
        let api = MockApi::answering(400, json!({"error": "unknown field tenant"})).await;
        assert_eq!(
            permanent(handler(&api, &[]).handle(&registered("e-1", "user.registered"), None).await).http_status,
            Some(400)
        );
    }

    #[tokio::test]
    async fn a_batch_sends_the_events_it_delivers_as_one_array_and_each_gets_its_own_outcome() {
        let results = json!({"results": [{"status": 201}, {"status": 422, "detail": "duplicate e-mail"}]});
        let api = MockApi::answering(200, results).await;
        let route = [
            ("COURIER__FORWARD__ROUTES__CRM__TYPES", "user.registered"),
            ("COURIER__FORWARD__ROUTES__CRM__BATCH_MAX_EVENTS", "10"),
        ];
        let handler = handler(&api, &route);
        assert_eq!(handler.batching().map(|b| b.max_events), Some(10));
        let batch =
            [registered("a", "user.registered"), registered("b", "user.deleted"), registered("c", "user.registered")];
        let outcomes = handler.handle_batch(&batch, None).await;
        assert_eq!(outcomes[..2], [Outcome::Done, Outcome::Done], "b is skipped");
        assert!(matches!(&outcomes[2], Outcome::Permanent(f) if f.http_status == Some(422)), "{outcomes:?}");
        let sent = api.only().await;
        assert_eq!((&sent.method, sent.path()), (&Method::POST, "/crm/contacts"));
        let key = CallContext::for_batch("crm", &[&batch[0], &batch[2]]).idempotency_key;
        assert_eq!(sent.header("idempotency-key"), Some(key.as_str()));
        assert_eq!(sent.header("content-type"), Some(CLOUDEVENTS_BATCH_CONTENT_TYPE));
        let published = |i: &Incoming| serde_json::from_slice::<serde_json::Value>(&i.value).expect("JSON");
        assert_eq!(sent.json(), json!([published(&batch[0]), published(&batch[2])]));
    }

    /// Route `crm` `PUT`ting each user to `users/{id}` with a reshaped body and a templated header, for the
    /// `user.registered` events of plan `pro`.
    const MAPPED: [(&str, &str); 5] = [
        ("COURIER__FORWARD__ROUTES__CRM__METHOD", "PUT"),
        ("COURIER__FORWARD__ROUTES__CRM__PATH", "users/{{ data.user_id }}"),
        ("COURIER__FORWARD__ROUTES__CRM__HEADERS__X_TENANT", "{{ .tenant }}"),
        ("COURIER__FORWARD__ROUTES__CRM__BODY", "{email: .data.email, id: .id}"),
        ("COURIER__FORWARD__ROUTES__CRM__FILTER", ".data.plan != \"free\""),
    ];

    /// `registered`, with `data` in place of its data.
    fn registered_with(id: &str, data: serde_json::Value) -> Incoming {
        let event = json!({"specversion": "1.0", "id": id, "source": "/signup", "type": "user.registered",
            "time": "2026-12-03T00:00:00Z", "datacontenttype": "application/json", "tenant": "eu", "data": data});
        Incoming::new("users.registered", &event).expect("an event")
    }

    #[tokio::test]
    async fn a_mapped_route_puts_a_reshaped_body_to_a_path_and_header_taken_from_the_event() {
        let api = MockApi::answering(200, json!({})).await;
        let incoming = registered_with("e-1", json!({"user_id": "u/1", "email": "ada@example.com", "plan": "pro"}));
        assert_eq!(handler(&api, &MAPPED).handle(&incoming, None).await, Outcome::Done);
        let sent = api.only().await;
        assert_eq!((&sent.method, sent.path()), (&Method::PUT, "/crm/users/u%2F1"), "the id percent-encoded");
        assert_eq!(sent.header("x_tenant"), Some("eu"));
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(sent.json(), json!({"email": "ada@example.com", "id": "e-1"}));
        assert_eq!(sent.header("idempotency-key"), Some(format!("crm:{}", incoming.identity).as_str()));
    }

    #[tokio::test]
    async fn an_event_the_filter_rejects_is_skipped_and_one_whose_mapping_fails_is_a_mapping_failure() {
        let api = MockApi::answering(200, json!({})).await;
        let handler = handler(&api, &MAPPED);
        let free = registered_with("e-1", json!({"user_id": "u-1", "email": "a@example.com", "plan": "free"}));
        assert_eq!(handler.handle(&free, None).await, Outcome::Done, "skipped");
        let no_id = registered_with("e-2", json!({"email": "ada@example.com", "plan": "pro"}));
        let failure = permanent(handler.handle(&no_id, None).await);
        assert_eq!(failure.kind, "mapping");
        assert!(failure.message.starts_with("forward.routes.crm.path: the program gives null"), "{failure:?}");
        assert!(api.sent().await.is_empty(), "no call for either");
    }

    #[tokio::test]
    async fn a_json_record_is_mapped_from_the_record_and_binary_mode_keeps_the_attributes_beside_a_mapped_body() {
        let api = MockApi::answering(200, json!({})).await;
        let route = [
            ("COURIER__FORWARD__ROUTES__CRM__PATH", "users/{{ value.user_id }}?from={{ topic }}"),
            ("COURIER__FORWARD__ROUTES__CRM__BODY", "{email: .value.email, offset}"),
        ];
        let value = br#"{"user_id": "u-1", "email": "ada@example.com"}"#;
        let raw = serde_json::from_slice(value).expect("JSON");
        assert_eq!(handler(&api, &route).handle(&plain(Decoded::Json(raw), value), None).await, Outcome::Done);
        let sent = api.only().await;
        assert_eq!((sent.path(), sent.url.query()), ("/crm/users/u-1", Some("from=users.registered")));
        assert_eq!(sent.json(), json!({"email": "ada@example.com", "offset": 0}));

        let api = MockApi::answering(200, json!({})).await;
        let route =
            [("COURIER__FORWARD__ROUTES__CRM__MODE", "binary"), ("COURIER__FORWARD__ROUTES__CRM__BODY", ".data")];
        assert_eq!(handler(&api, &route).handle(&registered("e-1", "user.registered"), None).await, Outcome::Done);
        let sent = api.only().await;
        assert_eq!((sent.header("ce-id"), sent.header("content-type")), (Some("e-1"), Some("application/json")));
        assert_eq!(sent.json(), json!({"user_id": "u-1", "email": "ada@example.com"}));
    }

    /// Route `crm` in batches of up to 10, each event's body mapped, filtered, with a static header.
    const BATCHED: [(&str, &str); 4] = [
        ("COURIER__FORWARD__ROUTES__CRM__BATCH_MAX_EVENTS", "10"),
        ("COURIER__FORWARD__ROUTES__CRM__BODY", "{email: (.data.email | ascii_downcase)}"),
        ("COURIER__FORWARD__ROUTES__CRM__FILTER", ".data.plan != \"free\""),
        ("COURIER__FORWARD__ROUTES__CRM__HEADERS__X_SOURCE", "courier"),
    ];

    #[tokio::test]
    async fn a_batch_maps_each_body_and_filters_each_event() {
        let api = MockApi::answering(200, json!({})).await;
        let batch = [
            registered_with("a", json!({"email": "a@example.com", "plan": "pro"})),
            registered_with("b", json!({"email": "b@example.com", "plan": "free"})),
            registered_with("c", json!({"email": 3, "plan": "pro"})),
            registered_with("d", json!({"email": "D@example.com"})),
        ];
        let outcomes = handler(&api, &BATCHED).handle_batch(&batch, None).await;
        assert_eq!(outcomes[..2], [Outcome::Done, Outcome::Done], "b is filtered out");
        assert!(matches!(&outcomes[2], Outcome::Permanent(f) if f.kind == "mapping"), "{outcomes:?}");
        assert_eq!(outcomes[3], Outcome::Done);
        let sent = api.only().await;
        assert_eq!((sent.header("content-type"), sent.header("x_source")), (Some("application/json"), Some("courier")));
        assert_eq!(sent.json(), json!([{"email": "a@example.com"}, {"email": "d@example.com"}]));
        let key = CallContext::for_batch("crm", &[&batch[0], &batch[3]]).idempotency_key;
        assert_eq!(sent.header("idempotency-key"), Some(key.as_str()));
    }

    #[tokio::test]
    async fn a_program_that_fails_on_an_event_names_its_key_without_quoting_the_event() {
        let api = MockApi::answering(200, json!({})).await;
        let handler = handler(&api, &[("COURIER__FORWARD__ROUTES__CRM__BODY", "{n: (.data.email + 1)}")]);
        let incoming = registered_with("e-1", json!({"email": "ada@example.com"}));
        let failure = handler.request(&incoming).expect_err("string + number");
        assert_eq!(failure.kind, "mapping");
        assert!(failure.message.starts_with("forward.routes.crm.body: the program fails: cannot"), "{failure:?}");
        assert!(!failure.message.contains("ada@"), "{failure:?}");
    }
}
