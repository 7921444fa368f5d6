//! The mock APIs over HTTP: a server per test on a free port, called with reqwest, checked over HTTP and
//! through the in-process handle.

use std::time::{Duration, Instant};

use mock_apis::{Api, ApiStats, DECLINED_AMOUNT_SUFFIX, Effect, Faults, MockApis, MockApisConfig, Required};
use reqwest::{Client, IntoUrl, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

#[tokio::test]
async fn every_api_answers_a_first_call_and_replays_it_without_a_second_effect() {
    let mock = Mock::start().await;
    // A structured CloudEvent, as the forward example delivers a user's registration.
    let registration = json!({"specversion": "1.0", "type": "user.registered", "id": "e-1", "source": "/signup",
                              "data": {"user_id": "u-1", "email": "ada@example.com"}});
    // The label request of the shipping consumer (consumers/src/shipping.rs).
    let label = json!({"order_id": "o-1", "customer_id": "c-1", "items": [{"sku": "SKU-1", "quantity": 2}]});
    let release = "/inventory/reservations/o-1/release";
    let cases = [
        (Api::Inventory, "/inventory/reservations", reservation("o-1"), 201, "reservation_id"),
        (Api::Payment, "/payment/charges", charge("o-1", 1250), 201, "charge_id"),
        (Api::Email, "/email/messages", json!({"to": "a@example.com", "subject": "Hi"}), 202, "message_id"),
        (Api::Sms, "/sms/messages", sms("Shipped"), 202, "message_id"),
        (Api::InventoryRelease, release, json!({"order_id": "o-1", "reason": "cancelled"}), 200, "status"),
        (Api::Shipping, "/shipping/labels", label, 201, "label_id"),
        (Api::Auth, "/auth/users", registration, 201, "account_id"),
    ];
    assert_eq!(cases.iter().map(|case| case.0).collect::<Vec<_>>(), Api::ALL, "one case per API");
    // The same key at every API: keys are per API.
    for (api, path, body, status, id_field) in cases {
        let first = answered(mock.keyed(path, "k-1").json(&body)).await;
        assert_eq!((first.status().as_u16(), replayed(&first)), (status, false), "{api}");
        let answer = json_of(first).await;
        assert!(answer[id_field].is_string(), "{api}: {answer}");
        let replay = answered(mock.keyed(path, "k-1").json(&body)).await;
        assert_eq!((replay.status().as_u16(), replayed(&replay)), (status, true), "{api}");
        assert_eq!(json_of(replay).await, answer, "{api}: the first answer again");
        let stats = mock.stats(api);
        assert_eq!((stats.calls, stats.effects, stats.duplicates), (2, 1, 1), "{api}");
        let effects = mock.effects(api);
        assert_eq!((&effects[0].body, &effects[0].response), (&body, &answer), "{api}: body stored as received");
        let served: Vec<Effect> = mock.get(&format!("/{api}/effects")).await;
        assert_eq!(served, effects, "{api}");
    }
    let label = &mock.effects(Api::Shipping)[0].response;
    assert_eq!(label["order_id"], "o-1");
    assert!(label["tracking_number"].as_str().is_some_and(|t| t.starts_with("TRK-") && t.len() == 12), "{label}");
    assert_eq!(mock.effects(Api::Auth)[0].response["user_id"], "u-1", "read from the event's data");
    let account = mock.post(Api::Auth, "k-2", &json!({"user_id": "u-2"})).await;
    assert_eq!(json_of(account).await["user_id"], "u-2");
}

#[tokio::test]
async fn concurrent_calls_with_one_key_make_one_effect() {
    let mock = Mock::start().await;
    mock.set_faults(Api::Payment, Faults { latency_ms: 200, ..Faults::default() });
    let request = || mock.call(Api::Payment, "payment:e-42").json(&charge("o-42", 999));
    let calls = [(); 8].map(|()| tokio::spawn(answered(request())));
    for call in calls {
        let response = call.await.expect("task ends");
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(json_of(response).await, mock.effects(Api::Payment)[0].response, "every caller sees one charge");
    }
    let stats = mock.stats(Api::Payment);
    assert_eq!((stats.calls, stats.effects, stats.duplicates), (8, 1, 7));
    assert!(stats.peak_in_flight >= 2, "{stats:?}");
}

#[tokio::test]
async fn injected_errors_and_throttling_take_no_effect_and_are_not_remembered() {
    let mock = Mock::start().await;
    mock.set_faults(Api::Sms, Faults { error_rate: 1.0, ..Faults::default() });
    problem_of(mock.post(Api::Sms, "sms:e-1", &sms("hi")).await, StatusCode::SERVICE_UNAVAILABLE).await;
    mock.set_faults(Api::Sms, Faults { throttle_rate: 1.0, retry_after_secs: 7, ..Faults::default() });
    let throttled = mock.post(Api::Sms, "sms:e-1", &sms("hi")).await;
    assert_eq!((throttled.status(), header(&throttled, "retry-after")), (StatusCode::TOO_MANY_REQUESTS, Some("7")));
    assert!(mock.effects(Api::Sms).is_empty());
    // Not remembered: a retry with the same key takes effect.
    mock.set_faults(Api::Sms, Faults::default());
    assert_eq!(mock.post(Api::Sms, "sms:e-1", &sms("hi")).await.status(), StatusCode::ACCEPTED);
    let stats = mock.stats(Api::Sms);
    assert_eq!((stats.calls, stats.effects, stats.duplicates, stats.injected_failures), (3, 1, 0, 2));
}

#[tokio::test]
async fn malformed_calls_are_answered_400_problem_json() {
    let mock = Mock::start().await;
    let url = mock.url(Api::Inventory.endpoint_path());
    let calls = [
        mock.client.post(&url).json(&reservation("o-1")),
        keyed(&mock.client, &url, "k").body("order=o-1"),
        keyed(&mock.client, &url, "k").json(&json!([1, 2])),
        keyed(&mock.client, &url, "  ").json(&reservation("o-1")),
        keyed(&mock.client, &url, &"k".repeat(256)).json(&reservation("o-1")),
    ];
    for call in calls {
        let problem = problem_of(answered(call).await, StatusCode::BAD_REQUEST).await;
        assert!(problem["detail"].is_string(), "{problem}");
    }
    let stats = mock.stats(Api::Inventory);
    assert_eq!((stats.calls, stats.rejected, stats.effects), (5, 5, 0));
}

#[tokio::test]
async fn stats_effects_and_health_over_http() {
    let mock = Mock::start().await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let traced = mock.call(Api::Inventory, "inventory:e-7");
    answered(traced.header("traceparent", traceparent).json(&reservation("o-7"))).await;
    mock.post(Api::Inventory, "inventory:e-7", &reservation("o-7")).await;

    let stats: Value = mock.get("/stats").await;
    assert_eq!(stats.as_object().expect("an object").len(), Api::ALL.len());
    for api in Api::ALL {
        let served: ApiStats = serde_json::from_value(stats[api.as_str()].clone()).expect("counters");
        assert_eq!(served, mock.stats(api), "{api}");
    }
    assert_eq!((&stats["inventory"]["calls"], &stats["inventory"]["duplicates"]), (&json!(2), &json!(1)));
    let effect = &mock.effects(Api::Inventory)[0];
    assert_eq!((effect.idempotency_key.as_str(), effect.traceparent.as_deref()), ("inventory:e-7", Some(traceparent)));
    assert!(effect.received_at_unix_ms > 1_700_000_000_000);
    assert_eq!(answered(mock.client.get(mock.url("/healthz"))).await.status(), StatusCode::OK);
    for path in ["/billing/effects", "/inventory/calls", "/admin/faults", "/nowhere"] {
        problem_of(answered(mock.client.get(mock.url(path))).await, StatusCode::NOT_FOUND).await;
    }
}

#[tokio::test]
async fn a_hang_takes_effect_answers_after_the_client_gave_up_and_is_cut_short_by_shutdown() {
    let mock = Mock::start().await;
    mock.set_faults(Api::Payment, Faults { hang_rate: 1.0, hang_ms: 30_000, ..Faults::default() });
    let body = charge("o-9", 5);
    let impatient = Client::builder().timeout(Duration::from_millis(300)).build().expect("client");
    let sent = keyed(&impatient, mock.url(Api::Payment.endpoint_path()), "payment:e-9").json(&body).send().await;
    assert!(sent.expect_err("the client times out").is_timeout());
    let effects = mock.wait_for_effects(Api::Payment, 1, WAIT).await.expect("effect recorded");
    // The server notices the client leave mid-hang and journals the call with its effect's answer.
    let calls = mock.wait_for_calls(Api::Payment, 1, WAIT).await.expect("the abandoned call is journaled");
    assert_eq!((calls[0].status, calls[0].idempotency_key.as_deref()), (201, Some("payment:e-9")));
    assert!(calls[0].answered_at_unix_ms - calls[0].received_at_unix_ms < 30_000);
    // The client's retry gets the first answer, not a second charge.
    mock.set_faults(Api::Payment, Faults::default());
    let retry = mock.post(Api::Payment, "payment:e-9", &body).await;
    assert_eq!(json_of(retry).await, effects[0].response);
    let stats = mock.stats(Api::Payment);
    assert_eq!((stats.effects, stats.duplicates, stats.hangs), (1, 1, 1));
    // Stopping the server cuts a hang short: the call is answered at once.
    mock.set_faults(Api::Sms, Faults { hang_rate: 1.0, ..Faults::default() });
    let call = spawn_status(mock.call(Api::Sms, "sms:e-1").json(&sms("hi")));
    mock.wait_for_stats(Api::Sms, WAIT, |s| s.hangs == 1).await.expect("request hangs");
    let started = Instant::now();
    mock.server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(call.await.expect("task ends").expect("answered"), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_reset_takes_effect_but_the_client_gets_a_connection_error_not_a_status() {
    let mock = Mock::start().await;
    mock.set_faults(Api::Payment, Faults { reset_rate: 1.0, ..Faults::default() });
    let body = charge("o-10", 5);
    let sent = mock.call(Api::Payment, "payment:e-10").json(&body).send().await;
    let error = sent.expect_err("the connection is reset, so there is no answer");
    assert!(!error.is_timeout() && error.status().is_none(), "{error:?}");
    let effects = mock.wait_for_effects(Api::Payment, 1, WAIT).await.expect("effect recorded");
    // The server goes on serving; the retry gets the first answer.
    mock.set_faults(Api::Payment, Faults::default());
    let retry = mock.post(Api::Payment, "payment:e-10", &body).await;
    assert_eq!(json_of(retry).await, effects[0].response);
    let stats = mock.stats(Api::Payment);
    assert_eq!((stats.effects, stats.duplicates, stats.resets), (1, 1, 1));
    assert_eq!(mock.calls(Api::Payment).len(), 2, "both calls are in the journal");
}

#[tokio::test]
async fn urls_point_at_the_bound_port_and_bad_configurations_are_errors() {
    let config = MockApisConfig { listen: "0.0.0.0:0".into(), ..MockApisConfig::default() };
    let mock = MockApis::start(config).await.expect("server starts");
    let port = mock.local_addr().port();
    assert_eq!(mock.base_url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(mock.api_url("inventory"), format!("http://127.0.0.1:{port}/inventory"));
    assert_eq!(mock.api_url(Api::Sms), format!("http://127.0.0.1:{port}/sms"));
    assert_eq!(mock.api_url(Api::InventoryRelease), format!("http://127.0.0.1:{port}/inventory"));
    assert_eq!(mock.api_url("billing"), format!("http://127.0.0.1:{port}/billing"));
    mock.shutdown().await;
    let bad_address = MockApisConfig { listen: "not an address".into(), ..MockApisConfig::default() };
    assert!(MockApis::start(bad_address).await.is_err(), "an error, not a panic");
    for faults in
        [Faults { error_rate: 3.0, ..Faults::default() }, Faults { fail_body_status: 200, ..Faults::default() }]
    {
        assert!(MockApis::start(MockApisConfig { faults, ..MockApisConfig::default() }).await.is_err());
    }
}

#[tokio::test]
async fn latency_and_jitter_delay_every_answer_and_count_as_in_flight() {
    let mock = Mock::start().await;
    mock.set_faults(Api::Sms, Faults { latency_ms: 200, latency_jitter_ms: 80, ..Faults::default() });
    let calls = ["a", "b", "c"].map(|key| spawn_status(mock.call(Api::Sms, key).json(&sms(key))));
    let during = mock.wait_for_stats(Api::Sms, WAIT, |s| s.in_flight == 3).await.expect("three in flight");
    assert_eq!((during.peak_in_flight, during.effects), (3, 0));
    for call in calls {
        assert_eq!(call.await.expect("task ends").expect("answered"), StatusCode::ACCEPTED);
    }
    let stats = mock.stats(Api::Sms);
    assert_eq!((stats.in_flight, stats.peak_in_flight, stats.effects), (0, 3, 3));
    for call in mock.calls(Api::Sms) {
        // At least the latency; at most latency + jitter, with slack for a busy machine.
        let took = call.answered_at_unix_ms - call.received_at_unix_ms;
        assert!((200..200 + 80 + 2_000).contains(&took), "{took} ms: {call:?}");
    }
}

#[tokio::test]
async fn a_body_containing_the_text_fails_with_the_status_and_no_effect() {
    let mock = Mock::start().await;
    let poison = Faults { fail_body_contains: Some("o-poison".into()), fail_body_status: 422, ..Faults::default() };
    mock.set_faults(Api::Inventory, poison);
    let poisoned = mock.post(Api::Inventory, "k-1", &reservation("o-poison")).await;
    assert_eq!(header(&poisoned, "retry-after"), None, "no Retry-After with a 422");
    let problem = problem_of(poisoned, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("o-poison")), "{problem}");
    assert_eq!(mock.post(Api::Inventory, "k-2", &reservation("o-fine")).await.status(), 201);
    // By default 503 with Retry-After; the raw text is matched.
    let raw = Faults { fail_body_contains: Some(r#""quantity":2"#.into()), retry_after_secs: 4, ..Faults::default() };
    mock.set_faults(Api::Inventory, raw);
    let text = r#"{"order_id":"o-3","items":[{"sku":"S","quantity":2}]}"#;
    let url = mock.url(Api::Inventory.endpoint_path());
    let failed = answered(keyed(&mock.client, &url, "k-3").header("content-type", "application/json").body(text)).await;
    assert_eq!((failed.status(), header(&failed, "retry-after")), (StatusCode::SERVICE_UNAVAILABLE, Some("4")));
    // Not remembered: without the fault, the same key takes effect.
    mock.set_faults(Api::Inventory, Faults::default());
    let retried = mock.post(Api::Inventory, "k-3", &reservation("o-3")).await;
    assert_eq!((retried.status(), replayed(&retried)), (StatusCode::CREATED, false));
    assert_eq!(statuses(&mock, Api::Inventory), [422, 201, 503, 201]);
    assert_eq!(mock.stats(Api::Inventory).injected_failures, 2);
}

#[tokio::test]
async fn the_first_calls_of_each_key_fail_then_go_through() {
    let mock = Mock::start().await;
    let faults = Faults { fail_first_per_key: 2, fail_first_status: 429, retry_after_secs: 3, ..Faults::default() };
    mock.set_faults(Api::Payment, faults);
    let body = charge("o-1", 5);
    let mut seen = Vec::new();
    for key in ["a", "b", "a", "a", "b", "b", "a"] {
        let response = mock.post(Api::Payment, key, &body).await;
        let throttled = response.status() == StatusCode::TOO_MANY_REQUESTS;
        assert_eq!(header(&response, "retry-after"), throttled.then_some("3"));
        seen.push(response.status().as_u16());
    }
    assert_eq!(seen, [429, 429, 429, 201, 429, 201, 201]);
    let stats = mock.stats(Api::Payment);
    assert_eq!((stats.injected_failures, stats.effects, stats.duplicates), (4, 2, 1));
    // A 503 carries Retry-After too, a 500 does not; keys past the count are not failed again.
    mock.set_faults(Api::Payment, Faults { fail_first_per_key: 1, ..Faults::default() });
    let unavailable = mock.post(Api::Payment, "c", &body).await;
    assert_eq!((unavailable.status().as_u16(), header(&unavailable, "retry-after")), (503, Some("1")));
    assert_eq!(mock.post(Api::Payment, "a", &body).await.status(), StatusCode::CREATED);
    mock.set_faults(Api::Payment, Faults { fail_first_per_key: 1, fail_first_status: 500, ..Faults::default() });
    let error = mock.post(Api::Payment, "d", &body).await;
    assert_eq!((error.status().as_u16(), header(&error, "retry-after")), (500, None));
}

#[tokio::test]
async fn body_failures_come_before_first_call_failures_which_come_before_the_draw() {
    let mock = Mock::start().await;
    let faults = Faults {
        fail_body_contains: Some("poison".into()),
        fail_body_status: 422,
        fail_first_per_key: 1,
        fail_first_status: 500,
        error_rate: 1.0,
        ..Faults::default()
    };
    mock.set_faults(Api::Sms, faults);
    let (poison, plain) = (sms("poison"), sms("hello"));
    let mut seen = Vec::new();
    for (key, body) in [("k", &poison), ("k", &poison), ("k", &plain), ("k", &plain), ("j", &plain)] {
        seen.push(mock.post(Api::Sms, key, body).await.status().as_u16());
    }
    // Body failures do not use up the key's first calls; after them comes the draw (always 503).
    assert_eq!(seen, [422, 422, 500, 503, 500]);
}

#[tokio::test]
async fn the_journal_keeps_every_call_in_arrival_order() {
    let mock = Mock::start().await;
    let url = mock.url(Api::Inventory.endpoint_path());
    answered(mock.client.post(&url).json(&reservation("o-0"))).await;
    answered(keyed(&mock.client, &url, " k-x ").body("order=o-1")).await;
    mock.post(Api::Inventory, "k-1", &reservation("o-1")).await;
    mock.post(Api::Inventory, "k-1", &reservation("o-1")).await;
    mock.set_faults(Api::Inventory, Faults { throttle_rate: 1.0, latency_ms: 60, ..Faults::default() });
    mock.post(Api::Inventory, "k-2", &reservation("o-2")).await;
    let calls = mock.calls(Api::Inventory);
    let summary: Vec<_> = calls.iter().map(|c| (c.idempotency_key.as_deref(), c.status, c.body.clone())).collect();
    let (o1, o2) = (reservation("o-1"), reservation("o-2"));
    let expected = [(None, 400, reservation("o-0")), (Some("k-x"), 400, Value::Null), (Some("k-1"), 201, o1.clone())];
    assert_eq!(summary[..3], expected);
    assert_eq!(summary[3..], [(Some("k-1"), 201, o1), (Some("k-2"), 429, o2)]);
    assert!(calls.windows(2).all(|pair| pair[0].received_at_unix_ms <= pair[1].received_at_unix_ms));
    // The arrival time is taken before the latency, the answer time after it.
    assert!(calls[4].answered_at_unix_ms - calls[4].received_at_unix_ms >= 60);

    // A slow call, then a fast one: the fast one is answered first but journaled second.
    mock.set_faults(Api::Sms, Faults { latency_ms: 400, ..Faults::default() });
    let slow = spawn_status(mock.call(Api::Sms, "slow").json(&sms("hi")));
    mock.wait_for_stats(Api::Sms, WAIT, |s| s.in_flight == 1).await.expect("the slow call arrives");
    mock.set_faults(Api::Sms, Faults::default());
    mock.post(Api::Sms, "fast", &sms("hi")).await;
    assert_eq!(mock.calls(Api::Sms).len(), 1, "only answered calls are listed");
    assert_eq!(slow.await.expect("task ends").expect("answered"), StatusCode::ACCEPTED);
    let keys: Vec<_> = mock.calls(Api::Sms).into_iter().filter_map(|c| c.idempotency_key).collect();
    assert_eq!(keys, ["slow", "fast"]);
}

#[tokio::test]
async fn waiting_wakes_on_answers_and_times_out_with_the_counters() {
    let mock = Mock::start().await;
    mock.set_faults(Api::Email, Faults { latency_ms: 100, fail_first_per_key: 1, ..Faults::default() });
    let request = || mock.call(Api::Email, "email:e-1").json(&json!({"to": "a@example.com"}));
    let (first, second) = (request(), request());
    let calls = tokio::spawn(async move { (answered(first).await, answered(second).await) });
    let journal = mock.wait_for_calls(Api::Email, 2, WAIT).await.expect("both calls answered");
    assert_eq!(journal.iter().map(|c| c.status).collect::<Vec<_>>(), [503, 202]);
    calls.await.expect("task ends");
    let error = mock.wait_for_calls(Api::Email, 3, Duration::from_millis(50)).await.expect_err("no third call");
    let error = error.to_string();
    assert!(error.contains("on email for at least 3 call") && error.contains("calls: 2,"), "{error}");
    let error = mock.wait_for_effects(Api::Email, 2, Duration::from_millis(50)).await.expect_err("one effect");
    assert!(error.to_string().contains("effects: 1,"), "{error}");
}

#[tokio::test]
async fn a_declined_charge_answers_402_is_replayed_and_counted_apart_from_effects() {
    let mock = Mock::start().await;
    let body = json!({"order_id": "o-13", "amount": 1200 + DECLINED_AMOUNT_SUFFIX, "currency": "EUR"});
    let declined = mock.post(Api::Payment, "payment:o-13", &body).await;
    assert_eq!((declined.status(), replayed(&declined)), (StatusCode::PAYMENT_REQUIRED, false));
    assert_eq!(header(&declined, "content-type"), Some("application/json"));
    let answer = json_of(declined).await;
    assert_eq!(answer, json!({"error": "card_declined", "decline_reason": "insufficient_funds", "order_id": "o-13"}));
    // Remembered like a success: the same key gets the same 402, as a duplicate.
    let replay = mock.post(Api::Payment, "payment:o-13", &body).await;
    assert_eq!((replay.status(), replayed(&replay)), (StatusCode::PAYMENT_REQUIRED, true));
    assert_eq!(json_of(replay).await, answer);
    // Other amounts are charged, and so is an amount that is not a JSON integer.
    assert_eq!(mock.post(Api::Payment, "payment:o-14", &charge("o-14", 1214)).await.status(), 201);
    let text_amount = json!({"order_id": "o-15", "amount": "1213"});
    assert_eq!(mock.post(Api::Payment, "payment:o-15", &text_amount).await.status(), 201);
    let stats = mock.stats(Api::Payment);
    assert_eq!((stats.calls, stats.effects, stats.declines, stats.duplicates, stats.refused), (4, 2, 1, 1, 0));
    assert_eq!(mock.effects(Api::Payment)[0].body["order_id"], "o-14");
    let declines = mock.declines(Api::Payment);
    assert_eq!((declines.len(), &declines[0].body, &declines[0].response), (1, &body, &answer));
    let served: Vec<Effect> = mock.get("/payment/declines").await;
    assert_eq!(served, declines);
}

#[tokio::test]
async fn an_unknown_sku_answers_409_every_time_without_effect() {
    let mock = Mock::start().await;
    let body = json!({"order_id": "o-1", "items": [{"sku": "SKU-1", "quantity": 1}, {"sku": "UNKNOWN-42"}]});
    for _ in 0..2 {
        let refused = mock.post(Api::Inventory, "inventory:o-1", &body).await;
        assert_eq!((refused.status(), replayed(&refused)), (StatusCode::CONFLICT, false), "not remembered");
        assert_eq!(json_of(refused).await, json!({"error": "unknown_sku", "sku": "UNKNOWN-42"}));
    }
    // The key was not used up: a reservation without the unknown SKU takes effect with it.
    let fixed = mock.post(Api::Inventory, "inventory:o-1", &reservation("o-1")).await;
    assert_eq!((fixed.status(), replayed(&fixed)), (StatusCode::CREATED, false));
    let stats = mock.stats(Api::Inventory);
    assert_eq!((stats.calls, stats.effects, stats.refused, stats.duplicates), (3, 1, 2, 0));
}

#[tokio::test]
async fn releasing_a_reservation_needs_one_and_is_idempotent() {
    let mock = Mock::start().await;
    let body = json!({"order_id": "o-7", "reason": "order cancelled"});
    let missing = mock.release("o-7", "release:o-7", &body).await;
    assert_eq!((missing.status(), replayed(&missing)), (StatusCode::NOT_FOUND, false));
    assert_eq!(json_of(missing).await, json!({"error": "reservation_not_found", "order_id": "o-7"}));
    // The release API has faults of its own: reservations go through, releases fail, and are not remembered.
    mock.set_faults(Api::InventoryRelease, Faults { error_rate: 1.0, ..Faults::default() });
    assert_eq!(mock.post(Api::Inventory, "inventory:o-7", &reservation("o-7")).await.status(), StatusCode::CREATED);
    assert_eq!(mock.release("o-7", "release:o-7", &body).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    mock.set_faults(Api::InventoryRelease, Faults::default());
    // Reserved: the same key now releases it; again, the first answer is replayed.
    let released = json_of(mock.release("o-7", "release:o-7", &body).await).await;
    assert_eq!(released, json!({"order_id": "o-7", "status": "released"}));
    assert!(replayed(&mock.release("o-7", "release:o-7", &body).await));
    // A new key for the released order: a success that changes nothing, remembered under its key.
    let again = mock.release("o-7", "release:o-7:again", &json!({})).await;
    assert_eq!(json_of(again).await, json!({"order_id": "o-7", "status": "already_released"}));
    assert!(replayed(&mock.release("o-7", "release:o-7:again", &json!({})).await));
    // A new reservation of the order can be released again; an order id given as a number matches too.
    mock.post(Api::Inventory, "inventory:o-7:2", &reservation("o-7")).await;
    assert_eq!(mock.release("o-7", "release:o-7:2", &json!({})).await.status(), StatusCode::OK);
    mock.post(Api::Inventory, "inventory:7", &json!({"order_id": 7})).await;
    assert_eq!(mock.release("7", "release:7", &json!({})).await.status(), StatusCode::OK);
    let effects = mock.effects(Api::InventoryRelease);
    assert_eq!((effects.len(), &effects[0].body, &effects[0].response), (3, &body, &released));
    let stats = mock.stats(Api::InventoryRelease);
    assert_eq!((stats.calls, stats.effects, stats.duplicates, stats.refused, stats.injected_failures), (8, 3, 2, 1, 1));
    assert_eq!(statuses(&mock, Api::InventoryRelease), [404, 503, 200, 200, 200, 200, 200, 200]);
    let inventory = mock.stats(Api::Inventory);
    assert_eq!((inventory.calls, inventory.effects, inventory.injected_failures), (3, 3, 0), "counted apart");
}

#[tokio::test]
async fn a_release_takes_its_order_from_the_path() {
    let mock = Mock::start().await;
    let (order, in_path) = ("o 8/β", "o%208%2F%CE%B2");
    mock.post(Api::Inventory, "inventory:o-8", &reservation(order)).await;
    // An empty body will do: the effect's body gets the path's order id; the journal keeps the body as sent.
    let released = mock.release(in_path, "release:o-8", &json!({})).await;
    assert_eq!(json_of(released).await["order_id"], order);
    assert_eq!(mock.effects(Api::InventoryRelease)[0].body, json!({"order_id": order}));
    assert_eq!(mock.calls(Api::InventoryRelease)[0].body, json!({}));
    // Malformed: another order in the body, no key, not an object.
    let other = mock.release(in_path, "release:o-8:other", &json!({"order_id": "o-9"})).await;
    let problem = problem_of(other, StatusCode::BAD_REQUEST).await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("o-9")), "{problem}");
    let url = mock.url(&format!("/inventory/reservations/{in_path}/release"));
    problem_of(answered(mock.client.post(&url).json(&json!({}))).await, StatusCode::BAD_REQUEST).await;
    problem_of(answered(keyed(&mock.client, &url, "k").json(&json!([1]))).await, StatusCode::BAD_REQUEST).await;
    let stats = mock.stats(Api::InventoryRelease);
    assert_eq!((stats.calls, stats.rejected, stats.effects), (4, 3, 1));
}

#[tokio::test]
async fn calls_without_the_required_credentials_are_answered_401() {
    let mock = Mock::start().await;
    mock.require(Api::Sms, Required::Header { name: "X-Api-Key".into(), value: "k1".into() });
    mock.require(Api::Email, Required::basic("user", "pass"));
    mock.require(Api::Payment, Required::OAuth2Token);
    let sms_with = |key: &str| answered(mock.call(Api::Sms, "a").header("x-api-key", key).json(&sms("hi")));
    assert_eq!((sms_with("k2").await.status().as_u16(), sms_with("k1").await.status().as_u16()), (401, 202));
    let email = mock.call(Api::Email, "a").basic_auth("user", Some("pass"));
    assert_eq!(answered(email.json(&json!({"to": "a@example.com"}))).await.status(), 202);

    let token = |secret: &str| {
        let request = mock.client.post(mock.oauth2_token_url()).basic_auth("id", Some(secret));
        answered(request.form(&[("grant_type", "client_credentials")]))
    };
    assert_eq!(token("secret").await.status(), StatusCode::UNAUTHORIZED, "no client yet");
    mock.set_oauth2_client("id", "secret", Duration::from_secs(60));
    assert_eq!(json_of(token("nope").await).await, json!({"error": "invalid_client"}));
    let issued = json_of(token("secret").await).await;
    assert_eq!((&issued["token_type"], &issued["expires_in"], mock.tokens_issued()), (&json!("Bearer"), &json!(60), 1));
    let charge_with = |key: &str| {
        let request = mock.call(Api::Payment, key).json(&charge("o-1", 5));
        answered(request.bearer_auth(issued["access_token"].as_str().expect("token")))
    };
    assert_eq!(charge_with("a").await.status(), StatusCode::CREATED);
    mock.revoke_tokens();
    assert_eq!(charge_with("b").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!((mock.stats(Api::Sms).unauthorized, mock.stats(Api::Payment).unauthorized), (1, 1));
}

/// How long a test waits for the server to reach a state.
const WAIT: Duration = Duration::from_secs(10);

/// A server on a free port (its handle's methods through `Deref`) and a client calling it.
struct Mock {
    /// The server.
    server: MockApis,
    /// The client.
    client: Client,
}

impl std::ops::Deref for Mock {
    type Target = MockApis;

    fn deref(&self) -> &MockApis {
        &self.server
    }
}

impl Mock {
    /// A server with the default configuration.
    async fn start() -> Self {
        Self { server: MockApis::start(MockApisConfig::default()).await.expect("server starts"), client: Client::new() }
    }

    /// The URL of `path` on the server.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    /// A POST to `path` with `key` as its `Idempotency-Key`.
    fn keyed(&self, path: &str, key: &str) -> RequestBuilder {
        keyed(&self.client, self.url(path), key)
    }

    /// A POST to the endpoint of `api` with `key`.
    fn call(&self, api: Api, key: &str) -> RequestBuilder {
        self.keyed(api.endpoint_path(), key)
    }

    /// POSTs `body` to the endpoint of `api` with `key`.
    async fn post(&self, api: Api, key: &str, body: &Value) -> Response {
        answered(self.call(api, key).json(body)).await
    }

    /// POSTs a release of the reservation of `order` (percent-encoded).
    async fn release(&self, order: &str, key: &str, body: &Value) -> Response {
        answered(self.keyed(&format!("/inventory/reservations/{order}/release"), key).json(body)).await
    }

    /// GETs `path` as JSON.
    async fn get<T: DeserializeOwned>(&self, path: &str) -> T {
        answered(self.client.get(self.url(path))).await.json().await.expect("JSON")
    }
}

/// A reservation of two `SKU-1` for `order`.
fn reservation(order: &str) -> Value {
    json!({"order_id": order, "items": [{"sku": "SKU-1", "quantity": 2}]})
}

/// A charge.
fn charge(order: &str, amount: u64) -> Value {
    json!({"order_id": order, "amount": amount, "currency": "EUR"})
}

/// An SMS.
fn sms(text: &str) -> Value {
    json!({"to": "+15550100", "text": text})
}

/// A POST to `url` with `key` as its `Idempotency-Key`.
fn keyed(client: &Client, url: impl IntoUrl, key: &str) -> RequestBuilder {
    client.post(url).header("Idempotency-Key", key)
}

/// Sends the request and expects an answer (of any status).
async fn answered(request: RequestBuilder) -> Response {
    request.send().await.expect("request is answered")
}

/// Sends the request on a task of its own, which ends with the answer's status.
fn spawn_status(request: RequestBuilder) -> JoinHandle<reqwest::Result<StatusCode>> {
    tokio::spawn(async move { request.send().await.map(|response| response.status()) })
}

/// The body of an answer, as JSON.
async fn json_of(response: Response) -> Value {
    response.json().await.expect("body is JSON")
}

/// An answer's header, as text.
fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
    response.headers().get(name).and_then(|value| value.to_str().ok())
}

/// Whether the answer is a replay (`Idempotent-Replayed: true`).
fn replayed(response: &Response) -> bool {
    header(response, "idempotent-replayed") == Some("true")
}

/// Checks that the answer is problem+json with `status`, and returns the problem.
async fn problem_of(response: Response, status: StatusCode) -> Value {
    assert_eq!((response.status(), header(&response, "content-type")), (status, Some("application/problem+json")));
    let problem = json_of(response).await;
    assert_eq!(problem["status"], status.as_u16());
    problem
}

/// The statuses in the journal of `api`, in arrival order.
fn statuses(mock: &MockApis, api: Api) -> Vec<u16> {
    mock.calls(api).iter().map(|call| call.status).collect()
}
