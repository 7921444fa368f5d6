//! Secured clusters, each a Tansu of the test's own (the shared test broker is plaintext):
//! * a SASL SCRAM-SHA-512 login (the broker started once without authentication to create the user, then again
//!   on the same storage with `--authentication`): the whole order flow runs with the right password; a wrong
//!   one is named at start-up and keeps every service not ready, without hanging;
//! * TLS and mutual TLS, through the test kit's TLS-terminating proxy in front of the broker (which advertises
//!   the proxy's address): the whole order flow runs; a client without its certificate, or trusting another CA,
//!   is told it is TLS that failed.

use courier_consumers::inventory::Inventory;
use courier_tests::WAIT;
use std::time::{Duration, Instant};

use courier::health::Health;
use courier::kafka::connectivity::{ClusterError, check_cluster};
use courier_tests::app::TestApp;
use courier_tests::app::{registry, sample_order, spawn_app_on};
use courier_tests::broker::{TansuOptions, TansuProcess};
use courier_tests::tls_proxy::{TestPki, TlsProxy};
use mock_apis::Api;

const USER: &str = "courier-svc";
const PASSWORD: &str = "correct horse battery staple";

fn scram(password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("COURIER__KAFKA__SECURITY_PROTOCOL", "sasl_plaintext".to_owned()),
        ("COURIER__KAFKA__SASL__MECHANISM", "SCRAM-SHA-512".to_owned()),
        ("COURIER__KAFKA__SASL__USERNAME", USER.to_owned()),
        ("COURIER__KAFKA__SASL__PASSWORD", password.to_owned()),
    ]
}

fn borrowed<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A Tansu that requires logins, with the SCRAM user, once it lets that user in.
async fn secured_broker() -> TansuProcess {
    let options = TansuOptions { scram_user: Some((USER.to_owned(), PASSWORD.to_owned())), ..Default::default() };
    let tansu = TansuProcess::start_with(&options).expect("tansu starts");
    let pairs = scram(PASSWORD);
    let mut env: std::collections::HashMap<String, String> =
        borrowed(&pairs).into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    env.insert("COURIER__KAFKA__BOOTSTRAP_SERVERS".into(), tansu.bootstrap.clone());
    let settings = courier::settings::Settings::load_with_env(None, Some(env)).expect("valid settings");
    let started = Instant::now();
    loop {
        match check_cluster(&settings.kafka, Duration::from_secs(5)).await {
            Ok(()) => return tansu,
            Err(error) if started.elapsed() > Duration::from_secs(60) => {
                let log = std::fs::read_to_string(tansu.log_path()).unwrap_or_default();
                panic!("the secured broker never let the user in: {error}\nbroker log:\n{log}");
            }
            // The broker is still starting (or still creating the user): a new check connects afresh.
            Err(_) => {}
        }
    }
}

/// Runs `n` orders through every consumer of `app` and checks one effect, from one call, per order and API.
async fn whole_flow(app: &TestApp) {
    let ready = app.http.get(format!("{}/readyz", app.address)).send().await.expect("answer");
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap_or_default());
    let consumers: Vec<_> = registry::CONSUMERS.iter().map(|c| app.start(*c, &app.settings)).collect();
    let n = 12;
    for i in 0..n {
        let response = app.post_order(&sample_order(i), None).await;
        assert_eq!(response.status(), 202, "{}", response.text().await.unwrap_or_default());
    }
    for api in [Api::Inventory, Api::Payment, Api::Email, Api::Sms] {
        app.mock.wait_for_effects(api, n, WAIT).await.unwrap_or_else(|e| panic!("{api}: {e}"));
    }
    for consumer in consumers {
        consumer.stop().await.expect("stops cleanly");
    }
    for api in [Api::Inventory, Api::Payment, Api::Email, Api::Sms] {
        let stats = app.mock.stats(api);
        assert_eq!(stats.effects as usize, n, "{api}: one effect per order");
        assert_eq!(app.mock.calls(api).len(), n, "{api}: one call per order (no retry was needed)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_order_flow_runs_through_a_broker_that_requires_a_scram_login() {
    let tansu = secured_broker().await;
    let pairs = scram(PASSWORD);
    let app = spawn_app_on(&tansu.bootstrap, &borrowed(&pairs)).await;
    whole_flow(&app).await;
}

/// A plaintext Tansu behind a TLS proxy (mutual TLS with `mutual`), advertising the proxy.
async fn broker_behind_tls(pki: &TestPki, mutual: bool) -> (TansuProcess, TlsProxy) {
    let mut proxy = TlsProxy::bind(pki, mutual).await.expect("proxy binds");
    let options = TansuOptions { advertised_port: Some(proxy.port), ..Default::default() };
    let tansu = TansuProcess::start_with(&options).expect("tansu starts");
    proxy.forward_to(&tansu.bootstrap);
    (tansu, proxy)
}

fn tls_settings(pki: &TestPki, client_cert: bool) -> Vec<(&'static str, String)> {
    let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    let mut pairs = vec![
        ("COURIER__KAFKA__SECURITY_PROTOCOL", "ssl".to_owned()),
        ("COURIER__KAFKA__TLS__CA_LOCATION", path(pki.ca_path())),
    ];
    if client_cert {
        pairs.push(("COURIER__KAFKA__TLS__CERTIFICATE_LOCATION", path(pki.client_cert_path())));
        pairs.push(("COURIER__KAFKA__TLS__KEY_LOCATION", path(pki.client_key_path())));
    }
    pairs
}

/// Checks the cluster until it answers (the broker behind the proxy may still be starting).
async fn wait_for_cluster(app: &TestApp) {
    let started = Instant::now();
    while let Err(error) = check_cluster(&app.settings.kafka, Duration::from_secs(5)).await {
        assert!(started.elapsed() < Duration::from_secs(60), "the broker never answered through TLS: {error}");
    }
}

/// The whole order flow through a broker behind TLS (mutual TLS with `mutual`); then a client is told it is TLS
/// that failed: without its certificate (mutual TLS), or trusting another CA (TLS).
async fn over_tls(mutual: bool) {
    let pki = TestPki::new().expect("certificates");
    let (_tansu, proxy) = broker_behind_tls(&pki, mutual).await;
    let bootstrap = format!("127.0.0.1:{}", proxy.port);
    let pairs = tls_settings(&pki, mutual);
    let app = spawn_app_on(&bootstrap, &borrowed(&pairs)).await;
    wait_for_cluster(&app).await;
    whole_flow(&app).await;

    let other = TestPki::new().expect("certificates");
    let pairs = if mutual { tls_settings(&pki, false) } else { tls_settings(&other, false) };
    let (refused, _) = courier_tests::app::test_settings(&bootstrap, &app.mock, &borrowed(&pairs));
    let check = check_cluster(&refused.kafka, Duration::from_secs(10)).await;
    assert!(matches!(check, Err(ClusterError::Tls(_))), "{check:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_order_flow_runs_over_tls_and_a_client_trusting_another_ca_is_refused() {
    over_tls(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_order_flow_runs_over_mutual_tls_and_a_client_without_its_certificate_is_refused() {
    over_tls(true).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_password_is_named_at_start_up_and_nothing_is_ready_or_accepted() {
    let tansu = secured_broker().await;
    let pairs = scram("not the password");
    let app = spawn_app_on(&tansu.bootstrap, &borrowed(&pairs)).await;

    let check = check_cluster(&app.settings.kafka, Duration::from_secs(10)).await;
    assert!(matches!(check, Err(ClusterError::Authentication(_))), "{check:?}");
    assert!(check.expect_err("refused").to_string().contains("kafka.sasl.password"));

    let ready = app.http.get(format!("{}/readyz", app.address)).send().await.expect("answer");
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.expect("JSON");
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("authentication failed"), "{body}");

    let order = app.post_order(&sample_order(1), None).await;
    assert_eq!(order.status(), 503, "an order is refused, never accepted and lost");

    let health = Health::default();
    let started = Instant::now();
    let consumer = app.consumer(Inventory).settings(&app.settings).health(&health).start();
    assert!(
        health.wait_for(WAIT, |problems| problems.iter().any(|(_, why)| why.contains("authentication failed"))).await,
        "the consumer says why it is not ready"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "named within seconds, not after a hang");
    assert!(!health.is_ready());
    consumer.stop().await.expect("a consumer waiting for the cluster stops cleanly");
    assert_eq!(app.mock.stats(Api::Inventory).effects, 0);
}
