//! An API with its own status rules, as README's recipe configures it (`config/examples/status-rules.toml`),
//! through the `forward` consumer over a real broker, against an API (wiremock) that records every raw call: its
//! 409 is a success (committed, no dead letter), its 404 is retried until the contact is there, its 500 is
//! dead-lettered at once, and a 503 carrying `webhook-delivery: abort-message` is dead-lettered at once too.

use std::collections::{BTreeMap, BTreeSet};

use courier::delivery::dlq::dlq_topic;
use courier_tests::WAIT;
use courier_tests::app::spawn_app_with;
use courier_tests::kafka_probe;
use serde_json::json;
use tokio::sync::mpsc;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const EXAMPLE: &str = "config/examples/status-rules.toml";

/// The event id an idempotency key `<route>:<source digest>:<id>` names.
fn event_id(request: &Request) -> String {
    let key = request.headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("");
    key.rsplit_once(':').map_or("", |(_, id)| id).to_owned()
}

/// Matches the calls made for event `id`.
fn for_event(id: &'static str) -> impl Fn(&Request) -> bool + Send + Sync {
    move |request: &Request| event_id(request) == id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_apis_409_is_delivered_its_404_retried_and_its_500_and_its_abort_dead_lettered_at_once() {
    let app = spawn_app_with(&[("COURIER__PRODUCER__EVENTS__USERS__TYPES", "user.registered")]).await;
    let crm = MockServer::start().await;
    // Each final answer (a delivery) is reported, so that the test awaits them rather than sleeping.
    let (answered, mut answers) = mpsc::unbounded_channel::<String>();
    let reporting = |status: u16| {
        let answered = answered.clone();
        move |request: &Request| {
            let _ = answered.send(event_id(request));
            ResponseTemplate::new(status)
        }
    };
    Mock::given(for_event("dup")).respond_with(reporting(409)).mount(&crm).await;
    // Not replicated yet: two 404s, then the contact is created.
    Mock::given(for_event("late"))
        .respond_with(ResponseTemplate::new(404))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&crm)
        .await;
    Mock::given(for_event("late")).respond_with(reporting(201)).with_priority(2).mount(&crm).await;
    Mock::given(for_event("broken"))
        .respond_with(ResponseTemplate::new(500).set_body_string("no tenant"))
        .mount(&crm)
        .await;
    let stop = ResponseTemplate::new(503).insert_header("webhook-delivery", "abort-message").set_body_string("gone");
    Mock::given(for_event("stop")).respond_with(stop).mount(&crm).await;
    Mock::given(for_event("ok")).respond_with(reporting(201)).mount(&crm).await;

    let topic = app.settings.producer.events["users"].topic.clone();
    let settings = app.settings_from(
        Some(EXAMPLE),
        &[("COURIER__FORWARD__ROUTES__CONTACTS__TOPICS", &topic), ("COURIER__APIS__CRM__BASE_URL", &crm.uri())],
    );
    let forward = app.start_forward(&settings);

    let ids = ["dup", "late", "broken", "stop", "ok"];
    for (i, id) in ids.iter().enumerate() {
        let event = json!({"specversion": "1.0", "id": id, "source": "/signup", "type": "user.registered",
                           "subject": format!("u-{i}"),
                           "data": {"user_id": format!("u-{i}"), "email": format!("user{i}@example.com")}});
        let response = app.post_event("application/cloudevents+json", &[], event.to_string()).await;
        assert_eq!(response.status(), 202, "event {id}");
    }
    let dlq = dlq_topic(&topic, &settings.kafka.group_id("contacts"));
    let letters = kafka_probe::read_all(&app.bootstrap, &dlq, 2, WAIT).await.expect("DLQ readable");
    let mut delivered = BTreeSet::new();
    while delivered.len() < 3 {
        let id = tokio::time::timeout(WAIT, answers.recv()).await.expect("every delivery in time").expect("open");
        delivered.insert(id);
    }
    assert_eq!(delivered, BTreeSet::from(["dup".to_owned(), "late".to_owned(), "ok".to_owned()]));
    forward.stop().await.expect("forward stops cleanly");

    // Raw calls at the API: one per event, three for the one that was not replicated yet; one key per event.
    let calls = crm.received_requests().await.expect("requests recorded");
    let mut per_event: BTreeMap<String, usize> = BTreeMap::new();
    for call in &calls {
        *per_event.entry(event_id(call)).or_default() += 1;
        assert_eq!(call.url.path(), "/contacts", "{call:?}");
    }
    let expected = BTreeMap::from([("broken", 1), ("dup", 1), ("late", 3), ("ok", 1), ("stop", 1)]);
    assert_eq!(per_event, expected.iter().map(|(id, n)| ((*id).to_owned(), *n)).collect(), "raw calls per event");
    let keys: BTreeSet<&str> =
        calls.iter().filter_map(|c| c.headers.get("idempotency-key").and_then(|v| v.to_str().ok())).collect();
    assert_eq!(keys.len(), ids.len(), "one idempotency key per event, the same on every retry: {keys:?}");

    // The 500 and the aborted 503 are the only dead letters, each after one call, with the API's status and body.
    assert_eq!(letters.len(), 2, "two dead letters");
    let by_id: BTreeMap<String, &kafka_probe::ReadRecord> = letters
        .iter()
        .map(|letter| {
            let value: serde_json::Value = serde_json::from_slice(letter.value.as_deref().unwrap_or_default())
                .expect("the event as it was published");
            (value["id"].as_str().unwrap_or_default().to_owned(), letter)
        })
        .collect();
    let header = |id: &str, name: &str| by_id.get(id).and_then(|letter| letter.header(name));
    assert_eq!(header("broken", "courier.dlq.error.kind").as_deref(), Some("http_status"));
    assert_eq!(header("broken", "courier.dlq.http.status").as_deref(), Some("500"));
    assert_eq!(header("broken", "courier.dlq.http.body").as_deref(), Some("no tenant"));
    assert_eq!(header("stop", "courier.dlq.error.kind").as_deref(), Some("aborted"));
    assert_eq!(header("stop", "courier.dlq.http.status").as_deref(), Some("503"));
    assert_eq!(header("stop", "courier.dlq.http.body").as_deref(), Some("gone"));
    for id in ["broken", "stop"] {
        assert_eq!(header(id, "courier.dlq.attempts").as_deref(), Some("1"), "{id}: dead-lettered at once");
    }

    // Every event is committed: the 409 with the deliveries, the dead letters once they were written.
    let group = settings.kafka.group_id("contacts");
    let mut committed = 0;
    for partition in 0..app.settings.topics.partitions {
        committed += kafka_probe::committed(&app.bootstrap, &group, &topic, partition)
            .await
            .expect("committed offsets readable")
            .unwrap_or(0);
    }
    assert_eq!(committed, ids.len() as i64, "every event committed");
}
