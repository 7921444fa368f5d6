//! Orders travel producer → broker → inventory consumer → inventory API, exactly one effect per order.

use courier_consumers::inventory::Inventory;
use courier_tests::WAIT;
use std::collections::{HashMap, HashSet};

use courier_tests::app::sample_order;
use courier_tests::spawn_app;
use mock_apis::{Api, Faults};
use serde_json::Value;

/// What the producer answered for one order.
struct Sent {
    event_id: String,
    body: Value,
}

async fn send_orders(app: &courier_tests::TestApp, n: usize) -> HashMap<String, Sent> {
    let mut sent = HashMap::new();
    for i in 0..n {
        let body = sample_order(i);
        let response = app.post_order(&body, None).await;
        assert_eq!(response.status(), 202, "order {i} not accepted");
        let answer: Value = response.json().await.expect("json answer");
        let order_id = answer["order_id"].as_str().expect("order_id").to_owned();
        let event_id = answer["event_id"].as_str().expect("event_id").to_owned();
        assert!(answer["partition"].as_i64().is_some() && answer["offset"].as_i64().is_some(), "{answer}");
        sent.insert(order_id, Sent { event_id, body });
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_valid_order_is_reserved_once_with_its_items() {
    let app = spawn_app().await;
    let consumer = app.consumer(Inventory).start();
    let sent = send_orders(&app, 25).await;

    let effects = app.mock.wait_for_effects(Api::Inventory, sent.len(), WAIT).await.expect("all reservations arrive");
    let mut seen = HashSet::new();
    for effect in &effects {
        let order_id = effect.body["order_id"].as_str().expect("order_id in reservation");
        let order = sent.get(order_id).unwrap_or_else(|| panic!("reservation for unknown order {order_id}"));
        assert!(seen.insert(order_id.to_owned()), "order {order_id} reserved twice");
        assert_eq!(effect.idempotency_key, format!("inventory:{}", order.event_id));
        let expected: Vec<(String, u64)> = order.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| (i["sku"].as_str().expect("sku").to_owned(), i["quantity"].as_u64().expect("quantity")))
            .collect();
        let reserved: Vec<(String, u64)> = effect.body["items"]
            .as_array()
            .expect("items in reservation")
            .iter()
            .map(|i| (i["sku"].as_str().expect("sku").to_owned(), i["quantity"].as_u64().expect("quantity")))
            .collect();
        assert_eq!(reserved, expected, "items of order {order_id}");
        let traceparent = effect.traceparent.as_deref().expect("traceparent sent downstream");
        assert!(courier::telemetry::propagation::trace_id_of(traceparent).is_some(), "{traceparent}");
    }
    assert_eq!(seen.len(), sent.len());
    assert_eq!(app.mock.stats(Api::Inventory).effects, sent.len() as u64);
    consumer.stop().await.expect("consumer stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_gives_the_same_ids_and_one_effect() {
    let app = spawn_app().await;
    let body = sample_order(1);
    let first = app.post_order(&body, Some("checkout-42")).await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");
    let second = app.post_order(&body, Some("checkout-42")).await;
    assert_eq!(second.status(), 202);
    assert_eq!(second.headers().get("idempotent-replayed").map(|v| v.as_bytes()), Some(&b"true"[..]));
    let second: Value = second.json().await.expect("json");
    assert_eq!(first, second, "a retried request must get the same order id, event id and position");

    // The same key with another body is refused, and publishes nothing.
    let conflict = app.post_order(&sample_order(2), Some("checkout-42")).await;
    assert_eq!(conflict.status(), 422);

    assert_eq!(app.orders_on_topic().await, 1, "the order is published once");
    let consumer = app.consumer(Inventory).start();
    let effects = app.mock.wait_for_effects(Api::Inventory, 1, WAIT).await.expect("reservation arrives");
    assert_eq!(effects[0].body["order_id"], first["order_id"]);
    consumer.stop().await.expect("consumer stops cleanly");
    assert_eq!(app.mock.stats(Api::Inventory).effects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_stopped_mid_stream_and_restarted_loses_nothing() {
    let app = spawn_app().await;
    app.mock.set_faults(Api::Inventory, Faults { latency_ms: 20, ..Faults::default() });
    let sent = send_orders(&app, 80).await;

    // A small in-flight bound keeps most orders unstarted when the stop comes.
    let settings = app.settings_with(&[("COURIER__CONSUMER__MAX_IN_FLIGHT", "8")]);
    let first = app.consumer(Inventory).settings(&settings).start();
    app.mock.wait_for_effects(Api::Inventory, 20, WAIT).await.expect("the first consumer makes progress");
    first.stop().await.expect("first consumer stops cleanly");
    let after_stop = app.mock.stats(Api::Inventory).effects;
    assert!(after_stop < sent.len() as u64, "the stop must happen mid-stream ({after_stop} of {})", sent.len());

    let second = app.consumer(Inventory).start();
    let effects = app.mock.wait_for_effects(Api::Inventory, sent.len(), WAIT).await.expect("every order arrives");
    second.stop().await.expect("second consumer stops cleanly");

    let reserved: HashSet<&str> = effects.iter().filter_map(|e| e.body["order_id"].as_str()).collect();
    let expected: HashSet<&str> = sent.keys().map(String::as_str).collect();
    assert_eq!(reserved, expected, "every order has its reservation, none lost");
    assert_eq!(app.mock.stats(Api::Inventory).effects, sent.len() as u64, "one effect per order");
}
