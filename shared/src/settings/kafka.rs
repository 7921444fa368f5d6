//! `[kafka]`: how every client reaches the cluster, and how a consumer behaves in its group. The security
//! settings (`[kafka.sasl]`, `[kafka.tls]`, `[kafka.properties]`) are `crate::kafka::security`'s, which checks
//! them too.

use std::time::Duration;

use serde::Deserialize;
use serde_with::{DurationMilliSeconds, serde_as};

use super::durations::{MillisOrOff, check_duration};
use super::{SettingsError, check, invalid};
use crate::kafka::security::{KafkaProperties, SaslSettings, Security, TlsSettings};

/// `[kafka]`: the cluster and the consumer-group timeouts.
#[serde_as]
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
    /// A member silent this long is removed from its group.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub session_timeout_ms: Duration,
    /// How often a consumer heartbeats to its group coordinator; at most a third of the session timeout.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub heartbeat_interval_ms: Duration,
    /// Longest time between polls before a consumer is considered stuck and leaves its group.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub max_poll_interval_ms: Duration,
    /// Longest time the broker may hold a consumer's fetch while it has no new records.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub fetch_wait_max_ms: Duration,
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
    /// When a consumer has had no partition assigned for this long, it leaves its group and joins again; `None` (0, the
    /// default): never. A workaround for brokers whose group coordinator can leave a member with an empty assignment
    /// for good (Tansu 0.6.0; see RELIABILITY.md); on Apache Kafka an idle member (more members than partitions) would
    /// cause a rebalance this often, so keep it off there.
    #[serde_as(as = "MillisOrOff")]
    pub rejoin_unassigned_after_ms: Option<Duration>,
}

/// The longest `kafka.fetch_wait_max_ms` librdkafka accepts.
const MAX_FETCH_WAIT: Duration = Duration::from_secs(300);

impl KafkaSettings {
    /// The protocol, login, certificates and further properties every client uses.
    pub fn security(&self) -> Security<'_> {
        Security { protocol: &self.security_protocol, sasl: &self.sasl, tls: &self.tls, properties: &self.properties }
    }

    /// The consumer group id of consumer `name`.
    pub fn group_id(&self, name: &str) -> String {
        format!("{}{name}", self.group_id_prefix)
    }

    /// Checks each field on its own.
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        check(!self.bootstrap_servers.trim().is_empty(), "kafka.bootstrap_servers", "must name at least one broker")?;
        self.security().check().map_err(|(setting, reason)| invalid(setting, reason))?;
        check(!self.session_timeout_ms.is_zero(), "kafka.session_timeout_ms", "must be positive")?;
        check(!self.heartbeat_interval_ms.is_zero(), "kafka.heartbeat_interval_ms", "must be positive")?;
        check(self.fetch_wait_max_ms <= MAX_FETCH_WAIT, "kafka.fetch_wait_max_ms", "must be at most 300000")?;
        for (setting, duration) in [
            ("kafka.session_timeout_ms", self.session_timeout_ms),
            ("kafka.heartbeat_interval_ms", self.heartbeat_interval_ms),
            ("kafka.max_poll_interval_ms", self.max_poll_interval_ms),
            ("kafka.rejoin_unassigned_after_ms", self.rejoin_unassigned_after_ms.unwrap_or_default()),
        ] {
            check_duration(setting, duration)?;
        }
        let strategies: Vec<&str> = self.partition_assignment_strategy.split(',').map(str::trim).collect();
        check(
            strategies.iter().all(|s| matches!(*s, "range" | "roundrobin" | "cooperative-sticky"))
                && (!strategies.contains(&"cooperative-sticky") || strategies.len() == 1),
            "kafka.partition_assignment_strategy",
            "must be range, roundrobin or both (comma-separated), or cooperative-sticky alone",
        )?;
        check(
            matches!(self.auto_offset_reset.as_str(), "earliest" | "latest"),
            "kafka.auto_offset_reset",
            "must be earliest or latest",
        )?;
        let id = &self.group_instance_id;
        check(
            id.len() <= 249 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "kafka.group_instance_id",
            "must be at most 249 characters of ASCII letters, digits, '.', '_' and '-' (empty: dynamic membership)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::load;

    #[test]
    fn insecure_skip_verify_turns_the_verification_off_explicitly() {
        let s = load(&[
            ("COURIER__KAFKA__SECURITY_PROTOCOL", "ssl"),
            ("COURIER__KAFKA__TLS__INSECURE_SKIP_VERIFY", "true"),
        ])
        .expect("valid");
        assert!(s.kafka.tls.insecure_skip_verify);
        let config = crate::kafka::base_config(&s.kafka, "test");
        assert_eq!(config.get("enable.ssl.certificate.verification"), Some("false"));
        assert_eq!(config.get("ssl.endpoint.identification.algorithm"), Some("none"));
        let verified = load(&[("COURIER__KAFKA__SECURITY_PROTOCOL", "ssl")]).expect("ok");
        assert!(!verified.kafka.tls.insecure_skip_verify, "verified by default");
        let config = crate::kafka::base_config(&verified.kafka, "test");
        assert_eq!(config.get("enable.ssl.certificate.verification"), None);
    }
}
