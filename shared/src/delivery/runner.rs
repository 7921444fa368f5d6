//! Running a consumer. [`run`] runs one as its binary does; a [`Runner`] is the same with what a test or a
//! tool changes (the [`Health`] it reports to, its failure route, whether it serves its own health, the
//! [`SchemaRegistry`] it shares with the process's other consumers), and
//! [`Runner::build`] builds the handler first, so that a program running several consumers (`forward`'s
//! routes) refuses to start before any of them runs.
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

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::consumer::{Consumer, ConsumerSpec};
use super::dlq::DeadLetterRoute;
use super::failure::{FailureRoute, LogFailureRoute};
use super::handler::Handler;
use super::runtime::{
    ConsumerParts, RunError, consume, ensure_topics, report_readiness, wait_for_cluster, wait_for_topics,
};
use crate::formats::Format;
use crate::health::{self, Health};
use crate::schema_registry::SchemaRegistry;
use crate::settings::Settings;
use crate::telemetry::metrics::{self, Label};

/// Runs `consumer` until `shutdown` is cancelled, as its binary does.
pub async fn run(consumer: &impl Consumer, settings: &Settings, shutdown: CancellationToken) -> Result<(), RunError> {
    Runner::new(settings).run(consumer, shutdown).await
}

/// Runs a consumer with what a test or tool changes; [`run`] is `Runner::new(settings).run(consumer, …)`.
pub struct Runner<'s, R = LogFailureRoute> {
    /// The settings it runs with.
    settings: &'s Settings,
    /// Where its problems are reported: a new [`Health`] unless given.
    health: Option<Health>,
    /// Where undeliverable events go: by `dlq.enabled` (the dead-letter topic, or the log) unless given.
    route: Option<R>,
    /// Whether the run serves `/healthz`, `/readyz` and `/metrics` on `consumer.health_listen` itself.
    serves_health: bool,
    /// The registry of a registry format's schemas: built from `[schema_registry]` when the format needs one,
    /// unless given.
    registry: Option<SchemaRegistry>,
}

impl<'s> Runner<'s> {
    /// A run of a consumer with `settings`.
    pub fn new(settings: &'s Settings) -> Self {
        Self { settings, health: None, route: None, serves_health: true, registry: None }
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
        let Self { settings, health, serves_health, registry, .. } = self;
        Runner { settings, health, route: Some(route), serves_health, registry }
    }

    /// Takes the schemas of a registry format from `registry` (one per process, shared by its consumers)
    /// instead of a registry of its own.
    pub fn schema_registry(mut self, registry: &SchemaRegistry) -> Self {
        self.registry = Some(registry.clone());
        self
    }

    /// Builds `consumer`'s handler (its API clients report to the run's [`Health`]), and the schema registry
    /// its format needs: a run ready to start. A registry format without `schema_registry.url` is refused here.
    pub fn build<C: Consumer>(self, consumer: &C) -> Result<Built<'s, C::Handler, R>, RunError> {
        let Self { settings, health, route, serves_health, registry } = self;
        let health = health.unwrap_or_default();
        let handler = consumer.build(settings, &health).map_err(|e| RunError::Handler(e.to_string()))?;
        let name = Label::from(consumer.name());
        let spec = consumer.spec(settings);
        let registry = match (spec.reading.format.schema_format(), registry) {
            (None, _) => None,
            (Some(_), Some(registry)) => Some(registry),
            (Some(_), None) => Some(registry_for(settings, consumer.name(), spec.reading.format)?),
        };
        Ok(Built { settings, name, spec, handler, health, route, serves_health, registry })
    }

    /// Builds `consumer`'s handler and runs it until `shutdown` is cancelled (see [`Built::run`]).
    pub async fn run<C: Consumer>(self, consumer: &C, shutdown: CancellationToken) -> Result<(), RunError> {
        self.build(consumer)?.run(shutdown).await
    }
}

/// A consumer whose handler is built, ready to run ([`Runner::build`]).
pub struct Built<'s, H, R> {
    /// The settings it runs with.
    settings: &'s Settings,
    /// The consumer's name.
    name: Label,
    /// What it reads and writes.
    spec: ConsumerSpec,
    /// Its handler.
    handler: H,
    /// Where its problems are reported.
    health: Health,
    /// Where undeliverable events go, when not by `dlq.enabled`.
    route: Option<R>,
    /// Whether the run serves `/healthz`, `/readyz` and `/metrics` itself.
    serves_health: bool,
    /// The registry its format's schemas come from, when it is a registry format.
    registry: Option<SchemaRegistry>,
}

impl<H: Handler, R: FailureRoute> Built<'_, H, R> {
    /// Runs the consumer until `shutdown` is cancelled: the health server on `consumer.health_listen`, then,
    /// once the cluster answers, the topics and the consumer itself.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RunError> {
        let Self { settings, name, spec, handler, health, route, serves_health, registry } = self;
        // The binary installed it already (`cli::start`); a consumer run by a test or the bench installs it here.
        metrics::install("consumer");
        let server = if serves_health { Some(serve_health(settings, &health, &shutdown).await?) } else { None };
        let readiness = tokio::spawn(report_readiness(health.clone(), Arc::clone(&name)));
        let result = async {
            if !wait_for_cluster(settings, &health, &shutdown).await {
                return Ok(());
            }
            ensure_topics(settings, &spec).await?;
            let dead_letters = route.is_none() && settings.dlq.enabled;
            if !wait_for_topics(settings, &spec, dead_letters, &health, &shutdown).await {
                return Ok(());
            }
            let parts = ConsumerParts { settings, spec: &spec, label: name, handler, registry, health: &health };
            match route {
                Some(route) => consume(parts, route, shutdown).await,
                None if settings.dlq.enabled => {
                    let route = DeadLetterRoute::new(settings, &spec.group, &parts.label, &spec.topics)
                        .await
                        .map_err(RunError::DeadLetter)?;
                    consume(parts, route, shutdown).await
                }
                None => consume(parts, LogFailureRoute, shutdown).await,
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

/// The schema registry of `[schema_registry]`, for consumer `consumer` reading `format`; an error names the
/// setting to change.
pub fn registry_for(settings: &Settings, consumer: &str, format: Format) -> Result<SchemaRegistry, RunError> {
    SchemaRegistry::new(&settings.schema_registry)
        .map_err(|e| RunError::Handler(format!("{consumer}: format {format} needs the schema registry: {e}")))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{BuildError, Incoming, Outcome};
    use crate::formats::Reading;

    /// A handler that does nothing.
    struct Nothing;

    impl Handler for Nothing {
        async fn handle(&self, _incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
            Outcome::Done
        }
    }

    /// A coded consumer of an Avro topic.
    struct AvroReader;

    impl Consumer for AvroReader {
        type Handler = Nothing;

        fn name(&self) -> &str {
            "avro-reader"
        }

        fn spec(&self, settings: &Settings) -> ConsumerSpec {
            ConsumerSpec::reads(settings, self.name(), ["users.avro"]).reading(Reading::of(Format::Avro))
        }

        fn build(&self, _settings: &Settings, _health: &Health) -> Result<Nothing, BuildError> {
            Ok(Nothing)
        }
    }

    #[test]
    fn a_consumer_of_a_registry_format_is_refused_without_the_registry_url_naming_it() {
        let mut settings = Settings::load_with_env(None, Some(Default::default())).expect("the default settings");
        let refused = Runner::new(&settings).build(&AvroReader).err().expect("no schema_registry.url");
        assert!(refused.to_string().contains("schema_registry.url"), "{refused}");
        settings.schema_registry.url = "http://127.0.0.1:8081".into();
        let built = Runner::new(&settings).build(&AvroReader).expect("a registry client built");
        assert!(built.registry.is_some());
    }
}
