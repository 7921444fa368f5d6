//! How clients reach a secured cluster: the security protocol, the SASL login and TLS certificates
//! (`kafka.security_protocol`, `[kafka.sasl]`, `[kafka.tls]`), any other librdkafka property
//! (`[kafka.properties]`), their checks at start-up, and how they are applied to every client.
//!
//! Properties that courier's guarantees rest on (auto-commit, idempotence, acks, …) are refused with the
//! reason, and so are those a typed setting owns (the typed setting is named instead) and those that turn off
//! the verification of the brokers' certificates (only `kafka.tls.insecure_skip_verify` does, knowingly). Secrets (the SASL
//! password, the key password, and any property whose name says it is one) never print.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rdkafka::config::ClientConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// `[kafka.sasl]`: the SASL login, used with `security_protocol = "sasl_plaintext"` or `"sasl_ssl"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslSettings {
    /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER`; empty without SASL.
    pub mechanism: String,
    /// The user name (PLAIN and SCRAM).
    pub username: String,
    /// The password (PLAIN and SCRAM). A secret: never printed or logged.
    #[serde(default)]
    pub password: Option<SecretString>,
}

/// `[kafka.tls]`: certificates, used with `security_protocol = "ssl"` or `"sasl_ssl"`. Empty paths leave
/// librdkafka's defaults (the system's CA bundle, no client certificate).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file of the CA certificates that sign the brokers' certificates; empty: the system's CAs.
    pub ca_location: String,
    /// PEM file of this client's certificate, for mutual TLS; set together with `key_location`.
    pub certificate_location: String,
    /// PEM file of this client's private key, for mutual TLS.
    pub key_location: String,
    /// Password of an encrypted private key. A secret: never printed or logged.
    #[serde(default)]
    pub key_password: Option<SecretString>,
    /// Whether clients skip verifying the brokers' certificates and host names (librdkafka's
    /// `enable.ssl.certificate.verification=false` and `ssl.endpoint.identification.algorithm=none`, which
    /// `[kafka.properties]` may not set). Off by default; on, every binary logs a warning at start-up.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// `[kafka.properties]`: further librdkafka properties given to every client (producers, consumers,
/// admin), e.g. `"client.rack" = "use1-az1"`. In an environment variable, write the dots of the name as
/// underscores: `COURIER__KAFKA__PROPERTIES__CLIENT_RACK=use1-az1` (no librdkafka property has an
/// underscore in its name).
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct KafkaProperties(BTreeMap<String, String>);

impl KafkaProperties {
    /// The properties with their names as librdkafka spells them (lower case, dots).
    pub fn iter(&self) -> impl Iterator<Item = (String, &str)> {
        self.0.iter().map(|(name, value)| (normalized(name), value.as_str()))
    }

    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(name, value)| {
                let shown = if is_sensitive(&name) { "[redacted]" } else { value };
                (name, shown.to_owned())
            }))
            .finish()
    }
}

/// A property name as librdkafka spells it: `CLIENT_RACK` and `client_rack` become `client.rack`.
fn normalized(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', ".")
}

/// Whether a property's value is a secret by its name.
fn is_sensitive(name: &str) -> bool {
    ["password", "secret", "token", "key.pem", "jaas", "credentials"].iter().any(|word| name.contains(word))
}

/// Properties courier's guarantees rest on, with the reason; `[kafka.properties]` may not set them (nor the
/// aliases librdkafka documents for them).
const GUARDED: [(&str, &str); 9] = [
    (
        "enable.auto.commit",
        "courier commits an offset only after its event was handled; auto-commit would commit events before they reach the API",
    ),
    (
        "auto.commit.enable",
        "courier commits an offset only after its event was handled; auto-commit would commit events before they reach the API",
    ),
    ("enable.auto.offset.store", "courier stores an offset only after its event was handled"),
    (
        "enable.idempotence",
        "courier's producers are idempotent, so that a retried send never duplicates or reorders an event",
    ),
    ("acks", "courier's producers wait for every in-sync replica (acks=all) before an event counts as published"),
    (
        "request.required.acks",
        "courier's producers wait for every in-sync replica (acks=all) before an event counts as published",
    ),
    ("isolation.level", "consumers read committed records only (read_committed)"),
    (
        "partitioner",
        "courier partitions keys as the Java client does (murmur2_random), so per-key order holds with Java producers",
    ),
    (
        "transactional.id",
        "courier's producers are idempotent, not transactional: with a transactional id every send fails outside a transaction",
    ),
];

/// Properties a typed setting owns, with that setting.
const OWNED: [(&str, &str); 22] = [
    ("bootstrap.servers", "kafka.bootstrap_servers"),
    ("metadata.broker.list", "kafka.bootstrap_servers"),
    ("client.id", "kafka.client_id"),
    ("group.id", "kafka.group_id_prefix"),
    ("group.instance.id", "kafka.group_instance_id"),
    ("security.protocol", "kafka.security_protocol"),
    ("sasl.mechanism", "kafka.sasl.mechanism"),
    ("sasl.mechanisms", "kafka.sasl.mechanism"),
    ("sasl.username", "kafka.sasl.username"),
    ("sasl.password", "kafka.sasl.password"),
    ("ssl.ca.location", "kafka.tls.ca_location"),
    ("ssl.certificate.location", "kafka.tls.certificate_location"),
    ("ssl.key.location", "kafka.tls.key_location"),
    ("ssl.key.password", "kafka.tls.key_password"),
    ("session.timeout.ms", "kafka.session_timeout_ms"),
    ("heartbeat.interval.ms", "kafka.heartbeat_interval_ms"),
    ("max.poll.interval.ms", "kafka.max_poll_interval_ms"),
    ("fetch.wait.max.ms", "kafka.fetch_wait_max_ms"),
    ("partition.assignment.strategy", "kafka.partition_assignment_strategy"),
    ("auto.offset.reset", "kafka.auto_offset_reset"),
    ("message.timeout.ms", "producer.publish_timeout_ms (and the dead-letter publish timeout)"),
    ("delivery.timeout.ms", "producer.publish_timeout_ms (and the dead-letter publish timeout)"),
];

/// The properties that verify the brokers' TLS certificates; only `kafka.tls.insecure_skip_verify` turns
/// them off.
const VERIFICATION: [&str; 2] = ["enable.ssl.certificate.verification", "ssl.endpoint.identification.algorithm"];

/// Whether `value` of verification property `name` keeps the verification on (librdkafka reads `true`, `t`
/// and `1`, in any case, as true; the host name is checked with `https`).
fn verifies(name: &str, value: &str) -> bool {
    let value = value.trim().to_ascii_lowercase();
    match name {
        "enable.ssl.certificate.verification" => ["true", "t", "1"].contains(&value.as_str()),
        _ => value == "https",
    }
}

/// The security protocols, as `kafka.security_protocol` spells them.
const PROTOCOLS: [&str; 4] = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];

/// The SASL mechanisms courier's librdkafka supports.
const MECHANISMS: [&str; 4] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// Everything that secures a client: what [`Security::apply`] needs.
#[derive(Debug, Clone, Copy)]
pub struct Security<'a> {
    /// `kafka.security_protocol`.
    pub protocol: &'a str,
    /// `[kafka.sasl]`.
    pub sasl: &'a SaslSettings,
    /// `[kafka.tls]`.
    pub tls: &'a TlsSettings,
    /// `[kafka.properties]`.
    pub properties: &'a KafkaProperties,
}

impl Security<'_> {
    /// Whether the protocol uses SASL.
    fn uses_sasl(&self) -> bool {
        self.protocol.starts_with("sasl_")
    }

    /// Whether the protocol uses TLS.
    fn uses_tls(&self) -> bool {
        self.protocol.ends_with("ssl")
    }

    /// The first setting that cannot work, with its name and why.
    pub fn check(&self) -> Result<(), (String, String)> {
        let fail = |setting: &str, reason: String| Err((setting.to_owned(), reason));
        if !PROTOCOLS.contains(&self.protocol) {
            return fail("kafka.security_protocol", format!("must be one of {}", PROTOCOLS.join(", ")));
        }
        let sasl = self.sasl;
        let password = sasl.password.as_ref().map(|p| p.expose_secret()).filter(|p| !p.is_empty());
        if self.uses_sasl() {
            if !MECHANISMS.contains(&sasl.mechanism.as_str()) {
                return fail(
                    "kafka.sasl.mechanism",
                    format!("must be one of {} with {}", MECHANISMS.join(", "), self.protocol),
                );
            }
            if sasl.mechanism != "OAUTHBEARER" {
                if sasl.username.trim().is_empty() {
                    return fail("kafka.sasl.username", format!("must be set for SASL {}", sasl.mechanism));
                }
                if password.is_none() {
                    return fail(
                        "kafka.sasl.password",
                        format!("must be set for SASL {} (COURIER__KAFKA__SASL__PASSWORD)", sasl.mechanism),
                    );
                }
            }
        } else if !sasl.mechanism.is_empty() || !sasl.username.is_empty() || password.is_some() {
            return fail(
                "kafka.sasl",
                format!("is set but kafka.security_protocol is {}: use sasl_plaintext or sasl_ssl", self.protocol),
            );
        }
        let tls = self.tls;
        let files = [
            ("kafka.tls.ca_location", &tls.ca_location),
            ("kafka.tls.certificate_location", &tls.certificate_location),
            ("kafka.tls.key_location", &tls.key_location),
        ];
        let key_password = tls.key_password.as_ref().is_some_and(|p| !p.expose_secret().is_empty());
        if !self.uses_tls() {
            if files.iter().any(|(_, path)| !path.is_empty()) || key_password || tls.insecure_skip_verify {
                return fail(
                    "kafka.tls",
                    format!("is set but kafka.security_protocol is {}: use ssl or sasl_ssl", self.protocol),
                );
            }
        } else {
            if tls.certificate_location.is_empty() != tls.key_location.is_empty() {
                return fail(
                    "kafka.tls.key_location",
                    "a client certificate (mutual TLS) needs both kafka.tls.certificate_location and \
                     kafka.tls.key_location"
                        .to_owned(),
                );
            }
            for (setting, path) in files {
                if !path.is_empty() && !Path::new(path).is_file() {
                    return fail(setting, format!("{path} is not a readable file"));
                }
            }
        }
        for (name, value) in self.properties.iter() {
            let setting = format!("kafka.properties.{name}");
            if let Some((_, why)) = GUARDED.iter().find(|(guarded, _)| *guarded == name) {
                return fail(&setting, format!("cannot be changed: {why}"));
            }
            if let Some((_, typed)) = OWNED.iter().find(|(owned, _)| *owned == name) {
                return fail(&setting, format!("is set by {typed}: use that setting"));
            }
            if VERIFICATION.contains(&name.as_str()) {
                if self.tls.insecure_skip_verify {
                    return fail(&setting, "is set by kafka.tls.insecure_skip_verify: leave it out".to_owned());
                }
                if !verifies(&name, value) {
                    return fail(
                        &setting,
                        "turns off the verification of the brokers' certificates: set \
                         kafka.tls.insecure_skip_verify = true to do so knowingly (it logs a warning at start-up)"
                            .to_owned(),
                    );
                }
            }
        }
        // librdkafka itself knows every property and its values: ask it, so a typo stops the start-up.
        let mut probe = ClientConfig::new();
        for (name, value) in self.properties.iter() {
            probe.set(name, value);
        }
        if let Err(error) = probe.create_native_config() {
            let name = self.properties.iter().map(|(name, _)| name).find(|name| error.to_string().contains(name));
            let setting = name.map_or("kafka.properties".to_owned(), |name| format!("kafka.properties.{name}"));
            return fail(&setting, format!("librdkafka refuses it: {error}"));
        }
        Ok(())
    }

    /// Sets the protocol, the SASL login, the certificates and the further properties on `config` (and, with
    /// `kafka.tls.insecure_skip_verify`, turns off the verification of the brokers' certificates).
    pub fn apply(&self, config: &mut ClientConfig) {
        config.set("security.protocol", self.protocol);
        if self.uses_sasl() {
            config.set("sasl.mechanism", &self.sasl.mechanism);
            if !self.sasl.username.is_empty() {
                config.set("sasl.username", &self.sasl.username);
            }
            if let Some(password) = &self.sasl.password {
                config.set("sasl.password", password.expose_secret());
            }
        }
        if self.uses_tls() {
            let tls = self.tls;
            for (property, path) in [
                ("ssl.ca.location", &tls.ca_location),
                ("ssl.certificate.location", &tls.certificate_location),
                ("ssl.key.location", &tls.key_location),
            ] {
                if !path.is_empty() {
                    config.set(property, path);
                }
            }
            if let Some(password) = &tls.key_password {
                config.set("ssl.key.password", password.expose_secret());
            }
        }
        for (name, value) in self.properties.iter() {
            config.set(name, value);
        }
        if self.uses_tls() && self.tls.insecure_skip_verify {
            config
                .set("enable.ssl.certificate.verification", "false")
                .set("ssl.endpoint.identification.algorithm", "none");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl(mechanism: &str, username: &str, password: Option<&str>) -> SaslSettings {
        SaslSettings {
            mechanism: mechanism.into(),
            username: username.into(),
            password: password.map(|p| SecretString::from(p.to_owned())),
        }
    }

    fn no_tls() -> TlsSettings {
        TlsSettings {
            ca_location: String::new(),
            certificate_location: String::new(),
            key_location: String::new(),
            key_password: None,
            insecure_skip_verify: false,
        }
    }

    fn properties(pairs: &[(&str, &str)]) -> KafkaProperties {
        KafkaProperties(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    fn check(protocol: &str, sasl: &SaslSettings, tls: &TlsSettings, props: &KafkaProperties) -> Result<(), String> {
        Security { protocol, sasl, tls, properties: props }.check().map_err(|(setting, _)| setting)
    }

    #[test]
    fn a_sasl_login_needs_a_mechanism_a_user_and_a_password() {
        let none = properties(&[]);
        assert_eq!(check("sasl_ssl", &sasl("SCRAM-SHA-512", "alice", Some("pw")), &no_tls(), &none), Ok(()));
        assert_eq!(check("sasl_ssl", &sasl("OAUTHBEARER", "", None), &no_tls(), &none), Ok(()));
        let missing = [
            (sasl("", "alice", Some("pw")), "kafka.sasl.mechanism"),
            (sasl("GSSAPI", "alice", Some("pw")), "kafka.sasl.mechanism"),
            (sasl("PLAIN", "", Some("pw")), "kafka.sasl.username"),
            (sasl("PLAIN", "alice", None), "kafka.sasl.password"),
            (sasl("PLAIN", "alice", Some("")), "kafka.sasl.password"),
        ];
        for (login, setting) in missing {
            assert_eq!(check("sasl_plaintext", &login, &no_tls(), &none), Err(setting.to_owned()), "{login:?}");
        }
        assert_eq!(
            check("plaintext", &sasl("PLAIN", "alice", Some("pw")), &no_tls(), &none),
            Err("kafka.sasl".to_owned()),
            "a login the protocol would ignore is a mistake"
        );
        assert_eq!(check("tls", &sasl("", "", None), &no_tls(), &none), Err("kafka.security_protocol".to_owned()));
    }

    #[test]
    fn certificates_must_exist_and_come_with_their_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = dir.path().join("client.pem");
        std::fs::write(&cert, "not checked here").expect("write");
        let cert = cert.to_string_lossy().into_owned();
        let none = properties(&[]);
        let no_login = sasl("", "", None);
        let tls = |ca: &str, c: &str, k: &str| TlsSettings {
            ca_location: ca.into(),
            certificate_location: c.into(),
            key_location: k.into(),
            key_password: None,
            insecure_skip_verify: false,
        };
        assert_eq!(check("ssl", &no_login, &tls(&cert, &cert, &cert), &none), Ok(()));
        assert_eq!(
            check("ssl", &no_login, &tls("/nowhere/ca.pem", "", ""), &none),
            Err("kafka.tls.ca_location".into())
        );
        assert_eq!(check("ssl", &no_login, &tls("", &cert, ""), &none), Err("kafka.tls.key_location".into()));
        assert_eq!(check("plaintext", &no_login, &tls(&cert, "", ""), &none), Err("kafka.tls".into()));
        let insecure = TlsSettings { insecure_skip_verify: true, ..no_tls() };
        assert_eq!(check("plaintext", &no_login, &insecure, &none), Err("kafka.tls".into()), "no TLS to skip");
    }

    #[test]
    fn only_insecure_skip_verify_turns_the_verification_of_brokers_off() {
        let no_login = sasl("", "", None);
        for (name, value) in [
            ("enable.ssl.certificate.verification", "false"),
            ("ENABLE_SSL_CERTIFICATE_VERIFICATION", "0"),
            ("enable.ssl.certificate.verification", "F"),
            ("ssl.endpoint.identification.algorithm", "none"),
            ("ssl.endpoint.identification.algorithm", "NONE"),
        ] {
            let off = properties(&[(name, value)]);
            let (setting, why) = Security { protocol: "ssl", sasl: &no_login, tls: &no_tls(), properties: &off }
                .check()
                .expect_err(name);
            assert_eq!(setting, format!("kafka.properties.{}", normalized(name)), "{name}={value}");
            assert!(why.contains("kafka.tls.insecure_skip_verify"), "{why}");
        }
        let on = properties(&[
            ("enable.ssl.certificate.verification", "true"),
            ("ssl.endpoint.identification.algorithm", "https"),
        ]);
        assert_eq!(check("ssl", &no_login, &no_tls(), &on), Ok(()), "keeping the verification on is fine");

        let insecure = TlsSettings { insecure_skip_verify: true, ..no_tls() };
        assert_eq!(check("sasl_ssl", &sasl("PLAIN", "u", Some("p")), &insecure, &properties(&[])), Ok(()));
        assert_eq!(
            check("ssl", &no_login, &insecure, &on),
            Err("kafka.properties.enable.ssl.certificate.verification".to_owned()),
            "the setting owns the properties once on"
        );
        let mut config = ClientConfig::new();
        let none = properties(&[]);
        Security { protocol: "ssl", sasl: &no_login, tls: &insecure, properties: &none }.apply(&mut config);
        assert_eq!(config.get("enable.ssl.certificate.verification"), Some("false"));
        assert_eq!(config.get("ssl.endpoint.identification.algorithm"), Some("none"));
        let mut config = ClientConfig::new();
        Security { protocol: "ssl", sasl: &no_login, tls: &no_tls(), properties: &none }.apply(&mut config);
        assert_eq!(config.get("enable.ssl.certificate.verification"), None, "librdkafka's default: verified");
        assert_eq!(config.get("ssl.endpoint.identification.algorithm"), None);
    }

    #[test]
    fn properties_pass_through_unless_a_guarantee_or_a_typed_setting_owns_them() {
        let (no_login, tls) = (sasl("", "", None), no_tls());
        let fine = properties(&[("client.rack", "use1-az1"), ("SOCKET_KEEPALIVE_ENABLE", "true")]);
        assert_eq!(check("plaintext", &no_login, &tls, &fine), Ok(()));
        let mut config = ClientConfig::new();
        Security { protocol: "plaintext", sasl: &no_login, tls: &tls, properties: &fine }.apply(&mut config);
        assert_eq!(config.get("client.rack"), Some("use1-az1"));
        assert_eq!(config.get("socket.keepalive.enable"), Some("true"), "an environment-style name works");

        for (name, setting) in [
            ("enable.auto.commit", "kafka.properties.enable.auto.commit"),
            ("ENABLE_IDEMPOTENCE", "kafka.properties.enable.idempotence"),
            ("acks", "kafka.properties.acks"),
            ("request.required.acks", "kafka.properties.request.required.acks"),
            ("auto.commit.enable", "kafka.properties.auto.commit.enable"),
            ("transactional.id", "kafka.properties.transactional.id"),
            ("message.timeout.ms", "kafka.properties.message.timeout.ms"),
            ("DELIVERY_TIMEOUT_MS", "kafka.properties.delivery.timeout.ms"),
            ("sasl.password", "kafka.properties.sasl.password"),
            ("bootstrap.servers", "kafka.properties.bootstrap.servers"),
            ("no.such.property", "kafka.properties.no.such.property"),
        ] {
            let refused = properties(&[(name, "1")]);
            assert_eq!(check("plaintext", &no_login, &tls, &refused), Err(setting.to_owned()), "{name}");
        }
        let (_, why) = Security {
            protocol: "plaintext",
            sasl: &no_login,
            tls: &tls,
            properties: &properties(&[("enable.auto.commit", "true")]),
        }
        .check()
        .expect_err("refused");
        assert!(why.contains("only after its event was handled"), "{why}");
    }

    #[test]
    fn secrets_never_print() {
        let login = sasl("PLAIN", "alice", Some("hunter2"));
        let props = properties(&[("sasl.oauthbearer.client.secret", "s3cret"), ("client.rack", "az1")]);
        let printed = format!("{login:?} {props:?}");
        assert!(!printed.contains("hunter2") && !printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("az1"), "{printed}");
    }
}
