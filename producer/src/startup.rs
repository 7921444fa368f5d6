//! Building and running the order API: [`Application::build`] binds the listener (port 0 picks a free port,
//! as tests do) and wires the routes; [`Application::run_until_stopped`] serves until shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router};
use courier::settings::Settings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::extract::BodyLimit;
use crate::idempotency::IdempotencyStore;
use crate::routes::{AppState, health, orders};
use courier::publisher::Publisher;

/// The order API, bound and ready to serve.
pub struct Application {
    /// The bound listener.
    listener: TcpListener,
    /// The routes with their state.
    router: Router,
    /// The publisher, flushed at shutdown.
    publisher: Publisher,
}

impl Application {
    /// Creates the topic when asked to, the Kafka producer, and binds `producer.listen`.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let topic = &settings.topics.orders_created;
        if settings.topics.create {
            courier::kafka::ensure_topics(&settings.kafka, &settings.topics, &[topic])
                .await
                .with_context(|| format!("cannot create topic {topic} on {}", settings.kafka.bootstrap_servers))?;
        }
        let publisher = Publisher::new(settings, topic, "producer").context("cannot create the Kafka producer")?;
        let state = AppState {
            publisher: publisher.clone(),
            idempotency: IdempotencyStore::new(
                settings.producer.idempotency_capacity,
                Duration::from_secs(settings.producer.idempotency_ttl_secs),
            ),
            readiness_timeout: Duration::from_secs(2),
        };
        let limit = settings.producer.max_body_bytes;
        let router = Router::new()
            .route("/v1/orders", post(orders::create_order))
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .layer(DefaultBodyLimit::max(limit))
            .layer(Extension(BodyLimit(limit)))
            .layer(TraceLayer::new_for_http())
            .with_state(state);
        let listener = TcpListener::bind(&settings.producer.listen)
            .await
            .with_context(|| format!("cannot listen on producer.listen = {}", settings.producer.listen))?;
        Ok(Self { listener, router, publisher })
    }

    /// The address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` is cancelled, lets in-flight requests finish, then flushes the producer.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(address = %self.local_addr(), "order API listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .context("the HTTP server failed")?;
        self.publisher.flush();
        tracing::info!("order API stopped");
        Ok(())
    }
}
