//! Running a consumer. A coded consumer implements [`Consumer`]: its name, what it reads and writes, how it is
//! built from settings, and its domain mapping (`handle`); it is a [`Handler`] by that alone. [`run`] runs one
//! as its binary does; a [`Runner`] is the same with what a test or a tool changes (the [`Health`] it reports
//! to, its failure route, a handler built by hand, such as a `forward` route whose name comes from settings).
//!
//! A run serves `/healthz`, `/readyz` and `/metrics` on `consumer.health_listen`, waits for the cluster,
//! creates the topics (or, with `topics.create = false`, waits until every topic it reads and writes, dead-letter
//! topics included, exists), and then one thread polls Kafka and feeds the dispatcher while event tasks run on the
//! tokio runtime:
//!
//! * `runtime`: the wiring of one consumer's parts (worker, dispatcher, rdkafka consumer, poll thread);
//! * `poll_loop`: the poll thread: records in, pause/resume, commits, shutdown;
//! * `kafka_context`: librdkafka's callbacks: rebalances, statistics (lag), errors.

use std::sync::Arc;

use rdkafka::error::KafkaError;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::batch::Batching;
use super::dlq::DeadLetterRoute;
use super::failure::{FailureRoute, LogFailureRoute};
use super::handler::{Handler, Incoming, Outcome, each_on_its_own};
pub use super::poll_loop::RECOMMIT_EVERY;
use super::runtime::{consume, ensure_topics, report_readiness, wait_for_cluster, wait_for_topics};
use crate::health::{self, Health};
use crate::settings::Settings;
use crate::telemetry::metrics;

/// A consumer: its name, what it reads and writes, how it is built, and its domain mapping (`handle`, and
/// `channels` when an event needs several deliveries; see [`Handler`], which every `Consumer` is). [`run`] does
/// the rest (retries, breaker, dead letters, commits, health, metrics, shutdown).
pub trait Consumer: Send + Sync + Sized + 'static {
    /// Its name: its consumer group (after `kafka.group_id_prefix`), the prefix of its idempotency keys, its
    /// metrics' `consumer` label, and the consumer its dead letters name.
    const NAME: &'static str;

    /// What it reads (and publishes, when it does).
    fn spec(settings: &Settings) -> ConsumerSpec;

    /// Builds it from `settings`; its API clients report to `health`.
    fn build(settings: &Settings, health: &Health) -> Result<Self, BuildError>;

    /// The channels `incoming` needs (see [`Handler::channels`]); none by default: one unnamed delivery.
    fn channels(&self, _incoming: &Incoming) -> Vec<&'static str> {
        Vec::new()
    }

    /// Handles one attempt at delivering `incoming` on `channel` (see [`Handler::handle`]).
    fn handle(&self, incoming: &Incoming, channel: Option<&'static str>) -> impl Future<Output = Outcome> + Send;

    /// How it batches its attempts (see [`Handler::batching`]); none by default.
    fn batching(&self) -> Option<Batching> {
        None
    }

    /// Handles one attempt at each event of `batch` in one call (see [`Handler::handle_batch`]); by default,
    /// each on its own.
    fn handle_batch(
        &self,
        batch: &[Incoming],
        channel: Option<&'static str>,
    ) -> impl Future<Output = Vec<Outcome>> + Send {
        each_on_its_own(batch, move |incoming| Consumer::handle(self, incoming, channel))
    }
}

impl<C: Consumer> Handler for C {
    fn name(&self) -> &str {
        C::NAME
    }

    fn channels(&self, incoming: &Incoming) -> Vec<&'static str> {
        Consumer::channels(self, incoming)
    }

    fn handle(&self, incoming: &Incoming, channel: Option<&'static str>) -> impl Future<Output = Outcome> + Send {
        Consumer::handle(self, incoming, channel)
    }

    fn batching(&self) -> Option<Batching> {
        Consumer::batching(self)
    }

    fn handle_batch(
        &self,
        batch: &[Incoming],
        channel: Option<&'static str>,
    ) -> impl Future<Output = Vec<Outcome>> + Send {
        Consumer::handle_batch(self, batch, channel)
    }
}

/// Why a consumer could not be built (an API not configured, a certificate that does not load, …).
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// Runs consumer `C` until `shutdown` is cancelled, as its binary does.
pub async fn run<C: Consumer>(settings: &Settings, shutdown: CancellationToken) -> Result<(), RunError> {
    Runner::new(settings, C::spec(settings)).run(|health| C::build(settings, health), shutdown).await
}

/// What a consumer reads and writes.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Consumer group id.
    pub group: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Topics it publishes to: created at start-up with those it reads (`topics.create`).
    pub publishes: Vec<String>,
}

impl ConsumerSpec {
    /// Consumer `name` (its group: `kafka.group_id_prefix` + `name`) reading `topics`, publishing nothing.
    pub fn reads(settings: &Settings, name: &str, topics: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        let topics = topics.into_iter().map(|t| t.as_ref().to_owned()).collect();
        Self { group: settings.kafka.group_id(name), topics, publishes: Vec::new() }
    }

    /// The same, publishing to `topics` too.
    #[must_use]
    pub fn publishing(mut self, topics: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        self.publishes = topics.into_iter().map(|t| t.as_ref().to_owned()).collect();
        self
    }
}

/// Why a consumer could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The Kafka consumer could not be created (a bad client setting).
    #[error("cannot create the Kafka consumer: {0}")]
    Create(#[source] KafkaError),
    /// The subscription was refused.
    #[error("cannot subscribe to {topics:?}: {source}")]
    Subscribe {
        /// The topics.
        topics: Vec<String>,
        /// The client's error.
        source: KafkaError,
    },
    /// Topics could not be created at start-up.
    #[error("cannot create topics {topics:?}: {source}")]
    Topics {
        /// The topics.
        topics: Vec<String>,
        /// The client's error.
        source: KafkaError,
    },
    /// The poll thread could not be started or died.
    #[error("the poll thread failed: {0}")]
    Thread(String),
    /// The dead-letter topics or producer could not be set up.
    #[error("cannot set up dead-lettering: {0}")]
    DeadLetter(#[source] KafkaError),
    /// The handler could not be built (e.g. an API client).
    #[error("cannot build the handler: {0}")]
    Handler(String),
    /// The health server could not listen (`consumer.health_listen`).
    #[error("cannot listen on consumer.health_listen = {0}")]
    Health(String),
}

/// Runs a consumer over `spec` with what a test or tool changes; [`run`] is `Runner::new(…).run(…)`.
pub struct Runner<'s, R = LogFailureRoute> {
    /// The settings it runs with.
    settings: &'s Settings,
    /// What it reads and writes.
    spec: ConsumerSpec,
    /// Where its problems are reported: a new [`Health`] unless given.
    health: Option<Health>,
    /// Where undeliverable events go: by `dlq.enabled` (the dead-letter topic, or the log) unless given.
    route: Option<R>,
    /// Whether the run serves `/healthz`, `/readyz` and `/metrics` on `consumer.health_listen` itself.
    serves_health: bool,
}

impl<'s> Runner<'s> {
    /// A run of a consumer over `spec` with `settings`.
    pub fn new(settings: &'s Settings, spec: ConsumerSpec) -> Self {
        Self { settings, spec, health: None, route: None, serves_health: true }
    }
}

impl<'s, R: FailureRoute> Runner<'s, R> {
    /// Reports problems (open breakers, the dead-letter guard, the cluster) to `health`, which the caller
    /// can watch, instead of a [`Health`] of its own.
    pub fn health(mut self, health: &Health) -> Self {
        self.health = Some(health.clone());
        self
    }

    /// Leaves serving the health to the caller: several consumers of one process (the `forward` routes)
    /// share one [`Health`] and one server.
    pub fn without_health_server(mut self) -> Self {
        self.serves_health = false;
        self
    }

    /// Hands undeliverable events to `route` instead of the dead-letter topic (or the log).
    pub fn failure_route<R2: FailureRoute>(self, route: R2) -> Runner<'s, R2> {
        let Self { settings, spec, health, serves_health, .. } = self;
        Runner { settings, spec, health, route: Some(route), serves_health }
    }

    /// Builds the handler with `make_handler` and runs it until `shutdown` is cancelled: the health server on
    /// `consumer.health_listen`, then, once the cluster answers, the topics and the consumer itself.
    pub async fn run<H, E>(
        self,
        make_handler: impl FnOnce(&Health) -> Result<H, E>,
        shutdown: CancellationToken,
    ) -> Result<(), RunError>
    where
        H: Handler,
        E: std::fmt::Display,
    {
        let Self { settings, spec, health, route, serves_health } = self;
        let health = health.unwrap_or_default();
        let handler = make_handler(&health).map_err(|e| RunError::Handler(e.to_string()))?;
        // The binary installed it already (`cli::start`); a consumer run by a test or the bench installs it here.
        metrics::install("consumer");
        let server = if serves_health { Some(serve_health(settings, &health, &shutdown).await?) } else { None };
        let readiness = tokio::spawn(report_readiness(health.clone(), Arc::from(handler.name())));
        let result = async {
            if !wait_for_cluster(settings, &health, &shutdown).await {
                return Ok(());
            }
            ensure_topics(settings, &spec).await?;
            let dead_letters = route.is_none() && settings.dlq.enabled;
            if !wait_for_topics(settings, &spec, dead_letters, &health, &shutdown).await {
                return Ok(());
            }
            match route {
                Some(route) => consume(settings, &spec, handler, route, &health, shutdown).await,
                None if settings.dlq.enabled => {
                    let route = DeadLetterRoute::new(settings, &spec.group, handler.name(), &spec.topics)
                        .await
                        .map_err(RunError::DeadLetter)?;
                    consume(settings, &spec, handler, route, &health, shutdown).await
                }
                None => consume(settings, &spec, handler, LogFailureRoute, &health, shutdown).await,
            }
        }
        .await;
        if let Some(server) = server {
            server.abort();
        }
        readiness.abort();
        result
    }
}

/// Serves `/healthz`, `/readyz` and `/metrics` for `health` on `consumer.health_listen` until `shutdown`.
pub async fn serve_health(
    settings: &Settings,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, RunError> {
    let listen = &settings.consumer.health_listen;
    let listener = TcpListener::bind(listen).await.map_err(|e| RunError::Health(format!("{listen}: {e}")))?;
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%address, "health server listening");
    Ok(tokio::spawn(health::serve(listener, health.clone(), shutdown.clone())))
}
