//! A `forward` route that maps its requests, over a real broker, run from the README recipe's own file
//! (`config/examples/user-profiles.toml`): `user.registered` events reach a CRM API (a wiremock server keeping
//! every raw call) as `PUT /crm/users/{user_id}` with a reshaped body and a header taken from the event; a test
//! sign-up is skipped by the route's filter (committed without a call); an event without a user id is
//! dead-lettered with `courier.dlq.error.kind = mapping` and the reason.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use courier::delivery::dlq::dlq_topic;
use courier_tests::WAIT;
use courier_tests::app::spawn_app_with;
use courier_tests::kafka_probe;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const EXAMPLE: &str = "config/examples/user-profiles.toml";

/// A `user.registered` event `id` about user `subject`, with `data`.
fn registered(id: &str, subject: &str, data: Value) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "/signup", "type": "user.registered", "subject": subject,
           "data": data})
}

/// The calls `server` was sent once it was sent `n`, or all it was sent by `WAIT`.
async fn calls(server: &MockServer, n: usize) -> Vec<Request> {
    let deadline = Instant::now() + WAIT;
    loop {
        let calls = server.received_requests().await.expect("requests are recorded");
        if calls.len() >= n || Instant::now() > deadline {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_route_puts_each_user_to_its_path_with_a_reshaped_body_skips_what_it_filters_and_dead_letters_a_failed_mapping()
 {
    // No schema at the producer: an event without a user_id must reach the topic (as from any other Kafka
    // producer) for the route's mapping to fail on it.
    let app = spawn_app_with(&[
        ("COURIER__PRODUCER__EVENTS__USERS__TYPES", "user.registered"),
        ("COURIER__PRODUCER__EVENTS__USERS__SCHEMA", ""),
    ])
    .await;
    let crm = MockServer::start().await;
    Mock::given(method("PUT")).respond_with(ResponseTemplate::new(200)).mount(&crm).await;
    let topic = app.settings.producer.events["users"].topic.clone();
    let base_url = format!("{}/crm", crm.uri());
    let settings = app.settings_from(
        Some(EXAMPLE),
        &[("COURIER__FORWARD__ROUTES__PROFILES__TOPICS", &topic), ("COURIER__APIS__CRM__BASE_URL", &base_url)],
    );
    let forward = app.start_forward(&settings);

    let user = |id: &str, first: &str, email: &str| json!({"user_id": id, "first": first, "last": "L", "email": email});
    let events = [
        // A test sign-up of u-1 first: the call for u-1's real sign-up (same key, so after it) proves it was
        // skipped, not pending.
        registered("reg-test", "u-1", user("u-1", "Test", "qa@example.test")),
        registered("reg-1", "u-1", user("u-1", "Ada", "ada@example.com")),
        registered("reg-2", "ada/l", user("ada/l", "Grace", "grace@example.com")),
        registered("reg-3", "u-3", user("u-3", "Edsger", "edsger@example.com")),
        registered("reg-none", "u-9", json!({"first": "No", "last": "Id", "email": "no-id@example.com"})),
    ];
    for event in &events {
        let response = app.post_event("application/cloudevents+json", &[], event.to_string()).await;
        assert_eq!(response.status(), 202);
    }

    let dlq = dlq_topic(&topic, &settings.kafka.group_id("profiles"));
    let letters = kafka_probe::read_all(&app.bootstrap, &dlq, 1, WAIT).await.expect("DLQ readable");
    let calls = calls(&crm, 3).await;
    forward.stop().await.expect("forward stops cleanly");

    // Three raw calls, one per real sign-up, each under its own idempotency key.
    assert_eq!(calls.len(), 3, "raw calls at the CRM API: {calls:?}");
    let keys: BTreeSet<&str> = calls.iter().filter_map(|c| c.headers.get("idempotency-key")?.to_str().ok()).collect();
    assert_eq!(keys.len(), 3, "distinct idempotency keys: {keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("profiles:")), "{keys:?}");
    let header = |call: &Request, name: &str| call.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut seen = BTreeSet::new();
    for call in &calls {
        assert_eq!(call.method.as_str(), "PUT");
        let id = header(call, "x-correlation-id").expect("the templated header");
        let body: Value = call.body_json().expect("a JSON body");
        let (path, expected) = match id.as_str() {
            "reg-1" => ("/crm/users/u-1", json!({"email": "ada@example.com", "name": "Ada L"})),
            "reg-2" => ("/crm/users/ada%2Fl", json!({"email": "grace@example.com", "name": "Grace L"})),
            "reg-3" => ("/crm/users/u-3", json!({"email": "edsger@example.com", "name": "Edsger L"})),
            other => panic!("a call for {other}"),
        };
        assert_eq!((call.url.path(), &body), (path, &expected), "{id}");
        assert_eq!(header(call, "x-source").as_deref(), Some("courier"), "{id}: the static header");
        assert_eq!(header(call, "content-type").as_deref(), Some("application/json"), "{id}");
        assert!(header(call, "idempotency-key").is_some_and(|k| k.ends_with(&format!(":{id}"))), "{id}");
        seen.insert(id);
    }
    assert_eq!(seen.len(), 3, "one call per event");

    // The event without a user id: dead-lettered at once with its reason, never called.
    assert_eq!(letters.len(), 1, "one dead letter: {letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.key.as_deref(), Some(&b"u-9"[..]));
    assert_eq!(letter.header("courier.dlq.error.kind").as_deref(), Some("mapping"));
    let message = letter.header("courier.dlq.error.message").unwrap_or_default();
    assert_eq!(message, "forward.routes.profiles.path: the program gives null (is a member missing from the event?)");
    let value: Value = serde_json::from_slice(letter.value.as_deref().unwrap_or_default()).expect("the event");
    assert_eq!(value["id"], "reg-none", "the event as it was read");
}

#[test]
fn the_readme_and_the_forward_page_show_the_recipe_as_its_file_has_it() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |file: &str| std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let example: toml::Table = toml::from_str(&read(EXAMPLE)).expect("the example parses");
    for page in ["README.md", "docs/forward.md"] {
        let text = read(page);
        let block = text
            .split("```toml\n")
            .filter_map(|rest| rest.split("```").next())
            .find(|block| block.contains("[forward.routes.profiles]"))
            .unwrap_or_else(|| panic!("{page} does not show the route"));
        let shown: toml::Table = toml::from_str(block).unwrap_or_else(|e| panic!("{page}'s recipe: {e}"));
        assert_eq!(shown, example, "{page} shows the recipe otherwise than {EXAMPLE}");
    }
}
