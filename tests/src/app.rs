//! `spawn_app()`: a complete courier environment for one test, in-process.
//!
//! The mock APIs and the producer listen on port 0; the settings point at them and at the shared test broker,
//! with a topic and a consumer-group prefix unique to the test and the short group timeouts Tansu needs
//! (Tansu's known defects). Consumers are started and stopped in-process, as their binaries run them (`courier::delivery::run`).

use std::collections::HashMap;
use std::sync::Once;

use courier::delivery::failure::FailureRoute;
use courier::delivery::{Consumer as _, Runner};
use courier::health::Health;
use courier::settings::{LogFormat, Settings, TelemetrySettings};
use courier_consumers::inventory::Inventory;
use courier_consumers::notification::Notification;
use courier_consumers::payment::Payment;
use mock_apis::{MockApis, MockApisConfig};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker;

/// One test's environment.
pub struct TestApp {
    /// The settings every service of this test uses.
    pub settings: Settings,
    /// The same settings as `COURIER__…` environment variables, for starting binaries.
    pub env: HashMap<String, String>,
    /// `http://127.0.0.1:<port>` of the producer.
    pub address: String,
    /// The downstream APIs.
    pub mock: MockApis,
    /// A client for talking to the producer.
    pub http: reqwest::Client,
    /// Bootstrap address of the test broker.
    pub bootstrap: String,
    /// Stops the producer.
    producer_stop: CancellationToken,
    /// The producer's server task.
    producer_task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The consumer binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Consumer {
    /// `inventory`.
    Inventory,
    /// `payment`.
    Payment,
    /// `notification`.
    Notification,
}

impl Consumer {
    /// All of them.
    pub const ALL: [Consumer; 3] = [Consumer::Inventory, Consumer::Payment, Consumer::Notification];

    /// The binary's name, which is also the consumer group's.
    pub fn binary(self) -> &'static str {
        match self {
            Consumer::Inventory => "inventory",
            Consumer::Payment => "payment",
            Consumer::Notification => "notification",
        }
    }
}

/// A consumer running in-process.
pub struct RunningConsumer {
    /// Cancelling it is the SIGTERM of an in-process consumer.
    stop: CancellationToken,
    /// The consumer's task.
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningConsumer {
    /// Stops the consumer as SIGTERM would (finish, commit, leave the group) and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await?
    }

    /// Kills the consumer without any shutdown: nothing is committed beyond what was committed already.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Spawns a consumer task that `run` drives until its token is cancelled.
fn spawn_consumer<F>(run: impl FnOnce(CancellationToken) -> F) -> RunningConsumer
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(stop.clone()));
    RunningConsumer { stop, task }
}

/// Installs courier's subscriber as the binaries do: spans carry the trace context (to Kafka records and HTTP
/// calls) whatever the log level; log lines are written only when `TEST_LOG` is set (`RUST_LOG` filters them).
pub fn init_test_log() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let log_level = if std::env::var_os("TEST_LOG").is_some() { "info" } else { "off" };
        let telemetry = TelemetrySettings {
            log_level: log_level.into(),
            log_format: LogFormat::Pretty,
            otlp_endpoint: String::new(),
            statistics_interval_ms: 0,
        };
        courier::telemetry::init(&telemetry, "courier-tests");
    });
}

/// Spawns mock APIs and the producer with test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Like [`spawn_app`], with extra `COURIER__…` settings layered over the test defaults.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let broker = broker::broker().await;
    spawn_app_on(&broker.bootstrap, overrides).await
}

/// Like [`spawn_app_with`], on the broker at `bootstrap` (a broker of the test's own, e.g. one requiring
/// logins).
pub async fn spawn_app_on(bootstrap: &str, overrides: &[(&str, &str)]) -> TestApp {
    init_test_log();
    let mock = MockApis::start(MockApisConfig::default()).await.expect("mock APIs start");
    let (settings, env) = test_settings(bootstrap, &mock, overrides);
    let app = courier_producer::startup::Application::build(&settings).await.expect("producer builds");
    let address = format!("http://{}", app.local_addr());
    let producer_stop = CancellationToken::new();
    let producer_task = tokio::spawn(app.run_until_stopped(producer_stop.clone()));
    TestApp {
        settings,
        env,
        address,
        mock,
        http: reqwest::Client::new(),
        bootstrap: bootstrap.to_owned(),
        producer_stop,
        producer_task: Some(producer_task),
    }
}

/// Test settings: the defaults, then the test's broker, unique names, short group timeouts and mock API URLs,
/// then `overrides`; also returned as environment variables.
pub fn test_settings(
    bootstrap: &str,
    mock: &MockApis,
    overrides: &[(&str, &str)],
) -> (Settings, HashMap<String, String>) {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let mut env: HashMap<String, String> = HashMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };
    set("COURIER__KAFKA__BOOTSTRAP_SERVERS", bootstrap.to_owned());
    set("COURIER__KAFKA__GROUP_ID_PREFIX", format!("t{}-", &unique[..12]));
    set("COURIER__KAFKA__SESSION_TIMEOUT_MS", "6000".into());
    set("COURIER__KAFKA__HEARTBEAT_INTERVAL_MS", "1500".into());
    set("COURIER__KAFKA__MAX_POLL_INTERVAL_MS", "15000".into());
    // Tansu 0.6.0 can leave a member with an empty assignment for good (RELIABILITY.md): rejoin after 15 s.
    set("COURIER__KAFKA__REJOIN_UNASSIGNED_AFTER_MS", "15000".into());
    // A short revoke: Tansu 0.6.0 can lose a member that rejoins late after a rebalance (RELIABILITY.md).
    set("COURIER__CONSUMER__REBALANCE_TIMEOUT_MS", "1000".into());
    set("COURIER__TOPICS__ORDERS_CREATED", format!("orders.created.t{}", &unique[..12]));
    set("COURIER__TOPICS__PAYMENT_FAILED", format!("orders.payment-failed.t{}", &unique[..12]));
    set("COURIER__PRODUCER__LISTEN", "127.0.0.1:0".into());
    set("COURIER__CONSUMER__HEALTH_LISTEN", "127.0.0.1:0".into());
    set("COURIER__CONSUMER__COMMIT_INTERVAL_MS", "200".into());
    set("COURIER__CONSUMER__RETRY_INITIAL_BACKOFF_MS", "50".into());
    set("COURIER__CONSUMER__RETRY_MAX_BACKOFF_MS", "2000".into());
    for api in ["inventory", "payment", "email", "sms"] {
        set(&format!("COURIER__APIS__{}__BASE_URL", api.to_uppercase()), mock.api_url(api));
    }
    for (k, v) in overrides {
        set(k, (*v).to_owned());
    }
    let settings = Settings::load_with_env(None, Some(env.clone())).expect("test settings are valid");
    (settings, env)
}

impl TestApp {
    /// `POST /v1/orders` with `body` (as JSON) and an optional `Idempotency-Key`.
    pub async fn post_order(&self, body: &Value, idempotency_key: Option<&str>) -> reqwest::Response {
        let mut request = self.http.post(format!("{}/v1/orders", self.address)).json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("producer answers")
    }

    /// Starts the inventory consumer in-process.
    pub fn start_inventory(&self) -> RunningConsumer {
        self.start_inventory_with(&self.settings)
    }

    /// Starts the inventory consumer in-process with other settings (e.g. another `max_in_flight`).
    pub fn start_inventory_with(&self, settings: &Settings) -> RunningConsumer {
        self.start(Consumer::Inventory, settings)
    }

    /// Starts `consumer` in-process, as its binary would (health server included), with `settings`.
    pub fn start(&self, consumer: Consumer, settings: &Settings) -> RunningConsumer {
        let settings = settings.clone();
        spawn_consumer(async move |token| {
            match consumer {
                Consumer::Inventory => courier::delivery::run::<Inventory>(&settings, token).await?,
                Consumer::Payment => courier::delivery::run::<Payment>(&settings, token).await?,
                Consumer::Notification => courier::delivery::run::<Notification>(&settings, token).await?,
            }
            Ok(())
        })
    }

    /// Starts the inventory handler in-process with `route` as its failure route; problems are reported to
    /// `health`.
    pub fn start_inventory_with_route<R: FailureRoute>(&self, route: R, health: &Health) -> RunningConsumer {
        let (settings, health) = (self.settings.clone(), health.clone());
        spawn_consumer(async move |token| {
            Runner::new(&settings, Inventory::spec(&settings))
                .health(&health)
                .failure_route(route)
                .run(|health| Inventory::build(&settings, health), token)
                .await?;
            Ok(())
        })
    }

    /// Starts the inventory handler in-process with the standard routes (dead-letter topic), reporting to
    /// `health`.
    pub fn start_inventory_reporting(&self, settings: &Settings, health: &Health) -> RunningConsumer {
        let (settings, health) = (settings.clone(), health.clone());
        spawn_consumer(async move |token| {
            Runner::new(&settings, Inventory::spec(&settings))
                .health(&health)
                .run(|health| Inventory::build(&settings, health), token)
                .await?;
            Ok(())
        })
    }

    /// These settings with `overrides` (`COURIER__…` names) applied on top.
    pub fn settings_with(&self, overrides: &[(&str, &str)]) -> Settings {
        let mut env = self.env.clone();
        for (k, v) in overrides {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Settings::load_with_env(None, Some(env)).expect("valid settings")
    }

    /// The number of records on the orders topic.
    pub async fn orders_on_topic(&self) -> i64 {
        crate::kafka_probe::record_count(&self.bootstrap, &self.settings.topics.orders_created)
            .await
            .expect("watermarks readable")
    }

    /// Stops the producer and the mock APIs.
    pub async fn shutdown(mut self) {
        self.producer_stop.cancel();
        if let Some(task) = self.producer_task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.producer_stop.cancel();
    }
}

/// A valid order; `i` varies the customer and items.
pub fn sample_order(i: usize) -> Value {
    json!({
        "customer": {"id": format!("c-{i}"), "email": format!("customer{i}@example.com"), "phone": "+15550100"},
        "items": [
            {"sku": format!("SKU-{}", i % 7), "quantity": 1 + i % 3, "unit_price": 1299},
            {"sku": "SKU-GIFT", "quantity": 1, "unit_price": 0}
        ],
        "currency": "EUR"
    })
}
