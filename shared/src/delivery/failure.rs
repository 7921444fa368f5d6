//! The failure route: where an event goes when its outcome is permanent or its retry budget is spent.
//!
//! Two routes implement [`FailureRoute`]: the dead-letter topic ([`super::dlq::DeadLetterRoute`]) and
//! [`LogFailureRoute`], which logs and drops (when `dlq.enabled` is false, and in tests).

use std::future::Future;

use chrono::{DateTime, Utc};

use super::handler::Failure;
use crate::kafka::headers::RawHeader;

/// Where a record that could not be delivered is reported.
#[derive(Debug, Clone)]
pub struct FailedRecord<'a> {
    /// Topic the record was read from.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, when it has one.
    pub key: Option<&'a [u8]>,
    /// Its value, byte for byte.
    pub value: Option<&'a [u8]>,
    /// Its headers, in order, byte for byte.
    pub headers: &'a [RawHeader],
    /// Its timestamp (milliseconds since the epoch).
    pub timestamp_ms: Option<i64>,
    /// The event id, when the value could be decoded that far.
    pub event_id: Option<&'a str>,
    /// The format the record did not decode in, when that is why it failed.
    pub format: Option<&'a str>,
    /// Attempts made (0 when the record could not be decoded).
    pub attempts: u32,
    /// The channel that failed, for handlers with several (see [`super::Handler::channels`]).
    pub channel: Option<&'a str>,
    /// The last failure.
    pub failure: &'a Failure,
    /// When the first attempt failed (or the record was found undecodable).
    pub first_failure_at: DateTime<Utc>,
    /// When the last attempt failed.
    pub last_failure_at: DateTime<Utc>,
}

/// Takes records that could not be delivered. When `route` returns, the record counts as handled and its
/// offset may be committed; an error keeps the offset uncommitted.
pub trait FailureRoute: Send + Sync + 'static {
    /// Reports one failed record.
    fn route(&self, record: FailedRecord<'_>) -> impl Future<Output = Result<(), String>> + Send;

    /// How a record this route accepted is counted in `courier_events_finished_total`.
    fn outcome(&self) -> &'static str {
        "failed"
    }
}

/// Logs failed records and drops them.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogFailureRoute;

impl FailureRoute for LogFailureRoute {
    async fn route(&self, record: FailedRecord<'_>) -> Result<(), String> {
        record.log("event could not be delivered and is skipped");
        Ok(())
    }
}

impl FailedRecord<'_> {
    /// Logs the record's coordinates and its last failure, with `what` happened to it.
    pub fn log(&self, what: &str) {
        tracing::error!(
            topic = self.topic,
            partition = self.partition,
            offset = self.offset,
            event_id = self.event_id.unwrap_or(""),
            attempts = self.attempts,
            channel = self.channel.unwrap_or(""),
            error.kind = self.failure.kind,
            error.message = %self.failure.message,
            http.status = self.failure.http_status,
            endpoint = self.failure.endpoint.as_deref().unwrap_or(""),
            "{what}"
        );
    }
}
