//! What the consumers' unit tests share: their downstream API ([`MockApi`], a wiremock server that answers every
//! request with one status and body and keeps each request it was sent, and the settings that point a
//! consumer's APIs at it), the events they hand a handler ([`order`], [`event`]) and how
//! they read a refusal ([`permanent`]).

use chrono::Utc;
use courier::delivery::{Failure, Incoming, Outcome};
use courier::events::{CloudEvent, Customer, EventData, OrderCreated, OrderItem};
use courier::settings::Settings;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The order `o/1` of customer `c-1` (with a phone number): two SKU-1 at 10.00 and one SKU-2 at 5.99 EUR.
pub fn order() -> OrderCreated {
    OrderCreated {
        order_id: "o/1".into(),
        customer: Customer { id: "c-1".into(), email: "ada@example.com".into(), phone: Some("+15550100".into()) },
        items: vec![
            OrderItem { sku: "SKU-1".into(), quantity: 2, unit_price: 1000 },
            OrderItem { sku: "SKU-2".into(), quantity: 1, unit_price: 599 },
        ],
        currency: "EUR".into(),
        total: 2599,
        created_at: Utc::now(),
    }
}

/// `data` in a new event of `source` about order `o/1`, as read from `topic`; and the event's id.
pub fn event<T: EventData>(topic: &str, source: &str, data: T) -> (Incoming, String) {
    let event = CloudEvent::new(uuid::Uuid::now_v7(), source, Utc::now(), Some("o/1".into()), data);
    (Incoming::new(topic, &event).expect("an event"), event.id)
}

/// The failure of `outcome`, which must be permanent (the event is dead-lettered).
#[track_caller]
pub fn permanent(outcome: Outcome) -> Failure {
    match outcome {
        Outcome::Permanent(failure) => failure,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

/// What the tests read of a request the API was sent.
pub trait Received {
    /// Its path from the server's root, as sent (an API's base URL is `/<api name>`).
    fn path(&self) -> &str;
    /// The value of header `name`, when the request has it.
    fn header(&self, name: &str) -> Option<&str>;
    /// The body as JSON.
    fn json(&self) -> serde_json::Value;
}

impl Received for Request {
    fn path(&self) -> &str {
        self.url.path()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn json(&self) -> serde_json::Value {
        self.body_json().expect("a JSON body")
    }
}

/// An API that answers every request with one status and body, and keeps each request it was sent.
pub struct MockApi(MockServer);

impl MockApi {
    /// Serves an API answering `status` with the JSON `body` to every request.
    pub async fn answering(status: u16, body: serde_json::Value) -> Self {
        let server = MockServer::start().await;
        Mock::given(any()).respond_with(ResponseTemplate::new(status).set_body_json(body)).mount(&server).await;
        Self(server)
    }

    /// The default settings, with APIs `apis` served here (each under `/<api>`) and `overrides` (`COURIER__…`
    /// names) on top.
    pub fn settings(&self, apis: &[&str], overrides: &[(&str, &str)]) -> Settings {
        let urls = apis
            .iter()
            .map(|api| (format!("COURIER__APIS__{}__BASE_URL", api.to_uppercase()), format!("{}/{api}", self.0.uri())));
        let env = urls.chain(overrides.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))).collect();
        Settings::load_with_env(None, Some(env)).expect("valid settings")
    }

    /// The requests it was sent, in order.
    pub async fn sent(&self) -> Vec<Request> {
        self.0.received_requests().await.expect("requests are recorded")
    }

    /// The one request it was sent.
    pub async fn only(&self) -> Request {
        let sent = self.sent().await;
        assert_eq!(sent.len(), 1, "one request: {sent:?}");
        sent.into_iter().next().expect("one request")
    }
}
