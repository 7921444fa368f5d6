//! The API's errors and their RFC 9457 problem+json rendering. Internal details (broker errors) are
//! logged, never sent to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Content type of a problem answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path of the field in the request, e.g. `items[0].quantity`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// `field` is wrong because of `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// One way an event's `data` does not match the JSON Schema of its type (`producer.events.<name>.schema`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaViolation {
    /// RFC 6901 JSON Pointer to the value at fault in the event as a structured-mode CloudEvent (in binary mode
    /// too), e.g. `/data/email`; for a missing property, the pointer of that property.
    pub pointer: String,
    /// What is wrong with it, without its value.
    pub message: String,
}

impl SchemaViolation {
    /// The value at `pointer` is wrong because of `message`.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self { pointer: pointer.into(), message: message.into() }
    }
}

/// Everything that can go wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON.
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The body is larger than `producer.max_body_bytes`.
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The content type is not JSON.
    #[error("the request content type must be application/json, not {0:?}")]
    UnsupportedMediaType(String),
    /// `POST /v1/events` got neither a structured nor a binary-mode CloudEvent.
    #[error(
        "send a CloudEvent: structured (Content-Type: application/cloudevents+json) or binary mode (ce-specversion, \
         ce-id, ce-source and ce-type headers, the data as the body); not {0:?}"
    )]
    NotACloudEvent(String),
    /// The JSON does not describe a valid order.
    #[error("the order is not valid")]
    Validation(Vec<FieldError>),
    /// The request is not a CloudEvent `POST /v1/events` accepts (an attribute missing or wrong, a type with
    /// no topic in `producer.events`).
    #[error("the event is not valid")]
    InvalidEvent(Vec<FieldError>),
    /// The event's `data` does not match the JSON Schema of its type (`producer.events.<name>.schema`), or is
    /// not JSON where its type has one.
    #[error("the event's data does not match its schema")]
    SchemaViolation(Vec<SchemaViolation>),
    /// The `Idempotency-Key` header is unusable or was used before for a different request.
    #[error("{0}")]
    IdempotencyKey(String),
    /// No API key was presented while `producer.api_keys` requires one.
    #[error("this API needs an API key: send it as `Authorization: Bearer <key>` or `X-Api-Key: <key>`")]
    Unauthenticated,
    /// The API key presented is not one of `producer.api_keys`.
    #[error("the API key is not valid")]
    Forbidden,
    /// The request's body was still being read when `producer.request_timeout_ms` ran out (sent too slowly).
    #[error("the request took longer than the API allows (producer.request_timeout_ms): send the body at once")]
    RequestTimeout,
    /// Too many requests are being served at once (`producer.max_concurrent_requests`).
    #[error("the order API is serving as many requests as it may at once: retry shortly")]
    Overloaded,
    /// The broker did not acknowledge the event in time.
    #[error("the event could not be published: the broker did not acknowledge it in time")]
    BrokerUnavailable {
        /// Seconds the client should wait before retrying.
        retry_after_secs: u64,
    },
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize)]
struct Problem<'a> {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    kind: &'a str,
    /// Short summary of the kind of problem.
    title: &'a str,
    /// The HTTP status.
    status: u16,
    /// What went wrong with this request.
    detail: String,
    /// The failing fields, for validation problems; the violations, for a schema violation.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<ProblemErrors<'a>>,
}

/// The `errors` member of a problem document.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ProblemErrors<'a> {
    /// `{field, message}` per failing field.
    Fields(&'a [FieldError]),
    /// `{pointer, message}` per violation of an event type's schema.
    Schema(&'a [SchemaViolation]),
}

impl ApiError {
    /// The status, problem `type` and `title` of this error.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "/problems/malformed-json", "Malformed JSON"),
            ApiError::TooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "/problems/body-too-large", "Request body too large")
            }
            ApiError::UnsupportedMediaType(_) | ApiError::NotACloudEvent(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "/problems/unsupported-media-type", "Unsupported media type")
            }
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation", "Invalid order"),
            ApiError::InvalidEvent(_) => (StatusCode::UNPROCESSABLE_ENTITY, "/problems/invalid-event", "Invalid event"),
            ApiError::SchemaViolation(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "/problems/schema-violation", "Event data does not match its schema")
            }
            ApiError::IdempotencyKey(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "/problems/idempotency-key", "Unusable Idempotency-Key")
            }
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "/problems/unauthenticated", "API key required"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "/problems/forbidden", "API key not valid"),
            ApiError::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "/problems/request-timeout", "Request timeout"),
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "/problems/overloaded", "Order API overloaded"),
            ApiError::BrokerUnavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "/problems/broker-unavailable", "Event broker unavailable")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.parts();
        let (errors, detail) = match &self {
            ApiError::Validation(errors) | ApiError::InvalidEvent(errors) => {
                (Some(ProblemErrors::Fields(errors)), format!("{} field(s) failed validation", errors.len()))
            }
            ApiError::SchemaViolation(violations) => (
                Some(ProblemErrors::Schema(violations)),
                format!("{} violation(s) of the JSON Schema of the event's type", violations.len()),
            ),
            _ => (None, self.to_string()),
        };
        let problem = Problem { kind, title, status: status.as_u16(), detail, errors };
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match self {
            ApiError::BrokerUnavailable { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            ApiError::Overloaded => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1));
            }
            ApiError::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // The rest of the body may not have been read (see `extract`): the connection cannot carry another
            // request, and saying so lets the client know before it tries.
            ApiError::TooLarge { .. } => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}
