//! `[producer]`: the order API, and `[producer.events.<name>]`: which CloudEvent types `POST /v1/events`
//! accepts and the topic each goes to.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_with::{DurationMilliSeconds, DurationSeconds, serde_as};

use super::durations::{MAX_DURATION, check_duration};
use super::lists::{list, secret_list};
use super::{MAX_CONCURRENCY, SettingsError, check, invalid};

/// `[producer]`: the order API.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSettings {
    /// Address the HTTP server listens on, `ip:port` (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Longest wait for the broker's acknowledgement before answering 503.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub publish_timeout_ms: Duration,
    /// Longest time one request may take, reading its body included; past it the API answers 408.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub request_timeout_ms: Duration,
    /// Longest time a client may take to send a request's headers; past it the connection is closed.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub header_read_timeout_ms: Duration,
    /// Most requests served at once; beyond, the API answers 503 with `Retry-After` at once.
    pub max_concurrent_requests: usize,
    /// Most client connections open at once; more wait in the listen backlog until one ends.
    pub max_connections: usize,
    /// API keys that may post orders (several at once, for rotation); empty: no authentication. Secrets. An
    /// array, or (as the environment gives it) one comma-separated string.
    #[serde(default, deserialize_with = "secret_list")]
    pub api_keys: Vec<SecretString>,
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish before the server stops anyway.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub shutdown_timeout_ms: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long the producer remembers an `Idempotency-Key` and its answer.
    #[serde_as(as = "DurationSeconds<u64>")]
    pub idempotency_ttl_secs: Duration,
    /// How many `Idempotency-Key`s the producer remembers at most.
    pub idempotency_capacity: u64,
    /// `[producer.events.<name>]`: the CloudEvent types `POST /v1/events` accepts, and their topics.
    #[serde(default)]
    pub events: BTreeMap<String, EventRoute>,
}

/// `[producer.events.<name>]`: one group of CloudEvent types `POST /v1/events` accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRoute {
    /// The event types (`type` attribute) published to `topic`.
    #[serde(deserialize_with = "list")]
    pub types: Vec<String>,
    /// The topic they are published to.
    pub topic: String,
    /// The attribute whose value keys the record (and so orders the events of one key): `subject` (the
    /// default) or any other attribute or extension of the event. An event without it is refused.
    #[serde(default = "subject")]
    pub key: String,
    /// A JSON Schema file that the `data` of every event of the group must match (an event that does not is
    /// refused with 422 and not published); a relative path is taken from the working directory. Read and
    /// compiled when the producer starts. Empty (the default): `data` is not checked.
    #[serde(default)]
    pub schema: String,
}

/// The default of [`EventRoute::key`].
fn subject() -> String {
    "subject".to_owned()
}

/// Largest `producer.max_connections`: Linux's default ceiling of open files per process (`fs.nr_open`).
const MAX_CONNECTIONS: usize = 1 << 20;

impl ProducerSettings {
    /// Checks each field on its own, and that no event type goes to two topics.
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        check(!self.publish_timeout_ms.is_zero(), "producer.publish_timeout_ms", "must be positive")?;
        check(!self.header_read_timeout_ms.is_zero(), "producer.header_read_timeout_ms", "must be positive")?;
        for (setting, duration) in [
            ("producer.publish_timeout_ms", self.publish_timeout_ms),
            ("producer.request_timeout_ms", self.request_timeout_ms),
            ("producer.shutdown_timeout_ms", self.shutdown_timeout_ms),
            ("producer.header_read_timeout_ms", self.header_read_timeout_ms),
        ] {
            check_duration(setting, duration)?;
        }
        check(self.max_body_bytes > 0, "producer.max_body_bytes", "must be positive")?;
        check(
            (1..=MAX_CONCURRENCY).contains(&self.max_concurrent_requests),
            "producer.max_concurrent_requests",
            &format!("must be between 1 and {MAX_CONCURRENCY}"),
        )?;
        check(
            (1..=MAX_CONNECTIONS).contains(&self.max_connections),
            "producer.max_connections",
            &format!(
                "must be 1 to {MAX_CONNECTIONS} (each is an open file; Linux allows a process that many by default)"
            ),
        )?;
        check(
            self.api_keys.iter().all(|key| key.expose_secret().trim().len() >= 16),
            "producer.api_keys",
            "every key must have at least 16 characters (and is a secret: set them with \
             COURIER__PRODUCER__API_KEYS=key1,key2)",
        )?;
        check(self.idempotency_capacity > 0, "producer.idempotency_capacity", "must be positive")?;
        let most = MAX_DURATION.as_secs();
        check(
            Duration::from_secs(1) <= self.idempotency_ttl_secs && self.idempotency_ttl_secs <= MAX_DURATION,
            "producer.idempotency_ttl_secs",
            &format!(
                "must be between 1 and {most} (a week): 0 would remember no Idempotency-Key, so a retried request \
                 would publish again"
            ),
        )?;
        self.check_events()
    }

    /// Checks `[producer.events]`: every group names types and a topic, and no type goes to two topics.
    fn check_events(&self) -> Result<(), SettingsError> {
        let mut seen = HashSet::new();
        for (name, route) in &self.events {
            let field = |key: &str| format!("producer.events.{name}.{key}");
            check(!route.types.is_empty(), &field("types"), "must name at least one event type")?;
            check(!route.topic.trim().is_empty(), &field("topic"), "must name a topic")?;
            check(!route.key.trim().is_empty(), &field("key"), "must name the attribute that keys the record")?;
            check(
                route.schema.is_empty() || !route.schema.trim().is_empty(),
                &field("schema"),
                "must be the path of a JSON Schema file, or empty for none",
            )?;
            for event_type in &route.types {
                if !seen.insert(event_type.as_str()) {
                    return Err(invalid(field("types"), format!("{event_type:?} is routed by another group too")));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_refused, load};

    #[test]
    fn the_listen_address_is_an_address() {
        let s = load(&[("COURIER__PRODUCER__LISTEN", "127.0.0.1:0")]).expect("valid");
        assert_eq!(s.producer.listen, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }

    #[test]
    fn an_event_groups_schema_is_a_path_or_empty() {
        let s = load(&[]).expect("the defaults");
        assert_eq!(s.producer.events["users"].schema, "schemas/events/user.registered.json");
        let s = load(&[("COURIER__PRODUCER__EVENTS__USERS__SCHEMA", "")]).expect("no schema");
        assert_eq!(s.producer.events["users"].schema, "");
        assert_refused(&[("COURIER__PRODUCER__EVENTS__USERS__SCHEMA", "  ", "producer.events.users.schema")]);
    }
}
