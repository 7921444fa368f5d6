//! courier's order API.
//!
//! `POST /v1/orders` validates an order, publishes an `order.created` CloudEvent to Kafka with an idempotent
//! producer (acks=all) and answers 202 only after the broker acknowledged it. Bad input gets an RFC 9457
//! problem+json answer and nothing is published.
//!
//! * [`startup`]: [`startup::Application`] builds the server from settings (port 0 in tests) and runs it.
//! * [`access_log`]: the server span, access log line and request metrics of every request.
//! * [`server`]: serving connections: idle connections closed, a cap on open connections, graceful shutdown
//!   bounded in time.
//! * [`request_timeout`]: a request's time bound, answered by what it was doing (408, 503 or 413).
//! * [`auth`]: API keys (`producer.api_keys`): 401 without one, 403 with a wrong one.
//! * [`routes`]: the HTTP handlers: orders, health and readiness.
//! * [`order`]: the order request, its validation and the event it becomes.
//! * [`data_schema`]: the JSON Schemas of event data (`producer.events.<name>.schema`), and the violations of
//!   an event's data.
//! * [`extract`]: reading a JSON body (content type, size limit, syntax) into problem-aware errors.
//! * [`idempotency`]: the `Idempotency-Key` memory that makes a retried request answer the same.
//! * [`error`]: the API's error type and its problem+json rendering.
//! * [`openapi`]: the API's OpenAPI 3.1 document, generated from the code and served at `/openapi.json`.

pub mod access_log;
pub mod auth;
pub mod data_schema;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod openapi;
pub mod order;
pub mod request_timeout;
pub mod routes;
pub mod server;
pub mod startup;
