//! `POST /v1/orders`: validate, publish `order.created`, answer 202 once the broker acknowledged.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use courier::events::{CloudEvent, PRODUCER_SOURCE};
use courier::telemetry::{metrics, propagation};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::idempotency::{self, Remembered};
use crate::order;
use courier::publisher::PublishError;

/// Request header that makes a retried request answer the same.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Response header set when the answer is a remembered one.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The 202 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAccepted {
    /// The order's id (the record key).
    pub order_id: String,
    /// The `order.created` event's id.
    pub event_id: String,
    /// Partition the event was written to.
    pub partition: i32,
    /// Offset of the event in its partition.
    pub offset: i64,
}

/// Handles `POST /v1/orders`.
pub async fn create_order(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => {
            let key = value.to_str().map_err(|_| ApiError::IdempotencyKey("Idempotency-Key must be ASCII".into()))?;
            idempotency::validate_key(key).map_err(ApiError::IdempotencyKey)?;
            // Scoped per API key: two clients using the same key get two orders, never each other's answer.
            Some(caller.scope(key))
        }
    };
    let fingerprint = key.as_ref().map(|_| idempotency::fingerprint(&body));
    let valid = order::parse(body)?;
    let (order_id, event_id) = idempotency::ids_for(key.as_deref());
    // A child of the request's server span (see `access_log`), so it shares the caller's trace.
    let span =
        tracing::info_span!("order", order_id = %order_id, event_id = %event_id, trace_id = tracing::field::Empty);
    span.record("trace_id", propagation::trace_id(&span).as_str());

    let publish = async {
        let now = Utc::now();
        let data = valid.into_event(order_id.to_string(), now);
        let event = CloudEvent::new(event_id, PRODUCER_SOURCE, now, Some(order_id.to_string()), data);
        let published = state.publisher.publish(&event.data.order_id, &event).await.map_err(|error| {
            tracing::warn!(%error, "order not accepted: the event was not acknowledged by the broker");
            error
        })?;
        tracing::info!(
            partition = published.partition,
            offset = published.offset,
            total = event.data.total,
            "order accepted and published"
        );
        Ok::<_, PublishError>(Remembered {
            fingerprint: fingerprint.unwrap_or_default(),
            answer: OrderAccepted {
                order_id: order_id.to_string(),
                event_id: event_id.to_string(),
                partition: published.partition,
                offset: published.offset,
            },
        })
    }
    .instrument(span.clone());

    let retry_after_secs = state.publisher.timeout().as_secs().max(1);
    let (remembered, replayed) = match (&key, fingerprint) {
        (Some(key), Some(fingerprint)) => {
            let mut fresh = false;
            let remembered = state
                .idempotency
                .get_or_try_insert(key, async {
                    fresh = true;
                    publish.await
                })
                .await
                .map_err(|_| ApiError::BrokerUnavailable { retry_after_secs })?;
            if remembered.fingerprint != fingerprint {
                return Err(ApiError::IdempotencyKey(
                    "this Idempotency-Key was used before with a different request body".into(),
                ));
            }
            if !fresh {
                span.in_scope(|| tracing::info!("repeated Idempotency-Key: answering with the first response"));
                metrics::idempotent_replay();
            }
            (remembered, !fresh)
        }
        _ => (publish.await.map_err(|_| ApiError::BrokerUnavailable { retry_after_secs })?, false),
    };

    let mut response = (StatusCode::ACCEPTED, Json(remembered.answer)).into_response();
    if replayed {
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}
