//! Looking at a topic from the outside.

use std::time::Duration;

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
