//! The events of a run and putting them on the topic: all at once before a worker starts (preload), or at a
//! fixed rate while it runs (open loop).
//!
//! Event `seq` of a topic with K keys is an `order.created` for order `k<seq % K>` (its record key, so a key
//! keeps to one partition) with one item whose sku is `e<seq>`: the sink reads both back from the request.
//! Each record's timestamp is set to the moment it is handed to the producer, which is what produce-to-API
//! latency is measured from.
//!
//! A record holds the event as courier's producer writes it (a structured CloudEvent), or its data alone in
//! another [`Encoding`]: plain JSON, or Avro in the Confluent wire format under [`AVRO_SCHEMA_ID`].

use std::time::{Duration, Instant};

use anyhow::Context;
use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use courier::events::OrderCreated;
use courier::settings::Settings;
use courier_tests::produce::order_event;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::sink::unix_micros;

/// The registry id of [`AVRO_SCHEMA`], as the records of [`Encoding::Avro`] name it.
pub const AVRO_SCHEMA_ID: u32 = 1;

/// The Avro schema of `order.created`'s data: each field of [`OrderCreated`], `created_at` as
/// `timestamp-micros`.
pub const AVRO_SCHEMA: &str = r#"{"type": "record", "name": "OrderCreated", "namespace": "bench", "fields": [
  {"name": "order_id", "type": "string"},
  {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
    {"name": "id", "type": "string"},
    {"name": "email", "type": "string"},
    {"name": "phone", "type": ["null", "string"], "default": null}]}},
  {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "OrderItem", "fields": [
    {"name": "sku", "type": "string"},
    {"name": "quantity", "type": "int"},
    {"name": "unit_price", "type": "long"}]}}},
  {"name": "currency", "type": "string"},
  {"name": "total", "type": "long"},
  {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-micros"}}]}"#;

/// How a record holds its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As courier's producer writes it: a CloudEvent in structured mode (JSON).
    CloudEvents,
    /// Its data alone, as a JSON object.
    Json,
    /// Its data alone, Avro-encoded by [`AVRO_SCHEMA`] in the Confluent wire format (magic byte 0, schema id
    /// [`AVRO_SCHEMA_ID`], the datum).
    Avro,
}

impl Encoding {
    /// Its name in topic names and logs.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::CloudEvents => "cloudevents",
            Encoding::Json => "json",
            Encoding::Avro => "avro",
        }
    }
}

/// Writes records in one [`Encoding`].
enum Encoder {
    /// CloudEvents.
    CloudEvents,
    /// Plain JSON.
    Json,
    /// Avro, with the parsed schema.
    Avro(Box<Schema>),
}

impl Encoder {
    fn new(encoding: Encoding) -> anyhow::Result<Self> {
        Ok(match encoding {
            Encoding::CloudEvents => Encoder::CloudEvents,
            Encoding::Json => Encoder::Json,
            Encoding::Avro => Encoder::Avro(Box::new(Schema::parse_str(AVRO_SCHEMA).context("the Avro schema")?)),
        })
    }

    /// The value of event `seq` and its key.
    fn event(&self, seq: usize, keys: usize) -> anyhow::Result<(String, Vec<u8>)> {
        let order_id = format!("k{}", seq % keys.max(1));
        let event = order_event(&order_id, &format!("e{seq}"));
        let value = match self {
            Encoder::CloudEvents => serde_json::to_vec(&event)?,
            Encoder::Json => serde_json::to_vec(&event.data)?,
            Encoder::Avro(schema) => {
                let writer = apache_avro::writer::datum::GenericDatumWriter::builder(schema).build()?;
                let datum = writer.write_value_to_vec(avro(&event.data)?)?;
                let mut value = Vec::with_capacity(5 + datum.len());
                value.push(0);
                value.extend_from_slice(&AVRO_SCHEMA_ID.to_be_bytes());
                value.extend_from_slice(&datum);
                value
            }
        };
        Ok((order_id, value))
    }
}

/// `data` as an Avro value of [`AVRO_SCHEMA`].
fn avro(data: &OrderCreated) -> anyhow::Result<Avro> {
    let string = |s: &str| Avro::String(s.to_owned());
    let long = |n: u64| i64::try_from(n).map(Avro::Long);
    let phone = match &data.customer.phone {
        Some(phone) => Avro::Union(1, Box::new(string(phone))),
        None => Avro::Union(0, Box::new(Avro::Null)),
    };
    let customer = Avro::Record(vec![
        ("id".into(), string(&data.customer.id)),
        ("email".into(), string(&data.customer.email)),
        ("phone".into(), phone),
    ]);
    let items = data
        .items
        .iter()
        .map(|item| {
            Ok(Avro::Record(vec![
                ("sku".into(), string(&item.sku)),
                ("quantity".into(), Avro::Int(i32::try_from(item.quantity)?)),
                ("unit_price".into(), long(item.unit_price)?),
            ]))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Avro::Record(vec![
        ("order_id".into(), string(&data.order_id)),
        ("customer".into(), customer),
        ("items".into(), Avro::Array(items)),
        ("currency".into(), string(&data.currency)),
        ("total".into(), long(data.total)?),
        ("created_at".into(), Avro::TimestampMicros(data.created_at.timestamp_micros())),
    ]))
}

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
    /// How records hold their event.
    encoder: Encoder,
}

impl Loader {
    /// Creates `topic` (partitions from `settings`) and a producer for it; records are CloudEvents.
    pub async fn new(settings: &Settings, topic: &str, keys: usize, headers: bool) -> anyhow::Result<Self> {
        Self::encoding(settings, topic, keys, headers, Encoding::CloudEvents).await
    }

    /// The same, records in `encoding`.
    pub async fn encoding(
        settings: &Settings,
        topic: &str,
        keys: usize,
        headers: bool,
        encoding: Encoding,
    ) -> anyhow::Result<Self> {
        courier::kafka::ensure_topics(&settings.kafka, &settings.topics, &[topic]).await?;
        let producer: FutureProducer =
            courier::kafka::producer_config(&settings.kafka, "bench-loader", Duration::from_secs(60))
                .set("linger.ms", "5")
                .create()?;
        Ok(Self { producer, topic: topic.to_owned(), keys, headers, encoder: Encoder::new(encoding)? })
    }

    /// Hands event `seq` to the producer (waiting while its queue is full); returns its record timestamp in
    /// µs since the epoch (ms precision, as Kafka keeps it) and its acknowledgement.
    async fn enqueue(&self, seq: usize) -> anyhow::Result<(u64, DeliveryFuture)> {
        let (key, value) = self.encoder.event(seq, self.keys)?;
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
