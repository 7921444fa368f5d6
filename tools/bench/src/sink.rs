//! The API every worker calls: answers each request after L ms and notes, per event, when it first
//! arrived, how often it came again, and whether it overtook an earlier event of its key.
//!
//! With a capacity N ([`Sink::set_capacity`]) it behaves as an API that can serve N requests at once: the
//! latency is L while at most N requests are in flight and grows linearly beyond (L · n / N), and a request
//! past 2N is answered 429 at once. It then also keeps the latency of each answer it served.
//!
//! It is lean on purpose (no journal, no bodies kept, no JSON tree): it shares the two cores with the broker
//! and the worker being measured, so what it costs is taken from them. Requests carry the reservation body
//! of the inventory API: `{"order_id": "k<key>", "items": [{"sku": "e<sequence number>", …}]}` (which is also the
//! shape of the event's data, as a `forward` route reading plain JSON or Avro records sends it), or the
//! `order.created` event itself (the references, and `forward`), or a JSON array of such events (a batch of
//! `forward` with `batch_max_events`) or of Vector's log events, each holding one as a string in `message` (a
//! batch of Vector's `http` sink). It counts every request, and those whose body names no event (answered
//! 422), so that a run that loses events says so.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The sink's HTTP server.
pub struct Sink {
    /// What the handlers share.
    state: Arc<SinkState>,
    /// Where it listens.
    addr: SocketAddr,
    /// Stops the server when dropped.
    _stop: tokio_util::sync::DropGuard,
}

/// What the handlers share.
struct SinkState {
    /// Milliseconds to wait before answering.
    latency_ms: AtomicU64,
    /// Requests served at once before the latency grows (0: no capacity, always L).
    capacity: AtomicUsize,
    /// Requests being served now (counted only with a capacity).
    in_flight: AtomicUsize,
    /// The run requests are counted in.
    run: RwLock<Arc<Run>>,
}

/// What the sink saw during one worker's run.
pub struct Run {
    /// Microseconds since the Unix epoch of the first arrival of each event, by sequence number; 0 = not yet.
    first_arrival: Vec<AtomicU64>,
    /// The highest sequence number that arrived per key, or -1.
    last_per_key: Mutex<Vec<i64>>,
    /// Events that arrived at least once.
    delivered: AtomicU64,
    /// Arrivals of an event that had arrived before.
    duplicates: AtomicU64,
    /// First arrivals of an event whose key had already seen a later event (per-key order broken).
    out_of_order: AtomicU64,
    /// Requests that named no event of this run.
    unknown: AtomicU64,
    /// Requests answered 429 (past twice the capacity).
    throttled: AtomicU64,
    /// Every request received, whatever its answer.
    calls: AtomicU64,
    /// Requests answered 422: a body that names no event the sink can read.
    rejected: AtomicU64,
    /// With a capacity: when each answer went out (µs since the epoch) and how long it took (µs).
    served: Mutex<Vec<(u64, u64)>>,
    /// The number of delivered events a waiter waits for.
    target: AtomicU64,
    /// Woken when `delivered` reaches `target`.
    reached: Notify,
}

/// The part of a reservation body the sink reads.
#[derive(Deserialize)]
struct Body<'a> {
    /// `k<key>`.
    #[serde(borrow)]
    order_id: &'a str,
    /// The first item's sku is `e<sequence number>`.
    #[serde(borrow)]
    items: Vec<Item<'a>>,
}

/// One reservation line.
#[derive(Deserialize)]
struct Item<'a> {
    /// `e<sequence number>`.
    #[serde(borrow)]
    sku: &'a str,
}

/// An `order.created` CloudEvent, as the references send it (its `data` names the order and items).
#[derive(Deserialize)]
struct Event<'a> {
    /// The order.
    #[serde(borrow)]
    data: Body<'a>,
}

/// One element of a batch: an `order.created` event (`forward`), or a log event of Vector's whose `message`
/// holds one as a string (its `kafka` source reads each record's value as bytes by default).
#[derive(Deserialize)]
struct Element<'a> {
    /// The order, when the element is the event itself.
    #[serde(borrow)]
    data: Option<Body<'a>>,
    /// The event as a string, when the element is a log event.
    message: Option<String>,
}

impl Element<'_> {
    /// The key and sequence number the element names.
    fn key_and_seq(&self) -> Option<(usize, usize)> {
        match (&self.data, &self.message) {
            (Some(data), _) => key_and_seq(data),
            (None, Some(message)) => parse(message.as_bytes()),
            (None, None) => None,
        }
    }
}

/// The key and sequence number a reservation body (courier) or an `order.created` event (the references)
/// names.
fn parse(body: &[u8]) -> Option<(usize, usize)> {
    let body: Body<'_> = match serde_json::from_slice(body) {
        Ok(body) => body,
        Err(_) => serde_json::from_slice::<Event<'_>>(body).ok()?.data,
    };
    key_and_seq(&body)
}

/// The key and sequence number a reservation names.
fn key_and_seq(body: &Body<'_>) -> Option<(usize, usize)> {
    let key = body.order_id.strip_prefix('k')?.parse().ok()?;
    let seq = body.items.first()?.sku.strip_prefix('e')?.parse().ok()?;
    Some((key, seq))
}

/// Microseconds since the Unix epoch.
pub fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

impl Run {
    /// A run over `events` events with `keys` keys.
    fn new(events: usize, keys: usize) -> Self {
        Self {
            first_arrival: (0..events).map(|_| AtomicU64::new(0)).collect(),
            last_per_key: Mutex::new(vec![-1; keys]),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            served: Mutex::new(Vec::new()),
            target: AtomicU64::new(u64::MAX),
            reached: Notify::new(),
        }
    }

    /// Notes that event `seq` of `key` arrived at `now` (µs since the epoch).
    fn arrive(&self, key: usize, seq: usize, now: u64) {
        let Some(slot) = self.first_arrival.get(seq) else {
            self.unknown.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if slot.compare_exchange(0, now.max(1), Ordering::Relaxed, Ordering::Relaxed).is_err() {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        {
            let mut last = self.last_per_key.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(last) = last.get_mut(key) {
                if (seq as i64) < *last {
                    self.out_of_order.fetch_add(1, Ordering::Relaxed);
                } else {
                    *last = seq as i64;
                }
            }
        }
        if self.delivered.fetch_add(1, Ordering::Relaxed) + 1 == self.target.load(Ordering::Relaxed) {
            self.reached.notify_one();
        }
    }

    /// Events that arrived at least once.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Arrivals of events that had arrived before.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    /// First arrivals that overtook a later event of the same key.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order.load(Ordering::Relaxed)
    }

    /// Requests naming no event of this run.
    pub fn unknown(&self) -> u64 {
        self.unknown.load(Ordering::Relaxed)
    }

    /// Requests answered 429.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Requests received, whatever their answer.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Requests answered 422: their body named no event.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The latencies (ms, sorted) of the answers served between `from` and `to` (µs since the epoch).
    pub fn served_between(&self, from: u64, to: u64) -> Vec<f64> {
        let served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        let mut latencies: Vec<f64> =
            served.iter().filter(|&&(at, _)| (from..to).contains(&at)).map(|&(_, took)| took as f64 / 1000.0).collect();
        latencies.sort_by(f64::total_cmp);
        latencies
    }

    /// When event `seq` first arrived (µs since the epoch), if it did.
    pub fn arrival(&self, seq: usize) -> Option<u64> {
        self.first_arrival.get(seq).map(|a| a.load(Ordering::Relaxed)).filter(|&a| a > 0)
    }

    /// Waits until `n` events were delivered, at most `limit`; one waiter at a time.
    pub async fn wait_for(&self, n: u64, limit: Duration) -> anyhow::Result<()> {
        self.target.store(n, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // A wake-up may be stale (left by an earlier target): the count is checked again after each.
            let reached = self.reached.notified();
            if self.delivered() >= n {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, reached).await.is_err() {
                anyhow::bail!("{} of {n} events reached the sink within {limit:?}", self.delivered());
            }
        }
    }
}

async fn receive(State(state): State<Arc<SinkState>>, body: Bytes) -> StatusCode {
    let now = unix_micros();
    let run = Arc::clone(&state.run.read().unwrap_or_else(PoisonError::into_inner));
    run.calls.fetch_add(1, Ordering::Relaxed);
    if body.first() == Some(&b'[') {
        return receive_batch(&state, &run, &body, now).await;
    }
    let Some((key, seq)) = parse(&body) else {
        run.rejected.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    let latency = state.latency_ms.load(Ordering::Relaxed);
    let capacity = state.capacity.load(Ordering::Relaxed);
    if capacity > 0 {
        return serve_with_capacity(&state, &run, (key, seq), now, latency, capacity).await;
    }
    run.arrive(key, seq, now);
    answer_after(latency).await;
    StatusCode::CREATED
}

/// Waits the sink's latency, `latency_ms`, before an answer.
async fn answer_after(latency_ms: u64) {
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }
}

/// A batch (`forward` with `batch_max_events`, Vector's `http` sink): a JSON array of [`Element`]s, every one
/// taken (a 2xx without per-event results), after L ms. The API's capacity does not apply to batches.
async fn receive_batch(state: &SinkState, run: &Run, body: &[u8], now: u64) -> StatusCode {
    let Ok(elements) = serde_json::from_slice::<Vec<Element<'_>>>(body) else {
        run.rejected.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    for element in &elements {
        match element.key_and_seq() {
            Some((key, seq)) => run.arrive(key, seq, now),
            None => {
                run.unknown.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    answer_after(state.latency_ms.load(Ordering::Relaxed)).await;
    StatusCode::OK
}

/// One request to an API that serves `capacity` at once (see the module).
async fn serve_with_capacity(
    state: &SinkState,
    run: &Run,
    (key, seq): (usize, usize),
    now: u64,
    latency_ms: u64,
    capacity: usize,
) -> StatusCode {
    let in_flight = InFlight::enter(&state.in_flight);
    if in_flight.count > 2 * capacity {
        run.throttled.fetch_add(1, Ordering::Relaxed);
        return StatusCode::TOO_MANY_REQUESTS;
    }
    run.arrive(key, seq, now);
    let latency = latency_ms * 1000 * in_flight.count.max(capacity) as u64 / capacity as u64;
    tokio::time::sleep(Duration::from_micros(latency)).await;
    let answered = unix_micros();
    run.served.lock().unwrap_or_else(PoisonError::into_inner).push((answered, answered.saturating_sub(now)));
    StatusCode::CREATED
}

/// One request counted in flight, until dropped (answered, or abandoned by the client).
struct InFlight<'a> {
    /// The counter.
    counter: &'a AtomicUsize,
    /// Requests in flight with this one.
    count: usize,
}

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        Self { counter, count: counter.fetch_add(1, Ordering::Relaxed) + 1 }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Most requests one HTTP/2 connection may carry at once: more than any worker sends (hyper's default of 200
/// would hold a worker calling over HTTP/2, `apis.<name>.http_version = "http2"`, below 512 in flight).
const MAX_CONCURRENT_STREAMS: u32 = 4096;

/// Serves `app` on `listener` (HTTP/1.1, and cleartext HTTP/2 with prior knowledge) until `stop`.
async fn serve(listener: tokio::net::TcpListener, app: Router, stop: CancellationToken) {
    let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder.http2().max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let builder = Arc::new(builder);
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin, as axum::serve does.
                    eprintln!("sink: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (builder, app) = (Arc::clone(&builder), app.clone());
        tokio::spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
        });
    }
}

impl Sink {
    /// Starts the sink on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let state = Arc::new(SinkState {
            latency_ms: AtomicU64::new(0),
            capacity: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            run: RwLock::new(Arc::new(Run::new(0, 0))),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        // Any body size: Vector's `http` sink sends batches of up to 10 MB by default (axum refuses past 2 MB).
        let app = Router::new()
            .fallback(receive)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(Arc::clone(&state));
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, app, stop.clone()));
        Ok(Self { state, addr, _stop: stop.drop_guard() })
    }

    /// The base URL workers call.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers every request after `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.state.latency_ms.store(latency.as_millis() as u64, Ordering::Relaxed);
    }

    /// Serves `capacity` requests at once (see the module); `None`: any number, always after L.
    pub fn set_capacity(&self, capacity: Option<usize>) {
        self.state.capacity.store(capacity.unwrap_or(0), Ordering::Relaxed);
    }

    /// Starts counting a new run over `events` events with `keys` keys; returns it.
    pub fn start_run(&self, events: usize, keys: usize) -> Arc<Run> {
        let run = Arc::new(Run::new(events, keys));
        *self.state.run.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&run);
        run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_first_arrivals_repeats_and_overtaking() {
        let run = Run::new(10, 2);
        run.arrive(0, 2, 100);
        run.arrive(0, 0, 110); // overtook by event 2 of the same key
        run.arrive(1, 1, 120);
        run.arrive(0, 2, 130); // a repeat: not a new delivery, not an order violation
        run.arrive(1, 99, 140); // not an event of this run
        assert_eq!((run.delivered(), run.duplicates(), run.out_of_order(), run.unknown()), (3, 1, 1, 1));
        assert_eq!(run.arrival(2), Some(100));
        assert_eq!(run.arrival(3), None);
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_its_count_is_reached() {
        let run = Arc::new(Run::new(10, 1));
        run.arrive(0, 0, 1);
        run.wait_for(1, Duration::from_millis(10)).await.expect("already reached");
        let waiter = tokio::spawn({
            let run = Arc::clone(&run);
            async move { run.wait_for(3, Duration::from_secs(5)).await }
        });
        run.arrive(0, 1, 2);
        run.arrive(0, 2, 3);
        waiter.await.unwrap().expect("woken at 3");
        assert!(run.wait_for(11, Duration::from_millis(20)).await.is_err(), "only 10 events exist");
    }

    #[tokio::test]
    async fn past_its_capacity_the_api_slows_down_then_answers_429() {
        let sink = Sink::start().await.expect("sink");
        sink.set_latency(Duration::from_millis(20));
        sink.set_capacity(Some(2));
        let run = sink.start_run(8, 8);
        let client = reqwest::Client::new();
        let calls = (0..6).map(|i| {
            let body = format!(r#"{{"order_id":"k{i}","items":[{{"sku":"e{i}"}}]}}"#);
            client.post(sink.url()).body(body).send()
        });
        let statuses: Vec<u16> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|r| r.expect("answered").status().as_u16())
            .collect();
        assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 2, "past 2N = 4 in flight: {statuses:?}");
        assert_eq!((run.delivered(), run.throttled()), (4, 2));
        let latencies = run.served_between(0, u64::MAX);
        assert_eq!(latencies.len(), 4);
        assert!(latencies[3] >= 40.0, "four in flight at twice the capacity take 2 L: {latencies:?}");
    }

    #[tokio::test]
    async fn every_request_is_counted_and_one_naming_no_event_is_rejected() {
        let sink = Sink::start().await.expect("sink");
        let run = sink.start_run(4, 2);
        let client = reqwest::Client::new();
        let bodies = [
            r#"{"order_id":"k0","items":[{"sku":"e0"}],"currency":"EUR"}"#,
            r#"{"order_id":"k1","items":[{"sku":"e1"}]}"#,
            r#"{"order_id":"k1","items":[{"sku":"e1"}]}"#,
            r#"{"user_id":"u-1"}"#,
        ];
        for body in bodies {
            client.post(sink.url()).body(body).send().await.expect("answered");
        }
        assert_eq!((run.calls(), run.delivered(), run.duplicates(), run.rejected()), (4, 2, 1, 1));
    }

    #[tokio::test]
    async fn a_batch_counts_each_event_as_forward_and_vector_send_it() {
        let sink = Sink::start().await.expect("sink");
        let run = sink.start_run(8, 4);
        let event = |k: usize, e: usize| {
            format!(r#"{{"id":"x","type":"order.created","data":{{"order_id":"k{k}","items":[{{"sku":"e{e}"}}]}}}}"#)
        };
        // Vector's log event: the record's value as a string in `message`, the record's coordinates beside it.
        let logged = |k: usize, e: usize| {
            let message = serde_json::Value::String(event(k, e));
            format!(r#"{{"message":{message},"offset":{e},"partition":0,"source_type":"kafka","topic":"t"}}"#)
        };
        let client = reqwest::Client::new();
        let bodies = [
            format!("[{},{}]", event(0, 0), event(1, 1)),
            format!("[{},{},{}]", logged(2, 2), logged(3, 3), logged(0, 4)),
            format!("[{},{}]", logged(1, 1), r#"{"message":"not an event"}"#),
        ];
        for body in bodies {
            let status = client.post(sink.url()).body(body).send().await.expect("answered").status();
            assert!(status.is_success(), "{status}");
        }
        assert_eq!((run.calls(), run.delivered(), run.duplicates(), run.unknown()), (3, 5, 1, 1));
        assert!(run.arrival(4).is_some() && run.arrival(5).is_none());
        // A batch as large as Vector's default (up to 10 MB) is read too.
        let large = sink.start_run(1, 1);
        let padding = "x".repeat(3 << 20);
        let body = format!("[{}]", event(0, 0).replace(r#""id":"x""#, &format!(r#""id":"{padding}""#)));
        let status = client.post(sink.url()).body(body).send().await.expect("answered").status();
        assert!(status.is_success(), "a 3 MiB batch: {status}");
        assert_eq!(large.delivered(), 1);
    }

    #[test]
    fn reads_key_and_sequence_from_a_reservation_body() {
        assert_eq!(parse(br#"{"order_id":"k7","items":[{"sku":"e42","quantity":1}]}"#), Some((7, 42)));
        assert_eq!(parse(br#"{"order_id":"7","items":[]}"#), None);
        let event = br#"{"id":"x","type":"order.created","data":{"order_id":"k3","customer":{"id":"c"},"items":[{"sku":"e9","quantity":1}]}}"#;
        assert_eq!(parse(event), Some((3, 9)), "an order.created event as the references send it");
        assert_eq!(parse(b"not json"), None);
    }
}
