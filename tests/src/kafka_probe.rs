//! Looking at a topic from the outside.

use std::time::Duration;

use courier::kafka::headers::RawHeader;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// The number of records in `topic` (sum over partitions of high minus low watermark); 0 for a topic that does
/// not exist.
pub async fn record_count(bootstrap: &str, topic: &str) -> anyhow::Result<i64> {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create()?;
        let metadata = client.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let mut total = 0;
        for t in metadata.topics() {
            if t.error().is_some() {
                continue;
            }
            for p in t.partitions() {
                let (low, high) = client.fetch_watermarks(&topic, p.id(), Duration::from_secs(10))?;
                total += high - low;
            }
        }
        Ok(total)
    })
    .await?
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct ReadRecord {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Option<Vec<u8>>,
    /// Its headers, in order, byte for byte.
    pub headers: Vec<RawHeader>,
}

impl ReadRecord {
    /// The value of header `name` as text (the last one when repeated).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k.as_slice() == name.as_bytes())
            .and_then(|(_, v)| v.as_deref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Reads every record of `topic` from the beginning until `expected` were read or `timeout` passed.
pub async fn read_all(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<ReadRecord>> {
    use rdkafka::Message;
    use rdkafka::{Offset, TopicPartitionList};
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "courier-test-reader")
            .set("enable.auto.commit", "false")
            .create()?;
        let deadline = std::time::Instant::now() + timeout;
        // The topic may not exist yet (the runtime creates dead-letter topics at start): wait for it.
        let mut assignment = TopicPartitionList::new();
        while assignment.count() == 0 && std::time::Instant::now() < deadline {
            let metadata = client.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
            for t in metadata.topics().iter().filter(|t| t.error().is_none()) {
                for p in t.partitions() {
                    assignment.add_partition_offset(&topic, p.id(), Offset::Beginning)?;
                }
            }
            if assignment.count() == 0 {
                // Not created yet; ask the broker again shortly rather than in a tight loop.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        client.assign(&assignment)?;
        let mut records = Vec::new();
        while records.len() < expected && std::time::Instant::now() < deadline {
            if let Some(message) = client.poll(Duration::from_millis(200)) {
                let m = message?;
                records.push(ReadRecord {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers: courier::kafka::headers::read(&m),
                });
            }
        }
        Ok(records)
    })
    .await?
}

/// The offset group `group` committed for `topic`/`partition`, when it committed one.
pub async fn committed(bootstrap: &str, group: &str, topic: &str, partition: i32) -> anyhow::Result<Option<i64>> {
    use rdkafka::{Offset, TopicPartitionList};
    let (bootstrap, group, topic) = (bootstrap.to_owned(), group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()?;
        let mut list = TopicPartitionList::new();
        list.add_partition(&topic, partition);
        let committed = client.committed_offsets(list, Duration::from_secs(10))?;
        Ok(committed.elements().first().and_then(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }))
    })
    .await?
}
