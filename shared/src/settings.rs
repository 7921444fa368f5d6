//! Typed settings, layered and validated at start-up.
//!
//! Sources, each overriding the one before:
//! 1. `config/default.toml`, compiled into every binary (it documents every setting);
//! 2. an optional file given with `--config FILE` (or `COURIER_CONFIG`);
//! 3. environment variables `COURIER__<SECTION>__<KEY>`, e.g. `COURIER__KAFKA__BOOTSTRAP_SERVERS`.
//!
//! [`Settings::load`] rejects unknown keys (a typo must not be ignored silently) and checks every value, so a
//! bad or missing setting stops the program with an error that names the setting.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};

mod routing;

pub use routing::{BodyMode, EventRoute, ForwardRoute, ForwardSettings};

use crate::downstream::breaker::BreakerPolicy;
pub use crate::kafka::security::{KafkaProperties, SaslSettings, Security, TlsSettings};
use secrecy::SecretString;
use serde::Deserialize;

/// The defaults, with a comment on every setting.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Every setting of courier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// How to reach the Kafka cluster and how consumers behave in their group.
    pub kafka: KafkaSettings,
    /// Topic names and how topics are created.
    pub topics: TopicSettings,
    /// The order API.
    pub producer: ProducerSettings,
    /// The delivery runtime every consumer runs on.
    pub consumer: ConsumerSettings,
    /// The downstream APIs the consumers call.
    pub apis: ApisSettings,
    /// Dead-lettering: where undeliverable events go, and the guard that stops a flood of them.
    pub dlq: DlqSettings,
    /// The routes of the no-code `forward` consumer (none by default).
    #[serde(default)]
    pub forward: ForwardSettings,
    /// Logging.
    pub telemetry: TelemetrySettings,
}

/// `[kafka]`: the cluster and the consumer-group timeouts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list of bootstrap brokers.
    pub bootstrap_servers: String,
    /// How clients talk to the brokers: `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    /// `[kafka.sasl]`: the SASL login, for `sasl_plaintext` and `sasl_ssl`.
    pub sasl: SaslSettings,
    /// `[kafka.tls]`: CA and client certificates, for `ssl` and `sasl_ssl`.
    pub tls: TlsSettings,
    /// `[kafka.properties]`: any other librdkafka property, given to every client.
    #[serde(default)]
    pub properties: KafkaProperties,
    /// Kafka client id prefix, seen in broker logs.
    pub client_id: String,
    /// Prefix of every consumer group id (e.g. `staging-`), so that environments sharing a cluster keep
    /// their groups apart; empty by default, giving the contract's names (`inventory`, …).
    pub group_id_prefix: String,
    /// Consumer group session timeout: a member silent this long is removed from the group.
    pub session_timeout_ms: u32,
    /// How often a consumer heartbeats to its group coordinator; below a third of the session timeout.
    pub heartbeat_interval_ms: u32,
    /// Longest time between polls before a consumer is considered stuck and leaves the group.
    pub max_poll_interval_ms: u32,
    /// Longest time the broker may hold a consumer's fetch request while it has no new records.
    pub fetch_wait_max_ms: u32,
    /// How a group's partitions are assigned to its members: `cooperative-sticky` (the default; incremental: a
    /// rebalance moves only the partitions that change owner) or `range,roundrobin` (librdkafka's default,
    /// eager: every rebalance revokes every partition).
    pub partition_assignment_strategy: String,
    /// Where a consumer group with no committed offset for a partition starts: `earliest` (the default: a new
    /// group delivers everything the topic still retains) or `latest` (only what is published from then on).
    pub auto_offset_reset: String,
    /// Static group membership: a stable id of this member (e.g. the pod name), so that a restart within the
    /// session timeout gets its partitions back without a rebalance. Empty (the default): dynamic membership.
    /// Must be unique per replica of a consumer.
    pub group_instance_id: String,
    /// When a consumer has had no partition assigned for this long, it leaves its group and joins again;
    /// 0 (the default) never. A workaround for brokers whose group coordinator can leave a member with an
    /// empty assignment for good (Tansu 0.6.0; see RELIABILITY.md); on Apache Kafka an idle member (more
    /// members than partitions) would cause a rebalance this often, so keep it off there.
    pub rejoin_unassigned_after_ms: u64,
}

impl KafkaSettings {
    /// The protocol, login, certificates and further properties every client uses.
    pub fn security(&self) -> Security<'_> {
        Security { protocol: &self.security_protocol, sasl: &self.sasl, tls: &self.tls, properties: &self.properties }
    }

    /// The consumer group id of consumer `name`.
    pub fn group_id(&self, name: &str) -> String {
        format!("{}{name}", self.group_id_prefix)
    }
}

/// `[topics]`: names and creation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSettings {
    /// The topic `order.created` events are published to.
    pub orders_created: String,
    /// The topic `order.payment_failed` events are published to.
    pub payment_failed: String,
    /// The topic `order.paid` events are published to.
    pub orders_paid: String,
    /// Partitions of a topic courier creates.
    pub partitions: i32,
    /// Replication factor of a topic courier creates.
    pub replication_factor: i32,
    /// Whether services create their topics at start-up when absent.
    pub create: bool,
}

/// `[producer]`: the order API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSettings {
    /// Address the HTTP server listens on, `ip:port` (port 0 picks a free port).
    pub listen: String,
    /// Longest wait for the broker's acknowledgement before answering 503.
    pub publish_timeout_ms: u64,
    /// Longest time one request may take, reading its body included; past it the API answers 408.
    pub request_timeout_ms: u64,
    /// Longest time a client may take to send a request's headers; past it the connection is closed.
    pub header_read_timeout_ms: u64,
    /// Most requests served at once; beyond, the API answers 503 with `Retry-After` at once.
    pub max_concurrent_requests: usize,
    /// Most client connections open at once; more wait in the listen backlog until one ends.
    pub max_connections: usize,
    /// API keys that may post orders (several at once, for rotation); empty: no authentication. Secrets. An
    /// array, or (as the environment gives it) one comma-separated string.
    #[serde(default, deserialize_with = "secret_list")]
    pub api_keys: Vec<SecretString>,
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish before the server stops anyway.
    pub shutdown_timeout_ms: u64,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Seconds the producer remembers an `Idempotency-Key` and its answer.
    pub idempotency_ttl_secs: u64,
    /// How many `Idempotency-Key`s the producer remembers at most.
    pub idempotency_capacity: u64,
    /// `[producer.events.<name>]`: the CloudEvent types `POST /v1/events` accepts, and their topics.
    #[serde(default)]
    pub events: BTreeMap<String, EventRoute>,
}

/// `[consumer]`: the delivery runtime.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSettings {
    /// Most downstream calls in flight at once in one consumer process (over all partitions and keys).
    pub max_in_flight: usize,
    /// Most started-but-unfinished events per partition; the partition is paused at this bound and resumed
    /// when half of it drained, so memory stays bounded whatever the lag.
    pub max_buffered_per_partition: usize,
    /// Most started-but-unfinished events of the whole process, over all partitions (paused ones included);
    /// at this bound every partition is paused until half of it finished.
    pub max_buffered_total: usize,
    /// How often the watermark of finished events is committed.
    pub commit_interval_ms: u64,
    /// Delay cap of the first retry of a transient failure; doubles with each attempt (full jitter).
    pub retry_initial_backoff_ms: u64,
    /// Upper bound of any retry delay (Retry-After included).
    pub retry_max_backoff_ms: u64,
    /// Attempts per event (the first call included) before it is routed to the failure path.
    pub retry_max_attempts: u32,
    /// Longest time an event may spend retrying before it is routed to the failure path.
    pub retry_max_elapsed_ms: u64,
    /// On a rebalance, how long to wait for the revoked partitions' in-flight events before giving them up.
    pub rebalance_timeout_ms: u64,
    /// On shutdown, how long to wait for in-flight events before exiting.
    pub drain_timeout_ms: u64,
    /// An event an API has throttled (429) without a break for longer than this is listed on `/readyz`
    /// (`details`, without making the consumer not ready) and counted in `courier_events_throttled_long`.
    pub throttle_alert_ms: u64,
    /// After an event has been throttled without a break for this long, each further 429 spends one of its
    /// attempts, so that an API throttling one event for good dead-letters it in the end; 0: never (a 429 never
    /// spends an attempt).
    pub max_throttle_ms: u64,
    /// Address of the consumer's health server (`/healthz`, `/readyz`), `ip:port`; port 0 picks a free port.
    pub health_listen: String,
}

impl ConsumerSettings {
    /// `commit_interval_ms` as a duration.
    pub fn commit_interval(&self) -> Duration {
        Duration::from_millis(self.commit_interval_ms)
    }

    /// `rebalance_timeout_ms` as a duration.
    pub fn rebalance_timeout(&self) -> Duration {
        Duration::from_millis(self.rebalance_timeout_ms)
    }

    /// `drain_timeout_ms` as a duration.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    /// `throttle_alert_ms` as a duration.
    pub fn throttle_alert(&self) -> Duration {
        Duration::from_millis(self.throttle_alert_ms)
    }

    /// `max_throttle_ms` as a duration; `None` when 429s never spend attempts.
    pub fn max_throttle(&self) -> Option<Duration> {
        (self.max_throttle_ms > 0).then(|| Duration::from_millis(self.max_throttle_ms))
    }
}

/// `[apis]`: the downstream APIs by name, `[apis.<name>]`, each on top of `[apis.defaults]` (the layering is
/// done as settings load, so the environment can set either: `COURIER__APIS__<NAME>__<KEY>`).
#[derive(Debug, Clone, Default)]
pub struct ApisSettings {
    /// Every configured API by name, defaults filled in.
    named: BTreeMap<String, ApiSettings>,
}

/// The block under `[apis]` that holds what every API has by default.
pub const API_DEFAULTS: &str = "defaults";

impl<'de> Deserialize<'de> for ApisSettings {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut named = BTreeMap::<String, ApiSettings>::deserialize(deserializer)?;
        // Its keys were filled into every API as the settings loaded (`with_api_defaults`); it is not an API.
        named.remove(API_DEFAULTS);
        Ok(Self { named })
    }
}

impl ApisSettings {
    /// The API called `name`, or the error that names the missing block.
    pub fn get(&self, name: &str) -> Result<&ApiSettings, SettingsError> {
        self.named.get(name).ok_or_else(|| {
            invalid(
                format!("apis.{name}.base_url"),
                format!(
                    "no API named {name:?} is configured: add an [apis.{name}] block with its base_url (or set \
                     COURIER__APIS__{}__BASE_URL)",
                    name.to_uppercase()
                ),
            )
        })
    }

    /// Every configured API, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ApiSettings)> {
        self.named.iter().map(|(name, api)| (name.as_str(), api))
    }
}

/// A URL from settings, which may carry a secret (a password in `user:pw@`, an API key in `?api_key=…`): used as
/// it is ([`UrlSetting::as_str`]), printed (`Debug`, `--check`) without its user name, password, query and
/// fragment.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct UrlSetting(String);

impl UrlSetting {
    /// The URL, secrets and all: to call, never to print.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for UrlSetting {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for UrlSetting {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl From<String> for UrlSetting {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl PartialEq<&str> for UrlSetting {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Debug for UrlSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("\"\"");
        }
        match reqwest::Url::parse(&self.0) {
            Ok(url) => write!(f, "{:?}", crate::downstream::client::redacted(&url).as_str()),
            Err(_) => f.write_str("(not a URL)"),
        }
    }
}

/// One downstream API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Base URL; endpoint paths are appended to it. Printed without user name, password or query.
    #[serde(default)]
    pub base_url: UrlSetting,
    /// Longest wait for a TCP/TLS connection.
    pub connect_timeout_ms: u64,
    /// Longest wait for a whole request, response body included.
    pub request_timeout_ms: u64,
    /// How calls authenticate: `none`, `bearer`, `header`, `basic` or `oauth2`; empty (the default): `bearer`
    /// when `token` is set, else `none`.
    #[serde(default)]
    pub auth: String,
    /// Bearer token sent as `Authorization` (`auth = "bearer"`). A secret: never printed.
    #[serde(default)]
    pub token: Option<SecretString>,
    /// Name of the header carrying the credential with `auth = "header"`, e.g. `X-Api-Key`.
    #[serde(default)]
    pub auth_header: String,
    /// Value of that header. A secret: never printed.
    #[serde(default)]
    pub auth_header_value: Option<SecretString>,
    /// User name, with `auth = "basic"`.
    #[serde(default)]
    pub username: String,
    /// Password, with `auth = "basic"`. A secret: never printed.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// The OAuth 2.0 token endpoint, with `auth = "oauth2"` (client credentials). Printed without user name,
    /// password or query.
    #[serde(default)]
    pub oauth2_token_url: UrlSetting,
    /// The OAuth 2.0 client id.
    #[serde(default)]
    pub oauth2_client_id: String,
    /// The OAuth 2.0 client secret. A secret: never printed.
    #[serde(default)]
    pub oauth2_client_secret: Option<SecretString>,
    /// Scopes asked for, space-separated; empty: none.
    #[serde(default)]
    pub oauth2_scope: String,
    /// PEM file of CA certificates trusted for this API (beside the system's), e.g. a private CA.
    #[serde(default)]
    pub tls_ca_location: String,
    /// PEM file of a client certificate presented to this API (mutual TLS); with `tls_key_location`.
    #[serde(default)]
    pub tls_certificate_location: String,
    /// PEM file (PKCS#8) of the client certificate's private key.
    #[serde(default)]
    pub tls_key_location: String,
    /// Share of failed calls (5xx, timeout, connection error), in percent, within `breaker_window_ms` that
    /// opens the API's circuit breaker; 0 disables the breaker.
    pub breaker_failure_rate_percent: u8,
    /// Calls that must have ended within the window before the failure rate is judged.
    pub breaker_minimum_calls: u32,
    /// Different events whose calls must have failed within the window: one event's retries alone never
    /// open the breaker.
    pub breaker_minimum_failing_keys: u32,
    /// The breaker's sliding window.
    pub breaker_window_ms: u64,
    /// How long an open breaker waits before letting one probe call through.
    pub breaker_cooldown_ms: u64,
    /// Most requests per second sent to the API by one consumer process; 0 means no limit.
    pub rate_limit_per_sec: u32,
    /// Requests that may go out at once above the steady rate (the bucket size); at least 1 when limited.
    pub rate_limit_burst: u32,
    /// Most calls in flight to the API from one consumer process: the ceiling of the adaptive limit, or the
    /// limit itself when `adaptive_concurrency` is off.
    pub max_in_flight: usize,
    /// Whether the limit of calls in flight adapts to the API (grows while its latency stays near its
    /// floor, backs off on rising latency, 429, 503 and timeouts; see `courier::downstream::concurrency`).
    pub adaptive_concurrency: bool,
    /// Which HTTP version the calls use: `auto` (the default), `http1` or `http2`. The OAuth 2.0 token requests
    /// (`oauth2_token_url`) go through the same client, so they use it too.
    #[serde(default)]
    pub http_version: HttpVersion,
}

/// Which HTTP version an API's calls use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpVersion {
    /// HTTP/2 when an `https` API offers it (ALPN), else HTTP/1.1: one connection per call in flight.
    #[default]
    Auto,
    /// HTTP/1.1 only, `https` included: calls spread over as many connections as are in flight, so an L4 load
    /// balancer spreads them over the API's instances.
    Http1,
    /// HTTP/2 only: every call on one connection. Over `http` that is cleartext HTTP/2 (h2c, prior knowledge);
    /// an API that does not speak it fails every call.
    Http2,
}

impl ApiSettings {
    /// The connect timeout as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The request timeout as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// When the API's circuit breaker opens, and for how long.
    pub fn breaker_policy(&self) -> BreakerPolicy {
        BreakerPolicy {
            failure_rate_percent: self.breaker_failure_rate_percent,
            minimum_calls: self.breaker_minimum_calls,
            minimum_failing_keys: self.breaker_minimum_failing_keys,
            window: Duration::from_millis(self.breaker_window_ms),
            cooldown: Duration::from_millis(self.breaker_cooldown_ms),
        }
    }
}

/// `[dlq]`: dead-lettering.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqSettings {
    /// Whether undeliverable events go to the dead-letter topic `<topic>.<group>.dlq` (else they are logged
    /// and skipped).
    pub enabled: bool,
    /// Most events one consumer may dead-letter within any `guard_window_ms`; past it, events bound for the
    /// dead-letter topic wait their turn (a downstream outage or a bad deploy is not a stream of poison
    /// pills to dump at full speed); 0 disables the guard.
    pub guard_max_records: u32,
    /// The guard's sliding window.
    pub guard_window_ms: u64,
}

/// `[telemetry]`: logs, traces and metrics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `tracing` filter directive, e.g. `info` or `info,courier=debug`.
    pub log_level: String,
    /// `json` (one JSON object a line, for containers) or `pretty` (for people).
    pub log_format: LogFormat,
    /// OTLP/gRPC endpoint traces are exported to (e.g. `http://otel-collector:4317`); empty: not exported
    /// unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub otlp_endpoint: String,
    /// How often a consumer reads librdkafka's statistics for `courier_consumer_lag` (0: no lag metric).
    pub statistics_interval_ms: u64,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// `layered` with every key of `[apis.defaults]` filled into each `[apis.<name>]` that does not set it.
fn with_api_defaults(layered: Config) -> Result<Config, SettingsError> {
    let apis = layered.get_table("apis").unwrap_or_default();
    let Some(defaults) = apis.get(API_DEFAULTS).cloned() else {
        return Ok(layered);
    };
    let defaults = defaults.into_table()?;
    let mut builder = Config::builder().add_source(layered);
    for name in apis.keys().filter(|name| name.as_str() != API_DEFAULTS) {
        for (key, value) in &defaults {
            builder = builder.set_default(format!("apis.{name}.{key}"), value.clone())?;
        }
    }
    Ok(builder.build()?)
}

/// Why settings could not be loaded. The message always names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A source could not be read, or a value has the wrong type, or a setting is missing or unknown.
    #[error("invalid settings: {0}")]
    Load(#[from] config::ConfigError),
    /// A value has the right type but is not acceptable.
    #[error("invalid setting `{setting}`: {reason}")]
    Invalid {
        /// Dotted name of the setting, e.g. `kafka.bootstrap_servers`.
        setting: String,
        /// What is wrong with its value.
        reason: String,
    },
}

impl Settings {
    /// Loads settings from the defaults, the optional `file` and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        Self::load_with_env(file, None)
    }

    /// Like [`Settings::load`], but with `env` standing in for the process environment when given
    /// (tests use it: the process environment is shared by every test).
    pub fn load_with_env(file: Option<&Path>, env: Option<HashMap<String, String>>) -> Result<Settings, SettingsError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(File::from(path).required(true));
        }
        // Every value from the environment stays the text it was given (`0123`, `1e3` and `true` stay as they
        // are: no `try_parsing`) until the setting's type reads it: numbers and booleans parse then, and lists
        // take a comma-separated string (`routing::list`, `secret_list`).
        builder =
            builder.add_source(Environment::with_prefix("COURIER").prefix_separator("__").separator("__").source(env));
        let layered = with_api_defaults(builder.build()?)?;
        let settings: Settings = layered.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let k = &self.kafka;
        check(!k.bootstrap_servers.trim().is_empty(), "kafka.bootstrap_servers", "must name at least one broker")?;
        k.security().check().map_err(|(setting, reason)| invalid(setting, reason))?;
        check(k.session_timeout_ms > 0, "kafka.session_timeout_ms", "must be positive")?;
        check(
            k.heartbeat_interval_ms > 0 && u64::from(k.heartbeat_interval_ms) * 3 <= u64::from(k.session_timeout_ms),
            "kafka.heartbeat_interval_ms",
            "must be positive and at most a third of kafka.session_timeout_ms (a member must get several heartbeats \
             through before its session expires)",
        )?;
        check(
            k.max_poll_interval_ms >= k.session_timeout_ms,
            "kafka.max_poll_interval_ms",
            "must be at least kafka.session_timeout_ms",
        )?;
        check(k.fetch_wait_max_ms <= 300_000, "kafka.fetch_wait_max_ms", "must be at most 300000")?;
        let strategies: Vec<&str> = k.partition_assignment_strategy.split(',').map(str::trim).collect();
        check(
            strategies.iter().all(|s| matches!(*s, "range" | "roundrobin" | "cooperative-sticky"))
                && (!strategies.contains(&"cooperative-sticky") || strategies.len() == 1),
            "kafka.partition_assignment_strategy",
            "must be range, roundrobin or both (comma-separated), or cooperative-sticky alone",
        )?;
        check(
            matches!(k.auto_offset_reset.as_str(), "earliest" | "latest"),
            "kafka.auto_offset_reset",
            "must be earliest or latest",
        )?;
        check(
            k.group_instance_id.len() <= 249
                && k.group_instance_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "kafka.group_instance_id",
            "must be at most 249 characters of ASCII letters, digits, '.', '_' and '-' (empty: dynamic membership)",
        )?;
        check(
            k.rejoin_unassigned_after_ms == 0 || k.rejoin_unassigned_after_ms >= 2 * u64::from(k.session_timeout_ms),
            "kafka.rejoin_unassigned_after_ms",
            "must be 0 (never) or at least twice kafka.session_timeout_ms (a new member's first assignment can take \
             that long)",
        )?;
        check(!self.topics.orders_created.trim().is_empty(), "topics.orders_created", "must not be empty")?;
        check(!self.topics.payment_failed.trim().is_empty(), "topics.payment_failed", "must not be empty")?;
        check(!self.topics.orders_paid.trim().is_empty(), "topics.orders_paid", "must not be empty")?;
        check(self.topics.partitions >= 1, "topics.partitions", "must be at least 1")?;
        check(self.topics.replication_factor >= 1, "topics.replication_factor", "must be at least 1")?;

        let p = &self.producer;
        if let Err(e) = p.listen.parse::<SocketAddr>() {
            return Err(invalid("producer.listen", format!("{:?} is not ip:port ({e})", p.listen)));
        }
        check(p.publish_timeout_ms > 0, "producer.publish_timeout_ms", "must be positive")?;
        check(
            p.request_timeout_ms > p.publish_timeout_ms,
            "producer.request_timeout_ms",
            "must be above producer.publish_timeout_ms (a request waits for the broker's acknowledgement)",
        )?;
        check(p.max_body_bytes > 0, "producer.max_body_bytes", "must be positive")?;
        check(p.header_read_timeout_ms > 0, "producer.header_read_timeout_ms", "must be positive")?;
        check(
            (1..=MAX_CONCURRENCY).contains(&p.max_concurrent_requests),
            "producer.max_concurrent_requests",
            &format!("must be between 1 and {MAX_CONCURRENCY}"),
        )?;
        check(
            (1..=MAX_CONNECTIONS).contains(&p.max_connections),
            "producer.max_connections",
            &format!(
                "must be 1 to {MAX_CONNECTIONS} (each is an open file; Linux allows a process that many by default)"
            ),
        )?;
        {
            use secrecy::ExposeSecret;
            check(
                p.api_keys.iter().all(|key| key.expose_secret().trim().len() >= 16),
                "producer.api_keys",
                "every key must have at least 16 characters (and is a secret: set them with \
                 COURIER__PRODUCER__API_KEYS=key1,key2)",
            )?;
        }
        check(p.idempotency_capacity > 0, "producer.idempotency_capacity", "must be positive")?;
        check(
            (1..=MAX_IDEMPOTENCY_TTL_SECS).contains(&p.idempotency_ttl_secs),
            "producer.idempotency_ttl_secs",
            &format!(
                "must be between 1 and {MAX_IDEMPOTENCY_TTL_SECS} (a week): 0 would remember no Idempotency-Key, so \
                 a retried request would publish again"
            ),
        )?;
        routing::check_events(&p.events)?;
        routing::check_forward(&self.forward)?;

        let c = &self.consumer;
        check(c.max_in_flight >= 1, "consumer.max_in_flight", "must be at least 1 (0 would deliver nothing)")?;
        check(
            c.max_in_flight <= MAX_CONCURRENCY,
            "consumer.max_in_flight",
            &format!("must be at most {MAX_CONCURRENCY}"),
        )?;
        routing::check_batches(&self.forward, c.max_in_flight)?;
        check(c.max_buffered_per_partition >= 1, "consumer.max_buffered_per_partition", "must be at least 1")?;
        check(
            c.max_buffered_total >= c.max_buffered_per_partition,
            "consumer.max_buffered_total",
            "must be at least consumer.max_buffered_per_partition",
        )?;
        for (name, ms) in [
            ("consumer.commit_interval_ms", c.commit_interval_ms),
            ("consumer.retry_initial_backoff_ms", c.retry_initial_backoff_ms),
            ("consumer.retry_max_backoff_ms", c.retry_max_backoff_ms),
            ("consumer.retry_max_elapsed_ms", c.retry_max_elapsed_ms),
            ("consumer.rebalance_timeout_ms", c.rebalance_timeout_ms),
            ("consumer.drain_timeout_ms", c.drain_timeout_ms),
            ("consumer.throttle_alert_ms", c.throttle_alert_ms),
            ("consumer.max_throttle_ms", c.max_throttle_ms),
            ("producer.publish_timeout_ms", p.publish_timeout_ms),
            ("producer.request_timeout_ms", p.request_timeout_ms),
            ("producer.shutdown_timeout_ms", p.shutdown_timeout_ms),
            ("producer.header_read_timeout_ms", p.header_read_timeout_ms),
            ("dlq.guard_window_ms", self.dlq.guard_window_ms),
            ("kafka.rejoin_unassigned_after_ms", k.rejoin_unassigned_after_ms),
        ] {
            check_duration(name, ms)?;
        }
        check(c.commit_interval_ms > 0, "consumer.commit_interval_ms", "must be positive")?;
        check(
            c.rebalance_timeout_ms < u64::from(k.max_poll_interval_ms),
            "consumer.rebalance_timeout_ms",
            "must be below kafka.max_poll_interval_ms: the revoke waits on the poll thread, and a member that does \
             not poll within max_poll_interval_ms is thrown out of its group",
        )?;
        check(
            c.drain_timeout_ms <= MAX_STOP_MS,
            "consumer.drain_timeout_ms",
            &format!(
                "must be at most {MAX_STOP_MS} ms: with the final commit after it, a longer drain outlasts a \
                 container's stop (Kubernetes' default grace period is 30 s) and ends in SIGKILL"
            ),
        )?;
        check(c.retry_initial_backoff_ms > 0, "consumer.retry_initial_backoff_ms", "must be positive")?;
        check(
            c.retry_max_backoff_ms >= c.retry_initial_backoff_ms,
            "consumer.retry_max_backoff_ms",
            "must be at least consumer.retry_initial_backoff_ms",
        )?;
        check(c.retry_max_attempts >= 1, "consumer.retry_max_attempts", "must be at least 1")?;

        for (name, api) in self.apis.iter() {
            match reqwest::Url::parse(&api.base_url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                Ok(url) => {
                    return Err(invalid(
                        format!("apis.{name}.base_url"),
                        format!("scheme {:?} is not http or https", url.scheme()),
                    ));
                }
                Err(e) => {
                    return Err(invalid(format!("apis.{name}.base_url"), format!("is not a URL ({e})")));
                }
            }
            crate::downstream::auth::check(name, api).map_err(|(setting, reason)| invalid(setting, reason))?;
            for (key, path) in [
                ("tls_ca_location", &api.tls_ca_location),
                ("tls_certificate_location", &api.tls_certificate_location),
                ("tls_key_location", &api.tls_key_location),
            ] {
                check(
                    path.is_empty() || Path::new(path).is_file(),
                    &format!("apis.{name}.{key}"),
                    &format!("{path} is not a readable file"),
                )?;
            }
            check(
                api.tls_certificate_location.is_empty() == api.tls_key_location.is_empty(),
                &format!("apis.{name}.tls_key_location"),
                "a client certificate needs both tls_certificate_location and tls_key_location",
            )?;
            check(api.connect_timeout_ms > 0, &format!("apis.{name}.connect_timeout_ms"), "must be positive")?;
            check(
                (1..=MAX_CONCURRENCY).contains(&api.max_in_flight),
                &format!("apis.{name}.max_in_flight"),
                &format!("must be between 1 and {MAX_CONCURRENCY}"),
            )?;
            check(api.request_timeout_ms > 0, &format!("apis.{name}.request_timeout_ms"), "must be positive")?;
            for (key, ms) in [
                ("connect_timeout_ms", api.connect_timeout_ms),
                ("request_timeout_ms", api.request_timeout_ms),
                ("breaker_window_ms", api.breaker_window_ms),
                ("breaker_cooldown_ms", api.breaker_cooldown_ms),
            ] {
                check_duration(&format!("apis.{name}.{key}"), ms)?;
            }
            check(
                api.breaker_failure_rate_percent <= 100,
                &format!("apis.{name}.breaker_failure_rate_percent"),
                "must be a percentage, 0 (no breaker) to 100",
            )?;
            if api.breaker_failure_rate_percent > 0 {
                let field = |key: &str| format!("apis.{name}.{key}");
                let why = "must be positive while the breaker is on (breaker_failure_rate_percent > 0)";
                check(api.breaker_cooldown_ms > 0, &field("breaker_cooldown_ms"), why)?;
                check(api.breaker_window_ms > 0, &field("breaker_window_ms"), why)?;
                check(api.breaker_minimum_calls > 0, &field("breaker_minimum_calls"), why)?;
                check(api.breaker_minimum_failing_keys > 0, &field("breaker_minimum_failing_keys"), why)?;
            }
        }

        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.telemetry.log_level) {
            return Err(invalid("telemetry.log_level", e.to_string()));
        }
        let endpoint = self.telemetry.otlp_endpoint.trim();
        if !endpoint.is_empty()
            && reqwest::Url::parse(endpoint).map_or(true, |u| !["http", "https"].contains(&u.scheme()))
        {
            return Err(invalid("telemetry.otlp_endpoint", format!("{endpoint:?} is not an http(s) URL")));
        }
        if self.telemetry.statistics_interval_ms > MAX_DURATION_MS {
            return Err(invalid("telemetry.statistics_interval_ms", "longer than a week".to_owned()));
        }
        Ok(())
    }
}

/// The longest duration any `*_ms` setting may have: a week. Longer values are surely mistakes, and values
/// near `u64::MAX` would overflow the clock arithmetic of timers.
const MAX_DURATION_MS: u64 = 7 * 24 * 3600 * 1000;

/// The most calls or requests in flight any concurrency setting allows (`consumer.max_in_flight`,
/// `apis.<name>.max_in_flight`, `producer.max_concurrent_requests`). Each holds a connection (HTTP/1.1): more
/// than a process has file descriptors, or a host ephemeral ports towards one address, cannot work, and values
/// near `usize::MAX` would panic in the semaphores that enforce them.
const MAX_CONCURRENCY: usize = 65_536;

/// The longest `producer.idempotency_ttl_secs`: a week. The cache that remembers the keys panics on lifetimes
/// beyond 1,000 years.
const MAX_IDEMPOTENCY_TTL_SECS: u64 = MAX_DURATION_MS / 1000;

/// The longest drain a container stop allows for (Kubernetes' default grace period is 30 s; the final
/// commit and leaving the group follow the drain).
const MAX_STOP_MS: u64 = 25_000;

/// Largest `producer.max_connections`: Linux's default ceiling of open files per process (`fs.nr_open`).
const MAX_CONNECTIONS: usize = 1 << 20;

fn check_duration(setting: &str, ms: u64) -> Result<(), SettingsError> {
    check(ms <= MAX_DURATION_MS, setting, &format!("must be at most {MAX_DURATION_MS} ms (a week)"))
}

/// A list of secrets given as an array, or as one comma-separated string (as the environment gives it).
fn secret_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<SecretString>, D::Error> {
    Ok(routing::list(deserializer)?.into_iter().map(SecretString::from).collect())
}

fn invalid(setting: impl Into<String>, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { setting: setting.into(), reason: reason.into() }
}

fn check(ok: bool, setting: &str, reason: &str) -> Result<(), SettingsError> {
    if ok { Ok(()) } else { Err(invalid(setting, reason)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::load_with_env(None, env(&[])).expect("defaults are valid");
        assert_eq!(s.topics.orders_created, "orders.created");
        let inventory = s.apis.get("inventory").expect("inventory");
        assert!(inventory.token.is_none());
        assert!(inventory.adaptive_concurrency, "the limit of calls in flight adapts by default");
        assert_eq!(inventory.http_version, HttpVersion::Auto, "HTTP/2 only where an https API offers it");
        assert_eq!(inventory.max_in_flight, 512, "up to the ceiling of 512");
        let names: Vec<&str> = s.apis.iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["email", "inventory", "payment", "shipping", "sms"], "[apis.defaults] is not an API");
        assert!(s.forward.routes.is_empty(), "no forward route by default");
        assert_eq!(s.producer.events["users"].types, ["user.registered"]);
    }

    #[test]
    fn environment_overrides_defaults() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("COURIER__KAFKA__BOOTSTRAP_SERVERS", "broker-1:9092,broker-2:9092"),
                ("COURIER__KAFKA__SESSION_TIMEOUT_MS", "6000"),
                ("COURIER__KAFKA__HEARTBEAT_INTERVAL_MS", "1500"),
                ("COURIER__APIS__PAYMENT__BASE_URL", "https://pay.example.com/v2"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.kafka.bootstrap_servers, "broker-1:9092,broker-2:9092");
        assert_eq!(s.kafka.session_timeout_ms, 6000);
        assert_eq!(s.apis.get("payment").expect("payment").base_url, "https://pay.example.com/v2");
    }

    #[test]
    fn file_overrides_defaults_and_environment_overrides_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("courier.toml");
        std::fs::write(&path, "[kafka]\nbootstrap_servers = \"from-file:9092\"\nclient_id = \"file-client\"\n")
            .expect("write settings file");
        let s = Settings::load_with_env(Some(&path), env(&[("COURIER__KAFKA__BOOTSTRAP_SERVERS", "from-env:9092")]))
            .expect("valid");
        assert_eq!(s.kafka.bootstrap_servers, "from-env:9092", "environment wins over the file");
        assert_eq!(s.kafka.client_id, "file-client", "the file wins over the defaults");
        assert_eq!(s.kafka.session_timeout_ms, 45000, "defaults fill the rest");
    }

    #[test]
    fn apis_are_named_blocks_on_top_of_the_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("courier.toml");
        std::fs::write(&path, "[apis.shipping]\nbase_url = \"http://labels.example.com\"\nrate_limit_per_sec = 5\n")
            .expect("write settings file");
        let s = Settings::load_with_env(
            Some(&path),
            env(&[
                ("COURIER__APIS__DEFAULTS__REQUEST_TIMEOUT_MS", "5000"),
                ("COURIER__APIS__PAYMENT__REQUEST_TIMEOUT_MS", "7000"),
                ("COURIER__APIS__AUTH__BASE_URL", "https://auth.example.com"),
            ]),
        )
        .expect("valid");
        let api = |name: &str| s.apis.get(name).expect(name).clone();
        assert_eq!(api("shipping").base_url, "http://labels.example.com");
        assert_eq!(api("shipping").rate_limit_per_sec, 5, "its own block wins");
        assert_eq!(api("shipping").request_timeout_ms, 5000, "the defaults fill in the rest");
        assert_eq!(api("shipping").connect_timeout_ms, 2000);
        assert_eq!(api("payment").request_timeout_ms, 7000);
        assert_eq!(api("inventory").request_timeout_ms, 5000);
        assert_eq!(api("auth").base_url, "https://auth.example.com", "an API can come from the environment alone");
        assert_eq!(api("auth").breaker_failure_rate_percent, 50);
        let missing = s.apis.get("labels").expect_err("not configured").to_string();
        assert!(
            missing.contains("apis.labels.base_url") && missing.contains("COURIER__APIS__LABELS__BASE_URL"),
            "{missing}"
        );
        let no_url = Settings::load_with_env(None, env(&[("COURIER__APIS__CRM__TOKEN", "t0ken")]));
        let error = no_url.expect_err("an API without a base URL").to_string();
        assert!(error.contains("apis.crm.base_url"), "{error}");
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::load_with_env(None, env(&[("COURIER__APIS__SMS__TOKEN", "hunter2")])).expect("valid");
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        use secrecy::ExposeSecret;
        assert_eq!(
            s.apis.get("sms").expect("sms").token.as_ref().map(|t| t.expose_secret().to_owned()),
            Some("hunter2".into())
        );
    }

    #[test]
    fn the_secrets_of_an_apis_url_never_print() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("COURIER__APIS__HOOK__BASE_URL", "https://svc:pw-S3CR3T@hooks.example.com/in?token=T0KEN-1#frag"),
                ("COURIER__APIS__HOOK__AUTH", "oauth2"),
                ("COURIER__APIS__HOOK__OAUTH2_TOKEN_URL", "https://id.example.com/token?client_key=T0KEN-2"),
                ("COURIER__APIS__HOOK__OAUTH2_CLIENT_ID", "courier"),
                ("COURIER__APIS__HOOK__OAUTH2_CLIENT_SECRET", "client-secret"),
            ]),
        )
        .expect("valid");
        let printed = format!("{s:#?}");
        for secret in ["pw-S3CR3T", "T0KEN-1", "T0KEN-2", "svc:", "frag"] {
            assert!(!printed.contains(secret), "{secret} printed: {printed}");
        }
        assert!(
            printed.contains("\"https://hooks.example.com/in\"") && printed.contains("https://id.example.com/token")
        );
        let hook = s.apis.get("hook").expect("hook");
        assert_eq!(
            hook.base_url.as_str(),
            "https://svc:pw-S3CR3T@hooks.example.com/in?token=T0KEN-1#frag",
            "used whole"
        );
        let error = Settings::load_with_env(None, env(&[("COURIER__APIS__HOOK__BASE_URL", "T0KEN-3 is not a URL")]))
            .expect_err("not a URL")
            .to_string();
        assert!(error.contains("apis.hook.base_url") && !error.contains("T0KEN-3"), "{error}");
    }

    #[test]
    fn security_settings_and_lists_come_from_the_environment() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("COURIER__KAFKA__SECURITY_PROTOCOL", "sasl_ssl"),
                ("COURIER__KAFKA__SASL__MECHANISM", "SCRAM-SHA-256"),
                ("COURIER__KAFKA__SASL__USERNAME", "svc"),
                ("COURIER__KAFKA__SASL__PASSWORD", "123456"),
                ("COURIER__KAFKA__PROPERTIES__CLIENT_RACK", "use1-az1"),
                ("COURIER__PRODUCER__API_KEYS", "first-key-0123456789,second-key-0123456789"),
                ("COURIER__APIS__PAYMENT__AUTH", "header"),
                ("COURIER__APIS__PAYMENT__AUTH_HEADER", "X-Api-Key"),
                ("COURIER__APIS__PAYMENT__AUTH_HEADER_VALUE", "pay-secret"),
            ]),
        )
        .expect("valid");
        use secrecy::ExposeSecret;
        let password = s.kafka.sasl.password.as_ref().map(|p| p.expose_secret().to_owned());
        assert_eq!(password.as_deref(), Some("123456"), "a numeric password stays text");
        let properties: Vec<(String, String)> = s.kafka.properties.iter().map(|(k, v)| (k, v.to_owned())).collect();
        assert_eq!(properties, [("client.rack".to_owned(), "use1-az1".to_owned())]);
        assert_eq!(s.producer.api_keys.len(), 2);
        let printed = format!("{s:?}");
        for secret in ["123456", "first-key-0123456789", "pay-secret"] {
            assert!(!printed.contains(secret), "{secret} printed");
        }
        let mut config = rdkafka::ClientConfig::new();
        s.kafka.security().apply(&mut config);
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(config.get("client.rack"), Some("use1-az1"));
    }

    #[test]
    fn environment_strings_arrive_byte_for_byte() {
        use secrecy::ExposeSecret;
        let exposed = |secret: &Option<SecretString>| secret.as_ref().map(|s| s.expose_secret().to_owned());
        for value in ["0123", "1e3", "true", "00", "-0", "1_000", "0x10", " 7 "] {
            let s = Settings::load_with_env(
                None,
                env(&[
                    ("COURIER__KAFKA__CLIENT_ID", value),
                    ("COURIER__KAFKA__GROUP_ID_PREFIX", value),
                    ("COURIER__KAFKA__SECURITY_PROTOCOL", "sasl_plaintext"),
                    ("COURIER__KAFKA__SASL__MECHANISM", "SCRAM-SHA-512"),
                    ("COURIER__KAFKA__SASL__USERNAME", value),
                    ("COURIER__KAFKA__SASL__PASSWORD", value),
                    ("COURIER__KAFKA__PROPERTIES__CLIENT_RACK", value),
                    ("COURIER__APIS__PAYMENT__TOKEN", value),
                    ("COURIER__APIS__SHIPPING__AUTH", "oauth2"),
                    ("COURIER__APIS__SHIPPING__OAUTH2_TOKEN_URL", "https://auth.example.com/token"),
                    ("COURIER__APIS__SHIPPING__OAUTH2_CLIENT_ID", value),
                    ("COURIER__APIS__SHIPPING__OAUTH2_CLIENT_SECRET", value),
                    ("COURIER__PRODUCER__API_KEYS", "00001234567890123456"),
                ]),
            )
            .unwrap_or_else(|e| panic!("{value:?}: {e}"));
            assert_eq!(s.kafka.client_id, value, "kafka.client_id");
            assert_eq!(s.kafka.group_id_prefix, value, "kafka.group_id_prefix");
            assert_eq!(s.kafka.sasl.username, value, "kafka.sasl.username");
            assert_eq!(exposed(&s.kafka.sasl.password).as_deref(), Some(value), "kafka.sasl.password");
            let rack: Vec<(String, String)> = s.kafka.properties.iter().map(|(k, v)| (k, v.to_owned())).collect();
            assert_eq!(rack, [("client.rack".to_owned(), value.to_owned())], "kafka.properties.client.rack");
            let payment = s.apis.get("payment").expect("payment");
            assert_eq!(exposed(&payment.token).as_deref(), Some(value), "apis.payment.token");
            let shipping = s.apis.get("shipping").expect("shipping");
            assert_eq!(shipping.oauth2_client_id, value, "apis.shipping.oauth2_client_id");
            assert_eq!(exposed(&shipping.oauth2_client_secret).as_deref(), Some(value), "its secret");
            let keys: Vec<String> = s.producer.api_keys.iter().map(|k| k.expose_secret().to_owned()).collect();
            assert_eq!(keys, ["00001234567890123456"], "producer.api_keys");
        }
    }

    #[test]
    fn numbers_booleans_and_lists_still_come_from_the_environment() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("COURIER__CONSUMER__MAX_IN_FLIGHT", "064"),
                ("COURIER__KAFKA__SESSION_TIMEOUT_MS", "6000"),
                ("COURIER__KAFKA__HEARTBEAT_INTERVAL_MS", "1500"),
                ("COURIER__TOPICS__PARTITIONS", "3"),
                ("COURIER__TOPICS__CREATE", "false"),
                ("COURIER__DLQ__ENABLED", "FALSE"),
                ("COURIER__APIS__DEFAULTS__MAX_IN_FLIGHT", "32"),
                ("COURIER__APIS__PAYMENT__ADAPTIVE_CONCURRENCY", "false"),
                ("COURIER__APIS__PAYMENT__BREAKER_FAILURE_RATE_PERCENT", "25"),
                ("COURIER__TELEMETRY__LOG_FORMAT", "pretty"),
                ("COURIER__PRODUCER__API_KEYS", "first-key-0123456789,second-key-0123456789"),
                ("COURIER__FORWARD__ROUTES__CRM__TOPICS", "users.registered,users.updated"),
                ("COURIER__FORWARD__ROUTES__CRM__BATCH_MAX_EVENTS", "20"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.consumer.max_in_flight, 64);
        assert_eq!(s.kafka.session_timeout_ms, 6000);
        assert_eq!((s.topics.partitions, s.topics.create, s.dlq.enabled), (3, false, false));
        let payment = s.apis.get("payment").expect("payment");
        assert_eq!((payment.max_in_flight, payment.adaptive_concurrency), (32, false));
        assert_eq!(payment.breaker_failure_rate_percent, 25);
        assert_eq!(s.apis.get("inventory").expect("inventory").max_in_flight, 32, "[apis.defaults] from the env");
        assert_eq!(s.telemetry.log_format, LogFormat::Pretty);
        use secrecy::ExposeSecret;
        let keys: Vec<&str> = s.producer.api_keys.iter().map(|k| k.expose_secret()).collect();
        assert_eq!(keys, ["first-key-0123456789", "second-key-0123456789"]);
        assert_eq!(s.forward.routes["crm"].topics, ["users.registered", "users.updated"]);
        assert_eq!(s.forward.routes["crm"].batch_max_events, 20);
    }

    #[test]
    fn values_that_would_panic_or_never_work_name_the_setting() {
        let route = |batch: &'static str, in_flight: &'static str| {
            vec![
                ("COURIER__FORWARD__ROUTES__CRM__TOPICS", "users.registered"),
                ("COURIER__FORWARD__ROUTES__CRM__BATCH_MAX_EVENTS", batch),
                ("COURIER__CONSUMER__MAX_IN_FLIGHT", in_flight),
            ]
        };
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("COURIER__PRODUCER__IDEMPOTENCY_TTL_SECS", "0")], "producer.idempotency_ttl_secs"),
            (
                vec![("COURIER__PRODUCER__IDEMPOTENCY_TTL_SECS", "18446744073709551615")],
                "producer.idempotency_ttl_secs",
            ),
            (vec![("COURIER__PRODUCER__IDEMPOTENCY_TTL_SECS", "2592000")], "producer.idempotency_ttl_secs"),
            (vec![("COURIER__CONSUMER__MAX_IN_FLIGHT", "2305843009213693952")], "consumer.max_in_flight"),
            (vec![("COURIER__CONSUMER__MAX_IN_FLIGHT", "100000")], "consumer.max_in_flight"),
            (
                vec![("COURIER__PRODUCER__MAX_CONCURRENT_REQUESTS", "18446744073709551615")],
                "producer.max_concurrent_requests",
            ),
            (vec![("COURIER__PRODUCER__MAX_CONCURRENT_REQUESTS", "100000")], "producer.max_concurrent_requests"),
            (vec![("COURIER__APIS__PAYMENT__MAX_IN_FLIGHT", "2305843009213693952")], "apis.payment.max_in_flight"),
            (vec![("COURIER__APIS__DEFAULTS__MAX_IN_FLIGHT", "100000")], "max_in_flight"),
            (route("100", "50"), "forward.routes.crm.batch_max_events"),
            (vec![("COURIER__KAFKA__PROPERTIES__DELIVERY_TIMEOUT_MS", "1000")], "kafka.properties.delivery.timeout.ms"),
            (
                vec![("COURIER__KAFKA__PROPERTIES__ENABLE_SSL_CERTIFICATE_VERIFICATION", "false")],
                "kafka.properties.enable.ssl.certificate.verification",
            ),
            (
                vec![("COURIER__KAFKA__PROPERTIES__SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", "none")],
                "kafka.properties.ssl.endpoint.identification.algorithm",
            ),
        ];
        let mut accepted = Vec::new();
        for (pairs, setting) in cases {
            match Settings::load_with_env(None, env(&pairs)) {
                Err(err) if err.to_string().contains(setting) => {}
                other => accepted.push(format!("{pairs:?} → {:?}, not an error naming {setting}", other.map(|_| ()))),
            }
        }
        assert!(accepted.is_empty(), "{accepted:#?}");
        assert!(Settings::load_with_env(None, env(&route("50", "50"))).is_ok(), "a batch of max_in_flight fills");
        for (key, value) in [
            ("COURIER__PRODUCER__IDEMPOTENCY_TTL_SECS", "604800"),
            ("COURIER__CONSUMER__MAX_IN_FLIGHT", "65536"),
            ("COURIER__PRODUCER__MAX_CONCURRENT_REQUESTS", "65536"),
            ("COURIER__KAFKA__PROPERTIES__SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", "https"),
        ] {
            assert!(Settings::load_with_env(None, env(&[(key, value)])).is_ok(), "{key}={value} is within bounds");
        }
    }

    #[test]
    fn insecure_skip_verify_turns_the_verification_off_explicitly() {
        let s = Settings::load_with_env(
            None,
            env(&[("COURIER__KAFKA__SECURITY_PROTOCOL", "ssl"), ("COURIER__KAFKA__TLS__INSECURE_SKIP_VERIFY", "true")]),
        )
        .expect("valid");
        assert!(s.kafka.tls.insecure_skip_verify);
        let config = crate::kafka::base_config(&s.kafka, "test");
        assert_eq!(config.get("enable.ssl.certificate.verification"), Some("false"));
        assert_eq!(config.get("ssl.endpoint.identification.algorithm"), Some("none"));
        let verified = Settings::load_with_env(None, env(&[("COURIER__KAFKA__SECURITY_PROTOCOL", "ssl")])).expect("ok");
        assert!(!verified.kafka.tls.insecure_skip_verify, "verified by default");
        let config = crate::kafka::base_config(&verified.kafka, "test");
        assert_eq!(config.get("enable.ssl.certificate.verification"), None);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases = [
            ("COURIER__KAFKA__SESSION_TIMEOUT_MS", "soon", "kafka.session_timeout_ms"),
            ("COURIER__KAFKA__BOOTSTRAP_SERVERS", " ", "kafka.bootstrap_servers"),
            ("COURIER__KAFKA__HEARTBEAT_INTERVAL_MS", "999999", "kafka.heartbeat_interval_ms"),
            ("COURIER__PRODUCER__LISTEN", "everywhere", "producer.listen"),
            ("COURIER__APIS__INVENTORY__BASE_URL", "ftp://x", "apis.inventory.base_url"),
            ("COURIER__APIS__EMAIL__BASE_URL", "not a url", "apis.email.base_url"),
            ("COURIER__TELEMETRY__LOG_FORMAT", "xml", "telemetry.log_format"),
            ("COURIER__KAFKA__BOOTSTRAP_SERVER", "typo:9092", "bootstrap_server"),
            ("COURIER__CONSUMER__MAX_IN_FLIGHT", "0", "consumer.max_in_flight"),
            ("COURIER__APIS__PAYMENT__MAX_IN_FLIGHT", "0", "apis.payment.max_in_flight"),
            ("COURIER__CONSUMER__RETRY_MAX_ELAPSED_MS", "18446744073709551615", "consumer.retry_max_elapsed_ms"),
            ("COURIER__APIS__SMS__REQUEST_TIMEOUT_MS", "18446744073709551615", "apis.sms.request_timeout_ms"),
            ("COURIER__APIS__PAYMENT__BREAKER_COOLDOWN_MS", "0", "apis.payment.breaker_cooldown_ms"),
            (
                "COURIER__APIS__PAYMENT__BREAKER_FAILURE_RATE_PERCENT",
                "150",
                "apis.payment.breaker_failure_rate_percent",
            ),
            ("COURIER__KAFKA__HEARTBEAT_INTERVAL_MS", "20000", "kafka.heartbeat_interval_ms"),
            ("COURIER__CONSUMER__REBALANCE_TIMEOUT_MS", "400000", "consumer.rebalance_timeout_ms"),
            ("COURIER__CONSUMER__DRAIN_TIMEOUT_MS", "60000", "consumer.drain_timeout_ms"),
            ("COURIER__CONSUMER__MAX_BUFFERED_TOTAL", "10", "consumer.max_buffered_total"),
            ("COURIER__KAFKA__AUTO_OFFSET_RESET", "none", "kafka.auto_offset_reset"),
            ("COURIER__KAFKA__GROUP_INSTANCE_ID", "pod 1", "kafka.group_instance_id"),
            ("COURIER__KAFKA__SECURITY_PROTOCOL", "SASL-SSL", "kafka.security_protocol"),
            ("COURIER__KAFKA__PROPERTIES__ENABLE_AUTO_COMMIT", "true", "kafka.properties.enable.auto.commit"),
            ("COURIER__KAFKA__PROPERTIES__CLIENT_RAK", "az1", "kafka.properties.client.rak"),
            ("COURIER__PRODUCER__API_KEYS", "short", "producer.api_keys"),
            ("COURIER__PRODUCER__MAX_CONCURRENT_REQUESTS", "0", "producer.max_concurrent_requests"),
            ("COURIER__PRODUCER__MAX_CONNECTIONS", "0", "producer.max_connections"),
            ("COURIER__PRODUCER__MAX_CONNECTIONS", "2000000", "producer.max_connections"),
            ("COURIER__APIS__PAYMENT__AUTH", "basic", "apis.payment.username"),
            ("COURIER__APIS__PAYMENT__AUTH", "kerberos", "apis.payment.auth"),
            ("COURIER__APIS__PAYMENT__HTTP_VERSION", "http3", "apis.payment.http_version"),
            ("COURIER__APIS__SMS__TLS_CA_LOCATION", "/nowhere/ca.pem", "apis.sms.tls_ca_location"),
        ];
        for (key, value, setting) in cases {
            let err = Settings::load_with_env(None, env(&[(key, value)])).expect_err(key).to_string();
            assert!(err.contains(setting), "{key}={value}: {err:?} does not name {setting}");
        }
    }
}
