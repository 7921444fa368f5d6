//! Producing records straight to a topic, for tests that need chosen keys, partitions or raw bytes.

use std::time::Duration;

use chrono::Utc;
use courier::events::{CloudEvent, Customer, OrderCreated, OrderItem, PRODUCER_SOURCE};
use courier::kafka::headers::RawHeader;
use courier::settings::Settings;
use courier_consumers::order_topics::OrderTopics;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// One record to produce.
#[derive(Debug, Clone)]
pub struct TestRecord {
    /// Its key.
    pub key: Option<String>,
    /// Its value, byte for byte.
    pub value: Vec<u8>,
    /// Its partition; the default partitioner (by key) when `None`.
    pub partition: Option<i32>,
    /// Its headers, keys and values byte for byte (a key need not be UTF-8).
    pub headers: Vec<RawHeader>,
}

/// The header every test record carries: `x-test-origin: courier-tests`.
pub fn origin_header() -> RawHeader {
    (b"x-test-origin".to_vec(), Some(b"courier-tests".to_vec()))
}

/// An `order.created` event for order `order_id` whose single item has `sku`; the event id is fresh.
pub fn order_event(order_id: &str, sku: &str) -> CloudEvent<OrderCreated> {
    let now = Utc::now();
    let data = OrderCreated {
        order_id: order_id.to_owned(),
        customer: Customer { id: "c-test".into(), email: "test@example.com".into(), phone: None },
        items: vec![OrderItem { sku: sku.to_owned(), quantity: 1, unit_price: 100 }],
        currency: "EUR".into(),
        total: 100,
        created_at: now,
    };
    CloudEvent::new(uuid::Uuid::now_v7(), PRODUCER_SOURCE, now, Some(order_id.to_owned()), data)
}

/// A record carrying `event`, keyed by its order id.
pub fn order_record(event: &CloudEvent<OrderCreated>, partition: Option<i32>) -> TestRecord {
    TestRecord {
        key: Some(event.data.order_id.clone()),
        value: serde_json::to_vec(event).expect("event serializes"),
        partition,
        headers: vec![origin_header()],
    }
}

/// Creates the orders topic of `settings` and produces `records` to it, in order, waiting for each
/// acknowledgement (so offsets follow the order given).
pub async fn produce(settings: &Settings, records: &[TestRecord]) -> anyhow::Result<()> {
    let topic = settings.topics.orders_created();
    courier::kafka::ensure_topics(&settings.kafka, &settings.topics, &[topic]).await?;
    let producer: FutureProducer =
        courier::kafka::producer_config(&settings.kafka, "test-producer", Duration::from_secs(30)).create()?;
    let mut pending = Vec::with_capacity(records.len());
    for record in records {
        let headers = courier::kafka::headers::to_owned(record.headers.iter().map(|(k, v)| (k, v.as_ref())));
        let mut r = FutureRecord::to(topic).payload(&record.value).headers(headers);
        if let Some(key) = &record.key {
            r = r.key(key);
        }
        if let Some(partition) = record.partition {
            r = r.partition(partition);
        }
        // Queue in order; the idempotent producer keeps per-partition order.
        pending.push(producer.send_result(r).map_err(|(e, _)| e)?);
    }
    for delivery in pending {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    Ok(())
}
