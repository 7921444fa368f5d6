//! `POST /v1/events` against a real broker: CloudEvents in structured and binary mode are published to the
//! topic of their type, keyed by their subject, once acknowledged; bad events (undeliverable ones included: an
//! id no header can carry, one of 20 KB, data_base64 that is not base64) get problem+json and publish
//! nothing; a repeated `Idempotency-Key` publishes once; data that does not match its type's JSON Schema (the
//! shipped `schemas/events/user.registered.json`) gets 422 with a JSON Pointer per violation and publishes nothing,
//! courier's verdict on each case agreeing with an independent validator's (`jsonschema`, Python).

use courier_tests::WAIT;

use courier_tests::kafka_probe;
use courier_tests::schema_judge::judge_event_data;
use courier_tests::{TestApp, spawn_app};
use serde_json::{Value, json};

fn users_topic(app: &TestApp) -> String {
    app.settings.producer.events["users"].topic.clone()
}

fn registered(id: &str, user: &str) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": "/signup", "type": "user.registered", "subject": user,
        "tenant": "eu-1",
        "data": {"user_id": user, "email": format!("{user}@example.com")}
    })
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
    assert_eq!(content_type, "application/problem+json");
    response.json().await.expect("a problem document")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_and_binary_events_are_published_keyed_by_subject() {
    let app = spawn_app().await;
    let structured = app.post_event("application/cloudevents+json", &[], registered("e-1", "u-1").to_string()).await;
    assert_eq!(structured.status(), 202);
    let answer: Value = structured.json().await.expect("json");
    assert_eq!(answer["event_id"], "e-1");
    assert_eq!(answer["topic"], users_topic(&app).as_str());

    let binary = [
        ("ce-specversion", "1.0"),
        ("ce-id", "e-2"),
        ("ce-source", "/signup"),
        ("ce-type", "user.registered"),
        ("ce-subject", "u-2"),
        ("ce-time", "2026-12-03T10:00:00Z"),
    ];
    let response = app.post_event("application/json", &binary, r#"{"user_id":"u-2","email":"u-2@example.com"}"#).await;
    assert_eq!(response.status(), 202);

    let records = kafka_probe::read_all(&app.bootstrap, &users_topic(&app), 2, WAIT).await.expect("readable");
    assert_eq!(records.len(), 2);
    let first = records.iter().find(|r| r.key.as_deref() == Some(&b"u-1"[..])).expect("keyed by subject u-1");
    let event: Value = serde_json::from_slice(first.value.as_deref().expect("value")).expect("json");
    assert_eq!(event["tenant"], "eu-1", "extension attributes kept");
    assert_eq!(event["datacontenttype"], "application/json", "the envelope is completed");
    assert!(event["time"].as_str().is_some(), "time set when absent: {event}");
    assert_eq!(first.header("content-type").as_deref(), Some("application/cloudevents+json"));
    assert_eq!(first.header("ce_type").as_deref(), Some("user.registered"));
    let second = records.iter().find(|r| r.key.as_deref() == Some(&b"u-2"[..])).expect("keyed by subject u-2");
    let event: Value = serde_json::from_slice(second.value.as_deref().expect("value")).expect("json");
    assert_eq!(event["data"], json!({"user_id": "u-2", "email": "u-2@example.com"}), "the body became data");
    assert_eq!(event["time"], "2026-12-03T10:00:00Z");
    assert_eq!(event["id"], "e-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_refused_and_nothing_is_published() {
    let app = spawn_app().await;
    let mut unknown = registered("e-1", "u-1");
    unknown["type"] = json!("order.created");
    let body = problem(app.post_event("application/cloudevents+json", &[], unknown.to_string()).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "type", "{body}");
    assert!(body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("order.created")), "{body}");

    let incomplete = json!({"specversion": "1.0", "type": "user.registered", "data": {}});
    let body = problem(app.post_event("application/cloudevents+json", &[], incomplete.to_string()).await, 422).await;
    let fields: Vec<&str> =
        body["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["id", "source", "subject"], "{body}");

    let plain = app.post_event("application/json", &[], registered("e-3", "u-3").to_string()).await;
    let body = problem(plain, 415).await;
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("ce-specversion")), "{body}");

    let body = problem(app.post_event("application/cloudevents+json", &[], "{not json").await, 400).await;
    assert_eq!(body["status"], 400);
    assert_eq!(kafka_probe::record_count(&app.bootstrap, &users_topic(&app)).await.expect("watermarks"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_publishes_once() {
    let app = spawn_app().await;
    let body = registered("e-1", "u-1").to_string();
    let key = [("idempotency-key", "signup-42")];
    let first = app.post_event("application/cloudevents+json", &key, body.clone()).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.expect("json");
    let again = app.post_event("application/cloudevents+json", &key, body).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers().get("idempotent-replayed").map(|v| v.as_bytes()), Some(&b"true"[..]));
    assert_eq!(again.json::<Value>().await.expect("json"), first, "the first answer");
    let other = app.post_event("application/cloudevents+json", &key, registered("e-2", "u-2").to_string()).await;
    problem(other, 422).await;
    assert_eq!(kafka_probe::record_count(&app.bootstrap, &users_topic(&app)).await.expect("watermarks"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_deliverable_events_are_accepted_in_either_mode() {
    let app = spawn_app().await;
    let long_id = "x".repeat(20 * 1024);
    let mut bad_base64 = registered("e-3", "u-3");
    bad_base64.as_object_mut().expect("an object").remove("data");
    bad_base64["datacontenttype"] = json!("application/octet-stream");
    bad_base64["data_base64"] = json!("not base64!");
    let structured = [
        (registered("a\u{1}b", "u-1"), "id"),
        (registered(&long_id, "u-2"), "id"),
        (bad_base64, "data_base64"),
        (
            {
                let mut e = registered("e-4", "u-4");
                e["source"] = json!("/sign up");
                e
            },
            "source",
        ),
        (registered("e-5", "u\u{0}5"), "subject"),
    ];
    for (event, field) in structured {
        let body = problem(app.post_event("application/cloudevents+json", &[], event.to_string()).await, 422).await;
        assert_eq!(body["errors"][0]["field"], field, "{body}");
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
    }
    // Binary mode: the same rules for the ce-* headers (percent-decoded first).
    for id in ["a%01b", long_id.as_str()] {
        let binary = [
            ("ce-specversion", "1.0"),
            ("ce-id", id),
            ("ce-source", "/signup"),
            ("ce-type", "user.registered"),
            ("ce-subject", "u-6"),
        ];
        let body = problem(app.post_event("application/json", &binary, r#"{"user_id":"u-6"}"#).await, 422).await;
        assert_eq!(body["errors"][0]["field"], "id", "{body}");
    }
    assert_eq!(
        kafka_probe::record_count(&app.bootstrap, &users_topic(&app)).await.expect("watermarks"),
        0,
        "nothing reached the topic"
    );
    // The topic was writable all along: a deliverable event is published.
    let accepted = app.post_event("application/cloudevents+json", &[], registered("e-7", "u-7").to_string()).await;
    assert_eq!(accepted.status(), 202);
    assert_eq!(kafka_probe::record_count(&app.bootstrap, &users_topic(&app)).await.expect("watermarks"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_that_does_not_match_its_schema_gets_422_with_pointers_and_publishes_nothing() {
    let app = spawn_app().await;
    // Each case's data, and the pointers of courier's 422 (none: accepted).
    let cases: [(Value, &[&str]); 8] = [
        (json!({"user_id": "u-0", "email": "ada@example.com"}), &[]),
        (json!({"user_id": "u-1"}), &["/data/email"]),
        (json!({"email": "grace@example.com"}), &["/data/user_id"]),
        (json!({"user_id": "u-3", "email": "not-an-address"}), &["/data/email"]),
        (json!({"user_id": 4, "email": "ada@example.com"}), &["/data/user_id"]),
        (json!({"user_id": "", "email": "x"}), &["/data/email", "/data/user_id"]),
        (json!({"user_id": "u-6", "email": "edsger@example.com", "plan": "pro"}), &[]),
        (json!("ada@example.com"), &["/data"]),
    ];
    for (i, (data, expected)) in cases.iter().enumerate() {
        // Even cases in structured mode, odd ones in binary mode: the pointers are the same.
        let event = json!({"specversion": "1.0", "id": format!("reg-{i}"), "source": "/signup",
                           "type": "user.registered", "subject": format!("s-{i}"), "data": data});
        let response = if i % 2 == 0 {
            app.post_event("application/cloudevents+json", &[], event.to_string()).await
        } else {
            app.post_event_in_binary_mode(&event).await
        };
        if expected.is_empty() {
            assert_eq!(response.status(), 202, "case {i}: {data}");
            continue;
        }
        let body = problem(response, 422).await;
        assert_eq!(body["type"], "/problems/schema-violation", "{body}");
        assert_eq!(body["title"], "Event data does not match its schema", "{body}");
        let errors = body["errors"].as_array().expect("errors");
        let mut pointers: Vec<&str> = errors.iter().filter_map(|e| e["pointer"].as_str()).collect();
        pointers.sort_unstable();
        assert_eq!(pointers, *expected, "case {i}: {data}: {body}");
        assert!(errors.iter().all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())), "{body}");
    }

    // The independent validator's verdict on each case is courier's.
    let data: Vec<(&str, &Value)> = cases.iter().map(|(data, _)| ("user.registered", data)).collect();
    for ((data, expected), verdict) in cases.iter().zip(judge_event_data(&data)) {
        assert_eq!(verdict.valid, expected.is_empty(), "{data}: courier and jsonschema disagree: {verdict:?}");
    }
    // Only the accepted events reached the topic.
    let records = kafka_probe::read_all(&app.bootstrap, &users_topic(&app), 2, WAIT).await.expect("readable");
    let mut keys: Vec<&[u8]> = records.iter().filter_map(|r| r.key.as_deref()).collect();
    keys.sort_unstable();
    assert_eq!(keys, [&b"s-0"[..], b"s-6"]);
    assert_eq!(kafka_probe::record_count(&app.bootstrap, &users_topic(&app)).await.expect("watermarks"), 2);
}
