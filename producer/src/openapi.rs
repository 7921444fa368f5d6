//! The order API's OpenAPI 3.1 document, generated from the code: the routes, the request bodies with the rules
//! the handlers check (the limits are the constants they use), every answer with its body and headers, every
//! problem+json a route can answer (rendered by [`ApiError`] itself, so the examples are what a client gets), the
//! API-key security schemes, and the event types `[producer.events]` routes.
//!
//! [`document`] builds it for a set of event routes; the producer serves it at [`PATH`] (no API key needed), and
//! `docs/openapi.json` is the document of the default settings (a test here fails when it differs, and says how
//! to write it again).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use courier::events::{CLOUDEVENTS_CONTENT_TYPE, SPEC_VERSION, validation};
use courier::settings::EventRoute;
use futures::FutureExt as _;
use serde_json::{Value, json};
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HeaderBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder,
    PathsBuilder, Ref, RefOr, Required,
};

use crate::data_schema::DataSchema;
use crate::error::{ApiError, FieldError, PROBLEM_JSON};
use crate::idempotency::MAX_KEY_LEN;
use crate::order::{MAX_ID_LEN, MAX_ITEMS, MAX_QUANTITY, MAX_UNIT_PRICE};
use crate::routes::events::EventAccepted;
use crate::routes::orders::OrderAccepted;

/// Where the producer serves the document.
pub const PATH: &str = "/openapi.json";

/// The problem type of an event whose `data` does not match the JSON Schema of its type.
const SCHEMA_VIOLATION: (&str, &str) = ("/problems/schema-violation", "Event data does not match its schema");

/// Name of the bearer-token security scheme.
const BEARER: &str = "bearerAuth";
/// Name of the `X-Api-Key` security scheme.
const API_KEY: &str = "apiKeyHeader";

/// The document, as JSON, for the event routes `events` (`[producer.events]`) and the JSON Schemas of their
/// data (`data_schemas`: group name → schema, for the groups that have one).
pub fn document(events: &BTreeMap<String, EventRoute>, data_schemas: &BTreeMap<String, Arc<DataSchema>>) -> Value {
    let data = EventData::of(events, data_schemas);
    let openapi = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("courier order API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Accepts orders (`POST /v1/orders`) and CloudEvents (`POST /v1/events`) and publishes each to \
                     Kafka; a 202 means the broker acknowledged it. Errors are RFC 9457 problem documents \
                     (`application/problem+json`) whose `type` names the problem. A request may carry an \
                     `Idempotency-Key`: a retry with the same key and body gets the first answer (marked \
                     `Idempotent-Replayed: true`) and nothing is published again. With `producer.api_keys` set, \
                     the publishing routes need an API key (`Authorization: Bearer <key>` or `X-Api-Key: <key>`); \
                     health, readiness, metrics and this document never do.",
                ))
                .license(Some(LicenseBuilder::new().name("Apache-2.0").identifier(Some("Apache-2.0")).build()))
                .build(),
        )
        .tags(Some([
            TagBuilder::new().name("publishing").description(Some("Orders and events published to Kafka")).build(),
            TagBuilder::new().name("operations").description(Some("Health, readiness, metrics, this document")).build(),
        ]))
        .paths(
            PathsBuilder::new()
                .path("/v1/orders", PathItem::new(HttpMethod::Post, create_order()))
                .path("/v1/events", PathItem::new(HttpMethod::Post, publish_event(events, &data)))
                .path("/healthz", PathItem::new(HttpMethod::Get, healthz()))
                .path("/readyz", PathItem::new(HttpMethod::Get, readyz()))
                .path("/metrics", PathItem::new(HttpMethod::Get, metrics()))
                .path(PATH, PathItem::new(HttpMethod::Get, openapi_json()))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .schema("OrderRequest", order_request())
                .schema("CloudEvent", cloud_event(events))
                .schema_from::<OrderAccepted>()
                .schema_from::<EventAccepted>()
                .schema_from::<FieldError>()
                .schema("SchemaViolation", schema_violation())
                .schema("Problem", problem())
                .security_scheme(
                    BEARER,
                    SecurityScheme::Http(
                        HttpBuilder::new()
                            .scheme(HttpAuthScheme::Bearer)
                            .description(Some("`Authorization: Bearer <key>`, a key of `producer.api_keys`"))
                            .build(),
                    ),
                )
                .security_scheme(
                    API_KEY,
                    SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                        "X-Api-Key",
                        "`X-Api-Key: <key>`, a key of `producer.api_keys`",
                    ))),
                )
                .build(),
        ))
        .build();
    finish(openapi, &data)
}

/// The document as the producer serves it and `docs/openapi.json` holds it: pretty JSON and a final newline.
pub fn render(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(document).unwrap_or_default();
    text.push('\n');
    text
}

/// The answer of `GET /openapi.json`: `rendered` ([`render`]) as `application/json`.
pub fn serve(rendered: &str) -> Response {
    let mut response = rendered.to_owned().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// What JSON Schema says that utoipa's model has no field for, added to the rendered document: an event has
/// `data` or `data_base64`, not both; with data schemas, each group's data schema (a component, as its file
/// has it) and the CloudEvent's variant of each group.
fn finish(openapi: OpenApi, data: &EventData) -> Value {
    let mut document = serde_json::to_value(&openapi).unwrap_or(Value::Null);
    if let Some(event) = document.pointer_mut("/components/schemas/CloudEvent").and_then(Value::as_object_mut) {
        event.insert("not".to_owned(), json!({"required": ["data", "data_base64"]}));
        if !data.schemas.is_empty() {
            event.insert("oneOf".to_owned(), Value::Array(data.variants()));
        }
    }
    if let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for (group, schema) in data.schemas {
            schemas.insert(EventData::component(group), EventData::embedded(group, schema.schema()));
        }
    }
    document
}

/// The groups of `[producer.events]` and the JSON Schemas of their data, as the document shows them.
struct EventData<'a> {
    /// Each group's name and event types.
    groups: Vec<(&'a str, &'a [String])>,
    /// Group name → the JSON Schema of its data, for the groups that have one.
    schemas: &'a BTreeMap<String, Arc<DataSchema>>,
}

/// The content types of data a group with a schema accepts (JSON), as a pattern of the lower-case forms.
const JSON_CONTENT_TYPE: &str = r"^(application/json|text/json|[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]*\+json)(;.*)?$";

impl<'a> EventData<'a> {
    /// The groups of `events`, with `data_schemas`.
    fn of(events: &'a BTreeMap<String, EventRoute>, data_schemas: &'a BTreeMap<String, Arc<DataSchema>>) -> Self {
        let groups = events.iter().map(|(name, route)| (name.as_str(), route.types.as_slice())).collect();
        Self { groups, schemas: data_schemas }
    }

    /// Whether every group has a data schema: then every event needs JSON data.
    fn everywhere(&self) -> bool {
        !self.groups.is_empty() && self.groups.iter().all(|(group, _)| self.schemas.contains_key(*group))
    }

    /// The component name of `group`'s data schema.
    fn component(group: &str) -> String {
        format!("EventData.{group}")
    }

    /// A reference to `group`'s data schema.
    fn reference(group: &str) -> Value {
        json!({"$ref": format!("#/components/schemas/{}", Self::component(group))})
    }

    /// `schema` as a component of this document: without its own `$schema` and `$id`, its local references
    /// (`#/definitions/…`, `#/$defs/…`) made references into the component.
    fn embedded(group: &str, schema: &Value) -> Value {
        fn rebase(value: &mut Value, base: &str) {
            match value {
                Value::Object(members) => {
                    for (name, member) in members.iter_mut() {
                        match member {
                            Value::String(reference) if name == "$ref" && reference.starts_with('#') => {
                                *reference = format!("{base}{}", &reference[1..]);
                            }
                            _ => rebase(member, base),
                        }
                    }
                }
                Value::Array(items) => items.iter_mut().for_each(|item| rebase(item, base)),
                _ => {}
            }
        }
        let mut schema = schema.clone();
        if let Some(members) = schema.as_object_mut() {
            members.remove("$schema");
            members.remove("$id");
        }
        rebase(&mut schema, &format!("#/components/schemas/{}", Self::component(group)));
        schema
    }

    /// The CloudEvent's variant of each group: its types, and for a group with a data schema, JSON `data`
    /// that matches it.
    fn variants(&self) -> Vec<Value> {
        let variants = self.groups.iter().map(|(group, types)| {
            let kind = json!({"type": "string", "enum": types});
            match self.schemas.contains_key(*group) {
                true => json!({
                    "properties": {
                        "type": kind,
                        "data": Self::reference(group),
                        "datacontenttype": {"type": "string", "pattern": JSON_CONTENT_TYPE},
                    },
                    "required": ["data"],
                }),
                false => json!({"properties": {"type": kind}}),
            }
        });
        variants.collect()
    }

    /// The body of an event in binary mode with a JSON content type: its data, which must match the schema of
    /// its type's group (`ce-type`) when the group has one.
    fn binary_body(&self) -> RefOr<Schema> {
        let description = "Binary mode: the event's data, with its attributes in the `ce-*` headers";
        if !self.everywhere() {
            return any(&format!(
                "{description}; it must match the JSON Schema of its type's group when the group has one"
            ))
            .into();
        }
        let mut references: Vec<Ref> =
            self.schemas.keys().map(|group| Ref::from_schema_name(Self::component(group))).collect();
        match references.len() {
            1 => references.remove(0).into(),
            _ => Schema::AnyOf(
                references
                    .into_iter()
                    .fold(AnyOfBuilder::new(), AnyOfBuilder::item)
                    .description(Some(format!("{description}; it matches the JSON Schema of its type's group")))
                    .build(),
            )
            .into(),
        }
    }
}

// ---- operations ------------------------------------------------------------------------------------------------

/// `POST /v1/orders`.
fn create_order() -> utoipa::openapi::path::Operation {
    let body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("OrderRequest")))
        .examples_from_iter([(
            "order",
            ExampleBuilder::new().summary("Two items, in euros").value(Some(sample_order())).build(),
        )])
        .build();
    OperationBuilder::new()
        .tag("publishing")
        .operation_id(Some("createOrder"))
        .summary(Some("Place an order"))
        .description(Some(
            "Validates the order (every wrong field is listed at once), publishes an `order.created` CloudEvent keyed \
             by the order id, and answers 202 once the broker acknowledged it. Nothing is published when the \
             answer is not 202.",
        ))
        .parameter(idempotency_key())
        .request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .description(Some("The order (`application/json` or any `+json` type)"))
                .content("application/json", body)
                .build(),
        ))
        .responses(responses(
            accepted(
                "OrderAccepted",
                json!({"order_id": "0193f1a2-7c4e-7d3a-9b1e-2f6a8c0d4e51", "event_id":
                       "0193f1a2-7c4e-7d3a-9b1e-2f6a8c0d4e52", "partition": 3, "offset": 1042}),
            ),
            publishing_errors([
                ApiError::UnsupportedMediaType("text/plain".into()),
                ApiError::Validation(vec![
                    FieldError::new("customer.email", "\"ada\" is not an e-mail address"),
                    FieldError::new("items[0].quantity", "must be at least 1"),
                ]),
                ApiError::IdempotencyKey("this Idempotency-Key was used before with a different request body".into()),
            ]),
            &[],
        ))
        .securities(Some(security()))
        .build()
}

/// `POST /v1/events`.
fn publish_event(events: &BTreeMap<String, EventRoute>, data: &EventData<'_>) -> utoipa::openapi::path::Operation {
    let event_type = events.values().flat_map(|route| route.types.first()).next().map_or("user.registered", |t| t);
    let structured = json!({
        "specversion": SPEC_VERSION, "id": "evt-0001", "source": "/signup", "type": event_type, "subject": "u-42",
        "time": "2026-12-03T10:00:00Z", "data": {"user_id": "u-42", "email": "ada@example.com"}
    });
    let mut operation = OperationBuilder::new()
        .tag("publishing")
        .operation_id(Some("publishEvent"))
        .summary(Some("Publish a CloudEvent"))
        .description(Some(format!(
            "Publishes a CloudEvents 1.0 event whose `type` `[producer.events]` routes to its topic, keyed by its key \
             attribute, and answers 202 once the broker acknowledged it. Structured mode: the whole event as \
             `{CLOUDEVENTS_CONTENT_TYPE}`. Binary mode: the attributes as `ce-*` headers (at least `ce-specversion`, \
             `ce-id`, `ce-source`, `ce-type` and the key attribute, values percent-encoded UTF-8) and the data as \
             the body, in its own content type (JSON types become `data`, `text/*` a string, anything else \
             `data_base64`); a request that is neither is answered 415. A missing `time` is set to now and a \
             missing `datacontenttype` to `application/json`."
        )))
        .parameter(idempotency_key());
    for parameter in binary_mode_headers(events) {
        operation = operation.parameter(parameter);
    }
    let structured = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("CloudEvent")))
        .examples_from_iter([(
            "structured",
            ExampleBuilder::new().summary("A structured-mode event").value(Some(structured)).build(),
        )])
        .build();
    let json_data = ContentBuilder::new()
        .schema(Some(data.binary_body()))
        .example(Some(json!({"user_id": "u-42", "email": "ada@example.com"})))
        .build();
    let body =
        RequestBodyBuilder::new().content(CLOUDEVENTS_CONTENT_TYPE, structured).content("application/json", json_data);
    let body = if data.everywhere() {
        // Every event needs JSON data: no body, or bytes, is refused.
        body.required(Some(Required::True))
            .description(Some("The event in structured mode, or its data (JSON) in binary mode"))
    } else {
        let bytes = ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/octet-stream")
            .description(Some("Binary mode: bytes of any other content type, published as `data_base64`"));
        body.required(Some(Required::False))
            .description(Some(
                "The event in structured mode, or its data in binary mode (no body: an event without data)",
            ))
            .content(
                "application/octet-stream",
                ContentBuilder::new().schema(Some(Schema::Object(bytes.build()))).build(),
            )
    };
    operation
        .request_body(Some(body.build()))
        .responses(responses(
            accepted(
                "EventAccepted",
                json!({"event_id": "evt-0001", "topic": "users.registered", "partition": 0, "offset": 17}),
            ),
            publishing_errors([
                ApiError::NotACloudEvent("text/plain".into()),
                ApiError::InvalidEvent(vec![
                    FieldError::new("id", "is required: a non-empty string"),
                    FieldError::new(
                        "type",
                        "no topic is configured for event type \"order.shipped\" (producer.events)",
                    ),
                ]),
                ApiError::IdempotencyKey("Idempotency-Key must be 1 to 255 visible ASCII characters".into()),
            ]),
            &[schema_violation_problem()],
        ))
        .securities(Some(security()))
        .build()
}

/// `GET /healthz`.
fn healthz() -> utoipa::openapi::path::Operation {
    let alive = json!({"status": "alive"});
    operations_get("Liveness", "200 while the process serves requests.")
        .operation_id(Some("healthz"))
        .response("200", json_response("The process is alive", object([("status", string_enum(["alive"]))]), alive))
        .build()
}

/// `GET /readyz`.
fn readyz() -> utoipa::openapi::path::Operation {
    let ready = object([("status", string_enum(["ready"])), ("broker", string_enum(["reachable"]))]);
    let not_ready = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("status", string_enum(["not ready"]))
        .property("broker", string_enum(["reachable", "unreachable"]))
        .property("missing_topics", ArrayBuilder::new().items(text()).build())
        .property("reason", text())
        .required("status")
        .required("broker")
        .required("reason")
        .build();
    operations_get(
        "Readiness",
        "200 when the broker answers and every topic the API publishes to exists; 503 otherwise, saying why.",
    )
    .operation_id(Some("readyz"))
    .response("200", json_response("Ready", ready, json!({"status": "ready", "broker": "reachable"})))
    .response(
        "503",
        json_response(
            "Not ready: the broker is unreachable, refuses the login, or topics are missing",
            not_ready,
            json!({"status": "not ready", "broker": "unreachable", "reason":
                   "the broker did not answer: Local: Broker transport failure"}),
        ),
    )
    .build()
}

/// `GET /metrics`.
fn metrics() -> utoipa::openapi::path::Operation {
    operations_get("Prometheus metrics", "The `courier_` metric families in the Prometheus text format.")
        .operation_id(Some("metrics"))
        .response("200", plain_response("The scrape", "text/plain", text()))
        .build()
}

/// `GET /openapi.json`.
fn openapi_json() -> utoipa::openapi::path::Operation {
    operations_get("This document", "The OpenAPI document of this API, for the event types it is configured with.")
        .operation_id(Some("openapi"))
        .response(
            "200",
            plain_response(
                "The OpenAPI 3.1 document",
                "application/json",
                ObjectBuilder::new().schema_type(Type::Object),
            ),
        )
        .build()
}

/// A response of `media_type` with `schema`, without an example.
fn plain_response(description: &str, media_type: &str, schema: ObjectBuilder) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(media_type, ContentBuilder::new().schema(Some(schema.build())).build())
        .build()
}

/// A `GET` of the operations tag, open to anyone.
fn operations_get(summary: &str, description: &str) -> OperationBuilder {
    OperationBuilder::new().tag("operations").summary(Some(summary)).description(Some(description))
}

/// Either API-key scheme.
fn security() -> [SecurityRequirement; 2] {
    [SecurityRequirement::new(BEARER, Vec::<String>::new()), SecurityRequirement::new(API_KEY, Vec::<String>::new())]
}

// ---- parameters ------------------------------------------------------------------------------------------------

/// The optional `Idempotency-Key` request header.
fn idempotency_key() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(format!(
            "Makes a retry answer the same: the same key with the same body gets the first answer and publishes \
             nothing; with another body, 422. 1 to {MAX_KEY_LEN} visible ASCII characters, remembered per API key \
             for `producer.idempotency_ttl_secs`."
        )))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_KEY_LEN))
                .pattern(Some("^[!-~]+$"))
                .build(),
        ))
        .example(Some(json!("order-7f3c-attempt")))
        .build()
}

/// The `ce-*` headers of binary mode that the producer needs (all optional here: structured mode has none); any
/// other attribute travels as `ce-<name>` too (`ce-time`, extensions).
fn binary_mode_headers(events: &BTreeMap<String, EventRoute>) -> Vec<utoipa::openapi::path::Parameter> {
    let header = |name: &str, description: &str, schema: Schema, example: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(format!("Binary mode: {description}")))
            .schema(Some(schema))
            .example(Some(json!(example)))
            .build()
    };
    let types = routed_types(events);
    let example_type = types.first().map_or("user.registered", String::as_str);
    vec![
        header(
            "ce-specversion",
            "the CloudEvents version; its presence selects binary mode",
            string_enum([SPEC_VERSION]),
            SPEC_VERSION,
        ),
        header("ce-id", "the event's id", header_visible_ascii(validation::MAX_ID_BYTES), "evt-0001"),
        header(
            "ce-source",
            "the event's source (a URI reference)",
            header_visible_ascii(validation::MAX_NAME_BYTES),
            "/signup",
        ),
        header("ce-type", "the event's type, one `[producer.events]` routes", string_enum(types.clone()), example_type),
        header(
            "ce-subject",
            "the event's subject (the record key unless its group keys by another attribute)",
            header_text(validation::MAX_NAME_BYTES),
            "u-42",
        ),
    ]
}

// ---- responses -------------------------------------------------------------------------------------------------

/// The 202 answer with body `schema` (a component) and its example.
fn accepted(schema: &str, example: Value) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description("Published: the broker acknowledged the event")
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).example(Some(example)).build(),
        )
        .header(
            "Idempotent-Replayed",
            HeaderBuilder::new()
                .schema(Some(string_enum(["true"])))
                .description(Some(
                    "`true` when this is the remembered answer to an earlier request with the same Idempotency-Key",
                ))
                .build(),
        )
        .build()
}

/// Every error of a publishing route: `own`, then those both routes answer (body, authentication, time, load,
/// broker).
fn publishing_errors<const N: usize>(own: [ApiError; N]) -> Vec<ApiError> {
    let mut errors =
        vec![ApiError::MalformedJson("expected value at line 1 column 1".into()), ApiError::TooLarge { limit: 65536 }];
    errors.extend(own);
    errors.extend([
        ApiError::Unauthenticated,
        ApiError::Forbidden,
        ApiError::RequestTimeout,
        ApiError::Overloaded,
        ApiError::BrokerUnavailable { retry_after_secs: 5 },
    ]);
    errors
}

/// The responses of a publishing route: `accepted`, then one response per status that `errors` (and `extra`,
/// problem types not yet answered by [`ApiError`]) can answer, each listing its problem types.
fn responses(
    accepted: utoipa::openapi::Response,
    errors: Vec<ApiError>,
    extra: &[(u16, ProblemDoc)],
) -> utoipa::openapi::Responses {
    let mut by_status: BTreeMap<u16, Vec<ProblemDoc>> = BTreeMap::new();
    for error in errors {
        let (status, problem) = problem_doc(error);
        by_status.entry(status).or_default().push(problem);
    }
    for (status, problem) in extra {
        by_status.entry(*status).or_default().push(problem.clone());
    }
    let mut builder = ResponsesBuilder::new().response("202", accepted);
    for (status, problems) in by_status {
        builder = builder.response(status.to_string(), problem_response(&problems));
    }
    builder.build()
}

/// One problem type as documented: its `type`, `title`, the schema of its `errors` (if it lists any), the
/// headers it carries and an example body.
#[derive(Clone)]
struct ProblemDoc {
    /// The `type` member.
    kind: &'static str,
    /// The `title` member.
    title: &'static str,
    /// The `status` member.
    status: u16,
    /// The component its `errors` items are, when it has `errors`.
    errors: Option<&'static str>,
    /// Headers of the answer a client can use: `Retry-After`, `WWW-Authenticate`.
    headers: Vec<&'static str>,
    /// The body, as the producer renders it.
    example: Value,
}

/// How `error` is answered: its status and [`ProblemDoc`], from its real rendering.
fn problem_doc(error: ApiError) -> (u16, ProblemDoc) {
    let (status, kind, title) = error.parts();
    let errors = matches!(error, ApiError::Validation(_) | ApiError::InvalidEvent(_)).then_some("FieldError");
    let response = error.into_response();
    let headers = [header::RETRY_AFTER, header::WWW_AUTHENTICATE]
        .into_iter()
        .filter(|name| response.headers().contains_key(name))
        .map(|name| if name == header::RETRY_AFTER { "Retry-After" } else { "WWW-Authenticate" })
        .collect();
    let example = axum::body::to_bytes(response.into_body(), usize::MAX)
        .now_or_never()
        .and_then(Result::ok)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    (status.as_u16(), ProblemDoc { kind, title, status: status.as_u16(), errors, headers, example })
}

/// The 422 of an event whose `data` does not match its type's JSON Schema.
fn schema_violation_problem() -> (u16, ProblemDoc) {
    let (kind, title) = SCHEMA_VIOLATION;
    let example = json!({
        "type": kind, "title": title, "status": 422,
        "detail": "1 violation(s) of the JSON Schema of the event's type",
        "errors": [{"pointer": "/data/email", "message": "\"email\" is a required property"}]
    });
    (422, ProblemDoc { kind, title, status: 422, errors: Some("SchemaViolation"), headers: vec![], example })
}

/// A problem+json response whose body is one of `problems`.
fn problem_response(problems: &[ProblemDoc]) -> utoipa::openapi::Response {
    let schema = |problem: &ProblemDoc| -> RefOr<Schema> {
        let mut specific = ObjectBuilder::new()
            .property("type", string_enum([problem.kind]))
            .property("title", string_enum([problem.title]))
            .property("status", ObjectBuilder::new().schema_type(Type::Integer).enum_values(Some([problem.status])))
            .required("type");
        if let Some(item) = problem.errors {
            specific = specific
                .property("errors", ArrayBuilder::new().items(Ref::from_schema_name(item)).min_items(Some(1)))
                .required("errors");
        }
        Schema::AllOf(AllOfBuilder::new().item(Ref::from_schema_name("Problem")).item(specific.build()).build()).into()
    };
    let schema: RefOr<Schema> = match problems {
        [one] => schema(one),
        many => {
            Schema::OneOf(many.iter().fold(OneOfBuilder::new(), |one_of, problem| one_of.item(schema(problem))).build())
                .into()
        }
    };
    let titles: Vec<&str> = problems.iter().map(|p| p.kind).collect();
    let mut content = ContentBuilder::new().schema(Some(schema));
    content = content.examples_from_iter(problems.iter().map(|problem| {
        let name = problem.kind.rsplit('/').next().unwrap_or(problem.kind);
        (name, ExampleBuilder::new().summary(problem.title).value(Some(problem.example.clone())).build())
    }));
    let mut response = ResponseBuilder::new()
        .description(format!("Problem: {}", titles.join(", ")))
        .content(PROBLEM_JSON, content.build());
    let mut headers: Vec<&str> = problems.iter().flat_map(|p| p.headers.iter().copied()).collect();
    headers.sort_unstable();
    headers.dedup();
    for name in headers {
        let every = problems.iter().all(|p| p.headers.contains(&name));
        let (schema, description) = match name {
            "Retry-After" => (
                Schema::from(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).build()),
                "Seconds to wait before retrying",
            ),
            _ => (string_enum(["Bearer"]), "The authentication scheme to use: `Bearer`"),
        };
        let mut header = HeaderBuilder::new().schema(Some(schema)).description(Some(description));
        if !every {
            header = header.description(Some(format!("{description} (with some of these problems)")));
        }
        response = response.header(name, header.build());
    }
    response.build()
}

/// A JSON response with `schema` and `example`.
fn json_response(description: &str, schema: impl Into<RefOr<Schema>>, example: Value) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(schema)).example(Some(example)).build())
        .build()
}

// ---- schemas ---------------------------------------------------------------------------------------------------

/// The order of `POST /v1/orders`, with every rule [`crate::order`] checks.
fn order_request() -> Schema {
    let id = |description: &str| non_blank(MAX_ID_LEN, description);
    let customer = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("Who orders"))
        .property("id", id("The customer's id"))
        .property(
            "email",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::Custom("email".into())))
                .description(Some("The customer's e-mail address")),
        )
        .property(
            "phone",
            ObjectBuilder::new()
                .schema_type(SchemaType::Array(vec![Type::String, Type::Null]))
                .pattern(Some(r"^\+[1-9][0-9]{6,14}$"))
                .description(Some(
                    "Phone number in E.164 form: `+` and 7 to 15 digits, the first not 0; null is no number",
                )),
        )
        .required("id")
        .required("email");
    let item = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("sku", id("Stock keeping unit"))
        .property("quantity", whole_number(1, MAX_QUANTITY, "How many"))
        .property(
            "unit_price",
            whole_number(0, MAX_UNIT_PRICE, "Price of one, in the currency's minor units (cents for EUR)"),
        )
        .required("sku")
        .required("quantity")
        .required("unit_price");
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("An order. Members not listed here are ignored."))
        .property("customer", customer)
        .property(
            "items",
            ArrayBuilder::new()
                .items(item)
                .min_items(Some(1))
                .max_items(Some(MAX_ITEMS))
                .description(Some("What is ordered")),
        )
        .property(
            "currency",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(currency_codes()))
                .description(Some("ISO 4217 code of every price, upper case")),
        )
        .required("customer")
        .required("items")
        .required("currency")
        .examples([sample_order()])
        .build()
        .into()
}

/// A structured-mode CloudEvent `POST /v1/events` accepts, with the rules of [`validation`] and the event types
/// (and key attributes) of `events`.
fn cloud_event(events: &BTreeMap<String, EventRoute>) -> Schema {
    let mut keys: Vec<&str> = events.values().map(|route| route.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut event = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "A CloudEvents 1.0 event in structured mode. Attribute names are lower-case letters and digits; an \
             extension attribute is a string, a number or a boolean; string values are printable, within the \
             stated lengths (in bytes of UTF-8).",
        ))
        .property("specversion", string_enum([SPEC_VERSION]))
        .property("id", visible_ascii(validation::MAX_ID_BYTES))
        .property("source", visible_ascii(validation::MAX_NAME_BYTES))
        .property("type", string_enum(routed_types(events)))
        .property("subject", non_blank_text(validation::MAX_NAME_BYTES))
        .property("time", date_time())
        .property("datacontenttype", printable(validation::MAX_ATTRIBUTE_BYTES))
        .property("dataschema", printable(validation::MAX_ATTRIBUTE_BYTES))
        .property("data", any("The event's data, any JSON"))
        .property(
            "data_base64",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(BASE64))
                .description(Some("Binary data: base64, standard alphabet with padding (RFC 4648 §4)")),
        )
        .property_names(Some(
            ObjectBuilder::new().schema_type(Type::String).pattern(Some("^([a-z0-9]+|data_base64)$")).build(),
        ))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(extension_value()))))
        .required("specversion")
        .required("id")
        .required("source")
        .required("type");
    for key in keys {
        event = event.required(key);
        if !["id", "source", "type", "subject", "time", "datacontenttype", "dataschema"].contains(&key) {
            event = event.property(key, non_blank_text(validation::MAX_ATTRIBUTE_BYTES));
        }
    }
    event.build().into()
}

/// The value of an extension attribute.
fn extension_value() -> Schema {
    OneOfBuilder::new()
        .item(printable(validation::MAX_ATTRIBUTE_BYTES))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .build()
        .into()
}

/// An RFC 9457 problem document.
fn problem() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("An RFC 9457 problem document"))
        .property("type", text().description(Some("A URI reference naming the kind of problem")))
        .property("title", text().description(Some("Short summary of the kind of problem")))
        .property("status", ObjectBuilder::new().schema_type(Type::Integer).description(Some("The HTTP status")))
        .property("detail", text().description(Some("What went wrong with this request")))
        .property(
            "errors",
            ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(Type::Object))
                .description(Some("Each failing field (`FieldError`) or schema violation (`SchemaViolation`)")),
        )
        .required("type")
        .required("title")
        .required("status")
        .required("detail")
        .build()
        .into()
}

/// One violation of an event type's JSON Schema.
fn schema_violation() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "pointer",
            text().description(Some("RFC 6901 JSON Pointer to the value at fault in the event, e.g. `/data/email`")),
        )
        .property("message", text().description(Some("What is wrong with it")))
        .required("pointer")
        .required("message")
        .build()
        .into()
}

/// Base64 with the standard alphabet and padding, as the `base64` crate's standard engine decodes it (the bits
/// after the last whole byte are zero).
const BASE64: &str = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

/// Any JSON value.
fn any(description: &str) -> Schema {
    ObjectBuilder::new().schema_type(SchemaType::AnyValue).description(Some(description)).build().into()
}

/// A string.
fn text() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// A string that is one of `values`.
fn string_enum<I: IntoIterator<Item = V>, V: Into<Value>>(values: I) -> Schema {
    text().enum_values(Some(values)).build().into()
}

/// An RFC 3339 timestamp.
fn date_time() -> Schema {
    text().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))).build().into()
}

/// A whole number from `min` to `max`.
fn whole_number(min: u64, max: u64, description: &str) -> ObjectBuilder {
    let bound = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(bound(min)))
        .maximum(Some(bound(max)))
        .description(Some(description))
}

/// A string of `min` to `max` characters matching `pattern`.
fn constrained(min: usize, max: usize, pattern: impl Into<String>, description: Option<String>) -> Schema {
    let min = (min > 0).then_some(min);
    text().min_length(min).max_length(Some(max)).pattern(Some(pattern)).description(description).build().into()
}

/// 1 to `max` visible ASCII characters (`id`, `source`).
fn visible_ascii(max: usize) -> Schema {
    constrained(1, max, "^[!-~]+$", None)
}

/// Printable text: no control character (`max` bytes of UTF-8 at most).
fn printable(max: usize) -> Schema {
    constrained(0, max, PRINTABLE, Some(format!("Printable text, at most {max} bytes of UTF-8")))
}

/// Printable text with at least one character that is not white space.
fn non_blank_text(max: usize) -> Schema {
    let pattern = format!("^{PRINTABLE_CLASS}*{PRINTABLE_NOT_SPACE}{PRINTABLE_CLASS}*$");
    constrained(1, max, pattern, Some(format!("Printable text, not blank, at most {max} bytes of UTF-8")))
}

/// A header value in binary mode: printable, percent-encoded.
fn header_text(max: usize) -> Schema {
    let description =
        format!("Not blank, at most {max} bytes; printable ASCII here, other characters percent-encoded UTF-8");
    constrained(1, max, "^[ -$&-~]*[!-$&-~][ -$&-~]*$", Some(description))
}

/// A header value of `id` or `source` in binary mode: 1 to `max` visible ASCII characters (`%` only as a
/// percent-encoded one).
fn header_visible_ascii(max: usize) -> Schema {
    constrained(1, max, "^[!-$&-~]+$", None)
}

/// An id: not blank, at most `max` bytes.
fn non_blank(max: usize, description: &str) -> Schema {
    constrained(1, max, NOT_SPACE, Some(format!("{description}: not blank, at most {max} bytes of UTF-8")))
}

/// A character that is not white space as Rust's `str::trim` sees it (Unicode White_Space).
const NOT_SPACE: &str = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";
/// A character that is printable: not a control character (C0, DEL, C1) nor a noncharacter of the basic plane.
const PRINTABLE_CLASS: &str = r"[^\u0000-\u001F\u007F-\u009F\uFDD0-\uFDEF\uFFFE\uFFFF]";
/// A printable character that is not white space.
const PRINTABLE_NOT_SPACE: &str =
    r"[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\uFDD0-\uFDEF\uFFFE\uFFFF]";
/// Printable text from start to end.
const PRINTABLE: &str = r"^[^\u0000-\u001F\u007F-\u009F\uFDD0-\uFDEF\uFFFE\uFFFF]*$";

/// An object with the given required string properties.
fn object<const N: usize>(properties: [(&str, Schema); N]) -> Schema {
    let mut object = ObjectBuilder::new().schema_type(Type::Object);
    for (name, schema) in properties {
        object = object.property(name, schema).required(name);
    }
    object.build().into()
}

/// The event types `events` routes, sorted.
fn routed_types(events: &BTreeMap<String, EventRoute>) -> Vec<String> {
    let mut types: Vec<String> = events.values().flat_map(|route| route.types.iter().cloned()).collect();
    types.sort_unstable();
    types
}

/// Every ISO 4217 code `iso_currency` knows, sorted.
fn currency_codes() -> Vec<String> {
    let letters = || b'A'..=b'Z';
    letters()
        .flat_map(|a| letters().flat_map(move |b| letters().map(move |c| [a, b, c])))
        .filter_map(|code| {
            let code = std::str::from_utf8(&code).ok()?.to_owned();
            iso_currency::Currency::from_code(&code).map(|_| code)
        })
        .collect()
}

/// The order of the README.
fn sample_order() -> Value {
    json!({
        "customer": {"id": "c-1", "email": "ada@example.com", "phone": "+15550100"},
        "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": 1299}],
        "currency": "EUR"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/openapi.json`, from the producer's crate.
    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
    }

    #[test]
    fn the_committed_document_is_the_one_the_code_generates() {
        let defaults = courier::settings::Settings::load_with_env(None, Some(Default::default())).expect("defaults");
        let mut events = defaults.producer.events.clone();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for route in events.values_mut().filter(|route| !route.schema.is_empty()) {
            route.schema = root.join(&route.schema).display().to_string();
        }
        let topics = crate::routes::events::EventTopics::new(&events).expect("the default schemas");
        let generated = render(&document(&defaults.producer.events, topics.data_schemas()));
        let path = committed_path();
        if std::env::var_os("COURIER_WRITE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).expect("docs/openapi.json is writable");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json differs from the document the code generates; write it again with \
             `COURIER_WRITE_OPENAPI=1 cargo test --workspace --locked --lib -- openapi` and commit it"
        );
    }

    /// The document for event routes of `groups` (name, type, whether it has a data schema), and whether its
    /// `POST /v1/events` body is required and takes bytes.
    fn binary_mode(groups: &[(&str, &str, bool)]) -> (Value, bool, bool) {
        let (events, schemas) = routes(groups);
        let document = document(&events, &schemas);
        let body = document.pointer("/paths/~1v1~1events/post/requestBody").expect("a request body");
        let (required, bytes) = (body["required"] == true, body["content"].get("application/octet-stream").is_some());
        (document, required, bytes)
    }

    /// Event routes of `groups` (name, type), each with a data schema when `with_schema` says so.
    fn routes(groups: &[(&str, &str, bool)]) -> (BTreeMap<String, EventRoute>, BTreeMap<String, Arc<DataSchema>>) {
        let (mut events, mut schemas) = (BTreeMap::new(), BTreeMap::new());
        for (name, kind, with_schema) in groups {
            let route = EventRoute {
                types: vec![(*kind).to_owned()],
                topic: format!("{name}.topic"),
                key: "subject".to_owned(),
                schema: String::new(),
            };
            events.insert((*name).to_owned(), route);
            if *with_schema {
                let schema = DataSchema::compile(&json!({"type": "object", "required": ["id"]})).expect("a schema");
                schemas.insert((*name).to_owned(), Arc::new(schema));
            }
        }
        (events, schemas)
    }

    #[test]
    fn the_binary_mode_body_is_any_of_the_groups_data_schemas_when_every_group_has_one() {
        let (document, required, bytes) =
            binary_mode(&[("users", "user.registered", true), ("carts", "cart.updated", true)]);
        assert!(required && !bytes, "every event needs JSON data");
        let references: Vec<&str> =
            document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]["anyOf"]
                .as_array()
                .expect("anyOf")
                .iter()
                .filter_map(|r| r["$ref"].as_str())
                .collect();
        assert_eq!(references, ["#/components/schemas/EventData.carts", "#/components/schemas/EventData.users"]);
        assert_eq!(document["components"]["schemas"]["EventData.users"]["required"], json!(["id"]));
    }

    #[test]
    fn a_group_without_a_data_schema_leaves_the_binary_mode_body_open() {
        let (document, required, bytes) =
            binary_mode(&[("users", "user.registered", true), ("logs", "log.line", false)]);
        assert!(!required && bytes, "an event without data, or with bytes as data_base64, is valid");
        let json_body =
            &document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"];
        assert!(json_body.get("$ref").is_none() && json_body.get("anyOf").is_none(), "{json_body}");
        assert!(json_body["description"].as_str().is_some_and(|d| d.contains("when the group has one")));
    }
}
