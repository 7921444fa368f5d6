//! The mock APIs over HTTP: a server per test on a free port, called with reqwest, checked through both
//! the HTTP admin endpoints and the in-process handle.

use std::time::{Duration, Instant};

use mock_apis::{Api, Effect, Faults, MockApis, MockApisConfig, Stats};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn start() -> MockApis {
    MockApis::start(MockApisConfig::default())
        .await
        .expect("server starts")
}

fn reservation(order: &str) -> Value {
    json!({"order_id": order, "items": [{"sku": "SKU-1", "quantity": 2}]})
}

async fn post(
    client: &Client,
    server: &MockApis,
    api: Api,
    key: Option<&str>,
    body: &Value,
) -> Response {
    let mut request = client.post(server.endpoint_url(api)).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.expect("request is answered")
}

async fn json_of(response: Response) -> Value {
    response.json().await.expect("body is JSON")
}

#[tokio::test]
async fn every_api_answers_its_first_call() {
    let server = start().await;
    let client = Client::new();
    let cases = [
        (
            Api::Inventory,
            reservation("o-1"),
            StatusCode::CREATED,
            "reservation_id",
        ),
        (
            Api::Payment,
            json!({"order_id": "o-1", "amount": 1250, "currency": "EUR"}),
            StatusCode::CREATED,
            "charge_id",
        ),
        (
            Api::Email,
            json!({"to": "a@example.com", "subject": "Hi", "body": "Thanks"}),
            StatusCode::ACCEPTED,
            "message_id",
        ),
        (
            Api::Sms,
            json!({"to": "+15550100", "text": "Shipped"}),
            StatusCode::ACCEPTED,
            "message_id",
        ),
    ];
    for (api, body, status, id_field) in cases {
        let response = post(&client, &server, api, Some("k-1"), &body).await;
        assert_eq!(response.status(), status, "{api}");
        let answer = json_of(response).await;
        assert!(answer[id_field].is_string(), "{api}: {answer}");
        let effects = server.effects(api);
        assert_eq!(effects.len(), 1, "{api}");
        assert_eq!(effects[0].body, body, "{api}: body stored as received");
        assert_eq!(effects[0].response, answer);
    }
    let payment = server.effects(Api::Payment).remove(0).response;
    assert_eq!(
        (
            &payment["order_id"],
            &payment["amount"],
            &payment["currency"]
        ),
        (&json!("o-1"), &json!(1250), &json!("EUR"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_replayed_key_gets_the_first_answer_and_counts_a_duplicate() {
    let server = start().await;
    let client = Client::new();
    let first = post(
        &client,
        &server,
        Api::Inventory,
        Some("inventory:e-1"),
        &reservation("o-1"),
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = json_of(first).await;

    let second = post(
        &client,
        &server,
        Api::Inventory,
        Some("inventory:e-1"),
        &reservation("o-1"),
    )
    .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(
        second
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(json_of(second).await, first_body);

    let stats = server.stats(Api::Inventory);
    assert_eq!((stats.calls, stats.effects, stats.duplicates), (2, 1, 1));
    assert_eq!(server.effects(Api::Inventory).len(), 1);
    // Keys are per API: the same key on another API is a first call there.
    let other = post(
        &client,
        &server,
        Api::Payment,
        Some("inventory:e-1"),
        &json!({"order_id": "o-1", "amount": 1, "currency": "EUR"}),
    )
    .await;
    assert_eq!(other.status(), StatusCode::CREATED);
    assert_eq!(server.stats(Api::Payment).duplicates, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_calls_with_one_key_make_one_effect() {
    let server = start().await;
    server.set_faults(
        Api::Payment,
        Faults {
            latency_ms: 200,
            ..Faults::none()
        },
    );
    let client = Client::new();
    let url = server.endpoint_url(Api::Payment);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let request = client
                .post(&url)
                .header("Idempotency-Key", "payment:e-42")
                .json(&json!({"order_id": "o-42", "amount": 999, "currency": "USD"}));
            tokio::spawn(async move {
                let response = request.send().await.expect("answered");
                (
                    response.status(),
                    response.json::<Value>().await.expect("JSON"),
                )
            })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.expect("task ends"));
    }
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::CREATED);
        assert_eq!(body, &answers[0].1, "every caller sees the same charge");
    }
    let stats = server.stats(Api::Payment);
    assert_eq!((stats.calls, stats.effects, stats.duplicates), (8, 1, 7));
    assert!(stats.peak_in_flight >= 2, "{stats:?}");
    assert_eq!(server.effects(Api::Payment).len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn injected_errors_answer_503_without_effect_and_are_not_remembered() {
    let server = start().await;
    server.set_faults(
        Api::Email,
        Faults {
            error_rate: 1.0,
            ..Faults::none()
        },
    );
    let client = Client::new();
    let body = json!({"to": "a@example.com", "subject": "Hi", "body": "…"});
    let failed = post(&client, &server, Api::Email, Some("email:e-1"), &body).await;
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        failed.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/problem+json"[..])
    );
    assert_eq!(json_of(failed).await["status"], 503);
    let stats = server.stats(Api::Email);
    assert_eq!(
        (stats.calls, stats.effects, stats.injected_failures),
        (1, 0, 1)
    );
    assert!(server.effects(Api::Email).is_empty());

    // The failure was not remembered: a retry with the same key takes effect.
    server.set_faults(Api::Email, Faults::none());
    let retried = post(&client, &server, Api::Email, Some("email:e-1"), &body).await;
    assert_eq!(retried.status(), StatusCode::ACCEPTED);
    let stats = server.stats(Api::Email);
    assert_eq!((stats.calls, stats.effects, stats.duplicates), (2, 1, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let server = MockApis::start(MockApisConfig::default().with_faults(Faults {
        throttle_rate: 1.0,
        retry_after_secs: 7,
        ..Faults::none()
    }))
    .await
    .expect("server starts");
    let client = Client::new();
    let response = post(
        &client,
        &server,
        Api::Sms,
        Some("sms:e-1"),
        &json!({"to": "+1", "text": "hi"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"7"[..])
    );
    let stats = server.stats(Api::Sms);
    assert_eq!((stats.effects, stats.injected_failures), (0, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn two_concurrent_slow_calls_are_both_in_flight() {
    let server = start().await;
    server.set_faults(
        Api::Inventory,
        Faults {
            latency_ms: 300,
            ..Faults::none()
        },
    );
    let client = Client::new();
    let (body_a, body_b) = (reservation("o-a"), reservation("o-b"));
    let (a, b) = tokio::join!(
        post(&client, &server, Api::Inventory, Some("a"), &body_a),
        post(&client, &server, Api::Inventory, Some("b"), &body_b),
    );
    assert_eq!(
        (a.status(), b.status()),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    let stats = server
        .wait_for_stats(Api::Inventory, WAIT, |s| s.in_flight == 0)
        .await
        .expect("requests end");
    assert!(stats.peak_in_flight >= 2, "{stats:?}");
    assert_eq!(stats.effects, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_calls_are_answered_400_problem_json() {
    let server = start().await;
    let client = Client::new();
    let url = server.endpoint_url(Api::Inventory);
    let no_key = client
        .post(&url)
        .json(&reservation("o-1"))
        .send()
        .await
        .expect("answered");
    let not_json = client
        .post(&url)
        .header("Idempotency-Key", "k")
        .body("order=o-1")
        .send()
        .await
        .expect("answered");
    let not_object = client
        .post(&url)
        .header("Idempotency-Key", "k")
        .json(&json!([1, 2]))
        .send()
        .await
        .expect("answered");
    let empty_key = client
        .post(&url)
        .header("Idempotency-Key", "  ")
        .json(&reservation("o-1"))
        .send()
        .await
        .expect("answered");
    for response in [no_key, not_json, not_object, empty_key] {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers().get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/problem+json"[..])
        );
        let problem = json_of(response).await;
        assert_eq!(problem["status"], 400);
        assert!(problem["detail"].is_string(), "{problem}");
    }
    let stats = server.stats(Api::Inventory);
    assert_eq!((stats.calls, stats.rejected, stats.effects), (4, 4, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn faults_are_read_and_changed_over_http() {
    let server = start().await;
    let client = Client::new();
    let url = format!("{}/admin/faults/payment", server.base_url());

    let put = client
        .put(&url)
        .json(&json!({"error_rate": 0.25, "latency_ms": 10}))
        .send()
        .await
        .expect("answered");
    assert_eq!(put.status(), StatusCode::OK);
    let expected = Faults {
        error_rate: 0.25,
        latency_ms: 10,
        ..Faults::none()
    };
    assert_eq!(put.json::<Faults>().await.expect("faults"), expected);
    assert_eq!(server.faults(Api::Payment), expected);
    let got = client.get(&url).send().await.expect("answered");
    assert_eq!(got.json::<Faults>().await.expect("faults"), expected);

    // PATCH keeps the fields it does not name; PUT resets them.
    let patched = client
        .patch(&url)
        .json(&json!({"hang_rate": 0.1, "hang_ms": 2000}))
        .send()
        .await
        .expect("answered")
        .json::<Faults>()
        .await
        .expect("faults");
    assert_eq!(
        patched,
        Faults {
            hang_rate: 0.1,
            hang_ms: 2000,
            ..expected
        }
    );
    // Other APIs are untouched.
    assert_eq!(server.faults(Api::Inventory), Faults::none());

    let status = |body: &'static str, path: &'static str| {
        let request = client
            .put(format!("{}{path}", server.base_url()))
            .header("content-type", "application/json")
            .body(body);
        async move { request.send().await.expect("answered").status() }
    };
    assert_eq!(
        status(r#"{"error_rate": 2}"#, "/admin/faults/payment").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        status(r#"{"eror_rate": 0.1}"#, "/admin/faults/payment").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        status("{not json", "/admin/faults/payment").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status("{}", "/admin/faults/shipping").await,
        StatusCode::NOT_FOUND
    );
    let unknown = client
        .get(format!("{}/admin/faults/shipping", server.base_url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    // Refused updates changed nothing.
    assert_eq!(server.faults(Api::Payment), patched);

    let all: Value = client
        .get(format!("{}/admin/faults", server.base_url()))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(all["payment"]["hang_ms"], 2000);
    assert_eq!(all["sms"]["error_rate"], 0.0);
    server.shutdown().await;
}

#[tokio::test]
async fn stats_effects_reset_and_health_over_http() {
    let server = start().await;
    let client = Client::new();
    let base = server.base_url();
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let response = client
        .post(server.endpoint_url(Api::Inventory))
        .header("Idempotency-Key", "inventory:e-7")
        .header("traceparent", traceparent)
        .json(&reservation("o-7"))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::CREATED);
    post(
        &client,
        &server,
        Api::Inventory,
        Some("inventory:e-7"),
        &reservation("o-7"),
    )
    .await;

    let stats: Stats = client
        .get(format!("{base}/stats"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("stats");
    assert_eq!(stats, server.all_stats());
    assert_eq!(
        (
            stats.inventory.calls,
            stats.inventory.effects,
            stats.inventory.duplicates
        ),
        (2, 1, 1)
    );
    assert_eq!(stats.payment, Default::default());
    let raw: Value = client
        .get(format!("{base}/stats"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    for api in ["inventory", "payment", "email", "sms"] {
        for field in [
            "calls",
            "effects",
            "duplicates",
            "injected_failures",
            "in_flight",
            "peak_in_flight",
        ] {
            assert!(raw[api][field].is_u64(), "{api}.{field} in {raw}");
        }
    }

    let effects: Vec<Effect> = client
        .get(server.api_url("inventory") + "/effects")
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("effects");
    assert_eq!(effects, server.effects(Api::Inventory));
    assert_eq!(effects.len(), 1);
    assert_eq!(effects[0].idempotency_key, "inventory:e-7");
    assert_eq!(effects[0].traceparent.as_deref(), Some(traceparent));
    assert!(effects[0].received_at.ends_with('Z') && effects[0].received_at.len() == 24);
    assert!(effects[0].received_at_unix_ms > 1_700_000_000_000);

    let reset = client
        .post(format!("{base}/admin/reset"))
        .send()
        .await
        .expect("answered");
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(server.all_stats(), Stats::default());
    assert!(server.effects(Api::Inventory).is_empty());
    // The key is forgotten too: the same call takes effect again.
    let again = post(
        &client,
        &server,
        Api::Inventory,
        Some("inventory:e-7"),
        &reservation("o-7"),
    )
    .await;
    assert!(again.headers().get("idempotent-replayed").is_none());
    assert_eq!(server.stats(Api::Inventory).effects, 1);

    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("answered");
    assert_eq!(health.status(), StatusCode::OK);
    for path in ["/shipping/effects", "/nowhere"] {
        let missing = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("answered");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{path}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_hang_takes_effect_but_answers_after_the_client_gave_up() {
    let server = start().await;
    server.set_faults(
        Api::Payment,
        Faults {
            hang_rate: 1.0,
            hang_ms: 30_000,
            ..Faults::none()
        },
    );
    let impatient = Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let body = json!({"order_id": "o-9", "amount": 5, "currency": "EUR"});
    let error = impatient
        .post(server.endpoint_url(Api::Payment))
        .header("Idempotency-Key", "payment:e-9")
        .json(&body)
        .send()
        .await
        .expect_err("the client times out");
    assert!(error.is_timeout(), "{error}");
    // The effect happened although the client saw a timeout.
    let effects = server
        .wait_for_effects(Api::Payment, 1, WAIT)
        .await
        .expect("effect recorded");
    assert_eq!(server.stats(Api::Payment).hangs, 1);

    // The client's retry gets the first answer, not a second charge.
    server.set_faults(Api::Payment, Faults::none());
    let retry = post(
        &Client::new(),
        &server,
        Api::Payment,
        Some("payment:e-9"),
        &body,
    )
    .await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(json_of(retry).await, effects[0].response);
    let stats = server.stats(Api::Payment);
    assert_eq!((stats.effects, stats.duplicates), (1, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_cuts_a_hang_short() {
    let server = start().await;
    server.set_faults(
        Api::Sms,
        Faults {
            hang_rate: 1.0,
            ..Faults::none()
        },
    );
    let request = Client::new()
        .post(server.endpoint_url(Api::Sms))
        .header("Idempotency-Key", "sms:e-1")
        .json(&json!({"to": "+1", "text": "hi"}));
    let call = tokio::spawn(async move { request.send().await.map(|r| r.status()) });
    server
        .wait_for_stats(Api::Sms, WAIT, |s| s.hangs == 1)
        .await
        .expect("request hangs");
    let started = Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let status = call.await.expect("task ends").expect("answered");
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn waiting_for_effects_times_out_with_the_counters() {
    let server = start().await;
    let error = server
        .wait_for_effects(Api::Email, 1, Duration::from_millis(50))
        .await
        .expect_err("nothing arrives");
    assert_eq!(error.api, Api::Email);
    assert_eq!(error.stats.effects, 0);
    assert!(error.to_string().contains("at least 1 effect"), "{error}");
    server.shutdown().await;
}

#[tokio::test]
async fn urls_point_at_the_bound_port() {
    let server = MockApis::start(MockApisConfig::new("0.0.0.0:0"))
        .await
        .expect("server starts");
    let port = server.local_addr().port();
    assert_ne!(port, 0);
    assert_eq!(server.base_url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(
        server.api_url("inventory"),
        format!("http://127.0.0.1:{port}/inventory")
    );
    assert_eq!(
        server.api_url(Api::Sms),
        format!("http://127.0.0.1:{port}/sms")
    );
    assert_eq!(
        server.endpoint_url(Api::Payment),
        format!("http://127.0.0.1:{port}/payment/charges")
    );
    let health = Client::new()
        .get(format!("{}/healthz", server.base_url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(health.status(), StatusCode::OK);
    server.shutdown().await;
    assert!(
        MockApis::start(MockApisConfig::new("not an address"))
            .await
            .is_err(),
        "a bad address is an error, not a panic"
    );
    let bad_faults = MockApisConfig::default().with_faults(Faults {
        error_rate: 3.0,
        ..Faults::none()
    });
    assert!(MockApis::start(bad_faults).await.is_err());
}
