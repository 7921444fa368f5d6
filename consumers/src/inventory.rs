//! The inventory consumer: for each `order.created` event, reserve the order's items at the inventory API
//! (`POST {apis.inventory.base_url}/reservations`) with `Idempotency-Key: inventory:<event id>`.

use courier::delivery::{self, ConsumerSpec, Failure, Handler, Incoming, Outcome};
use courier::downstream::{self, ApiClient, CallContext};
use courier::events::OrderCreated;
use courier::health::Health;
use courier::settings::Settings;
use reqwest::Method;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// The consumer's name: its consumer group and the prefix of its idempotency keys.
pub const NAME: &str = "inventory";

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

/// Maps order events to inventory API calls.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// Client of the inventory API.
    api: ApiClient,
}

impl Inventory {
    /// The handler, calling the inventory API of `settings`; its breaker reports to `health`.
    pub fn new(settings: &Settings, health: &Health) -> Result<Self, reqwest::Error> {
        Ok(Self { api: ApiClient::new(NAME, &settings.apis.inventory, health)? })
    }

    /// What the consumer reads.
    pub fn spec(settings: &Settings) -> ConsumerSpec {
        ConsumerSpec { group: settings.kafka.group_id(NAME), topics: vec![settings.topics.orders_created.clone()] }
    }
}

impl Handler for Inventory {
    fn name(&self) -> &str {
        NAME
    }

    async fn handle(&self, incoming: &Incoming) -> Outcome {
        let order: OrderCreated = match incoming.event.data() {
            Ok(order) => order,
            Err(error) => return Outcome::Permanent(Failure::from(&error)),
        };
        let body = ReservationRequest {
            order_id: &order.order_id,
            items: order.items.iter().map(|i| ReservationItem { sku: &i.sku, quantity: i.quantity }).collect(),
        };
        let call = CallContext { idempotency_key: format!("{NAME}:{}", incoming.event.id), trace: incoming.trace };
        let result = self.api.send_json(Method::POST, "reservations", &body, &call).await;
        let outcome = downstream::classify(&result);
        if outcome == Outcome::Done {
            tracing::info!(order_id = %order.order_id, items = order.items.len(), "stock reserved");
        }
        outcome
    }
}

/// Runs the inventory consumer (and its health server) until `shutdown` is cancelled.
pub async fn run(settings: &Settings, shutdown: CancellationToken) -> Result<(), delivery::RunError> {
    let spec = Inventory::spec(settings);
    delivery::run_service(settings, &spec, |health| Inventory::new(settings, health), shutdown).await
}
