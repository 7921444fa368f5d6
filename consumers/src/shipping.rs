//! The shipping consumer (group `shipping`, topic `orders.paid`): creates a shipping label for each paid order
//! (`POST {apis.shipping.base_url}/labels`, `Idempotency-Key: shipping:<event id>`).
//!
//! Why `order.paid`: a label must be created only for an order whose charge succeeded, and only the payment
//! consumer knows that. Reading `orders.created` would ship unpaid orders (or need the payment API's state:
//! a race with the charge); reading the payment API's answers is not possible from another group. So the
//! payment consumer publishes `order.paid` once the charge was accepted, with what fulfilment needs (the
//! customer and the items), and this consumer needs nothing else.

use courier::delivery::{BuildError, Consumer, ConsumerSpec, Handler, Incoming, Outcome};
use courier::downstream::{self, ApiClient, CallContext};
use courier::events::OrderPaid;
use courier::health::Health;
use courier::settings::Settings;
use reqwest::Method;
use serde::Serialize;

use crate::order_topics::OrderTopics;

/// The body of a label request.
#[derive(Debug, Serialize)]
pub struct LabelRequest<'a> {
    /// The order shipped.
    pub order_id: &'a str,
    /// Whom to ship to (the shipping API holds the customer's address).
    pub customer_id: &'a str,
    /// What to ship: `(sku, quantity)` lines.
    pub items: Vec<LabelItem<'a>>,
}

/// One line of a shipment.
#[derive(Debug, Serialize)]
pub struct LabelItem<'a> {
    /// Stock keeping unit.
    pub sku: &'a str,
    /// How many units.
    pub quantity: u32,
}

/// The shipping consumer's declaration: it reads paid orders and calls the shipping API
/// ([`ShippingHandler`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Shipping;

impl Shipping {
    /// Its name: its consumer group, its API and the prefix of its idempotency keys.
    pub const NAME: &'static str = "shipping";
}

impl Consumer for Shipping {
    type Handler = ShippingHandler;

    fn name(&self) -> &str {
        Self::NAME
    }

    fn spec(&self, settings: &Settings) -> ConsumerSpec {
        ConsumerSpec::reads(settings, Self::NAME, [settings.topics.orders_paid()])
    }

    fn build(&self, settings: &Settings, health: &Health) -> Result<ShippingHandler, BuildError> {
        Ok(ShippingHandler { api: ApiClient::new(Self::NAME, settings.apis.get(Self::NAME)?, health)? })
    }
}

/// Maps paid orders to shipping labels.
#[derive(Debug, Clone)]
pub struct ShippingHandler {
    /// Client of the shipping API.
    api: ApiClient,
}

impl Handler for ShippingHandler {
    async fn handle(&self, incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
        let paid: OrderPaid = match incoming.data() {
            Ok(paid) => paid,
            Err(outcome) => return outcome,
        };
        let items = paid.items.iter().map(|i| LabelItem { sku: &i.sku, quantity: i.quantity }).collect();
        let body = LabelRequest { order_id: &paid.order_id, customer_id: &paid.customer.id, items };
        let call = CallContext::for_event(Shipping::NAME, incoming);
        let result = self.api.send_json(Method::POST, "labels", &body, &call).await;
        downstream::classify(&result).on_done(|| tracing::debug!(order_id = %paid.order_id, "shipping label created"))
    }
}

#[cfg(test)]
mod tests {
    use courier::events::PAYMENT_SOURCE;
    use serde_json::json;

    use super::*;
    use crate::testing::{MockApi, Received, event, order, permanent};

    /// The shipping consumer's handler, calling `api`.
    fn handler(api: &MockApi) -> ShippingHandler {
        Shipping.build(&api.settings(&[Shipping::NAME], &[]), &Health::default()).expect("built")
    }

    /// The payment of the test order, as the payment consumer publishes it.
    fn paid() -> OrderPaid {
        OrderPaid::of(order(), Some("ch-1".into()), "e-0".into())
    }

    #[tokio::test]
    async fn a_paid_order_gets_a_label_for_its_customer_and_items() {
        let api = MockApi::answering(201, json!({"label_id": "l-1"})).await;
        let (incoming, id) = event("orders.paid", PAYMENT_SOURCE, paid());
        assert_eq!(handler(&api).handle(&incoming, None).await, Outcome::Done);
        let sent = api.only().await;
        assert_eq!((&sent.method, sent.path()), (&Method::POST, "/shipping/labels"));
        assert_eq!(sent.header("idempotency-key"), Some(format!("shipping:{id}").as_str()));
        assert_eq!(sent.header("content-type"), Some("application/json"));
        let items = json!([{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}]);
        assert_eq!(sent.json(), json!({"order_id": "o/1", "customer_id": "c-1", "items": items}));
    }

    #[tokio::test]
    async fn a_label_the_api_refuses_is_dead_lettered() {
        let api = MockApi::answering(422, json!({"error": "no address for customer c-1"})).await;
        let (incoming, _) = event("orders.paid", PAYMENT_SOURCE, paid());
        assert_eq!(permanent(handler(&api).handle(&incoming, None).await).http_status, Some(422));
    }
}
