//! `[schema_registry]`: the Confluent-compatible Schema Registry the `avro`, `protobuf` and `json-schema` formats
//! fetch their schemas from.

use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_with::{DurationMilliSeconds, serde_as};

use super::durations::check_duration;
use super::url::UrlSetting;
use super::{SettingsError, check, invalid};

/// The authentication modes, as `schema_registry.auth` spells them (empty: `basic` when a username is set,
/// `bearer` when a token is set, else `none`).
pub const REGISTRY_AUTH_MODES: [&str; 3] = ["none", "basic", "bearer"];

/// `[schema_registry]`: where schemas are fetched from, and how.
#[serde_as]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistrySettings {
    /// The registry's base URL (`https://registry.example.com`); empty: no registry. Printed without user name,
    /// password or query.
    #[serde(default)]
    pub url: UrlSetting,
    /// How requests authenticate: `none`, `basic` or `bearer`; empty (the default): `basic` when `username` is
    /// set, `bearer` when `token` is, else `none`.
    #[serde(default)]
    pub auth: String,
    /// User name (for Confluent Cloud, the API key), with `auth = "basic"`.
    #[serde(default)]
    pub username: String,
    /// Password (for Confluent Cloud, the API secret), with `auth = "basic"`. A secret: never printed.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Bearer token, with `auth = "bearer"`. A secret: never printed.
    #[serde(default)]
    pub token: Option<SecretString>,
    /// PEM file of CA certificates trusted for the registry (beside the system's).
    #[serde(default)]
    pub tls_ca_location: String,
    /// PEM file of a client certificate presented to the registry (mutual TLS); with `tls_key_location`.
    #[serde(default)]
    pub tls_certificate_location: String,
    /// PEM file (PKCS#8) of the client certificate's private key.
    #[serde(default)]
    pub tls_key_location: String,
    /// Longest wait for a TCP/TLS connection.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub connect_timeout_ms: Duration,
    /// Longest wait for a whole request, response body included.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub request_timeout_ms: Duration,
    /// How long a permanent failure of a schema id (an id the registry does not know, a refusal, a schema that
    /// does not parse) is remembered: the records naming that id meanwhile are dead-lettered without a request
    /// each. Zero: every record asks again. A transient failure is never remembered.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub failure_cache_ms: Duration,
}

impl SchemaRegistrySettings {
    /// Whether a registry is configured.
    pub fn is_configured(&self) -> bool {
        !self.url.is_empty()
    }

    /// The mode the settings ask for: `auth`, or `basic` / `bearer` / `none` by the credentials set.
    pub fn effective_auth(&self) -> &str {
        match self.auth.as_str() {
            "" if !self.username.is_empty() => "basic",
            "" if self.token.is_some() => "bearer",
            "" => "none",
            mode => mode,
        }
    }

    /// Checks each field on its own.
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        if !self.url.is_empty() {
            match reqwest::Url::parse(&self.url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                Ok(url) => {
                    let reason = format!("scheme {:?} is not http or https", url.scheme());
                    return Err(invalid("schema_registry.url", reason));
                }
                Err(e) => return Err(invalid("schema_registry.url", format!("is not a URL ({e})"))),
            }
        }
        let missing = |s: &Option<SecretString>| s.as_ref().is_none_or(|s| s.expose_secret().is_empty());
        match self.effective_auth() {
            "none" => {}
            "basic" => {
                check(!self.username.is_empty(), "schema_registry.username", "must be set with auth = \"basic\"")?;
                check(!missing(&self.password), "schema_registry.password", "must be set with auth = \"basic\"")?;
            }
            "bearer" => check(!missing(&self.token), "schema_registry.token", "must be set with auth = \"bearer\"")?,
            _ => {
                let reason = format!("must be one of {}", REGISTRY_AUTH_MODES.join(", "));
                return Err(invalid("schema_registry.auth", reason));
            }
        }
        for (key, path) in [
            ("tls_ca_location", &self.tls_ca_location),
            ("tls_certificate_location", &self.tls_certificate_location),
            ("tls_key_location", &self.tls_key_location),
        ] {
            let setting = format!("schema_registry.{key}");
            check(path.is_empty() || Path::new(path).is_file(), &setting, &format!("{path} is not a readable file"))?;
        }
        check(
            self.tls_certificate_location.is_empty() == self.tls_key_location.is_empty(),
            "schema_registry.tls_key_location",
            "a client certificate needs its key, and a key its certificate",
        )?;
        for (key, duration) in
            [("connect_timeout_ms", self.connect_timeout_ms), ("request_timeout_ms", self.request_timeout_ms)]
        {
            let setting = format!("schema_registry.{key}");
            check(!duration.is_zero(), &setting, "must be positive")?;
            check_duration(&setting, duration)?;
        }
        check_duration("schema_registry.failure_cache_ms", self.failure_cache_ms)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{assert_refused, load};

    #[test]
    fn defaults_have_no_registry() {
        let s = load(&[]).expect("defaults are valid");
        assert!(!s.schema_registry.is_configured());
        assert_eq!(s.schema_registry.effective_auth(), "none");
        assert_eq!(s.schema_registry.request_timeout_ms, Duration::from_secs(10));
        assert_eq!(s.schema_registry.failure_cache_ms, Duration::from_secs(60));
    }

    #[test]
    fn credentials_choose_the_mode_and_never_print() {
        let s = load(&[
            ("COURIER__SCHEMA_REGISTRY__URL", "https://registry.example.com"),
            ("COURIER__SCHEMA_REGISTRY__USERNAME", "API-KEY"),
            ("COURIER__SCHEMA_REGISTRY__PASSWORD", "api-s3cret"),
        ])
        .expect("valid");
        assert_eq!(s.schema_registry.effective_auth(), "basic");
        assert!(!format!("{s:?}").contains("api-s3cret"));
        let s = load(&[("COURIER__SCHEMA_REGISTRY__TOKEN", "t0ken-s3cret")]).expect("valid");
        assert_eq!(s.schema_registry.effective_auth(), "bearer");
        assert!(!format!("{s:?}").contains("t0ken-s3cret"));
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        assert_refused(&[
            ("COURIER__SCHEMA_REGISTRY__URL", "registry:8081", "schema_registry.url"),
            ("COURIER__SCHEMA_REGISTRY__URL", "ftp://registry", "schema_registry.url"),
            ("COURIER__SCHEMA_REGISTRY__AUTH", "oauth2", "schema_registry.auth"),
            ("COURIER__SCHEMA_REGISTRY__AUTH", "basic", "schema_registry.username"),
            ("COURIER__SCHEMA_REGISTRY__AUTH", "bearer", "schema_registry.token"),
            ("COURIER__SCHEMA_REGISTRY__TLS_CA_LOCATION", "/no/such/ca.pem", "schema_registry.tls_ca_location"),
            ("COURIER__SCHEMA_REGISTRY__REQUEST_TIMEOUT_MS", "0", "schema_registry.request_timeout_ms"),
            ("COURIER__SCHEMA_REGISTRY__CONNECT_TIMEOUT_MS", "999999999999", "schema_registry.connect_timeout_ms"),
            ("COURIER__SCHEMA_REGISTRY__FAILURE_CACHE_MS", "999999999999", "schema_registry.failure_cache_ms"),
        ]);
        let error = load(&[("COURIER__SCHEMA_REGISTRY__USERNAME", "key"), ("COURIER__SCHEMA_REGISTRY__AUTH", "basic")])
            .expect_err("no password")
            .to_string();
        assert!(error.contains("schema_registry.password"), "{error}");
    }
}
