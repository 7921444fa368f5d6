//! [`Record`]: a Kafka record copied out of the client, owned by the runtime while its event is handled.

use std::sync::Arc;

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
    pub value: Option<Vec<u8>>,
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
            value: message.payload().map(<[u8]>::to_vec),
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
