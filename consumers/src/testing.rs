//! What the consumers' unit tests share: their downstream API ([`MockApi`], an axum router on a free loopback
//! port that answers every request with one status and body and keeps each request it was sent, and the
//! settings that point a consumer's APIs at it), the events they hand a handler ([`order`], [`event`]) and how
//! they read a refusal ([`permanent`]).

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use chrono::Utc;
use courier::delivery::{Failure, Incoming, Outcome};
use courier::events::{CloudEvent, Customer, EventData, OrderCreated, OrderItem};
use courier::settings::Settings;

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

/// One request the API was sent.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Its method.
    pub method: Method,
    /// Its path from the server's root, as sent (an API's base URL is `/<api name>`).
    pub path: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body, byte for byte.
    pub body: Bytes,
}

impl Sent {
    /// The value of header `name`, when the request has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// An API that answers every request with one status and body.
pub struct MockApi {
    /// `http://127.0.0.1:<port>`.
    address: String,
    /// What it was sent, in order.
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl MockApi {
    /// Serves an API answering `status` with the JSON `body` to every request.
    pub async fn answering(status: u16, body: serde_json::Value) -> Self {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let answer = (StatusCode::from_u16(status).expect("a status"), axum::Json(body));
        let app = axum::Router::new().fallback(record).with_state((Arc::clone(&sent), answer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = format!("http://{}", listener.local_addr().expect("its address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { address, sent }
    }

    /// The default settings, with APIs `apis` served here (each under `/<api>`) and `overrides` (`COURIER__…`
    /// names) on top.
    pub fn settings(&self, apis: &[&str], overrides: &[(&str, &str)]) -> Settings {
        let urls = apis
            .iter()
            .map(|api| (format!("COURIER__APIS__{}__BASE_URL", api.to_uppercase()), format!("{}/{api}", self.address)));
        let env = urls.chain(overrides.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))).collect();
        Settings::load_with_env(None, Some(env)).expect("valid settings")
    }

    /// The requests it was sent, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The one request it was sent.
    pub fn only(&self) -> Sent {
        let sent = self.sent();
        assert_eq!(sent.len(), 1, "one request: {sent:?}");
        sent.into_iter().next().expect("one request")
    }
}

/// What the router keeps and answers.
type Recorder = (Arc<Mutex<Vec<Sent>>>, (StatusCode, axum::Json<serde_json::Value>));

/// Keeps the request and answers it.
async fn record(
    State((sent, answer)): State<Recorder>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    let request = Sent { method, path: uri.path().to_owned(), headers, body };
    sent.lock().unwrap_or_else(PoisonError::into_inner).push(request);
    answer
}
