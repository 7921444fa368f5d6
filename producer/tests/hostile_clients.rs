//! The order API under clients that hold connections, send what it does not expect, or write before they read:
//! idle connections are closed in time, the connection cap holds, made-up methods add no series to `/metrics`,
//! a body over the limit is answered 413 to a client that writes it whole first, and an order the broker has
//! not taken when the request's time runs out is a 503, not a 408.
//!
//! No broker is needed: the API starts with `topics.create = false` and a broker address where nothing
//! listens, so every publish fails (503) and everything else is served.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use courier::settings::Settings;
use courier_producer::startup::Application;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// The longest a test waits for what it expects: only a failing test reaches it.
const WAIT: Duration = Duration::from_secs(60);

/// A running order API, stopped when dropped.
struct Api {
    /// Where it listens.
    address: SocketAddr,
    /// Stops it.
    stop: CancellationToken,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

/// Starts the order API with `overrides` (`COURIER__…`) over settings that need no broker.
async fn spawn(overrides: &[(&str, &str)]) -> Api {
    let mut env: HashMap<String, String> = [
        // Nothing listens on port 1: every publish fails within the publish timeout.
        ("COURIER__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1"),
        ("COURIER__TOPICS__CREATE", "false"),
        ("COURIER__PRODUCER__LISTEN", "127.0.0.1:0"),
        // The default schema's path is relative to the workspace root; a test runs in `producer/`.
        (
            "COURIER__PRODUCER__EVENTS__USERS__SCHEMA",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/events/user.registered.json"),
        ),
    ]
    .iter()
    .chain(overrides)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    env.entry("COURIER__TELEMETRY__LOG_LEVEL".to_owned()).or_insert_with(|| "off".to_owned());
    let settings = Settings::load_with_env(None, Some(env)).expect("valid settings");
    let app = Application::build(&settings).await.expect("the order API builds");
    let address = app.local_addr();
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone()));
    Api { address, stop }
}

/// `GET /healthz` on a new connection to `address`: its status line.
async fn health_on_a_new_connection(address: SocketAddr) -> String {
    let mut connection = TcpStream::connect(address).await.expect("connects");
    connection.write_all(b"GET /healthz HTTP/1.1\r\nHost: courier\r\nConnection: close\r\n\r\n").await.expect("writes");
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, connection.read_to_end(&mut answer)).await.expect("answered in time").expect("reads");
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
}

/// Reads until the peer closes the connection (or resets it); how long that took from `since`.
async fn closed_after(mut connection: TcpStream, since: Instant) -> Duration {
    let mut sink = [0u8; 1024];
    loop {
        match connection.read(&mut sink).await {
            Ok(0) | Err(_) => return since.elapsed(),
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_are_closed_in_time_and_new_requests_still_get_in() {
    const TIMEOUT: Duration = Duration::from_millis(1000);
    // Opening the connections, scheduling on two busy cores and the graceful close of HTTP/2 (`CLOSE_GRACE`).
    const MARGIN: Duration = Duration::from_millis(2000);
    let api = spawn(&[("COURIER__PRODUCER__HEADER_READ_TIMEOUT_MS", "1000")]).await;
    // What an idle or hostile client sends before going quiet, a quarter of the connections each: nothing, part
    // of the HTTP/2 preface, the whole preface and an empty SETTINGS frame, part of an HTTP/1.1 request's head.
    let openings: [&[u8]; 4] = [
        b"",
        b"PRI * HTTP/2.0\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
        b"POST /v1/orders HTTP/1.1\r\nHost: courier\r\nContent-Type: appl",
    ];
    let mut closings = Vec::new();
    for i in 0..1000 {
        let opened = Instant::now();
        let mut connection = TcpStream::connect(api.address).await.expect("connects");
        connection.write_all(openings[i % openings.len()]).await.expect("writes");
        closings.push((i % openings.len(), tokio::spawn(closed_after(connection, opened))));
    }
    assert_eq!(health_on_a_new_connection(api.address).await, "HTTP/1.1 200 OK", "a new client is served meanwhile");

    let mut latest = Duration::ZERO;
    for (kind, closing) in closings {
        let after = tokio::time::timeout(TIMEOUT + WAIT, closing).await.expect("closed at all").expect("reader");
        assert!(after >= TIMEOUT.mul_f64(0.9), "opening {kind} closed after {after:?}, before the timeout");
        assert!(after <= TIMEOUT + MARGIN, "opening {kind} closed only after {after:?}");
        latest = latest.max(after);
    }
    assert_eq!(
        health_on_a_new_connection(api.address).await,
        "HTTP/1.1 200 OK",
        "and afterwards (last close {latest:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_connections_a_connection_waits_until_one_ends() {
    const CAP: usize = 20;
    let api =
        spawn(&[("COURIER__PRODUCER__MAX_CONNECTIONS", "20"), ("COURIER__PRODUCER__HEADER_READ_TIMEOUT_MS", "60000")])
            .await;
    let mut idle = Vec::new();
    for _ in 0..CAP {
        idle.push(TcpStream::connect(api.address).await.expect("connects"));
    }
    // The next connection is behind the idle ones in the listen backlog: while they hold every slot, it is not
    // served. (A bounded wait for something that must not happen.)
    let mut waiting = tokio::spawn(health_on_a_new_connection(api.address));
    let served_early = tokio::time::timeout(Duration::from_millis(1500), &mut waiting).await;
    assert!(served_early.is_err(), "a connection beyond producer.max_connections was served at once: {served_early:?}");

    // One idle client leaves: its slot goes to the waiting connection.
    drop(idle.pop());
    let status = tokio::time::timeout(WAIT, waiting).await.expect("served once a slot is free").expect("the client");
    assert_eq!(status, "HTTP/1.1 200 OK");
}

/// The distinct series of `/metrics` (name without `_bucket`/`_sum`/`_count`, labels without `le`) whose
/// `method` label is not one HTTP defines.
async fn series_with_made_up_methods(api: &Api) -> BTreeSet<String> {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
    let text = reqwest::get(api.url("/metrics")).await.expect("scraped").text().await.expect("text");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, _) = line.rsplit_once(' ')?;
            let method = series.split("method=\"").nth(1)?.split('"').next()?;
            if KNOWN.contains(&method) {
                return None;
            }
            let (name, labels) = series.split_once('{')?;
            let name = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
            let labels: Vec<&str> =
                labels.trim_end_matches('}').split(',').filter(|label| !label.starts_with("le=")).collect();
            Some(format!("{name}{{{}}}", labels.join(",")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_made_up_methods_add_a_handful_of_series() {
    const REQUESTS: usize = 10_000;
    const CLIENTS: usize = 8;
    let api = spawn(&[]).await;
    let before = series_with_made_up_methods(&api).await;
    let http = reqwest::Client::new();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (http, url) = (http.clone(), api.url("/v1/orders"));
        clients.push(tokio::spawn(async move {
            for i in (client..REQUESTS).step_by(CLIENTS) {
                let method =
                    reqwest::Method::from_bytes(format!("MADEUP{i}X{}", uuid::Uuid::new_v4().simple()).as_bytes())
                        .expect("a method token");
                let answer = http.request(method, &url).send().await.expect("answered");
                assert!(answer.status().is_client_error(), "{}", answer.status());
            }
        }));
    }
    for client in clients {
        client.await.expect("the client ran");
    }
    let after = series_with_made_up_methods(&api).await;
    let added: Vec<&String> = after.difference(&before).collect();
    assert!(added.len() <= 4, "{} series added, e.g. {:?}", added.len(), added.iter().take(5).collect::<Vec<_>>());
    assert!(!added.is_empty(), "the requests are counted, under one method");
    assert!(added.iter().all(|series| series.contains("method=\"_OTHER\"")), "{added:?}");
}

/// Sends `head` and a body of `length` bytes (chunked when `chunked`), all of it, then reads the whole answer.
async fn write_then_read(api: &Api, length: usize, chunked: bool) -> Result<String, String> {
    let mut connection = TcpStream::connect(api.address).await.map_err(|e| e.to_string())?;
    let framing = if chunked { "Transfer-Encoding: chunked".to_owned() } else { format!("Content-Length: {length}") };
    let head =
        format!("POST /v1/orders HTTP/1.1\r\nHost: courier\r\nContent-Type: application/json\r\n{framing}\r\n\r\n");
    connection.write_all(head.as_bytes()).await.map_err(|e| format!("writing the head: {e}"))?;
    let body = vec![b'x'; length];
    if chunked {
        connection.write_all(format!("{length:X}\r\n").as_bytes()).await.map_err(|e| format!("writing: {e}"))?;
    }
    connection.write_all(&body).await.map_err(|e| format!("writing the body: {e}"))?;
    if chunked {
        connection.write_all(b"\r\n0\r\n\r\n").await.map_err(|e| format!("writing: {e}"))?;
    }
    let mut answer = Vec::new();
    connection.read_to_end(&mut answer).await.map_err(|e| format!("reading the answer: {e}"))?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_writes_a_10_mb_body_before_reading_reads_the_413() {
    const TEN_MB: usize = 10 * 1024 * 1024;
    let api = spawn(&[]).await;
    let mut outcomes = Vec::new();
    for attempt in 0..12 {
        // Ten with a Content-Length, two chunked (the limit is then found while reading).
        let answer = tokio::time::timeout(WAIT, write_then_read(&api, TEN_MB, attempt >= 10)).await.expect("in time");
        outcomes.push(answer.map(|text| {
            let lower = text.to_lowercase();
            let ok = lower.starts_with("http/1.1 413")
                && lower.contains("content-type: application/problem+json")
                && lower.contains("/problems/body-too-large")
                && lower.contains("connection: close");
            if ok { "413 problem".to_owned() } else { text.chars().take(300).collect() }
        }));
    }
    assert!(outcomes.iter().all(|o| o.as_deref() == Ok("413 problem")), "{outcomes:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_pending_when_the_request_times_out_is_a_503_with_retry_after_not_a_408() {
    let api =
        spawn(&[("COURIER__PRODUCER__PUBLISH_TIMEOUT_MS", "1000"), ("COURIER__PRODUCER__REQUEST_TIMEOUT_MS", "1500")])
            .await;
    let order = br#"{"customer":{"id":"c-1","email":"ada@example.com"},"items":[{"sku":"SKU-1","quantity":1,"unit_price":1}],"currency":"EUR"}"#;
    let mut connection = TcpStream::connect(api.address).await.expect("connects");
    let head = format!(
        "POST /v1/orders HTTP/1.1\r\nHost: courier\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        order.len()
    );
    connection.write_all(head.as_bytes()).await.expect("writes");
    // The body comes 700 ms after the head, well within the request timeout; the publish that follows cannot
    // complete (no broker), and the request's 1.5 s run out 300 ms before the publish's 1 s.
    tokio::time::sleep(Duration::from_millis(700)).await;
    connection.write_all(order).await.expect("writes the body");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, async {
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\"status\"") {
            let n = connection.read(&mut buffer).await.expect("reads");
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "answered in time");
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(text.starts_with("http/1.1 503"), "{text}");
    assert!(text.contains("retry-after: 1\r\n"), "{text}");
    assert!(text.contains("/problems/broker-unavailable"), "{text}");
}
