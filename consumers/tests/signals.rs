//! The `inventory` binary as an operator runs it: SIGTERM drains and exits 0, SIGKILL loses nothing; a
//! restart delivers the rest, with exactly one effect per event.

use std::process::Stdio;
use std::time::{Duration, Instant};

use courier_tests::produce::{order_event, order_record, produce};
use courier_tests::{TestApp, spawn_app};
use mock_apis::{Api, Faults};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(120);
const EVENTS: usize = 400;
const DRAIN_TIMEOUT_MS: u64 = 5000;

fn start_binary(app: &TestApp) -> Child {
    let log = if std::env::var_os("TEST_LOG").is_some() { Stdio::inherit() } else { Stdio::null() };
    Command::new(env!("CARGO_BIN_EXE_inventory"))
        .envs(&app.env)
        .env("COURIER__CONSUMER__MAX_IN_FLIGHT", "16")
        .env("COURIER__CONSUMER__DRAIN_TIMEOUT_MS", DRAIN_TIMEOUT_MS.to_string())
        .env("COURIER__TELEMETRY__LOG_FORMAT", "pretty")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("inventory binary starts")
}

async fn send_sigterm(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs");
    assert!(status.success());
}

async fn app_with_events() -> TestApp {
    let app = spawn_app().await;
    app.mock.set_faults(Api::Inventory, Faults { latency_ms: 30, latency_jitter_ms: 20, ..Faults::default() });
    let records: Vec<_> = (0..EVENTS).map(|k| order_record(&order_event(&format!("key-{k}"), "SEQ-0"), None)).collect();
    produce(&app.settings, &records).await.expect("produced");
    app
}

async fn finish_with_a_new_process(app: &TestApp) {
    let mut second = start_binary(app);
    app.mock.wait_for_effects(Api::Inventory, EVENTS, WAIT).await.expect("every event delivered");
    send_sigterm(&second).await;
    let status = tokio::time::timeout(WAIT, second.wait()).await.expect("exits").expect("status");
    assert!(status.success(), "{status}");
    let stats = app.mock.stats(Api::Inventory);
    assert_eq!(stats.effects as usize, EVENTS, "exactly one effect per event");
    println!("{} effects, {} duplicate calls absorbed by the idempotency key", stats.effects, stats.duplicates);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_exits_zero_and_a_restart_finishes_the_stream() {
    let app = app_with_events().await;
    let mut first = start_binary(&app);
    app.mock.wait_for_effects(Api::Inventory, 100, WAIT).await.expect("progress");
    let signalled = Instant::now();
    send_sigterm(&first).await;
    let status = tokio::time::timeout(WAIT, first.wait()).await.expect("exits").expect("status");
    let took = signalled.elapsed();
    assert!(status.success(), "SIGTERM must give exit 0, got {status}");
    // The drain timeout bounds the wait for running events; leaving the group adds a little.
    assert!(took < Duration::from_millis(DRAIN_TIMEOUT_MS + 3000), "exit took {took:?}");
    let done = app.mock.stats(Api::Inventory).effects as usize;
    assert!(done < EVENTS, "SIGTERM must come mid-stream ({done} of {EVENTS})");
    println!("SIGTERM → exit 0 in {took:?} with {done} of {EVENTS} delivered");
    finish_with_a_new_process(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing() {
    let app = app_with_events().await;
    let mut first = start_binary(&app);
    app.mock.wait_for_effects(Api::Inventory, 100, WAIT).await.expect("progress");
    first.kill().await.expect("SIGKILL");
    let done = app.mock.stats(Api::Inventory).effects as usize;
    assert!(done < EVENTS, "SIGKILL must come mid-stream ({done} of {EVENTS})");
    finish_with_a_new_process(&app).await;
}
