//! Delivering one event to the end: decode it, call the handler, retry transient failures with backoff
//! (other keys keep flowing meanwhile: a waiting event holds no in-flight slot), and hand what cannot be
//! delivered to the failure route.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::failure::{FailedRecord, FailureRoute};
use super::handler::{Failure, Handler, Incoming, Outcome};
use super::record::Record;
use super::retry::RetryPolicy;
use crate::events;
use crate::telemetry::TraceContext;

/// What every event's delivery shares.
pub struct Worker<H, R> {
    /// The consumer's domain mapping.
    pub handler: H,
    /// Where undeliverable events go.
    pub route: R,
    /// The retry budget and schedule.
    pub policy: RetryPolicy,
    /// One permit per handler call in flight (`consumer.max_in_flight`).
    pub in_flight: Arc<Semaphore>,
}

/// How the delivery of one event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered, or accepted by the failure route: the offset may be committed.
    Handled,
    /// Stopped by a revoke or shutdown before it was handled: the offset must not be committed.
    Abandoned,
}

impl<H: Handler, R: FailureRoute> Worker<H, R> {
    /// Delivers `record`, giving up (without handling it) when `cancel` fires between attempts.
    pub async fn deliver(&self, record: &Record, cancel: &CancellationToken) -> Delivery {
        let event = match events::decode_envelope(record.value.as_deref()) {
            Ok(event) => event,
            Err(error) => {
                return self
                    .route_failed(record, None, 0, &Failure::from(&error), cancel)
                    .await;
            }
        };
        let trace = record.trace.unwrap_or_else(TraceContext::new_root);
        let incoming = Incoming {
            topic: record.topic().to_owned(),
            partition: record.partition(),
            offset: record.offset,
            key: record
                .key
                .as_deref()
                .and_then(|k| std::str::from_utf8(k).ok())
                .map(str::to_owned),
            trace,
            event,
        };
        let span = tracing::info_span!(
            "event",
            event_id = %incoming.event.id,
            event_type = %incoming.event.event_type,
            trace_id = %trace.trace_id_hex(),
            topic = %incoming.topic,
            partition = incoming.partition,
            offset = incoming.offset,
        );
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            let permit = tokio::select! {
                biased;
                () = cancel.cancelled() => return Delivery::Abandoned,
                permit = self.in_flight.acquire() => permit,
            };
            attempts += 1;
            let outcome = self
                .handler
                .handle(&incoming)
                .instrument(span.clone())
                .await;
            drop(permit);
            let failure = match outcome {
                Outcome::Done => {
                    span.in_scope(|| tracing::debug!(attempts, "event delivered"));
                    return Delivery::Handled;
                }
                Outcome::Permanent(failure) => {
                    span.in_scope(|| tracing::warn!(attempts, error.kind = failure.kind, error.message = %failure.message, "permanent failure: not retrying"));
                    failure
                }
                Outcome::Retry(failure)
                    if self.policy.allows_another(attempts, started.elapsed()) =>
                {
                    let delay = self.policy.delay(attempts, failure.retry_after);
                    span.in_scope(|| {
                        tracing::warn!(
                            attempts,
                            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            error.kind = failure.kind,
                            error.message = %failure.message,
                            "transient failure: retrying after a delay"
                        )
                    });
                    tokio::select! {
                        () = cancel.cancelled() => return Delivery::Abandoned,
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
                Outcome::Retry(failure) => {
                    span.in_scope(|| tracing::warn!(attempts, error.kind = failure.kind, error.message = %failure.message, "retry budget spent"));
                    failure
                }
            };
            let event_id = incoming.event.id.clone();
            return self
                .route_failed(record, Some(&event_id), attempts, &failure, cancel)
                .instrument(span)
                .await;
        }
    }

    /// Hands a record to the failure route, retrying the route until it accepts or `cancel` fires.
    async fn route_failed(
        &self,
        record: &Record,
        event_id: Option<&str>,
        attempts: u32,
        failure: &Failure,
        cancel: &CancellationToken,
    ) -> Delivery {
        let mut tries = 0;
        loop {
            let failed = FailedRecord {
                topic: record.topic(),
                partition: record.partition(),
                offset: record.offset,
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                event_id,
                attempts,
                failure,
            };
            match self.route.route(failed).await {
                Ok(()) => return Delivery::Handled,
                Err(error) => {
                    tries += 1;
                    let delay = self.policy.delay(tries, None);
                    tracing::error!(%error, tries, topic = record.topic(), partition = record.partition(), offset = record.offset, "the failure route refused the record; trying again");
                    tokio::select! {
                        () = cancel.cancelled() => return Delivery::Abandoned,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}
