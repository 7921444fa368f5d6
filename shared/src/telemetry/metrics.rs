//! Prometheus metrics: every metric courier exports, named once here, and the recorder that renders them.
//!
//! Components record through the functions of this module (not the `metrics` macros directly), so that the
//! names, labels and units live in one place and the operations page (`docs/operations.md`), the dashboard and
//! the alert rules can be checked against [`CATALOGUE`]. Labels are low-cardinality: a consumer, a topic, a partition, an API, a status code,
//! an outcome class — never an event id, an order id or a key.
//!
//! [`install`] sets the process-wide recorder (once; later calls return the same handle) with histogram
//! buckets that resolve 5 ms to 30 s ([`LATENCY_BUCKETS`]; an hour for the end-to-end histogram,
//! [`END_TO_END_BUCKETS`]), the process collector (CPU, memory, open file descriptors) and `courier_build_info`. [`Metrics::render`] is what `GET /metrics` answers.

use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use metrics::{Counter, Histogram, Unit, counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Bucket bounds (seconds) of the latency histograms: 5 ms to 30 s.
pub const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Bucket bounds (seconds) of the end-to-end histogram: retries and outages take minutes.
pub const END_TO_END_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// One exported metric: its name as scraped, its type and what it means.
#[derive(Debug, Clone, Copy)]
pub struct Described {
    /// Name as scraped (histograms add `_bucket`, `_sum`, `_count`).
    pub name: &'static str,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    /// Its labels.
    pub labels: &'static [&'static str],
    /// What it means, in words (the `# HELP` line).
    pub help: &'static str,
}

macro_rules! catalogue {
    ($($ident:ident = $name:literal, $kind:literal, [$($label:literal),*], $help:literal;)*) => {
        $(#[doc = $help] pub const $ident: &str = $name;)*
        /// Every metric courier exports itself (the process collector's `process_*` come on top).
        pub const CATALOGUE: &[Described] = &[$(Described { name: $name, kind: $kind, labels: &[$($label),*], help: $help }),*];
    };
}

catalogue! {
    BUILD_INFO = "courier_build_info", "gauge", ["binary", "version", "git_sha"],
        "Always 1; the labels say which build of which binary runs.";
    EVENTS_RECEIVED = "courier_events_received_total", "counter", ["consumer", "topic"],
        "Records the consumer took from Kafka and started.";
    EVENTS_FINISHED = "courier_events_finished_total", "counter", ["consumer", "topic", "channel", "outcome"],
        "Deliveries that ended, per channel: done, dead_lettered, failed (logged and skipped) or skipped.";
    END_TO_END = "courier_end_to_end_seconds", "histogram", ["consumer", "topic"],
        "From the record's timestamp to the API's success.";
    RETRIES = "courier_retries_total", "counter", ["consumer", "reason"],
        "Attempts that failed transiently and are tried again, by failure kind.";
    PANICS = "courier_panics_total", "counter", ["consumer"],
        "Attempts that panicked: each failed (kind panic) and is retried or dead-lettered; the process goes on.";
    THROTTLED = "courier_events_throttled_total", "counter", ["consumer"],
        "Events an API throttled (answered 429), counted once per throttled stretch of an event.";
    THROTTLED_LONG = "courier_events_throttled_long", "gauge", ["consumer"],
        "Events throttled without a break for longer than consumer.throttle_alert_ms now (listed on /readyz).";
    CALLS = "courier_downstream_calls_total", "counter", ["api", "outcome", "status"],
        "Calls to a downstream API by outcome class and HTTP status (none: no response).";
    CALL_DURATION = "courier_downstream_call_duration_seconds", "histogram", ["api"],
        "Duration of the calls that reached a downstream API.";
    BREAKER_STATE = "courier_breaker_state", "gauge", ["api"],
        "Circuit breaker of an API: 0 closed, 1 open, 2 half-open.";
    BREAKER_TRANSITIONS = "courier_breaker_transitions_total", "counter", ["api", "to"],
        "Circuit breaker state changes, by the state entered.";
    CONCURRENCY_LIMIT = "courier_downstream_concurrency_limit", "gauge", ["api"],
        "Calls one consumer process may have in flight to an API now (adaptive: it follows the API's capacity).";
    READY = "courier_ready", "gauge", ["consumer"],
        "1 while the consumer's /readyz answers 200, 0 while it reports a problem (breaker, guard, broker).";
    DLQ_GUARD_WAITING = "courier_dlq_guard_waiting", "gauge", ["consumer"],
        "Events waiting for the dead-letter guard's turn (above 0: dead letters are throttled).";
    IN_FLIGHT = "courier_events_in_flight", "gauge", ["consumer"],
        "Handler calls in flight now (at most consumer.max_in_flight).";
    BUFFERED = "courier_events_buffered", "gauge", ["consumer"],
        "Events started and not yet finished, waiting ones included.";
    KEYS_WAITING = "courier_keys_waiting", "gauge", ["consumer"],
        "Keys with events queued behind the one running.";
    PARTITIONS_ASSIGNED = "courier_partitions_assigned", "gauge", ["consumer"],
        "Partitions assigned to this process.";
    PARTITIONS_PAUSED = "courier_partitions_paused", "gauge", ["consumer"],
        "Assigned partitions paused by backpressure.";
    COMMITS = "courier_commits_total", "counter", ["consumer", "result"],
        "Offset commits, by result: ok (sent; a synchronous one accepted), failed (not sent, or refused).";
    COMMITTED_OFFSET = "courier_committed_offset", "gauge", ["consumer", "topic", "partition"],
        "The last offset committed per partition (the next record to read).";
    CONSUMER_LAG = "courier_consumer_lag", "gauge", ["consumer", "topic", "partition"],
        "Records between the committed offset and the partition's high watermark (librdkafka statistics).";
    REBALANCES = "courier_rebalances_total", "counter", ["consumer", "kind"],
        "Rebalance callbacks: assign, revoke, lost.";
    HTTP_REQUESTS = "courier_http_requests_total", "counter", ["route", "method", "status"],
        "Requests the order API answered.";
    HTTP_DURATION = "courier_http_request_duration_seconds", "histogram", ["route", "method"],
        "Time the order API took to answer.";
    PUBLISH_DURATION = "courier_publish_duration_seconds", "histogram", ["topic"],
        "From sending a record to the broker's acknowledgement.";
    PUBLISHED = "courier_events_published_total", "counter", ["topic", "result"],
        "Records published, by result (acknowledged, failed).";
    IDEMPOTENT_REPLAYS = "courier_idempotent_replays_total", "counter", [],
        "Order requests answered from the Idempotency-Key store instead of publishing again.";
}

/// The process's recorder; clones share it.
#[derive(Clone)]
pub struct Metrics {
    /// Renders the exposition.
    handle: PrometheusHandle,
    /// Reads CPU, memory and file descriptors at each scrape.
    process: Arc<metrics_process::Collector>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

static INSTALLED: OnceLock<Metrics> = OnceLock::new();

/// How often the recorder's histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds the histogram samples recorded since the last time into their buckets every [`UPKEEP_EVERY`]: the
/// recorder keeps every sample until then, so without it a process nobody scrapes would grow by two samples
/// per event. A thread of its own, so it runs whatever runtime (if any) the process has.
fn spawn_upkeep(handle: PrometheusHandle) {
    let upkeep = move || {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        }
    };
    if let Err(error) = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(upkeep) {
        tracing::warn!(%error, "cannot start the metrics upkeep thread: histograms are folded at each scrape only");
    }
}

/// Installs the process-wide recorder, once, for `binary`; later calls return the first one. Returns `None`
/// when another recorder was installed first (then nothing is rendered).
pub fn install(binary: &'static str) -> Option<Metrics> {
    if let Some(metrics) = INSTALLED.get() {
        return Some(metrics.clone());
    }
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), LATENCY_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(END_TO_END.into()), END_TO_END_BUCKETS))
        .ok()?;
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        // Two threads raced (tests): the winner's handle is in INSTALLED, or a foreign recorder is.
        return INSTALLED.get().cloned();
    }
    let process = metrics_process::Collector::default();
    process.describe();
    describe();
    gauge!(BUILD_INFO, "binary" => binary, "version" => env!("CARGO_PKG_VERSION"), "git_sha" => git_sha()).set(1.0);
    spawn_upkeep(handle.clone());
    let metrics = Metrics { handle, process: Arc::new(process) };
    Some(INSTALLED.get_or_init(|| metrics).clone())
}

/// The commit courier was built from (`COURIER_GIT_SHA` at build time), or `unknown`.
fn git_sha() -> &'static str {
    option_env!("COURIER_GIT_SHA").filter(|s| !s.is_empty()).unwrap_or("unknown")
}

fn describe() {
    for metric in CATALOGUE {
        let unit = metric.name.ends_with("_seconds").then_some(Unit::Seconds);
        match (metric.kind, unit) {
            ("counter", _) => metrics::describe_counter!(metric.name, metric.help),
            ("gauge", _) => metrics::describe_gauge!(metric.name, metric.help),
            (_, Some(unit)) => metrics::describe_histogram!(metric.name, unit, metric.help),
            _ => metrics::describe_histogram!(metric.name, metric.help),
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric, process figures read now.
    pub fn render(&self) -> String {
        self.process.collect();
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// `GET /metrics`: the exposition of the installed recorder (404 when none is installed).
pub async fn scrape() -> axum::response::Response {
    use axum::response::IntoResponse;
    match INSTALLED.get() {
        Some(metrics) => ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics.render())
            .into_response(),
        None => (http::StatusCode::NOT_FOUND, "no metrics recorder installed\n").into_response(),
    }
}

/// Seconds of `elapsed`, as histograms take them.
fn seconds(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64()
}

// ---- consumer ---------------------------------------------------------------------------------------

/// Labels shared by the metrics of one consumer.
pub type Label = Arc<str>;

/// Metric handles registered once per label set and found again by their labels without building a
/// registry key: the metrics recorded for every event and every call use these, since a registry lookup
/// (allocate the labels, hash them, find the entry) costs about a microsecond a time. Few entries (topics,
/// channels, outcome classes, status codes), read far more often than written.
struct Handles<K, H>(RwLock<Vec<(K, H)>>);

impl<K: PartialEq + Clone, H: Clone> Handles<K, H> {
    /// An empty set.
    fn new() -> Self {
        Self(RwLock::new(Vec::new()))
    }

    /// The handle for `labels`, registered with `register` the first time.
    fn get(&self, labels: &K, register: impl FnOnce() -> H) -> H {
        let known = |all: &[(K, H)]| all.iter().find(|(k, _)| k == labels).map(|(_, h)| h.clone());
        if let Some(handle) = known(&self.0.read().unwrap_or_else(PoisonError::into_inner)) {
            return handle;
        }
        let mut all = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = known(&all) {
            return handle;
        }
        let handle = register();
        all.push((labels.clone(), handle.clone()));
        handle
    }
}

/// The per-event metrics of one consumer: events received, finished, retried, and the end-to-end latency.
pub struct EventMetrics {
    /// The consumer's name, the `consumer` label.
    consumer: Label,
    /// Per topic: events received, and the end-to-end latency.
    topics: Handles<Label, (Counter, Histogram)>,
    /// Per topic, channel and outcome: events finished.
    finished: Handles<(Label, Option<&'static str>, &'static str), Counter>,
}

impl EventMetrics {
    /// The metrics of `consumer`.
    pub fn new(consumer: Label) -> Self {
        Self { consumer, topics: Handles::new(), finished: Handles::new() }
    }

    /// The consumer's name.
    pub fn consumer(&self) -> &Label {
        &self.consumer
    }

    /// The handles of `topic`.
    fn topic(&self, topic: &Label) -> (Counter, Histogram) {
        self.topics.get(topic, || {
            let labels = [("consumer", self.consumer.clone()), ("topic", topic.clone())];
            (counter!(EVENTS_RECEIVED, &labels), histogram!(END_TO_END, &labels))
        })
    }

    /// A record of `topic` was taken from Kafka and started.
    pub fn received(&self, topic: &Label) {
        self.topic(topic).0.increment(1);
    }

    /// A delivery (one channel of an event of `topic`) ended with `outcome`.
    pub fn finished(&self, topic: &Label, channel: Option<&'static str>, outcome: &'static str) {
        let counter = self.finished.get(&(topic.clone(), channel, outcome), || {
            let channel = channel.unwrap_or("default");
            counter!(EVENTS_FINISHED, "consumer" => self.consumer.clone(), "topic" => topic.clone(), "channel" => channel, "outcome" => outcome)
        });
        counter.increment(1);
    }

    /// An event of `topic` was delivered `elapsed` after its record's timestamp.
    pub fn end_to_end(&self, topic: &Label, elapsed: Duration) {
        self.topic(topic).1.record(seconds(elapsed));
    }

    /// An attempt failed transiently and will be tried again.
    pub fn retry(&self, reason: &'static str) {
        counter!(RETRIES, "consumer" => self.consumer.clone(), "reason" => reason).increment(1);
    }

    /// An attempt panicked (and failed).
    pub fn panicked(&self) {
        counter!(PANICS, "consumer" => self.consumer.clone()).increment(1);
    }

    /// An event's API started throttling it.
    pub fn throttled(&self) {
        counter!(THROTTLED, "consumer" => self.consumer.clone()).increment(1);
    }

    /// Events throttled for longer than the alert threshold now.
    pub fn throttled_long(&self, events: usize) {
        gauge!(THROTTLED_LONG, "consumer" => self.consumer.clone()).set(events as f64);
    }
}

/// Whether the consumer is ready now.
pub fn ready(consumer: &Label, ready: bool) {
    gauge!(READY, "consumer" => consumer.clone()).set(if ready { 1.0 } else { 0.0 });
}

/// Events waiting for the dead-letter guard now.
pub fn dlq_guard_waiting(consumer: &Label, waiting: usize) {
    gauge!(DLQ_GUARD_WAITING, "consumer" => consumer.clone()).set(waiting as f64);
}

/// The runtime's occupancy, sampled by the poll thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Occupancy {
    /// Handler calls in flight.
    pub in_flight: usize,
    /// Events started and not finished.
    pub buffered: usize,
    /// Keys with events queued behind the running one.
    pub keys_waiting: usize,
    /// Partitions assigned.
    pub assigned: usize,
    /// Partitions paused.
    pub paused: usize,
}

/// Sets the occupancy gauges of `consumer`.
pub fn occupancy(consumer: &Label, now: Occupancy) {
    gauge!(IN_FLIGHT, "consumer" => consumer.clone()).set(now.in_flight as f64);
    gauge!(BUFFERED, "consumer" => consumer.clone()).set(now.buffered as f64);
    gauge!(KEYS_WAITING, "consumer" => consumer.clone()).set(now.keys_waiting as f64);
    gauge!(PARTITIONS_ASSIGNED, "consumer" => consumer.clone()).set(now.assigned as f64);
    gauge!(PARTITIONS_PAUSED, "consumer" => consumer.clone()).set(now.paused as f64);
}

/// A commit of `watermarks` ((topic, partition), next offset) was sent (an asynchronous one) or accepted (a
/// synchronous one).
pub fn committed(consumer: &Label, watermarks: &[((Label, i32), i64)]) {
    counter!(COMMITS, "consumer" => consumer.clone(), "result" => "ok").increment(1);
    for ((topic, partition), offset) in watermarks {
        gauge!(COMMITTED_OFFSET, "consumer" => consumer.clone(), "topic" => topic.clone(), "partition" => partition.to_string())
            .set(*offset as f64);
    }
}

/// A commit could not be sent, or the broker refused it.
pub fn commit_refused(consumer: &Label) {
    counter!(COMMITS, "consumer" => consumer.clone(), "result" => "failed").increment(1);
}

/// The lag of one partition, from librdkafka's statistics.
pub fn consumer_lag(consumer: &Label, topic: &str, partition: i32, lag: i64) {
    gauge!(CONSUMER_LAG, "consumer" => consumer.clone(), "topic" => topic.to_owned(), "partition" => partition.to_string())
        .set(lag.max(0) as f64);
}

/// A rebalance callback ran: `assign`, `revoke` or `lost`.
pub fn rebalance(consumer: &Label, kind: &'static str) {
    counter!(REBALANCES, "consumer" => consumer.clone(), "kind" => kind).increment(1);
}

// ---- downstream APIs -----------------------------------------------------------------------------------

/// The call metrics of one API: calls by outcome class and status code, and their latency.
pub struct CallMetrics {
    /// The API's name, the `api` label.
    api: Label,
    /// Call latency.
    duration: Histogram,
    /// Per outcome class and status code: calls.
    calls: Handles<(&'static str, Option<u16>), Counter>,
}

impl CallMetrics {
    /// The metrics of `api`.
    pub fn new(api: Label) -> Self {
        let duration = histogram!(CALL_DURATION, "api" => api.clone());
        Self { api, duration, calls: Handles::new() }
    }

    /// A call ended: its outcome class, its status (when it got a response) and, when it reached the API,
    /// how long it took.
    pub fn call(&self, outcome: &'static str, status: Option<u16>, elapsed: Option<Duration>) {
        let counter = self.calls.get(&(outcome, status), || {
            let status = status.map_or(metrics::SharedString::const_str("none"), status_label);
            counter!(CALLS, "api" => self.api.clone(), "outcome" => outcome, "status" => status)
        });
        counter.increment(1);
        if let Some(elapsed) = elapsed {
            self.duration.record(seconds(elapsed));
        }
    }
}

/// A status code as a label, without allocating for the usual ones.
fn status_label(status: u16) -> metrics::SharedString {
    const KNOWN: &[(u16, &str)] = &[
        (200, "200"),
        (201, "201"),
        (202, "202"),
        (204, "204"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (408, "408"),
        (409, "409"),
        (422, "422"),
        (429, "429"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
    ];
    match KNOWN.iter().find(|(code, _)| *code == status) {
        Some((_, text)) => metrics::SharedString::const_str(text),
        None => status.to_string().into(),
    }
}

/// A breaker state, as [`BREAKER_STATE`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// No calls until the cool-down ends.
    Open,
    /// One probe call is let through.
    HalfOpen,
}

/// The breaker of `api` entered `state`; `transition` is false for its initial state.
pub fn breaker(api: &Label, state: BreakerState, transition: bool) {
    let (value, to) = match state {
        BreakerState::Closed => (0.0, "closed"),
        BreakerState::Open => (1.0, "open"),
        BreakerState::HalfOpen => (2.0, "half_open"),
    };
    gauge!(BREAKER_STATE, "api" => api.clone()).set(value);
    if transition {
        counter!(BREAKER_TRANSITIONS, "api" => api.clone(), "to" => to).increment(1);
    }
}

/// The limit of calls in flight to `api` is now `limit`.
pub fn concurrency_limit(api: &Label, limit: usize) {
    #[allow(clippy::cast_precision_loss)]
    gauge!(CONCURRENCY_LIMIT, "api" => api.clone()).set(limit as f64);
}

// ---- producer ------------------------------------------------------------------------------------------

/// The `method` label value of a request: one of the methods HTTP defines, or `_OTHER` for any other, as the
/// OpenTelemetry HTTP semantic conventions prescribe (`http.request.method`). A client chooses the method, before
/// any authentication: taken as it comes, a loop of made-up methods would grow the series without bound.
pub fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ];
    KNOWN.iter().find(|known| *known == method).map_or(OTHER_METHOD, Method::as_str)
}

/// The `method` label value of any method HTTP does not define ([`method_label`]).
pub const OTHER_METHOD: &str = "_OTHER";

/// The order API answered a request.
pub fn http_request(route: &str, method: &http::Method, status: u16, elapsed: Duration) {
    let route = metrics::SharedString::from(route.to_owned());
    let method = method_label(method);
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status_label(status))
        .increment(1);
    histogram!(HTTP_DURATION, "route" => route, "method" => method).record(seconds(elapsed));
}

/// A record was acknowledged (`elapsed` after it was sent) or failed.
pub fn published(topic: &Label, acknowledged: bool, elapsed: Duration) {
    let result = if acknowledged { "acknowledged" } else { "failed" };
    counter!(PUBLISHED, "topic" => topic.clone(), "result" => result).increment(1);
    if acknowledged {
        histogram!(PUBLISH_DURATION, "topic" => topic.clone()).record(seconds(elapsed));
    }
}

/// An order request was answered from the idempotency store.
pub fn idempotent_replay() {
    counter!(IDEMPOTENT_REPLAYS).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        for metric in CATALOGUE {
            assert!(metric.name.starts_with("courier_"), "{}", metric.name);
            assert_eq!(metric.kind == "counter", metric.name.ends_with("_total"), "{}", metric.name);
            if metric.kind == "histogram" {
                assert!(metric.name.ends_with("_seconds"), "{}", metric.name);
            }
            for label in metric.labels {
                assert!(!["event_id", "order_id", "key"].contains(label), "{}: {label}", metric.name);
            }
        }
        let mut names: Vec<_> = CATALOGUE.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len(), "a name is listed twice");
    }

    /// The operations page users read.
    const OPERATIONS: &str = include_str!("../../../docs/operations.md");

    #[test]
    fn the_operations_page_lists_every_metric_and_no_other() {
        for metric in CATALOGUE {
            assert!(OPERATIONS.contains(metric.name), "docs/operations.md does not list {}", metric.name);
        }
        let table = OPERATIONS.lines().filter(|line| line.starts_with("| `courier_"));
        for word in table.flat_map(|row| row.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))) {
            if word.starts_with("courier_") {
                assert!(CATALOGUE.iter().any(|m| m.name == word), "docs/operations.md lists {word}, no metric");
            }
        }
    }

    #[test]
    fn the_operations_page_gives_the_histogram_buckets() {
        let page = OPERATIONS.split_whitespace().collect::<Vec<_>>().join(" ");
        for buckets in [LATENCY_BUCKETS, END_TO_END_BUCKETS] {
            let bounds = buckets.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            assert!(page.contains(&format!("`{bounds}`")), "docs/operations.md does not give the buckets {bounds}");
        }
    }

    #[test]
    fn methods_http_does_not_define_are_one_label() {
        for known in ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"] {
            let method = http::Method::from_bytes(known.as_bytes()).expect("a method");
            assert_eq!(method_label(&method), known);
        }
        for made_up in ["get", "PROPFIND", "BREW", "X-1234567890-ABCDEFGHIJ", "Post"] {
            let method = http::Method::from_bytes(made_up.as_bytes()).expect("a method token");
            assert_eq!(method_label(&method), OTHER_METHOD, "{made_up}");
        }
    }

    #[test]
    fn status_labels_are_the_codes() {
        assert_eq!(status_label(409).as_ref(), "409");
        assert_eq!(status_label(418).as_ref(), "418");
    }
}
