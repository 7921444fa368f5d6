//! The no-code `forward` consumer over a real broker, with the seed's opening example exactly as the README
//! shows it (`config/examples/user-registration.toml`): `user.registered` events posted to `POST /v1/events`
//! reach the auth API (binary mode) and the e-mail API (structured mode) once each; a route whose API refuses
//! an event dead-letters it into its own DLQ while the other route delivers it; events of other types are
//! skipped by both routes.

use courier_tests::WAIT;
use std::collections::BTreeSet;

use courier::delivery::dlq::dlq_topic;
use courier_tests::app::spawn_app_with;
use courier_tests::kafka_probe;
use mock_apis::{Api, Faults};
use serde_json::{Value, json};

const EXAMPLE: &str = "config/examples/user-registration.toml";

fn registered(i: usize, email: &str) -> Value {
    json!({
        "specversion": "1.0", "id": format!("reg-{i}"), "source": "/signup", "type": "user.registered",
        "subject": format!("u-{i}"), "data": {"user_id": format!("u-{i}"), "email": email}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn user_registration_reaches_both_apis_once_and_a_refusal_dead_letters_in_its_route_only() {
    let app = spawn_app_with(&[("COURIER__PRODUCER__EVENTS__USERS__TYPES", "user.registered,user.deleted")]).await;
    // The e-mail API refuses the welcome e-mail of one address for good (422): a permanent failure.
    let bounce = Faults { fail_body_contains: Some("bounce@".into()), fail_body_status: 422, ..Faults::default() };
    app.mock.set_faults(Api::Email, bounce);
    // The example's routes, reading this test's own users topic.
    let topic = app.settings.producer.events["users"].topic.clone();
    let settings = app.settings_from(
        Some(EXAMPLE),
        &[
            ("COURIER__FORWARD__ROUTES__ACCOUNTS__TOPICS", &topic),
            ("COURIER__FORWARD__ROUTES__WELCOME__TOPICS", &topic),
        ],
    );
    let forward = app.start_forward(&settings);

    let users = 6;
    for i in 0..users {
        let email = if i == 3 { "bounce@example.com".to_owned() } else { format!("user{i}@example.com") };
        let event = registered(i, &email);
        let response = if i % 2 == 0 {
            app.post_event("application/cloudevents+json", &[], event.to_string()).await
        } else {
            let id = format!("reg-{i}");
            let subject = format!("u-{i}");
            let headers = [
                ("ce-specversion", "1.0"),
                ("ce-id", id.as_str()),
                ("ce-source", "/signup"),
                ("ce-type", "user.registered"),
                ("ce-subject", subject.as_str()),
            ];
            app.post_event("application/json", &headers, event["data"].to_string()).await
        };
        assert_eq!(response.status(), 202, "event {i}");
    }
    let deleted = json!({"specversion": "1.0", "id": "del-0", "source": "/signup", "type": "user.deleted",
                         "subject": "u-0", "data": {"user_id": "u-0"}});
    assert_eq!(app.post_event("application/cloudevents+json", &[], deleted.to_string()).await.status(), 202);

    let welcome_dlq = dlq_topic(&topic, &settings.kafka.group_id("welcome"));
    let letters = kafka_probe::read_all(&app.bootstrap, &welcome_dlq, 1, WAIT).await.expect("DLQ readable");
    app.mock.wait_for_effects(Api::Auth, users, WAIT).await.expect("every account created");
    app.mock.wait_for_effects(Api::Email, users - 1, WAIT).await.expect("every other welcome e-mail sent");
    forward.stop().await.expect("forward stops cleanly");

    // The auth API: one call and one effect per user, in binary mode, keyed `accounts:<event id>`.
    let ids: BTreeSet<String> = (0..users).map(|i| format!("reg-{i}")).collect();
    let calls = app.mock.calls(Api::Auth);
    assert_eq!(calls.len(), users, "raw calls at the auth API: {calls:?}");
    let keys: BTreeSet<String> = calls.iter().filter_map(|c| c.idempotency_key.clone()).collect();
    assert_eq!(keys, ids.iter().map(|id| format!("accounts:{id}")).collect(), "one key per event");
    for effect in app.mock.effects(Api::Auth) {
        let id = effect.idempotency_key.trim_start_matches("accounts:");
        assert_eq!(effect.cloudevent.get("ce-id").map(String::as_str), Some(id), "{effect:?}");
        assert_eq!(effect.cloudevent.get("ce-type").map(String::as_str), Some("user.registered"));
        assert_eq!(effect.cloudevent.get("content-type").map(String::as_str), Some("application/json"));
        assert!(effect.body["user_id"].as_str().is_some_and(|u| u.starts_with("u-")), "data as the body");
    }

    // The e-mail API: every user's call once (the refused one is not retried), the CloudEvent as the body.
    let calls = app.mock.calls(Api::Email);
    assert_eq!(calls.len(), users, "raw calls at the e-mail API: {calls:?}");
    let keys: BTreeSet<String> = calls.iter().filter_map(|c| c.idempotency_key.clone()).collect();
    assert_eq!(keys, ids.iter().map(|id| format!("welcome:{id}")).collect(), "one key per event");
    for effect in app.mock.effects(Api::Email) {
        assert_eq!(effect.body["type"], "user.registered", "structured mode: the whole event");
        assert_eq!(effect.body["specversion"], "1.0");
        let content_type = effect.cloudevent.get("content-type").map(String::as_str);
        assert_eq!(content_type, Some("application/cloudevents+json"));
        assert_ne!(effect.body["data"]["email"], "bounce@example.com");
    }

    // The refusal is in the welcome route's dead-letter topic alone, with its HTTP context.
    assert_eq!(letters.len(), 1, "one dead letter");
    assert_eq!(letters[0].key.as_deref(), Some(&b"u-3"[..]), "keyed like the event");
    assert_eq!(letters[0].header("courier.dlq.consumer").as_deref(), Some("welcome"));
    assert_eq!(letters[0].header("courier.dlq.http.status").as_deref(), Some("422"));
    let accounts_dlq = dlq_topic(&topic, &settings.kafka.group_id("accounts"));
    let accounts_letters = kafka_probe::record_count(&app.bootstrap, &accounts_dlq).await.unwrap_or(0);
    assert_eq!(accounts_letters, 0, "the accounts route dead-lettered nothing");

    // `user.deleted` is on the topic but neither route delivers it.
    for api in [Api::Auth, Api::Email] {
        let skipped =
            app.mock.calls(api).iter().any(|c| c.idempotency_key.as_deref().is_some_and(|k| k.ends_with(":del-0")));
        assert!(!skipped, "{api} got the user.deleted event");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_refuses_to_start_without_a_route_or_with_an_unknown_api() {
    let app = spawn_app_with(&[]).await;
    let error = courier_consumers::forward::run(&app.settings, Default::default()).await.expect_err("no routes");
    assert!(error.to_string().contains("forward.routes"), "{error}");
    let settings = app.settings_from(
        None,
        &[
            ("COURIER__FORWARD__ROUTES__HOOK__TOPICS", "users.registered"),
            ("COURIER__FORWARD__ROUTES__HOOK__API", "crm"),
        ],
    );
    let error = courier_consumers::forward::run(&settings, Default::default()).await.expect_err("unknown API");
    assert!(error.to_string().contains("apis.crm.base_url"), "{error}");
}

/// What the batch API of [`forward_batches_events_and_each_event_keeps_its_own_outcome`] saw.
#[derive(Default)]
struct BatchApi {
    /// Each call's event ids, in arrival order.
    calls: Vec<Vec<String>>,
    /// Each call's `Idempotency-Key` and `Content-Type`.
    headers: Vec<(String, String)>,
    /// The ids taken (answered 201), with how often.
    taken: std::collections::BTreeMap<String, usize>,
}

/// A batch endpoint: takes a JSON array of CloudEvents and answers a result per event: 422 for `bad`, 503 the
/// first time it sees `flaky`, 201 otherwise.
async fn batch_api(
    state: axum::extract::State<(std::sync::Arc<std::sync::Mutex<BatchApi>>, tokio::sync::watch::Sender<usize>)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::Json<Value> {
    let (api, taken_count) = &*state;
    let events: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array of CloudEvents");
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut api = api.lock().expect("the API's state");
    let ids: Vec<String> = events.iter().map(|e| e["id"].as_str().expect("an id").to_owned()).collect();
    let flaky_seen = api.calls.iter().flatten().any(|id| id == "flaky");
    api.headers.push((header("idempotency-key"), header("content-type")));
    api.calls.push(ids.clone());
    let mut results = Vec::new();
    for id in ids {
        if id == "bad" {
            results.push(json!({"status": 422, "detail": "no such account"}));
        } else if id == "flaky" && !flaky_seen {
            results.push(json!({"status": 503}));
        } else {
            *api.taken.entry(id).or_default() += 1;
            results.push(json!({"status": 201}));
        }
    }
    taken_count.send_replace(api.taken.len());
    axum::Json(json!({ "results": results }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forward_batches_events_and_each_event_keeps_its_own_outcome() {
    let app = spawn_app_with(&[("COURIER__PRODUCER__EVENTS__USERS__TYPES", "user.registered")]).await;
    let state = std::sync::Arc::new(std::sync::Mutex::new(BatchApi::default()));
    let (taken_count, mut taken) = tokio::sync::watch::channel(0);
    let router = axum::Router::new()
        .route("/bulk", axum::routing::post(batch_api))
        .with_state((std::sync::Arc::clone(&state), taken_count));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(async move { axum::serve(listener, router).await });

    // The backlog is on the topic before the route starts, so that its attempts come together.
    let mut ids: Vec<String> = (0..40).map(|i| format!("reg-{i}")).collect();
    ids.extend(["bad".to_owned(), "flaky".to_owned()]);
    for (i, id) in ids.iter().enumerate() {
        let mut event = registered(i, &format!("user{i}@example.com"));
        event["id"] = json!(id);
        let response = app.post_event("application/cloudevents+json", &[], event.to_string()).await;
        assert_eq!(response.status(), 202, "event {id}");
    }
    let topic = app.settings.producer.events["users"].topic.clone();
    let settings = app.settings_from(
        None,
        &[
            ("COURIER__FORWARD__ROUTES__BULK__TOPICS", &topic),
            ("COURIER__FORWARD__ROUTES__BULK__PATH", "bulk"),
            ("COURIER__FORWARD__ROUTES__BULK__BATCH_MAX_EVENTS", "10"),
            ("COURIER__FORWARD__ROUTES__BULK__BATCH_MAX_WAIT_MS", "100"),
            ("COURIER__APIS__BULK__BASE_URL", &url),
            ("COURIER__CONSUMER__RETRY_INITIAL_BACKOFF_MS", "10"),
        ],
    );
    let forward = app.start_forward(&settings);
    let good = ids.len() - 1;
    tokio::time::timeout(WAIT, taken.wait_for(|n| *n >= good)).await.expect("every good event taken").expect("API");
    let dlq = dlq_topic(&topic, &settings.kafka.group_id("bulk"));
    let letters = kafka_probe::read_all(&app.bootstrap, &dlq, 1, WAIT).await.expect("DLQ readable");
    forward.stop().await.expect("forward stops cleanly");

    let api = state.lock().expect("the API's state");
    // Batched: at most 10 events a call, and far fewer calls than events.
    let sent: usize = api.calls.iter().map(Vec::len).sum();
    assert!(api.calls.iter().all(|c| !c.is_empty() && c.len() <= 10), "{:?}", api.calls);
    assert!(api.calls.len() * 2 < ids.len(), "{} calls for {} events: {:?}", api.calls.len(), ids.len(), api.calls);
    // Raw arrivals per event: every event once, except `flaky`, whose 503 was retried on its own (twice).
    let mut arrivals = std::collections::BTreeMap::<&str, usize>::new();
    for id in api.calls.iter().flatten() {
        *arrivals.entry(id.as_str()).or_default() += 1;
    }
    for id in &ids {
        let expected = if id == "flaky" { 2 } else { 1 };
        assert_eq!(arrivals.get(id.as_str()), Some(&expected), "arrivals of {id}: {:?}", api.calls);
    }
    assert_eq!(sent, ids.len() + 1);
    // Taken once each; `bad` never.
    assert_eq!(api.taken.len(), good);
    assert!(api.taken.values().all(|n| *n == 1), "{:?}", api.taken);
    assert!(!api.taken.contains_key("bad"));
    for (key, content_type) in &api.headers {
        assert!(key.starts_with("bulk:batch:"), "{key}");
        assert_eq!(content_type, "application/cloudevents-batch+json");
    }
    // `bad` alone is dead-lettered, with the status and detail the API gave it.
    assert_eq!(letters.len(), 1, "one dead letter");
    let letter = &letters[0];
    assert_eq!(letter.header("courier.dlq.http.status").as_deref(), Some("422"));
    assert_eq!(letter.header("courier.dlq.http.body").as_deref(), Some("no such account"));
    let value: Value = serde_json::from_slice(letter.value.as_deref().expect("the event")).expect("JSON");
    assert_eq!(value["id"], "bad");
}
