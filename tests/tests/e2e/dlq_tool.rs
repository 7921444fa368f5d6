//! `courier-dlq` against a real broker, driven through its command line ([`courier_dlq::cli::run`]) as an
//! operator would: dead letters made by the real consumers (an SKU the inventory API refuses with 409, a
//! payment refused with 422 and no decline reason, an SMS outage past its retry budget) are listed and
//! filtered right; once the cause is fixed a replay gives exactly one effect per dead letter at the right API
//! and none at the others, goes on after a `--limit` without sending anything twice, leaves everything
//! alone in a dry run, and the loop guard stops a record that keeps failing. A replay whose position the
//! broker lost refuses to send again until told how to go on, and of two replays of one topic started at
//! once one refuses: no dead letter is sent twice.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use courier::delivery::dlq::dlq_topic;
use courier_consumers::order_topics::OrderTopics;
use courier_tests::app::{RunningConsumer, registry};
use courier_tests::kafka_probe;
use courier_tests::{TestApp, WAIT, spawn_app};
use mock_apis::{Api, Faults};
use serde_json::{Value, json};

/// Runs `courier-dlq ARGS` with the test's settings: (exit code, stdout, stderr).
async fn dlq(app: &TestApp, args: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let argv = std::iter::once("courier-dlq").chain(args.iter().copied());
    let code = courier_dlq::cli::run(argv, Some(app.env.clone()), false, &mut out, &mut err).await;
    (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}

/// JSON lines, each parsed.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

/// The dead letters of one scenario: their topics and the orders behind them.
struct Scenario {
    /// `<orders>.inventory.dlq`, `<orders>.payment.dlq`, `<orders>.notification.dlq`.
    inventory: String,
    /// The payment dead-letter topic.
    payment: String,
    /// The notification dead-letter topic.
    notification: String,
    /// (order id, event id) of the order whose SKU the inventory API does not know yet.
    late_sku: (String, String),
    /// (order id, event id) of the order whose charge is refused with 422.
    refused: (String, String),
    /// (order id, event id) of the orders whose SMS fails past its budget.
    sms: Vec<(String, String)>,
    /// Every order posted.
    orders: usize,
    /// The consumers (inventory, payment, notification), still running.
    consumers: Vec<RunningConsumer>,
}

/// Posts `order` and returns (order id, event id).
async fn post(app: &TestApp, order: Value) -> (String, String) {
    let response = app.post_order(&order, None).await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    (answer["order_id"].as_str().expect("id").to_owned(), answer["event_id"].as_str().expect("id").to_owned())
}

/// An order of one item `sku`, with `phone` when given.
fn order(i: usize, sku: &str, phone: Option<&str>) -> Value {
    let mut customer = json!({"id": format!("c-{i}"), "email": format!("c{i}@example.com")});
    if let Some(phone) = phone {
        customer["phone"] = json!(phone);
    }
    json!({"customer": customer, "items": [{"sku": sku, "quantity": 1, "unit_price": 1000 + i}], "currency": "EUR"})
}

/// Makes the dead letters with the real consumers and waits until every one is in its topic.
async fn dead_letters(app: &TestApp) -> Scenario {
    let late_sku = post(app, order(0, "SKU-LATE", None)).await;
    let refused = post(app, order(1, "SKU-1", None)).await;
    let mut sms = Vec::new();
    for i in 2..5 {
        sms.push(post(app, order(i, "SKU-1", Some("+15550199"))).await);
    }
    post(app, order(5, "SKU-1", Some("+15550100"))).await;
    let orders = 6;
    // The inventory API does not know SKU-LATE yet; the payment API refuses one order with 422 and no
    // decline reason; the SMS API fails for one phone number for longer than the retry budget.
    app.mock.set_faults(
        Api::Inventory,
        Faults { fail_body_contains: Some("SKU-LATE".into()), fail_body_status: 409, ..Faults::default() },
    );
    app.mock.set_faults(
        Api::Payment,
        Faults { fail_body_contains: Some(refused.0.clone()), fail_body_status: 422, ..Faults::default() },
    );
    app.mock.set_faults(
        Api::Sms,
        Faults { fail_body_contains: Some("+15550199".into()), fail_body_status: 503, ..Faults::default() },
    );
    let settings = app.settings_with(&[
        ("COURIER__CONSUMER__RETRY_MAX_ATTEMPTS", "2"),
        ("COURIER__APIS__SMS__BREAKER_MINIMUM_FAILING_KEYS", "100"),
    ]);
    let consumers = [registry::INVENTORY, registry::PAYMENT, registry::NOTIFICATION]
        .into_iter()
        .map(|c| app.start(c, &settings))
        .collect();
    let topic = app.settings.topics.orders_created();
    let dlq = |group: &str| dlq_topic(topic, &app.settings.kafka.group_id(group));
    let scenario = Scenario {
        inventory: dlq("inventory"),
        payment: dlq("payment"),
        notification: dlq("notification"),
        late_sku,
        refused,
        sms,
        orders,
        consumers,
    };
    for (topic, n) in [(&scenario.inventory, 1), (&scenario.payment, 1), (&scenario.notification, 3)] {
        let letters = kafka_probe::read_all(&app.bootstrap, topic, n, WAIT).await.expect("DLQ readable");
        assert_eq!(letters.len(), n, "{topic}");
    }
    app.mock.wait_for_effects(Api::Email, orders, WAIT).await.expect("every e-mail");
    scenario
}

/// Waits until every group of `consumers` committed the whole orders topic (every record, replays
/// included, handled or skipped).
async fn wait_until_consumed(app: &TestApp, consumers: &[&str]) {
    let topic = app.settings.topics.orders_created();
    let partitions = app.settings.topics.partitions;
    let deadline = tokio::time::Instant::now() + WAIT;
    for consumer in consumers {
        let group = app.settings.kafka.group_id(consumer);
        for partition in 0..partitions {
            let end = watermark(app, partition).await;
            loop {
                let committed =
                    kafka_probe::committed(&app.bootstrap, &group, topic, partition).await.expect("readable");
                if committed.unwrap_or(0) >= end {
                    break;
                }
                assert!(tokio::time::Instant::now() < deadline, "{group} did not consume {topic}/{partition}");
                // Commits come every commit interval (200 ms in tests): look again after one.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The high watermark of `partition` of the orders topic.
async fn watermark(app: &TestApp, partition: i32) -> i64 {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let (bootstrap, topic) = (app.bootstrap.clone(), app.settings.topics.orders_created().to_owned());
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("client");
        client.fetch_watermarks(&topic, partition, Duration::from_secs(10)).expect("watermarks").1
    })
    .await
    .expect("joined")
}

/// Calls at `api` whose body names `order_id`.
fn calls_for(app: &TestApp, api: Api, order_id: &str) -> usize {
    app.mock.calls(api).iter().filter(|c| c.body.to_string().contains(order_id)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters_of_the_real_consumers_are_listed_and_filtered() {
    let app = spawn_app().await;
    let started = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let s = dead_letters(&app).await;

    let (code, out, err) = dlq(&app, &["list", "--format", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let topics: Vec<Value> = serde_json::from_str(&out).expect("list --format json parses");
    let topic = |name: &str| topics.iter().find(|t| t["topic"] == name).unwrap_or_else(|| panic!("{name} listed"));
    assert_eq!(topic(&s.inventory)["records"], 1);
    assert_eq!(topic(&s.inventory)["by_consumer"], json!({"inventory": 1}));
    assert_eq!(topic(&s.payment)["by_kind"], json!({"http_status": 1}));
    assert_eq!(topic(&s.notification)["records"], 3);
    assert_eq!(topic(&s.notification)["by_channel"], json!({"sms": 3}));
    assert!(topic(&s.notification)["oldest"].as_str() <= topic(&s.notification)["newest"].as_str());
    let (code, table, _) = dlq(&app, &["list"]).await;
    assert_eq!(code, 0);
    println!("$ courier-dlq list\n{table}");
    let (code, lines, _) = dlq(&app, &["inspect", &s.inventory, "--status", "409"]).await;
    assert_eq!((code, lines.lines().count()), (0, 2), "a header and one dead letter: {lines}");
    println!("$ courier-dlq inspect {} --status 409\n{lines}", s.inventory);
    assert!(table.lines().any(|l| l.starts_with(&s.notification) && l.contains("notification=3")), "{table}");

    let (code, out, err) = dlq(&app, &["inspect", &s.inventory, "--status", "409", "--format", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let letters = json_lines(&out);
    assert_eq!(letters.len(), 1);
    let l = &letters[0];
    assert_eq!((&l["consumer"], &l["http_status"], &l["attempts"]), (&json!("inventory"), &json!(409), &json!(1)));
    assert_eq!(l["original_topic"], app.settings.topics.orders_created());
    assert_eq!(l["event_id"], s.late_sku.1.as_str());
    assert_eq!(l["key"], s.late_sku.0.as_str());

    let (code, out, _) = dlq(&app, &["inspect", &s.notification, "--channel", "sms", "--format", "json"]).await;
    assert_eq!(code, 0);
    let letters = json_lines(&out);
    assert_eq!(letters.len(), 3);
    assert!(letters.iter().all(|l| l["http_status"] == 503 && l["attempts"] == 2 && l["channel"] == "sms"));
    let (code, _, err) = dlq(&app, &["inspect", &s.notification, "--channel", "email"]).await;
    assert_eq!(code, 1, "a filter that matches nothing fails");
    assert!(err.contains("matches the filter"), "{err}");

    let refused = s.refused.1.as_str();
    let (code, out, _) =
        dlq(&app, &["inspect", &s.payment, "--event-id", refused, "--since", &started, "--format", "json"]).await;
    assert_eq!(code, 0);
    let letters = json_lines(&out);
    assert_eq!((letters.len(), &letters[0]["http_status"]), (1, &json!(422)));
    let (code, _, _) = dlq(&app, &["inspect", &s.payment, "--until", &started]).await;
    assert_eq!(code, 1, "nothing before the test began");
    let at = format!("{}:{}", letters[0]["partition"], letters[0]["offset"]);
    let (code, shown, _) = dlq(&app, &["inspect", &s.payment, "--show", &at]).await;
    assert_eq!(code, 0);
    println!("$ courier-dlq inspect {} --show {at}\n{shown}", s.payment);
    assert!(shown.contains("courier.dlq.http.status: 422") && shown.contains("value (JSON):"), "{shown}");
    assert!(shown.contains(&format!("\"id\": \"{refused}\"")), "{shown}");

    let (code, _, err) = dlq(&app, &["inspect", "no.such.topic.dlq"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
    let (code, _, _) = dlq(&app, &["inspect", &s.payment, "--offset", "5..2"]).await;
    assert_eq!(code, 2, "a bad range is a usage error");

    // A dry run prints what it would send and sends nothing.
    let before = app.orders_on_topic().await;
    let (code, out, _) = dlq(&app, &["replay", &s.notification, "--dry-run"]).await;
    assert_eq!(code, 0);
    assert_eq!(out.lines().filter(|l| l.contains("would replay  →")).count(), 3, "{out}");
    assert_eq!(app.orders_on_topic().await, before, "a dry run produces nothing");
    let (code, again, _) = dlq(&app, &["replay", &s.notification, "--dry-run"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        again.lines().filter(|l| l.contains("would replay  →")).count(),
        3,
        "the position did not move: {again}"
    );
    for c in s.consumers {
        c.stop().await.expect("stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_the_fix_a_replay_gives_one_effect_per_dead_letter_at_the_right_api_and_resumes() {
    let app = spawn_app().await;
    let s = dead_letters(&app).await;
    let sms_ok_before = app.mock.stats(Api::Sms).effects;
    assert_eq!(sms_ok_before, 1, "only the order with another phone got its SMS");
    for api in [Api::Inventory, Api::Payment, Api::Sms] {
        app.mock.set_faults(api, Faults::default());
    }
    let before = app.orders_on_topic().await;

    // Stopped by --limit after one SMS dead letter, then the rest; a third run finds nothing new (a replay
    // killed half way is tools/dlq/tests/cli.rs).
    let (code, out, err) = dlq(&app, &["replay", &s.notification, "--limit", "1"]).await;
    assert_eq!(code, 0, "{err}");
    println!("$ courier-dlq replay {} --limit 1\n{out}", s.notification);
    assert!(out.contains("replayed 1 of 1") && out.contains("2 records left for the next run"), "{out}");
    let (code, out, _) = dlq(&app, &["replay", &s.notification]).await;
    assert_eq!(code, 0);
    assert!(out.contains("replayed 2 of 2"), "resumes after the first: {out}");
    println!("$ courier-dlq replay {}\n{out}", s.notification);
    let (code, out, _) = dlq(&app, &["replay", &s.notification]).await;
    assert_eq!(code, 0);
    assert!(out.contains("replayed 0 of 0"), "nothing sent twice: {out}");
    for topic in [&s.inventory, &s.payment] {
        let (code, out, err) = dlq(&app, &["replay", topic]).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("replayed 1 of 1"), "{out}");
    }
    assert_eq!(app.orders_on_topic().await, before + 5, "one record per dead letter");
    let records =
        kafka_probe::read_all(&app.bootstrap, app.settings.topics.orders_created(), (before + 5) as usize, WAIT)
            .await
            .expect("readable");
    let replayed: Vec<_> = records.iter().filter(|r| r.header("courier.replay.from").is_some()).collect();
    assert_eq!(replayed.len(), 5);
    let mut from: Vec<_> = replayed.iter().filter_map(|r| r.header("courier.replay.from")).collect();
    from.sort();
    from.dedup();
    assert_eq!(from.len(), 5, "each dead letter replayed once");
    assert!(replayed.iter().all(|r| r.header("courier.replay.count").as_deref() == Some("1")));
    assert!(replayed.iter().all(|r| r.header("courier.dlq.consumer").is_none()), "no courier.dlq.* header left");
    let sms_replays = replayed.iter().filter(|r| r.header("courier.replay.channel").as_deref() == Some("sms")).count();
    assert_eq!(sms_replays, 3);

    app.mock.wait_for_effects(Api::Sms, 4, WAIT).await.expect("every SMS after the replay");
    app.mock.wait_for_effects(Api::Inventory, s.orders, WAIT).await.expect("the late SKU reserved");
    app.mock.wait_for_effects(Api::Payment, s.orders, WAIT).await.expect("the refused order charged");
    wait_until_consumed(&app, &["inventory", "payment", "notification"]).await;
    for c in s.consumers {
        c.stop().await.expect("stops");
    }

    // Exactly one effect per order at each API: the replays reached only the consumer that gave up.
    for api in [Api::Inventory, Api::Payment, Api::Email] {
        let stats = app.mock.stats(api);
        assert_eq!(stats.effects as usize, s.orders, "{api}: one effect per order");
        let keys: std::collections::HashSet<String> =
            app.mock.effects(api).into_iter().map(|e| e.idempotency_key).collect();
        assert_eq!(keys.len(), s.orders, "{api}: one idempotency key per order");
    }
    assert_eq!(app.mock.stats(Api::Sms).effects, 4, "one SMS per order with a phone");
    // Raw calls: the dead-lettered ones were called again once; nothing else was called again.
    assert_eq!(calls_for(&app, Api::Inventory, &s.late_sku.0), 2, "409, then the replay");
    assert_eq!(calls_for(&app, Api::Payment, &s.refused.0), 2, "422, then the replay");
    assert_eq!(app.mock.stats(Api::Inventory).calls as usize, s.orders + 1);
    assert_eq!(app.mock.stats(Api::Payment).calls as usize, s.orders + 1);
    assert_eq!(app.mock.stats(Api::Email).calls as usize, s.orders, "no e-mail re-sent by the SMS replays");
    assert_eq!(app.mock.stats(Api::Sms).calls, 1 + 3 * 2 + 3, "two failed attempts and one replay per SMS");
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for effect in app.mock.effects(Api::Sms) {
        *per_key.entry(effect.idempotency_key).or_default() += 1;
    }
    for (_, event_id) in &s.sms {
        assert_eq!(per_key.get(&format!("notification-sms:{event_id}")), Some(&1), "one SMS for {event_id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_loop_guard_stops_a_record_that_keeps_failing_and_drained_letters_replay_from_a_file() {
    let app = spawn_app().await;
    // An SKU the inventory API will never know: every replay fails again.
    let (order_id, _) = post(&app, order(0, "UNKNOWN-42", None)).await;
    let inventory = app.start(registry::INVENTORY, &app.settings);
    let topic = dlq_topic(app.settings.topics.orders_created(), &app.settings.kafka.group_id("inventory"));
    for round in 1..=3usize {
        let letters = kafka_probe::read_all(&app.bootstrap, &topic, round, WAIT).await.expect("readable");
        assert_eq!(letters.len(), round, "dead-lettered again after each replay");
        let (code, out, err) = dlq(&app, &["replay", &topic, "--max-replays", "2"]).await;
        assert_eq!(code, 0, "{err}");
        if round < 3 {
            assert!(out.contains("replayed 1 of 1"), "round {round}: {out}");
        } else {
            assert!(out.contains("loop guard") && out.contains("replayed 0 of 1"), "{out}");
            assert!(out.contains("1 held by the loop guard"), "{out}");
        }
    }
    assert_eq!(app.orders_on_topic().await, 3, "the order and two replays, no third");
    let last = kafka_probe::read_all(&app.bootstrap, &topic, 3, WAIT).await.expect("readable");
    assert_eq!(last.iter().filter_map(|r| r.header("courier.replay.count")).max().as_deref(), Some("2"));
    assert_eq!(calls_for(&app, Api::Inventory, &order_id), 3, "one call per attempt, none after the guard");

    // Drain what is there to a file (the position moves past it), then replay the file.
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("letters.jsonl");
    let file_arg = file.to_str().expect("utf-8 path");
    let (code, out, err) = dlq(&app, &["drain", &topic, "--to", file_arg, "--from-beginning"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("drained 3 of 3"), "{out}");
    let lines = json_lines(&std::fs::read_to_string(&file).expect("file"));
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["value_base64"].is_string() && l["letter"]["consumer"] == "inventory"));
    let (code, out, _) = dlq(&app, &["replay", &topic]).await;
    assert_eq!(code, 0);
    assert!(out.contains("replayed 0 of 0"), "the drain moved the position: {out}");
    let (code, out, err) = dlq(&app, &["replay", "--from", file_arg, "--max-replays", "5", "--offset", "0"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replayed 1 of 3"), "{out}");
    assert_eq!(app.orders_on_topic().await, 4, "the file's first dead letter sent back");
    inventory.stop().await.expect("stops");
}

/// Produces dead letters `from..from + n` of `original` (keyed, as inventory dead-letters them) to `topic`,
/// creating both topics first.
async fn produce_dead_letters(app: &TestApp, topic: &str, original: &str, from: usize, n: usize) {
    use courier::kafka::headers::to_owned;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    courier::kafka::ensure_topics(&app.settings.kafka, &app.settings.topics, &[original, topic]).await.expect("topics");
    let producer: FutureProducer =
        courier::kafka::producer_config(&app.settings.kafka, "test-dead-letters", Duration::from_secs(30))
            .create()
            .expect("producer");
    let mut pending = Vec::new();
    for i in from..from + n {
        let (key, value) = (format!("order-{i}"), format!(r#"{{"id":"ev-{i}","type":"order.created"}}"#));
        let headers: Vec<(Vec<u8>, Option<Vec<u8>>)> = [
            ("courier.dlq.original.topic", original.to_owned()),
            ("courier.dlq.original.offset", i.to_string()),
            ("courier.dlq.consumer", "inventory".to_owned()),
            ("courier.dlq.error.kind", "http_status".to_owned()),
            ("courier.dlq.http.status", "409".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), Some(v.into_bytes())))
        .collect();
        let record = FutureRecord::to(topic)
            .key(&key)
            .payload(&value)
            .headers(to_owned(headers.iter().map(|(k, v)| (k, v.as_ref()))));
        pending.push(producer.send_result(record).map_err(|(e, _)| e).expect("queued"));
    }
    for delivery in pending {
        delivery.await.expect("not cancelled").map_err(|(e, _)| e).expect("acknowledged");
    }
}

/// Deletes consumer group `group` and checks that its offset on `topic`/0 is gone: what the broker's offset
/// expiry (`offsets.retention.minutes`) does to a group that has not committed for that long.
async fn delete_group(app: &TestApp, group: &str, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> =
        courier::kafka::base_config(&app.settings.kafka, "test-admin").create().expect("admin client");
    // Tansu 0.6.0 answers GroupIdNotFound for a group that never joined, after deleting its offsets: the
    // offsets, checked below, are what counts.
    let _ = admin.delete_groups(&[group], &AdminOptions::new()).await.expect("DeleteGroups answered");
    let left = kafka_probe::committed(&app.bootstrap, group, topic, 0).await.expect("readable");
    assert_eq!(left, None, "the offsets of {group} are gone");
}

/// The `courier.replay.from` of every record on `topic` (read until `expected` are there), and how many
/// distinct ones there are.
async fn replays_on(app: &TestApp, topic: &str, expected: usize) -> (usize, usize) {
    let records = kafka_probe::read_all(&app.bootstrap, topic, expected, WAIT).await.expect("readable");
    let from: std::collections::HashSet<String> =
        records.iter().map(|r| r.header("courier.replay.from").expect("every record is a replay")).collect();
    (records.len(), from.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_whose_position_expired_refuses_to_send_again_without_an_explicit_flag() {
    let app = spawn_app().await;
    let target = app.settings.topics.orders_created().to_owned();
    let topic = dlq_topic(&target, &app.settings.kafka.group_id("inventory"));
    let position = app.settings.kafka.group_id(&format!("courier-dlq-replay-{topic}"));
    produce_dead_letters(&app, &topic, &target, 0, 20).await;
    let (code, out, err) = dlq(&app, &["replay", &topic]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replayed 20 of 20"), "{out}");
    assert_eq!(app.orders_on_topic().await, 20);

    // The position's offsets are gone, as after offsets.retention.minutes without a commit.
    delete_group(&app, &position, &topic).await;
    let (code, out, err) = dlq(&app, &["replay", &topic]).await;
    println!("$ courier-dlq replay {topic}   # its position expired\n{out}{err}");
    assert_eq!(code, 1, "refused: {out}");
    assert!(
        err.contains("position") && err.contains("--from-beginning") && err.contains("--restore-position"),
        "{err}"
    );
    let (code, _, err) = dlq(&app, &["replay", &topic, "--dry-run"]).await;
    assert_eq!(code, 1, "a dry run says the same: {err}");
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("letters.jsonl");
    let (code, _, err) = dlq(&app, &["drain", &topic, "--to", file.to_str().expect("utf-8")]).await;
    assert_eq!(code, 1, "a drain too: {err}");
    assert!(!file.exists(), "nothing drained");
    assert_eq!(app.orders_on_topic().await, 20, "nothing sent again");

    // Two more dead letters; going on from the recorded position sends those only.
    produce_dead_letters(&app, &topic, &target, 20, 2).await;
    let (code, out, err) = dlq(&app, &["replay", &topic, "--restore-position"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replayed 2 of 2"), "{out}");
    assert_eq!(replays_on(&app, &target, 22).await, (22, 22), "each dead letter replayed once");

    // Lost again: --from-beginning accepts sending again every dead letter still on the topic.
    delete_group(&app, &position, &topic).await;
    let (code, _, err) = dlq(&app, &["replay", &topic]).await;
    assert_eq!(code, 1, "{err}");
    let (code, out, err) = dlq(&app, &["replay", &topic, "--from-beginning"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replayed 22 of 22"), "{out}");
    assert_eq!(replays_on(&app, &target, 44).await, (44, 22), "every dead letter sent again, as asked");
    let (code, out, err) = dlq(&app, &["replay", &topic]).await;
    assert_eq!(code, 0, "the position is back: {err}");
    assert!(out.contains("replayed 0 of 0"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replays_of_one_topic_started_at_once_one_refuses_and_nothing_is_sent_twice() {
    let app = spawn_app().await;
    let target = app.settings.topics.orders_created().to_owned();
    let topic = dlq_topic(&target, &app.settings.kafka.group_id("inventory"));
    const LETTERS: usize = 300;
    produce_dead_letters(&app, &topic, &target, 0, LETTERS).await;

    // Slowed down (10 s) so that the two overlap whichever starts sending first: taking the lock is decided
    // within about 3 s of the join on Tansu.
    let args = ["replay", topic.as_str(), "--rate", "30"];
    let (first, second) = tokio::join!(dlq(&app, &args), dlq(&app, &args));
    let runs = [first, second];
    println!("{runs:#?}");
    let proceeded: Vec<_> = runs.iter().filter(|(code, _, _)| *code == 0).collect();
    let refused: Vec<_> = runs.iter().filter(|(code, _, _)| *code == 1).collect();
    assert_eq!((proceeded.len(), refused.len()), (1, 1), "exactly one proceeds: {runs:#?}");
    assert!(proceeded[0].1.contains(&format!("replayed {LETTERS} of {LETTERS}")), "{}", proceeded[0].1);
    assert!(refused[0].1.is_empty(), "the refused run sent nothing: {}", refused[0].1);
    assert!(refused[0].2.contains("another courier-dlq") && refused[0].2.contains(&topic), "{}", refused[0].2);
    assert_eq!(replays_on(&app, &target, LETTERS).await, (LETTERS, LETTERS), "each dead letter sent once");
    assert_eq!(app.orders_on_topic().await, LETTERS as i64, "no record sent twice");

    // The lock went with the run that held it: the next one starts at once.
    let (code, out, err) = dlq(&app, &["replay", &topic]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replayed 0 of 0"), "{out}");
}
