//! The events of a run and putting them on the topic: all at once before a worker starts (preload), or at a
//! fixed rate while it runs (open loop).
//!
//! Event `seq` of a topic with K keys is an `order.created` for order `k<seq % K>` (its record key, so a key
//! keeps to one partition) with one item whose sku is `e<seq>`: the sink reads both back from the request.
//! Each record's timestamp is set to the moment it is handed to the producer, which is what produce-to-API
//! latency is measured from.

use std::time::{Duration, Instant};

use anyhow::Context;
use courier::settings::Settings;
use courier_tests::produce::order_event;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::sink::unix_micros;

/// Puts benchmark events on one topic.
pub struct Loader {
    /// The idempotent producer courier's publisher uses (acks=all).
    producer: FutureProducer,
    /// The topic.
    topic: String,
    /// Distinct keys.
    keys: usize,
    /// Whether records carry the four headers the order API sets.
    headers: bool,
}

/// The value of event `seq` and its key.
fn event(seq: usize, keys: usize) -> (String, Vec<u8>) {
    let order_id = format!("k{}", seq % keys.max(1));
    let event = order_event(&order_id, &format!("e{seq}"));
    (order_id, serde_json::to_vec(&event).expect("an event serializes"))
}

impl Loader {
    /// Creates `topic` (partitions from `settings`) and a producer for it.
    pub async fn new(settings: &Settings, topic: &str, keys: usize, headers: bool) -> anyhow::Result<Self> {
        courier::kafka::ensure_topics(&settings.kafka, &settings.topics, &[topic]).await?;
        let producer: FutureProducer =
            courier::kafka::producer_config(&settings.kafka, "bench-loader", Duration::from_secs(60))
                .set("linger.ms", "5")
                .create()?;
        Ok(Self { producer, topic: topic.to_owned(), keys, headers })
    }

    /// Hands event `seq` to the producer (waiting while its queue is full); returns its record timestamp in
    /// µs since the epoch (ms precision, as Kafka keeps it) and its acknowledgement.
    async fn enqueue(&self, seq: usize) -> anyhow::Result<(u64, DeliveryFuture)> {
        let (key, value) = event(seq, self.keys);
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        loop {
            let millis = (unix_micros() / 1000) as i64;
            let mut record = FutureRecord::to(&self.topic).key(&key).payload(&value).timestamp(millis);
            if self.headers {
                record = record.headers(
                    OwnedHeaders::new()
                        .insert(Header { key: "content-type", value: Some("application/cloudevents+json") })
                        .insert(Header { key: "traceparent", value: Some(traceparent) })
                        .insert(Header { key: "ce_id", value: Some(&key) })
                        .insert(Header { key: "ce_type", value: Some("order.created") }),
                );
            }
            match self.producer.send_result(record) {
                Ok(ack) => return Ok((millis as u64 * 1000, ack)),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => anyhow::bail!("producing event {seq}: {e}"),
            }
        }
    }

    /// Waits until every acknowledgement in `acks` came back positive.
    async fn acknowledged(acks: Vec<DeliveryFuture>) -> anyhow::Result<()> {
        for ack in acks {
            match ack.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => anyhow::bail!("the broker refused an event: {e}"),
                Err(_) => anyhow::bail!("the producer dropped an event"),
            }
        }
        Ok(())
    }

    /// Produces events `0..events` as fast as the broker takes them.
    pub async fn preload(&self, events: usize) -> anyhow::Result<()> {
        let mut acks = Vec::with_capacity(events);
        for seq in 0..events {
            acks.push(self.enqueue(seq).await?.1);
        }
        Self::acknowledged(acks).await.context("preloading")
    }

    /// Produces event `seq` and waits for its acknowledgement.
    pub async fn one(&self, seq: usize) -> anyhow::Result<()> {
        let (_, ack) = self.enqueue(seq).await?;
        Self::acknowledged(vec![ack]).await
    }

    /// Produces `rate` events per second for `duration`, starting at event `first`, on schedule however slowly
    /// the broker acknowledges; returns each event's record timestamp (µs since the epoch), in order.
    pub async fn open_loop(&self, first: usize, rate: f64, duration: Duration) -> anyhow::Result<Vec<u64>> {
        let total = (rate * duration.as_secs_f64()).round() as usize;
        let mut stamps = Vec::with_capacity(total);
        let mut acks = Vec::with_capacity(total);
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while stamps.len() < total {
            tick.tick().await;
            let due = ((started.elapsed().as_secs_f64() * rate) as usize).min(total);
            while stamps.len() < due {
                let (stamp, ack) = self.enqueue(first + stamps.len()).await?;
                stamps.push(stamp);
                acks.push(ack);
            }
        }
        Self::acknowledged(acks).await.context("producing at a fixed rate")?;
        Ok(stamps)
    }
}
