//! `[forward.routes.<name>]`: the routes of the no-code `forward` consumer, each a consumer of its own.
//! Lists may be TOML arrays or, from the environment, comma-separated strings
//! (`COURIER__FORWARD__ROUTES__AUTH__TOPICS=users.registered,users.updated`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_with::{DurationMilliSeconds, serde_as};

use super::lists::list;
use super::{SettingsError, check};
use crate::formats::{Format, IdFrom, Reading};
use crate::mapping::{RequestMapping, RequestSpec};

/// `[forward]`: the `forward` consumer, configured by settings alone.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSettings {
    /// `[forward.routes.<name>]`: each route is a consumer of its own (group and idempotency prefix `<name>`).
    #[serde(default)]
    pub routes: BTreeMap<String, ForwardRoute>,
}

/// One route of the `forward` consumer: events of `types` read from `topics`, delivered to one URL.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardRoute {
    /// The topics it reads.
    #[serde(deserialize_with = "list")]
    pub topics: Vec<String>,
    /// What their records are: `auto` (the default: each record as what it is, a CloudEvent in either mode,
    /// else JSON, else bytes), `cloudevents`, `cloudevents-binary`, `json` or `bytes`. A record that does not
    /// decode in it is dead-lettered (`courier.dlq.error.kind = decode`).
    #[serde(default)]
    pub format: Format,
    /// What identifies a record that is not a CloudEvent (its idempotency key is `<route>:<identity>`): empty
    /// (the default) or `offset`: `<topic>-<partition>-<offset>`; `key`: the record key; `value.<path>`: a
    /// member of its JSON value (`value.order_id`). A CloudEvent is identified by its `source` and `id`.
    #[serde(default)]
    pub id_from: IdFrom,
    /// The content type of a record read as bytes that has no `content-type` header (default
    /// `application/octet-stream`).
    #[serde(default = "octet_stream")]
    pub content_type: String,
    /// The event types it delivers; empty (the default): every type. Events of other types are skipped
    /// (committed without a call).
    #[serde(default, deserialize_with = "list")]
    pub types: Vec<String>,
    /// The API it calls, `[apis.<api>]` (base URL, timeouts, breaker, rate limit, auth); empty (the default):
    /// the API named like the route.
    #[serde(default)]
    pub api: String,
    /// The path under the API's `base_url` the events are sent to; empty (the default): the base URL itself. A
    /// template: `{{ … }}` holds a jq expression over the event, its value percent-encoded
    /// (`users/{{ .data.user_id }}`); it may end with a query (`?v=2&tenant={{ .tenant }}`).
    #[serde(default)]
    pub path: String,
    /// Query parameters added to the path's, name → template of the value (each value percent-encoded).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Request headers, name → template of the value (`x-user = "{{ .data.user_id }}"`, or static text).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A jq program whose one value is the body, as JSON (`application/json`): `{email: .data.email}`; empty (the
    /// default): the event or its data, as `mode` says.
    #[serde(default)]
    pub body: String,
    /// A jq program deciding, beside `types`, which events the route calls for: those for which it is neither
    /// `false` nor `null` (`.data.plan == "pro"`); the others are skipped. Empty (the default): every event.
    #[serde(default)]
    pub filter: String,
    /// The HTTP method: `POST` (the default), `PUT` or `PATCH`.
    #[serde(default = "post")]
    pub method: String,
    /// How the event is sent: `structured` (the default: the CloudEvent as it was published, as
    /// `application/cloudevents+json`) or `binary` (CloudEvents HTTP binary mode: the attributes as `ce-*` headers,
    /// `data` as the body with the event's `datacontenttype`).
    #[serde(default)]
    pub mode: BodyMode,
    /// The most events sent in one call; 1 (the default): a call per event. Above 1, events of different keys
    /// go together as a JSON array of structured CloudEvents (`application/cloudevents-batch+json`), and the
    /// API may answer a result per event (see `courier::downstream::classify_batch`). Structured mode only.
    #[serde(default = "one")]
    pub batch_max_events: usize,
    /// How long an event waits for others to fill its batch (default 10 ms).
    #[serde(default = "ten_millis")]
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub batch_max_wait_ms: Duration,
}

impl ForwardRoute {
    /// The name of the API the route calls.
    pub fn api_name<'a>(&'a self, route: &'a str) -> &'a str {
        if self.api.is_empty() { route } else { &self.api }
    }

    /// The request mapping its `path`, `query`, `headers`, `body` and `filter` describe.
    pub fn request(&self) -> RequestSpec {
        RequestSpec {
            path: self.path.clone(),
            query: self.query.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            filter: self.filter.clone(),
        }
    }

    /// How the route reads its topics.
    pub fn reading(&self) -> Reading {
        Reading { format: self.format, id_from: self.id_from.clone(), content_type: self.content_type.clone() }
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

/// The default of [`ForwardRoute::content_type`].
fn octet_stream() -> String {
    crate::events::kafka_binding::OCTET_STREAM.to_owned()
}

/// The default of [`ForwardRoute::batch_max_events`]: a call per event.
fn one() -> usize {
    1
}

/// The default of [`ForwardRoute::batch_max_wait_ms`].
fn ten_millis() -> Duration {
    Duration::from_millis(10)
}

/// The longest [`ForwardRoute::batch_max_wait_ms`].
const MAX_BATCH_WAIT: Duration = Duration::from_secs(60);

/// The most events a route may send in one call.
pub const MAX_BATCH_EVENTS: usize = 1000;

/// The default of [`ForwardRoute::method`].
fn post() -> String {
    "POST".to_owned()
}

/// Whether `name` can name a route (a consumer group, an idempotency-key prefix, a metrics label, a
/// `COURIER__…` variable): ASCII letters, digits, `_` and `-`.
fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl ForwardSettings {
    /// Checks each field of each route on its own: names, topics, methods, batches, and that its templates and
    /// programs compile. (That each route's API is
    /// configured is checked when the `forward` consumer starts: the other programs do not need it.)
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        for (name, route) in &self.routes {
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
                http::HeaderValue::from_str(&route.content_type).is_ok() && route.content_type.contains('/'),
                &field("content_type"),
                "must be a media type, such as application/octet-stream or text/csv",
            )?;
            check(
                (1..=MAX_BATCH_EVENTS).contains(&route.batch_max_events),
                &field("batch_max_events"),
                &format!("must be between 1 (no batching) and {MAX_BATCH_EVENTS}"),
            )?;
            check(
                !route.batch_max_wait_ms.is_zero() && route.batch_max_wait_ms <= MAX_BATCH_WAIT,
                &field("batch_max_wait_ms"),
                "must be between 1 and 60000 (ms)",
            )?;
            RequestMapping::compile(&format!("forward.routes.{name}"), &route.request())
                .map_err(|e| SettingsError::Invalid { setting: e.key, reason: e.reason })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::load;
    use super::*;

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
        assert_eq!((crm.batch_max_events, crm.batch_max_wait_ms), (1, Duration::from_millis(10)), "the defaults");
        assert_eq!(crm.reading(), Reading::of(Format::Auto), "auto, identified by offsets, octet-stream");
        assert_eq!(s.producer.events["users"].types, ["user.registered", "user.deleted"]);
    }

    #[test]
    fn a_route_reads_the_format_and_identity_it_names() {
        let s = load(&[
            ("COURIER__FORWARD__ROUTES__CRM__TOPICS", "signups"),
            ("COURIER__FORWARD__ROUTES__CRM__FORMAT", "cloudevents-binary"),
            ("COURIER__FORWARD__ROUTES__ORDERS__TOPICS", "orders"),
            ("COURIER__FORWARD__ROUTES__ORDERS__FORMAT", "json"),
            ("COURIER__FORWARD__ROUTES__ORDERS__ID_FROM", "value.order_id"),
            ("COURIER__FORWARD__ROUTES__FILES__TOPICS", "files"),
            ("COURIER__FORWARD__ROUTES__FILES__FORMAT", "bytes"),
            ("COURIER__FORWARD__ROUTES__FILES__CONTENT_TYPE", "text/csv"),
        ])
        .expect("valid");
        assert_eq!(s.forward.routes["crm"].format, Format::CloudeventsBinary);
        let orders = &s.forward.routes["orders"];
        assert_eq!((orders.format, &orders.id_from), (Format::Json, &IdFrom::Value(vec!["order_id".into()])));
        assert_eq!(s.forward.routes["files"].reading().content_type, "text/csv");
        for (key, value) in
            [("FORMAT", "xml"), ("ID_FROM", "value."), ("ID_FROM", "headers.id"), ("CONTENT_TYPE", "csv")]
        {
            let variable = format!("COURIER__FORWARD__ROUTES__CRM__{key}");
            let error = load(&[("COURIER__FORWARD__ROUTES__CRM__TOPICS", "t"), (&variable, value)]).expect_err(value);
            let error = error.to_string();
            assert!(error.contains(&key.to_ascii_lowercase()) || error.contains(value), "{key}={value}: {error}");
        }
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

    #[test]
    fn a_template_or_program_that_does_not_compile_is_refused_with_its_key_and_position() {
        let route = |key: &str, value: &str| {
            let variable = format!("COURIER__FORWARD__ROUTES__CRM__{key}");
            load(&[("COURIER__FORWARD__ROUTES__CRM__TOPICS", "t"), (&variable, value)])
        };
        let cases = [
            ("BODY", "{email: .data.email", "forward.routes.crm.body"),
            ("FILTER", ".data.plan ==", "forward.routes.crm.filter"),
            ("PATH", "users/{{ .data.user_id", "forward.routes.crm.path"),
        ];
        for (key, value, setting) in cases {
            match route(key, value).expect_err(value) {
                SettingsError::Invalid { setting: named, reason } => {
                    assert_eq!(named, setting);
                    assert!(reason.contains(" at line 1, column "), "{reason}");
                }
                other => panic!("not a bad setting: {other}"),
            }
        }
        let mapped = route("BODY", "{email: .data.email}").expect("valid");
        assert_eq!(mapped.forward.routes["crm"].request().body, "{email: .data.email}");
    }
}
