//! `POST /v1/orders`: validate, publish `order.created`, answer 202 once the broker acknowledged.

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use courier::events::{CloudEvent, PRODUCER_SOURCE};
use courier::publisher::PublishError;
use courier::telemetry::propagation;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::idempotency;
use crate::order;
use crate::request_timeout::RequestPhase;

pub use crate::idempotency::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};

/// The 202 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    Extension(phase): Extension<RequestPhase>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let key = idempotency::request_key(&headers, &caller)?;
    let fingerprint = key.as_ref().map_or(0, |_| idempotency::fingerprint(&body));
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
        Ok::<_, PublishError>(OrderAccepted {
            order_id: order_id.to_string(),
            event_id: event_id.to_string(),
            partition: published.partition,
            offset: published.offset,
        })
    }
    .instrument(span.clone());
    let retry_after_secs = state.publisher.timeout().as_secs().max(1);
    phase.publishing();
    let (answer, replayed) =
        idempotency::once(&state.idempotency, key.as_deref(), fingerprint, publish, retry_after_secs)
            .instrument(span)
            .await?;
    Ok(idempotency::accepted(answer, replayed))
}
