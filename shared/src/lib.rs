//! The library courier's producer and consumers share.
//!
//! courier delivers business events from Kafka to HTTP APIs. The producer publishes events; each consumer
//! binary reads them in its own consumer group and calls its own downstream API. Everything the two sides
//! have in common lives here, one concern per module:
//!
//! * [`events`]: the CloudEvents 1.0 JSON envelope and the event payloads (`OrderCreated`, `PaymentFailed`,
//!   `OrderPaid`), a decoder that turns any record value into a typed event or a [`events::DecodeError`]
//!   saying what is wrong, and the HTTP binding between structured and binary mode
//!   ([`events::http_binding`]).
//! * [`cli`]: what every binary does first: arguments (`--help`, `--version`, `--check`), settings, logging.
//! * [`settings`]: typed settings, layered `config/default.toml` → optional file → `COURIER__*` environment
//!   variables, validated at start-up so that a bad value stops the program with the setting's name.
//! * [`kafka`]: the rdkafka client configuration built from settings (security: TLS, SASL, further
//!   properties), the cluster check that names a refused login or TLS failure, and topic administration.
//! * [`publisher`]: publishing CloudEvents with an idempotent producer (acks=all), awaiting the broker's ack.
//! * [`telemetry`]: logs, traces and metrics: the `tracing` subscriber with its OpenTelemetry bridge (OTLP
//!   export), the W3C trace context carried from the order API through Kafka to every HTTP call, and the
//!   Prometheus metrics every process serves at `/metrics`.
//! * [`downstream`]: calling a consumer's APIs: the HTTP client (timeouts, `Idempotency-Key`, auth,
//!   `traceparent`), the circuit breaker of each API, and the classification of results into outcomes.
//! * [`delivery`]: the runtime a consumer runs on: the [`delivery::Consumer`] a consumer declares itself with,
//!   the [`delivery::Handler`] it builds, and the loop that reads records, hands them to the handler and
//!   stores offsets only after success.
//! * [`health`]: a consumer's problems (open breakers, the dead-letter guard) and its server: `/healthz`,
//!   `/readyz`, `/metrics`.
//! * [`shutdown`]: the signal that tells every task to stop (SIGTERM / SIGINT).

pub mod cli;
pub mod delivery;
pub mod downstream;
pub mod events;
pub mod health;
pub mod kafka;
pub mod publisher;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
