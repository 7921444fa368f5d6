//! Orders put through the order API as a client would: several connections at once, each order with its own
//! `Idempotency-Key`, a 503 retried after its `Retry-After` with the same key until accepted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;

/// An order the API accepted (202).
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The order id the API gave it.
    pub order_id: String,
    /// The event id of its `order.created` event.
    pub event_id: String,
    /// Whether the customer has a phone (an SMS is due).
    pub phone: bool,
    /// Whether the payment API declines it (a release is due).
    pub declined: bool,
}

/// What the API answered, counted.
#[derive(Debug, Default)]
pub struct Answers {
    /// 202s.
    pub accepted: AtomicU64,
    /// 503s that carried `Retry-After`.
    pub unavailable: AtomicU64,
    /// 503s without `Retry-After`, other statuses and failed requests.
    pub errors: AtomicU64,
}

/// Order `i`: a phone for two in three customers; every `decline_every`-th order has a total the payment API
/// declines (ending in 13); 0 declines none.
pub fn order(i: usize, decline_every: usize) -> (Value, bool, bool) {
    let phone = !i.is_multiple_of(3);
    let declined = decline_every > 0 && i % decline_every == decline_every - 1;
    let (price, quantity) = if declined { (1313, 1) } else { (1299, 1 + i % 3) };
    let mut customer = json!({"id": format!("c-{i}"), "email": format!("customer{i}@example.com")});
    if phone {
        customer["phone"] = json!("+15550100");
    }
    let order = json!({
        "customer": customer,
        "items": [{"sku": format!("SKU-{}", i % 7), "quantity": quantity, "unit_price": price}],
        "currency": "EUR",
    });
    (order, phone, declined)
}

/// How orders are put through the API.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Orders in all.
    pub count: usize,
    /// Orders per second over all connections (0: as fast as the API answers).
    pub rate: u32,
    /// Every `decline_every`-th order is declined by the payment API (0: none).
    pub decline_every: usize,
    /// How long one order is retried (503) before the client gives it up.
    pub give_up: Duration,
}

/// Connections posting at once.
const CONNECTIONS: usize = 16;

/// Posts orders `0..load.count` to `base_url`; returns the accepted ones.
pub async fn post_orders(base_url: &str, load: Load, answers: Arc<Answers>) -> Vec<Accepted> {
    let Load { count, rate, decline_every, give_up } = load;
    let connections = CONNECTIONS;
    // Each connection posts one order per `pace`, so that together they keep `rate`.
    let pace = (rate > 0).then(|| Duration::from_secs_f64(connections as f64 / f64::from(rate)));
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
    let url = format!("{base_url}/v1/orders");
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (next, accepted, client, url, answers) =
                (Arc::clone(&next), Arc::clone(&accepted), client.clone(), url.clone(), Arc::clone(&answers));
            tokio::spawn(async move {
                let mut ticks = pace.map(tokio::time::interval);
                loop {
                    if let Some(ticks) = &mut ticks {
                        ticks.tick().await;
                    }
                    let i = usize::try_from(next.fetch_add(1, Ordering::SeqCst)).unwrap_or(usize::MAX);
                    if i >= count {
                        return;
                    }
                    if let Some(a) = post_one(&client, &url, i, decline_every, give_up, &answers).await {
                        accepted.lock().await.push(a);
                    }
                }
            })
        })
        .collect();
    futures::future::join_all(tasks).await;
    std::mem::take(&mut *accepted.lock().await)
}

/// Posts order `i` until it is accepted (503s retried with the same key for up to `give_up`; then it counts
/// as not accepted, which the client knows).
async fn post_one(
    client: &reqwest::Client,
    url: &str,
    i: usize,
    decline_every: usize,
    give_up: Duration,
    answers: &Answers,
) -> Option<Accepted> {
    let (body, phone, declined) = order(i, decline_every);
    let key = uuid::Uuid::new_v4().to_string();
    let deadline = tokio::time::Instant::now() + give_up;
    while tokio::time::Instant::now() < deadline {
        let wait = match client.post(url).header("Idempotency-Key", &key).json(&body).send().await {
            Ok(response) if response.status() == 202 => {
                answers.accepted.fetch_add(1, Ordering::Relaxed);
                let answer: Value = response.json().await.ok()?;
                return Some(Accepted {
                    order_id: answer["order_id"].as_str()?.to_owned(),
                    event_id: answer["event_id"].as_str()?.to_owned(),
                    phone,
                    declined,
                });
            }
            Ok(response) if response.status() == 503 => {
                let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
                match retry_after {
                    Some(seconds) => {
                        answers.unavailable.fetch_add(1, Ordering::Relaxed);
                        Duration::from_secs(seconds)
                    }
                    None => {
                        answers.errors.fetch_add(1, Ordering::Relaxed);
                        Duration::from_secs(1)
                    }
                }
            }
            _ => {
                answers.errors.fetch_add(1, Ordering::Relaxed);
                Duration::from_secs(1)
            }
        };
        // The client's back-off, as the API asked.
        tokio::time::sleep(wait).await;
    }
    None
}
