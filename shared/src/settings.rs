//! Typed settings, one section per module, layered and validated at start-up.
//!
//! Sources, each overriding the one before:
//! 1. `config/default.toml`, compiled into every binary: every key with its default and what it is for (the
//!    one place defaults are written; a section type has no defaults of its own);
//! 2. an optional file given with `--config FILE` (or `COURIER_CONFIG`);
//! 3. environment variables `COURIER__<SECTION>__<KEY>`, e.g. `COURIER__KAFKA__BOOTSTRAP_SERVERS`.
//!
//! Each table of the file is a type in a module of its own, which reads its values typed (durations as
//! `Duration` from their `_ms` and `_secs` keys, listen addresses as `SocketAddr`) and checks each of its
//! fields: `kafka.rs` (`[kafka]`), `topics.rs` (`[topics]`), `producer.rs` (`[producer]`, `[producer.events]`),
//! `consumer.rs` (`[consumer]`), `apis.rs` (`[apis]`, with `url.rs` for their URLs and `signing.rs` for
//! `[apis.<name>.signing]`), `dlq.rs` (`[dlq]`),
//! `forward.rs` (`[forward.routes]`), `schema_registry.rs` (`[schema_registry]`) and `telemetry.rs` (`[telemetry]`). The rules that relate two settings
//! are in `rules.rs`; `durations.rs` and `lists.rs` say how durations and lists are read, `status_codes.rs` how
//! lists of HTTP status codes are.
//!
//! [`Settings::load`] rejects unknown keys (a typo must not be ignored silently) and checks every value, so a
//! bad or missing setting stops the program with an error that names the setting.

use std::collections::HashMap;
use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

mod apis;
mod consumer;
mod dlq;
mod durations;
mod forward;
mod kafka;
mod lists;
mod producer;
mod rules;
mod schema_registry;
mod signing;
mod status_codes;
mod telemetry;
mod topics;
mod url;

pub use apis::{API_DEFAULTS, ApiSettings, ApisSettings, HttpVersion};
pub use consumer::ConsumerSettings;
pub use dlq::DlqSettings;
pub use forward::{BodyMode, ForwardRoute, ForwardSettings, MAX_BATCH_EVENTS};
pub use kafka::KafkaSettings;
pub use producer::{EventRoute, ProducerSettings};
pub use schema_registry::{REGISTRY_AUTH_MODES, SchemaRegistrySettings};
pub use signing::{HmacAlgorithm, SignatureEncoding, SigningScheme, SigningSettings};
pub use status_codes::StatusCodes;
pub use telemetry::{LogFormat, TelemetrySettings};
pub use topics::{TopicNames, TopicSettings};
pub use url::UrlSetting;

pub use crate::kafka::security::{KafkaProperties, SaslSettings, Security, TlsSettings};

/// The defaults, with a comment on every setting.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Every setting of courier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// How to reach the Kafka cluster and how consumers behave in their group.
    pub kafka: KafkaSettings,
    /// How topics are created, and the topics the order flow names.
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
    /// The Schema Registry of the `avro`, `protobuf` and `json-schema` formats (none by default).
    pub schema_registry: SchemaRegistrySettings,
    /// Logging, traces and the lag metric.
    pub telemetry: TelemetrySettings,
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
        // take a comma-separated string (`lists.rs`).
        builder =
            builder.add_source(Environment::with_prefix("COURIER").prefix_separator("__").separator("__").source(env));
        let layered = apis::with_api_defaults(builder.build()?)?;
        let settings: Settings = layered.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot: each section its own fields, then the rules between settings.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.kafka.validate()?;
        self.topics.validate()?;
        self.producer.validate()?;
        self.forward.validate()?;
        self.consumer.validate()?;
        self.apis.validate()?;
        self.dlq.validate()?;
        self.schema_registry.validate()?;
        self.telemetry.validate()?;
        rules::check_all(self)
    }
}

/// The most calls or requests in flight any concurrency setting allows (`consumer.max_in_flight`,
/// `apis.<name>.max_in_flight`, `producer.max_concurrent_requests`). Each holds a connection (HTTP/1.1): more
/// than a process has file descriptors, or a host ephemeral ports towards one address, cannot work, and values
/// near `usize::MAX` would panic in the semaphores that enforce them.
const MAX_CONCURRENCY: usize = 65_536;

/// The error that `setting`'s value is not acceptable, and why.
fn invalid(setting: impl Into<String>, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { setting: setting.into(), reason: reason.into() }
}

/// `Ok` when `ok`, else the error that `setting`'s value is not acceptable, and why.
fn check(ok: bool, setting: &str, reason: &str) -> Result<(), SettingsError> {
    if ok { Ok(()) } else { Err(invalid(setting, reason)) }
}

/// What the tests of every section load settings with.
#[cfg(test)]
mod testing {
    use super::{Settings, SettingsError};

    /// The defaults with `pairs` as the environment.
    pub(super) fn load(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::load_with_env(None, Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
    }

    /// The defaults, then a settings file holding `toml`, then `pairs` as the environment.
    pub(super) fn load_with_file(toml: &str, pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("courier.toml");
        std::fs::write(&path, toml).expect("write settings file");
        let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::load_with_env(Some(&path), Some(env))
    }

    /// Asserts that each `(variable, value, setting)` is refused with an error naming `setting`.
    pub(super) fn assert_refused(cases: &[(&str, &str, &str)]) {
        for (key, value, setting) in cases {
            let err = load(&[(key, value)]).expect_err(key).to_string();
            assert!(err.contains(setting), "{key}={value}: {err:?} does not name {setting}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::{ExposeSecret, SecretString};

    use super::testing::load;
    use super::*;

    #[test]
    fn defaults_load_and_validate() {
        let s = load(&[]).expect("defaults are valid");
        assert_eq!(s.topics.names.get("orders_created"), "orders.created");
        assert!(s.forward.routes.is_empty(), "no forward route by default");
        assert_eq!(s.producer.events["users"].types, ["user.registered"]);
        assert_eq!(s.consumer.rebalance_timeout_ms, Duration::from_secs(10), "durations read as milliseconds");
        assert_eq!(s.producer.idempotency_ttl_secs, Duration::from_secs(86_400), "and as seconds");
        assert_eq!(s.consumer.health_listen.port(), 8081);
    }

    #[test]
    fn environment_overrides_defaults() {
        let s = load(&[
            ("COURIER__KAFKA__BOOTSTRAP_SERVERS", "broker-1:9092,broker-2:9092"),
            ("COURIER__KAFKA__SESSION_TIMEOUT_MS", "6000"),
            ("COURIER__KAFKA__HEARTBEAT_INTERVAL_MS", "1500"),
            ("COURIER__APIS__PAYMENT__BASE_URL", "https://pay.example.com/v2"),
        ])
        .expect("valid");
        assert_eq!(s.kafka.bootstrap_servers, "broker-1:9092,broker-2:9092");
        assert_eq!(s.kafka.session_timeout_ms, Duration::from_millis(6000));
        assert_eq!(s.apis.get("payment").expect("payment").base_url, "https://pay.example.com/v2");
    }

    #[test]
    fn file_overrides_defaults_and_environment_overrides_file() {
        let file = "[kafka]\nbootstrap_servers = \"from-file:9092\"\nclient_id = \"file-client\"\n";
        let s =
            testing::load_with_file(file, &[("COURIER__KAFKA__BOOTSTRAP_SERVERS", "from-env:9092")]).expect("valid");
        assert_eq!(s.kafka.bootstrap_servers, "from-env:9092", "environment wins over the file");
        assert_eq!(s.kafka.client_id, "file-client", "the file wins over the defaults");
        assert_eq!(s.kafka.session_timeout_ms, Duration::from_millis(45000), "defaults fill the rest");
    }

    #[test]
    fn secrets_never_print() {
        let s = load(&[("COURIER__APIS__SMS__TOKEN", "hunter2")]).expect("valid");
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(
            s.apis.get("sms").expect("sms").token.as_ref().map(|t| t.expose_secret().to_owned()),
            Some("hunter2".into())
        );
    }

    #[test]
    fn security_settings_and_lists_come_from_the_environment() {
        let s = load(&[
            ("COURIER__KAFKA__SECURITY_PROTOCOL", "sasl_ssl"),
            ("COURIER__KAFKA__SASL__MECHANISM", "SCRAM-SHA-256"),
            ("COURIER__KAFKA__SASL__USERNAME", "svc"),
            ("COURIER__KAFKA__SASL__PASSWORD", "123456"),
            ("COURIER__KAFKA__PROPERTIES__CLIENT_RACK", "use1-az1"),
            ("COURIER__PRODUCER__API_KEYS", "first-key-0123456789,second-key-0123456789"),
            ("COURIER__APIS__PAYMENT__AUTH", "header"),
            ("COURIER__APIS__PAYMENT__AUTH_HEADER", "X-Api-Key"),
            ("COURIER__APIS__PAYMENT__AUTH_HEADER_VALUE", "pay-secret"),
        ])
        .expect("valid");
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
        let exposed = |secret: &Option<SecretString>| secret.as_ref().map(|s| s.expose_secret().to_owned());
        for value in ["0123", "1e3", "true", "00", "-0", "1_000", "0x10", " 7 "] {
            let s = load(&[
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
                ("COURIER__TOPICS__ORDERS_PAID", value),
            ])
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
            assert_eq!(s.topics.names.get("orders_paid"), value, "topics.orders_paid");
        }
    }

    #[test]
    fn numbers_booleans_and_lists_still_come_from_the_environment() {
        let s = load(&[
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
            ("COURIER__PRODUCER__IDEMPOTENCY_TTL_SECS", "0600"),
            ("COURIER__FORWARD__ROUTES__CRM__TOPICS", "users.registered,users.updated"),
            ("COURIER__FORWARD__ROUTES__CRM__BATCH_MAX_EVENTS", "20"),
        ])
        .expect("valid");
        assert_eq!(s.consumer.max_in_flight, 64);
        assert_eq!(s.kafka.session_timeout_ms, Duration::from_millis(6000));
        assert_eq!(s.producer.idempotency_ttl_secs, Duration::from_secs(600));
        assert_eq!((s.topics.partitions, s.topics.create, s.dlq.enabled), (3, false, false));
        let payment = s.apis.get("payment").expect("payment");
        assert_eq!((payment.max_in_flight, payment.adaptive_concurrency), (32, false));
        assert_eq!(payment.breaker_failure_rate_percent, 25);
        assert_eq!(s.apis.get("inventory").expect("inventory").max_in_flight, 32, "[apis.defaults] from the env");
        assert_eq!(s.telemetry.log_format, LogFormat::Pretty);
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
            match load(&pairs) {
                Err(err) if err.to_string().contains(setting) => {}
                other => accepted.push(format!("{pairs:?} → {:?}, not an error naming {setting}", other.map(|_| ()))),
            }
        }
        assert!(accepted.is_empty(), "{accepted:#?}");
        assert!(load(&route("50", "50")).is_ok(), "a batch of max_in_flight fills");
        for (key, value) in [
            ("COURIER__PRODUCER__IDEMPOTENCY_TTL_SECS", "604800"),
            ("COURIER__CONSUMER__MAX_IN_FLIGHT", "65536"),
            ("COURIER__PRODUCER__MAX_CONCURRENT_REQUESTS", "65536"),
            ("COURIER__KAFKA__PROPERTIES__SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", "https"),
        ] {
            assert!(load(&[(key, value)]).is_ok(), "{key}={value} is within bounds");
        }
    }

    /// Each section's checks (`kafka.rs`, `topics.rs`, …) and the rules between them (`rules.rs`) name the
    /// setting to change.
    #[test]
    fn bad_values_name_the_setting() {
        testing::assert_refused(&[
            // [kafka]
            ("COURIER__KAFKA__SESSION_TIMEOUT_MS", "soon", "kafka.session_timeout_ms"),
            ("COURIER__KAFKA__SESSION_TIMEOUT_MS", "0", "kafka.session_timeout_ms"),
            ("COURIER__KAFKA__BOOTSTRAP_SERVERS", " ", "kafka.bootstrap_servers"),
            ("COURIER__KAFKA__BOOTSTRAP_SERVER", "typo:9092", "bootstrap_server"),
            ("COURIER__KAFKA__FETCH_WAIT_MAX_MS", "300001", "kafka.fetch_wait_max_ms"),
            ("COURIER__KAFKA__MAX_POLL_INTERVAL_MS", "18446744073709551615", "kafka.max_poll_interval_ms"),
            ("COURIER__KAFKA__AUTO_OFFSET_RESET", "none", "kafka.auto_offset_reset"),
            ("COURIER__KAFKA__GROUP_INSTANCE_ID", "pod 1", "kafka.group_instance_id"),
            ("COURIER__KAFKA__SECURITY_PROTOCOL", "SASL-SSL", "kafka.security_protocol"),
            ("COURIER__KAFKA__PARTITION_ASSIGNMENT_STRATEGY", "range,cooperative-sticky", "partition_assignment"),
            ("COURIER__KAFKA__PROPERTIES__ENABLE_AUTO_COMMIT", "true", "kafka.properties.enable.auto.commit"),
            ("COURIER__KAFKA__PROPERTIES__CLIENT_RAK", "az1", "kafka.properties.client.rak"),
            // [topics]
            ("COURIER__TOPICS__ORDERS_CREATED", " ", "topics.orders_created"),
            ("COURIER__TOPICS__PAYMENT_FAILED", "", "topics.payment_failed"),
            ("COURIER__TOPICS__ORDERS_CREATD", "orders.created", "orders_creatd"),
            ("COURIER__TOPICS__PARTITIONS", "0", "topics.partitions"),
            ("COURIER__TOPICS__PARTITIONS", "many", "topics.partitions"),
            ("COURIER__TOPICS__REPLICATION_FACTOR", "0", "topics.replication_factor"),
            ("COURIER__TOPICS__CREATE", "maybe", "topics.create"),
            // [producer]
            ("COURIER__PRODUCER__LISTEN", "everywhere", "producer.listen"),
            ("COURIER__PRODUCER__LISTEN", "localhost:8080", "producer.listen"),
            ("COURIER__PRODUCER__PUBLISH_TIMEOUT_MS", "0", "producer.publish_timeout_ms"),
            ("COURIER__PRODUCER__SHUTDOWN_TIMEOUT_MS", "18446744073709551615", "producer.shutdown_timeout_ms"),
            ("COURIER__PRODUCER__API_KEYS", "short", "producer.api_keys"),
            ("COURIER__PRODUCER__MAX_CONCURRENT_REQUESTS", "0", "producer.max_concurrent_requests"),
            ("COURIER__PRODUCER__MAX_CONNECTIONS", "0", "producer.max_connections"),
            ("COURIER__PRODUCER__MAX_CONNECTIONS", "2000000", "producer.max_connections"),
            // [consumer]
            ("COURIER__CONSUMER__MAX_IN_FLIGHT", "0", "consumer.max_in_flight"),
            ("COURIER__CONSUMER__RETRY_MAX_ELAPSED_MS", "18446744073709551615", "consumer.retry_max_elapsed_ms"),
            ("COURIER__CONSUMER__DRAIN_TIMEOUT_MS", "60000", "consumer.drain_timeout_ms"),
            ("COURIER__CONSUMER__COMMIT_INTERVAL_MS", "0", "consumer.commit_interval_ms"),
            ("COURIER__CONSUMER__RETRY_MAX_ATTEMPTS", "0", "consumer.retry_max_attempts"),
            ("COURIER__CONSUMER__MAX_THROTTLE_MS", "-1", "consumer.max_throttle_ms"),
            ("COURIER__CONSUMER__HEALTH_LISTN", "0.0.0.0:8081", "health_listn"),
            // [apis]
            ("COURIER__APIS__INVENTORY__BASE_URL", "ftp://x", "apis.inventory.base_url"),
            ("COURIER__APIS__EMAIL__BASE_URL", "not a url", "apis.email.base_url"),
            ("COURIER__APIS__PAYMENT__MAX_IN_FLIGHT", "0", "apis.payment.max_in_flight"),
            ("COURIER__APIS__SMS__REQUEST_TIMEOUT_MS", "18446744073709551615", "apis.sms.request_timeout_ms"),
            ("COURIER__APIS__SMS__CONNECT_TIMEOUT_MS", "0", "apis.sms.connect_timeout_ms"),
            (
                "COURIER__APIS__PAYMENT__BREAKER_FAILURE_RATE_PERCENT",
                "150",
                "apis.payment.breaker_failure_rate_percent",
            ),
            ("COURIER__APIS__PAYMENT__AUTH", "basic", "apis.payment.username"),
            ("COURIER__APIS__PAYMENT__AUTH", "kerberos", "apis.payment.auth"),
            ("COURIER__APIS__PAYMENT__HTTP_VERSION", "http3", "apis.payment.http_version"),
            ("COURIER__APIS__PAYMENT__ADAPTIVE_IDLE_MS", "604800001", "apis.payment.adaptive_idle_ms"),
            ("COURIER__APIS__PAYMENT__ADAPTIVE_IDLE_MS", "-1", "apis.payment.adaptive_idle_ms"),
            ("COURIER__APIS__SMS__TLS_CA_LOCATION", "/nowhere/ca.pem", "apis.sms.tls_ca_location"),
            // [dlq]
            ("COURIER__DLQ__GUARD_WINDOW_MS", "604800001", "dlq.guard_window_ms"),
            ("COURIER__DLQ__GUARD_MAX_RECORDS", "-1", "dlq.guard_max_records"),
            ("COURIER__DLQ__ENABLED", "sometimes", "dlq.enabled"),
            // [telemetry]
            ("COURIER__TELEMETRY__LOG_FORMAT", "xml", "telemetry.log_format"),
            ("COURIER__TELEMETRY__LOG_LEVEL", "courier=loud", "telemetry.log_level"),
            ("COURIER__TELEMETRY__OTLP_ENDPOINT", "collector:4317", "telemetry.otlp_endpoint"),
            ("COURIER__TELEMETRY__STATISTICS_INTERVAL_MS", "604800001", "telemetry.statistics_interval_ms"),
            // rules between settings
            ("COURIER__KAFKA__HEARTBEAT_INTERVAL_MS", "999999", "kafka.heartbeat_interval_ms"),
            ("COURIER__KAFKA__HEARTBEAT_INTERVAL_MS", "20000", "kafka.heartbeat_interval_ms"),
            ("COURIER__KAFKA__MAX_POLL_INTERVAL_MS", "40000", "kafka.max_poll_interval_ms"),
            ("COURIER__KAFKA__REJOIN_UNASSIGNED_AFTER_MS", "60000", "kafka.rejoin_unassigned_after_ms"),
            ("COURIER__PRODUCER__REQUEST_TIMEOUT_MS", "5000", "producer.request_timeout_ms"),
            ("COURIER__CONSUMER__MAX_BUFFERED_TOTAL", "10", "consumer.max_buffered_total"),
            ("COURIER__CONSUMER__REBALANCE_TIMEOUT_MS", "400000", "consumer.rebalance_timeout_ms"),
            ("COURIER__CONSUMER__RETRY_MAX_BACKOFF_MS", "100", "consumer.retry_max_backoff_ms"),
            ("COURIER__APIS__PAYMENT__BREAKER_COOLDOWN_MS", "0", "apis.payment.breaker_cooldown_ms"),
            ("COURIER__APIS__PAYMENT__TLS_CERTIFICATE_LOCATION", "Cargo.toml", "apis.payment.tls_key_location"),
        ]);
    }
}
