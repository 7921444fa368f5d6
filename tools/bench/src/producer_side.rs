//! The producer side: `POST /v1/orders` (validated, published with acks=all, answered 202 once the broker
//! acknowledged) against a direct rdkafka produce loop of the same events with the same producer settings,
//! both at the same fixed concurrency, against the same broker, in the same run.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use courier::events::{CloudEvent, Customer, OrderCreated, OrderItem, PRODUCER_SOURCE};
use courier::settings::Settings;
use courier_producer::startup::Application;
use courier_tests::app::sample_order;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;

use crate::scenario::percentile;

/// What one side measured.
#[derive(Debug, Clone, Copy)]
pub struct Requests {
    /// Acknowledged requests per second.
    pub per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Requests that failed.
    pub errors: u64,
}

/// Runs `concurrency` loops of `job` for `duration`; each call returns whether it succeeded.
async fn drive<F, Fut>(concurrency: usize, duration: Duration, job: F) -> Requests
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let started = Instant::now();
    let loops = (0..concurrency).map(|lane| {
        let job = job.clone();
        tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            let mut i = lane;
            while started.elapsed() < duration {
                let sent = Instant::now();
                if job(i).await {
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                } else {
                    errors += 1;
                }
                i += concurrency;
            }
            (latencies, errors)
        })
    });
    let mut latencies = Vec::new();
    let mut errors = 0;
    for lane in futures::future::join_all(loops).await {
        let (l, e) = lane.unwrap_or_default();
        latencies.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Requests {
        per_sec: latencies.len() as f64 / seconds,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        errors,
    }
}

/// The event the order API publishes for order `i`.
fn event(i: usize) -> (String, Vec<u8>) {
    let now = Utc::now();
    let id = uuid::Uuid::now_v7();
    let data = OrderCreated {
        order_id: id.to_string(),
        customer: Customer { id: format!("c-{i}"), email: format!("customer{i}@example.com"), phone: None },
        items: vec![
            OrderItem { sku: format!("SKU-{}", i % 7), quantity: 1, unit_price: 1299 },
            OrderItem { sku: "SKU-GIFT".into(), quantity: 1, unit_price: 0 },
        ],
        currency: "EUR".into(),
        total: 1299,
        created_at: now,
    };
    let event = CloudEvent::new(id, PRODUCER_SOURCE, now, Some(id.to_string()), data);
    (id.to_string(), serde_json::to_vec(&event).expect("an event serializes"))
}

/// Measures the order API, then the direct loop, each for `duration` at `concurrency`.
pub async fn measure(
    settings: &Settings,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<(Requests, Requests)> {
    let app = Application::build(settings).await.context("starting the order API")?;
    let url = format!("http://{}/v1/orders", app.local_addr());
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone()));
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    // Warm the connections and the producer up.
    drive(concurrency, Duration::from_secs(1), {
        let (http, url) = (http.clone(), url.clone());
        move |i| {
            let (http, url) = (http.clone(), url.clone());
            async move { http.post(&url).json(&sample_order(i)).send().await.is_ok() }
        }
    })
    .await;
    let api = drive(concurrency, duration, move |i| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            matches!(http.post(&url).json(&sample_order(i)).send().await, Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED)
        }
    })
    .await;
    stop.cancel();
    server.await??;

    let producer: FutureProducer =
        courier::kafka::producer_config(&settings.kafka, "bench-direct", Duration::from_secs(30)).create()?;
    let topic = courier_producer::order::orders_topic(&settings.topics).to_owned();
    let send = move |i| {
        let (producer, topic) = (producer.clone(), topic.clone());
        async move {
            let (key, value) = event(i);
            let record = FutureRecord::to(&topic).key(&key).payload(&value);
            producer.send(record, Timeout::After(Duration::from_secs(30))).await.is_ok()
        }
    };
    drive(concurrency, Duration::from_secs(1), send.clone()).await;
    let direct = drive(concurrency, duration, send).await;
    Ok((api, direct))
}
