//! The HTTP client of one downstream API: breaker → rate limit → concurrency limit → request (with its
//! timeouts), each call carrying the event's idempotency key, its trace context, the API's credentials and,
//! when the API asks for them, its signature headers (each attempt signed anew).

use std::borrow::Cow;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use reqwest::{Method, Url};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::auth::{Auth, AuthError, TokenId};
use super::breaker::{CallResult, CircuitBreaker};
use super::classification::{StatusPolicy, is_transient_status};
use super::concurrency::{AdaptiveConcurrency, CallSignal};
use super::signing::Signer;
use crate::health::Health;
use crate::settings::{ApiSettings, HttpVersion};
use crate::telemetry::metrics::{self, Label};
use crate::telemetry::{propagation, traces};

/// Header that makes a repeated call harmless.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// How much of any response body is read: a handler needs a small JSON answer at most, and an API that
/// answers with megabytes must not grow the consumer's memory by that much per call in flight.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The failure kind of a call refused because the API's circuit breaker is open.
pub const CIRCUIT_OPEN: &str = "circuit_open";
/// The failure kind of a call not made because its event stopped while it waited for its turn.
pub const STOPPED: &str = "stopped";

/// A client for one downstream API.
#[derive(Clone)]
pub struct ApiClient {
    /// The API's name in settings, logs and metrics (`inventory`, `payment`, …).
    name: Label,
    /// Base URL endpoint paths are joined to; always ends with `/`.
    base_url: Url,
    /// Pooled HTTP client with the API's timeouts.
    http: reqwest::Client,
    /// The API's credentials.
    auth: Auth,
    /// What signs every call, when the API asks for signed calls.
    signer: Option<Arc<Signer>>,
    /// The API's circuit breaker.
    breaker: CircuitBreaker,
    /// The API's rate limit, when set.
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// How many calls may be in flight at once.
    concurrency: Arc<AdaptiveConcurrency>,
    /// The API's call metrics.
    metrics: Arc<metrics::CallMetrics>,
    /// What the API's answers mean for an event, and its retry budget; every result carries it.
    policy: Arc<StatusPolicy>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base_url = redacted(&self.base_url);
        f.debug_struct("ApiClient").field("name", &self.name).field("base_url", &base_url.as_str()).finish()
    }
}

/// What identifies one call: its idempotency key; and when it must not go out any more: once an event it is
/// made for stops (its partition revoked, or the consumer shutting down), a call still waiting for its turn
/// (the API's rate or concurrency limit) is not sent. (The trace it belongs to is the current span's: the call
/// is sent as a child span of it.)
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// `Idempotency-Key` header value.
    pub idempotency_key: String,
    /// The stops of the events it is made for ([`crate::delivery::Incoming`]): any that fires before the call
    /// is sent keeps it from being sent.
    stops: Vec<CancellationToken>,
}

impl CallContext {
    /// A call with `idempotency_key`, made for no event in particular: nothing stops it.
    pub fn keyed(idempotency_key: impl Into<String>) -> Self {
        Self { idempotency_key: idempotency_key.into(), stops: Vec::new() }
    }

    /// Whether an event the call is made for has stopped.
    fn is_stopped(&self) -> bool {
        self.stops.iter().any(CancellationToken::is_cancelled)
    }

    /// Ends when an event the call is made for stops; never, when it is made for none.
    async fn stopped(&self) {
        match self.stops.as_slice() {
            [] => std::future::pending().await,
            [one] => one.cancelled().await,
            many => {
                futures::future::select_all(many.iter().map(|stop| Box::pin(stop.cancelled()))).await;
            }
        }
    }

    /// What `future` ends with, or `None` when an event the call is made for stops first.
    async fn unless_stopped<T>(&self, future: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            () = self.stopped() => None,
            output = future => Some(output),
        }
    }

    /// The call made for `incoming` by the consumer (or its channel or step) `prefix`:
    /// `Idempotency-Key: <prefix>:<event identity>`, the same on every attempt and redelivery. The identity
    /// is the event's `id` for the events courier publishes, its source's digest and `id` for any other
    /// CloudEvent ([`crate::events::CloudEvent::identity`]), and the record's for a record that is not a
    /// CloudEvent ([`crate::formats::identity`]).
    pub fn for_event(prefix: &str, incoming: &crate::delivery::Incoming) -> Self {
        Self { idempotency_key: format!("{prefix}:{}", incoming.identity), stops: vec![incoming.stop.clone()] }
    }

    /// The call made for `batch` by `prefix`: `Idempotency-Key: <prefix>:batch:<digest of the events'
    /// identities>`. It names this very group of events: the same when the same events are sent together again,
    /// another when an event is retried in another batch. So an API must deduplicate the events of a batch one
    /// by one, by each event's own `source` and `id` (which the body carries), never by the batch's key.
    pub fn for_batch(prefix: &str, batch: &[&crate::delivery::Incoming]) -> Self {
        let mut identities = Vec::with_capacity(batch.iter().map(|i| i.identity.len() + 8).sum());
        for incoming in batch {
            // Each identity preceded by its length: no two lists of identities give the same bytes.
            let identity = &incoming.identity;
            identities.extend_from_slice(&(identity.len() as u64).to_be_bytes());
            identities.extend_from_slice(identity.as_bytes());
        }
        // A name-based (SHA-1) UUID of the identities: the same for the same events, in 32 hex digits.
        let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &identities).simple();
        let stops = batch.iter().map(|incoming| incoming.stop.clone()).collect();
        Self { idempotency_key: format!("{prefix}:batch:{digest}"), stops }
    }
}

/// A request's body, its content type and the headers of its own (beside the idempotency key, the trace
/// context and the credentials every call carries): CloudEvents binary mode sends the event's attributes as
/// `ce-*` headers.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The body, byte for byte.
    pub body: Bytes,
    /// Its `Content-Type`.
    pub content_type: HeaderValue,
    /// Headers of this request.
    pub headers: HeaderMap,
}

impl Payload {
    /// `body` as JSON (`application/json`).
    pub fn json<B: Serialize + ?Sized>(body: &B) -> Result<Self, serde_json::Error> {
        Ok(Self {
            body: serde_json::to_vec(body)?.into(),
            content_type: HeaderValue::from_static("application/json"),
            headers: HeaderMap::new(),
        })
    }
}

/// A response as the handler sees it: the status, the headers and the whole body.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// `METHOD url` of the call, without credentials or query string.
    pub endpoint: String,
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body, its first [`MAX_RESPONSE_BYTES`] at most.
    pub body: Bytes,
    /// Whether this call was the half-open breaker's probe: its failure spends no attempt of the event.
    pub probe: bool,
    /// The status policy of the API that answered, by which the response is classified.
    pub policy: Arc<StatusPolicy>,
}

/// `text` as one segment of a URL path (e.g. an id in `reservations/{id}/release`): every character but
/// ASCII letters, digits and `-._~` percent-encoded, so that no id can change the path.
pub fn path_segment(text: &str) -> String {
    const ESCAPED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(text, ESCAPED).to_string()
}

impl ApiResponse {
    /// The body as JSON of type `T`, when it is.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A call that got no response.
#[derive(Debug)]
pub struct CallError {
    /// `METHOD url` of the call, without credentials or query string.
    pub endpoint: String,
    /// What went wrong.
    pub kind: CallErrorKind,
    /// Whether this call was the half-open breaker's probe: its failure spends no attempt of the event.
    pub probe: bool,
    /// The status policy of the API called (its retry budget applies to the failure).
    pub policy: Arc<StatusPolicy>,
}

/// Why a call got no response.
#[derive(Debug)]
pub enum CallErrorKind {
    /// The request failed on the way (connection, timeout, broken body).
    Transport(reqwest::Error),
    /// No credentials could be had for the call (the OAuth 2.0 token endpoint failed): the call was not made.
    Auth(AuthError),
    /// The body could not be encoded (a bug, never bad input): the call was not made.
    Encode(serde_json::Error),
    /// The API's circuit breaker is open: the call was not made. Ask again after `retry_in`.
    CircuitOpen {
        /// How long until the breaker may let a call through.
        retry_in: Duration,
    },
    /// An event the call is made for stopped (its partition was revoked, or the consumer is shutting down)
    /// before the call's turn came: the call was not made.
    Stopped,
}

impl ApiClient {
    /// Builds the client for API `name` from its settings; its breaker reports to `health`. Fails when a
    /// certificate file cannot be read or parsed.
    pub fn new(name: &str, settings: &ApiSettings, health: &Health) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout_ms)
            .timeout(settings.request_timeout_ms)
            .user_agent(concat!("courier/", env!("CARGO_PKG_VERSION")))
            .redirect(redirect_policy());
        let max_idle = match settings.max_idle_connections {
            0 => settings.max_in_flight,
            bound => bound,
        };
        builder = builder.pool_max_idle_per_host(max_idle);
        builder = match settings.http_version {
            HttpVersion::Auto => builder,
            HttpVersion::Http1 => builder.http1_only(),
            HttpVersion::Http2 => builder.http2_prior_knowledge(),
        };
        let tls = TlsFiles {
            setting_prefix: &format!("apis.{name}"),
            ca: &settings.tls_ca_location,
            certificate: &settings.tls_certificate_location,
            key: &settings.tls_key_location,
        };
        builder = tls.apply(builder).map_err(ClientError::Certificate)?;
        let http = builder.build().map_err(ClientError::Http)?;
        let mut base_url = Url::parse(&settings.base_url).unwrap_or_else(|_| {
            // Settings::validate has checked the URL already; keep a harmless value rather than panic.
            Url::parse("http://invalid.invalid/").expect("static URL parses")
        });
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        let breaker = CircuitBreaker::new(name, settings.breaker_policy(), health.clone());
        let limiter = NonZeroU32::new(settings.rate_limit_per_sec).map(|rate| {
            let burst = NonZeroU32::new(settings.rate_limit_burst).unwrap_or(NonZeroU32::MIN);
            Arc::new(RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)))
        });
        let auth = Auth::from_settings(name, settings, http.clone());
        let signer = Signer::from_settings(&settings.signing)
            .map_err(|error| ClientError::Signing(format!("apis.{name}.{error}")))?
            .map(Arc::new);
        let name = Label::from(name);
        let metrics = Arc::new(metrics::CallMetrics::new(name.clone()));
        let concurrency = Arc::new(AdaptiveConcurrency::new(
            name.clone(),
            settings.max_in_flight,
            settings.adaptive_concurrency,
            settings.adaptive_idle_ms,
        ));
        let policy = Arc::new(settings.status_policy());
        Ok(Self { name, base_url, http, auth, signer, breaker, limiter, concurrency, metrics, policy })
    }

    /// The API's circuit breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The API's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of `path` under the base URL.
    pub fn url(&self, path: &str) -> Url {
        self.base_url.join(path.trim_start_matches('/')).unwrap_or_else(|_| self.base_url.clone())
    }

    /// Sends `body` as JSON with `method` to `path` (see [`ApiClient::send`]).
    pub async fn send_json<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        call: &CallContext,
    ) -> Result<ApiResponse, CallError> {
        match Payload::json(body) {
            Ok(payload) => self.send(method, path, &payload, call).await,
            Err(error) => Err(CallError {
                endpoint: endpoint_label(&method, &self.url(path)),
                kind: CallErrorKind::Encode(error),
                probe: false,
                policy: self.policy.clone(),
            }),
        }
    }

    /// Sends `payload` with `method` to `path`, with the idempotency key, trace context, credentials and
    /// signature headers, through the breaker, the rate limit and the concurrency limit. With OAuth 2.0, a 401 makes the client
    /// forget the token the call carried (never a newer one) and send the call once more at once, with a newer
    /// token or a new one.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        payload: &Payload,
        call: &CallContext,
    ) -> Result<ApiResponse, CallError> {
        let url = self.url(path);
        let endpoint = endpoint_label(&method, &url);
        let stopped = || CallError {
            endpoint: endpoint.clone(),
            kind: CallErrorKind::Stopped,
            probe: false,
            policy: self.policy.clone(),
        };
        if call.is_stopped() {
            return Err(stopped());
        }
        let ticket = match self.breaker.admit(&call.idempotency_key) {
            Ok(ticket) => ticket,
            Err(retry_in) => {
                self.metrics.call(CIRCUIT_OPEN, None, None);
                let kind = CallErrorKind::CircuitOpen { retry_in };
                return Err(CallError { endpoint, kind, probe: false, policy: self.policy.clone() });
            }
        };
        // A call waiting for its turn is not sent once an event it is made for stops: its partition's revoke
        // (or the shutdown's drain) waits only for calls on the wire.
        if let Some(limiter) = &self.limiter {
            call.unless_stopped(limiter.until_ready()).await.ok_or_else(stopped)?;
        }
        let slot = call.unless_stopped(self.concurrency.acquire()).await.ok_or_else(stopped)?;
        if let Err(retry_in) = ticket.recheck() {
            // The breaker opened while the call waited for its turn.
            drop(slot);
            self.metrics.call(CIRCUIT_OPEN, None, None);
            let kind = CallErrorKind::CircuitOpen { retry_in };
            return Err(CallError { endpoint, kind, probe: false, policy: self.policy.clone() });
        }
        let (mut result, token) = self.call(&method, &url, &endpoint, payload, call).await;
        if matches!(&result, Ok((status, ..)) if *status == StatusCode::UNAUTHORIZED) && self.auth.refused(token) {
            tracing::info!(api = %self.name, "the API refused the OAuth 2.0 token: calling again with a new one");
            result = self.call(&method, &url, &endpoint, payload, call).await.0;
        }
        slot.finish(load_signal(&result));
        let (probe, policy) = (ticket.is_probe(), self.policy.clone());
        let result = match result {
            Ok((status, headers, body)) => Ok(ApiResponse { endpoint, status, headers, body, probe, policy }),
            Err(kind) => Err(CallError { endpoint, kind, probe, policy }),
        };
        ticket.finish(breaker_verdict(&result));
        result
    }

    /// One HTTP call, signed now when the API asks for it, as a client span of the current one whose context
    /// it sends (`traceparent`): its
    /// status, headers and (capped) body, and the OAuth 2.0 token it carried (so that a 401 forgets that one
    /// and no newer one). Counted and timed in the call metrics. The span exists only when
    /// spans are exported, and is never entered (nothing is logged inside it, and entering it at every poll of
    /// the call is measurable): it lasts from here to its drop.
    async fn call(
        &self,
        method: &Method,
        url: &Url,
        endpoint: &str,
        payload: &Payload,
        call: &CallContext,
    ) -> (Result<(StatusCode, HeaderMap, Bytes), CallErrorKind>, TokenId) {
        let span = traces::exported_span(|| {
            tracing::info_span!(
                "http call",
                otel.kind = "client",
                otel.name = %method,
                api = %self.name,
                http.request.method = %method,
                url.full = endpoint,
                http.response.status_code = tracing::field::Empty,
            )
        });
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .headers(payload.headers.clone())
            .header(CONTENT_TYPE, payload.content_type.clone())
            .header(IDEMPOTENCY_KEY, &call.idempotency_key)
            .body(payload.body.clone());
        for (name, value) in propagation::headers_of(&span) {
            request = request.header(name, value);
        }
        let (request, token) = match self.auth.apply(request).await {
            Ok(applied) => applied,
            Err(error) => {
                self.metrics.call("auth", None, None);
                return (Err(CallErrorKind::Auth(error)), TokenId::NONE);
            }
        };
        let request = match &self.signer {
            // Signed last, so that the timestamp is the sending's (after any wait for a token); replacing any
            // header of the payload's of the same name, since the signature covers this very body.
            Some(signer) => request.headers(signer.headers(&call.idempotency_key, &payload.body)),
            None => request,
        };
        let started = std::time::Instant::now();
        let result = async {
            let mut response = request.send().await?;
            let status = response.status();
            // Taken rather than copied: the body is read without them.
            let headers = std::mem::take(response.headers_mut());
            let mut body = Vec::new();
            while body.len() < MAX_RESPONSE_BYTES {
                let Some(chunk) = response.chunk().await? else {
                    break;
                };
                body.extend_from_slice(&chunk[..chunk.len().min(MAX_RESPONSE_BYTES - body.len())]);
            }
            Ok::<_, reqwest::Error>((status, headers, Bytes::from(body)))
        }
        .await;
        let elapsed = Some(started.elapsed());
        match &result {
            Ok((status, ..)) => {
                span.record("http.response.status_code", status.as_u16());
                self.metrics.call(status_class(*status), Some(status.as_u16()), elapsed);
            }
            Err(error) => self.metrics.call(transport_class(error), None, elapsed),
        }
        (result.map_err(|error| CallErrorKind::Transport(redacted_error(error))), token)
    }
}

/// The PEM files of an HTTP client's TLS settings (`<prefix>.tls_ca_location`, `tls_certificate_location`,
/// `tls_key_location`); an empty path is a file not set.
pub(crate) struct TlsFiles<'a> {
    /// The settings' prefix in error messages (`apis.payment`, `schema_registry`).
    pub(crate) setting_prefix: &'a str,
    /// CA certificates trusted beside the system's.
    pub(crate) ca: &'a str,
    /// A client certificate (mutual TLS).
    pub(crate) certificate: &'a str,
    /// Its PKCS#8 key.
    pub(crate) key: &'a str,
}

impl TlsFiles<'_> {
    /// `builder` trusting the CA and presenting the client certificate, as set; the error names the setting.
    pub(crate) fn apply(&self, mut builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, String> {
        let prefix = self.setting_prefix;
        let read =
            |setting: &str, path: &str| std::fs::read(path).map_err(|e| format!("{prefix}.{setting} = {path}: {e}"));
        if !self.ca.is_empty() {
            let pem = read("tls_ca_location", self.ca)?;
            let ca = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("{prefix}.tls_ca_location: {e}"))?;
            builder = builder.add_root_certificate(ca);
        }
        if !self.certificate.is_empty() {
            let cert = read("tls_certificate_location", self.certificate)?;
            let key = read("tls_key_location", self.key)?;
            let identity = reqwest::Identity::from_pkcs8_pem(&cert, &key)
                .map_err(|e| format!("{prefix}.tls_certificate_location: {e}"))?;
            builder = builder.identity(identity);
        }
        Ok(builder)
    }
}

/// Why an API's client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API is not configured (no `[apis.<name>]` block).
    #[error(transparent)]
    NotConfigured(#[from] crate::settings::SettingsError),
    /// A certificate or key file of the API cannot be read or parsed.
    #[error("{0}")]
    Certificate(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(reqwest::Error),
    /// The API's signing settings cannot work (the text names the setting, never a secret).
    #[error("{0}")]
    Signing(String),
}

/// A response's outcome class, as `courier_downstream_calls_total` labels it.
fn status_class(status: StatusCode) -> &'static str {
    if status.is_success() {
        "success"
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        "throttled"
    } else if is_transient_status(status) {
        "server_error"
    } else {
        "client_error"
    }
}

/// A call without a response, as `courier_downstream_calls_total` labels it.
fn transport_class(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection"
    } else {
        "transport"
    }
}

/// What a call's result says about the API's load, for its concurrency limit.
fn load_signal(result: &Result<(StatusCode, HeaderMap, Bytes), CallErrorKind>) -> CallSignal {
    match result {
        Ok((status, ..)) if matches!(*status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) => {
            CallSignal::Backpressure
        }
        Ok(_) => CallSignal::Answered,
        Err(CallErrorKind::Transport(error)) if error.is_timeout() => CallSignal::Backpressure,
        Err(_) => CallSignal::Ignored,
    }
}

/// What a call's result says about the API's health.
fn breaker_verdict(result: &Result<ApiResponse, CallError>) -> CallResult {
    match result {
        Ok(r) if r.status == StatusCode::TOO_MANY_REQUESTS => CallResult::Neutral,
        Ok(r) if is_transient_status(r.status) => CallResult::Failed,
        Ok(_) => CallResult::Healthy,
        Err(CallError { kind: CallErrorKind::Transport(e), .. }) if e.is_builder() => CallResult::Neutral,
        Err(_) => CallResult::Failed,
    }
}

/// Which redirects a call follows: those that keep its method and body (307, 308) and a 303, which says the
/// API took the request and points at its result; at most [`MAX_REDIRECTS`] in a row. reqwest's default also
/// follows a 301 or a 302 of a POST with a GET without the body, so the answer to that GET (a 200, say) would
/// count as the delivery of an event the API never received. A 301 or 302 therefore comes back as the answer:
/// a permanent failure whose dead letter names the status (the API moved: its `base_url` needs changing).
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let followed = [StatusCode::SEE_OTHER, StatusCode::TEMPORARY_REDIRECT, StatusCode::PERMANENT_REDIRECT]
            .contains(&attempt.status());
        if followed && attempt.previous().len() <= MAX_REDIRECTS { attempt.follow() } else { attempt.stop() }
    })
}

/// The most redirects one call follows (reqwest's default).
const MAX_REDIRECTS: usize = 10;

/// `METHOD scheme://host[:port]/path`, never credentials or the query string (they may hold secrets).
pub(crate) fn endpoint_label(method: &Method, url: &Url) -> String {
    format!("{method} {}", redacted(url))
}

/// `url` without what may hold a secret (an API key in `?api_key=…`, a password in `user:pw@`): its user name,
/// password, query string and fragment. Every URL courier prints (logs, dead letters, error messages, `Debug`)
/// goes through here.
pub(crate) fn redacted(url: &Url) -> Cow<'_, Url> {
    let clean =
        url.username().is_empty() && url.password().is_none() && url.query().is_none() && url.fragment().is_none();
    if clean {
        // The usual case, made per call: `Url`'s setters each rebuild the whole URL.
        return Cow::Borrowed(url);
    }
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.set_query(None);
    clean.set_fragment(None);
    Cow::Owned(clean)
}

/// `error` with its URL [`redacted`]: reqwest's text of an error ends with the whole URL of the request.
pub(crate) fn redacted_error(mut error: reqwest::Error) -> reqwest::Error {
    if let Some(url) = error.url_mut()
        && let Cow::Owned(clean) = redacted(url)
    {
        *url = clean;
    }
    error
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::response::IntoResponse;

    use super::*;
    use crate::delivery::Outcome;
    use crate::downstream::classify;

    #[tokio::test]
    async fn transport_errors_are_classified() {
        // Nothing listens on port 1 of loopback: the connection is refused.
        let settings = ApiSettings {
            base_url: "http://127.0.0.1:1/api".into(),
            connect_timeout_ms: Duration::from_millis(500),
            request_timeout_ms: Duration::from_millis(500),
            token: Some(secrecy::SecretString::from("s3cret")),
            breaker_failure_rate_percent: 50,
            breaker_minimum_calls: 1,
            breaker_minimum_failing_keys: 1,
            breaker_window_ms: Duration::from_secs(10),
            breaker_cooldown_ms: Duration::from_secs(60),
            rate_limit_per_sec: 0,
            rate_limit_burst: 1,
            ..ApiSettings::default()
        };
        let client = ApiClient::new("test", &settings, &Health::default()).expect("client");
        assert_eq!(client.url("reservations").as_str(), "http://127.0.0.1:1/api/reservations");
        assert!(!format!("{client:?}").contains("s3cret"));
        let call = CallContext::keyed("test:1");
        let result = client.send_json(Method::POST, "reservations", &serde_json::json!({}), &call).await;
        match classify(&result) {
            Outcome::Retry(f) => {
                assert_eq!(f.kind, "connect");
                assert!(f.charged, "a call that was made spends an attempt, even the one that opened the breaker");
                assert_eq!(f.endpoint.as_deref(), Some("POST http://127.0.0.1:1/api/reservations"));
            }
            other => panic!("a refused connection must be retried, got {other:?}"),
        }
        // One failed call of one event meets this breaker's minimums: it is open and the next call is not made.
        let result = client.send_json(Method::POST, "reservations", &serde_json::json!({}), &call).await;
        match classify(&result) {
            Outcome::Retry(f) => {
                assert_eq!(f.kind, CIRCUIT_OPEN);
                assert!(f.retry_after.is_some_and(|d| d <= Duration::from_secs(60)));
            }
            other => panic!("an open breaker must be a wait, got {other:?}"),
        }
    }

    /// Serves `app` on a free loopback port: `http://<address>`.
    async fn serving(app: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = listener.local_addr().expect("its address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    /// Serves `app` on a free loopback port and returns the settings of an API there, at `/api` (no breaker,
    /// 4 calls in flight).
    async fn api_serving(app: axum::Router) -> ApiSettings {
        ApiSettings {
            base_url: format!("{}/api", serving(app).await).into(),
            connect_timeout_ms: Duration::from_secs(2),
            request_timeout_ms: Duration::from_secs(2),
            max_in_flight: 4,
            ..ApiSettings::default()
        }
    }

    #[tokio::test]
    async fn a_call_waiting_for_its_turn_is_not_sent_once_its_event_stops() {
        // The API holds each call until released; one call at a time.
        let (calls, release) = (Arc::new(AtomicUsize::new(0)), Arc::new(tokio::sync::Notify::new()));
        let (counted, held) = (Arc::clone(&calls), Arc::clone(&release));
        let app = axum::Router::new().route(
            "/api/reservations",
            axum::routing::post(move || {
                let (counted, held) = (Arc::clone(&counted), Arc::clone(&held));
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    held.notified().await;
                    axum::Json(serde_json::json!({}))
                }
            }),
        );
        let settings = ApiSettings { max_in_flight: 1, adaptive_concurrency: false, ..api_serving(app).await };
        let client = Arc::new(ApiClient::new("test", &settings, &Health::default()).expect("client"));
        let send = |call: CallContext| {
            let client = Arc::clone(&client);
            tokio::spawn(
                async move { client.send_json(Method::POST, "reservations", &serde_json::json!({}), &call).await },
            )
        };
        let first = send(CallContext::keyed("test:first"));
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let mut event = crate::delivery::Incoming::new(
            "orders",
            &serde_json::json!({
                "specversion": "1.0", "id": "e-1", "source": "/t", "type": "order.created", "subject": "o-1",
                "time": "2026-12-03T00:00:00Z", "datacontenttype": "application/json", "data": {},
            }),
        )
        .expect("an event");
        event.stop = CancellationToken::new();
        let waiting = send(CallContext::for_event("test", &event));
        tokio::time::sleep(Duration::from_millis(50)).await;
        event.stop.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("the waiting call ends when its event stops, not when the first call answers")
            .expect("the task");
        match classify(&stopped) {
            Outcome::Retry(failure) => assert!(failure.kind == STOPPED && !failure.charged, "{failure:?}"),
            other => panic!("a call not made is retried without spending an attempt, got {other:?}"),
        }
        let again = send(CallContext::for_event("test", &event)).await.expect("the task");
        assert!(matches!(&again, Err(CallError { kind: CallErrorKind::Stopped, .. })), "{again:?}");
        release.notify_one();
        let answered = first.await.expect("the task").expect("the first call is answered");
        assert_eq!(answered.status, StatusCode::OK);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "only the first call reached the API");
    }

    #[tokio::test]
    async fn http_version_chooses_http1_or_cleartext_http2() {
        // An API that answers with the HTTP version of the request it got.
        let version_of = |request: axum::extract::Request| async move { format!("{:?}", request.version()) };
        let api = api_serving(axum::Router::new().route("/api/version", axum::routing::post(version_of))).await;
        let call = CallContext::keyed("test:1");
        let cases =
            [(HttpVersion::Auto, "HTTP/1.1"), (HttpVersion::Http1, "HTTP/1.1"), (HttpVersion::Http2, "HTTP/2.0")];
        for (http_version, expected) in cases {
            let settings = ApiSettings { http_version, ..api.clone() };
            let client = ApiClient::new("test", &settings, &Health::default()).expect("client");
            let response = client.send_json(Method::POST, "version", &serde_json::json!({}), &call).await;
            let response = response.unwrap_or_else(|e| panic!("{http_version:?}: no answer: {:?}", e.kind));
            assert_eq!(response.status, StatusCode::OK, "{http_version:?}");
            assert_eq!(std::str::from_utf8(&response.body), Ok(expected), "{http_version:?}");
        }
    }

    #[tokio::test]
    async fn redirects_that_would_drop_the_body_are_not_followed() {
        // An API that moved `old` (301), `temporary` (302), `kept` (307) and `done` (303) to `new`, and answers
        // `new` with the method and body it got.
        let to_new = |status: StatusCode| move || async move { (status, [(http::header::LOCATION, "/api/new")]) };
        let echo = |method: Method, body: String| async move { format!("{method} {body}") };
        let app = axum::Router::new()
            .route("/api/old", axum::routing::post(to_new(StatusCode::MOVED_PERMANENTLY)))
            .route("/api/temporary", axum::routing::post(to_new(StatusCode::FOUND)))
            .route("/api/kept", axum::routing::post(to_new(StatusCode::TEMPORARY_REDIRECT)))
            .route("/api/done", axum::routing::post(to_new(StatusCode::SEE_OTHER)))
            .route("/api/new", axum::routing::any(echo));
        let client = ApiClient::new("test", &api_serving(app).await, &Health::default()).expect("client");
        let call = CallContext::keyed("test:1");
        let body = serde_json::json!({"sku": "A-1"});
        for (path, status, answer) in [
            ("kept", StatusCode::OK, r#"POST {"sku":"A-1"}"#),
            ("done", StatusCode::OK, "GET "),
            ("old", StatusCode::MOVED_PERMANENTLY, ""),
            ("temporary", StatusCode::FOUND, ""),
        ] {
            let response = client.send_json(Method::POST, path, &body, &call).await;
            let response = response.unwrap_or_else(|e| panic!("{path}: no answer: {:?}", e.kind));
            assert_eq!(response.status, status, "{path}");
            assert_eq!(std::str::from_utf8(&response.body), Ok(answer), "{path}");
            if !status.is_success() {
                match classify(&Ok(response)) {
                    Outcome::Permanent(f) => assert_eq!(f.http_status, Some(status.as_u16()), "{path}"),
                    other => panic!("{path}: a redirect not followed must be a permanent failure, got {other:?}"),
                }
            }
        }
    }

    #[tokio::test]
    async fn every_attempt_is_signed_over_the_body_as_sent_replacing_the_payloads_own_signature_headers() {
        // An API that answers with the signature headers and the body it got.
        let echo = |headers: HeaderMap, body: Bytes| async move {
            let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let names = ["webhook-id", "webhook-timestamp", "webhook-signature"];
            axum::Json(serde_json::json!({
                "headers": names.map(value),
                "count": headers.get_all("webhook-signature").iter().count(),
                "body": String::from_utf8_lossy(&body),
            }))
        };
        let api = api_serving(axum::Router::new().route("/api/hooks", axum::routing::post(echo))).await;
        let settings = crate::settings::SigningSettings {
            scheme: crate::settings::SigningScheme::StandardWebhooks,
            secrets: vec![secrecy::SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
            ..Default::default()
        };
        let signer = Signer::from_settings(&settings).expect("valid").expect("a signer");
        let client =
            ApiClient::new("test", &ApiSettings { signing: settings, ..api }, &Health::default()).expect("client");
        let mut payload = Payload::json(&serde_json::json!({"user_id": "u-1"})).expect("JSON");
        payload.headers.insert("webhook-signature", HeaderValue::from_static("v1,forged"));
        let call = CallContext::keyed("hooks:u-1");
        for _ in 0..2 {
            let response = client.send(Method::POST, "hooks", &payload, &call).await.expect("an answer");
            let got: serde_json::Value = response.json().expect("the echo");
            let header = |i: usize| got["headers"][i].as_str().unwrap_or_default().to_owned();
            let (id, timestamp, signature) = (header(0), header(1), header(2));
            assert_eq!(id, "hooks:u-1", "webhook-id is the idempotency key: {got}");
            assert_eq!(got["count"], 1, "one signature header, the forged one replaced: {got}");
            assert_eq!(got["body"], r#"{"user_id":"u-1"}"#);
            let timestamp: u64 = timestamp.parse().expect("unix seconds");
            let expected = signer.headers_at("hooks:u-1", timestamp, br#"{"user_id":"u-1"}"#);
            assert_eq!(Some(signature.as_str()), expected.get("webhook-signature").and_then(|v| v.to_str().ok()));
        }
    }

    #[tokio::test]
    async fn every_result_carries_the_status_policy_and_budget_of_its_api() {
        // An API that answers `/api/<status>` with that status.
        let answer = |axum::extract::Path(status): axum::extract::Path<u16>| async move {
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST)
        };
        let api = api_serving(axum::Router::new().route("/api/{status}", axum::routing::post(answer))).await;
        let settings = ApiSettings {
            success_on: crate::settings::StatusCodes::parse(["409"]).expect("valid"),
            max_attempts: 3,
            ..api
        };
        let client = ApiClient::new("crm", &settings, &Health::default()).expect("client");
        let call = CallContext::keyed("crm:1");
        let body = serde_json::json!({});
        let send = |status: &'static str| client.send_json(Method::POST, status, &body, &call);
        assert_eq!(classify(&send("409").await), Outcome::Done, "its 409 is a success");
        match classify(&send("503").await) {
            Outcome::Retry(f) => assert_eq!(f.budget.max_attempts(), Some(3), "{f:?}"),
            other => panic!("a 503 is retried, got {other:?}"),
        }
        let plain = ApiSettings { success_on: Default::default(), max_attempts: 0, ..settings.clone() };
        let other = ApiClient::new("other", &plain, &Health::default()).expect("client");
        let answer = other.send_json(Method::POST, "409", &serde_json::json!({}), &call).await;
        assert_eq!(classify(&answer).class(), "permanent", "another API keeps the defaults");
    }

    #[test]
    fn endpoint_label_hides_credentials_and_query() {
        for url in ["https://user:pw@api.example.com/v1/charges?api_key=x", "https://api.example.com/v1/charges#f"] {
            let url = Url::parse(url).expect("url");
            assert_eq!(endpoint_label(&Method::POST, &url), "POST https://api.example.com/v1/charges");
        }
        let clean = Url::parse("http://127.0.0.1:8080/api/charges").expect("url");
        assert_eq!(endpoint_label(&Method::PUT, &clean), "PUT http://127.0.0.1:8080/api/charges");
    }

    /// A port of loopback nothing listens on.
    async fn closed_port() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        listener.local_addr().expect("its address").port()
    }

    #[tokio::test]
    async fn a_failed_call_names_its_url_without_credentials_or_query() {
        let port = closed_port().await;
        let secrets = ["courier-user", "pw-S3CR3T", "SECRET-T0KEN"];
        let settings = ApiSettings {
            base_url: format!("http://courier-user:pw-S3CR3T@127.0.0.1:{port}/x?token=SECRET-T0KEN").into(),
            connect_timeout_ms: Duration::from_secs(2),
            request_timeout_ms: Duration::from_secs(2),
            max_in_flight: 4,
            ..ApiSettings::default()
        };
        // The route's path is empty: the call goes to the base URL itself, query string and all.
        let client = ApiClient::new("test", &settings, &Health::default()).expect("client");
        assert!(secrets.iter().all(|s| !format!("{client:?}").contains(s)), "{client:?}");
        let call = CallContext::keyed("test:1");
        let result = client.send_json(Method::POST, "", &serde_json::json!({}), &call).await;
        let Outcome::Retry(failure) = classify(&result) else { panic!("a refused connection is retried: {result:?}") };
        assert_eq!(failure.kind, "connect");
        assert_eq!(failure.endpoint, Some(format!("POST http://127.0.0.1:{port}/x/")));
        assert!(failure.message.contains(&format!("127.0.0.1:{port}/x/")), "the message names the URL: {failure:?}");
        let texts = [format!("{failure:?}"), format!("{result:?}")];
        for (text, secret) in texts.iter().flat_map(|t| secrets.iter().map(move |s| (t, s))) {
            assert!(!text.contains(secret), "{secret} is in {text}");
        }

        // The same for the token endpoint of an API with OAuth 2.0.
        let settings = ApiSettings {
            auth: "oauth2".into(),
            oauth2_token_url: format!("http://courier-user:pw-S3CR3T@127.0.0.1:{port}/token?key=SECRET-T0KEN").into(),
            oauth2_client_id: "client".into(),
            oauth2_client_secret: Some(secrecy::SecretString::from("client-S3CR3T")),
            ..settings
        };
        let client = ApiClient::new("test", &settings, &Health::default()).expect("client");
        let result = client.send_json(Method::POST, "", &serde_json::json!({}), &call).await;
        let Outcome::Retry(failure) = classify(&result) else { panic!("no token is a retry: {result:?}") };
        assert_eq!(failure.kind, "auth");
        assert!(failure.message.contains(&format!("127.0.0.1:{port}/token")), "names the endpoint: {failure:?}");
        let texts = [format!("{failure:?}"), format!("{result:?}")];
        for (text, secret) in texts.iter().flat_map(|t| secrets.iter().chain(&["client-S3CR3T"]).map(move |s| (t, s))) {
            assert!(!text.contains(secret), "{secret} is in {text}");
        }
    }

    /// A token endpoint (`/token`) answering every request with `answer(n)` for the n-th request (from 1), and
    /// the count of requests it got.
    async fn token_endpoint<F, Fut>(answer: F) -> (String, Arc<AtomicUsize>)
    where
        F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = axum::response::Response> + Send + 'static,
    {
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post(move || {
                let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                answer(n)
            }),
        );
        (format!("{}/token", serving(app).await), requests)
    }

    /// The settings of `api` authenticating with OAuth 2.0 at `token_url`.
    fn with_oauth2(api: ApiSettings, token_url: &str) -> ApiSettings {
        ApiSettings {
            auth: "oauth2".into(),
            oauth2_token_url: token_url.into(),
            oauth2_client_id: "client".into(),
            oauth2_client_secret: Some(secrecy::SecretString::from("client-secret")),
            ..api
        }
    }

    /// An API at `/api/x` that answers 200 to `Authorization: Bearer <valid>` and 401 to anything else, and
    /// counts its calls.
    async fn api_accepting(valid: &'static str) -> (ApiSettings, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let app = axum::Router::new().route(
            "/api/x",
            axum::routing::post(move |headers: HeaderMap| {
                counted.fetch_add(1, Ordering::SeqCst);
                let ok =
                    headers.get(http::header::AUTHORIZATION).is_some_and(|v| v == format!("Bearer {valid}").as_str());
                async move { if ok { StatusCode::OK } else { StatusCode::UNAUTHORIZED } }
            }),
        );
        (api_serving(app).await, calls)
    }

    #[tokio::test]
    async fn any_expires_in_the_token_endpoint_answers_lets_calls_go_out_and_none_panics() {
        let answers = [
            serde_json::json!({"access_token": "t-1", "token_type": "Bearer", "expires_in": u64::MAX}),
            serde_json::json!({"access_token": "t-1", "token_type": "bearer", "expires_in": 1e300}),
            serde_json::json!({"access_token": "t-1", "expires_in": -5}),
            serde_json::json!({"access_token": "t-1", "expires_in": 0}),
            serde_json::json!({"access_token": "t-1", "expires_in": 0.25}),
            serde_json::json!({"access_token": "t-1", "expires_in": 3600.5}),
            serde_json::json!({"access_token": "t-1", "expires_in": "3600"}),
            serde_json::json!({"access_token": "t-1", "expires_in": null}),
            serde_json::json!({"access_token": "t-1"}),
        ];
        let call = CallContext::keyed("test:1");
        for answer in answers {
            let body = answer.clone();
            let (token_url, requests) =
                token_endpoint(move |_| std::future::ready(axum::Json(body.clone()).into_response())).await;
            let (api, calls) = api_accepting("t-1").await;
            let client = ApiClient::new("test", &with_oauth2(api, &token_url), &Health::default()).expect("client");
            for _ in 0..2 {
                let response = client.send_json(Method::POST, "x", &serde_json::json!({}), &call).await;
                let status = response.map(|r| r.status).map_err(|e| e.kind);
                assert!(matches!(status, Ok(StatusCode::OK)), "{answer}: {status:?}");
            }
            assert_eq!(calls.load(Ordering::SeqCst), 2, "{answer}: both calls went out");
            assert_eq!(requests.load(Ordering::SeqCst), 1, "{answer}: one token served both");
        }

        // A token that cannot be used as a bearer token fails the call before it is made, without the token.
        for answer in [
            serde_json::json!({"access_token": "t-1", "token_type": "mac", "expires_in": 60}),
            serde_json::json!({"access_token": "t-1\n", "expires_in": 60}),
        ] {
            let body = answer.clone();
            let (token_url, _) =
                token_endpoint(move |_| std::future::ready(axum::Json(body.clone()).into_response())).await;
            let (api, calls) = api_accepting("t-1").await;
            let client = ApiClient::new("test", &with_oauth2(api, &token_url), &Health::default()).expect("client");
            let result = client.send_json(Method::POST, "x", &serde_json::json!({}), &call).await;
            match classify(&result) {
                Outcome::Retry(f) => assert!(f.kind == "auth" && !f.message.contains("t-1"), "{answer}: {f:?}"),
                other => panic!("{answer}: an unusable token fails the attempt, got {other:?}"),
            }
            assert_eq!(calls.load(Ordering::SeqCst), 0, "{answer}: no call made");
        }
    }

    #[tokio::test]
    async fn callers_of_a_hanging_token_endpoint_fail_within_the_request_timeout_and_open_the_breaker() {
        let (token_url, requests) = token_endpoint(|_| std::future::pending()).await;
        let (api, calls) = api_accepting("t-1").await;
        let timeout = Duration::from_millis(400);
        let settings = ApiSettings {
            request_timeout_ms: Duration::from_millis(400),
            max_in_flight: 16,
            breaker_failure_rate_percent: 50,
            breaker_minimum_calls: 8,
            breaker_minimum_failing_keys: 3,
            breaker_window_ms: Duration::from_secs(60),
            breaker_cooldown_ms: Duration::from_secs(60),
            ..with_oauth2(api, &token_url)
        };
        let client = ApiClient::new("test", &settings, &Health::default()).expect("client");
        let started = std::time::Instant::now();
        let sends = (0..8).map(|k| {
            let client = client.clone();
            async move {
                let call = CallContext::keyed(format!("test:{k}"));
                client.send_json(Method::POST, "x", &serde_json::json!({}), &call).await
            }
        });
        let results = futures::future::join_all(sends).await;
        let elapsed = started.elapsed();
        for result in &results {
            assert!(matches!(classify(result), Outcome::Retry(f) if f.kind == "auth"), "{result:?}");
        }
        assert!(
            elapsed < 2 * timeout,
            "every caller answered within the request timeout, not one after another: {elapsed:?}"
        );
        assert_eq!(requests.load(Ordering::SeqCst), 1, "one token request at a time");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        // Eight failed calls of eight events: the breaker counted them and is open.
        assert!(client.breaker().is_open(), "a token-endpoint outage opens the breaker");
        let call = CallContext::keyed("test:9");
        let result = client.send_json(Method::POST, "x", &serde_json::json!({}), &call).await;
        assert!(matches!(classify(&result), Outcome::Retry(f) if f.kind == CIRCUIT_OPEN), "{result:?}");
    }

    #[tokio::test]
    async fn a_failing_token_endpoint_is_asked_once_for_a_burst_of_calls() {
        let (token_url, requests) =
            token_endpoint(|_| std::future::ready(StatusCode::INTERNAL_SERVER_ERROR.into_response())).await;
        let (api, calls) = api_accepting("t-1").await;
        let settings = ApiSettings { max_in_flight: 64, ..with_oauth2(api, &token_url) };
        let client = ApiClient::new("test", &settings, &Health::default()).expect("client");
        for burst in 0..2 {
            let sends = (0..40).map(|k| {
                let client = client.clone();
                async move {
                    let call = CallContext::keyed(format!("test:{burst}-{k}"));
                    client.send_json(Method::POST, "x", &serde_json::json!({}), &call).await
                }
            });
            for result in futures::future::join_all(sends).await {
                let outcome = classify(&result);
                assert!(
                    matches!(&outcome, Outcome::Retry(f) if f.kind == "auth" && f.message.contains("500")),
                    "{outcome:?}"
                );
            }
            assert_eq!(requests.load(Ordering::SeqCst), 1, "burst {burst}: the failed request is remembered");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_late_401_for_an_old_token_keeps_the_newer_one() {
        // The token endpoint issues t-1, t-2, …; the API accepts the latest token only. The call keyed `slow`
        // is held until released (its first time), so that its 401 comes after a newer token was fetched.
        let latest = Arc::new(std::sync::Mutex::new(String::new()));
        let issued = latest.clone();
        let (token_url, requests) = token_endpoint(move |n| {
            let token = format!("t-{n}");
            *issued.lock().expect("latest") = token.clone();
            std::future::ready(
                axum::Json(serde_json::json!({"access_token": token, "expires_in": 3600})).into_response(),
            )
        })
        .await;
        let (arrived, release) = (Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()));
        let held = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let state = (latest.clone(), arrived.clone(), release.clone(), held, calls.clone());
        let app = axum::Router::new().route(
            "/api/x",
            axum::routing::post(move |headers: HeaderMap| {
                let (latest, arrived, release, held, calls) = state.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let key = headers.get(IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok()).unwrap_or_default();
                    if key == "test:slow" && !held.swap(true, Ordering::SeqCst) {
                        arrived.notify_one();
                        release.notified().await;
                    }
                    let valid = format!("Bearer {}", latest.lock().expect("latest"));
                    let ok = headers.get(http::header::AUTHORIZATION).is_some_and(|v| v == valid.as_str());
                    if ok { StatusCode::OK } else { StatusCode::UNAUTHORIZED }
                }
            }),
        );
        let settings = with_oauth2(api_serving(app).await, &token_url);
        let client = ApiClient::new("test", &settings, &Health::default()).expect("client");
        let send = |key: &str| {
            let (client, call) = (client.clone(), CallContext::keyed(format!("test:{key}")));
            async move { client.send_json(Method::POST, "x", &serde_json::json!({}), &call).await.map(|r| r.status) }
        };
        let slow = tokio::spawn(send("slow"));
        arrived.notified().await;
        // The API stops accepting t-1: the next call is refused, fetches t-2 and goes through with it.
        *latest.lock().expect("latest") = "revoked".into();
        assert!(matches!(send("fast").await, Ok(StatusCode::OK)));
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        // The slow call's 401 (it carried t-1) arrives now: t-2 stays, and the call goes again with it.
        release.notify_one();
        assert!(matches!(slow.await.expect("the slow call ends"), Ok(StatusCode::OK)));
        assert_eq!(requests.load(Ordering::SeqCst), 2, "the 401 for t-1 did not discard t-2");
        assert_eq!(calls.load(Ordering::SeqCst), 4, "slow, fast, fast again, slow again");
    }
}
