//! Building and running the order API: [`Application::build`] binds the listener (port 0 picks a free port,
//! as tests do) and wires the routes; [`Application::run_until_stopped`] serves until shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use courier::settings::Settings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
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
    /// How long requests in flight may take after shutdown.
    shutdown_timeout: Duration,
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
            // A slow client cannot hold a request, and the memory of its half-read body, for long.
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                Duration::from_millis(settings.producer.request_timeout_ms),
            ))
            .layer(TraceLayer::new_for_http())
            .with_state(state);
        let listener = TcpListener::bind(&settings.producer.listen)
            .await
            .with_context(|| format!("cannot listen on producer.listen = {}", settings.producer.listen))?;
        let shutdown_timeout = Duration::from_millis(settings.producer.shutdown_timeout_ms);
        Ok(Self { listener, router, publisher, shutdown_timeout })
    }

    /// The address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` is cancelled, lets in-flight requests finish (for up to
    /// `producer.shutdown_timeout_ms`), then flushes the producer.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(address = %self.local_addr(), "order API listening");
        let server = axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(self.shutdown_timeout).await;
        };
        tokio::select! {
            served = server => served.context("the HTTP server failed")?,
            () = deadline => tracing::warn!(
                timeout_ms = u64::try_from(self.shutdown_timeout.as_millis()).unwrap_or(u64::MAX),
                "requests still in flight at the shutdown timeout: stopping anyway"
            ),
        }
        self.publisher.flush();
        tracing::info!("order API stopped");
        Ok(())
    }
}
