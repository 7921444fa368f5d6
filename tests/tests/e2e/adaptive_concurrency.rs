//! The adaptive concurrency limit of an API against a real broker and the mock APIs: after an idle period
//! the first wave into the API is small, a fast API has its full concurrency back within 2 s of a burst, and
//! an outage that starts with a burst meets a few calls before the breaker opens.

use std::collections::HashSet;
use std::time::Duration;

use courier_consumers::inventory::Inventory;
use courier_tests::WAIT;
use courier_tests::produce::{order_event, order_record, produce};
use courier_tests::{TestApp, spawn_app};
use mock_apis::{Api, Call, Faults};

/// The API's ceiling (`apis.inventory.max_in_flight`) in this test.
const CEILING: usize = 128;
/// The limit's restart value: `courier::downstream::concurrency::INITIAL_LIMIT`.
const RESTART: usize = 16;
/// The API's latency while it works.
const LATENCY_MS: u64 = 100;

/// Produces one event for each of `count` new keys named `<prefix>-<n>`.
async fn burst(app: &TestApp, prefix: &str, count: usize) {
    let records: Vec<_> =
        (0..count).map(|k| order_record(&order_event(&format!("{prefix}-{k}"), "SEQ-0"), None)).collect();
    produce(&app.settings, &records).await.expect("records produced");
}

/// The most calls the API was serving at once among calls that arrived in `[from, to)` (Unix ms).
fn peak_in_flight(calls: &[Call], from: u64, to: u64) -> usize {
    calls
        .iter()
        .filter(|c| (from..to).contains(&c.received_at_unix_ms))
        .map(|c| {
            let t = c.received_at_unix_ms;
            calls.iter().filter(|o| o.received_at_unix_ms <= t && o.answered_at_unix_ms > t).count()
        })
        .max()
        .unwrap_or(0)
}

/// The first call of a burst: the first one after the `before` calls of the journal.
async fn first_call_after(app: &TestApp, before: usize) -> u64 {
    let calls = app.mock.wait_for_calls(Api::Inventory, before + 1, WAIT).await.expect("the burst reaches the API");
    calls[before..].iter().map(|c| c.received_at_unix_ms).min().expect("a call")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_idle_the_first_wave_is_small_a_fast_api_regrows_and_an_outage_meets_few_calls() {
    let app = spawn_app().await;
    app.mock.set_faults(Api::Inventory, Faults { latency_ms: LATENCY_MS, ..Faults::default() });
    let settings = app.settings_with(&[
        ("COURIER__APIS__INVENTORY__MAX_IN_FLIGHT", &CEILING.to_string()),
        // 200 ms instead of the default 1 s, so that 2 s of quiet (ten periods) stand for a quiet minute (sixty):
        // both bring the limit down to its restart value.
        ("COURIER__APIS__INVENTORY__ADAPTIVE_IDLE_MS", "200"),
        // The breaker's window is shorter than the quiet period, as the default 10 s is shorter than a quiet
        // minute: the successes before it do not dilute the outage's failures.
        ("COURIER__APIS__INVENTORY__BREAKER_WINDOW_MS", "1000"),
        ("COURIER__APIS__INVENTORY__BREAKER_COOLDOWN_MS", "3000"),
    ]);
    let consumer = app.consumer(Inventory).settings(&settings).start();

    // A busy API: the limit reaches its ceiling.
    burst(&app, "warm", 1500).await;
    app.mock.wait_for_effects(Api::Inventory, 1500, WAIT).await.expect("warm-up delivered");
    let warm = peak_in_flight(&app.mock.calls(Api::Inventory), 0, u64::MAX);
    println!("warm-up: {warm} calls in flight at the API at most (ceiling {CEILING})");
    assert!(warm >= CEILING * 9 / 10, "the warm-up reaches the ceiling: {warm}");

    // The quiet period is what is tested: nothing to await.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = app.mock.calls(Api::Inventory).len();
    burst(&app, "fast", 1500).await;
    let start = first_call_after(&app, before).await;
    app.mock.wait_for_effects(Api::Inventory, 3000, WAIT).await.expect("the burst delivered");
    let calls = app.mock.calls(Api::Inventory);
    let first_wave = calls[before..].iter().filter(|c| c.received_at_unix_ms < start + LATENCY_MS).count();
    let within_2_s = peak_in_flight(&calls[before..], start, start + 2000);
    let regrown = (0..2000).step_by(50).find(|&ms| peak_in_flight(&calls[before..], start, start + ms) >= CEILING);
    println!(
        "after 2 s idle: {first_wave} calls in the first round trip, {within_2_s} in flight within 2 s (the \
         ceiling after {regrown:?} ms)"
    );
    assert!(first_wave <= RESTART, "the first wave after idle is the restart value at most: {first_wave}");
    assert!(within_2_s >= CEILING * 9 / 10, "back at the ceiling within 2 s of the burst: {within_2_s}");

    tokio::time::sleep(Duration::from_secs(2)).await;
    app.mock.set_faults(Api::Inventory, Faults { latency_ms: 10, error_rate: 1.0, ..Faults::default() });
    let before = app.mock.calls(Api::Inventory).len();
    burst(&app, "outage", 300).await;
    let start = first_call_after(&app, before).await;
    // Awaits a 65th call of the outage, which must not come within its first 5 s.
    let _ = app.mock.wait_for_calls(Api::Inventory, before + 65, Duration::from_secs(5)).await;
    let calls = app.mock.calls(Api::Inventory);
    let outage: Vec<_> = calls[before..].iter().filter(|c| c.received_at_unix_ms < start + 5000).collect();
    let keys: HashSet<_> = outage.iter().filter_map(|c| c.idempotency_key.as_deref()).collect();
    println!("outage after 2 s idle: {} calls ({} events) in its first 5 s", outage.len(), keys.len());
    assert!(outage.len() <= 64, "a burst of 300 into a dead API got {} calls in 5 s", outage.len());

    app.mock.set_faults(Api::Inventory, Faults::default());
    let effects = app.mock.wait_for_effects(Api::Inventory, 3300, WAIT).await.expect("delivered after recovery");
    consumer.stop().await.expect("stops cleanly");
    let keys: HashSet<_> = effects.iter().map(|e| e.idempotency_key.as_str()).collect();
    assert_eq!((effects.len(), keys.len()), (3300, 3300), "one effect per event");
}
