//! Settings that route events by their type: `[producer.events.<name>]` (which CloudEvent types
//! `POST /v1/events` accepts and the topic each goes to) and `[forward.routes.<name>]` (the routes of the
//! no-code `forward` consumer). Lists may be TOML arrays or, from the environment, comma-separated strings
//! (`COURIER__FORWARD__ROUTES__AUTH__TOPICS=users.registered,users.updated`).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Deserializer};

use super::{SettingsError, check, invalid};

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
}

fn subject() -> String {
    "subject".to_owned()
}

/// `[forward]`: the `forward` consumer, configured by settings alone.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSettings {
    /// `[forward.routes.<name>]`: each route is a consumer of its own (group and idempotency prefix `<name>`).
    #[serde(default)]
    pub routes: BTreeMap<String, ForwardRoute>,
}

/// One route of the `forward` consumer: events of `types` read from `topics`, delivered to one URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardRoute {
    /// The topics it reads.
    #[serde(deserialize_with = "list")]
    pub topics: Vec<String>,
    /// The event types it delivers; empty (the default): every type. Events of other types are skipped
    /// (committed without a call).
    #[serde(default, deserialize_with = "list")]
    pub types: Vec<String>,
    /// The API it calls, `[apis.<api>]` (base URL, timeouts, breaker, rate limit, auth); empty (the default):
    /// the API named like the route.
    #[serde(default)]
    pub api: String,
    /// The path under the API's `base_url` the events are sent to; empty (the default): the base URL itself.
    #[serde(default)]
    pub path: String,
    /// The HTTP method: `POST` (the default), `PUT` or `PATCH`.
    #[serde(default = "post")]
    pub method: String,
    /// How the event is sent: `structured` (the default: the CloudEvent as it was published, as
    /// `application/cloudevents+json`) or `binary` (CloudEvents HTTP binary mode: the attributes as `ce-*`
    /// headers, `data` as the body with the event's `datacontenttype`).
    #[serde(default)]
    pub mode: BodyMode,
    /// The most events sent in one call; 1 (the default): a call per event. Above 1, events of different keys
    /// go together as a JSON array of structured CloudEvents (`application/cloudevents-batch+json`), and the
    /// API may answer a result per event (see `courier::downstream::classify_batch`). Structured mode only.
    #[serde(default = "one")]
    pub batch_max_events: usize,
    /// How long an event waits for others to fill its batch, in milliseconds (default 10).
    #[serde(default = "ten")]
    pub batch_max_wait_ms: u64,
}

impl ForwardRoute {
    /// The name of the API the route calls.
    pub fn api_name<'a>(&'a self, route: &'a str) -> &'a str {
        if self.api.is_empty() { route } else { &self.api }
    }
}

/// How the `forward` consumer sends an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyMode {
    /// The CloudEvent as published, `Content-Type: application/cloudevents+json`.
    #[default]
    Structured,
    /// CloudEvents HTTP binary mode: `ce-*` headers, `data` as the body.
    Binary,
}

fn one() -> usize {
    1
}

fn ten() -> u64 {
    10
}

/// The most events a route may send in one call.
pub const MAX_BATCH_EVENTS: usize = 1000;

fn post() -> String {
    "POST".to_owned()
}

/// A list given as an array, or as one comma-separated string (as the environment gives it).
pub(super) fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        /// `"a,b"`.
        Text(String),
        /// `["a", "b"]`.
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::Text(text) => text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        OneOrMany::Many(many) => many,
    })
}

/// Whether `name` can name a route (a consumer group, an idempotency-key prefix, a metrics label, a
/// `COURIER__…` variable): ASCII letters, digits, `_` and `-`.
fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks `[producer.events]`: every group names types and a topic, and no type goes to two topics.
pub(super) fn check_events(events: &BTreeMap<String, EventRoute>) -> Result<(), SettingsError> {
    let mut seen = HashSet::new();
    for (name, route) in events {
        let field = |key: &str| format!("producer.events.{name}.{key}");
        check(!route.types.is_empty(), &field("types"), "must name at least one event type")?;
        check(!route.topic.trim().is_empty(), &field("topic"), "must name a topic")?;
        check(!route.key.trim().is_empty(), &field("key"), "must name the attribute that keys the record")?;
        for event_type in &route.types {
            if !seen.insert(event_type.as_str()) {
                return Err(invalid(field("types"), format!("{event_type:?} is routed by another group too")));
            }
        }
    }
    Ok(())
}

/// Checks `[forward.routes]`: names, topics, methods. (That each route's API is configured is checked when
/// the `forward` consumer starts: the other programs do not need it.)
pub(super) fn check_forward(forward: &ForwardSettings) -> Result<(), SettingsError> {
    for (name, route) in &forward.routes {
        let field = |key: &str| format!("forward.routes.{name}.{key}");
        check(
            is_name(name),
            &format!("forward.routes.{name}"),
            "a route's name must be ASCII letters, digits, '_' and '-' (it names a consumer group)",
        )?;
        check(!route.topics.is_empty(), &field("topics"), "must name at least one topic")?;
        check(
            matches!(route.method.as_str(), "POST" | "PUT" | "PATCH"),
            &field("method"),
            "must be POST, PUT or PATCH",
        )?;
        check(route.api.is_empty() || is_name(&route.api), &field("api"), "must name an [apis.<name>] block")?;
        check(
            (1..=MAX_BATCH_EVENTS).contains(&route.batch_max_events),
            &field("batch_max_events"),
            &format!("must be between 1 (no batching) and {MAX_BATCH_EVENTS}"),
        )?;
        check(
            route.batch_max_events == 1 || route.mode == BodyMode::Structured,
            &field("batch_max_events"),
            "a batch is a JSON array of structured CloudEvents: batching needs mode = \"structured\"",
        )?;
        check(
            (1..=60_000).contains(&route.batch_max_wait_ms),
            &field("batch_max_wait_ms"),
            "must be between 1 and 60000 (ms)",
        )?;
    }
    Ok(())
}

/// Checks that every route's batch can fill: each event in a batch holds one of `consumer.max_in_flight`'s
/// slots while it waits, so a batch larger than `max_in_flight` never fills and every call would wait its
/// whole `batch_max_wait_ms`.
pub(super) fn check_batches(forward: &ForwardSettings, max_in_flight: usize) -> Result<(), SettingsError> {
    for (name, route) in &forward.routes {
        check(
            route.batch_max_events <= max_in_flight,
            &format!("forward.routes.{name}.batch_max_events"),
            &format!(
                "must be at most consumer.max_in_flight ({max_in_flight}): each event of a batch holds one of its \
                 slots, so a larger batch never fills and every call waits its whole batch_max_wait_ms"
            ),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    use super::super::Settings;
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::load_with_env(None, Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
    }

    fn setting_of(error: SettingsError) -> String {
        match error {
            SettingsError::Invalid { setting, .. } => setting,
            other => panic!("not a bad setting: {other}"),
        }
    }

    #[test]
    fn routes_come_from_the_environment_with_comma_separated_lists() {
        let s = load(&[
            ("COURIER__FORWARD__ROUTES__CRM__TOPICS", "users.registered, users.updated"),
            ("COURIER__FORWARD__ROUTES__CRM__TYPES", "user.registered"),
            ("COURIER__FORWARD__ROUTES__CRM__MODE", "binary"),
            ("COURIER__PRODUCER__EVENTS__USERS__TYPES", "user.registered,user.deleted"),
        ])
        .expect("valid");
        let crm = &s.forward.routes["crm"];
        assert_eq!(crm.topics, ["users.registered", "users.updated"]);
        assert_eq!((crm.api_name("crm"), crm.method.as_str(), crm.mode), ("crm", "POST", BodyMode::Binary));
        assert_eq!(s.producer.events["users"].types, ["user.registered", "user.deleted"]);
    }

    #[test]
    fn bad_routes_are_refused_by_name() {
        let bad_method =
            [("COURIER__FORWARD__ROUTES__CRM__TOPICS", "t"), ("COURIER__FORWARD__ROUTES__CRM__METHOD", "GET")];
        assert_eq!(setting_of(load(&bad_method).expect_err("GET")), "forward.routes.crm.method");
        let too_big =
            [("COURIER__FORWARD__ROUTES__CRM__TOPICS", "t"), ("COURIER__FORWARD__ROUTES__CRM__BATCH_MAX_EVENTS", "0")];
        assert_eq!(setting_of(load(&too_big).expect_err("0 events")), "forward.routes.crm.batch_max_events");
        let binary = [
            ("COURIER__FORWARD__ROUTES__CRM__TOPICS", "t"),
            ("COURIER__FORWARD__ROUTES__CRM__BATCH_MAX_EVENTS", "50"),
            ("COURIER__FORWARD__ROUTES__CRM__MODE", "binary"),
        ];
        assert_eq!(setting_of(load(&binary).expect_err("binary batches")), "forward.routes.crm.batch_max_events");
        let no_wait =
            [("COURIER__FORWARD__ROUTES__CRM__TOPICS", "t"), ("COURIER__FORWARD__ROUTES__CRM__BATCH_MAX_WAIT_MS", "0")];
        assert_eq!(setting_of(load(&no_wait).expect_err("no wait")), "forward.routes.crm.batch_max_wait_ms");
        let no_topic = [("COURIER__FORWARD__ROUTES__CRM__TOPICS", "")];
        assert_eq!(setting_of(load(&no_topic).expect_err("no topic")), "forward.routes.crm.topics");
        let twice = [
            ("COURIER__PRODUCER__EVENTS__AGAIN__TYPES", "user.registered"),
            ("COURIER__PRODUCER__EVENTS__AGAIN__TOPIC", "t"),
        ];
        assert!(setting_of(load(&twice).expect_err("one type, two topics")).starts_with("producer.events."));
    }
}
