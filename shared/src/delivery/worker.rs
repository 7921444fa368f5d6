//! Delivering one event to the end: decode it, call the handler, retry transient failures with backoff
//! (other keys keep flowing meanwhile: a waiting event holds no in-flight slot), wait out an open circuit
//! breaker without spending attempts, and hand what cannot be delivered to the failure route once the
//! dead-letter guard gives it a turn.
//!
//! The retry budget (`retry_max_attempts`, `retry_max_elapsed_ms`) counts the calls an event made through
//! the closed breaker and the time spent on them and their backoff. Waiting while the API's breaker is open,
//! and the half-open probe made on behalf of every waiting event, spend nothing. Since one event's failures
//! never open the breaker by themselves (see `breaker`), an event whose own calls keep failing always ends
//! in the failure route, breaker or not; only an outage that fails many events makes them wait without
//! spending their budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::dlq::{CHANNEL_HEADER, CONSUMER_HEADER};
use super::dlq_guard::DlqGuard;
use super::failure::{FailedRecord, FailureRoute};
use super::handler::{Failure, Handler, Incoming, Outcome};
use super::record::Record;
use super::retry::RetryPolicy;
use crate::events;
use crate::health::Health;
use crate::kafka::headers;
use crate::telemetry::metrics::{self, Label};
use crate::telemetry::propagation;

/// What every event's delivery shares.
pub struct Worker<H, R> {
    /// The consumer's domain mapping.
    pub handler: H,
    /// The consumer's name, as its metrics are labelled.
    pub consumer: Label,
    /// Where undeliverable events go.
    pub route: R,
    /// The retry budget and schedule.
    pub policy: RetryPolicy,
    /// One permit per handler call in flight (`consumer.max_in_flight`).
    pub in_flight: Arc<Semaphore>,
    /// The limit on the rate of dead letters.
    pub guard: DlqGuard,
    /// Where a failing failure route is reported.
    pub health: Health,
}

/// Name under which a failing failure route is reported to [`Health`].
pub const FAILURE_ROUTE: &str = "failure_route";

/// When an event's delivery must stop.
#[derive(Debug, Clone)]
pub struct Stops {
    /// Fires on revoke or shutdown: no new attempt, no more waiting.
    pub cancel: CancellationToken,
    /// Fires when the call in flight must be dropped too (revoke after its timeout, or the drain timed out).
    pub abort: CancellationToken,
}

/// How the delivery of one event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered, or accepted by the failure route: the offset may be committed.
    Handled,
    /// Stopped by a revoke or shutdown before it was handled: the offset must not be committed.
    Abandoned,
}

/// Why an event failed for good, and when.
struct Verdict {
    /// The last failure.
    failure: Failure,
    /// Calls made.
    attempts: u32,
    /// When the first call failed.
    first: DateTime<Utc>,
    /// When the last call failed.
    last: DateTime<Utc>,
}

/// Sleeps for `delay` unless `cancel` fires first; `false` when cancelled.
async fn pause(delay: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

impl<H: Handler, R: FailureRoute> Worker<H, R> {
    /// Delivers `record`, giving up (without handling it) when `stops.cancel` fires between attempts or
    /// `stops.abort` during one.
    pub async fn deliver(&self, record: &Record, stops: &Stops) -> Delivery {
        let cancel = &stops.cancel;
        metrics::event_received(&self.consumer, &record.tp.0);
        let event = match events::decode_envelope(record.value.as_deref()) {
            Ok(event) => event,
            Err(error) => {
                let now = Utc::now();
                let verdict = Verdict { failure: Failure::from(&error), attempts: 0, first: now, last: now };
                return self.fail(record, None, None, verdict, cancel).await;
            }
        };
        // The event's span continues the trace of its `traceparent` header (the order API's publish span), so
        // every log line and HTTP call of the event belongs to the order's trace.
        let span = tracing::info_span!(
            "event",
            otel.kind = "consumer",
            consumer = %self.consumer,
            event_id = %event.id,
            event_type = %event.event_type,
            trace_id = tracing::field::Empty,
            topic = %record.topic(),
            partition = record.partition(),
            offset = record.offset,
        );
        let trace = propagation::continue_trace(&span, propagation::from_record(&record.headers));
        let trace_id = trace.id();
        span.record("trace_id", trace_id.as_str());
        let incoming = Incoming {
            topic: record.topic().to_owned(),
            partition: record.partition(),
            offset: record.offset,
            key: record.key.as_deref().and_then(|k| std::str::from_utf8(k).ok()).map(str::to_owned),
            trace_id,
            event,
        };
        if let Some(other) = replayed_for_another(record, self.handler.name()) {
            span.in_scope(
                || tracing::info!(dead_lettered_by = %other, "a replayed dead letter of another consumer: skipped"),
            );
            metrics::event_finished(&self.consumer, &record.tp.0, None, "skipped");
            return Delivery::Handled;
        }
        let mut channels = self.handler.channels(&incoming);
        if let Some(only) = replayed_channel(record) {
            // A replayed dead letter re-runs only the channel that failed.
            channels.retain(|c| *c == only);
            if channels.is_empty() {
                span.in_scope(|| tracing::info!(channel = %only, "replayed channel no longer applies: nothing to do"));
                metrics::event_finished(&self.consumer, &record.tp.0, None, "skipped");
                return Delivery::Handled;
            }
        }
        if channels.len() <= 1 {
            let delivery = self.deliver_channel(record, &incoming, channels.first().copied(), &span, stops);
            return trace.scope(delivery).await;
        }
        let deliveries =
            channels.iter().map(|channel| self.deliver_channel(record, &incoming, Some(channel), &span, stops));
        let results = trace.scope(futures::future::join_all(deliveries)).await;
        if results.iter().all(|d| *d == Delivery::Handled) { Delivery::Handled } else { Delivery::Abandoned }
    }

    /// Delivers one channel of an event: attempts, retries, and the failure route.
    async fn deliver_channel(
        &self,
        record: &Record,
        incoming: &Incoming,
        channel: Option<&'static str>,
        span: &tracing::Span,
        stops: &Stops,
    ) -> Delivery {
        let span = match channel {
            Some(channel) => tracing::info_span!(parent: span, "channel", channel),
            None => span.clone(),
        };
        let verdict = match self.attempt_until_verdict(incoming, channel, &span, stops).await {
            Some(Ok(())) => {
                metrics::event_finished(&self.consumer, &record.tp.0, channel, "done");
                if let Some(written) = record.timestamp_ms {
                    let elapsed = Utc::now().timestamp_millis().saturating_sub(written).max(0);
                    metrics::end_to_end(&self.consumer, &record.tp.0, Duration::from_millis(elapsed.unsigned_abs()));
                }
                return Delivery::Handled;
            }
            Some(Err(verdict)) => verdict,
            None => return Delivery::Abandoned,
        };
        let id = incoming.event.id.clone();
        self.fail(record, Some(&id), channel, verdict, &stops.cancel).instrument(span).await
    }

    /// Calls the handler until the event is delivered (`Ok`), fails for good (`Err` with the verdict), or
    /// a stop fires (`None`).
    async fn attempt_until_verdict(
        &self,
        incoming: &Incoming,
        channel: Option<&'static str>,
        span: &tracing::Span,
        stops: &Stops,
    ) -> Option<Result<(), Verdict>> {
        let cancel = &stops.cancel;
        let mut started = Instant::now();
        let mut attempts = 0;
        let mut first_failure: Option<DateTime<Utc>> = None;
        loop {
            let permit = tokio::select! {
                biased;
                () = cancel.cancelled() => return None,
                permit = self.in_flight.acquire() => permit,
            };
            // Dropping the call's future on abort drops its HTTP request: the call ends here, before the
            // partition's next owner may make it again.
            let outcome = tokio::select! {
                biased;
                () = stops.abort.cancelled() => return None,
                outcome = self.handler.handle(incoming, channel).instrument(span.clone()) => outcome,
            };
            drop(permit);
            let (failure, permanent) = match outcome {
                Outcome::Done => {
                    span.in_scope(|| tracing::debug!(attempts = attempts + 1, "event delivered"));
                    return Some(Ok(()));
                }
                Outcome::Retry(failure) if !failure.charged => {
                    metrics::retry(&self.consumer, failure.kind);
                    // The API's breaker is open: wait for it, spending neither attempts nor retry time. Like every
                    // wait, it is capped by `retry_max_backoff_ms`.
                    let wait = failure.retry_after.unwrap_or(Duration::from_millis(100)).min(self.policy.max_backoff);
                    let waited = Instant::now();
                    if !pause(wait + jitter(wait), cancel).await {
                        return None;
                    }
                    started += waited.elapsed();
                    continue;
                }
                Outcome::Retry(failure) => (failure, false),
                Outcome::Permanent(failure) => (failure, true),
            };
            attempts += 1;
            let now = Utc::now();
            let first = *first_failure.get_or_insert(now);
            if permanent || !self.policy.allows_another(attempts, started.elapsed()) {
                span.in_scope(|| {
                    tracing::warn!(
                        attempts,
                        error.kind = failure.kind,
                        error.message = %failure.message,
                        "{}",
                        if permanent { "permanent failure: not retrying" } else { "retry budget spent" }
                    )
                });
                return Some(Err(Verdict { failure, attempts, first, last: now }));
            }
            let delay = self.policy.delay(attempts, failure.retry_after);
            metrics::retry(&self.consumer, failure.kind);
            span.in_scope(|| {
                tracing::warn!(
                    attempts,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error.kind = failure.kind,
                    error.message = %failure.message,
                    "transient failure: retrying after a delay"
                )
            });
            if !pause(delay, cancel).await {
                return None;
            }
        }
    }

    /// Hands a record to the failure route once the dead-letter guard gives it a turn, retrying the route
    /// until it accepts or `cancel` fires.
    async fn fail(
        &self,
        record: &Record,
        event_id: Option<&str>,
        channel: Option<&'static str>,
        verdict: Verdict,
        cancel: &CancellationToken,
    ) -> Delivery {
        tokio::select! {
            () = cancel.cancelled() => return Delivery::Abandoned,
            () = self.guard.admit() => {}
        }
        let mut tries = 0;
        loop {
            let failed = FailedRecord {
                topic: record.topic(),
                partition: record.partition(),
                offset: record.offset,
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                headers: &record.headers,
                timestamp_ms: record.timestamp_ms,
                event_id,
                attempts: verdict.attempts,
                channel,
                failure: &verdict.failure,
                first_failure_at: verdict.first,
                last_failure_at: verdict.last,
            };
            match self.route.route(failed).await {
                Ok(()) => {
                    if tries > 0 {
                        self.health.clear(FAILURE_ROUTE);
                    }
                    metrics::event_finished(&self.consumer, &record.tp.0, channel, self.route.outcome());
                    return Delivery::Handled;
                }
                Err(error) => {
                    tries += 1;
                    self.health.set_problem(FAILURE_ROUTE, format!("undeliverable events cannot be routed: {error}"));
                    let delay = self.policy.delay(tries, None);
                    tracing::error!(
                        %error, tries, topic = record.topic(), partition = record.partition(), offset = record.offset,
                        "the failure route refused the record: it stays uncommitted and is tried again"
                    );
                    if !pause(delay, cancel).await {
                        return Delivery::Abandoned;
                    }
                }
            }
        }
    }
}

/// The consumer that dead-lettered this (replayed) record, when it is not `me`.
fn replayed_for_another<'r>(record: &'r Record, me: &str) -> Option<&'r str> {
    headers::text(&record.headers, CONSUMER_HEADER).filter(|consumer| *consumer != me)
}

/// The channel a replayed dead letter was dead-lettered on.
fn replayed_channel(record: &Record) -> Option<&str> {
    headers::text(&record.headers, CHANNEL_HEADER)
}

/// Up to a tenth of `wait`, so that events blocked by one breaker do not all wake at once.
fn jitter(wait: Duration) -> Duration {
    use rand::Rng;
    let max = u64::try_from((wait / 10).as_millis()).unwrap_or(0);
    Duration::from_millis(rand::rng().random_range(0..=max))
}
