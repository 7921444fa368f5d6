//! `demo`: sends a handful of sample orders to the producer and shows what arrived at the downstream APIs.
//!
//! Used by `scripts/run-local.sh`; it can be run again at any time against a running stack:
//! `target/release/demo --orders 10`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

/// Sends sample orders and shows them arrive.
#[derive(Debug, Parser)]
struct Args {
    /// Base URL of the producer (the order API).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    producer: String,
    /// Base URL of the mock APIs.
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    apis: String,
    /// How many orders to send.
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);

    wait_until_ready(&http, &args.producer, deadline).await?;
    println!("\n== sending {} orders to {}/v1/orders", args.orders, args.producer);
    let mut sent: HashMap<String, String> = HashMap::new();
    for i in 0..args.orders {
        let (id, email, phone) = CUSTOMERS[i % CUSTOMERS.len()];
        let (sku, price) = SKUS[i % SKUS.len()];
        let mut customer = json!({"id": id, "email": email});
        if let Some(phone) = phone {
            customer["phone"] = json!(phone);
        }
        let quantity = 1 + i % 3;
        let order = json!({"customer": customer, "items": [{"sku": sku, "quantity": quantity, "unit_price": price}], "currency": "EUR"});
        let response = http.post(format!("{}/v1/orders", args.producer)).json(&order).send().await?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.as_u16() != 202 {
            bail!("order {i} was refused with {status}: {answer}");
        }
        let order_id = answer["order_id"].as_str().unwrap_or_default().to_owned();
        println!(
            "sent     order {order_id}  {quantity} × {sku:<13} for {id:<10} → partition {} offset {}",
            answer["partition"], answer["offset"]
        );
        sent.insert(order_id, format!("{quantity} × {sku}"));
    }

    println!("\n== waiting for them at the inventory API ({}/inventory/effects)", args.apis);
    let mut shown = std::collections::HashSet::new();
    while shown.len() < sent.len() {
        if Instant::now() > deadline {
            bail!("only {} of {} orders arrived within {} s", shown.len(), sent.len(), args.timeout_secs);
        }
        let effects: Vec<Value> = match http.get(format!("{}/inventory/effects", args.apis)).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        for effect in effects {
            let order_id = effect["body"]["order_id"].as_str().unwrap_or_default().to_owned();
            if sent.contains_key(&order_id) && shown.insert(order_id.clone()) {
                let items: Vec<String> = effect["body"]["items"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .map(|i| format!("{} × {}", i["quantity"], i["sku"].as_str().unwrap_or("?")))
                            .collect()
                    })
                    .unwrap_or_default();
                println!(
                    "arrived  order {order_id}  reserved {:<18} key {}",
                    items.join(", "),
                    effect["idempotency_key"].as_str().unwrap_or("?")
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats: Value = http.get(format!("{}/stats", args.apis)).send().await?.json().await?;
    println!("\n== all {} orders arrived. Inventory API stats: {}", sent.len(), stats["inventory"]);
    Ok(())
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
