//! The HTTP routes of the order API and the state they share.

pub mod health;
pub mod orders;

use std::time::Duration;

use crate::idempotency::IdempotencyStore;
use courier::publisher::Publisher;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Publishes order events.
    pub publisher: Publisher,
    /// Answers remembered by `Idempotency-Key`.
    pub idempotency: IdempotencyStore<orders::OrderAccepted>,
    /// Longest wait of a readiness probe for the broker.
    pub readiness_timeout: Duration,
    /// The cluster settings, to say why the broker cannot be used when readiness fails.
    pub kafka: courier::settings::KafkaSettings,
}
