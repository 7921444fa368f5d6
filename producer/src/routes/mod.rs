//! The HTTP routes of the order API and the state they share.

pub mod events;
pub mod health;
pub mod orders;

use std::time::Duration;

use crate::idempotency::IdempotencyStore;
use courier::publisher::Publisher;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Publishes order events (and, to their topics, those of `POST /v1/events`).
    pub publisher: Publisher,
    /// Answers of `POST /v1/orders` remembered by `Idempotency-Key`.
    pub idempotency: IdempotencyStore<orders::OrderAccepted>,
    /// Where `POST /v1/events` publishes each event type.
    pub events: events::EventTopics,
    /// Answers of `POST /v1/events` remembered by `Idempotency-Key`.
    pub event_idempotency: IdempotencyStore<events::EventAccepted>,
    /// Longest wait of a readiness probe for the broker.
    pub readiness_timeout: Duration,
    /// The cluster settings, to say why the broker cannot be used when readiness fails.
    pub kafka: courier::settings::KafkaSettings,
}
