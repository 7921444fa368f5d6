//! `spawn_app()`: a complete courier environment for one test, in-process.
//!
//! The mock APIs and the producer listen on port 0; the settings point at them and at the shared test broker,
//! with a topic and a consumer-group prefix unique to the test and the short group timeouts Tansu needs
//! (Tansu's known defects). Consumers are started and stopped in-process, as their binaries run them (`courier::delivery::run`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Once;

use courier::delivery::Runner;
use courier::delivery::failure::{FailureRoute, LogFailureRoute};
use courier::health::Health;
use courier::settings::{LogFormat, Settings, TelemetrySettings};
use mock_apis::{MockApis, MockApisConfig};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker;
use courier_consumers::order_topics::OrderTopics;

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

/// A registered consumer (`courier_consumers::registry`): `registry::INVENTORY`, …, `registry::CONSUMERS`.
pub use courier_consumers::registry::{self, Registration as Consumer};

/// A consumer about to be started in-process ([`TestApp::consumer`]).
pub struct StartConsumer<C, R = LogFailureRoute> {
    /// The consumer.
    consumer: C,
    /// The settings it runs with.
    settings: Settings,
    /// Where it reports problems.
    health: Health,
    /// Its failure route, when not the standard one.
    route: Option<R>,
}

impl<C: courier::delivery::Consumer, R: FailureRoute> StartConsumer<C, R> {
    /// Runs it with `settings` (e.g. [`TestApp::settings_with`]).
    pub fn settings(mut self, settings: &Settings) -> Self {
        self.settings = settings.clone();
        self
    }

    /// Reports its problems (breakers, the dead-letter guard, its assignment) to `health`.
    pub fn health(mut self, health: &Health) -> Self {
        self.health = health.clone();
        self
    }

    /// Hands its undeliverable events to `route` instead of the dead-letter topic.
    pub fn failure_route<R2: FailureRoute>(self, route: R2) -> StartConsumer<C, R2> {
        let Self { consumer, settings, health, .. } = self;
        StartConsumer { consumer, settings, health, route: Some(route) }
    }

    /// Starts it.
    pub fn start(self) -> RunningConsumer {
        let Self { consumer, settings, health, route } = self;
        spawn_consumer(async move |token| {
            let runner = Runner::new(&settings).health(&health);
            match route {
                Some(route) => runner.failure_route(route).run(&consumer, token).await?,
                None => runner.run(&consumer, token).await?,
            }
            Ok(())
        })
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
            statistics_interval_ms: None,
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
    set("COURIER__TOPICS__ORDERS_PAID", format!("orders.paid.t{}", &unique[..12]));
    set("COURIER__PRODUCER__EVENTS__USERS__TOPIC", format!("users.registered.t{}", &unique[..12]));
    set("COURIER__PRODUCER__LISTEN", "127.0.0.1:0".into());
    set("COURIER__CONSUMER__HEALTH_LISTEN", "127.0.0.1:0".into());
    set("COURIER__CONSUMER__COMMIT_INTERVAL_MS", "200".into());
    set("COURIER__CONSUMER__RETRY_INITIAL_BACKOFF_MS", "50".into());
    set("COURIER__CONSUMER__RETRY_MAX_BACKOFF_MS", "2000".into());
    // Every API the mock serves under a base URL of its own: those of the registered consumers (a test checks
    // that it serves each, `tests/tests/e2e/registry.rs`) and of the forward example.
    for api in mock_apis::Api::ALL.into_iter().filter(|api| api.base_path() == format!("/{api}")) {
        set(&format!("COURIER__APIS__{}__BASE_URL", api.as_str().to_uppercase()), mock.api_url(api));
    }
    // A relative event schema path is read from the working directory: the workspace root for the scripts and
    // the image's directory in a container, `tests/` for a test, which names it from the root.
    let defaults = Settings::load_with_env(None, Some(HashMap::new())).expect("the default settings are valid");
    for (name, route) in
        defaults.producer.events.iter().filter(|(_, r)| !r.schema.is_empty() && Path::new(&r.schema).is_relative())
    {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(&route.schema);
        set(&format!("COURIER__PRODUCER__EVENTS__{}__SCHEMA", name.to_uppercase()), path.display().to_string());
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

    /// Starts `consumer` in-process, as its binary would (health server included), with `settings`.
    pub fn start(&self, consumer: Consumer, settings: &Settings) -> RunningConsumer {
        let settings = settings.clone();
        spawn_consumer(async move |token| Ok((consumer.run)(settings, token).await?))
    }

    /// Starts `consumer` in-process with what the test changes, e.g.
    /// `app.consumer(Inventory).settings(&s).health(&h).failure_route(route).start()`; by default with the
    /// app's settings, a health of its own and the standard failure route (the dead-letter topic).
    pub fn consumer<C: courier::delivery::Consumer>(&self, consumer: C) -> StartConsumer<C> {
        StartConsumer { consumer, settings: self.settings.clone(), health: Health::default(), route: None }
    }

    /// These settings with `overrides` (`COURIER__…` names) applied on top.
    pub fn settings_with(&self, overrides: &[(&str, &str)]) -> Settings {
        self.settings_from(None, overrides)
    }

    /// The settings of `file` (a path from the workspace root, e.g. `config/examples/…`), with this test's
    /// settings and `overrides` on top, as `--config FILE` would load them.
    pub fn settings_from(&self, file: Option<&str>, overrides: &[(&str, &str)]) -> Settings {
        let mut env = self.env.clone();
        for (k, v) in overrides {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let path = file.map(|f| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(f));
        Settings::load_with_env(path.as_deref(), Some(env)).expect("valid settings")
    }

    /// `POST /v1/events` with `body` as `content_type`, and `headers` (e.g. `ce-*` in binary mode).
    pub async fn post_event(
        &self,
        content_type: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request =
            self.http.post(format!("{}/v1/events", self.address)).header("content-type", content_type).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("producer answers")
    }

    /// `POST /v1/events` of `event` (a structured CloudEvent) in binary mode: its text attributes as `ce-*`
    /// headers, its `data` as an `application/json` body.
    pub async fn post_event_in_binary_mode(&self, event: &Value) -> reqwest::Response {
        let attributes = event.as_object().into_iter().flatten().filter(|(name, _)| *name != "data");
        let headers: Vec<(String, &str)> =
            attributes.filter_map(|(name, value)| Some((format!("ce-{name}"), value.as_str()?))).collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (name.as_str(), *value)).collect();
        self.post_event("application/json", &headers, event["data"].to_string()).await
    }

    /// Starts the `forward` consumer in-process (every route of `settings`), as its binary would.
    pub fn start_forward(&self, settings: &Settings) -> RunningConsumer {
        let settings = settings.clone();
        spawn_consumer(async move |token| Ok(courier_consumers::forward::run(&settings, token).await?))
    }

    /// Starts the one `forward` route `name` of `settings` in-process, reporting to `health` (its assignment,
    /// its problems).
    pub fn start_forward_route(&self, settings: &Settings, name: &str, health: &Health) -> RunningConsumer {
        let route = settings.forward.routes.get(name).expect("the route is configured");
        let forward = courier_consumers::forward::Forward::new(name, route);
        let (settings, health) = (settings.clone(), health.clone());
        spawn_consumer(async move |token| Ok(Runner::new(&settings).health(&health).run(&forward, token).await?))
    }

    /// The number of records on the orders topic.
    pub async fn orders_on_topic(&self) -> i64 {
        crate::kafka_probe::record_count(&self.bootstrap, self.settings.topics.orders_created())
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
