//! The payment consumer (group `payment`, topic `orders.created`): charges each order's total in its currency
//! (`POST {apis.payment.base_url}/charges`, `Idempotency-Key: payment:<event id>`).
//!
//! A decline — 402, or 422 whose body carries a `decline_reason` — is a business outcome, not a failure: the
//! consumer publishes an `order.payment_failed` event (order id, reason, causing event id) to
//! `orders.payment-failed`, keyed by order id, and only then counts the order event as finished. Its event id
//! is derived from the order event's id, so a redelivered decline publishes the same event again, which the
//! inventory API absorbs through `inventory-release:<event id>`.

use chrono::Utc;
use courier::delivery::{BuildError, Consumer, ConsumerSpec, Failure, Handler, Incoming, Outcome};
use courier::downstream::{self, ApiClient, ApiResponse, CallContext};
use courier::events::{CloudEvent, OrderCreated, PaymentFailed};
use courier::health::Health;
use courier::publisher::Publisher;
use courier::settings::Settings;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use uuid::Uuid;

/// The consumer's name: its consumer group and the prefix of its idempotency keys.
pub const NAME: &str = "payment";
/// The `source` of the events this consumer publishes.
pub const SOURCE: &str = "/courier/payment";
/// Namespace of the ids of `order.payment_failed` events (derived from the causing event's id).
const PAYMENT_FAILED_NAMESPACE: Uuid = Uuid::from_u128(0x2c1b_7e4a_9d3f_4e2a_8b6c_5d4e_3f2a_1b0c);

/// The body of a charge request.
#[derive(Debug, Serialize)]
pub struct ChargeRequest<'a> {
    /// The order being paid.
    pub order_id: &'a str,
    /// Who pays.
    pub customer_id: &'a str,
    /// The order total in minor units.
    pub amount: u64,
    /// ISO 4217 currency code.
    pub currency: &'a str,
}

/// Maps order events to charges, and declines to `order.payment_failed` events.
#[derive(Clone)]
pub struct Payment {
    /// Client of the payment API.
    api: ApiClient,
    /// Publishes `order.payment_failed`.
    publisher: Publisher,
}

impl Consumer for Payment {
    const NAME: &'static str = NAME;

    /// New orders in; declines out, to `topics.payment_failed`.
    fn spec(settings: &Settings) -> ConsumerSpec {
        ConsumerSpec {
            group: settings.kafka.group_id(NAME),
            topics: vec![settings.topics.orders_created.clone()],
            publishes: vec![settings.topics.payment_failed.clone()],
        }
    }

    fn build(settings: &Settings, health: &Health) -> Result<Self, BuildError> {
        Ok(Self {
            api: ApiClient::new(NAME, settings.apis.get(NAME)?, health)?,
            publisher: Publisher::new(settings, &settings.topics.payment_failed, NAME)?,
        })
    }
}

impl Payment {
    async fn declined(&self, incoming: &Incoming, order: &OrderCreated, reason: String) -> Outcome {
        let id = Uuid::new_v5(&PAYMENT_FAILED_NAMESPACE, incoming.event.id.as_bytes());
        let data =
            PaymentFailed { order_id: order.order_id.clone(), reason, causing_event_id: incoming.event.id.clone() };
        let event = CloudEvent::new(id, SOURCE, Utc::now(), Some(order.order_id.clone()), data);
        match self.publisher.publish(&order.order_id, &event).await {
            Ok(published) => {
                tracing::warn!(
                    order_id = %order.order_id,
                    reason = %event.data.reason,
                    payment_failed.id = %event.id,
                    partition = published.partition,
                    offset = published.offset,
                    "payment declined: order.payment_failed published for the compensation"
                );
                Outcome::Done
            }
            Err(error) => {
                Outcome::Retry(Failure::new("publish", format!("order.payment_failed not acknowledged: {error}")))
            }
        }
    }
}

/// The decline reason, when the payment API declined the charge (402, or 422 with a `decline_reason`).
pub fn decline_reason(response: &ApiResponse) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    let reason = body["decline_reason"].as_str().map(str::to_owned);
    match response.status {
        StatusCode::PAYMENT_REQUIRED => Some(reason.unwrap_or_else(|| "declined".to_owned())),
        StatusCode::UNPROCESSABLE_ENTITY => reason,
        _ => None,
    }
}

impl Handler for Payment {
    fn name(&self) -> &str {
        NAME
    }

    async fn handle(&self, incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
        let order: OrderCreated = match incoming.data() {
            Ok(order) => order,
            Err(outcome) => return outcome,
        };
        let body = ChargeRequest {
            order_id: &order.order_id,
            customer_id: &order.customer.id,
            amount: order.total,
            currency: &order.currency,
        };
        let call = CallContext::for_event(NAME, incoming);
        let result = self.api.send_json(Method::POST, "charges", &body, &call).await;
        if let Some(reason) = result.as_ref().ok().and_then(decline_reason) {
            return self.declined(incoming, &order, reason).await;
        }
        downstream::classify(&result).on_done(|| {
            tracing::info!(order_id = %order.order_id, amount = order.total, currency = %order.currency, "payment charged")
        })
    }
}
