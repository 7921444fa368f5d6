//! The order API's answers: 202 for valid orders, problem+json for each class of bad input (and nothing
//! published), 503 with Retry-After when the broker does not acknowledge in time, health and readiness.

use courier_consumers::order_topics::OrderTopics;
use courier_tests::app::{sample_order, spawn_app_with};
use courier_tests::broker::free_port;
use courier_tests::spawn_app;
use serde_json::{Value, json};

async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(content_type, "application/problem+json");
    let problem: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(problem["status"], status, "{problem}");
    assert!(problem["type"].is_string() && problem["title"].is_string() && problem["detail"].is_string(), "{problem}");
    problem
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invalid_request_gets_its_problem_and_publishes_nothing() {
    let app = spawn_app().await;
    let url = format!("{}/v1/orders", app.address);

    let malformed = app.http.post(&url).header("content-type", "application/json").body("{\"items\": [").send().await;
    assert_problem(malformed.expect("answer"), 400).await;

    let huge = json!({"customer": {"id": "c", "email": "a@example.com"}, "currency": "EUR",
                      "items": [{"sku": "x".repeat(70_000), "quantity": 1, "unit_price": 1}]});
    assert_problem(app.post_order(&huge, None).await, 413).await;

    let text = app.http.post(&url).header("content-type", "text/plain").body(sample_order(1).to_string()).send().await;
    assert_problem(text.expect("answer"), 415).await;
    let none = app.http.post(&url).body(sample_order(1).to_string()).send().await;
    assert_problem(none.expect("answer"), 415).await;

    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"customer": {"id": "c", "email": "a@example.com"}, "items": [], "currency": "EUR"}), vec!["items"]),
        (
            json!({"customer": {"id": "c", "email": "a@example.com"}, "currency": "EUR",
                "items": [{"sku": "A", "quantity": 0, "unit_price": 1}]}),
            vec!["items[0].quantity"],
        ),
        (
            json!({"customer": {"id": "c", "email": "a@example.com"}, "currency": "EUR",
                "items": [{"sku": "A", "quantity": 1, "unit_price": -5}]}),
            vec!["items[0].unit_price"],
        ),
        (
            json!({"customer": {"id": "c", "email": "a@example.com"}, "currency": "ABC",
                "items": [{"sku": "A", "quantity": 1, "unit_price": 1}]}),
            vec!["currency"],
        ),
        (
            json!({"customer": {"id": "c", "email": "not-an-address"}, "currency": "EUR",
                "items": [{"sku": "A", "quantity": 1, "unit_price": 1}]}),
            vec!["customer.email"],
        ),
        (
            json!({"customer": {"id": "c", "email": "a@example.com"}, "currency": "EUR",
                "items": [{"sku": "A", "quantity": "one", "unit_price": 1}]}),
            vec!["items[0].quantity"],
        ),
        (json!({"items": [{"sku": "A", "quantity": 1, "unit_price": 1}]}), vec!["currency", "customer"]),
    ];
    for (body, expected) in cases {
        let problem = assert_problem(app.post_order(&body, None).await, 422).await;
        let mut fields: Vec<&str> =
            problem["errors"].as_array().expect("errors listed").iter().filter_map(|e| e["field"].as_str()).collect();
        fields.sort();
        assert_eq!(fields, expected, "{body}");
    }
    let bad_key = app.post_order(&sample_order(1), Some("has spaces in it")).await;
    assert_problem(bad_key, 422).await;

    assert_eq!(app.orders_on_topic().await, 0, "nothing may be published for bad input");

    // A valid order after all that is published: the topic was readable all along.
    assert_eq!(app.post_order(&sample_order(1), None).await.status(), 202);
    assert_eq!(app.orders_on_topic().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_with_a_broker() {
    let app = spawn_app().await;
    let health = app.http.get(format!("{}/healthz", app.address)).send().await.expect("answer");
    assert_eq!(health.status(), 200);
    let ready = app.http.get(format!("{}/readyz", app.address)).send().await.expect("answer");
    assert_eq!(ready.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_the_topics_that_do_not_exist() {
    // A cluster whose topics are created by its operators, and not yet.
    let app = spawn_app_with(&[("COURIER__TOPICS__CREATE", "false")]).await;
    let orders = app.settings.topics.orders_created().to_owned();
    let users = app.settings.producer.events["users"].topic.clone();
    let readyz = || async {
        let answer = app.http.get(format!("{}/readyz", app.address)).send().await.expect("answer");
        (answer.status().as_u16(), answer.json::<Value>().await.expect("json"))
    };
    let (status, body) = readyz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["missing_topics"], json!([orders, users]), "{body}");
    assert!(body["reason"].as_str().is_some_and(|r| r.contains("does not exist")), "{body}");

    courier::kafka::ensure_topics(&app.settings.kafka, &app.settings.topics, &[&orders]).await.expect("created");
    let (status, body) = readyz().await;
    assert_eq!((status, &body["missing_topics"]), (503, &json!([users])), "{body}");
    courier::kafka::ensure_topics(&app.settings.kafka, &app.settings.topics, &[&users]).await.expect("created");
    let (status, body) = readyz().await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_gives_503_with_retry_after() {
    let dead = format!("127.0.0.1:{}", free_port().expect("free port"));
    let app = spawn_app_with(&[
        ("COURIER__KAFKA__BOOTSTRAP_SERVERS", dead.as_str()),
        ("COURIER__TOPICS__CREATE", "false"),
        ("COURIER__PRODUCER__PUBLISH_TIMEOUT_MS", "1500"),
    ])
    .await;
    let started = std::time::Instant::now();
    let response = app.post_order(&sample_order(1), None).await;
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_problem(response, 503).await;
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "the answer comes within the publish timeout");

    // The same key is not remembered after a failure: a retry publishes (and fails) again instead of replaying.
    let again = app.post_order(&sample_order(1), Some("retry-me")).await;
    assert_problem(again, 503).await;

    let ready = app.http.get(format!("{}/readyz", app.address)).send().await.expect("answer");
    assert_eq!(ready.status(), 503);
    let health = app.http.get(format!("{}/healthz", app.address)).send().await.expect("answer");
    assert_eq!(health.status(), 200, "alive even without a broker");
}

/// A POST of order `i` with `headers`.
async fn post_with(app: &courier_tests::TestApp, i: usize, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.http.post(format!("{}/v1/orders", app.address)).json(&sample_order(i));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_guard_the_order_route_and_scope_idempotency_keys() {
    let (old, new) = ("old-key-0123456789abcdef", "new-key-0123456789abcdef");
    let keys = format!("{old},{new}");
    let app = spawn_app_with(&[("COURIER__PRODUCER__API_KEYS", keys.as_str())]).await;

    let missing = post_with(&app, 1, &[]).await;
    assert_eq!(missing.headers().get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
    assert_problem(missing, 401).await;
    assert_problem(post_with(&app, 1, &[("x-api-key", "wrong-key-0123456789abcdef")]).await, 403).await;
    assert_problem(post_with(&app, 1, &[("authorization", "Bearer wrong-key-0123456789")]).await, 403).await;
    assert_eq!(app.orders_on_topic().await, 0, "nothing published for a refused request");

    let bearer = format!("Bearer {old}");
    assert_eq!(post_with(&app, 1, &[("authorization", bearer.as_str())]).await.status(), 202);
    assert_eq!(post_with(&app, 2, &[("x-api-key", new)]).await.status(), 202, "both keys work during a rotation");
    for open in ["healthz", "readyz"] {
        let answer = app.http.get(format!("{}/{open}", app.address)).send().await.expect("answer");
        assert_eq!(answer.status(), 200, "/{open} needs no key");
    }

    // The same Idempotency-Key from two API keys: two orders; repeated with the first key: the first answer.
    let order_of = async |key: &str| {
        let response = post_with(&app, 3, &[("x-api-key", key), ("idempotency-key", "same-key")]).await;
        assert_eq!(response.status(), 202);
        let replayed = response.headers().contains_key("idempotent-replayed");
        let body: Value = response.json().await.expect("JSON");
        (body["order_id"].as_str().expect("order id").to_owned(), replayed)
    };
    let (first, first_replayed) = order_of(old).await;
    let (again, again_replayed) = order_of(old).await;
    let (other, _) = order_of(new).await;
    assert_eq!((first.as_str(), first_replayed, again_replayed), (again.as_str(), false, true));
    assert_ne!(first, other, "another API key's Idempotency-Key is another order");
    assert_eq!(app.orders_on_topic().await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_bound_of_concurrent_requests_the_answer_is_503_at_once() {
    let dead = format!("127.0.0.1:{}", free_port().expect("free port"));
    let app = spawn_app_with(&[
        ("COURIER__KAFKA__BOOTSTRAP_SERVERS", dead.as_str()),
        ("COURIER__TOPICS__CREATE", "false"),
        ("COURIER__PRODUCER__PUBLISH_TIMEOUT_MS", "3000"),
        ("COURIER__PRODUCER__MAX_CONCURRENT_REQUESTS", "1"),
    ])
    .await;
    // Two at once: one holds the only slot until its publish times out; the other is turned away at once.
    let timed = async |i| {
        let started = std::time::Instant::now();
        let response = post_with(&app, i, &[]).await;
        let elapsed = started.elapsed();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        (assert_problem(response, 503).await, elapsed, retry_after)
    };
    let (a, b) = tokio::join!(timed(1), timed(2));
    let (mut shed, mut waited) = (a, b);
    if shed.0["type"] != "/problems/overloaded" {
        std::mem::swap(&mut shed, &mut waited);
    }
    assert_eq!(shed.0["type"], "/problems/overloaded", "{} / {}", shed.0, waited.0);
    assert_eq!(shed.2.as_deref(), Some("1"));
    assert!(shed.1 < std::time::Duration::from_secs(1), "turned away at once, not queued: {:?}", shed.1);
    assert_eq!(waited.0["type"], "/problems/broker-unavailable");
    assert!(waited.1 >= std::time::Duration::from_secs(3), "{:?}", waited.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(&[("COURIER__PRODUCER__HEADER_READ_TIMEOUT_MS", "500")]).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut connection = tokio::net::TcpStream::connect(&address).await.expect("connects");
    connection.write_all(b"POST /v1/orders HTTP/1.1\r\nHost: courier\r\nContent-Type: appl").await.expect("writes");
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), connection.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "the server closed the connection");
    assert!(started.elapsed() >= std::time::Duration::from_millis(400), "{:?}", started.elapsed());
    assert!(!String::from_utf8_lossy(&rest).contains("202"), "no order was taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_too_slowly_gets_a_408_problem() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(&[
        ("COURIER__PRODUCER__PUBLISH_TIMEOUT_MS", "1000"),
        ("COURIER__PRODUCER__REQUEST_TIMEOUT_MS", "1500"),
    ])
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut connection = tokio::net::TcpStream::connect(&address).await.expect("connects");
    let head =
        "POST /v1/orders HTTP/1.1\r\nHost: courier\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n";
    connection.write_all(head.as_bytes()).await.expect("writes");
    connection.write_all(b"{\"customer\":").await.expect("writes part of the body, then nothing");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut buffer = [0u8; 4096];
        // Read until the problem body has arrived (the connection may stay open).
        while !String::from_utf8_lossy(&answer).contains("request-timeout") {
            let n = connection.read(&mut buffer).await.expect("reads");
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "answered within the request timeout: {}", String::from_utf8_lossy(&answer));
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(text.starts_with("http/1.1 408"), "{text}");
    assert!(
        text.contains("content-type: application/problem+json") && text.contains("/problems/request-timeout"),
        "{text}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(1400), "{:?}", started.elapsed());
    assert_eq!(app.orders_on_topic().await, 0, "nothing published");
}
