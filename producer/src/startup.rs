//! Building and running the order API: [`Application::build`] binds the listener (port 0 picks a free port,
//! as tests do) and wires the routes; [`Application::run_until_stopped`] serves until shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{BoxError, Extension, Router, middleware};
use courier::kafka::connectivity::{ClusterError, check_cluster};
use courier::settings::Settings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::auth::{self, ApiKeys};
use crate::error::ApiError;
use crate::extract::BodyLimit;
use crate::idempotency::IdempotencyStore;
use crate::request_timeout::{self, RequestTimeout};
use crate::routes::events::{self, EventTopics};
use crate::routes::{AppState, health, orders};
use crate::server::{self, ServerLimits};
use courier::publisher::Publisher;

/// The order API, bound and ready to serve.
pub struct Application {
    /// The bound listener.
    listener: TcpListener,
    /// The routes with their state.
    router: Router,
    /// The publisher, flushed at shutdown.
    publisher: Publisher,
    /// Idle connections, the connection cap and the shutdown timeout.
    limits: ServerLimits,
}

impl Application {
    /// Creates the topic when asked to, the Kafka producer, and binds `producer.listen`.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        // The event schemas first: a bad file stops the start at once, whatever the state of the cluster.
        let event_topics = EventTopics::new(&settings.producer.events)?;
        let topic = crate::order::orders_topic(&settings.topics);
        // With a login or TLS, check them first: a refusal is named, and the API starts not ready.
        let secured = settings.kafka.security_protocol != "plaintext";
        let check = if secured { check_cluster(&settings.kafka, Duration::from_secs(10)).await } else { Ok(()) };
        let refused = match check {
            Err(error @ (ClusterError::Authentication(_) | ClusterError::Tls(_))) => {
                // Start anyway, not ready: /readyz says why until the cluster lets us in.
                tracing::error!(%error, "cannot use the Kafka cluster: the order API starts not ready");
                true
            }
            _ => false,
        };
        if settings.topics.create && !refused {
            let topics: Vec<&str> = std::iter::once(topic).chain(event_topics.topics()).collect();
            courier::kafka::ensure_topics(&settings.kafka, &settings.topics, &topics)
                .await
                .with_context(|| format!("cannot create topics {topics:?} on {}", settings.kafka.bootstrap_servers))?;
        }
        let publisher = Publisher::new(settings, topic, "producer").context("cannot create the Kafka producer")?;
        let state = AppState {
            publisher: publisher.clone(),
            idempotency: IdempotencyStore::from_settings(&settings.producer),
            events: event_topics,
            event_idempotency: IdempotencyStore::from_settings(&settings.producer),
            readiness_timeout: Duration::from_secs(2),
            kafka: settings.kafka.clone(),
        };
        let limit = settings.producer.max_body_bytes;
        let keys = ApiKeys::new(&settings.producer.api_keys);
        // Only the publishing routes need a key and count against the bound of concurrent requests (one bound
        // for both): health and readiness answer whatever the load.
        let publishing = Router::new()
            .route("/v1/orders", post(orders::create_order))
            .route("/v1/events", post(events::publish_event))
            .route_layer(middleware::from_fn_with_state(keys, auth::require_api_key))
            .layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(|_: BoxError| async { ApiError::Overloaded }))
                    .load_shed()
                    .concurrency_limit(settings.producer.max_concurrent_requests),
            );
        courier::telemetry::metrics::install("producer");
        let openapi: std::sync::Arc<str> =
            crate::openapi::render(&crate::openapi::document(&settings.producer.events, state.events.data_schemas()))
                .into();
        let request_id = http::HeaderName::from_static(crate::access_log::REQUEST_ID);
        let router = Router::new()
            .merge(publishing)
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .route("/metrics", get(courier::telemetry::metrics::scrape))
            .route(crate::openapi::PATH, get(async move || crate::openapi::serve(&openapi)))
            .layer(DefaultBodyLimit::max(limit))
            .layer(Extension(BodyLimit(limit)))
            // A slow client cannot hold a request, and the memory of its half-read body, for long; a publish the
            // broker has not acknowledged when the time runs out is a 503, as a publish that timed out.
            .layer(middleware::from_fn_with_state(
                RequestTimeout {
                    timeout: settings.producer.request_timeout_ms,
                    retry_after_secs: publisher.timeout().as_secs().max(1),
                    body_limit: limit,
                },
                request_timeout::limit,
            ))
            // Outermost: every request, timed-out and refused ones included, is spanned, logged and counted,
            // under an `x-request-id` (the client's, or a new one) that the answer carries back.
            .layer(middleware::from_fn(crate::access_log::access_log))
            .layer(PropagateRequestIdLayer::new(request_id.clone()))
            .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
            .with_state(state);
        let listener = TcpListener::bind(&settings.producer.listen)
            .await
            .with_context(|| format!("cannot listen on producer.listen = {}", settings.producer.listen))?;
        let limits = ServerLimits {
            header_read_timeout: settings.producer.header_read_timeout_ms,
            max_connections: server::connection_cap(settings.producer.max_connections),
            shutdown_timeout: settings.producer.shutdown_timeout_ms,
        };
        Ok(Self { listener, router, publisher, limits })
    }

    /// The address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` is cancelled, lets in-flight requests finish (for up to
    /// `producer.shutdown_timeout_ms`), then flushes the producer.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(address = %self.local_addr(), "order API listening");
        let timeout = self.limits.shutdown_timeout;
        if !server::serve(self.listener, self.router, self.limits, shutdown).await {
            tracing::warn!(
                timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                "requests still in flight at the shutdown timeout: stopping anyway"
            );
        }
        self.publisher.flush();
        tracing::info!("order API stopped");
        Ok(())
    }
}
