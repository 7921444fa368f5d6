//! The whole order flow: one order event, independent consumer groups — inventory, payment, notification
//! (e-mail + SMS), and shipping behind payment's `order.paid` — each calling its own API, failing and
//! recovering on its own; a declined payment releases the reservation again and ships nothing. The events
//! published on the way match their JSON Schemas (`schemas/events/`, judged by Python's `jsonschema`) and carry the
//! record headers `docs/asyncapi.yaml` declares.

use courier_tests::WAIT;
use std::collections::{BTreeSet, HashMap};

use courier::delivery::dlq::dlq_topic;
use courier_consumers::order_topics::OrderTopics;
use courier_tests::app::{RunningConsumer, registry, sample_order};
use courier_tests::kafka_probe;
use courier_tests::schema_judge::judge_event_data;
use courier_tests::{TestApp, spawn_app};
use mock_apis::{Api, Faults};
use serde_json::{Value, json};

/// Posts `orders` and returns (order id → event id), in order.
async fn post_all(app: &TestApp, orders: &[Value]) -> Vec<(String, String)> {
    let mut ids = Vec::with_capacity(orders.len());
    for order in orders {
        let response = app.post_order(order, None).await;
        assert_eq!(response.status(), 202);
        let answer: Value = response.json().await.expect("json");
        ids.push((
            answer["order_id"].as_str().expect("id").to_owned(),
            answer["event_id"].as_str().expect("id").to_owned(),
        ));
    }
    ids
}

/// Order `i`, with a phone number when `phone`.
fn order(i: usize, phone: bool) -> Value {
    let mut order = sample_order(i);
    if !phone {
        order["customer"].as_object_mut().expect("customer").remove("phone");
    }
    order
}

fn start_all(app: &TestApp, overrides: &[(&str, &str)]) -> Vec<RunningConsumer> {
    let settings = app.settings_with(overrides);
    registry::CONSUMERS.iter().map(|c| app.start(*c, &settings)).collect()
}

async fn stop_all(consumers: Vec<RunningConsumer>) {
    for c in consumers {
        c.stop().await.expect("consumer stops cleanly");
    }
}

/// Order id → number of effects at `api` for it.
fn effects_by_order(app: &TestApp, api: Api, field: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for e in app.mock.effects(api) {
        *counts.entry(e.body[field].as_str().unwrap_or("").to_owned()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_order_is_reserved_charged_and_notified_once() {
    let app = spawn_app().await;
    let orders: Vec<Value> = (0..24).map(|i| order(i, i % 3 != 0)).collect();
    let with_phone = orders.iter().filter(|o| o["customer"]["phone"].is_string()).count();
    let consumers = start_all(&app, &[]);
    let ids = post_all(&app, &orders).await;
    let n = ids.len();
    app.mock.wait_for_effects(Api::Inventory, n, WAIT).await.expect("reservations");
    app.mock.wait_for_effects(Api::Payment, n, WAIT).await.expect("charges");
    app.mock.wait_for_effects(Api::Email, n, WAIT).await.expect("e-mails");
    app.mock.wait_for_effects(Api::Sms, with_phone, WAIT).await.expect("SMS");
    app.mock.wait_for_effects(Api::Shipping, n, WAIT).await.expect("shipping labels");
    stop_all(consumers).await;

    // Shipping: one call per paid order, keyed by the order.paid event payment published for it.
    let labels: Vec<String> = app.mock.calls(Api::Shipping).into_iter().filter_map(|c| c.idempotency_key).collect();
    assert_eq!(labels.len(), n, "raw calls at the shipping API");
    for (order_id, event_id) in &ids {
        let paid = courier::events::caused_id::<courier::events::OrderPaid>(event_id);
        assert!(labels.contains(&format!("shipping:{paid}")), "a label for {order_id}");
    }

    let reservations = effects_by_order(&app, Api::Inventory, "order_id");
    let charges = effects_by_order(&app, Api::Payment, "order_id");
    for (order_id, event_id) in &ids {
        assert_eq!(reservations.get(order_id), Some(&1), "one reservation for {order_id}");
        assert_eq!(charges.get(order_id), Some(&1), "one charge for {order_id}");
        let keys: Vec<String> = app.mock.effects(Api::Email).into_iter().map(|e| e.idempotency_key).collect();
        assert!(keys.contains(&format!("notification-email:{event_id}")), "e-mail for {order_id}");
    }
    for api in [Api::Inventory, Api::Payment, Api::Email] {
        assert_eq!(app.mock.stats(api).effects as usize, n, "{api}: one effect per order");
    }
    assert_eq!(app.mock.stats(Api::Sms).effects as usize, with_phone, "one SMS per order with a phone");
    let charge = &app.mock.effects(Api::Payment)[0].body;
    assert!(charge["amount"].as_u64().is_some() && charge["currency"] == "EUR", "{charge}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_declined_payment_releases_the_reservation_exactly_once() {
    let app = spawn_app().await;
    // A total ending in 13 is declined by the mock payment API.
    let declined = json!({"customer": {"id": "c-broke", "email": "broke@example.com"},
                          "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 1313}], "currency": "EUR"});
    let ids = post_all(&app, &[declined, order(1, true)]).await;
    let (declined_id, _) = &ids[0];
    // Reserve first, then charge: a release needs a reservation to release.
    let inventory = app.start(registry::INVENTORY, &app.settings);
    app.mock.wait_for_effects(Api::Inventory, 2, WAIT).await.expect("reservations");
    let payment = app.start(registry::PAYMENT, &app.settings);
    let shipping = app.start(registry::SHIPPING, &app.settings);
    let releases = app.mock.wait_for_effects(Api::InventoryRelease, 1, WAIT).await.expect("the release");
    app.mock.wait_for_effects(Api::Payment, 1, WAIT).await.expect("the other order is charged");
    let labels = app.mock.wait_for_effects(Api::Shipping, 1, WAIT).await.expect("the other order ships");
    payment.stop().await.expect("stops");
    inventory.stop().await.expect("stops");
    shipping.stop().await.expect("stops");

    assert_eq!(labels.len(), 1, "only the paid order ships");
    // The label request names the order, the customer and the items (consumers/src/shipping.rs), as the mock
    // shipping API and the demo read it.
    let items = json!([{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-GIFT", "quantity": 1}]);
    assert_eq!(labels[0].body, json!({"order_id": ids[1].0, "customer_id": "c-1", "items": items}));
    assert_eq!(app.mock.calls(Api::Shipping).len(), 1, "no call for the declined order");
    let paid = kafka_probe::read_all(&app.bootstrap, app.settings.topics.orders_paid(), 1, WAIT).await.expect("paid");
    assert_eq!(paid.len(), 1, "one order.paid event");
    let event: Value = serde_json::from_slice(paid[0].value.as_deref().unwrap_or_default()).expect("CloudEvent");
    assert_eq!(event["type"], "order.paid");
    assert!(event["data"]["charge_id"].as_str().is_some(), "the charge id: {event}");

    assert_eq!(releases.len(), 1);
    assert!(releases[0].idempotency_key.starts_with("inventory-release:"), "{}", releases[0].idempotency_key);
    assert_eq!(app.mock.stats(Api::InventoryRelease).effects, 1, "exactly one release");
    assert_eq!(app.mock.stats(Api::Payment).declines, 1);
    let topic = app.settings.topics.payment_failed();
    let failed = kafka_probe::read_all(&app.bootstrap, topic, 1, WAIT).await.expect("payment-failed readable");
    assert_eq!(failed.len(), 1, "one order.payment_failed event");
    assert_eq!(failed[0].key.as_deref(), Some(declined_id.as_bytes()), "keyed by order id");
    let event: Value = serde_json::from_slice(failed[0].value.as_deref().unwrap_or_default()).expect("CloudEvent");
    assert_eq!(event["type"], "order.payment_failed");
    assert_eq!(event["data"]["order_id"], declined_id.as_str());
    assert_eq!(event["data"]["reason"], "insufficient_funds");
    let payment_dlq = dlq_topic(app.settings.topics.orders_created(), &app.settings.kafka.group_id("payment"));
    assert_eq!(
        kafka_probe::record_count(&app.bootstrap, &payment_dlq).await.expect("count"),
        0,
        "a decline is no failure"
    );

    // What the producer and the payment consumer published matches the schemas of its types
    // (schemas/events/<type>.json), as an independent validator judges it.
    let topic = app.settings.topics.orders_created();
    let created = kafka_probe::read_all(&app.bootstrap, topic, 2, WAIT).await.expect("orders readable");
    let events: Vec<Value> = created
        .iter()
        .chain(&paid)
        .chain(&failed)
        .map(|r| serde_json::from_slice(r.value.as_deref().unwrap_or_default()).expect("a CloudEvent"))
        .collect();
    let data: Vec<(&str, &Value)> = events.iter().map(|e| (e["type"].as_str().expect("a type"), &e["data"])).collect();
    let types: Vec<&str> = data.iter().map(|(t, _)| *t).collect();
    assert_eq!(types, ["order.created", "order.created", "order.paid", "order.payment_failed"]);
    for (event, verdict) in events.iter().zip(judge_event_data(&data)) {
        assert!(verdict.valid, "{event} does not match its schema: {:?}", verdict.errors);
    }
    // Their record headers are those docs/asyncapi.yaml declares for courier's events.
    let (required, declared) = super::asyncapi::event_headers();
    for record in created.iter().chain(&paid).chain(&failed) {
        let names: BTreeSet<String> =
            record.headers.iter().map(|(name, _)| String::from_utf8_lossy(name).into_owned()).collect();
        assert!(required.is_subset(&names), "{names:?} lacks some of {required:?}");
        assert!(names.is_subset(&declared), "{names:?} has headers docs/asyncapi.yaml does not declare");
    }
    // The schemas are strict: an order.created without its total, or with a member they do not describe, fails.
    let mut changed = events[1]["data"].clone();
    changed.as_object_mut().expect("an object").remove("total");
    changed["customer"]["vip"] = json!(true);
    let verdict = judge_event_data(&[("order.created", &changed)]).remove(0);
    let mut pointers: Vec<&str> = verdict.errors.iter().map(|e| e.pointer.as_str()).collect();
    pointers.sort_unstable();
    assert_eq!((verdict.valid, pointers), (false, vec!["", "/customer"]), "{:?}", verdict.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_that_arrives_before_its_reservation_still_releases_it() {
    let app = spawn_app().await;
    // The declined order's reservation is refused (503) until the release has been tried: the release
    // reaches the API first and finds nothing to release yet.
    app.mock.set_faults(
        Api::Inventory,
        Faults { fail_body_contains: Some("SKU-SLOW".into()), fail_body_status: 503, ..Faults::default() },
    );
    let declined = json!({"customer": {"id": "c-broke", "email": "broke@example.com"},
                          "items": [{"sku": "SKU-SLOW", "quantity": 1, "unit_price": 1313}], "currency": "EUR"});
    let ids = post_all(&app, &[declined, order(1, false)]).await;
    let (declined_id, _) = &ids[0];
    let consumers = start_all(&app, &[("COURIER__CONSUMER__RETRY_MAX_ATTEMPTS", "1000")]);
    let refused = |calls: &[mock_apis::Call]| calls.iter().any(|c| c.status == 404);
    let mut seen = 1;
    loop {
        let calls = app.mock.wait_for_calls(Api::InventoryRelease, seen, WAIT).await.expect("the release is tried");
        if refused(&calls) {
            break;
        }
        seen = calls.len() + 1;
    }
    app.mock.set_faults(Api::Inventory, Faults::default());
    let releases = app.mock.wait_for_effects(Api::InventoryRelease, 1, WAIT).await.expect("released in the end");
    app.mock.wait_for_effects(Api::Inventory, 2, WAIT).await.expect("both reserved");
    stop_all(consumers).await;
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].body["order_id"], declined_id.as_str());
    let reservations = effects_by_order(&app, Api::Inventory, "order_id");
    assert_eq!(reservations.get(declined_id), Some(&1), "reserved once, late");
    assert_eq!(app.mock.stats(Api::InventoryRelease).effects, 1, "and released once: the stock is not kept");
    let dlq = dlq_topic(app.settings.topics.payment_failed(), &app.settings.kafka.group_id("inventory"));
    assert_eq!(kafka_probe::record_count(&app.bootstrap, &dlq).await.expect("count"), 0, "no release dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_sms_outage_delays_no_email_and_every_sms_arrives_once_after_it() {
    let app = spawn_app().await;
    app.mock.set_faults(Api::Sms, Faults { error_rate: 1.0, ..Faults::default() });
    // Default attempts: the first SMS events' own calls spend attempts until enough events failed to open the
    // breaker (a lone event's failures are its own); from then on they wait without spending any.
    let settings = app.settings_with(&[
        ("COURIER__APIS__SMS__BREAKER_MINIMUM_CALLS", "3"),
        ("COURIER__APIS__SMS__BREAKER_COOLDOWN_MS", "500"),
    ]);
    let notification = app.start(registry::NOTIFICATION, &settings);
    let orders: Vec<Value> = (0..30).map(|i| order(i, true)).collect();
    let n = post_all(&app, &orders).await.len();
    app.mock.wait_for_effects(Api::Email, n, WAIT).await.expect("every e-mail while SMS is down");
    assert_eq!(app.mock.stats(Api::Sms).effects, 0, "no SMS got through the outage");
    // Without the breaker, each of the n events would make up to 10 calls meanwhile.
    let calls = app.mock.stats(Api::Sms).calls;
    assert!(calls < 2 * n as u64, "the open breaker kept calls away from the SMS API: {calls} calls");

    app.mock.set_faults(Api::Sms, Faults::default());
    app.mock.wait_for_effects(Api::Sms, n, WAIT).await.expect("every SMS after recovery");
    notification.stop().await.expect("stops");
    let email = app.mock.stats(Api::Email);
    assert_eq!((email.effects, email.calls), (n as u64, n as u64), "each e-mail sent once, never re-sent");
    assert_eq!(app.mock.stats(Api::Sms).effects as usize, n, "each SMS exactly once");
    let dlq = dlq_topic(app.settings.topics.orders_created(), &app.settings.kafka.group_id("notification"));
    assert_eq!(kafka_probe::record_count(&app.bootstrap, &dlq).await.expect("count"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_sku_dead_letters_the_reservation_only() {
    let app = spawn_app().await;
    let unknown = json!({"customer": {"id": "c-1", "email": "ada@example.com"},
                         "items": [{"sku": "UNKNOWN-42", "quantity": 1, "unit_price": 500}], "currency": "EUR"});
    let consumers = start_all(&app, &[]);
    let ids = post_all(&app, &[unknown, order(1, false)]).await;
    let (unknown_id, _) = &ids[0];
    let dlq = dlq_topic(app.settings.topics.orders_created(), &app.settings.kafka.group_id("inventory"));
    let letters = kafka_probe::read_all(&app.bootstrap, &dlq, 1, WAIT).await.expect("inventory DLQ readable");
    app.mock.wait_for_effects(Api::Payment, 2, WAIT).await.expect("both orders charged");
    app.mock.wait_for_effects(Api::Email, 2, WAIT).await.expect("both orders confirmed");
    app.mock.wait_for_effects(Api::Inventory, 1, WAIT).await.expect("the other order reserved");
    stop_all(consumers).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].key.as_deref(), Some(unknown_id.as_bytes()));
    assert_eq!(letters[0].header("courier.dlq.http.status").as_deref(), Some("409"));
    assert_eq!(letters[0].header("courier.dlq.consumer").as_deref(), Some("inventory"));
    assert_eq!(effects_by_order(&app, Api::Payment, "order_id").get(unknown_id), Some(&1), "payment unaffected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_consumer_killed_mid_stream_and_restarted_keeps_effects_exactly_once() {
    let app = spawn_app().await;
    for api in [Api::Inventory, Api::Payment, Api::Email, Api::Sms] {
        app.mock.set_faults(api, Faults { latency_ms: 20, latency_jitter_ms: 20, ..Faults::default() });
    }
    let orders: Vec<Value> = (0..150).map(|i| order(i, true)).collect();
    let n = post_all(&app, &orders).await.len();
    let overrides = [("COURIER__CONSUMER__MAX_IN_FLIGHT", "16")];
    let first = start_all(&app, &overrides);
    app.mock.wait_for_effects(Api::Inventory, 40, WAIT).await.expect("progress");
    for consumer in first {
        consumer.abort();
    }
    let done = app.mock.stats(Api::Inventory).effects as usize;
    assert!(done < n, "the kill must come mid-stream ({done} of {n})");
    let second = start_all(&app, &overrides);
    for api in [Api::Inventory, Api::Payment, Api::Email, Api::Sms] {
        app.mock.wait_for_effects(api, n, WAIT).await.unwrap_or_else(|e| panic!("{api}: {e}"));
    }
    stop_all(second).await;
    for api in [Api::Inventory, Api::Payment, Api::Email, Api::Sms] {
        let stats = app.mock.stats(api);
        assert_eq!(stats.effects as usize, n, "{api}: exactly one effect per order");
        println!("{api}: {} effects, {} duplicate calls absorbed", stats.effects, stats.duplicates);
    }
}
