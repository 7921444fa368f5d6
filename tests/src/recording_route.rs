//! A failure route that records what it is given, so tests can see which events were routed and why.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::delivery::failure::{FailedRecord, FailureRoute};
use tokio::sync::watch;

/// What the route was given for one record.
#[derive(Debug, Clone)]
pub struct Routed {
    /// Topic, partition and offset of the record.
    pub coordinates: (String, i32, i64),
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// The record value.
    pub value: Option<Vec<u8>>,
    /// The event id, when decodable.
    pub event_id: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Failure kind.
    pub kind: &'static str,
    /// HTTP status of the last response, when there was one.
    pub http_status: Option<u16>,
}

/// Records routed failures; clones share the record.
#[derive(Debug, Clone)]
pub struct RecordingRoute {
    /// Everything routed so far.
    routed: Arc<Mutex<Vec<Routed>>>,
    /// Bumped on every routed record.
    changed: Arc<watch::Sender<usize>>,
}

impl Default for RecordingRoute {
    fn default() -> Self {
        Self { routed: Arc::default(), changed: Arc::new(watch::channel(0).0) }
    }
}

impl RecordingRoute {
    /// Everything routed so far.
    pub fn routed(&self) -> Vec<Routed> {
        self.routed.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits until at least `n` records were routed.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<Routed>> {
        let mut rx = self.changed.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|count| *count >= n))
            .await
            .map_err(|_| anyhow::anyhow!("only {} of {n} records routed within {timeout:?}", self.routed().len()))??;
        Ok(self.routed())
    }
}

impl FailureRoute for RecordingRoute {
    async fn route(&self, record: FailedRecord<'_>) -> Result<(), String> {
        let routed = Routed {
            coordinates: (record.topic.to_owned(), record.partition, record.offset),
            key: record.key.map(<[u8]>::to_vec),
            value: record.value.map(<[u8]>::to_vec),
            event_id: record.event_id.map(str::to_owned),
            attempts: record.attempts,
            kind: record.failure.kind,
            http_status: record.failure.http_status,
        };
        let count = {
            let mut all = self.routed.lock().map_err(|e| e.to_string())?;
            all.push(routed);
            all.len()
        };
        self.changed.send_replace(count);
        Ok(())
    }
}
