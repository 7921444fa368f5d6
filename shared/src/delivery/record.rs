//! [`Record`]: a Kafka record copied out of the client, owned by the runtime while its event is handled.

use std::sync::Arc;

use bytes::Bytes;
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;

use crate::kafka::headers::{self, RawHeader};

/// A topic and partition.
pub type TopicPartition = (Arc<str>, i32);

/// One record as read from Kafka.
#[derive(Debug, Clone)]
pub struct Record {
    /// Topic and partition the record was read from.
    pub tp: TopicPartition,
    /// Its offset.
    pub offset: i64,
    /// Its key, byte for byte.
    pub key: Option<Vec<u8>>,
    /// Its value, byte for byte.
    pub value: Option<Bytes>,
    /// Its timestamp (milliseconds since the epoch), when it has one.
    pub timestamp_ms: Option<i64>,
    /// Its headers, in order, keys and values byte for byte (a key need not be UTF-8).
    pub headers: Vec<RawHeader>,
}

impl Record {
    /// Copies a record out of the client; `topic` is the interned topic name.
    pub fn from_message(topic: Arc<str>, message: &BorrowedMessage<'_>) -> Self {
        let headers = headers::read(message);
        Self {
            tp: (topic, message.partition()),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(Bytes::copy_from_slice),
            timestamp_ms: message.timestamp().to_millis(),
            headers,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.tp.0
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.tp.1
    }
}

/// An `order.created` record of `tp` at `offset` with `key`, for unit tests of the runtime.
#[cfg(test)]
pub(crate) fn order_record(tp: TopicPartition, offset: i64, key: &str) -> Record {
    use crate::events::{CloudEvent, Customer, OrderCreated, OrderItem, PRODUCER_SOURCE};
    let now = chrono::Utc::now();
    let data = OrderCreated {
        order_id: format!("o-{offset}"),
        customer: Customer { id: "c".into(), email: "c@example.com".into(), phone: None },
        items: vec![OrderItem { sku: "s".into(), quantity: 1, unit_price: 1 }],
        currency: "EUR".into(),
        total: 1,
        created_at: now,
    };
    let event = CloudEvent::new(uuid::Uuid::now_v7(), PRODUCER_SOURCE, now, None, data);
    Record {
        tp,
        offset,
        key: Some(key.as_bytes().to_vec()),
        value: Some(serde_json::to_vec(&event).expect("serializes").into()),
        timestamp_ms: Some(now.timestamp_millis()),
        headers: Vec::new(),
    }
}
