//! The inventory consumer (group `inventory`).
//!
//! * `order.created` → reserve the order's items: `POST {apis.inventory.base_url}/reservations` with
//!   `Idempotency-Key: inventory:<event id>`. An unknown sku is answered 409: a permanent failure, so the
//!   order's event is dead-lettered (the other consumers are unaffected: they are other groups).
//! * `order.payment_failed` → release the reservation (the saga's compensation):
//!   `POST {apis.inventory.base_url}/reservations/<order id>/release` with
//!   `Idempotency-Key: inventory-release:<event id>`.
//!
//! The two topics are not ordered with each other: a declined payment can be read before its order's
//! reservation (the inventory API was slow or down, or the `orders.created` partition lags behind a crash or
//! a rebalance). So a 404 on release (no reservation of the order yet) is not taken as "nothing to release":
//! it is retried like a transient failure, at least [`RELEASE_RETRY_FLOOR`] apart (capped by
//! `retry_max_backoff_ms`), for as long as the event's retry budget lasts (`retry_max_attempts`,
//! `retry_max_elapsed_ms`: with the defaults, 90 s to 300 s), while the reservation may still be on its way;
//! once the reservation lands, the next try releases it. When the budget is spent, the release is dead-lettered with kind `no_reservation`,
//! so that an operator sees a compensation that found nothing to compensate (e.g. the reservation itself
//! was dead-lettered) rather than a reservation silently kept.

use std::time::Duration;

use courier::delivery::{BuildError, Consumer, ConsumerSpec, Failure, Handler, Incoming, Outcome};
use courier::downstream::{self, ApiClient, CallContext};
use courier::events::{DecodeError, EventData, OrderCreated, PaymentFailed};
use courier::health::Health;
use courier::settings::Settings;
use reqwest::{Method, StatusCode};
use serde::Serialize;

use crate::order_topics::OrderTopics;

/// The failure kind of a release that found no reservation (see the module doc).
pub const NO_RESERVATION: &str = "no_reservation";
/// The least time between two tries of a release that found no reservation: long enough that the retry
/// budget outlasts the lag of a crash or a rebalance of the `orders.created` partition.
pub const RELEASE_RETRY_FLOOR: Duration = Duration::from_secs(10);

/// The body of a reservation request.
#[derive(Debug, Serialize)]
pub struct ReservationRequest<'a> {
    /// The order the stock is reserved for.
    pub order_id: &'a str,
    /// What to reserve.
    pub items: Vec<ReservationItem<'a>>,
}

/// One line of a reservation.
#[derive(Debug, Serialize)]
pub struct ReservationItem<'a> {
    /// Stock keeping unit.
    pub sku: &'a str,
    /// How many units.
    pub quantity: u32,
}

/// The inventory consumer's declaration: it reads new orders and declined payments, and calls the inventory
/// API ([`InventoryHandler`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Inventory;

impl Inventory {
    /// Its name: its consumer group, its API and the prefix of its idempotency keys.
    pub const NAME: &'static str = "inventory";
}

impl Consumer for Inventory {
    type Handler = InventoryHandler;

    fn name(&self) -> &str {
        Self::NAME
    }

    /// New orders, and declined payments to compensate.
    fn spec(&self, settings: &Settings) -> ConsumerSpec {
        ConsumerSpec::reads(settings, Self::NAME, [settings.topics.orders_created(), settings.topics.payment_failed()])
    }

    fn build(&self, settings: &Settings, health: &Health) -> Result<InventoryHandler, BuildError> {
        Ok(InventoryHandler { api: ApiClient::new(Self::NAME, settings.apis.get(Self::NAME)?, health)? })
    }
}

/// Maps order events to inventory API calls.
#[derive(Debug, Clone)]
pub struct InventoryHandler {
    /// Client of the inventory API.
    api: ApiClient,
}

impl Handler for InventoryHandler {
    async fn handle(&self, incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
        match incoming.event_type().unwrap_or_default() {
            OrderCreated::EVENT_TYPE => self.reserve(incoming).await,
            PaymentFailed::EVENT_TYPE => self.release(incoming).await,
            other => Outcome::Permanent(Failure::from(&DecodeError::UnknownType(other.to_owned()))),
        }
    }
}

impl InventoryHandler {
    /// Reserves the items of the order `incoming` carries.
    async fn reserve(&self, incoming: &Incoming) -> Outcome {
        let order: OrderCreated = match incoming.data() {
            Ok(order) => order,
            Err(outcome) => return outcome,
        };
        let body = ReservationRequest {
            order_id: &order.order_id,
            items: order.items.iter().map(|i| ReservationItem { sku: &i.sku, quantity: i.quantity }).collect(),
        };
        let call = CallContext::for_event(Inventory::NAME, incoming);
        let result = self.api.send_json(Method::POST, "reservations", &body, &call).await;
        downstream::classify(&result)
            .on_done(|| tracing::debug!(order_id = %order.order_id, items = order.items.len(), "stock reserved"))
    }

    /// Releases the reservation of the order whose payment `incoming` says was declined (a 404 is retried: see
    /// the module doc).
    async fn release(&self, incoming: &Incoming) -> Outcome {
        let failed: PaymentFailed = match incoming.data() {
            Ok(failed) => failed,
            Err(outcome) => return outcome,
        };
        // The body is the event's data as it is: the order, the decline reason and the causing event's id.
        let call = CallContext::for_event("inventory-release", incoming);
        let path = format!("reservations/{}/release", downstream::path_segment(&failed.order_id));
        let result = self.api.send_json(Method::POST, &path, &failed, &call).await;
        if let Ok(response) = &result
            && response.status == StatusCode::NOT_FOUND
        {
            let message = format!(
                "order {} has no reservation to release yet: retried while it may be on its way",
                failed.order_id
            );
            let failure = Failure {
                kind: NO_RESERVATION,
                message,
                ..Failure::http(&response.endpoint, 404, downstream::excerpt(&response.body))
            };
            return Outcome::Retry(
                failure.with_retry_after(Some(RELEASE_RETRY_FLOOR)).with_budget(response.policy.budget),
            );
        }
        downstream::classify(&result).on_done(|| {
            tracing::debug!(order_id = %failed.order_id, reason = %failed.reason, "reservation released after a declined payment")
        })
    }
}

#[cfg(test)]
mod tests {
    use courier::events::{OrderPaid, PAYMENT_SOURCE, PRODUCER_SOURCE};
    use serde_json::json;

    use super::*;
    use crate::testing::{MockApi, Received, event, order, permanent};

    /// The inventory consumer's handler, calling `api`.
    fn handler(api: &MockApi) -> InventoryHandler {
        Inventory.build(&api.settings(&[Inventory::NAME], &[]), &Health::default()).expect("built")
    }

    #[tokio::test]
    async fn an_order_reserves_its_items_under_the_events_key() {
        let api = MockApi::answering(201, json!({"reservation_id": "r-1"})).await;
        let (incoming, id) = event("orders.created", PRODUCER_SOURCE, order());
        assert_eq!(handler(&api).handle(&incoming, None).await, Outcome::Done);
        let sent = api.only().await;
        assert_eq!((&sent.method, sent.path()), (&Method::POST, "/inventory/reservations"));
        assert_eq!(sent.header("idempotency-key"), Some(format!("inventory:{id}").as_str()));
        assert_eq!(sent.header("content-type"), Some("application/json"));
        let items = json!([{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}]);
        assert_eq!(sent.json(), json!({"order_id": "o/1", "items": items}));
    }

    #[tokio::test]
    async fn an_order_the_api_refuses_is_dead_lettered() {
        // The inventory API answers an unknown sku with 409.
        let api = MockApi::answering(409, json!({"error": "unknown sku SKU-2"})).await;
        let (incoming, _) = event("orders.created", PRODUCER_SOURCE, order());
        assert_eq!(permanent(handler(&api).handle(&incoming, None).await).http_status, Some(409));
    }

    #[tokio::test]
    async fn a_declined_payment_releases_its_orders_reservation() {
        let api = MockApi::answering(200, json!({"released": true})).await;
        let failed = PaymentFailed {
            order_id: "o/1".into(),
            reason: "insufficient_funds".into(),
            causing_event_id: "e-0".into(),
        };
        let (incoming, id) = event("orders.payment-failed", PAYMENT_SOURCE, failed);
        assert_eq!(handler(&api).handle(&incoming, None).await, Outcome::Done);
        let sent = api.only().await;
        assert_eq!((&sent.method, sent.path()), (&Method::POST, "/inventory/reservations/o%2F1/release"));
        assert_eq!(sent.header("idempotency-key"), Some(format!("inventory-release:{id}").as_str()));
        assert_eq!(sent.header("content-type"), Some("application/json"));
        let body = json!({"order_id": "o/1", "reason": "insufficient_funds", "causing_event_id": "e-0"});
        assert_eq!(sent.json(), body);
    }

    #[tokio::test]
    async fn a_release_that_finds_no_reservation_is_retried_no_sooner_than_the_floor() {
        let api = MockApi::answering(404, json!({"error": "no reservation"})).await;
        let failed =
            PaymentFailed { order_id: "o/1".into(), reason: "declined".into(), causing_event_id: "e-0".into() };
        let (incoming, _) = event("orders.payment-failed", PAYMENT_SOURCE, failed);
        match handler(&api).handle(&incoming, None).await {
            Outcome::Retry(failure) => {
                assert_eq!((failure.kind, failure.http_status), (NO_RESERVATION, Some(404)), "{failure:?}");
                assert_eq!(failure.retry_after, Some(RELEASE_RETRY_FLOOR));
                assert!(failure.charged, "each try spends the event's budget, so a missing reservation ends");
            }
            other => panic!("a missing reservation must be retried, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_event_of_another_type_is_dead_lettered_without_a_call() {
        let api = MockApi::answering(201, json!({})).await;
        let paid = OrderPaid::of(order(), None, "e-0".into());
        let (incoming, _) = event("orders.paid", PAYMENT_SOURCE, paid);
        assert_eq!(permanent(handler(&api).handle(&incoming, None).await).kind, "unknown_type");
        assert!(api.sent().await.is_empty());
    }
}
