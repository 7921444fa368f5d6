//! The payment consumer (group `payment`, topic `orders.created`): charges each order's total in its currency
//! (`POST {apis.payment.base_url}/charges`, `Idempotency-Key: payment:<event id>`), and says how it went:
//!
//! * a charge accepted → an `order.paid` event (the order, the amount, the charge id) to `orders.paid`, which
//!   the shipping consumer reads;
//! * a decline — 402, or 422 whose body carries a `decline_reason` — is a business outcome, not a failure: an
//!   `order.payment_failed` event (order id, reason, causing event id) to `orders.payment-failed`, which the
//!   inventory consumer reads to release the reservation.
//!
//! Both are keyed by order id, and the order event counts as finished only once the broker acknowledged
//! them (until then the charge is retried: the payment API answers a repeated key with its first answer).
//! Their ids derive from the order event's id, so a redelivered order publishes the same event again, which
//! its consumers' idempotency keys absorb.

use courier::delivery::{BuildError, Consumer, ConsumerSpec, Incoming, Outcome};
use courier::downstream::{self, ApiClient, ApiResponse, CallContext};
use courier::events::{OrderCreated, OrderPaid, PaymentFailed};
use courier::health::Health;
use courier::publisher::Publisher;
use courier::settings::Settings;
use courier::telemetry::metrics::Label;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::order_topics::OrderTopics;

/// The `source` of the events this consumer publishes.
pub const SOURCE: &str = courier::events::PAYMENT_SOURCE;

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

/// What the payment API answers (the fields the consumer reads).
#[derive(Debug, Default, Deserialize)]
pub struct ChargeResponse {
    /// The charge's id, on success.
    pub charge_id: Option<String>,
    /// Why the charge was declined, on a decline.
    pub decline_reason: Option<String>,
}

/// Maps order events to charges, and their outcomes to `order.paid` and `order.payment_failed` events.
#[derive(Clone)]
pub struct Payment {
    /// Client of the payment API.
    api: ApiClient,
    /// Publishes the outcomes.
    publisher: Publisher,
    /// Where `order.paid` goes (`topics.orders_paid`).
    paid: Label,
    /// Where `order.payment_failed` goes (`topics.payment_failed`).
    failed: Label,
}

impl Consumer for Payment {
    const NAME: &'static str = "payment";

    /// New orders in; their outcomes out.
    fn spec(settings: &Settings) -> ConsumerSpec {
        let t = &settings.topics;
        ConsumerSpec::reads(settings, Self::NAME, [t.orders_created()])
            .publishing([t.orders_paid(), t.payment_failed()])
    }

    fn build(settings: &Settings, health: &Health) -> Result<Self, BuildError> {
        Ok(Self {
            api: ApiClient::new(Self::NAME, settings.apis.get(Self::NAME)?, health)?,
            publisher: Publisher::new(settings, settings.topics.orders_paid(), Self::NAME)?,
            paid: Label::from(settings.topics.orders_paid()),
            failed: Label::from(settings.topics.payment_failed()),
        })
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
        let call = CallContext::for_event(Self::NAME, incoming);
        let result = self.api.send_json(Method::POST, "charges", &body, &call).await;
        let answer: ChargeResponse = result.as_ref().ok().and_then(ApiResponse::json).unwrap_or_default();
        let (id, cause) = (order.order_id.clone(), incoming.event.id.clone());
        if let Some(reason) = result.as_ref().ok().and_then(|r| decline_reason(r, answer.decline_reason)) {
            let failed = PaymentFailed { order_id: id.clone(), reason: reason.clone(), causing_event_id: cause };
            return self.publisher.publish_caused(&self.failed, incoming, SOURCE, &id, failed).await.on_done(
                || tracing::warn!(order_id = %id, %reason, "payment declined: order.payment_failed published"),
            );
        }
        let charged = downstream::classify(&result);
        if charged != Outcome::Done {
            return charged;
        }
        let (amount, currency) = (order.total, order.currency.clone());
        let paid = OrderPaid::of(order, answer.charge_id, cause);
        self.publisher
            .publish_caused(&self.paid, incoming, SOURCE, &id, paid)
            .await
            .on_done(|| tracing::debug!(order_id = %id, amount, %currency, "payment charged: order.paid published"))
    }
}

/// The decline reason, when the payment API declined the charge: 402 (with its `decline_reason`, or
/// "declined"), or 422 with a `decline_reason`.
pub fn decline_reason(response: &ApiResponse, reason: Option<String>) -> Option<String> {
    match response.status {
        StatusCode::PAYMENT_REQUIRED => Some(reason.unwrap_or_else(|| "declined".to_owned())),
        StatusCode::UNPROCESSABLE_ENTITY => reason,
        _ => None,
    }
}
