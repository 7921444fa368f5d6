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
//! * [`formats`]: what a topic's records are read as (`cloudevents`, `cloudevents-binary`, `json`, `bytes`,
//!   `avro`, `protobuf`, `json-schema`, `auto`), the decoder that turns a record into the event a handler is given, and the identity of a record
//!   that is not a CloudEvent.
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
//! * [`mapping`]: requests shaped from the event: a path, query and headers as templates over it, a body and a
//!   filter as jq programs, compiled at start-up (what `forward`'s routes map with, and a coded consumer may).
//! * [`delivery`]: the runtime a consumer runs on: the [`delivery::Consumer`] a consumer declares itself with,
//!   the [`delivery::Handler`] it builds, and the loop that reads records, hands them to the handler and
//!   stores offsets only after success.
//! * [`schema_registry`]: records written with a Confluent-compatible Schema Registry (Avro, Protobuf, JSON
//!   Schema in the Confluent wire format) decoded to JSON, each schema fetched once by id and kept.
//! * [`health`]: a consumer's problems (open breakers, the dead-letter guard) and its server: `/healthz`,
//!   `/readyz`, `/metrics`.
//! * [`shutdown`]: the signal that tells every task to stop (SIGTERM / SIGINT).
//!
//! # A consumer
//!
//! A consumer is a declaration ([`delivery::Consumer`]: its name, what it reads, how its handler is built from
//! settings) and the handler it builds ([`delivery::Handler`]: what it does with one event). The runtime does
//! the rest: key order, retries, circuit breaker, dead letters, commits, health, metrics and shutdown. This one
//! asks a `greetings` API (`[apis.greetings]` in the settings) to greet the customer of every new order:
//!
//! ```no_run
//! use courier::delivery::{self, BuildError, Consumer, ConsumerSpec, Handler, Incoming, Outcome};
//! use courier::downstream::{self, ApiClient, CallContext};
//! use courier::events::OrderCreated;
//! use courier::health::Health;
//! use courier::settings::Settings;
//! use reqwest::Method;
//!
//! /// The declaration: what the consumer is called, what it reads, how its handler is built.
//! struct Greeter;
//!
//! impl Consumer for Greeter {
//!     type Handler = Greetings;
//!
//!     fn name(&self) -> &str {
//!         "greeter" // its consumer group and the prefix of its idempotency keys
//!     }
//!
//!     fn spec(&self, settings: &Settings) -> ConsumerSpec {
//!         ConsumerSpec::reads(settings, self.name(), [settings.topics.names.get("orders_created")])
//!     }
//!
//!     fn build(&self, settings: &Settings, health: &Health) -> Result<Greetings, BuildError> {
//!         Ok(Greetings { api: ApiClient::new("greetings", settings.apis.get("greetings")?, health)? })
//!     }
//! }
//!
//! /// The handler: one attempt at one event. It may run again for the same event.
//! struct Greetings {
//!     api: ApiClient,
//! }
//!
//! impl Handler for Greetings {
//!     async fn handle(&self, incoming: &Incoming, _channel: Option<&'static str>) -> Outcome {
//!         // Not an order (or not a valid one): a permanent failure, which dead-letters the event.
//!         let order: OrderCreated = match incoming.data() {
//!             Ok(order) => order,
//!             Err(outcome) => return outcome,
//!         };
//!         let body = serde_json::json!({ "order_id": order.order_id, "customer_id": order.customer.id });
//!         // `Idempotency-Key: greeter:<event id>`, the same on every attempt and redelivery.
//!         let call = CallContext::for_event("greeter", incoming);
//!         let result = self.api.send_json(Method::POST, "greetings", &body, &call).await;
//!         // 2xx: done; 408, 429, 5xx, a timeout: retried; any other 4xx: dead-lettered.
//!         downstream::classify(&result)
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let settings = Settings::load(None)?;
//!     delivery::run(&Greeter, &settings, courier::shutdown::on_signal()).await?;
//!     Ok(())
//! }
//! ```

pub mod cli;
pub mod delivery;
pub mod downstream;
pub mod events;
pub mod formats;
pub mod health;
pub mod kafka;
pub mod mapping;
pub mod publisher;
pub mod schema_registry;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
