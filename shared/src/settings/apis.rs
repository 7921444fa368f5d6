//! `[apis]`: the downstream APIs by name, `[apis.<name>]`, each on top of `[apis.defaults]`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use config::Config;
use secrecy::SecretString;
use serde::Deserialize;
use serde_with::{DurationMilliSeconds, serde_as};

use super::durations::{MillisOrOff, check_duration};
use super::signing::SigningSettings;
use super::status_codes::StatusCodes;
use super::url::UrlSetting;
use super::{MAX_CONCURRENCY, SettingsError, check, invalid};
use crate::delivery::RetryBudget;
use crate::downstream::breaker::BreakerPolicy;
use crate::downstream::{AbortSignal, StatusPolicy};

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

    /// Checks each field of each API on its own.
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        self.iter().try_for_each(|(name, api)| api.validate(name))
    }
}

/// One downstream API.
#[serde_as]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Base URL; endpoint paths are appended to it. Printed without user name, password or query.
    #[serde(default)]
    pub base_url: UrlSetting,
    /// Longest wait for a TCP/TLS connection.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub connect_timeout_ms: Duration,
    /// Longest wait for a whole request, response body included.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub request_timeout_ms: Duration,
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
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub breaker_window_ms: Duration,
    /// How long an open breaker waits before letting one probe call through.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub breaker_cooldown_ms: Duration,
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
    /// How long the API may have no call in flight before its adaptive limit decays: halved once per such
    /// period, never below min(limit, 16), the first wave after a quiet minute being that of a start
    /// (`courier::downstream::concurrency`); `None` (0): it never decays.
    #[serde(default)]
    #[serde_as(as = "MillisOrOff")]
    pub adaptive_idle_ms: Option<Duration>,
    /// Most idle connections kept open to the API (per host) for the next calls; a connection that finds the
    /// pool full when its call ends is closed. 0: as many as `max_in_flight`, so that calls in flight at the
    /// limit find their connections open again (a smaller pool closes and opens connections at every wave).
    pub max_idle_connections: usize,
    /// Which HTTP version the calls use: `auto` (the default), `http1` or `http2`. The OAuth 2.0 token requests
    /// (`oauth2_token_url`) go through the same client, so they use it too.
    #[serde(default)]
    pub http_version: HttpVersion,
    /// How the calls are signed for the API to check them (`[apis.<name>.signing]`; by default they are not).
    #[serde(default)]
    pub signing: SigningSettings,

    // The API's status policy (`StatusPolicy`): its status lists, its retry budget and its abort header.
    /// Statuses that deliver the event, over the defaults (e.g. `[409]`: a duplicate is a success).
    #[serde(default)]
    pub success_on: StatusCodes,
    /// Statuses after which the event is tried again (spending attempts), over the defaults (e.g. `[404]`).
    #[serde(default)]
    pub retry_on: StatusCodes,
    /// Statuses that dead-letter the event at once, over the defaults (e.g. `["500-599"]`).
    #[serde(default)]
    pub dead_letter_on: StatusCodes,
    /// Attempts per event at this API (the first included), in place of `consumer.retry_max_attempts`; 0: the
    /// consumer's.
    #[serde(default)]
    pub max_attempts: u32,
    /// Upper bound of any retry delay at this API, in place of `consumer.retry_max_backoff_ms`; `None` (0): the
    /// consumer's.
    #[serde(default)]
    #[serde_as(as = "MillisOrOff")]
    pub max_backoff_ms: Option<Duration>,
    /// The response header by which the API asks for an event never to be retried (dead-lettered at once);
    /// empty: none is read.
    #[serde(default)]
    pub abort_header: String,
    /// The value of `abort_header` that asks for it (without regard to case).
    #[serde(default)]
    pub abort_value: String,
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
    /// When the API's circuit breaker opens, and for how long.
    pub fn breaker_policy(&self) -> BreakerPolicy {
        BreakerPolicy {
            failure_rate_percent: self.breaker_failure_rate_percent,
            minimum_calls: self.breaker_minimum_calls,
            minimum_failing_keys: self.breaker_minimum_failing_keys,
            window: self.breaker_window_ms,
            cooldown: self.breaker_cooldown_ms,
        }
    }

    /// What the API's answers mean for an event, and its retry budget.
    pub fn status_policy(&self) -> StatusPolicy {
        let abort = http::HeaderName::from_bytes(self.abort_header.as_bytes())
            .ok()
            .map(|header| AbortSignal { header, value: self.abort_value.clone() });
        StatusPolicy {
            success_on: self.success_on.clone(),
            retry_on: self.retry_on.clone(),
            dead_letter_on: self.dead_letter_on.clone(),
            budget: RetryBudget::new(Some(self.max_attempts), self.max_backoff_ms),
            abort,
        }
    }

    /// Checks the fields of API `name`'s status policy: no status in two lists, a valid abort header.
    fn validate_status_policy(&self, name: &str) -> Result<(), SettingsError> {
        let field = |key: &str| format!("apis.{name}.{key}");
        let lists =
            [("success_on", &self.success_on), ("retry_on", &self.retry_on), ("dead_letter_on", &self.dead_letter_on)];
        for (i, (key, list)) in lists.iter().enumerate() {
            for (other_key, other) in &lists[i + 1..] {
                if let Some(status) = list.shared_with(other) {
                    return Err(invalid(
                        field(other_key),
                        format!("{status} is also in apis.{name}.{key}: a status may be in one list only"),
                    ));
                }
            }
        }
        if let Some(backoff) = self.max_backoff_ms {
            check_duration(&field("max_backoff_ms"), backoff)?;
        }
        if !self.abort_header.is_empty() {
            check(
                http::HeaderName::from_bytes(self.abort_header.as_bytes()).is_ok(),
                &field("abort_header"),
                &format!("{:?} is not an HTTP header name", self.abort_header),
            )?;
            check(!self.abort_value.trim().is_empty(), &field("abort_value"), "must be set with abort_header")?;
        }
        Ok(())
    }

    /// Checks each field of API `name` on its own.
    fn validate(&self, name: &str) -> Result<(), SettingsError> {
        self.validate_status_policy(name)?;
        let field = |key: &str| format!("apis.{name}.{key}");
        match reqwest::Url::parse(&self.base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            Ok(url) => {
                return Err(invalid(field("base_url"), format!("scheme {:?} is not http or https", url.scheme())));
            }
            Err(e) => return Err(invalid(field("base_url"), format!("is not a URL ({e})"))),
        }
        crate::downstream::auth::check(name, self).map_err(|(setting, reason)| invalid(setting, reason))?;
        self.signing.validate(name)?;
        for (key, path) in [
            ("tls_ca_location", &self.tls_ca_location),
            ("tls_certificate_location", &self.tls_certificate_location),
            ("tls_key_location", &self.tls_key_location),
        ] {
            check(
                path.is_empty() || Path::new(path).is_file(),
                &field(key),
                &format!("{path} is not a readable file"),
            )?;
        }
        check(!self.connect_timeout_ms.is_zero(), &field("connect_timeout_ms"), "must be positive")?;
        check(
            (1..=MAX_CONCURRENCY).contains(&self.max_in_flight),
            &field("max_in_flight"),
            &format!("must be between 1 and {MAX_CONCURRENCY}"),
        )?;
        check(
            self.max_idle_connections <= MAX_CONCURRENCY,
            &field("max_idle_connections"),
            &format!("must be at most {MAX_CONCURRENCY} (0: as many as max_in_flight)"),
        )?;
        check(!self.request_timeout_ms.is_zero(), &field("request_timeout_ms"), "must be positive")?;
        for (key, duration) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("breaker_window_ms", self.breaker_window_ms),
            ("breaker_cooldown_ms", self.breaker_cooldown_ms),
        ] {
            check_duration(&field(key), duration)?;
        }
        if let Some(idle) = self.adaptive_idle_ms {
            check_duration(&field("adaptive_idle_ms"), idle)?;
        }
        check(
            self.breaker_failure_rate_percent <= 100,
            &field("breaker_failure_rate_percent"),
            "must be a percentage, 0 (no breaker) to 100",
        )
    }
}

/// `layered` with every key of `[apis.defaults]` filled into each `[apis.<name>]` that does not set it.
pub(super) fn with_api_defaults(layered: Config) -> Result<Config, SettingsError> {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{load, load_with_file};
    use super::*;

    #[test]
    fn defaults_load_and_validate() {
        let s = load(&[]).expect("defaults are valid");
        let inventory = s.apis.get("inventory").expect("inventory");
        assert!(inventory.token.is_none());
        assert!(inventory.adaptive_concurrency, "the limit of calls in flight adapts by default");
        assert_eq!(inventory.http_version, HttpVersion::Auto, "HTTP/2 only where an https API offers it");
        assert_eq!(inventory.max_in_flight, 512, "up to the ceiling of 512");
        assert_eq!(inventory.max_idle_connections, 0, "idle connections bounded by max_in_flight");
        assert_eq!(inventory.breaker_policy().window, Duration::from_secs(10));
        assert_eq!(inventory.adaptive_idle_ms, Some(Duration::from_secs(1)), "the limit decays after 1 s idle");
        let names: Vec<&str> = s.apis.iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["email", "inventory", "payment", "shipping", "sms"], "[apis.defaults] is not an API");
    }

    #[test]
    fn apis_are_named_blocks_on_top_of_the_defaults() {
        let file = "[apis.shipping]\nbase_url = \"http://labels.example.com\"\nrate_limit_per_sec = 5\n";
        let s = load_with_file(
            file,
            &[
                ("COURIER__APIS__DEFAULTS__REQUEST_TIMEOUT_MS", "5000"),
                ("COURIER__APIS__PAYMENT__REQUEST_TIMEOUT_MS", "7000"),
                ("COURIER__APIS__AUTH__BASE_URL", "https://auth.example.com"),
            ],
        )
        .expect("valid");
        let api = |name: &str| s.apis.get(name).expect(name).clone();
        assert_eq!(api("shipping").base_url, "http://labels.example.com");
        assert_eq!(api("shipping").rate_limit_per_sec, 5, "its own block wins");
        assert_eq!(api("shipping").request_timeout_ms, Duration::from_millis(5000), "the defaults fill in the rest");
        assert_eq!(api("shipping").connect_timeout_ms, Duration::from_millis(2000));
        assert_eq!(api("payment").request_timeout_ms, Duration::from_millis(7000));
        assert_eq!(api("inventory").request_timeout_ms, Duration::from_millis(5000));
        assert_eq!(api("auth").base_url, "https://auth.example.com", "an API can come from the environment alone");
        assert_eq!(api("auth").breaker_failure_rate_percent, 50);
        let missing = s.apis.get("labels").expect_err("not configured").to_string();
        assert!(
            missing.contains("apis.labels.base_url") && missing.contains("COURIER__APIS__LABELS__BASE_URL"),
            "{missing}"
        );
        let error = load(&[("COURIER__APIS__CRM__TOKEN", "t0ken")]).expect_err("an API without a base URL").to_string();
        assert!(error.contains("apis.crm.base_url"), "{error}");
    }

    #[test]
    fn a_status_policy_comes_from_a_file_or_the_environment_over_the_defaults() {
        use http::StatusCode;

        use crate::downstream::StatusClass;
        let file = "[apis.crm]\nbase_url = \"http://crm\"\nsuccess_on = [409, \"200-201\"]\nretry_on = [\"404\"]\n\
                    max_attempts = 3\n";
        let s = load_with_file(
            file,
            &[
                ("COURIER__APIS__CRM__DEAD_LETTER_ON", "500, 502-504"),
                ("COURIER__APIS__CRM__MAX_BACKOFF_MS", "250"),
                ("COURIER__APIS__DEFAULTS__RETRY_ON", "423"),
            ],
        )
        .expect("valid");
        let crm = s.apis.get("crm").expect("crm").status_policy();
        let class = |code: u16| crm.class(StatusCode::from_u16(code).expect("status"));
        assert_eq!(
            [class(409), class(201), class(404), class(500), class(503)],
            [
                StatusClass::Success,
                StatusClass::Success,
                StatusClass::Transient,
                StatusClass::Permanent,
                StatusClass::Permanent
            ]
        );
        assert_eq!(
            [class(423), class(501), class(422)],
            [StatusClass::Permanent, StatusClass::Transient, StatusClass::Permanent],
            "its own retry_on replaces the defaults'; unlisted statuses keep their default"
        );
        assert_eq!((crm.budget.max_attempts(), crm.budget.max_backoff()), (Some(3), Some(Duration::from_millis(250))));
        let abort = crm.abort.expect("read by default");
        assert_eq!((abort.header.as_str(), abort.value.as_str()), ("webhook-delivery", "abort-message"));
        let inventory = s.apis.get("inventory").expect("inventory").status_policy();
        assert_eq!(inventory.class(StatusCode::LOCKED), StatusClass::Transient, "[apis.defaults] from the environment");
        assert_eq!((inventory.budget.max_attempts(), inventory.budget.max_backoff()), (None, None), "the consumer's");
        let quiet = load(&[("COURIER__APIS__SMS__ABORT_HEADER", "")]).expect("valid");
        assert!(quiet.apis.get("sms").expect("sms").status_policy().abort.is_none(), "no header read");
    }

    #[test]
    fn a_status_policy_that_cannot_be_meant_is_refused_naming_its_key() {
        super::super::testing::assert_refused(&[
            ("COURIER__APIS__EMAIL__SUCCESS_ON", "99", "apis.email.success_on"),
            ("COURIER__APIS__EMAIL__RETRY_ON", "404,600", "apis.email.retry_on"),
            ("COURIER__APIS__EMAIL__DEAD_LETTER_ON", "503-500", "apis.email.dead_letter_on"),
            ("COURIER__APIS__EMAIL__DEAD_LETTER_ON", "5xx", "apis.email.dead_letter_on"),
            ("COURIER__APIS__EMAIL__ABORT_HEADER", "no header", "apis.email.abort_header"),
            ("COURIER__APIS__EMAIL__MAX_BACKOFF_MS", "10", "apis.email.max_backoff_ms"),
        ]);
        let twice = load_with_file("[apis.email]\nretry_on = [\"400-410\"]\ndead_letter_on = [500, 404]\n", &[])
            .expect_err("404 in two lists")
            .to_string();
        assert!(twice.contains("apis.email.dead_letter_on") && twice.contains("404"), "{twice}");
        let twice = load(&[("COURIER__APIS__DEFAULTS__SUCCESS_ON", "409"), ("COURIER__APIS__SMS__RETRY_ON", "409")])
            .expect_err("409 in two lists")
            .to_string();
        assert!(twice.contains("apis.sms.retry_on") && twice.contains("apis.sms.success_on"), "{twice}");
    }
}
