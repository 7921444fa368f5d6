//! `forward` reading topics that courier did not write, over a real broker: the records are written by an
//! independent producer (`tests/independent/produce.py`: the confluent-kafka client, and the CloudEvents Python
//! SDK's Kafka binding), not by courier's code. Each record reaches the mock API with a stable idempotency key
//! (every key's first call fails with a 503, so each record is called twice under one key), and the record that
//! does not decode is dead-lettered with `courier.dlq.error.kind = decode`, its format and its reason.
//!
//! The records of the schema registry formats (`avro`, `protobuf`, `json-schema`) are the committed fixtures of
//! `tests/fixtures/schema-registry`, encoded by confluent-kafka's serializers (fastavro, protoc's Python
//! classes) against a registry whose schemas the test kit's registry (`mock-schema-registry`) serves; the same
//! independent producer writes them to the topic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use courier::delivery::dlq::dlq_topic;
use courier::health::Health;
use courier::settings::Settings;
use courier_tests::WAIT;
use courier_tests::app::{RunningConsumer, TestApp, spawn_app_with};
use courier_tests::kafka_probe::{self, ReadRecord};
use mock_apis::{Api, Faults};
use mock_schema_registry::{Fault, MockSchemaRegistry, Recorded};
use serde_json::{Value, json};

/// Records the independent producer writes per test, beside its one undecodable record.
const USERS: usize = 5;

/// Where the independent producer put one record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct Written {
    /// The record key (empty for a record without one).
    key: String,
    /// Its partition.
    partition: i32,
    /// Its offset.
    offset: i64,
}

/// Writes `USERS` records of `kind` and one undecodable record (for `keyed`, three records more: see
/// produce.py) to `topic` with the independent producer, and says where each went. Needs `python3` with
/// `confluent-kafka` and `cloudevents` (`scripts/test.sh` installs them).
async fn produce_independently(bootstrap: &str, topic: &str, kind: &str) -> Vec<Written> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("independent/produce.py");
    let output = tokio::process::Command::new("python3")
        .arg(&script)
        .args([bootstrap, topic, kind, &USERS.to_string()])
        .output()
        .await
        .expect("python3 runs (scripts/test.sh installs confluent-kafka and cloudevents)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{} failed: {stderr}", script.display());
    let written: Vec<Written> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    let extra = if kind == "keyed" { 3 } else { 1 };
    assert_eq!(written.len(), USERS + extra, "every record acknowledged: {written:?}");
    written
}

/// A test's app, its topic written by the independent producer, and `forward` reading it.
struct Scenario {
    /// Mock APIs and the producer.
    app: TestApp,
    /// The topic of this test's own.
    topic: String,
    /// The settings with the test's routes.
    settings: Settings,
    /// Where the independent producer put each record, in the order written.
    written: Vec<Written>,
    /// `forward`, running every route.
    forward: RunningConsumer,
}

/// Spawns an app whose auth API has `faults`, creates a topic of its own (no auto-creation) named after `kind`,
/// has the independent producer write records of `kind` there, and starts `forward` with `routes` (each
/// route's `…__API` setting names it; its topics are set to the test's topic).
async fn scenario(kind: &str, faults: Faults, routes: &[(&str, &str)]) -> Scenario {
    scenario_started(kind, faults, routes, |app, settings| app.start_forward(settings)).await
}

/// [`scenario`], `forward` started by `start`.
async fn scenario_started(
    kind: &str,
    faults: Faults,
    routes: &[(&str, &str)],
    start: impl FnOnce(&TestApp, &Settings) -> RunningConsumer,
) -> Scenario {
    let app = spawn_app_with(&[]).await;
    app.mock.set_faults(Api::Auth, faults);
    let topic = format!("{}.{kind}", app.settings.producer.events["users"].topic);
    let mut overrides: Vec<(String, String)> = routes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    for route in routes.iter().filter_map(|(k, _)| k.strip_suffix("__API")) {
        overrides.push((format!("{route}__TOPICS"), topic.clone()));
    }
    let overrides: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let settings = app.settings_with(&overrides);
    courier::kafka::ensure_topics(&settings.kafka, &settings.topics, &[&topic]).await.expect("topic created");
    let written = produce_independently(&app.bootstrap, &topic, kind).await;
    let forward = start(&app, &settings);
    Scenario { app, topic, settings, written, forward }
}

/// Every key's first call answered 503: each record is delivered on its second call, under the same key.
fn first_call_fails() -> Faults {
    Faults { fail_first_per_key: 1, fail_first_status: 503, ..Faults::default() }
}

/// The one dead letter of route `route` reading `topic`, once there.
async fn dead_letter(s: &Scenario, route: &str) -> ReadRecord {
    let dlq = dlq_topic(&s.topic, &s.settings.kafka.group_id(route));
    let letters = kafka_probe::read_all(&s.app.bootstrap, &dlq, 1, WAIT).await.expect("dead letters readable");
    assert_eq!(letters.len(), 1, "{route}: one dead letter: {letters:?}");
    letters.into_iter().next().expect("one dead letter")
}

/// The `n` dead letters of route `route` reading `topic`, once there, by their record key (empty for none).
async fn dead_letters(s: &Scenario, route: &str, n: usize) -> BTreeMap<String, ReadRecord> {
    let dlq = dlq_topic(&s.topic, &s.settings.kafka.group_id(route));
    let letters = kafka_probe::read_all(&s.app.bootstrap, &dlq, n, WAIT).await.expect("dead letters readable");
    assert_eq!(letters.len(), n, "{route}: {n} dead letters: {letters:?}");
    letters
        .into_iter()
        .map(|l| (String::from_utf8_lossy(l.key.as_deref().unwrap_or_default()).into_owned(), l))
        .collect()
}

/// The calls `api` was sent, per idempotency key.
fn calls_per_key(app: &TestApp, api: Api) -> BTreeMap<String, Vec<u16>> {
    let mut per_key: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for call in app.mock.calls(api) {
        per_key.entry(call.idempotency_key.unwrap_or_default()).or_default().push(call.status);
    }
    per_key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plain_json_of_another_application_reaches_the_api_keyed_by_coordinates_and_not_json_is_dead_lettered() {
    let s = scenario(
        "json",
        first_call_fails(),
        &[
            ("COURIER__FORWARD__ROUTES__SIGNUPS__API", "auth"),
            ("COURIER__FORWARD__ROUTES__SIGNUPS__PATH", "users"),
            ("COURIER__FORWARD__ROUTES__SIGNUPS__FORMAT", "json"),
        ],
    )
    .await;
    let (app, topic) = (&s.app, &s.topic);
    let letter = dead_letter(&s, "signups").await;
    app.mock.wait_for_effects(Api::Auth, USERS, WAIT).await.expect("every user's account created");
    s.forward.stop().await.expect("forward stops cleanly");

    // Keyed by where each record is, the same on its retry: two raw calls per key (503, then 201).
    let expected: BTreeMap<String, Vec<u16>> = s
        .written
        .iter()
        .filter(|w| w.key != "bad")
        .map(|w| (format!("signups:{topic}-{}-{}", w.partition, w.offset), vec![503, 201]))
        .collect();
    assert_eq!(calls_per_key(app, Api::Auth), expected, "raw calls at the API, per idempotency key");
    // Compared as JSON text: a `Value` has no order, and its text has its members sorted.
    let bodies: BTreeSet<String> = app.mock.effects(Api::Auth).into_iter().map(|e| e.body.to_string()).collect();
    let sent: BTreeSet<String> = (0..USERS)
        .map(|i| serde_json::json!({"user_id": format!("u-{i}"), "email": format!("user{i}@example.com")}).to_string())
        .collect();
    assert_eq!(bodies, sent, "each record's value as the body");
    for effect in app.mock.effects(Api::Auth) {
        assert_eq!(effect.cloudevent.get("content-type").map(String::as_str), Some("application/json"));
    }

    // The record that is not JSON: dead-lettered without a call, with its format and reason.
    assert_eq!(letter.key.as_deref(), Some(&b"bad"[..]));
    assert_eq!(letter.value.as_deref(), Some(&b"not json {"[..]), "byte for byte");
    assert_eq!(letter.header("courier.dlq.error.kind").as_deref(), Some("decode"));
    assert_eq!(letter.header("courier.dlq.format").as_deref(), Some("json"));
    let message = letter.header("courier.dlq.error.message").unwrap_or_default();
    assert!(message.starts_with("json: record value is not JSON"), "{message}");
    assert_eq!(letter.header("courier.dlq.attempts").as_deref(), Some("0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cloudevents_in_binary_mode_reach_the_api_as_the_events_they_are_in_either_body_mode() {
    // Two routes on one topic: `cloudevents-binary` sent on in HTTP binary mode, `auto` (the default) in
    // structured mode.
    let s = scenario(
        "cloudevents-binary",
        first_call_fails(),
        &[
            ("COURIER__FORWARD__ROUTES__ACCOUNTS__API", "auth"),
            ("COURIER__FORWARD__ROUTES__ACCOUNTS__PATH", "users"),
            ("COURIER__FORWARD__ROUTES__ACCOUNTS__FORMAT", "cloudevents-binary"),
            ("COURIER__FORWARD__ROUTES__ACCOUNTS__MODE", "binary"),
            ("COURIER__FORWARD__ROUTES__ACCOUNTS__TYPES", "user.registered"),
            ("COURIER__FORWARD__ROUTES__WELCOME__API", "email"),
            ("COURIER__FORWARD__ROUTES__WELCOME__PATH", "messages"),
        ],
    )
    .await;
    let app = &s.app;
    let letters = [dead_letter(&s, "accounts").await, dead_letter(&s, "welcome").await];
    app.mock.wait_for_effects(Api::Auth, USERS, WAIT).await.expect("every account created");
    app.mock.wait_for_effects(Api::Email, USERS, WAIT).await.expect("every welcome e-mail sent");
    s.forward.stop().await.expect("forward stops cleanly");

    // Keyed by each event's source and id, as if courier's producer had published them: two raw calls per key
    // at the API that fails each key's first call, one at the other.
    let ids: BTreeSet<String> = (0..USERS).map(|i| format!("reg-{i}")).collect();
    for (api, route, statuses) in [(Api::Auth, "accounts", vec![503, 201]), (Api::Email, "welcome", vec![202])] {
        let per_key = calls_per_key(app, api);
        let keyed: BTreeSet<String> = per_key
            .keys()
            .map(|key| {
                let parts: Vec<&str> = key.splitn(3, ':').collect();
                assert!(parts.len() == 3 && parts[0] == route && parts[1].len() == 16, "{key}");
                parts[2].to_owned()
            })
            .collect();
        assert_eq!(keyed, ids, "{api}: one key per event");
        assert!(per_key.values().all(|calls| *calls == statuses), "{api}: raw calls per key: {per_key:?}");
    }
    for effect in app.mock.effects(Api::Auth) {
        let header = |name: &str| effect.cloudevent.get(name).map(String::as_str);
        assert_eq!((header("ce-type"), header("ce-source")), (Some("user.registered"), Some("/signup")));
        assert!(effect.idempotency_key.ends_with(header("ce-id").unwrap_or("?")), "{effect:?}");
        assert_eq!(header("content-type"), Some("application/json"));
        assert!(effect.body["user_id"].as_str().is_some_and(|u| u.starts_with("u-")), "the data as the body");
    }
    for effect in app.mock.effects(Api::Email) {
        assert_eq!(
            (&effect.body["specversion"], &effect.body["type"]),
            (&Value::from("1.0"), &Value::from("user.registered"))
        );
        assert!(effect.body["data"]["email"].as_str().is_some_and(|e| e.ends_with("@example.com")), "{effect:?}");
        assert_eq!(effect.cloudevent.get("content-type").map(String::as_str), Some("application/cloudevents+json"));
    }

    // The event whose value is not the JSON its content type says: dead-lettered by each route, in its format.
    for (letter, format) in letters.iter().zip(["cloudevents-binary", "auto"]) {
        assert_eq!(letter.key.as_deref(), Some(&b"bad"[..]));
        assert_eq!(letter.header("courier.dlq.error.kind").as_deref(), Some("decode"), "{format}");
        assert_eq!(letter.header("courier.dlq.format").as_deref(), Some(format));
        let message = letter.header("courier.dlq.error.message").unwrap_or_default();
        assert!(message.starts_with(&format!("{format}: ")) && message.contains("JSON"), "{message}");
        assert_eq!(letter.header("ce_id").as_deref(), Some("reg-bad"), "the original headers kept");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_json_record_replayed_from_its_dead_letter_keeps_the_key_of_where_it_was_first_read() {
    // The auth API refuses user 2 for good until it is fixed: dead-lettered after one call.
    let refuse = Faults { fail_body_contains: Some("user2@".into()), fail_body_status: 422, ..Faults::default() };
    let routes = [
        ("COURIER__FORWARD__ROUTES__SIGNUPS__API", "auth"),
        ("COURIER__FORWARD__ROUTES__SIGNUPS__PATH", "users"),
        ("COURIER__FORWARD__ROUTES__SIGNUPS__FORMAT", "json"),
    ];
    let s = scenario("json", refuse, &routes).await;
    let (app, topic) = (&s.app, &s.topic);
    let dlq = dlq_topic(topic, &s.settings.kafka.group_id("signups"));
    let letters = kafka_probe::read_all(&app.bootstrap, &dlq, 2, WAIT).await.expect("dead letters readable");
    assert_eq!(letters.len(), 2, "user 2 and the record that is not JSON: {letters:?}");
    app.mock.wait_for_effects(Api::Auth, USERS - 1, WAIT).await.expect("every other account created");

    // Fixed; `courier-dlq replay` sends both back to the topic, at new offsets.
    app.mock.set_faults(Api::Auth, Faults::default());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let argv = ["courier-dlq", "replay", dlq.as_str()];
    let code = courier_dlq::cli::run(argv, Some(app.env.clone()), false, &mut out, &mut err).await;
    let (out, err) = (String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("replayed 2 of 2"), "{out}");
    app.mock.wait_for_effects(Api::Auth, USERS, WAIT).await.expect("user 2's account created after the replay");
    let again = kafka_probe::read_all(&app.bootstrap, &dlq, 3, WAIT).await.expect("dead letters readable");
    s.forward.stop().await.expect("forward stops cleanly");

    // User 2's refused call and its replayed call carry one key: that of where the record was first written.
    let first = s.written.iter().find(|w| w.key == "u-2").expect("user 2 written");
    let key = format!("signups:{topic}-{}-{}", first.partition, first.offset);
    assert_eq!(calls_per_key(app, Api::Auth).get(&key), Some(&vec![422, 201]), "{:?}", calls_per_key(app, Api::Auth));
    assert_eq!(app.mock.stats(Api::Auth).calls as usize, USERS + 1, "one call per record, and the replay");
    // The record that is not JSON fails again after its replay, and its dead letter names where it was first.
    let bad = s.written.iter().find(|w| w.key == "bad").expect("the bad record written");
    let replayed_bad = again.iter().find(|l| l.header("courier.replay.count").is_some()).expect("dead-lettered again");
    let original =
        ["topic", "partition", "offset"].map(|c| replayed_bad.header(&format!("courier.replay.original.{c}")));
    let expected = [Some(topic.clone()), Some(bad.partition.to_string()), Some(bad.offset.to_string())];
    assert_eq!(original, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_read_as_bytes_or_keyed_by_their_key_or_a_member_keep_their_keys_across_retries() {
    // Three routes on one topic, every API failing each key's first call: `raw` sends each value as it is,
    // `accounts` keys each user by its record key, `welcome` by its user_id.
    let routes = [
        ("COURIER__FORWARD__ROUTES__RAW__API", "sms"),
        ("COURIER__FORWARD__ROUTES__RAW__PATH", "messages"),
        ("COURIER__FORWARD__ROUTES__RAW__FORMAT", "bytes"),
        ("COURIER__FORWARD__ROUTES__RAW__CONTENT_TYPE", "application/vnd.example.signup+json"),
        ("COURIER__FORWARD__ROUTES__ACCOUNTS__API", "auth"),
        ("COURIER__FORWARD__ROUTES__ACCOUNTS__PATH", "users"),
        ("COURIER__FORWARD__ROUTES__ACCOUNTS__FORMAT", "json"),
        ("COURIER__FORWARD__ROUTES__ACCOUNTS__ID_FROM", "key"),
        ("COURIER__FORWARD__ROUTES__WELCOME__API", "email"),
        ("COURIER__FORWARD__ROUTES__WELCOME__PATH", "messages"),
        ("COURIER__FORWARD__ROUTES__WELCOME__FORMAT", "json"),
        ("COURIER__FORWARD__ROUTES__WELCOME__ID_FROM", "value.user_id"),
    ];
    let start = |app: &TestApp, settings: &Settings| {
        app.mock.set_faults(Api::Sms, first_call_fails());
        app.mock.set_faults(Api::Email, first_call_fails());
        app.start_forward(settings)
    };
    let s = scenario_started("keyed", first_call_fails(), &routes, start).await;
    let (app, topic) = (&s.app, &s.topic);
    let raw_letters = dead_letters(&s, "raw", 1).await;
    let account_letters = dead_letters(&s, "accounts", 2).await;
    let welcome_letters = dead_letters(&s, "welcome", 2).await;
    app.mock.wait_for_effects(Api::Sms, USERS + 2, WAIT).await.expect("every JSON value sent as bytes");
    app.mock.wait_for_effects(Api::Auth, USERS + 1, WAIT).await.expect("every keyed record delivered");
    app.mock.wait_for_effects(Api::Email, USERS + 1, WAIT).await.expect("every record with a user_id delivered");
    s.forward.stop().await.expect("forward stops cleanly");
    let value = |w: &Written| match w.key.as_str() {
        "" => json!({"user_id": "u-nokey", "email": "nokey@example.com"}),
        "no-member" => json!({"email": "nomember@example.com"}),
        key => {
            let i = key.trim_start_matches("k-");
            json!({"user_id": format!("u-{i}"), "email": format!("user{i}@example.com")})
        }
    };
    let json_records: Vec<&Written> = s.written.iter().filter(|w| w.key != "bad").collect();

    // bytes: each value as the body, keyed by its coordinates, with its content-type header, else the setting's;
    // the value that is not JSON is sent as it is too, and the API's 400 dead-letters it after that one call.
    let at = |w: &Written| format!("raw:{topic}-{}-{}", w.partition, w.offset);
    let bad = s.written.iter().find(|w| w.key == "bad").expect("the bad record written");
    let mut expected: BTreeMap<String, Vec<u16>> = json_records.iter().map(|w| (at(w), vec![503, 202])).collect();
    expected.insert(at(bad), vec![400]);
    assert_eq!(calls_per_key(app, Api::Sms), expected, "bytes: raw calls at the API, per idempotency key");
    let sent: BTreeMap<String, (Value, String)> = app
        .mock
        .effects(Api::Sms)
        .into_iter()
        .map(|e| (e.idempotency_key, (e.body, e.cloudevent.get("content-type").cloned().unwrap_or_default())))
        .collect();
    let headed = ["k-0", "k-2", "k-4"];
    let expected: BTreeMap<String, (Value, String)> = json_records
        .iter()
        .map(|w| {
            let content_type = if headed.contains(&w.key.as_str()) {
                "application/vnd.example.user+json"
            } else {
                "application/vnd.example.signup+json"
            };
            (at(w), (value(w), content_type.to_owned()))
        })
        .collect();
    assert_eq!(sent, expected, "bytes: each value and its content type");
    let letter = &raw_letters["bad"];
    assert_eq!(letter.value.as_deref(), Some(&b"not json {"[..]));
    assert_eq!(letter.header("courier.dlq.error.kind").as_deref(), Some("http_status"), "sent, then refused");
    assert_eq!(letter.header("courier.dlq.attempts").as_deref(), Some("1"));

    // id_from = "key": `accounts:<key>`, the same on the retry; a record without a key cannot be identified so:
    // dead-lettered without a call (kind decode), like the value that is not JSON.
    let expected: BTreeMap<String, Vec<u16>> = json_records
        .iter()
        .filter(|w| !w.key.is_empty())
        .map(|w| (format!("accounts:{}", w.key), vec![503, 201]))
        .collect();
    assert_eq!(calls_per_key(app, Api::Auth), expected, "id_from = key: raw calls per idempotency key");
    // id_from = "value.user_id": `welcome:<user_id>`; a record without that member is dead-lettered so.
    let expected: BTreeMap<String, Vec<u16>> = json_records
        .iter()
        .filter_map(|w| value(w)["user_id"].as_str().map(|user| (format!("welcome:{user}"), vec![503, 202])))
        .collect();
    assert_eq!(calls_per_key(app, Api::Email), expected, "id_from = value.user_id: raw calls per idempotency key");
    for (letters, route, unidentified, reason) in [
        (&account_letters, "accounts", "", "id_from: the record has no key"),
        (&welcome_letters, "welcome", "no-member", "id_from: its value has no string or number at value.user_id"),
    ] {
        let keys: BTreeSet<&str> = letters.keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from([unidentified, "bad"]), "{route}: its dead letters");
        let letter = &letters[unidentified];
        assert_eq!(letter.header("courier.dlq.error.kind").as_deref(), Some("decode"), "{route}");
        assert_eq!(letter.header("courier.dlq.format").as_deref(), Some("json"), "{route}");
        let message = letter.header("courier.dlq.error.message").unwrap_or_default();
        assert!(message.contains(reason), "{route}: {message}");
        assert_eq!(letter.header("courier.dlq.attempts").as_deref(), Some("0"), "{route}: no call");
        let message = letters["bad"].header("courier.dlq.error.message").unwrap_or_default();
        assert!(message.starts_with("json: record value is not JSON"), "{route}: {message}");
    }
}

/// The test kit's schema registry, serving the schemas the fixtures were written with.
async fn schema_registry() -> MockSchemaRegistry {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/schema-registry/registry.json");
    MockSchemaRegistry::start(Recorded::load(&fixtures)).await
}

/// Route `profiles` reading `format` with the registry at `url`, to the auth API's `users`.
fn registry_route(format: &'static str, url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("COURIER__FORWARD__ROUTES__PROFILES__API", "auth".to_owned()),
        ("COURIER__FORWARD__ROUTES__PROFILES__PATH", "users".to_owned()),
        ("COURIER__FORWARD__ROUTES__PROFILES__FORMAT", format.to_owned()),
        ("COURIER__SCHEMA_REGISTRY__URL", url.to_owned()),
    ]
}

/// The JSON a fixture record decodes to: what a user of its schema expects to receive.
fn expected_json(fixture: &str) -> Value {
    match fixture {
        "avro-user" => json!({
            "user_id": "u-1", "email": "ada@example.com", "age": 36, "visits": 12_345_678_901_i64,
            "verified": true, "score": 4.5, "nickname": "ada", "referrer": null, "credit": 250, "plan": "PRO",
            "addresses": [{"city": "London", "zip": "N1"}, {"city": "Paris", "zip": "75001"}],
            "tags": {"beta": 1}, "avatar": "AAH+", "fingerprint": "3q2+7w==", "birthday": "1990-12-10",
            "registered_at": "2026-12-07T04:30:15.123Z", "last_seen_at": "2026-12-07T04:31:00.123456Z",
            "wake_up": "07:30:00.250", "balance": "1234.56", "session": "6f1c5b1e-9a2b-4c3d-8e4f-0a1b2c3d4e5f",
        }),
        "avro-payment" => json!({
            "payment_id": "p-1",
            "total": {"currency": "EUR", "amount": "25.98"},
            "refund": {"currency": "EUR", "amount": "-5.00"},
        }),
        "protobuf-order" => json!({
            "order_id": "o-1", "total": {"currency": "EUR", "units": 2598},
            "items": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}],
            "status": "STATUS_PAID", "placed_at": "2026-12-07T04:30:15.500Z", "labels": {"channel": "web"},
            "priority": 0, "signature": "AQI=",
        }),
        "protobuf-order-item" => json!({"sku": "SKU-9", "quantity": 3}),
        "protobuf-customer" => json!({"id": "c-1", "email": "ada@example.com"}),
        "json-schema-user" => json!({"user_id": "u-1", "email": "ada@example.com", "age": 36, "tags": ["beta"]}),
        other => panic!("no expected JSON for fixture {other}"),
    }
}

/// Runs route `profiles` in `format` over the independent producer's records of that format, every key's first
/// call failing: each record reaches the API as the JSON its schema decodes it to, twice under one key (its
/// coordinates); each of `schemas` is fetched once; the bad record is dead-lettered with `reason` in its message.
async fn a_registry_format_reaches_the_api_as_json(format: &'static str, schemas: &[&str], reason: &str) {
    let registry = schema_registry().await;
    let routes = registry_route(format, registry.url());
    let routes: Vec<(&str, &str)> = routes.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = scenario(format, first_call_fails(), &routes).await;
    let (app, topic) = (&s.app, &s.topic);
    let letter = dead_letter(&s, "profiles").await;
    app.mock.wait_for_effects(Api::Auth, USERS, WAIT).await.expect("every record delivered");
    s.forward.stop().await.expect("forward stops cleanly");

    let good: Vec<&Written> = s.written.iter().filter(|w| w.key != "bad").collect();
    let key = |w: &Written| format!("profiles:{topic}-{}-{}", w.partition, w.offset);
    let expected: BTreeMap<String, Vec<u16>> = good.iter().map(|w| (key(w), vec![503, 201])).collect();
    assert_eq!(calls_per_key(app, Api::Auth), expected, "{format}: raw calls at the API, per idempotency key");
    let bodies: BTreeMap<String, Value> =
        app.mock.effects(Api::Auth).into_iter().map(|e| (e.idempotency_key, e.body)).collect();
    let sent: BTreeMap<String, Value> = good.iter().map(|w| (key(w), expected_json(&w.key))).collect();
    assert_eq!(bodies, sent, "{format}: each record as the JSON its schema decodes it to");
    for effect in app.mock.effects(Api::Auth) {
        assert_eq!(effect.cloudevent.get("content-type").map(String::as_str), Some("application/json"));
    }
    // Each schema asked for once, however many records name it.
    let requests = registry.requests();
    for schema in schemas {
        let asked = requests.iter().filter(|r| r == schema).count();
        assert_eq!(asked, 1, "{format}: {schema} fetched once: {requests:?}");
    }

    assert_eq!(letter.key.as_deref(), Some(&b"bad"[..]));
    assert_eq!(letter.header("courier.dlq.error.kind").as_deref(), Some("decode"));
    assert_eq!(letter.header("courier.dlq.format").as_deref(), Some(format));
    let message = letter.header("courier.dlq.error.message").unwrap_or_default();
    assert!(message.starts_with(&format!("{format}: ")) && message.contains(reason), "{format}: {message}");
    assert_eq!(letter.header("courier.dlq.attempts").as_deref(), Some("0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn avro_records_reach_the_api_as_json_and_an_unknown_schema_id_is_dead_lettered() {
    let schemas = ["/schemas/ids/1", "/schemas/ids/8", "/subjects/com.example.shop.Money/versions/1"];
    let unknown = "schema 4040 is unknown to the schema registry: Schema 4040 not found (error code 40403)";
    a_registry_format_reaches_the_api_as_json("avro", &schemas, unknown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn protobuf_records_reach_the_api_as_json_and_an_unknown_schema_id_is_dead_lettered() {
    // common.proto, which all three import, is fetched once too.
    let schemas = ["/schemas/ids/3", "/schemas/ids/4", "/schemas/ids/5", "/subjects/common.proto/versions/1"];
    a_registry_format_reaches_the_api_as_json("protobuf", &schemas, "schema 4040 is unknown").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_schema_records_reach_the_api_as_json_and_one_its_schema_refuses_is_dead_lettered() {
    a_registry_format_reaches_the_api_as_json("json-schema", &["/schemas/ids/6"], "malformed record").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registry_outage_dead_letters_nothing_and_delivery_completes_once_it_is_back() {
    let registry = schema_registry().await;
    registry.set_fault(Some(Fault::Unavailable));
    let routes = registry_route("avro", registry.url());
    let routes: Vec<(&str, &str)> = routes.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let health = Health::default();
    let start = |app: &TestApp, settings: &Settings| app.start_forward_route(settings, "profiles", &health);
    let s = scenario_started("avro", Faults::default(), &routes, start).await;
    let (app, topic) = (&s.app, &s.topic);

    // The registry answers 503: decoding is retried, reported as the `decoding` problem, and nothing moves.
    let reported = health.wait_for(WAIT, |problems| problems.contains_key("decoding")).await;
    assert!(reported, "the decoding problem reported: {:?}", health.problems());
    let dlq = dlq_topic(topic, &s.settings.kafka.group_id("profiles"));
    assert_eq!(kafka_probe::record_count(&app.bootstrap, &dlq).await.expect("watermarks"), 0, "no dead letter");
    assert_eq!(app.mock.stats(Api::Auth).calls, 0, "no call while the records cannot be decoded");

    // Back: every record is delivered, the problem clears, and the one dead letter is the unknown schema id's.
    registry.set_fault(None);
    app.mock.wait_for_effects(Api::Auth, USERS, WAIT).await.expect("every record delivered once the registry is back");
    let letter = dead_letter(&s, "profiles").await;
    assert!(health.wait_for(WAIT, |problems| !problems.contains_key("decoding")).await, "{:?}", health.problems());
    s.forward.stop().await.expect("forward stops cleanly");
    assert_eq!(letter.key.as_deref(), Some(&b"bad"[..]), "the unknown schema id's, and no other");
    let message = letter.header("courier.dlq.error.message").unwrap_or_default();
    assert!(message.contains("schema 4040 is unknown"), "{message}");
    let asked = registry.requests().iter().filter(|r| *r == "/schemas/ids/1").count();
    assert!(asked >= 2, "schema 1 asked for while the registry was out, and again once it was back: {asked}");
    let keys: BTreeSet<String> = app.mock.effects(Api::Auth).into_iter().map(|e| e.idempotency_key).collect();
    let expected: BTreeSet<String> = s
        .written
        .iter()
        .filter(|w| w.key != "bad")
        .map(|w| format!("profiles:{topic}-{}-{}", w.partition, w.offset))
        .collect();
    assert_eq!(keys, expected, "one key per record, by its coordinates");
    assert_eq!(app.mock.stats(Api::Auth).calls as usize, USERS, "one raw call per record");
}
