//! Calling a downstream API: one pooled HTTP client per API, its circuit breaker and credentials, and the one
//! place where HTTP results are classified into delivery outcomes.
//!
//! * [`client`]: the [`ApiClient`]: the request, with its idempotency key, trace context and credentials,
//!   through the breaker and the rate limit; counted and timed in the call metrics.
//! * [`classification`]: what a response or a failed call means for the event: done, retry, permanent, by
//!   default or by the API's [`StatusPolicy`] (its own status lists, retry budget and abort header).
//! * [`breaker`]: the circuit breaker of each API.
//! * [`concurrency`]: how many calls each API gets at once: a limit that adapts to the API's latency and
//!   push-back, up to `max_in_flight`.
//! * [`signing`]: the signature every call to an API carries when it asks for one: Standard Webhooks, or an
//!   HMAC of the API's own scheme.
//! * [`auth`]: the API's credentials (bearer, a header, basic or OAuth 2.0 client credentials).
//! * [`oauth2`]: OAuth 2.0 client credentials: the token cached, one fetch at a time, a failed fetch
//!   remembered for a backoff, a 401 forgetting only the token it refused.
//!
//! Every call carries `Idempotency-Key: <consumer>:<event id>` (the same on every attempt, restart and
//! rebalance, so the API can absorb a redelivery) and the W3C `traceparent` of the event's trace, the API's
//! credentials ([`auth`]: bearer, a header, basic or OAuth 2.0 client credentials) and, when the API asks for
//! them, signature headers ([`signing`]). An API may have its own CA and a client certificate (mutual TLS).
//! Each API has its own circuit breaker, concurrency limit and, when set, rate limit, layered as: breaker →
//! rate limit → concurrency limit → request (with its timeouts).

pub mod auth;
pub mod breaker;
pub mod classification;
pub mod client;
pub mod concurrency;
pub mod oauth2;
pub mod signing;

pub use classification::{
    ABORTED, AbortSignal, BODY_EXCERPT_BYTES, StatusClass, StatusPolicy, classify, classify_batch, classify_error,
    classify_response, excerpt, is_transient_status, retry_after,
};
pub use client::{
    ApiClient, ApiResponse, CIRCUIT_OPEN, CallContext, CallError, CallErrorKind, ClientError, IDEMPOTENCY_KEY,
    MAX_RESPONSE_BYTES, Payload, path_segment,
};
