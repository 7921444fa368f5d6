//! The time bound of a request (`producer.request_timeout_ms`) and what its end answers, by what the request was
//! doing when its time ran out ([`RequestPhase`]):
//!
//! * still reading its body (a client sending it too slowly): 408, and the connection goes with it;
//! * publishing (the broker has not acknowledged the event yet): 503 with `Retry-After`, the answer of a publish
//!   that timed out, so that an order the broker did not take is always a 503, whichever timer fires first;
//! * discarding the rest of a body over `producer.max_body_bytes`: the 413 it was going to get.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// What a request is doing, shared between its handler and the timer (a request extension).
#[derive(Debug, Clone)]
pub struct RequestPhase(Arc<AtomicU8>);

impl Default for RequestPhase {
    /// Reading the request.
    fn default() -> Self {
        Self(Arc::new(AtomicU8::new(READING)))
    }
}

/// Reading the request.
const READING: u8 = 0;
/// Waiting for the broker's acknowledgement.
const PUBLISHING: u8 = 1;
/// Reading and discarding the rest of a body over the limit.
const DISCARDING: u8 = 2;

impl RequestPhase {
    /// The request is read: its event is being published.
    pub fn publishing(&self) {
        self.0.store(PUBLISHING, Ordering::Release);
    }

    /// The body is over the limit: the rest of it is being discarded before the 413.
    pub fn discarding(&self) {
        self.0.store(DISCARDING, Ordering::Release);
    }

    fn get(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }
}

/// The bound and what its end answers with.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout {
    /// `producer.request_timeout_ms`.
    pub timeout: Duration,
    /// The `Retry-After` of a 503 when the publish was still pending (as a publish that timed out gets).
    pub retry_after_secs: u64,
    /// `producer.max_body_bytes`, named by a 413.
    pub body_limit: usize,
}

/// Runs the request within its time bound; past it, answers by its [`RequestPhase`].
pub async fn limit(State(bound): State<RequestTimeout>, mut request: Request, next: Next) -> Response {
    let phase = RequestPhase::default();
    request.extensions_mut().insert(phase.clone());
    let Ok(response) = tokio::time::timeout(bound.timeout, next.run(request)).await else {
        let error = match phase.get() {
            PUBLISHING => {
                tracing::warn!("event not accepted: the request timed out before the broker acknowledged it");
                ApiError::BrokerUnavailable { retry_after_secs: bound.retry_after_secs }
            }
            DISCARDING => ApiError::TooLarge { limit: bound.body_limit },
            _ => ApiError::RequestTimeout,
        };
        return error.into_response();
    };
    response
}
