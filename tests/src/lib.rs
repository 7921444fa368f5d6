//! Helpers for courier's end-to-end tests.
//!
//! * [`broker`]: the one way tests find a Kafka-protocol broker: `COURIER_TEST_BOOTSTRAP` when set, else
//!   Apache Kafka in a container where a Docker daemon answers (testcontainers), else a local Tansu on sqlite
//!   started on a free port in a temporary directory.
//! * [`app`]: `spawn_app()` (zero-to-production style): mock APIs and the producer on port 0, settings
//!   pointing at them, unique topic and group names per test, and helpers to run consumers in-process.
//! * [`produce`]: producing chosen records (keys, partitions, raw bytes) straight to a topic.
//! * [`recording_route`]: a failure route that records what it is given.
//! * [`wrapped`]: a real consumer whose handler a test wraps (to make it panic, or batch).
//! * [`tls_proxy`]: certificates made by the test and a TLS-terminating proxy in front of a broker, for TLS and
//!   mutual TLS to Kafka.
//! * [`kafka_probe`]: reading a topic's watermarks to check what was (not) published.
//! * [`schema_judge`]: the independent validator (`jsonschema`, Python) of the event schemas in `schemas/events/`.
//! * [`scrape`]: fetching and reading a Prometheus `/metrics` scrape.
//! * [`java_partitioner`]: the partition the Java client's default partitioner picks for a key (an oracle
//!   checked against the Java client's own murmur2 vectors).
//!
//! Logs are printed only when `TEST_LOG` is set.

pub mod app;
pub mod broker;
pub mod java_partitioner;
pub mod kafka_probe;
pub mod produce;
pub mod recording_route;
pub mod schema_judge;
pub mod scrape;
pub mod tls_proxy;
pub mod wrapped;

pub use app::{TestApp, spawn_app};

/// The longest a test waits for what it expects to happen (an effect, a dead letter, a commit): an upper
/// bound that only a failing test reaches, never a sleep.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(120);
