//! Failure routing against a real broker and the mock APIs: dead letters with full context, the dead-letter
//! guard, the circuit breaker and the rate limit.

use courier_consumers::inventory::{Inventory, InventoryHandler};
use courier_tests::WAIT;
use std::time::{Duration, Instant};

use chrono::DateTime;
use courier::delivery::dlq::{DeadLetterRoute, dlq_topic};
use courier::delivery::{Consumer, Handler, Incoming, Outcome};
use courier::health::Health;
use courier::kafka::headers::RawHeader;
use courier_consumers::order_topics::OrderTopics;
use courier_tests::kafka_probe::{self, ReadRecord};
use courier_tests::produce::{TestRecord, order_event, order_record, origin_header, produce};
use courier_tests::wrapped::Wrapped;
use courier_tests::{TestApp, spawn_app};
use mock_apis::{Api, Faults};
use serde_json::json;

fn raw(key: &str, value: &[u8]) -> TestRecord {
    TestRecord { key: Some(key.to_owned()), value: value.to_vec(), partition: Some(0), headers: vec![origin_header()] }
}

fn dlq_of(app: &TestApp) -> String {
    dlq_topic(app.settings.topics.orders_created(), &app.settings.kafka.group_id("inventory"))
}

/// A poison record and what its dead letter must say.
struct Poison {
    record: TestRecord,
    kind: &'static str,
    status: Option<&'static str>,
    attempts: &'static str,
}

/// Produces `poison` followed by `good` well-formed events on partition 0, runs the inventory consumer with
/// `overrides`, and checks that each poison record is dead-lettered with every header right and every good
/// event delivered.
async fn dead_letters(app: &TestApp, poison: Vec<Poison>, good: usize, overrides: &[(&str, &str)]) {
    let mut records: Vec<TestRecord> = poison.iter().map(|p| p.record.clone()).collect();
    for k in 0..good {
        records.push(order_record(&order_event(&format!("key-ok-{k}"), "SEQ-0"), Some(0)));
    }
    produce(&app.settings, &records).await.expect("produced");
    let consumer = app.consumer(Inventory).settings(&app.settings_with(overrides)).start();
    let dlq = kafka_probe::read_all(&app.bootstrap, &dlq_of(app), poison.len(), WAIT).await.expect("DLQ readable");
    app.mock.wait_for_effects(Api::Inventory, good, WAIT).await.expect("the events behind the poison flow");
    consumer.stop().await.expect("stops cleanly");

    assert_eq!(dlq.len(), poison.len(), "one dead letter per poison record");
    let group = app.settings.kafka.group_id("inventory");
    for (offset, p) in poison.iter().enumerate() {
        let key = p.record.key.as_deref().expect("key");
        let letter: &ReadRecord = dlq
            .iter()
            .find(|r| r.key.as_deref() == Some(key.as_bytes()))
            .unwrap_or_else(|| panic!("no dead letter for {key}"));
        assert_eq!(letter.value.as_deref(), Some(p.record.value.as_slice()), "{key}: value byte for byte");
        assert_eq!(letter.partition, 0, "{key}: same partition as the original");
        assert_eq!(letter.header("x-test-origin").as_deref(), Some("courier-tests"), "{key}: original headers kept");
        let h = |name: &str| letter.header(&format!("courier.dlq.{name}"));
        assert_eq!(h("original.topic").as_deref(), Some(app.settings.topics.orders_created()), "{key}");
        assert_eq!(h("original.partition").as_deref(), Some("0"), "{key}");
        assert_eq!(h("original.offset"), Some(offset.to_string()), "{key}");
        assert!(h("original.timestamp").and_then(|t| t.parse::<i64>().ok()).is_some_and(|t| t > 0), "{key}");
        assert_eq!(h("group").as_deref(), Some(group.as_str()), "{key}");
        assert_eq!(h("consumer").as_deref(), Some("inventory"), "{key}");
        assert_eq!(h("error.kind").as_deref(), Some(p.kind), "{key}");
        assert!(h("error.message").is_some_and(|m| !m.is_empty()), "{key}");
        assert_eq!(h("http.status").as_deref(), p.status, "{key}");
        assert_eq!(h("attempts").as_deref(), Some(p.attempts), "{key}");
        if p.status.is_some() {
            assert!(h("http.body").is_some_and(|b| !b.is_empty()), "{key}: response body excerpt");
            let endpoint = h("endpoint").unwrap_or_default();
            assert!(
                endpoint.starts_with("POST http://127.0.0.1:") && endpoint.ends_with("/inventory/reservations"),
                "{key}: {endpoint}"
            );
        }
        let first =
            h("first_failure_at").and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).expect("first_failure_at");
        let last = h("last_failure_at").and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).expect("last_failure_at");
        assert!(first <= last, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undecodable_and_rejected_events_are_dead_lettered_with_their_context() {
    let app = spawn_app().await;
    app.mock.set_faults(
        Api::Inventory,
        Faults { fail_body_contains: Some("key-rejected".into()), fail_body_status: 422, ..Faults::default() },
    );
    let mut missing_field = serde_json::to_value(order_event("key-missing", "SEQ-0")).expect("json");
    missing_field["data"].as_object_mut().expect("data").remove("items");
    let mut unknown_type = serde_json::to_value(order_event("key-unknown-type", "SEQ-0")).expect("json");
    unknown_type["type"] = json!("order.shipped");
    let mut unknown_version = serde_json::to_value(order_event("key-unknown-version", "SEQ-0")).expect("json");
    unknown_version["specversion"] = json!("0.3");
    let json = |v: &serde_json::Value| serde_json::to_vec(v).expect("json");
    let poison = vec![
        Poison { record: raw("key-not-json", b"\x00\x01 not json"), kind: "decode", status: None, attempts: "0" },
        Poison {
            record: raw("key-not-cloudevent", br#"{"hello":"world"}"#),
            kind: "decode",
            status: None,
            attempts: "0",
        },
        Poison { record: raw("key-missing", &json(&missing_field)), kind: "decode", status: None, attempts: "1" },
        Poison {
            record: raw("key-unknown-type", &json(&unknown_type)),
            kind: "unknown_type",
            status: None,
            attempts: "1",
        },
        Poison {
            record: raw("key-unknown-version", &json(&unknown_version)),
            kind: "unknown_version",
            status: None,
            attempts: "0",
        },
        Poison {
            record: raw(
                "key-rejected",
                &json(&serde_json::to_value(order_event("key-rejected", "SEQ-0")).expect("json")),
            ),
            kind: "http_status",
            status: Some("422"),
            attempts: "1",
        },
    ];
    dead_letters(&app, poison, 10, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_whose_retry_budget_is_spent_is_dead_lettered() {
    let app = spawn_app().await;
    app.mock.set_faults(
        Api::Inventory,
        Faults { fail_body_contains: Some("key-exhausted".into()), fail_body_status: 503, ..Faults::default() },
    );
    let exhausted = serde_json::to_vec(&order_event("key-exhausted", "SEQ-0")).expect("json");
    let poison = vec![Poison {
        record: raw("key-exhausted", &exhausted),
        kind: "http_status",
        status: Some("503"),
        attempts: "3",
    }];
    dead_letters(&app, poison, 10, &[("COURIER__CONSUMER__RETRY_MAX_ATTEMPTS", "3")]).await;
    let calls = app.mock.calls(Api::Inventory).iter().filter(|c| c.body["order_id"] == "key-exhausted").count();
    assert_eq!(calls, 3, "three attempts, then the dead letter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_dead_letter_keeps_the_offset_uncommitted_until_it_lands_once() {
    let app = spawn_app().await;
    app.mock.set_faults(
        Api::Inventory,
        Faults { fail_body_contains: Some("key-rejected".into()), fail_body_status: 422, ..Faults::default() },
    );
    let rejected = order_event("key-rejected", "SEQ-0");
    produce(&app.settings, &[order_record(&rejected, Some(0))]).await.expect("produced");
    // The dead-letter topic does not exist (and is not created): the dead letter cannot be written. (Started
    // as its binary starts it, the consumer would wait for that topic: the route is given to it instead.)
    let dlq = dlq_of(&app);
    let settings = app.settings_with(&[
        ("COURIER__PRODUCER__PUBLISH_TIMEOUT_MS", "1500"),
        ("COURIER__TOPICS__CREATE", "false"),
        ("COURIER__CONSUMER__RETRY_MAX_BACKOFF_MS", "500"),
    ]);
    let t = &app.settings.topics;
    courier::kafka::ensure_topics(&app.settings.kafka, t, &[t.payment_failed()]).await.expect("topic created");
    let spec = Inventory.spec(&settings);
    let route = DeadLetterRoute::new(&settings, &spec.group, "inventory", &spec.topics).await.expect("route");
    let health = Health::default();
    let consumer = app.consumer(Inventory).settings(&settings).health(&health).failure_route(route).start();
    app.mock.wait_for_calls(Api::Inventory, 1, WAIT).await.expect("the event was tried");
    // Every call is rejected; while the DLQ cannot be written the event stays unfinished.
    let group = app.settings.kafka.group_id("inventory");
    let topic = app.settings.topics.orders_created();
    let committed = kafka_probe::committed(&app.bootstrap, &group, topic, 0).await.expect("committed readable");
    assert!(committed.unwrap_or(0) <= 0, "the source offset must not be committed past the event: {committed:?}");
    // The failing route is reported (and the consumer is not ready) until the dead letter lands.
    assert!(health.wait_for(WAIT, |p| p.contains_key("failure_route")).await, "the route failure is reported");
    let committed = kafka_probe::committed(&app.bootstrap, &group, topic, 0).await.expect("committed readable");
    assert!(committed.unwrap_or(0) <= 0, "still uncommitted after a failed dead letter: {committed:?}");
    courier::kafka::ensure_topics(&settings.kafka, &settings.topics, &[&dlq]).await.expect("DLQ created");
    let letters = kafka_probe::read_all(&app.bootstrap, &dlq, 1, WAIT).await.expect("DLQ readable");
    assert!(health.wait_for(WAIT, |p| p.is_empty()).await, "the route recovered");
    consumer.stop().await.expect("stops cleanly");
    assert_eq!(letters.len(), 1);
    let again = kafka_probe::read_all(&app.bootstrap, &dlq, 2, Duration::from_secs(3)).await.expect("readable");
    assert_eq!(again.len(), 1, "the event reaches the DLQ once");
    let committed = kafka_probe::committed(&app.bootstrap, &group, topic, 0).await.expect("committed readable");
    assert_eq!(committed, Some(1), "committed once the dead letter was acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_opens_the_breaker_and_dead_letters_nothing() {
    let app = spawn_app().await;
    app.mock.set_faults(Api::Inventory, Faults { error_rate: 1.0, ..Faults::default() });
    let n = 40;
    let records: Vec<_> = (0..n).map(|k| order_record(&order_event(&format!("key-{k}"), "SEQ-0"), None)).collect();
    produce(&app.settings, &records).await.expect("produced");
    let cooldown_ms = 700u64;
    let settings = app.settings_with(&[
        ("COURIER__CONSUMER__RETRY_MAX_ATTEMPTS", "3"),
        ("COURIER__APIS__INVENTORY__BREAKER_MINIMUM_CALLS", "3"),
        ("COURIER__APIS__INVENTORY__BREAKER_COOLDOWN_MS", &cooldown_ms.to_string()),
        // One call at a time: no call admitted before the breaker opened can arrive after it.
        ("COURIER__CONSUMER__MAX_IN_FLIGHT", "1"),
    ]);
    let health = Health::default();
    let consumer = app.consumer(Inventory).settings(&settings).health(&health).start();
    assert!(health.wait_for(WAIT, |p| p.contains_key("breaker.inventory")).await, "the breaker opens");
    // While open, only probes reach the API: one per cool-down.
    let opened_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).expect("after 1970");
    let opened = Instant::now();
    let mut seen = app.mock.calls(Api::Inventory).len();
    loop {
        let calls = app.mock.wait_for_calls(Api::Inventory, seen + 1, WAIT).await.expect("probes come");
        seen = calls.len();
        if calls.iter().filter(|c| c.received_at_unix_ms > opened_ms).count() >= 3 {
            break;
        }
    }
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(2 * cooldown_ms),
        "3 calls within {took:?} while open: more than one probe per {cooldown_ms} ms cool-down"
    );
    assert!(!health.is_ready(), "readiness reports the open breaker");

    app.mock.set_faults(Api::Inventory, Faults::default());
    app.mock.wait_for_effects(Api::Inventory, n, WAIT).await.expect("every event delivered after recovery");
    assert!(health.wait_for(WAIT, |p| p.is_empty()).await, "the breaker closes");
    consumer.stop().await.expect("stops cleanly");
    assert_eq!(app.mock.stats(Api::Inventory).effects as usize, n, "exactly one effect per event");
    assert_eq!(
        kafka_probe::record_count(&app.bootstrap, &dlq_of(&app)).await.expect("count"),
        0,
        "nothing dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_poison_is_throttled_never_held_and_good_orders_flow() {
    let app = spawn_app().await;
    // 150 poison orders the API refuses for good, then 50 good ones.
    app.mock.set_faults(
        Api::Inventory,
        Faults { fail_body_contains: Some("key-poison".into()), fail_body_status: 422, ..Faults::default() },
    );
    let (poison, good) = (150usize, 50usize);
    let mut records: Vec<_> =
        (0..poison).map(|k| order_record(&order_event(&format!("key-poison-{k}"), "SEQ-0"), None)).collect();
    records.extend((0..good).map(|k| order_record(&order_event(&format!("key-good-{k}"), "SEQ-0"), None)));
    produce(&app.settings, &records).await.expect("produced");
    let (limit, window_ms) = (50usize, 1500u64);
    let settings = app.settings_with(&[
        ("COURIER__DLQ__GUARD_MAX_RECORDS", &limit.to_string()),
        ("COURIER__DLQ__GUARD_WINDOW_MS", &window_ms.to_string()),
    ]);
    let health = Health::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let readyz = format!("http://{}/readyz", listener.local_addr().expect("addr"));
    let stop_health = tokio_util::sync::CancellationToken::new();
    tokio::spawn(courier::health::serve(listener, health.clone(), stop_health.clone()));
    let started = Instant::now();
    let consumer = app.consumer(Inventory).settings(&settings).health(&health).start();
    assert!(health.wait_for(WAIT, |p| p.contains_key("dlq_guard")).await, "the guard throttles");
    let answer = reqwest::get(&readyz).await.expect("readyz answers");
    assert_eq!(answer.status(), 503, "readiness says it throttles");
    let body: serde_json::Value = answer.json().await.expect("json");
    assert!(body["problems"]["dlq_guard"].as_str().is_some_and(|p| p.contains("throttled")), "{body}");

    // Nothing is held for good: every good order flows, and every poison order ends in the DLQ.
    app.mock.wait_for_effects(Api::Inventory, good, WAIT).await.expect("the good orders flow");
    let dlq = dlq_of(&app);
    let letters = kafka_probe::read_all(&app.bootstrap, &dlq, poison, WAIT).await.expect("DLQ readable");
    let took = started.elapsed();
    assert!(health.wait_for(WAIT, |p| p.is_empty()).await, "ready again once nothing waits");
    consumer.stop().await.expect("stops cleanly");
    stop_health.cancel();
    assert_eq!(letters.len(), poison, "every poison order dead-lettered");
    assert_eq!(kafka_probe::record_count(&app.bootstrap, &dlq).await.expect("count"), poison as i64, "once each");
    // 150 dead letters at 50 per window: the last ones waited for at least two windows to slide.
    assert!(took >= Duration::from_millis(2 * window_ms), "150 dead letters within {took:?}: not throttled");
    let stats = app.mock.stats(Api::Inventory);
    assert_eq!(stats.effects as usize, good, "one effect per good order");
    let good_calls = app.mock.calls(Api::Inventory).iter().filter(|c| c.status < 300).count();
    assert_eq!(good_calls, good, "one raw call per good order: none repeated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rate_limit_holds_in_every_second() {
    let app = spawn_app().await;
    let n = 90;
    let records: Vec<_> = (0..n).map(|k| order_record(&order_event(&format!("key-{k}"), "SEQ-0"), None)).collect();
    produce(&app.settings, &records).await.expect("produced");
    let (rate, burst) = (20u64, 5u64);
    let settings = app.settings_with(&[
        ("COURIER__APIS__INVENTORY__RATE_LIMIT_PER_SEC", &rate.to_string()),
        ("COURIER__APIS__INVENTORY__RATE_LIMIT_BURST", &burst.to_string()),
    ]);
    let consumer = app.consumer(Inventory).settings(&settings).start();
    app.mock.wait_for_effects(Api::Inventory, n, WAIT).await.expect("all delivered");
    consumer.stop().await.expect("stops cleanly");
    let times: Vec<u64> = app.mock.calls(Api::Inventory).iter().map(|c| c.received_at_unix_ms).collect();
    let worst = times.iter().map(|&t| times.iter().filter(|&&u| u >= t && u < t + 1000).count()).max().unwrap_or(0);
    println!("rate limit {rate}/s, burst {burst}: at most {worst} calls in any one-second window");
    assert!(worst as u64 <= rate + burst, "{worst} calls within one second");
    assert!(worst as u64 >= rate / 2, "the limit should not starve the consumer: {worst}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_header_key_that_is_not_utf8_neither_stops_the_consumer_nor_is_lost() {
    let app = spawn_app().await;
    let odd: RawHeader = (vec![0xff, 0xfe, b'k', 0x80], Some(vec![0x00, 0xc3, 0x28]));
    let mut poison = raw("key-odd-poison", b"\xff not json");
    poison.headers.push(odd.clone());
    let mut good = order_record(&order_event("key-odd-good", "SEQ-0"), Some(0));
    good.headers.push(odd.clone());
    produce(&app.settings, &[poison.clone(), good]).await.expect("produced");
    let consumer = app.consumer(Inventory).settings(&app.settings).start();
    let letters = kafka_probe::read_all(&app.bootstrap, &dlq_of(&app), 1, WAIT).await.expect("DLQ readable");
    app.mock.wait_for_effects(Api::Inventory, 1, WAIT).await.expect("the good event is delivered");
    consumer.stop().await.expect("the consumer is still running and stops cleanly");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].value.as_deref(), Some(poison.value.as_slice()));
    assert_eq!(letters[0].headers[..2], poison.headers[..], "the original headers, byte for byte, first");
    assert_eq!(letters[0].header("courier.dlq.error.kind").as_deref(), Some("decode"));
    assert_eq!(app.mock.stats(Api::Inventory).calls, 1, "one raw call for the good event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lone_event_that_always_fails_is_dead_lettered_with_the_breaker_on() {
    let app = spawn_app().await;
    app.mock.set_faults(
        Api::Inventory,
        Faults { fail_body_contains: Some("key-lone".into()), fail_body_status: 503, ..Faults::default() },
    );
    produce(&app.settings, &[order_record(&order_event("key-lone", "SEQ-0"), Some(0))]).await.expect("produced");
    // Default breaker and attempts; only the test's shorter backoff.
    let health = Health::default();
    let consumer = app.consumer(Inventory).settings(&app.settings).health(&health).start();
    let letters = kafka_probe::read_all(&app.bootstrap, &dlq_of(&app), 1, WAIT).await.expect("DLQ readable");
    let group = app.settings.kafka.group_id("inventory");
    let topic = app.settings.topics.orders_created().to_owned();
    let mut committed = None;
    for _ in 0..100 {
        committed = kafka_probe::committed(&app.bootstrap, &group, &topic, 0).await.expect("readable");
        if committed == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(health.is_ready(), "one event never opened the breaker: {:?}", health.problems());
    consumer.stop().await.expect("stops cleanly");
    assert_eq!(letters.len(), 1);
    let attempts = app.settings.consumer.retry_max_attempts;
    assert_eq!(letters[0].header("courier.dlq.attempts"), Some(attempts.to_string()));
    assert_eq!(app.mock.stats(Api::Inventory).calls, u64::from(attempts), "each attempt one raw call");
    assert_eq!(committed, Some(1), "the partition commits past the dead letter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_failing_key_does_not_stop_the_others() {
    let app = spawn_app().await;
    app.mock.set_faults(
        Api::Inventory,
        Faults { fail_body_contains: Some("key-sick".into()), fail_body_status: 503, ..Faults::default() },
    );
    // Default breaker; the failing key keeps retrying for its whole budget (it does not give up first).
    let settings = app.settings_with(&[("COURIER__CONSUMER__RETRY_MAX_ATTEMPTS", "1000")]);
    let health = Health::default();
    produce(&app.settings, &[order_record(&order_event("key-sick", "SEQ-0"), Some(0))]).await.expect("produced");
    let consumer = app.consumer(Inventory).settings(&settings).health(&health).start();
    // More consecutive failures than any "N in a row" breaker would tolerate.
    app.mock.wait_for_calls(Api::Inventory, 8, WAIT).await.expect("the failing key keeps failing");
    assert!(health.is_ready(), "one key never opens the breaker: {:?}", health.problems());
    let others = 300usize;
    let records: Vec<_> =
        (0..others).map(|k| order_record(&order_event(&format!("key-well-{k}"), "SEQ-0"), None)).collect();
    produce(&app.settings, &records).await.expect("produced");
    tokio::select! {
        delivered = app.mock.wait_for_effects(Api::Inventory, others, WAIT) => {
            delivered.expect("the other keys flow while one fails");
        }
        _ = health.wait_for(WAIT, |p| p.contains_key("breaker.inventory")) => {
            panic!("the breaker opened while one key failed: {:?}", health.problems());
        }
    }
    assert!(app.mock.stats(Api::Inventory).effects as usize == others, "the failing key has not recovered yet");
    app.mock.set_faults(Api::Inventory, Faults::default());
    app.mock.wait_for_effects(Api::Inventory, others + 1, WAIT).await.expect("the failing key recovers");
    consumer.stop().await.expect("stops cleanly");
    let ok_calls = app.mock.calls(Api::Inventory).iter().filter(|c| c.status < 300).count();
    assert_eq!(ok_calls, others + 1, "one successful raw call per event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_after_of_an_hour_is_capped_by_the_max_backoff() {
    let app = spawn_app().await;
    // Every call: 503 with Retry-After: 3600, for many events at once, so the breaker opens too.
    app.mock.set_faults(
        Api::Inventory,
        Faults {
            fail_body_contains: Some(String::new()),
            fail_body_status: 503,
            retry_after_secs: 3600,
            ..Faults::default()
        },
    );
    let n = 30;
    let records: Vec<_> = (0..n).map(|k| order_record(&order_event(&format!("key-{k}"), "SEQ-0"), None)).collect();
    produce(&app.settings, &records).await.expect("produced");
    let settings = app.settings_with(&[
        ("COURIER__CONSUMER__RETRY_MAX_BACKOFF_MS", "5000"),
        ("COURIER__APIS__INVENTORY__BREAKER_MINIMUM_CALLS", "10"),
        ("COURIER__APIS__INVENTORY__BREAKER_COOLDOWN_MS", "2000"),
    ]);
    let health = Health::default();
    let consumer = app.consumer(Inventory).settings(&settings).health(&health).start();
    app.mock.wait_for_calls(Api::Inventory, n, WAIT).await.expect("every event tried");
    assert!(health.wait_for(WAIT, |p| p.contains_key("breaker.inventory")).await, "the breaker opens");
    app.mock.set_faults(Api::Inventory, Faults::default());
    let recovered = Instant::now();
    app.mock.wait_for_effects(Api::Inventory, n, WAIT).await.expect("every event delivered");
    let took = recovered.elapsed();
    consumer.stop().await.expect("stops cleanly");
    assert!(took < Duration::from_secs(20), "delivered {took:?} after recovery: a wait was not capped");
    assert_eq!(kafka_probe::record_count(&app.bootstrap, &dlq_of(&app)).await.expect("count"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_letter_too_large_to_publish_goes_without_its_value() {
    let app = spawn_app().await;
    // ~1 MB: the source topic holds it, but not with the dead-letter headers on top at librdkafka's default
    // message.max.bytes. 3 MB: beyond what the dead-letter producer may send at all.
    let near_limit = vec![b'x'; 999_000];
    let too_large = vec![b'y'; 3_000_000];
    let records = [raw("key-near-limit", &near_limit), raw("key-too-large", &too_large)];
    produce_large(&app.settings, &records).await;
    produce(&app.settings, &[order_record(&order_event("key-after", "SEQ-0"), Some(0))]).await.expect("produced");
    let consumer = app.consumer(Inventory).settings(&app.settings).start();
    let letters = kafka_probe::read_all(&app.bootstrap, &dlq_of(&app), 2, WAIT).await.expect("DLQ readable");
    app.mock.wait_for_effects(Api::Inventory, 1, WAIT).await.expect("the partition does not stall");
    consumer.stop().await.expect("stops cleanly");
    assert_eq!(letters.len(), 2, "both dead-lettered");
    let near = letters.iter().find(|r| r.key.as_deref() == Some(&b"key-near-limit"[..])).expect("near-limit letter");
    assert_eq!(near.value.as_deref(), Some(near_limit.as_slice()), "fits with its value");
    assert_eq!(near.header("courier.dlq.value_omitted"), None);
    let large = letters.iter().find(|r| r.key.as_deref() == Some(&b"key-too-large"[..])).expect("large letter");
    assert_eq!(large.value, None, "published without its value");
    assert_eq!(large.header("courier.dlq.value_omitted").as_deref(), Some("3000000"), "marked, with the size");
    assert_eq!(large.header("courier.dlq.original.offset").as_deref(), Some("1"), "with the source coordinates");
    assert_eq!(large.header("x-test-origin").as_deref(), Some("courier-tests"));
}

/// Produces records larger than librdkafka's default `message.max.bytes` to partition 0 of the orders topic.
async fn produce_large(settings: &courier::settings::Settings, records: &[TestRecord]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let topic = settings.topics.orders_created();
    courier::kafka::ensure_topics(&settings.kafka, &settings.topics, &[topic]).await.expect("topic");
    let mut config = courier::kafka::producer_config(&settings.kafka, "test-large", Duration::from_secs(30));
    config.set("message.max.bytes", "10000000");
    let producer: FutureProducer = config.create().expect("producer");
    for r in records {
        let headers = courier::kafka::headers::to_owned(r.headers.iter().map(|(k, v)| (k, v.as_ref())));
        let mut out = FutureRecord::to(topic).payload(&r.value).partition(0).headers(headers);
        if let Some(key) = &r.key {
            out = out.key(key);
        }
        producer.send(out, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("large record produced");
    }
}

/// The inventory consumer's handler, except that every attempt at the events of key `key-boom` panics.
struct Exploding(InventoryHandler);

impl Handler for Exploding {
    async fn handle(&self, incoming: &Incoming, channel: Option<&'static str>) -> Outcome {
        if incoming.key.as_deref() == Some("key-boom") {
            panic!("the mapping of {} blew up", incoming.id());
        }
        self.0.handle(incoming, channel).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handler_that_panics_on_one_key_stalls_neither_the_others_nor_the_commits() {
    let app = spawn_app().await;
    // The panicking event first on partition 0, then other keys' events behind it on the same partition, and
    // a later event of the panicking key.
    let boom = order_event("key-boom", "SEQ-0");
    let mut records = vec![order_record(&boom, Some(0))];
    let others = 40usize;
    records.extend((0..others).map(|k| order_record(&order_event(&format!("key-{k}"), "SEQ-0"), Some(0))));
    records.push(order_record(&order_event("key-boom", "SEQ-1"), Some(0)));
    produce(&app.settings, &records).await.expect("produced");
    let settings = app.settings_with(&[("COURIER__CONSUMER__RETRY_MAX_ATTEMPTS", "3")]);
    let health = Health::default();
    let consumer = app.consumer(Wrapped::new(Inventory, Exploding)).settings(&settings).health(&health).start();

    app.mock.wait_for_effects(Api::Inventory, others, WAIT).await.expect("the other keys flow");
    let letters = kafka_probe::read_all(&app.bootstrap, &dlq_of(&app), 2, WAIT).await.expect("dead letters");
    let group = app.settings.kafka.group_id("inventory");
    let topic = app.settings.topics.orders_created();
    let total = i64::try_from(records.len()).expect("a count");
    let deadline = Instant::now() + WAIT;
    let mut committed = None;
    while committed != Some(total) && Instant::now() < deadline {
        committed = kafka_probe::committed(&app.bootstrap, &group, topic, 0).await.expect("committed readable");
        // The watermark is committed every 200 ms here: ask again shortly.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(health.is_ready(), "nothing is wedged: {:?}", health.problems());
    consumer.stop().await.expect("the consumer survived the panics and stops cleanly");

    assert_eq!(committed, Some(total), "the partition commits past the panicking events");
    assert_eq!(letters.len(), 2, "both events of the panicking key are dead-lettered");
    for letter in &letters {
        assert_eq!(letter.header("courier.dlq.error.kind").as_deref(), Some("panic"));
        assert_eq!(letter.header("courier.dlq.attempts").as_deref(), Some("3"), "retried like any failure");
        let message = letter.header("courier.dlq.error.message").unwrap_or_default();
        assert!(message.contains("the mapping of") && message.contains("blew up"), "{message}");
    }
    assert_eq!(app.mock.stats(Api::Inventory).calls as usize, others, "the panicking key made no call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_dead_letter_topic_is_named_and_the_consumer_waits_for_it() {
    let app = spawn_app().await;
    produce(&app.settings, &[order_record(&order_event("key-waits", "SEQ-0"), Some(0))]).await.expect("produced");
    // A cluster whose topics are created by its operators: the input topics exist, and so does the dead-letter
    // topic of `orders.payment-failed`, but not that of `orders.created`.
    let settings = app.settings_with(&[("COURIER__TOPICS__CREATE", "false")]);
    let (t, group) = (&app.settings.topics, app.settings.kafka.group_id("inventory"));
    let payment_failed_dlq = dlq_topic(t.payment_failed(), &group);
    let existing = [t.payment_failed(), payment_failed_dlq.as_str()];
    courier::kafka::ensure_topics(&app.settings.kafka, t, &existing).await.expect("topics created");
    let missing = dlq_of(&app);

    let health = Health::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let readyz = format!("http://{}/readyz", listener.local_addr().expect("addr"));
    let stop_health = tokio_util::sync::CancellationToken::new();
    tokio::spawn(courier::health::serve(listener, health.clone(), stop_health.clone()));
    let consumer = app.consumer(Inventory).settings(&settings).health(&health).start();
    let names_it = |p: &std::collections::BTreeMap<String, String>| p.values().any(|r| r.contains(&missing));
    assert!(
        health.wait_for(Duration::from_secs(60), names_it).await,
        "not ready, naming {missing}: {:?}",
        health.problems()
    );
    let answer = reqwest::get(&readyz).await.expect("readyz answers");
    assert_eq!(answer.status(), 503);
    let body: serde_json::Value = answer.json().await.expect("json");
    let problem = body["problems"][format!("topics:{group}")].as_str().unwrap_or_default().to_owned();
    assert!(problem.contains(&missing) && problem.contains("does not exist"), "{body}");
    for topic in [t.orders_created(), t.payment_failed(), &payment_failed_dlq] {
        assert!(!problem.contains(&format!("{topic} (")), "{topic} exists: {problem}");
    }
    assert_eq!(health.assigned(), 0, "it has not joined its group");
    assert!(app.mock.calls(Api::Inventory).is_empty(), "no event is handled while a topic is missing");

    courier::kafka::ensure_topics(&app.settings.kafka, t, &[&missing]).await.expect("the DLQ topic created");
    app.mock.wait_for_effects(Api::Inventory, 1, WAIT).await.expect("delivered once the topic exists");
    assert!(health.wait_for(WAIT, |p| !names_it(p)).await, "ready once it exists: {:?}", health.problems());
    consumer.stop().await.expect("stops cleanly");
    stop_health.cancel();
    assert_eq!(app.mock.calls(Api::Inventory).len(), 1, "one raw call");
}
