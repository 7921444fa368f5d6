//! Calls to the APIs authenticate as each API's settings say, against mock APIs that refuse calls without the
//! credential they require (401): OAuth 2.0 client credentials (a token cached, fetched anew once after a
//! 401), a header of the API's choosing, HTTP basic, a bearer token; and mutual TLS to an API behind the test
//! kit's TLS proxy, with the API's own CA.

use courier_consumers::inventory::Inventory;
use courier_tests::WAIT;
use std::time::Duration;

use courier_tests::app::{registry, sample_order, spawn_app_with};
use courier_tests::produce::{order_event, order_record, produce};
use courier_tests::recording_route::RecordingRoute;
use courier_tests::tls_proxy::{TestPki, TlsProxy};
use mock_apis::{Api, Required};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_auth_mode_reaches_its_api_and_an_oauth2_token_is_cached_and_renewed_after_a_401() {
    // The token URL is the mock's own, known only once it runs: the inventory consumer gets it from its
    // settings, made after the start.
    let app = spawn_app_with(&[
        ("COURIER__APIS__PAYMENT__AUTH", "header"),
        ("COURIER__APIS__PAYMENT__AUTH_HEADER", "X-Api-Key"),
        ("COURIER__APIS__PAYMENT__AUTH_HEADER_VALUE", "pay-key-1"),
        ("COURIER__APIS__EMAIL__AUTH", "basic"),
        ("COURIER__APIS__EMAIL__USERNAME", "courier"),
        ("COURIER__APIS__EMAIL__PASSWORD", "mail-pass-1"),
        ("COURIER__APIS__SMS__TOKEN", "sms-token-1"),
    ])
    .await;
    app.mock.require(Api::Inventory, Required::OAuth2Token);
    app.mock.require(Api::Payment, Required::Header { name: "X-Api-Key".into(), value: "pay-key-1".into() });
    app.mock.require(Api::Email, Required::basic("courier", "mail-pass-1"));
    app.mock.require(Api::Sms, Required::bearer("sms-token-1"));
    app.mock.set_oauth2_client("courier-inventory", "inv-secret-1", Duration::from_secs(3600));
    let token_url = app.mock.oauth2_token_url();
    let inventory = app.settings_with(&[
        ("COURIER__APIS__INVENTORY__AUTH", "oauth2"),
        ("COURIER__APIS__INVENTORY__OAUTH2_TOKEN_URL", token_url.as_str()),
        ("COURIER__APIS__INVENTORY__OAUTH2_CLIENT_ID", "courier-inventory"),
        ("COURIER__APIS__INVENTORY__OAUTH2_CLIENT_SECRET", "inv-secret-1"),
    ]);
    let consumers = [
        app.start(registry::INVENTORY, &inventory),
        app.start(registry::PAYMENT, &app.settings),
        app.start(registry::NOTIFICATION, &app.settings),
    ];
    let n = 6;
    for i in 0..n {
        assert_eq!(app.post_order(&sample_order(i), None).await.status(), 202);
    }
    for api in [Api::Inventory, Api::Payment, Api::Email, Api::Sms] {
        app.mock.wait_for_effects(api, n, WAIT).await.unwrap_or_else(|e| panic!("{api}: {e}"));
        // A call enters the journal once answered, a moment after its effect: wait for the answers too.
        let calls = app.mock.wait_for_calls(api, n, WAIT).await.unwrap_or_else(|e| panic!("{api}: {e}"));
        assert_eq!(calls.len(), n, "{api}: one call per order");
        assert_eq!(app.mock.stats(api).unauthorized, 0, "{api}: every call carried its credential");
    }
    assert_eq!(app.mock.tokens_issued(), 1, "one token served every call");

    // The API stops accepting the token: the next call is refused once, a new token is fetched, the call is
    // made again at once and succeeds.
    app.mock.revoke_tokens();
    for i in n..n + 3 {
        assert_eq!(app.post_order(&sample_order(i), None).await.status(), 202);
        app.mock.wait_for_effects(Api::Inventory, i + 1, WAIT).await.expect("reserved with a new token");
    }
    for consumer in consumers {
        consumer.stop().await.expect("stops cleanly");
    }
    let stats = app.mock.stats(Api::Inventory);
    assert_eq!((stats.effects, stats.unauthorized), (n as u64 + 3, 1), "one refusal, then the new token");
    assert_eq!(app.mock.calls(Api::Inventory).len(), n + 3 + 1);
    assert_eq!(app.mock.tokens_issued(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_credential_is_refused_once_and_not_retried() {
    let app = spawn_app_with(&[
        ("COURIER__APIS__PAYMENT__AUTH", "header"),
        ("COURIER__APIS__PAYMENT__AUTH_HEADER", "X-Api-Key"),
        ("COURIER__APIS__PAYMENT__AUTH_HEADER_VALUE", "an-old-key"),
    ])
    .await;
    app.mock.require(Api::Payment, Required::Header { name: "X-Api-Key".into(), value: "the-new-key".into() });
    let payment = app.start(registry::PAYMENT, &app.settings);
    let n = 3;
    for i in 0..n {
        assert_eq!(app.post_order(&sample_order(i), None).await.status(), 202);
    }
    app.mock.wait_for_stats(Api::Payment, WAIT, |s| s.unauthorized == n as u64).await.expect("every call refused");
    payment.stop().await.expect("stops cleanly");
    let stats = app.mock.stats(Api::Payment);
    assert_eq!((stats.calls, stats.effects), (n as u64, 0), "a 401 is permanent: dead-lettered, not retried");
}

/// The inventory API behind a TLS proxy that requires a client certificate, and an app whose inventory API
/// is reached through it, with the client certificate when `client_cert`.
async fn inventory_behind_mutual_tls(pki: &TestPki, client_cert: bool) -> (courier_tests::TestApp, TlsProxy) {
    let mut proxy = TlsProxy::bind(pki, true).await.expect("proxy binds");
    let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    let base_url = format!("https://127.0.0.1:{}/inventory", proxy.port);
    let (ca, cert, key) = (path(pki.ca_path()), path(pki.client_cert_path()), path(pki.client_key_path()));
    let mut overrides = vec![
        ("COURIER__APIS__INVENTORY__BASE_URL", base_url.as_str()),
        ("COURIER__APIS__INVENTORY__TLS_CA_LOCATION", ca.as_str()),
        ("COURIER__CONSUMER__RETRY_MAX_ATTEMPTS", "2"),
    ];
    if client_cert {
        overrides.push(("COURIER__APIS__INVENTORY__TLS_CERTIFICATE_LOCATION", cert.as_str()));
        overrides.push(("COURIER__APIS__INVENTORY__TLS_KEY_LOCATION", key.as_str()));
    }
    let app = spawn_app_with(&overrides).await;
    proxy.forward_to(&app.mock.local_addr().to_string());
    (app, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_api_behind_mutual_tls_with_its_own_ca_is_reached_with_the_client_certificate_only() {
    let pki = TestPki::new().expect("certificates");
    let (app, _proxy) = inventory_behind_mutual_tls(&pki, true).await;
    let records: Vec<_> = (0..5).map(|i| order_record(&order_event(&format!("tls-{i}"), "SKU-1"), None)).collect();
    produce(&app.settings, &records).await.expect("produced");
    let inventory = app.consumer(Inventory).start();
    app.mock.wait_for_effects(Api::Inventory, 5, WAIT).await.expect("reserved over mutual TLS");
    inventory.stop().await.expect("stops cleanly");
    assert_eq!(app.mock.calls(Api::Inventory).len(), 5);

    // Without the client certificate the handshake is refused: no call reaches the API, and the event ends on
    // the failure route as a transport failure.
    let (app, _proxy) = inventory_behind_mutual_tls(&pki, false).await;
    produce(&app.settings, &[order_record(&order_event("tls-anonymous", "SKU-1"), None)]).await.expect("produced");
    let route = RecordingRoute::default();
    let inventory = app.consumer(Inventory).failure_route(route.clone()).start();
    let routed = route.wait_for(1, WAIT).await.expect("the event is routed as a failure");
    inventory.stop().await.expect("stops cleanly");
    assert!(matches!(routed[0].kind, "connect" | "transport"), "{}", routed[0].kind);
    assert_eq!((routed[0].http_status, routed[0].attempts), (None, 2));
    assert_eq!(app.mock.stats(Api::Inventory).calls, 0, "no call reached the API");
}
