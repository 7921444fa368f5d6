//! `demo`: sends a handful of sample orders to the producer — one of them with a payment the mock payment
//! API declines — and shows what arrived at each downstream API: reservations, charges, declines and the
//! compensating releases, e-mails and SMS.
//!
//! Used by `scripts/run-local.sh`; it can be run again at any time against a running stack:
//! `target/release/demo --orders 10`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

/// Sends sample orders and shows them arrive.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "courier's demo: sends sample orders to the order API and shows what each downstream API received"
)]
struct Args {
    /// Base URL of the producer (the order API).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    producer: String,
    /// Base URL of the mock APIs.
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    apis: String,
    /// How many orders to send (the last one's payment is declined, when there are at least two).
    #[arg(long, default_value_t = 5)]
    orders: usize,
    /// How long to wait for the producer to be ready and for the orders to arrive, in seconds.
    #[arg(long, default_value_t = 90)]
    timeout_secs: u64,
}

const CUSTOMERS: [(&str, &str, Option<&str>); 5] = [
    ("c-ada", "ada@example.com", Some("+447700900001")),
    ("c-grace", "grace@example.com", None),
    ("c-alan", "alan@example.com", Some("+447700900003")),
    ("c-edsger", "edsger@example.com", Some("+31612345678")),
    ("c-barbara", "barbara@example.com", None),
];
const SKUS: [(&str, u64); 4] =
    [("SKU-KEYBOARD", 8999), ("SKU-MOUSE", 2499), ("SKU-CABLE", 999), ("SKU-MONITOR", 21900)];
/// A unit price whose total the mock payment API declines (it declines totals ending in 13).
const DECLINED_PRICE: u64 = 4913;

/// What the demo expects at each API, and how to describe an arrival.
struct Expectation {
    /// Path of the API's effects (or declines) list under the mock APIs.
    path: &'static str,
    /// Heading.
    title: &'static str,
    /// How many arrivals for the sent orders.
    expected: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);

    wait_until_ready(&http, &args.producer, deadline).await?;
    println!("\n== sending {} orders to {}/v1/orders", args.orders, args.producer);
    let mut sent: HashSet<String> = HashSet::new();
    let (mut phones, declined) = (0, usize::from(args.orders > 1));
    for i in 0..args.orders {
        if i + 1 == args.orders && declined == 1 {
            // The declined order goes last, once the others are reserved: its release needs its reservation,
            // and the inventory consumer is surely consuming by then.
            let reserved = Expectation { path: "inventory/effects", title: "reservations", expected: sent.len() };
            wait_for(&http, &args.apis, &reserved, &sent, deadline).await?;
        }
        let (id, email, phone) = CUSTOMERS[i % CUSTOMERS.len()];
        let (sku, mut price) = SKUS[i % SKUS.len()];
        let mut quantity = 1 + i % 3;
        if i + 1 == args.orders && declined == 1 {
            (price, quantity) = (DECLINED_PRICE, 1);
        }
        let mut customer = json!({"id": id, "email": email});
        if let Some(phone) = phone {
            customer["phone"] = json!(phone);
            phones += 1;
        }
        let order = json!({"customer": customer, "items": [{"sku": sku, "quantity": quantity, "unit_price": price}], "currency": "EUR"});
        let response = http.post(format!("{}/v1/orders", args.producer)).json(&order).send().await?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.as_u16() != 202 {
            bail!("order {i} was refused with {status}: {answer}");
        }
        let order_id = answer["order_id"].as_str().unwrap_or_default().to_owned();
        let total = price * quantity as u64;
        println!(
            "sent     order {order_id}  {quantity} × {sku:<13} {:>7.2} EUR  for {id:<10}{}  → partition {} offset {}",
            total as f64 / 100.0,
            if phone.is_some() { " (phone)" } else { "        " },
            answer["partition"],
            answer["offset"]
        );
        sent.insert(order_id);
    }

    let expectations = [
        Expectation { path: "inventory/effects", title: "inventory API: reservations", expected: sent.len() },
        Expectation { path: "payment/effects", title: "payment API: charges", expected: sent.len() - declined },
        Expectation {
            path: "payment/declines",
            title: "payment API: declines (→ order.payment_failed)",
            expected: declined,
        },
        Expectation {
            path: "inventory_release/effects",
            title: "inventory API: releases (compensation)",
            expected: declined,
        },
        Expectation { path: "email/effects", title: "e-mail API", expected: sent.len() },
        Expectation { path: "sms/effects", title: "SMS API", expected: phones },
        Expectation {
            path: "shipping/effects",
            title: "shipping API: labels (after order.paid)",
            expected: sent.len() - declined,
        },
    ];
    for expectation in &expectations {
        let arrivals = wait_for(&http, &args.apis, expectation, &sent, deadline).await?;
        println!("\n== {} ({} of {})", expectation.title, arrivals.len(), expectation.expected);
        for effect in arrivals {
            println!(
                "arrived  {}   key {}",
                describe(expectation.path, &effect["body"]),
                effect["idempotency_key"].as_str().unwrap_or("?")
            );
        }
    }
    let stats: Value = http.get(format!("{}/stats", args.apis)).send().await?.json().await?;
    println!("\n== everything arrived. Per-API counters: {stats}");
    Ok(())
}

/// The arrivals at one API that belong to the sent orders, once there are as many as expected.
async fn wait_for(
    http: &reqwest::Client,
    apis: &str,
    expectation: &Expectation,
    sent: &HashSet<String>,
    deadline: Instant,
) -> anyhow::Result<Vec<Value>> {
    loop {
        let list: Vec<Value> = match http.get(format!("{apis}/{}", expectation.path)).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let ours: Vec<Value> = list.into_iter().filter(|e| belongs(&e["body"], sent)).collect();
        if ours.len() >= expectation.expected {
            return Ok(ours);
        }
        if Instant::now() > deadline {
            bail!("{}: {} of {} arrived in time", expectation.title, ours.len(), expectation.expected);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether an arrival is about one of the sent orders (e-mail and SMS name the order in their text).
fn belongs(body: &Value, sent: &HashSet<String>) -> bool {
    if let Some(id) = body["order_id"].as_str() {
        return sent.contains(id);
    }
    let text = format!("{} {}", body["subject"].as_str().unwrap_or(""), body["text"].as_str().unwrap_or(""));
    sent.iter().any(|id| text.contains(id.as_str()))
}

/// An arrival at the API whose list is `path`, in words.
fn describe(path: &str, body: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let items: Vec<String> = body["items"]
        .as_array()
        .map(|items| items.iter().map(|i| format!("{} × {}", i["quantity"], s(&i["sku"]))).collect())
        .unwrap_or_default();
    let items = items.join(", ");
    match path {
        "inventory/effects" => format!("order {}  reserved {items}", s(&body["order_id"])),
        "payment/effects" | "payment/declines" => format!(
            "order {}  {:.2} {}",
            s(&body["order_id"]),
            body["amount"].as_u64().unwrap_or(0) as f64 / 100.0,
            s(&body["currency"])
        ),
        "inventory_release/effects" => format!("order {}  released ({})", s(&body["order_id"]), s(&body["reason"])),
        "email/effects" => format!("to {:<22} {}", s(&body["to"]), s(&body["subject"])),
        // The shipping consumer's label request: `{order_id, customer_id, items}`.
        "shipping/effects" => format!("order {}  label for {}: {items}", s(&body["order_id"]), s(&body["customer_id"])),
        _ => format!("to {:<15} {}", s(&body["to"]), s(&body["text"])),
    }
}

/// Polls the producer's readiness until it says ready.
async fn wait_until_ready(http: &reqwest::Client, producer: &str, deadline: Instant) -> anyhow::Result<()> {
    loop {
        let ready = http.get(format!("{producer}/readyz")).send().await.map(|r| r.status().is_success());
        if let Ok(true) = ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return ready.map(|_| ()).context("the producer did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
