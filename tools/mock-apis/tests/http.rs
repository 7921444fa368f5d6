//! The mock APIs over HTTP: a server per test on a free port, called with reqwest, checked through both
//! HTTP (`/{api}/effects`, `/payment/declines`, `/stats`) and the in-process handle.

mod support;

use std::time::{Duration, Instant};

use mock_apis::{Api, ApiStats, DECLINED_AMOUNT_SUFFIX, Effect, Faults, MockApis, MockApisConfig, UNKNOWN_SKU_PREFIX};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::{
    WAIT, answered, charge, email, get, header, json_of, keyed, now_ms, post, post_timing_out, post_to, problem_of,
    release, replayed, reservation, retry_after, sms, spawn_status, start, statuses, url,
};

#[tokio::test]
async fn every_api_answers_a_first_call_and_replays_it_without_a_second_effect() {
    let server = start().await;
    let client = Client::new();
    // A structured CloudEvent, as the forward consumer delivers a user's registration.
    let registration = json!({"specversion": "1.0", "type": "user.registered", "id": "e-1", "source": "/signup",
                              "data": {"user_id": "u-1", "email": "ada@example.com"}});
    let cases = [
        (Api::Inventory, Api::Inventory.endpoint_path().to_owned(), reservation("o-1"), 201, "reservation_id"),
        (Api::Payment, Api::Payment.endpoint_path().to_owned(), charge("o-1", 1250, "EUR"), 201, "charge_id"),
        (Api::Email, Api::Email.endpoint_path().to_owned(), email("a@example.com", "Hi", "Thanks"), 202, "message_id"),
        (Api::Sms, Api::Sms.endpoint_path().to_owned(), sms("+15550100", "Shipped"), 202, "message_id"),
        (
            Api::InventoryRelease,
            Api::release_path("o-1"),
            json!({"order_id": "o-1", "reason": "cancelled"}),
            200,
            "status",
        ),
        (
            Api::Shipping,
            Api::Shipping.endpoint_path().to_owned(),
            json!({"order_id": "o-1", "address": {"street": "1 rue de la Paix", "city": "Lyon"}}),
            201,
            "label_id",
        ),
        (Api::Auth, Api::Auth.endpoint_path().to_owned(), registration, 201, "account_id"),
    ];
    assert_eq!(cases.iter().map(|case| case.0).collect::<Vec<_>>(), Api::ALL, "one case per API");
    // The same key on every API: keys are per API, so each first call takes effect.
    for (api, path, body, status, id_field) in cases {
        let first = post_to(&client, url(&server, &path), Some("k-1"), &body).await;
        assert_eq!(first.status().as_u16(), status, "{api}");
        assert!(!replayed(&first), "{api}");
        let answer = json_of(first).await;
        assert!(answer[id_field].is_string(), "{api}: {answer}");

        let replay = post_to(&client, url(&server, &path), Some("k-1"), &body).await;
        assert_eq!(replay.status().as_u16(), status, "{api}");
        assert!(replayed(&replay), "{api}");
        assert_eq!(json_of(replay).await, answer, "{api}: the first answer again");

        let stats = server.stats(api);
        assert_eq!((stats.calls, stats.effects, stats.duplicates), (2, 1, 1), "{api}");
        let effects = server.effects(api);
        assert_eq!(effects.len(), 1, "{api}");
        assert_eq!((&effects[0].body, &effects[0].response), (&body, &answer), "{api}: body stored as received");
        let served: Vec<Effect> = get(&client, url(&server, &format!("/{api}/effects")), "effects").await;
        assert_eq!(served, effects, "{api}");
    }
    let label = &server.effects(Api::Shipping)[0].response;
    assert_eq!(label["order_id"], "o-1");
    assert!(label["tracking_number"].as_str().is_some_and(|t| t.starts_with("TRK-") && t.len() == 12), "{label}");
    assert_eq!(server.effects(Api::Auth)[0].response["user_id"], "u-1", "read from the event's data");
    let plain = json!({"user_id": "u-2", "email": "b@example.com"});
    let account = post(&client, &server, Api::Auth, Some("k-2"), &plain).await;
    assert_eq!(json_of(account).await["user_id"], "u-2");
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_calls_with_one_key_make_one_effect() {
    let server = start().await;
    server.set_faults(Api::Payment, Faults { latency_ms: 200, ..Faults::default() });
    let client = Client::new();
    let url = url(&server, Api::Payment.endpoint_path());
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let request = keyed(&client, &url, "payment:e-42").json(&charge("o-42", 999, "USD"));
            tokio::spawn(async move {
                let response = answered(request).await;
                (response.status(), json_of(response).await)
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
    server.set_faults(Api::Email, Faults { error_rate: 1.0, ..Faults::default() });
    let client = Client::new();
    let body = email("a@example.com", "Hi", "…");
    let failed = post(&client, &server, Api::Email, Some("email:e-1"), &body).await;
    problem_of(failed, StatusCode::SERVICE_UNAVAILABLE).await;
    let stats = server.stats(Api::Email);
    assert_eq!((stats.calls, stats.effects, stats.injected_failures), (1, 0, 1));
    assert!(server.effects(Api::Email).is_empty());

    // The failure was not remembered: a retry with the same key takes effect.
    server.set_faults(Api::Email, Faults::default());
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
        ..Faults::default()
    }))
    .await
    .expect("server starts");
    let client = Client::new();
    let response = post(&client, &server, Api::Sms, Some("sms:e-1"), &sms("+1", "hi")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&response, "retry-after"), Some(&b"7"[..]));
    let stats = server.stats(Api::Sms);
    assert_eq!((stats.effects, stats.injected_failures), (0, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_calls_are_answered_400_problem_json() {
    let server = start().await;
    let client = Client::new();
    let url = url(&server, Api::Inventory.endpoint_path());
    let no_key = answered(client.post(&url).json(&reservation("o-1"))).await;
    let not_json = answered(keyed(&client, &url, "k").body("order=o-1")).await;
    let not_object = answered(keyed(&client, &url, "k").json(&json!([1, 2]))).await;
    let empty_key = answered(keyed(&client, &url, "  ").json(&reservation("o-1"))).await;
    for response in [no_key, not_json, not_object, empty_key] {
        let problem = problem_of(response, StatusCode::BAD_REQUEST).await;
        assert!(problem["detail"].is_string(), "{problem}");
    }
    let stats = server.stats(Api::Inventory);
    assert_eq!((stats.calls, stats.rejected, stats.effects), (4, 4, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn stats_effects_and_health_over_http() {
    let server = start().await;
    let client = Client::new();
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let traced = keyed(&client, url(&server, Api::Inventory.endpoint_path()), "inventory:e-7")
        .header("traceparent", traceparent);
    let response = answered(traced.json(&reservation("o-7"))).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    post(&client, &server, Api::Inventory, Some("inventory:e-7"), &reservation("o-7")).await;

    let stats: Value = get(&client, url(&server, "/stats"), "JSON").await;
    let names: Vec<&str> = stats.as_object().expect("an object").keys().map(String::as_str).collect();
    assert_eq!(names.len(), Api::ALL.len());
    for api in Api::ALL {
        let served: ApiStats = serde_json::from_value(stats[api.as_str()].clone()).expect("counters");
        assert_eq!(served, server.stats(api), "{api}");
    }
    assert_eq!(stats["inventory"]["calls"], 2);
    assert_eq!(stats["inventory"]["duplicates"], 1);

    let effects = server.effects(Api::Inventory);
    assert_eq!(effects.len(), 1);
    assert_eq!(effects[0].idempotency_key, "inventory:e-7");
    assert_eq!(effects[0].traceparent.as_deref(), Some(traceparent));
    assert!(effects[0].received_at.ends_with('Z') && effects[0].received_at.len() == 24);
    assert!(effects[0].received_at_unix_ms > 1_700_000_000_000);

    let health = answered(client.get(url(&server, "/healthz"))).await;
    assert_eq!(health.status(), StatusCode::OK);
    for path in ["/billing/effects", "/inventory/calls", "/admin/faults", "/nowhere"] {
        let missing = answered(client.get(url(&server, path))).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{path}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_hang_takes_effect_but_answers_after_the_client_gave_up() {
    let server = start().await;
    server.set_faults(Api::Payment, Faults { hang_rate: 1.0, hang_ms: 30_000, ..Faults::default() });
    let body = charge("o-9", 5, "EUR");
    post_timing_out(&server, Api::Payment, "payment:e-9", &body, Duration::from_millis(300)).await;
    // The effect happened although the client saw a timeout.
    let effects = server.wait_for_effects(Api::Payment, 1, WAIT).await.expect("effect recorded");
    assert_eq!(server.stats(Api::Payment).hangs, 1);

    // The client's retry gets the first answer, not a second charge.
    server.set_faults(Api::Payment, Faults::default());
    let retry = post(&Client::new(), &server, Api::Payment, Some("payment:e-9"), &body).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(json_of(retry).await, effects[0].response);
    let stats = server.stats(Api::Payment);
    assert_eq!((stats.effects, stats.duplicates), (1, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn a_reset_takes_effect_but_the_client_gets_a_connection_error_not_a_status() {
    let server = start().await;
    server.set_faults(Api::Payment, Faults { reset_rate: 1.0, ..Faults::default() });
    let body = charge("o-10", 5, "EUR");
    let client = Client::new();
    let error = keyed(&client, url(&server, Api::Payment.endpoint_path()), "payment:e-10")
        .json(&body)
        .send()
        .await
        .expect_err("the connection is reset, so there is no answer");
    assert!(!error.is_timeout() && error.status().is_none(), "{error:?}");
    // The effect happened although the client saw no answer.
    let effects = server.wait_for_effects(Api::Payment, 1, WAIT).await.expect("effect recorded");
    assert_eq!(server.stats(Api::Payment).resets, 1);

    // The server goes on serving; the client's retry gets the first answer, not a second charge.
    server.set_faults(Api::Payment, Faults::default());
    let retry = post(&client, &server, Api::Payment, Some("payment:e-10"), &body).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(json_of(retry).await, effects[0].response);
    let stats = server.stats(Api::Payment);
    assert_eq!((stats.effects, stats.duplicates, stats.resets), (1, 1, 1));
    assert_eq!(server.calls(Api::Payment).len(), 2, "both calls are in the journal");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_cuts_a_hang_short() {
    let server = start().await;
    server.set_faults(Api::Sms, Faults { hang_rate: 1.0, ..Faults::default() });
    let call =
        spawn_status(keyed(&Client::new(), url(&server, Api::Sms.endpoint_path()), "sms:e-1").json(&sms("+1", "hi")));
    server.wait_for_stats(Api::Sms, WAIT, |s| s.hangs == 1).await.expect("request hangs");
    let started = Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let status = call.await.expect("task ends").expect("answered");
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn urls_point_at_the_bound_port() {
    let server = MockApis::start(MockApisConfig::new("0.0.0.0:0")).await.expect("server starts");
    let port = server.local_addr().port();
    assert_ne!(port, 0);
    assert_eq!(server.base_url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(server.api_url("inventory"), format!("http://127.0.0.1:{port}/inventory"));
    assert_eq!(server.api_url(Api::Sms), format!("http://127.0.0.1:{port}/sms"));
    assert_eq!(server.api_url(Api::InventoryRelease), format!("http://127.0.0.1:{port}/inventory"));
    let health = answered(Client::new().get(url(&server, "/healthz"))).await;
    assert_eq!(health.status(), StatusCode::OK);
    server.shutdown().await;
    assert!(
        MockApis::start(MockApisConfig::new("not an address")).await.is_err(),
        "a bad address is an error, not a panic"
    );
    let bad_faults = MockApisConfig::default().with_faults(Faults { error_rate: 3.0, ..Faults::default() });
    assert!(MockApis::start(bad_faults).await.is_err());
}

#[tokio::test]
async fn latency_jitter_spreads_answers_between_latency_and_latency_plus_jitter() {
    let server = start().await;
    let client = Client::new();
    server.set_faults(Api::Sms, Faults { latency_ms: 40, latency_jitter_ms: 80, ..Faults::default() });
    for i in 0..6 {
        let response = post(&client, &server, Api::Sms, Some(&format!("sms:{i}")), &sms("+1", "hi")).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    let calls = server.calls(Api::Sms);
    assert_eq!(calls.len(), 6);
    for call in &calls {
        let took = call.answered_at_unix_ms - call.received_at_unix_ms;
        // At least the latency; at most latency + jitter, plus generous slack for a busy machine.
        assert!((40..40 + 80 + 2_000).contains(&took), "{took} ms: {call:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_body_containing_the_text_fails_with_the_status_and_no_effect() {
    let server = start().await;
    server.set_faults(
        Api::Inventory,
        Faults { fail_body_contains: Some("o-poison".to_owned()), fail_body_status: 422, ..Faults::default() },
    );
    let client = Client::new();
    let poisoned = post(&client, &server, Api::Inventory, Some("k-1"), &reservation("o-poison")).await;
    assert_eq!(retry_after(&poisoned), None, "no Retry-After with a 422");
    let problem = problem_of(poisoned, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("o-poison")), "{problem}");
    let fine = post(&client, &server, Api::Inventory, Some("k-2"), &reservation("o-fine")).await;
    assert_eq!(fine.status(), StatusCode::CREATED);
    let stats = server.stats(Api::Inventory);
    assert_eq!((stats.calls, stats.effects, stats.injected_failures), (2, 1, 1));
    assert_eq!(server.effects(Api::Inventory)[0].idempotency_key, "k-2");

    // Default status 503, with Retry-After; the raw text is matched, not just values.
    server.set_faults(
        Api::Inventory,
        Faults { fail_body_contains: Some(r#""quantity":2"#.to_owned()), retry_after_secs: 4, ..Faults::default() },
    );
    let raw = answered(
        keyed(&client, url(&server, Api::Inventory.endpoint_path()), "k-3")
            .header("content-type", "application/json")
            .body(r#"{"order_id":"o-3","items":[{"sku":"S","quantity":2}]}"#),
    )
    .await;
    assert_eq!(raw.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after(&raw), Some("4"));
    // Not remembered: once the fault is gone, the same key takes effect.
    server.set_faults(Api::Inventory, Faults::default());
    let retried = post(&client, &server, Api::Inventory, Some("k-3"), &reservation("o-3")).await;
    assert_eq!(retried.status(), StatusCode::CREATED);
    assert!(header(&retried, "idempotent-replayed").is_none());
    assert_eq!(statuses(&server, Api::Inventory), [422, 201, 503, 201]);
    server.shutdown().await;
}

#[tokio::test]
async fn the_first_calls_of_each_key_fail_then_go_through() {
    let server = start().await;
    server.set_faults(
        Api::Payment,
        Faults { fail_first_per_key: 2, fail_first_status: 429, retry_after_secs: 3, ..Faults::default() },
    );
    let client = Client::new();
    let body = charge("o-1", 5, "EUR");
    let mut statuses = Vec::new();
    for key in ["a", "b", "a", "a", "b", "b", "a"] {
        let response = post(&client, &server, Api::Payment, Some(key), &body).await;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(retry_after(&response), Some("3"));
            assert_eq!(json_of(response).await["status"], 429);
        } else {
            assert!(retry_after(&response).is_none());
        }
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses, [429, 429, 429, 201, 429, 201, 201]);
    let stats = server.stats(Api::Payment);
    assert_eq!((stats.calls, stats.injected_failures, stats.effects, stats.duplicates), (7, 4, 2, 1));

    // A 503 carries Retry-After too; a 500 does not.
    server.set_faults(Api::Payment, Faults { fail_first_per_key: 1, ..Faults::default() });
    let unavailable = post(&client, &server, Api::Payment, Some("c"), &body).await;
    assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after(&unavailable), Some("1"));
    // Keys already past the count are not failed again.
    let replay = post(&client, &server, Api::Payment, Some("a"), &body).await;
    assert_eq!(replay.status(), StatusCode::CREATED);
    server.set_faults(Api::Payment, Faults { fail_first_per_key: 1, fail_first_status: 500, ..Faults::default() });
    let error = post(&client, &server, Api::Payment, Some("d"), &body).await;
    assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(retry_after(&error).is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn body_failures_come_before_first_call_failures_which_come_before_the_draw() {
    let server = start().await;
    server.set_faults(
        Api::Email,
        Faults {
            fail_body_contains: Some("poison".to_owned()),
            fail_body_status: 422,
            fail_first_per_key: 1,
            fail_first_status: 500,
            error_rate: 1.0,
            ..Faults::default()
        },
    );
    let client = Client::new();
    let poison = email("a@example.com", "poison", "…");
    let plain = email("a@example.com", "hello", "…");
    let mut statuses = Vec::new();
    for (key, body) in [("k", &poison), ("k", &poison), ("k", &plain), ("k", &plain), ("j", &plain)] {
        statuses.push(post(&client, &server, Api::Email, Some(key), body).await.status().as_u16());
    }
    // Body failures do not use up the key's first calls; after them the random draw (always 503).
    assert_eq!(statuses, [422, 422, 500, 503, 500]);
    let stats = server.stats(Api::Email);
    assert_eq!((stats.injected_failures, stats.effects), (5, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn the_journal_keeps_every_call_in_arrival_order() {
    let server = start().await;
    let client = Client::new();
    let url = url(&server, Api::Inventory.endpoint_path());
    let before = now_ms();
    // Malformed: no key; not JSON; not an object.
    answered(client.post(&url).json(&reservation("o-0"))).await;
    answered(keyed(&client, &url, " k-x ").body("order=o-1")).await;
    answered(keyed(&client, &url, "k-y").json(&json!([1]))).await;
    // Taken, replayed, failed.
    post(&client, &server, Api::Inventory, Some("k-1"), &reservation("o-1")).await;
    post(&client, &server, Api::Inventory, Some("k-1"), &reservation("o-1")).await;
    server.set_faults(Api::Inventory, Faults { throttle_rate: 1.0, latency_ms: 60, ..Faults::default() });
    post(&client, &server, Api::Inventory, Some("k-2"), &reservation("o-2")).await;

    let calls = server.calls(Api::Inventory);
    let summary: Vec<_> = calls.iter().map(|c| (c.idempotency_key.as_deref(), c.status)).collect();
    assert_eq!(
        summary,
        [
            (None, 400),
            (Some("k-x"), 400),
            (Some("k-y"), 400),
            (Some("k-1"), 201),
            (Some("k-1"), 201),
            (Some("k-2"), 429),
        ]
    );
    assert_eq!(calls[0].body, reservation("o-0"));
    assert_eq!(calls[1].body, Value::Null, "not JSON");
    assert_eq!(calls[2].body, json!([1]));
    assert_eq!(calls[5].body, reservation("o-2"));
    for pair in calls.windows(2) {
        assert!(pair[0].received_at_unix_ms <= pair[1].received_at_unix_ms);
    }
    for call in &calls {
        assert!(call.received_at_unix_ms >= before, "{call:?}");
        assert!(call.answered_at_unix_ms >= call.received_at_unix_ms);
    }
    // The arrival time is taken before the latency, the answer time after it.
    assert!(calls[5].answered_at_unix_ms - calls[5].received_at_unix_ms >= 60);
    assert_eq!(server.stats(Api::Inventory).calls, calls.len() as u64);
    assert!(server.calls(Api::Payment).is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_calls_are_journaled_in_arrival_order() {
    let server = start().await;
    let client = Client::new();
    let body = sms("+1", "hi");
    // The first call is slow, the second fast: the second is answered first but listed second.
    server.set_faults(Api::Sms, Faults { latency_ms: 400, ..Faults::default() });
    let slow = spawn_status(keyed(&client, url(&server, Api::Sms.endpoint_path()), "slow").json(&body));
    server.wait_for_stats(Api::Sms, WAIT, |s| s.in_flight == 1).await.expect("the slow call arrives");
    server.set_faults(Api::Sms, Faults::default());
    let fast = post(&client, &server, Api::Sms, Some("fast"), &body).await;
    assert_eq!(fast.status(), StatusCode::ACCEPTED);
    assert_eq!(server.calls(Api::Sms).len(), 1, "only answered calls are listed");
    assert_eq!(slow.await.expect("task ends").expect("answered"), StatusCode::ACCEPTED);
    let keys: Vec<_> = server.calls(Api::Sms).into_iter().map(|c| c.idempotency_key).collect();
    assert_eq!(keys, [Some("slow".to_owned()), Some("fast".to_owned())]);
    server.shutdown().await;
}

#[tokio::test]
async fn waiting_wakes_on_answers_and_times_out_with_the_counters() {
    let server = start().await;
    server.set_faults(Api::Email, Faults { latency_ms: 100, fail_first_per_key: 1, ..Faults::default() });
    let client = Client::new();
    let url = url(&server, Api::Email.endpoint_path());
    let calls = tokio::spawn(async move {
        for _ in 0..2 {
            answered(keyed(&client, &url, "email:e-1").json(&email("a@example.com", "Hi", "…"))).await;
        }
    });
    let journal = server.wait_for_calls(Api::Email, 2, WAIT).await.expect("both calls answered");
    let statuses: Vec<u16> = journal.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [503, 202]);
    calls.await.expect("task ends");

    let error = server.wait_for_calls(Api::Email, 3, Duration::from_millis(50)).await.expect_err("no third call");
    assert_eq!(error.api, Api::Email);
    assert_eq!(error.stats.calls, 2);
    assert!(error.to_string().contains("at least 3 call"), "{error}");
    let error = server.wait_for_effects(Api::Email, 2, Duration::from_millis(50)).await.expect_err("one effect");
    assert_eq!((error.api, error.stats.effects), (Api::Email, 1));
    assert!(error.to_string().contains("at least 2 effect"), "{error}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_abandoned_during_a_hang_is_journaled_with_its_answer() {
    let server = start().await;
    server.set_faults(Api::Payment, Faults { hang_rate: 1.0, hang_ms: 30_000, ..Faults::default() });
    post_timing_out(&server, Api::Payment, "payment:e-1", &charge("o-1", 5, "EUR"), Duration::from_millis(200)).await;
    // The server notices the client leaving and drops the request mid-hang (well before `hang_ms`); the
    // call is journaled at once, with the answer of the effect it had recorded.
    let calls = server.wait_for_calls(Api::Payment, 1, WAIT).await.expect("the abandoned call is journaled");
    assert!(calls[0].answered_at_unix_ms - calls[0].received_at_unix_ms < 30_000);
    assert_eq!(calls[0].status, 201);
    assert_eq!(calls[0].idempotency_key.as_deref(), Some("payment:e-1"));
    server.shutdown().await;
}

#[tokio::test]
async fn in_flight_counts_requests_during_latency() {
    let server = start().await;
    server.set_faults(Api::Inventory, Faults { latency_ms: 400, ..Faults::default() });
    let client = Client::new();
    let send = |key: &'static str| {
        spawn_status(keyed(&client, url(&server, Api::Inventory.endpoint_path()), key).json(&reservation(key)))
    };
    let calls = [send("a"), send("b"), send("c")];
    let during = server
        .wait_for_stats(Api::Inventory, WAIT, |s| s.in_flight == 3)
        .await
        .expect("three requests wait out their latency in flight");
    assert_eq!((during.peak_in_flight, during.effects), (3, 0));
    for call in calls {
        assert_eq!(call.await.expect("task ends").expect("answered"), StatusCode::CREATED);
    }
    let stats = server.stats(Api::Inventory);
    assert_eq!((stats.in_flight, stats.peak_in_flight, stats.calls, stats.effects), (0, 3, 3, 3));
    server.shutdown().await;
}

#[tokio::test]
async fn a_declined_charge_answers_402_is_replayed_and_counted_apart_from_effects() {
    let server = start().await;
    let client = Client::new();
    let amount = 12 * 100 + DECLINED_AMOUNT_SUFFIX;
    let body = json!({"order_id": "o-13", "amount": amount, "currency": "EUR", "card": "tok_visa"});
    let declined = post(&client, &server, Api::Payment, Some("payment:o-13"), &body).await;
    assert_eq!(declined.status(), StatusCode::PAYMENT_REQUIRED);
    assert!(!replayed(&declined));
    assert_eq!(header(&declined, "content-type"), Some(&b"application/json"[..]));
    let answer = json_of(declined).await;
    assert_eq!(answer, json!({"error": "card_declined", "decline_reason": "insufficient_funds", "order_id": "o-13"}));

    // Remembered like a success: the same key gets the same 402, as a duplicate.
    let replay = post(&client, &server, Api::Payment, Some("payment:o-13"), &body).await;
    assert_eq!(replay.status(), StatusCode::PAYMENT_REQUIRED);
    assert!(replayed(&replay));
    assert_eq!(json_of(replay).await, answer);

    // Another amount is charged.
    let charged =
        post(&client, &server, Api::Payment, Some("payment:o-14"), &json!({"order_id": "o-14", "amount": 1214})).await;
    assert_eq!(charged.status(), StatusCode::CREATED);

    let stats = server.stats(Api::Payment);
    assert_eq!((stats.calls, stats.effects, stats.declines, stats.duplicates, stats.refused), (3, 1, 1, 1, 0));
    let effects = server.effects(Api::Payment);
    assert_eq!(effects.len(), 1);
    assert_eq!(effects[0].body["order_id"], "o-14");
    let declines = server.declines(Api::Payment);
    assert_eq!(declines.len(), 1);
    assert_eq!((declines[0].idempotency_key.as_str(), &declines[0].body), ("payment:o-13", &body));
    assert_eq!(declines[0].response, answer);
    assert!(server.declines(Api::Inventory).is_empty());
    let served: Vec<Effect> = get(&client, url(&server, "/payment/declines"), "declines").await;
    assert_eq!(served, declines);
    assert_eq!(statuses(&server, Api::Payment), [402, 402, 201]);
    server.shutdown().await;
}

#[tokio::test]
async fn an_unknown_sku_answers_409_every_time_without_effect() {
    let server = start().await;
    let client = Client::new();
    let sku = format!("{UNKNOWN_SKU_PREFIX}-42");
    let body = json!({"order_id": "o-1", "items": [{"sku": "SKU-1", "quantity": 1}, {"sku": sku, "quantity": 2}]});
    for _ in 0..2 {
        let refused = post(&client, &server, Api::Inventory, Some("inventory:o-1"), &body).await;
        assert_eq!(refused.status(), StatusCode::CONFLICT);
        assert!(!replayed(&refused), "a refusal is not remembered");
        assert_eq!(json_of(refused).await, json!({"error": "unknown_sku", "sku": sku}));
    }
    let stats = server.stats(Api::Inventory);
    assert_eq!((stats.calls, stats.effects, stats.refused, stats.duplicates), (2, 0, 2, 0));
    assert!(server.effects(Api::Inventory).is_empty());
    // The key was not used up: a reservation without the unknown SKU takes effect with it.
    let fixed = post(&client, &server, Api::Inventory, Some("inventory:o-1"), &reservation("o-1")).await;
    assert_eq!(fixed.status(), StatusCode::CREATED);
    assert!(!replayed(&fixed));
    assert_eq!(statuses(&server, Api::Inventory), [409, 409, 201]);
    assert_eq!(server.stats(Api::Inventory).effects, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn releasing_a_reservation_needs_one_and_is_idempotent() {
    let server = start().await;
    let client = Client::new();
    let body = json!({"order_id": "o-7", "reason": "order cancelled"});

    // No reservation yet: 404, not remembered.
    let missing = release(&client, &server, "o-7", "release:o-7", &body).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(!replayed(&missing));
    assert_eq!(json_of(missing).await, json!({"error": "reservation_not_found", "order_id": "o-7"}));
    assert!(server.effects(Api::InventoryRelease).is_empty());

    // Reserved: the same key now releases it.
    post(&client, &server, Api::Inventory, Some("inventory:o-7"), &reservation("o-7")).await;
    let released = release(&client, &server, "o-7", "release:o-7", &body).await;
    assert_eq!(released.status(), StatusCode::OK);
    assert!(!replayed(&released));
    let answer = json_of(released).await;
    assert_eq!(answer, json!({"order_id": "o-7", "status": "released"}));

    // The same key again: the first answer, replayed.
    let replay = release(&client, &server, "o-7", "release:o-7", &body).await;
    assert_eq!(replay.status(), StatusCode::OK);
    assert!(replayed(&replay));
    assert_eq!(json_of(replay).await, answer);

    // A new key for the released order: a success that changes nothing (and is remembered under its key).
    let again = release(&client, &server, "o-7", "release:o-7:again", &json!({})).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(!replayed(&again));
    assert_eq!(json_of(again).await, json!({"order_id": "o-7", "status": "already_released"}));
    let again_replay = release(&client, &server, "o-7", "release:o-7:again", &json!({})).await;
    assert!(replayed(&again_replay));

    let effects = server.effects(Api::InventoryRelease);
    assert_eq!(effects.len(), 1, "one release, one effect");
    assert_eq!(effects[0].body, body);
    assert_eq!(effects[0].response, answer);
    let stats = server.stats(Api::InventoryRelease);
    assert_eq!((stats.calls, stats.effects, stats.duplicates, stats.refused), (5, 1, 2, 1));
    // Releases are counted apart from reservations.
    let inventory = server.stats(Api::Inventory);
    assert_eq!((inventory.calls, inventory.effects), (1, 1));
    assert_eq!(statuses(&server, Api::InventoryRelease), [404, 200, 200, 200, 200]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_release_takes_its_order_from_the_path() {
    let server = start().await;
    let client = Client::new();
    let order = "o 8/β";
    post(&client, &server, Api::Inventory, Some("inventory:o-8"), &reservation(order)).await;
    // An empty body will do: the stored body gets the path's order id.
    let released = release(&client, &server, order, "release:o-8", &json!({})).await;
    assert_eq!(released.status(), StatusCode::OK);
    assert_eq!(json_of(released).await["order_id"], order);
    assert_eq!(server.effects(Api::InventoryRelease)[0].body, json!({"order_id": order}));
    // The journal keeps the body as received.
    assert_eq!(server.calls(Api::InventoryRelease)[0].body, json!({}));

    // Malformed: another order in the body, no key, not an object.
    let other = release(&client, &server, order, "release:o-8:other", &json!({"order_id": "o-9"})).await;
    assert_eq!(other.status(), StatusCode::BAD_REQUEST);
    assert!(json_of(other).await["detail"].as_str().is_some_and(|d| d.contains("o-9")));
    let url = url(&server, &Api::release_path(order));
    let no_key = answered(client.post(&url).json(&json!({}))).await;
    assert_eq!(no_key.status(), StatusCode::BAD_REQUEST);
    let not_object = answered(keyed(&client, &url, "k").json(&json!([1]))).await;
    assert_eq!(not_object.status(), StatusCode::BAD_REQUEST);
    let stats = server.stats(Api::InventoryRelease);
    assert_eq!((stats.calls, stats.rejected, stats.effects), (4, 3, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn the_release_api_has_its_own_stats_effects_and_faults() {
    let server = start().await;
    let client = Client::new();
    assert_eq!(server.api_url(Api::InventoryRelease), server.api_url(Api::Inventory));
    assert_eq!(server.api_url("inventory_release"), url(&server, "/inventory"));

    server.set_faults(Api::InventoryRelease, Faults { error_rate: 1.0, ..Faults::default() });
    let reserved = post(&client, &server, Api::Inventory, Some("inventory:o-1"), &reservation("o-1")).await;
    assert_eq!(reserved.status(), StatusCode::CREATED, "reservations keep their own faults");
    let failed = release(&client, &server, "o-1", "release:o-1", &json!({})).await;
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    server.set_faults(Api::InventoryRelease, Faults::default());
    let released = release(&client, &server, "o-1", "release:o-1", &json!({})).await;
    assert_eq!(released.status(), StatusCode::OK);

    let raw: Value = get(&client, url(&server, "/stats"), "JSON").await;
    assert_eq!(raw["inventory_release"]["calls"], 2);
    assert_eq!(raw["inventory_release"]["effects"], 1);
    assert_eq!(raw["inventory_release"]["injected_failures"], 1);
    assert_eq!(raw["inventory"]["effects"], 1);
    assert_eq!(raw["inventory"]["injected_failures"], 0);

    let effects: Vec<Effect> = get(&client, url(&server, "/inventory_release/effects"), "effects").await;
    assert_eq!(effects, server.effects(Api::InventoryRelease));
    assert_eq!(effects[0].idempotency_key, "release:o-1");
    assert_eq!(statuses(&server, Api::InventoryRelease), [503, 200]);
    let waited = server.wait_for_effects(Api::InventoryRelease, 1, WAIT).await.expect("the release is there");
    assert_eq!(waited, effects);
    server.shutdown().await;
}
