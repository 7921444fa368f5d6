//! The no-code `forward` consumer over a real broker, with the seed's opening example exactly as README and
//! `docs/forward.md` show it (`config/examples/user-registration.toml`): `user.registered` events posted to
//! `POST /v1/events` reach the auth API (binary mode) and the e-mail API (structured mode) once each; a route
//! whose API refuses an event dead-letters it into its own DLQ while the other route delivers it; events of
//! other types are skipped by both routes.

use courier_tests::WAIT;
use std::collections::BTreeSet;

use courier::delivery::dlq::dlq_topic;
use courier_consumers::order_topics::OrderTopics;
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
                         "subject": "u-0", "data": {"user_id": "u-0", "email": "user0@example.com"}});
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
    assert_eq!(event_ids(&calls, "accounts"), ids, "one key per event");
    for effect in app.mock.effects(Api::Auth) {
        let id = effect.idempotency_key.rsplit_once(':').map_or("", |(_, id)| id);
        assert_eq!(effect.cloudevent.get("ce-id").map(String::as_str), Some(id), "{effect:?}");
        assert_eq!(effect.cloudevent.get("ce-type").map(String::as_str), Some("user.registered"));
        assert_eq!(effect.cloudevent.get("content-type").map(String::as_str), Some("application/json"));
        assert!(effect.body["user_id"].as_str().is_some_and(|u| u.starts_with("u-")), "data as the body");
    }

    // The e-mail API: every user's call once (the refused one is not retried), the CloudEvent as the body.
    let calls = app.mock.calls(Api::Email);
    assert_eq!(calls.len(), users, "raw calls at the e-mail API: {calls:?}");
    assert_eq!(event_ids(&calls, "welcome"), ids, "one key per event");
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

/// The event ids in the idempotency keys of `calls`, after checking that every key is `<route>:<digest of the
/// source>:<id>` with one source (`/signup`) for all.
fn event_ids(calls: &[mock_apis::Call], route: &str) -> BTreeSet<String> {
    let keys: BTreeSet<&str> = calls.iter().filter_map(|c| c.idempotency_key.as_deref()).collect();
    let parts: Vec<Vec<&str>> = keys.iter().map(|k| k.splitn(3, ':').collect()).collect();
    assert!(parts.iter().all(|p| p.len() == 3 && p[0] == route && p[1].len() == 16), "{keys:?}");
    let sources: BTreeSet<&str> = parts.iter().map(|p| p[1]).collect();
    assert_eq!(sources.len(), 1, "one source, one digest: {keys:?}");
    parts.iter().map(|p| p[2].to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_id_from_two_sources_is_two_events_and_a_redelivered_event_is_one() {
    let app = spawn_app_with(&[("COURIER__PRODUCER__EVENTS__USERS__TYPES", "user.registered")]).await;
    let topic = app.settings.producer.events["users"].topic.clone();
    let settings = app.settings_from(
        Some(EXAMPLE),
        &[
            ("COURIER__FORWARD__ROUTES__ACCOUNTS__TOPICS", &topic),
            ("COURIER__FORWARD__ROUTES__WELCOME__TOPICS", &topic),
        ],
    );
    // Two applications that happen to use one id, and the first one's event published twice (a redelivery).
    let signup = json!({"specversion": "1.0", "id": "same-id", "source": "/signup", "type": "user.registered",
                        "subject": "u-1", "data": {"user_id": "u-1", "email": "ada@example.com"}});
    let crm = json!({"specversion": "1.0", "id": "same-id", "source": "/crm", "type": "user.registered",
                     "subject": "u-2", "data": {"user_id": "u-2", "email": "grace@example.com"}});
    for event in [&signup, &crm, &signup] {
        let response = app.post_event("application/cloudevents+json", &[], event.to_string()).await;
        assert_eq!(response.status(), 202);
    }
    let forward = app.start_forward(&settings);
    for api in [Api::Auth, Api::Email] {
        app.mock.wait_for_stats(api, WAIT, |s| s.calls >= 3 && s.effects + s.duplicates >= 3).await.expect("3 calls");
    }
    forward.stop().await.expect("forward stops cleanly");

    for api in [Api::Auth, Api::Email] {
        let calls = app.mock.calls(api);
        assert_eq!(calls.len(), 3, "{api}: raw calls, one per record: {calls:?}");
        let keys: BTreeSet<&str> = calls.iter().filter_map(|c| c.idempotency_key.as_deref()).collect();
        assert_eq!(keys.len(), 2, "{api}: two events, two keys: {keys:?}");
        let stats = app.mock.stats(api);
        assert_eq!((stats.effects, stats.duplicates), (2, 1), "{api}: one effect per event, the redelivery absorbed");
        let users: BTreeSet<String> =
            app.mock.effects(api).iter().filter_map(|e| e.body["user_id"].as_str().map(str::to_owned)).collect();
        let data_users: BTreeSet<String> = app
            .mock
            .effects(api)
            .iter()
            .filter_map(|e| e.body["data"]["user_id"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(users.union(&data_users).count(), 2, "{api}: both users acted on: {users:?} {data_users:?}");
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

/// One call the slow batch API of [`a_member_joining_while_batches_are_in_flight_keeps_each_keys_calls_apart`]
/// got: when it arrived and when it ended (answered, or dropped by the client), and the key and sequence number
/// of each of its events.
#[derive(Debug, Clone)]
struct KeyedCall {
    /// When it arrived.
    received: std::time::Instant,
    /// When it was answered or dropped.
    ended: std::time::Instant,
    /// Whether it was answered (its events taken).
    answered: bool,
    /// `(subject, n)` of each event (`SEQ-n` is the n-th event of its key).
    events: Vec<(String, u32)>,
}

/// The slow batch API: every call is recorded as it arrives and when it ends; while `hang` is set a call takes
/// 8 s (far past the revoke's 1 s), else 100 ms. `delivered` counts the distinct events of the answered calls.
#[derive(Clone)]
struct SlowBatchApi {
    /// Every call, once ended.
    calls: std::sync::Arc<std::sync::Mutex<Vec<KeyedCall>>>,
    /// Calls received so far.
    received: std::sync::Arc<tokio::sync::watch::Sender<usize>>,
    /// Calls received so far per key, and how many keys arrived in a second call (sent again).
    arrivals: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    /// Keys that arrived in a second call.
    again: std::sync::Arc<tokio::sync::watch::Sender<usize>>,
    /// Whether calls hang.
    hang: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Distinct events taken.
    delivered: std::sync::Arc<tokio::sync::watch::Sender<usize>>,
}

/// Records its call when the request ends, answered or dropped.
struct Recording {
    /// The API.
    api: SlowBatchApi,
    /// The call.
    call: Option<KeyedCall>,
}

impl Drop for Recording {
    fn drop(&mut self) {
        let Some(mut call) = self.call.take() else { return };
        call.ended = std::time::Instant::now();
        let mut calls = self.api.calls.lock().expect("calls");
        calls.push(call);
        let taken: BTreeSet<&(String, u32)> = calls.iter().filter(|c| c.answered).flat_map(|c| &c.events).collect();
        self.api.delivered.send_replace(taken.len());
    }
}

async fn slow_batch(
    axum::extract::State(api): axum::extract::State<SlowBatchApi>,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let events: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array of CloudEvents");
    let keyed = events
        .iter()
        .map(|e| {
            let subject = e["subject"].as_str().expect("a subject").to_owned();
            let sku = e["data"]["items"][0]["sku"].as_str().expect("a sku");
            (subject, sku.trim_start_matches("SEQ-").parse().expect("SEQ-n"))
        })
        .collect();
    let now = std::time::Instant::now();
    let call = KeyedCall { received: now, ended: now, answered: false, events: keyed };
    let mut recording = Recording { api: api.clone(), call: Some(call) };
    api.received.send_modify(|n| *n += 1);
    if let Some(call) = &recording.call {
        let mut arrivals = api.arrivals.lock().expect("arrivals");
        for (key, _) in &call.events {
            let n = arrivals.entry(key.clone()).or_default();
            *n += 1;
            if *n == 2 {
                api.again.send_modify(|again| *again += 1);
            }
        }
    }
    let latency = if api.hang.load(std::sync::atomic::Ordering::SeqCst) { 8000 } else { 100 };
    tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    if let Some(call) = recording.call.as_mut() {
        call.answered = true;
    }
    axum::http::StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_joining_while_batches_are_in_flight_keeps_each_keys_calls_apart() {
    use courier::health::Health;
    use courier_tests::produce::{order_event, order_record, produce};

    let app = courier_tests::spawn_app().await;
    let api = SlowBatchApi {
        calls: std::sync::Arc::default(),
        received: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
        arrivals: std::sync::Arc::default(),
        again: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
        hang: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        delivered: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
    };
    let (mut delivered, mut received, mut again) =
        (api.delivered.subscribe(), api.received.subscribe(), api.again.subscribe());
    let router = axum::Router::new().route("/bulk", axum::routing::post(slow_batch)).with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(async move { axum::serve(listener, router).await });

    // Keys spread over every partition, each with events in order.
    let (keys, per_key) = (40, 5);
    let mut records = Vec::with_capacity(keys * per_key);
    for n in 0..per_key {
        for k in 0..keys {
            records.push(order_record(&order_event(&format!("key-{k}"), &format!("SEQ-{n}")), None));
        }
    }
    produce(&app.settings, &records).await.expect("records produced");
    let topic = app.settings.topics.orders_created().to_owned();
    // Cooperative rebalancing (the default) moves only the partitions the joining member takes: the first
    // member's batches keep going, with the moved partitions' events in them.
    let settings = app.settings_with(&[
        ("COURIER__FORWARD__ROUTES__BULK__TOPICS", &topic),
        ("COURIER__FORWARD__ROUTES__BULK__PATH", "bulk"),
        ("COURIER__FORWARD__ROUTES__BULK__BATCH_MAX_EVENTS", "10"),
        ("COURIER__FORWARD__ROUTES__BULK__BATCH_MAX_WAIT_MS", "50"),
        ("COURIER__APIS__BULK__BASE_URL", &url),
        ("COURIER__APIS__BULK__REQUEST_TIMEOUT_MS", "10000"),
    ]);
    let (first_health, second_health) = (Health::default(), Health::default());
    // Every call hangs while the second member joins: the first member's batches, holding events of the
    // partitions it keeps and of those it gives up, are in flight during the revoke and long after it.
    let first = app.start_forward_route(&settings, "bulk", &first_health);
    tokio::time::timeout(WAIT, received.wait_for(|n| *n >= 3)).await.expect("batches in flight").expect("API");
    let second = app.start_forward_route(&settings, "bulk", &second_health);
    assert!(second_health.wait_for_assigned(WAIT, |n| n > 0).await, "the joining member gets partitions");
    assert!(first_health.assigned() > 0, "the first member keeps partitions (cooperative rebalancing)");
    let total = keys * per_key;
    // A key is sent again (its partition's new owner, or its leader after the batch was dropped) while the first
    // member's calls would still hang.
    tokio::time::timeout(WAIT, again.wait_for(|n| *n >= 1)).await.expect("a key sent again").expect("API");
    api.hang.store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::timeout(WAIT, delivered.wait_for(|n| *n == total)).await.expect("every event").expect("API");
    second.stop().await.expect("stops cleanly");
    first.stop().await.expect("stops cleanly");

    // Per key, from the raw calls in arrival order: no call while the key's previous one still ran, and each
    // event first arrives after every earlier event of its key (a repeat of one already sent may come later).
    let calls = api.calls.lock().expect("calls").clone();
    let mut by_key: std::collections::HashMap<&str, Vec<(&KeyedCall, u32)>> = std::collections::HashMap::new();
    for call in &calls {
        for (key, n) in &call.events {
            by_key.entry(key.as_str()).or_default().push((call, *n));
        }
    }
    assert_eq!(by_key.len(), keys);
    let mut repeated = 0;
    for (key, mut arrivals) in by_key {
        arrivals.sort_by_key(|(call, _)| call.received);
        for pair in arrivals.windows(2) {
            let ((before, n), (after, m)) = (pair[0], pair[1]);
            assert!(
                after.received >= before.ended,
                "{key}: SEQ-{m} arrived {:?} before the call with SEQ-{n} ended",
                before.ended - after.received
            );
        }
        let mut next = 0;
        for (_, n) in &arrivals {
            assert!(*n <= next, "{key}: SEQ-{n} arrived before SEQ-{next}: {arrivals:?}");
            if *n == next {
                next += 1;
            } else {
                repeated += 1;
            }
        }
        assert_eq!(next as usize, per_key, "{key}: every event arrived");
    }
    let sent: usize = calls.iter().map(|c| c.events.len()).sum();
    assert_eq!(sent, total + repeated, "raw arrivals: each event once, plus the repeats counted above");
    println!("{} calls, {sent} events sent for {total}, {repeated} repeated", calls.len());
}
