//! Delivering one event to the end: decode it, call the handler, retry transient failures with backoff
//! (other keys keep flowing meanwhile: a waiting event holds no in-flight slot), wait out an open circuit
//! breaker without spending attempts, and hand what cannot be delivered to the failure route once the
//! dead-letter guard gives it a turn.
//!
//! The retry budget (`retry_max_attempts`, `retry_max_elapsed_ms`) counts the calls an event made through
//! the closed breaker and the time spent on them and their backoff. An API may have a budget of its own
//! (`apis.<name>.max_attempts`, `max_backoff_ms`), carried by each failure of a call to it: the failure at hand
//! decides whether another attempt is allowed and how long to wait for it. Waiting while the API's breaker is open,
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

use super::batch::Batches;
use super::dlq::{CHANNEL_HEADER, CONSUMER_HEADER, REPLAY_CHANNEL_HEADER, REPLAY_CONSUMER_HEADER};
use super::dlq_guard::DlqGuard;
use super::failure::{FailedRecord, FailureRoute};
use super::handler::{Failure, Handler, Incoming, Outcome};
use super::panics::{self, PANIC};
use super::record::Record;
use super::retry::RetryPolicy;
use super::throttle::{Throttle, Throttled, Throttles};
use crate::formats::{Decoded, Decoder, RecordRef, Undecodable};
use crate::health::Health;
use crate::kafka::headers;
use crate::telemetry::metrics::EventMetrics;
use crate::telemetry::propagation;

/// What every event's delivery shares.
pub struct Worker<H, R> {
    /// The consumer's domain mapping.
    pub handler: H,
    /// Decodes each record in the consumer's format.
    pub decoder: Decoder,
    /// The consumer's per-event metrics (labelled with its name).
    pub metrics: EventMetrics,
    /// Where undeliverable events go.
    pub route: R,
    /// The consumer's retry budget and schedule (an API's own budget replaces its limits for that API's
    /// failures: [`RetryPolicy::within`]).
    pub policy: RetryPolicy,
    /// One permit per handler call in flight (`consumer.max_in_flight`).
    pub in_flight: Arc<Semaphore>,
    /// The limit on the rate of dead letters.
    pub guard: DlqGuard,
    /// The batches attempts are gathered into, when the handler batches ([`Handler::batching`]).
    pub batches: Option<Batches>,
    /// The events an API keeps throttling.
    pub throttles: Throttles,
    /// Where a failing failure route is reported.
    pub health: Health,
}

/// Name under which a failing failure route is reported to [`Health`].
pub const FAILURE_ROUTE: &str = "failure_route";
/// Name under which records that cannot be decoded for now (a transient failure) are reported to [`Health`].
pub const DECODING: &str = "decoding";
/// Name under which an event that could be neither delivered nor dead-lettered because of a panic is reported.
pub const PANICKED: &str = "panic";

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
    /// `stops.abort` during one. A panic in an attempt fails that attempt; a panic anywhere else in the
    /// delivery (the handler's `channels`, the failure route, …) dead-letters the record at once.
    pub async fn deliver(&self, record: &Record, stops: &Stops) -> Delivery {
        match panics::contain(self.deliver_record(record, stops)).await {
            Ok(delivery) => delivery,
            Err(failure) => self.after_panic(record, failure, stops).await,
        }
    }

    /// Routes `record`, whose delivery panicked outside an attempt, to the failure route with `failure`. If
    /// that panics too, the record stays unfinished (its partition commits no further) and the consumer is not
    /// ready, saying why.
    async fn after_panic(&self, record: &Record, failure: Failure, stops: &Stops) -> Delivery {
        self.metrics.panicked();
        tracing::error!(
            topic = record.topic(), partition = record.partition(), offset = record.offset,
            error.message = %failure.message, "the delivery of a record panicked: it goes to the failure route"
        );
        let now = Utc::now();
        let verdict = Verdict { failure, attempts: 0, first: now, last: now };
        match panics::contain(self.fail(record, None, None, None, verdict, &stops.cancel)).await {
            Ok(delivery) => delivery,
            Err(failure) => {
                let at = format!("{}/{}@{}", record.topic(), record.partition(), record.offset);
                tracing::error!(record = %at, error.message = %failure.message, "routing a record panicked: it stays unfinished");
                self.health.set_problem(
                    PANICKED,
                    format!(
                        "{at} can be neither delivered nor dead-lettered ({}): its partition commits no further",
                        failure.message
                    ),
                );
                Delivery::Abandoned
            }
        }
    }

    /// [`Worker::deliver`], panics not contained.
    async fn deliver_record(&self, record: &Record, stops: &Stops) -> Delivery {
        let cancel = &stops.cancel;
        self.metrics.received(&record.tp.0);
        let (decoded, identity) = match self.decode(record, cancel).await {
            Some(Ok(decoded)) => decoded,
            Some(Err((kind, reason))) => {
                let now = Utc::now();
                let verdict = Verdict { failure: Failure::new(kind, reason), attempts: 0, first: now, last: now };
                return self.fail(record, None, Some(self.decoder.format().name()), None, verdict, cancel).await;
            }
            None => return Delivery::Abandoned,
        };
        let (event_id, event_type) = match &decoded {
            Decoded::CloudEvent { event, .. } => (event.id.as_str(), event.event_type.as_str()),
            other => (identity.as_str(), other.kind()),
        };
        // The event's span continues the trace of its `traceparent` header (the order API's publish span), so
        // every log line and HTTP call of the event belongs to the order's trace.
        let (span, trace) = propagation::start_trace(propagation::from_record(&record.headers), |trace_id| {
            tracing::info_span!(
                "event",
                otel.kind = "consumer",
                consumer = %self.metrics.consumer(),
                event_id = %event_id,
                event_type = %event_type,
                trace_id,
                topic = %record.topic(),
                partition = record.partition(),
                offset = record.offset,
            )
        });
        let trace_id = trace.id().to_owned();
        let incoming = Incoming {
            topic: record.topic().to_owned(),
            partition: record.partition(),
            offset: record.offset,
            key: record.key.as_deref().and_then(|k| std::str::from_utf8(k).ok()).map(str::to_owned),
            headers: record.headers.clone(),
            timestamp_ms: record.timestamp_ms,
            trace_id,
            decoded,
            identity,
            value: record.value.clone().unwrap_or_default(),
            stop: stops.cancel.clone(),
        };
        if let Some(other) = replayed_for_another(record, self.metrics.consumer()) {
            span.in_scope(
                || tracing::info!(dead_lettered_by = %other, "a replayed dead letter of another consumer: skipped"),
            );
            self.metrics.finished(&record.tp.0, None, "skipped");
            return Delivery::Handled;
        }
        let mut channels = self.handler.channels(&incoming);
        if let Some(only) = replayed_channel(record) {
            // A replayed dead letter re-runs only the channel that failed.
            channels.retain(|c| *c == only);
            if channels.is_empty() {
                span.in_scope(|| tracing::info!(channel = %only, "replayed channel no longer applies: nothing to do"));
                self.metrics.finished(&record.tp.0, None, "skipped");
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
                self.metrics.finished(&record.tp.0, channel, "done");
                if let Some(written) = record.timestamp_ms {
                    let elapsed = Utc::now().timestamp_millis().saturating_sub(written).max(0);
                    self.metrics.end_to_end(&record.tp.0, Duration::from_millis(elapsed.unsigned_abs()));
                }
                return Delivery::Handled;
            }
            Some(Err(verdict)) => verdict,
            None => return Delivery::Abandoned,
        };
        self.fail(record, Some(incoming.id()), None, channel, verdict, &stops.cancel).instrument(span).await
    }

    /// `record` decoded in the consumer's format with its identity, or the kind and reason of a permanent
    /// failure; `None` when `cancel` fires first. A transient failure (what decoding needs cannot be reached) is
    /// tried again with backoff, spending nothing and reported as a problem until decoding succeeds: it never
    /// dead-letters a record.
    async fn decode(
        &self,
        record: &Record,
        cancel: &CancellationToken,
    ) -> Option<Result<(Decoded, String), (&'static str, String)>> {
        let view = RecordRef {
            topic: record.topic(),
            partition: record.partition(),
            offset: record.offset,
            key: record.key.as_deref(),
            value: record.value.as_ref(),
            headers: &record.headers,
        };
        let mut tries = 0;
        loop {
            let reason = match self.decoder.decode(view).await {
                Ok(decoded) => {
                    if tries > 0 {
                        self.health.clear(DECODING);
                    }
                    return Some(Ok(decoded));
                }
                Err(Undecodable::Permanent { kind, reason }) => return Some(Err((kind, reason))),
                Err(Undecodable::Transient { reason }) => reason,
            };
            tries += 1;
            self.metrics.retry("decode");
            self.health.set_problem(DECODING, format!("records cannot be decoded for now: {reason}"));
            tracing::warn!(
                topic = record.topic(), partition = record.partition(), offset = record.offset, tries,
                error.message = %reason, "the record cannot be decoded for now: trying again"
            );
            if !pause(self.policy.delay(tries, None), cancel).await {
                return None;
            }
        }
    }

    /// One attempt at `incoming` on `channel`: a call of its own, or its part in a batch; `None` when
    /// `stops.abort` dropped the call. A panic fails the attempt (kind `panic`).
    async fn attempt(&self, incoming: &Incoming, channel: Option<&'static str>, stops: &Stops) -> Option<Outcome> {
        let outcome = match &self.batches {
            // A batch ends within the stops by itself: it drops its call before it answers.
            Some(batches) => batches.attempt(&self.handler, incoming, channel, stops).await,
            // Dropping the call's future on abort drops its HTTP request: the call ends here, before the
            // partition's next owner may make it again.
            None => tokio::select! {
                biased;
                () = stops.abort.cancelled() => return None,
                outcome = panics::contain(self.handler.handle(incoming, channel)) => outcome.unwrap_or_else(Outcome::Retry),
            },
        };
        if let Outcome::Retry(failure) | Outcome::Permanent(failure) = &outcome
            && failure.kind == PANIC
        {
            self.metrics.panicked();
        }
        Some(outcome)
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
        let mut throttle = Throttle::new(&self.throttles, &self.metrics);
        loop {
            let permit = tokio::select! {
                biased;
                () = cancel.cancelled() => return None,
                permit = self.in_flight.acquire() => permit,
            };
            // The attempt (the handler's call, its largest state) lives on the heap only while it runs: an event
            // waiting for its turn above holds a task of a fixed, small size whatever its handler keeps.
            let outcome = Box::pin(self.attempt(incoming, channel, stops)).instrument(span.clone()).await?;
            drop(permit);
            let outcome = match outcome {
                Outcome::Retry(failure) if failure.http_status == Some(429) && !failure.charged => {
                    let describe = || {
                        let channel = channel.map(|c| format!(" on channel {c}")).unwrap_or_default();
                        format!(
                            "{}/{}@{} (event {}{channel}), throttled by {}",
                            incoming.topic,
                            incoming.partition,
                            incoming.offset,
                            incoming.id(),
                            failure.endpoint.as_deref().unwrap_or("its API")
                        )
                    };
                    match throttle.throttled(describe) {
                        Throttled::Wait => Outcome::Retry(failure),
                        Throttled::Charge => Outcome::Retry(Failure { charged: true, ..failure }),
                    }
                }
                other => {
                    throttle.ended();
                    other
                }
            };
            let (failure, permanent) = match outcome {
                Outcome::Done => {
                    span.in_scope(|| tracing::debug!(attempts = attempts + 1, "event delivered"));
                    return Some(Ok(()));
                }
                Outcome::Retry(failure) if !failure.charged => {
                    self.metrics.retry(failure.kind);
                    // The API's breaker is open, or the API throttles: wait, spending neither attempts nor retry
                    // time. Like every wait, it is capped by `retry_max_backoff_ms` (or the API's `max_backoff_ms`).
                    let max_backoff = self.policy.within(failure.budget).max_backoff;
                    let wait = failure.retry_after.unwrap_or(Duration::from_millis(100)).min(max_backoff);
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
            let policy = self.policy.within(failure.budget);
            if permanent || !policy.allows_another(attempts, started.elapsed()) {
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
            let delay = policy.delay(attempts, failure.retry_after);
            self.metrics.retry(failure.kind);
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
        format: Option<&str>,
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
                format,
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
                    self.metrics.finished(&record.tp.0, channel, self.route.outcome());
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

/// The consumer a replayed record is meant for, when it is not `me`: `courier.replay.consumer` (set by
/// `courier-dlq replay`), else `courier.dlq.consumer` (a dead letter produced back by hand, headers and all).
fn replayed_for_another<'r>(record: &'r Record, me: &str) -> Option<&'r str> {
    headers::text(&record.headers, REPLAY_CONSUMER_HEADER)
        .or_else(|| headers::text(&record.headers, CONSUMER_HEADER))
        .filter(|consumer| *consumer != me)
}

/// The channel a replayed dead letter was dead-lettered on: `courier.replay.channel`, else
/// `courier.dlq.channel` (replayed by hand). A record replayed by `courier-dlq` for a consumer as a whole
/// (`courier.replay.consumer` without a channel) re-runs every channel, whatever old headers it carries.
fn replayed_channel(record: &Record) -> Option<&str> {
    if headers::text(&record.headers, REPLAY_CONSUMER_HEADER).is_some() {
        return headers::text(&record.headers, REPLAY_CHANNEL_HEADER);
    }
    headers::text(&record.headers, CHANNEL_HEADER)
}

/// Up to a tenth of `wait`, so that events blocked by one breaker do not all wake at once.
fn jitter(wait: Duration) -> Duration {
    use rand::Rng;
    let max = u64::try_from((wait / 10).as_millis()).unwrap_or(0);
    Duration::from_millis(rand::rng().random_range(0..=max))
}

#[cfg(test)]
mod tests {
    //! The worker's state machine on its own: attempts, the retry budget, waits that spend nothing, the
    //! failure route (and its refusals), the dead-letter guard, cancellation, channels and replays. Time is
    //! tokio's paused clock, so backoffs pass at once.

    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;

    use super::*;
    use crate::delivery::throttle::ThrottlePolicy;

    /// A handler that answers each channel's calls from a script (then `Done`), counting the calls.
    #[derive(Default)]
    struct Scripted {
        /// Outcomes still to give, per channel (`None`: the single channel).
        script: Mutex<HashMap<Option<&'static str>, VecDeque<Outcome>>>,
        /// Calls made, per channel.
        calls: Mutex<HashMap<Option<&'static str>, u32>>,
        /// The channels an event has.
        channels: Vec<&'static str>,
        /// The identity of every event handled, per call.
        identities: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(channel: Option<&'static str>, outcomes: Vec<Outcome>) -> Self {
            let this = Self::default();
            this.script.lock().expect("lock").insert(channel, outcomes.into());
            this
        }

        fn calls(&self, channel: Option<&'static str>) -> u32 {
            self.calls.lock().expect("lock").get(&channel).copied().unwrap_or(0)
        }
    }

    impl Handler for Scripted {
        fn channels(&self, _incoming: &Incoming) -> Vec<&'static str> {
            self.channels.clone()
        }

        async fn handle(&self, incoming: &Incoming, channel: Option<&'static str>) -> Outcome {
            *self.calls.lock().expect("lock").entry(channel).or_default() += 1;
            self.identities.lock().expect("lock").push(incoming.identity.clone());
            let next = self.script.lock().expect("lock").get_mut(&channel).and_then(VecDeque::pop_front);
            next.unwrap_or(Outcome::Done)
        }
    }

    /// What the route was given, and how many times it refuses before accepting.
    #[derive(Default)]
    struct Recorded {
        /// (channel, attempts, failure kind) of every record accepted.
        accepted: Mutex<Vec<(Option<String>, u32, &'static str)>>,
        /// The format each record accepted did not decode in, if that is why.
        formats: Mutex<Vec<Option<String>>>,
        /// Calls to `route`, refused or not.
        offered: Mutex<u32>,
        /// Refusals still to make.
        refusals: Mutex<u32>,
    }

    impl FailureRoute for Arc<Recorded> {
        async fn route(&self, record: FailedRecord<'_>) -> Result<(), String> {
            *self.offered.lock().expect("lock") += 1;
            let mut refusals = self.refusals.lock().expect("lock");
            if *refusals > 0 {
                *refusals -= 1;
                return Err("the dead-letter topic is unavailable".into());
            }
            let entry = (record.channel.map(str::to_owned), record.attempts, record.failure.kind);
            self.accepted.lock().expect("lock").push(entry);
            self.formats.lock().expect("lock").push(record.format.map(str::to_owned));
            Ok(())
        }
    }

    impl Recorded {
        fn accepted(&self) -> Vec<(Option<String>, u32, &'static str)> {
            self.accepted.lock().expect("lock").clone()
        }
    }

    fn worker<H: Handler>(handler: H, max_attempts: u32, guard_max: u32) -> (Worker<H, Arc<Recorded>>, Arc<Recorded>) {
        let route = Arc::new(Recorded::default());
        let health = Health::default();
        let worker = Worker {
            handler,
            decoder: Decoder::new(crate::formats::Reading::cloudevents()),
            metrics: EventMetrics::new(Arc::from("scripted")),
            route: Arc::clone(&route),
            policy: RetryPolicy {
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                max_attempts,
                max_elapsed: Duration::from_secs(3600),
            },
            in_flight: Arc::new(Semaphore::new(8)),
            guard: DlqGuard::new(guard_max, Duration::from_secs(3600), Arc::from("scripted"), health.clone()),
            batches: None,
            throttles: crate::delivery::throttle::Throttles::new(
                crate::delivery::throttle::ThrottlePolicy { alert_after: Duration::from_secs(60), charge_after: None },
                &crate::telemetry::metrics::EventMetrics::new(Arc::from("test")),
                health.clone(),
            ),
            health,
        };
        (worker, route)
    }

    fn record(offset: i64) -> Record {
        crate::delivery::record::order_record((Arc::from("orders"), 0), offset, "k")
    }

    fn stops() -> Stops {
        Stops { cancel: CancellationToken::new(), abort: CancellationToken::new() }
    }

    fn transient() -> Outcome {
        Outcome::Retry(Failure::http("POST http://api/x", 503, String::new()))
    }

    fn breaker_open() -> Outcome {
        Outcome::Retry(Failure::new("circuit_open", "open").with_retry_after(Some(Duration::from_secs(5))).uncharged())
    }

    /// A handler whose call keeps 16 KiB across an await, as a handler with a large state does.
    struct Bulky;

    impl Handler for Bulky {
        async fn handle(&self, _incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
            let state = [7u8; 16 * 1024];
            tokio::task::yield_now().await;
            if std::hint::black_box(&state)[0] == 7 { Outcome::Done } else { transient() }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_waiting_for_its_turn_does_not_hold_its_handlers_state() {
        let (small, _) = worker(Scripted::default(), 5, 0);
        let (bulky, _) = worker(Bulky, 5, 0);
        let (record, stops) = (record(1), stops());
        let small_task = std::mem::size_of_val(&small.deliver(&record, &stops));
        let bulky_task = std::mem::size_of_val(&bulky.deliver(&record, &stops));
        assert_eq!(bulky_task, small_task, "the handler's 16 KiB are not part of the event's task");
        assert_eq!(bulky.deliver(&record, &stops).await, Delivery::Handled);
    }

    #[test]
    fn an_events_task_holds_its_delivery_once_and_no_registry_lookup() {
        let (worker, _) = worker(Scripted::default(), 5, 0);
        let (record, stops) = (record(1), stops());
        let delivery = std::mem::size_of_val(&worker.deliver_record(&record, &stops));
        let task = std::mem::size_of_val(&worker.deliver(&record, &stops));
        assert!(task < delivery + 512, "the panic guard keeps the delivery once: {task} bytes against {delivery}");
        let decoding = std::mem::size_of_val(&worker.decode(&record, &stops.cancel));
        assert!(decoding <= 1024, "decoding keeps a registry's lookup off the task: {decoding} bytes");
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_delivered() {
        let (worker, route) = worker(Scripted::new(None, vec![transient(), transient()]), 5, 0);
        assert_eq!(worker.deliver(&record(1), &stops()).await, Delivery::Handled);
        assert_eq!(worker.handler.calls(None), 3);
        assert!(route.accepted().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_routes_the_event_with_its_attempts() {
        let (worker, route) = worker(Scripted::new(None, vec![transient(); 10]), 3, 0);
        assert_eq!(worker.deliver(&record(1), &stops()).await, Delivery::Handled);
        assert_eq!(worker.handler.calls(None), 3, "exactly max_attempts calls");
        assert_eq!(route.accepted(), vec![(None, 3, "http_status")]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_routed_after_one_call() {
        let permanent = Outcome::Permanent(Failure::http("POST http://api/x", 422, "no".into()));
        let (worker, route) = worker(Scripted::new(None, vec![permanent]), 5, 0);
        assert_eq!(worker.deliver(&record(1), &stops()).await, Delivery::Handled);
        assert_eq!(worker.handler.calls(None), 1);
        assert_eq!(route.accepted(), vec![(None, 1, "http_status")]);
    }

    #[tokio::test(start_paused = true)]
    async fn each_channel_is_retried_within_the_budget_of_the_api_its_calls_go_to() {
        // The consumer allows 6 attempts and 1 s between them; the e-mail API allows 2, the SMS API 4 with at
        // most 300 ms between them. Each failure asks for a 10 s wait, so every delay is the cap.
        let failing = |max_attempts: Option<u32>, max_backoff: Option<Duration>| {
            let failure = Failure::http("POST http://api/x", 503, String::new())
                .with_retry_after(Some(Duration::from_secs(10)))
                .with_budget(crate::delivery::RetryBudget::new(max_attempts, max_backoff));
            vec![Outcome::Retry(failure); 10]
        };
        let handler = Scripted { channels: vec!["email", "sms"], ..Scripted::default() };
        handler.script.lock().expect("lock").insert(Some("email"), failing(Some(2), None).into());
        handler
            .script
            .lock()
            .expect("lock")
            .insert(Some("sms"), failing(Some(4), Some(Duration::from_millis(300))).into());
        let (two_apis, route) = worker(handler, 6, 0);
        let started = tokio::time::Instant::now();
        assert_eq!(two_apis.deliver(&record(1), &stops()).await, Delivery::Handled);
        assert_eq!((two_apis.handler.calls(Some("email")), two_apis.handler.calls(Some("sms"))), (2, 4));
        let mut accepted = route.accepted();
        accepted.sort();
        assert_eq!(accepted, vec![(Some("email".into()), 2, "http_status"), (Some("sms".into()), 4, "http_status")]);
        // The channels run side by side: the e-mail one waits the consumer's 1 s once, the SMS one 300 ms thrice.
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        let (sms_only, _) = worker(Scripted::new(None, failing(Some(4), Some(Duration::from_millis(300)))), 6, 0);
        let started = tokio::time::Instant::now();
        assert_eq!(sms_only.deliver(&record(2), &stops()).await, Delivery::Handled);
        assert_eq!(sms_only.handler.calls(None), 4);
        assert_eq!(started.elapsed(), Duration::from_millis(900), "three waits capped by the API's 300 ms");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_an_open_breaker_spends_no_attempts() {
        let mut script = vec![breaker_open(); 6];
        script.extend([transient(), transient()]);
        let (worker, route) = worker(Scripted::new(None, script), 2, 0);
        assert_eq!(worker.deliver(&record(1), &stops()).await, Delivery::Handled);
        assert_eq!(worker.handler.calls(None), 8, "six waits, then the two attempts of the budget");
        assert_eq!(route.accepted(), vec![(None, 2, "http_status")]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_undecodable_record_is_routed_without_a_call() {
        let (worker, route) = worker(Scripted::default(), 5, 0);
        let mut bad = record(1);
        bad.value = Some(bytes::Bytes::from_static(b"not json"));
        assert_eq!(worker.deliver(&bad, &stops()).await, Delivery::Handled);
        assert_eq!(worker.handler.calls(None), 0);
        assert_eq!(route.accepted(), vec![(None, 0, "decode")]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_is_decoded_in_the_consumers_format_before_its_handler_sees_it() {
        use crate::formats::{Format, Reading};
        let (mut worker, route) = worker(Scripted::default(), 5, 0);
        worker.decoder = Decoder::new(Reading::of(Format::Json));
        let mut plain = record(7);
        plain.value = Some(bytes::Bytes::from_static(br#"{"user_id":"u-1"}"#));
        assert_eq!(worker.deliver(&plain, &stops()).await, Delivery::Handled);
        assert_eq!(*worker.handler.identities.lock().expect("lock"), ["orders-0-7"], "identified by coordinates");
        let mut bad = record(8);
        bad.value = Some(bytes::Bytes::from_static(b"not json"));
        assert_eq!(worker.deliver(&bad, &stops()).await, Delivery::Handled);
        assert_eq!(worker.handler.calls(None), 1, "no call for a record that does not decode");
        assert_eq!(route.accepted(), vec![(None, 0, "decode")]);
        assert_eq!(*route.formats.lock().expect("lock"), [Some("json".to_owned())]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusing_route_is_tried_again_and_reported_until_it_accepts() {
        let permanent = Outcome::Permanent(Failure::http("POST http://api/x", 400, String::new()));
        let (worker, route) = worker(Scripted::new(None, vec![permanent]), 5, 0);
        *route.refusals.lock().expect("lock") = 2;
        let worker = Arc::new(worker);
        let delivery = tokio::spawn({
            let worker = Arc::clone(&worker);
            async move { worker.deliver(&record(1), &stops()).await }
        });
        let reported = worker.health.wait_for(Duration::from_secs(60), |p| p.contains_key(FAILURE_ROUTE)).await;
        assert!(reported, "the refusal is reported to health");
        assert_eq!(delivery.await.expect("delivery"), Delivery::Handled);
        assert_eq!(*route.offered.lock().expect("lock"), 3);
        assert_eq!(route.accepted().len(), 1);
        assert!(worker.health.is_ready(), "the problem is cleared once the route accepts");
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_during_a_backoff_abandons_the_event() {
        // A transient failure asking for a second's wait: the backoff (a random draw from 0 to 100 ms) may
        // otherwise be 0, and the second call then comes before the cancel can.
        let failure = Failure::new("http_status", "503").with_retry_after(Some(Duration::from_secs(1)));
        let (worker, route) = worker(Scripted::new(None, vec![Outcome::Retry(failure); 10]), 10, 0);
        let stops = stops();
        let cancel = stops.cancel.clone();
        let record = record(1);
        let mut delivery = Box::pin(worker.deliver(&record, &stops));
        // The first call fails; cancel while the event waits for its second. The delivery is polled here, never
        // left to the runtime, whose paused clock would otherwise run out the backoff.
        while worker.handler.calls(None) == 0 {
            assert!(futures::poll!(delivery.as_mut()).is_pending(), "the first call fails and is retried later");
        }
        cancel.cancel();
        assert_eq!(delivery.await, Delivery::Abandoned);
        assert!(route.accepted().is_empty());
        assert_eq!(worker.handler.calls(None), 1, "no call after the cancel");
    }

    #[tokio::test]
    async fn the_guard_holds_dead_letters_past_its_limit_until_cancelled() {
        let permanent = || Outcome::Permanent(Failure::http("POST http://api/x", 400, String::new()));
        let (worker, route) = worker(Scripted::new(None, vec![permanent(), permanent()]), 5, 1);
        assert_eq!(worker.deliver(&record(1), &stops()).await, Delivery::Handled);
        let worker = Arc::new(worker);
        let stops = stops();
        let cancel = stops.cancel.clone();
        let second = tokio::spawn({
            let worker = Arc::clone(&worker);
            async move { worker.deliver(&record(2), &stops).await }
        });
        let throttled = worker.health.wait_for(Duration::from_secs(10), |p| p.contains_key("dlq_guard")).await;
        assert!(throttled, "the guard reports that dead letters wait");
        cancel.cancel();
        assert_eq!(second.await.expect("delivery"), Delivery::Abandoned);
        assert_eq!(route.accepted().len(), 1, "only the first event was dead-lettered");
        assert!(worker.health.is_ready(), "no event waits any more");
    }

    #[tokio::test(start_paused = true)]
    async fn each_channel_is_delivered_and_routed_on_its_own() {
        let mut handler = Scripted::new(Some("sms"), vec![Outcome::Permanent(Failure::new("http", "no"))]);
        handler.channels = vec!["email", "sms"];
        let (worker, route) = worker(handler, 5, 0);
        assert_eq!(worker.deliver(&record(1), &stops()).await, Delivery::Handled);
        assert_eq!((worker.handler.calls(Some("email")), worker.handler.calls(Some("sms"))), (1, 1));
        assert_eq!(route.accepted(), vec![(Some("sms".to_owned()), 1, "http")]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_replayed_dead_letter_is_handled_only_by_its_consumer_and_channel() {
        let handler = Scripted { channels: vec!["email", "sms"], ..Scripted::default() };
        let (worker, route) = worker(handler, 5, 0);
        let mut other = record(1);
        other.headers = vec![(CONSUMER_HEADER.as_bytes().to_vec(), Some(b"payment".to_vec()))];
        assert_eq!(worker.deliver(&other, &stops()).await, Delivery::Handled);
        assert_eq!((worker.handler.calls(Some("email")), worker.handler.calls(Some("sms"))), (0, 0));
        let mut mine = record(2);
        mine.headers = vec![
            (CONSUMER_HEADER.as_bytes().to_vec(), Some(b"scripted".to_vec())),
            (CHANNEL_HEADER.as_bytes().to_vec(), Some(b"sms".to_vec())),
        ];
        assert_eq!(worker.deliver(&mine, &stops()).await, Delivery::Handled);
        assert_eq!((worker.handler.calls(Some("email")), worker.handler.calls(Some("sms"))), (0, 1));
        assert!(route.accepted().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_replayed_by_the_tool_is_handled_by_the_consumer_and_channel_its_replay_headers_name() {
        let handler = Scripted { channels: vec!["email", "sms"], ..Scripted::default() };
        let (worker, route) = worker(handler, 5, 0);
        let header = |k: &str, v: &str| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()));
        let calls =
            |w: &Worker<Scripted, Arc<Recorded>>| (w.handler.calls(Some("email")), w.handler.calls(Some("sms")));
        // Meant for another consumer: skipped, even with a stale courier.dlq.consumer naming this one.
        let mut other = record(1);
        other.headers = vec![header(CONSUMER_HEADER, "scripted"), header(REPLAY_CONSUMER_HEADER, "payment")];
        assert_eq!(worker.deliver(&other, &stops()).await, Delivery::Handled);
        assert_eq!(calls(&worker), (0, 0));
        // Meant for this consumer's SMS channel: only that channel runs.
        let mut sms = record(2);
        sms.headers = vec![header(REPLAY_CONSUMER_HEADER, "scripted"), header(REPLAY_CHANNEL_HEADER, "sms")];
        assert_eq!(worker.deliver(&sms, &stops()).await, Delivery::Handled);
        assert_eq!(calls(&worker), (0, 1));
        // Meant for this consumer as a whole: every channel runs, a stale courier.dlq.channel notwithstanding.
        let mut whole = record(3);
        whole.headers = vec![header(CHANNEL_HEADER, "sms"), header(REPLAY_CONSUMER_HEADER, "scripted")];
        assert_eq!(worker.deliver(&whole, &stops()).await, Delivery::Handled);
        assert_eq!(calls(&worker), (1, 2));
        assert!(route.accepted().is_empty());
    }

    fn throttled() -> Outcome {
        let failure = Failure::http("POST http://api/x", 429, String::new());
        Outcome::Retry(failure.with_retry_after(Some(Duration::from_secs(1))).uncharged())
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_past_max_throttle_spends_attempts_and_ends_in_the_dead_letter() {
        let (mut worker, route) = worker(Scripted::new(None, vec![throttled(); 1000]), 3, 0);
        let policy =
            ThrottlePolicy { alert_after: Duration::from_secs(5), charge_after: Some(Duration::from_secs(10)) };
        worker.throttles = Throttles::new(policy, &worker.metrics, worker.health.clone());
        assert_eq!(worker.deliver(&record(1), &stops()).await, Delivery::Handled);
        assert_eq!(route.accepted(), vec![(None, 3, "http_status")], "three 429s charged past max_throttle");
        let calls = worker.handler.calls(None);
        assert!((10..=14).contains(&calls), "about 10 s of free 429s (1 s apart), then 3 charged: {calls} calls");
        assert!(worker.health.details().is_empty(), "delisted once its delivery ended");
    }

    #[tokio::test(start_paused = true)]
    async fn without_max_throttle_a_throttled_event_waits_and_is_listed_on_readiness() {
        let (worker, route) = worker(Scripted::new(None, vec![throttled(); 100_000]), 3, 0);
        let worker = Arc::new(worker);
        let delivery = tokio::spawn({
            let worker = Arc::clone(&worker);
            async move { worker.deliver(&record(7), &stops()).await }
        });
        let listed = worker.health.wait_for_details(Duration::from_secs(120), |d| !d.is_empty()).await;
        assert!(listed, "listed once throttled past the alert threshold (60 s here)");
        let detail = worker.health.details().into_values().next().unwrap_or_default();
        assert!(detail.contains("orders/0@7") && detail.contains("POST http://api/x"), "{detail}");
        assert!(worker.health.is_ready(), "a throttle is a detail, not a problem");
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!delivery.is_finished(), "an hour of 429s spends no attempt");
        assert!(route.accepted().is_empty());
        delivery.abort();
    }
}
