//! No personal data and no secret in logs: the whole order flow runs (retries and a dead letter included) with
//! every service's log captured at the level users run (info; courier's own crates at debug), and no line may
//! hold a customer's e-mail address or phone number or any configured secret; nor may a log line or a dead
//! letter hold the credentials or query string of an API's URL.

use courier_tests::WAIT;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use courier::delivery::dlq::dlq_topic;
use courier_consumers::order_topics::OrderTopics;
use courier_tests::app::{registry, spawn_app, spawn_app_with};
use courier_tests::kafka_probe::read_all;
use mock_apis::{Api, Faults};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

/// Every log line of the test process.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    /// Every line logged so far.
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("log buffer").clone()).expect("UTF-8 log")
    }
}

/// The log of the whole test process, captured from the first call on (the tests of this file share it).
fn captured_log() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            tracing_subscriber::fmt()
                .json()
                // The mock APIs stand for third parties, whose logs are not courier's: left out.
                .with_env_filter("info,courier=debug,courier_consumers=debug,courier_producer=debug,mock_apis=off")
                .with_writer(captured.clone())
                .init();
            captured
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_log_line_holds_a_recipient_or_a_secret() {
    let captured = captured_log();
    let api_key = "api-key-9f8e7d6c5b4a3210";
    let (email_token, sms_token) = ("email-token-5e3cr3t", "sms-token-5e3cr3t");
    let app = spawn_app_with(&[
        ("COURIER__PRODUCER__API_KEYS", api_key),
        ("COURIER__APIS__EMAIL__TOKEN", email_token),
        ("COURIER__APIS__SMS__TOKEN", sms_token),
    ])
    .await;
    // The first call of every e-mail and SMS fails (retries log their failures); one order's e-mail is refused
    // for good (a dead letter).
    app.mock.set_faults(Api::Sms, Faults { fail_first_per_key: 1, fail_first_status: 429, ..Faults::default() });
    let refused = "refused.customer@example.org";
    app.mock.set_faults(
        Api::Email,
        Faults {
            fail_first_per_key: 1,
            fail_body_contains: Some(refused.into()),
            fail_body_status: 422,
            ..Faults::default()
        },
    );
    let consumers: Vec<_> = registry::CONSUMERS.iter().map(|c| app.start(*c, &app.settings)).collect();
    let n = 8;
    let mut personal = Vec::new();
    for i in 0..n {
        let email = if i == 0 { refused.to_owned() } else { format!("jane.doe.{i}@example.net") };
        let phone = format!("+1555010{i:04}");
        let order = json!({
            "customer": {"id": format!("c-{i}"), "email": email, "phone": phone},
            "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 1299}],
            "currency": "EUR"
        });
        let response = app
            .http
            .post(format!("{}/v1/orders", app.address))
            .header("x-api-key", api_key)
            .json(&order)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 202);
        personal.extend([email, phone]);
    }
    // Events whose data does not match the schema of their type are refused without a word of their data in the
    // log.
    for (i, data) in [json!({"email": "jane.doe.signup@example.net"}), json!({"user_id": "u-2", "email": "+15550199"})]
        .into_iter()
        .enumerate()
    {
        let event = json!({"specversion": "1.0", "id": format!("reg-{i}"), "source": "/signup",
                           "type": "user.registered", "subject": format!("u-{i}"), "data": data});
        let response = app
            .http
            .post(format!("{}/v1/events", app.address))
            .header("x-api-key", api_key)
            .header("content-type", "application/cloudevents+json")
            .body(event.to_string())
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 422);
    }
    personal.extend(["jane.doe.signup@example.net".to_owned(), "+15550199".to_owned()]);
    app.mock.wait_for_effects(Api::Email, n - 1, WAIT).await.expect("e-mails");
    app.mock.wait_for_effects(Api::Sms, n, WAIT).await.expect("SMS");
    app.mock.wait_for_effects(Api::Payment, n, WAIT).await.expect("charges");
    // The refused e-mail's dead letter has landed (and been logged) before the consumers stop.
    let dlq = dlq_topic(app.settings.topics.orders_created(), &app.settings.kafka.group_id("notification"));
    let dead = read_all(&app.bootstrap, &dlq, 1, WAIT).await.expect("the dead-letter topic reads");
    assert_eq!(dead.len(), 1, "the refused e-mail is dead-lettered");
    for consumer in consumers {
        consumer.stop().await.expect("stops cleanly");
    }

    let log = captured.text();
    assert!(log.lines().count() > 50, "the flow was logged ({} lines)", log.lines().count());
    assert!(log.contains("order confirmation sent"), "the notifications were logged");
    assert!(log.contains("dead-lettered"), "the refused e-mail was dead-lettered and logged");
    let secrets = [api_key, email_token, sms_token];
    for needle in personal.iter().map(String::as_str).chain(secrets) {
        let hits: Vec<&str> = log.lines().filter(|line| line.contains(needle)).take(3).collect();
        assert!(hits.is_empty(), "{needle} is in the log:\n{}", hits.join("\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_log_line_or_dead_letter_holds_the_credentials_or_query_of_an_apis_url() {
    let captured = captured_log();
    let app = spawn_app().await;
    // A `forward` route to an API whose URL carries a user, a password and a token in its query string, where
    // nothing listens: every call fails to connect, and the event is dead-lettered after its attempts.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("address").port();
    let secrets = ["vault-user", "pw-S3CR3T", "SECRET-T0KEN"];
    let url = format!("http://vault-user:pw-S3CR3T@127.0.0.1:{closed}/hook?token=SECRET-T0KEN");
    let topic = app.settings.producer.events["users"].topic.clone();
    let settings = app.settings_with(&[
        ("COURIER__FORWARD__ROUTES__VAULT__TOPICS", &topic),
        ("COURIER__APIS__VAULT__BASE_URL", &url),
        ("COURIER__CONSUMER__RETRY_MAX_ATTEMPTS", "2"),
    ]);
    let forward = app.start_forward(&settings);
    let event = json!({
        "specversion": "1.0", "id": "vault-1", "source": "/signup", "type": "user.registered",
        "subject": "u-1", "data": {"user_id": "u-1", "email": "vault.user@example.com"}
    });
    let response = app.post_event("application/cloudevents+json", &[], event.to_string()).await;
    assert_eq!(response.status(), 202);
    let dlq = dlq_topic(&topic, &settings.kafka.group_id("vault"));
    let dead = read_all(&app.bootstrap, &dlq, 1, WAIT).await.expect("the dead-letter topic reads");
    forward.stop().await.expect("stops cleanly");

    assert_eq!(dead.len(), 1, "the event is dead-lettered");
    let letter = &dead[0];
    let header = |name: &str| letter.header(&format!("courier.dlq.{name}")).unwrap_or_default();
    assert_eq!(header("error.kind"), "connect");
    let endpoint = format!("POST http://127.0.0.1:{closed}/hook/");
    assert_eq!(header("endpoint"), endpoint);
    assert!(header("error.message").contains(&format!("127.0.0.1:{closed}/hook/")), "{}", header("error.message"));
    for (name, value) in &letter.headers {
        let (name, value) =
            (String::from_utf8_lossy(name), String::from_utf8_lossy(value.as_deref().unwrap_or_default()));
        assert!(secrets.iter().all(|s| !value.contains(s)), "the dead letter's header {name} holds a secret: {value}");
    }
    let log = captured.text();
    let route: Vec<&str> = log.lines().filter(|line| line.contains(&format!("127.0.0.1:{closed}"))).collect();
    assert!(route.len() >= 2, "the failed attempts were logged with their endpoint: {route:?}");
    for secret in secrets {
        let hits: Vec<&str> = log.lines().filter(|line| line.contains(secret)).take(3).collect();
        assert!(hits.is_empty(), "{secret} is in the log:\n{}", hits.join("\n"));
    }
}
