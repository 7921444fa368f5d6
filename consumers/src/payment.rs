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

use courier::delivery::{BuildError, Consumer, ConsumerSpec, Handler, Incoming, Outcome};
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

/// The payment consumer's declaration: it reads new orders, calls the payment API and publishes the outcomes
/// ([`PaymentHandler`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Payment;

impl Payment {
    /// Its name: its consumer group, its API, the prefix of its idempotency keys and its producer's client id.
    pub const NAME: &'static str = "payment";
}

impl Consumer for Payment {
    type Handler = PaymentHandler;

    fn name(&self) -> &str {
        Self::NAME
    }

    /// New orders in; their outcomes out.
    fn spec(&self, settings: &Settings) -> ConsumerSpec {
        let t = &settings.topics;
        ConsumerSpec::reads(settings, Self::NAME, [t.orders_created()])
            .publishing([t.orders_paid(), t.payment_failed()])
    }

    fn build(&self, settings: &Settings, health: &Health) -> Result<PaymentHandler, BuildError> {
        Ok(PaymentHandler {
            api: ApiClient::new(Self::NAME, settings.apis.get(Self::NAME)?, health)?,
            publisher: Publisher::new(settings, settings.topics.orders_paid(), Self::NAME)?,
            paid: Label::from(settings.topics.orders_paid()),
            failed: Label::from(settings.topics.payment_failed()),
        })
    }
}

/// Maps order events to charges, and their outcomes to `order.paid` and `order.payment_failed` events.
#[derive(Clone)]
pub struct PaymentHandler {
    /// Client of the payment API.
    api: ApiClient,
    /// Publishes the outcomes.
    publisher: Publisher,
    /// Where `order.paid` goes (`topics.orders_paid`).
    paid: Label,
    /// Where `order.payment_failed` goes (`topics.payment_failed`).
    failed: Label,
}

impl Handler for PaymentHandler {
    async fn handle(&self, incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
        match charge(&self.api, incoming).await {
            Charge::Paid(paid) => {
                let (id, amount, currency) = (paid.order_id.clone(), paid.amount, paid.currency.clone());
                self.publisher.publish_caused(&self.paid, incoming, SOURCE, &id, paid).await.on_done(
                    || tracing::debug!(order_id = %id, amount, %currency, "payment charged: order.paid published"),
                )
            }
            Charge::Declined(failed) => {
                let (id, reason) = (failed.order_id.clone(), failed.reason.clone());
                self.publisher.publish_caused(&self.failed, incoming, SOURCE, &id, failed).await.on_done(
                    || tracing::warn!(order_id = %id, %reason, "payment declined: order.payment_failed published"),
                )
            }
            Charge::Ended(outcome) => outcome,
        }
    }
}

/// What charging an order came to: the event to publish, or the outcome that ends the attempt.
#[derive(Debug)]
enum Charge {
    /// The charge was accepted: `order.paid` is published.
    Paid(OrderPaid),
    /// The charge was declined (a business outcome): `order.payment_failed` is published.
    Declined(PaymentFailed),
    /// Nothing to publish: the event is not an order, or the call failed (to retry, or for good).
    Ended(Outcome),
}

/// Charges the order `incoming` carries through the payment `api` (`POST charges`, `Idempotency-Key:
/// payment:<event id>`), and says what the answer means.
async fn charge(api: &ApiClient, incoming: &Incoming) -> Charge {
    let order: OrderCreated = match incoming.data() {
        Ok(order) => order,
        Err(outcome) => return Charge::Ended(outcome),
    };
    let body = ChargeRequest {
        order_id: &order.order_id,
        customer_id: &order.customer.id,
        amount: order.total,
        currency: &order.currency,
    };
    let call = CallContext::for_event(Payment::NAME, incoming);
    let result = api.send_json(Method::POST, "charges", &body, &call).await;
    let answer: ChargeResponse = result.as_ref().ok().and_then(ApiResponse::json).unwrap_or_default();
    let cause = incoming.id().to_owned();
    if let Some(reason) = result.as_ref().ok().and_then(|r| decline_reason(r, answer.decline_reason)) {
        return Charge::Declined(PaymentFailed { order_id: order.order_id, reason, causing_event_id: cause });
    }
    match downstream::classify(&result) {
        Outcome::Done => Charge::Paid(OrderPaid::of(order, answer.charge_id, cause)),
        failed => Charge::Ended(failed),
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

#[cfg(test)]
mod tests {
    use courier::events::PRODUCER_SOURCE;
    use serde_json::json;

    use super::*;
    use crate::testing::{MockApi, Received, event, order};

    /// A client of the payment API, calling `api` (the API client `Payment` builds; the publisher it builds
    /// beside needs a broker, and `charge` says what it would publish).
    fn client(api: &MockApi) -> ApiClient {
        let settings = api.settings(&[Payment::NAME], &[]);
        ApiClient::new(Payment::NAME, settings.apis.get(Payment::NAME).expect("configured"), &Health::default())
            .expect("a client")
    }

    #[tokio::test]
    async fn an_accepted_charge_is_an_order_paid_caused_by_the_order() {
        let api = MockApi::answering(201, json!({"charge_id": "ch-1", "status": "captured"})).await;
        let (incoming, id) = event("orders.created", PRODUCER_SOURCE, order());
        let charged = charge(&client(&api), &incoming).await;
        let sent = api.only().await;
        assert_eq!((&sent.method, sent.path()), (&Method::POST, "/payment/charges"));
        assert_eq!(sent.header("idempotency-key"), Some(format!("payment:{id}").as_str()));
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(sent.json(), json!({"order_id": "o/1", "customer_id": "c-1", "amount": 2599, "currency": "EUR"}));
        let order = order();
        let paid = OrderPaid {
            order_id: "o/1".into(),
            customer: order.customer,
            items: order.items,
            amount: 2599,
            currency: "EUR".into(),
            charge_id: Some("ch-1".into()),
            causing_event_id: id,
        };
        match charged {
            Charge::Paid(published) => assert_eq!(published, paid),
            other => panic!("an accepted charge must publish order.paid, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_decline_is_an_order_payment_failed_with_its_reason() {
        for (status, answer, reason) in [
            (402, json!({"decline_reason": "insufficient_funds"}), "insufficient_funds"),
            (402, json!({}), "declined"),
            (422, json!({"decline_reason": "card_expired"}), "card_expired"),
        ] {
            let api = MockApi::answering(status, answer).await;
            let (incoming, id) = event("orders.created", PRODUCER_SOURCE, order());
            let failed = PaymentFailed { order_id: "o/1".into(), reason: reason.into(), causing_event_id: id };
            match charge(&client(&api), &incoming).await {
                Charge::Declined(published) => assert_eq!(published, failed, "{status}"),
                other => panic!("{status}: a decline must publish order.payment_failed, got {other:?}"),
            }
            assert_eq!(api.only().await.path(), "/payment/charges");
        }
    }

    #[tokio::test]
    async fn a_refusal_that_is_no_decline_is_dead_lettered_and_an_outage_retried() {
        for (status, answer, class) in [
            (422, json!({"error": "amount must be positive"}), "permanent"),
            (400, json!({"error": "bad request"}), "permanent"),
            (503, json!({}), "retry"),
        ] {
            let api = MockApi::answering(status, answer).await;
            let (incoming, _) = event("orders.created", PRODUCER_SOURCE, order());
            match charge(&client(&api), &incoming).await {
                Charge::Ended(outcome) => assert_eq!(outcome.class(), class, "{status}: {outcome:?}"),
                other => panic!("{status}: nothing may be published, got {other:?}"),
            }
        }
    }
}
