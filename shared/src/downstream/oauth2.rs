//! OAuth 2.0 client credentials (RFC 6749 §4.4) for one API: its token, fetched from the token endpoint,
//! cached, refreshed ahead of its expiry and fetched anew after a 401, and how that behaves when the token
//! endpoint fails.
//!
//! * **One fetch at a time.** A fetch runs in a task of its own (it ends even when every caller gave up on
//!   it) and lasts at most the API's request timeout. Callers that need a token while it runs wait for it,
//!   each at most that timeout; a caller that gets no token fails its attempt with an `auth` failure, which
//!   the circuit breaker counts as a failed call, so a token-endpoint outage opens the breaker like an outage
//!   of the API.
//! * **A failed fetch is remembered.** For a backoff ([`FIRST_BACKOFF`], doubling with each failed fetch in a
//!   row up to [`MAX_BACKOFF`], back to the first after a fetch that succeeds) callers fail at once with the
//!   fetch's error and no request goes to the token endpoint. A token that has not expired keeps being used
//!   meanwhile (a refresh is attempted from [`REFRESH_MARGIN`] before the expiry on).
//! * **A 401 forgets only the token it refused.** Every token fetched has an id ([`TokenId`]) that the call
//!   carrying it reports back: a 401 for an older token leaves a newer one in place.
//! * **No answer can overflow a clock.** `expires_in` is read leniently: seconds as an integer, a fraction or a
//!   string of either, clamped to [`MIN_LIFETIME`]..=[`MAX_LIFETIME`]; missing or not a positive number, the
//!   token lives [`DEFAULT_LIFETIME`]. `token_type` must be `Bearer` (any case) when present, and the
//!   `access_token` a valid header value: a token that cannot be sent fails the fetch with a clear error.
//!
//! The token and the client secret are secrets: never printed, never logged; error texts name the token
//! endpoint without its query string or user info.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use reqwest::Url;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::auth::AuthError;
use super::client::{endpoint_label, redacted_error};
use crate::settings::ApiSettings;

/// A token is refreshed this long before it expires (or at half its lifetime, if that is sooner).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(30);
/// The longest a token is kept, whatever `expires_in` says.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The shortest a token is kept (a smaller `expires_in` would make a token request of nearly every call).
pub const MIN_LIFETIME: Duration = Duration::from_secs(1);
/// How long a token is kept when the endpoint gives no usable `expires_in`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// How long a failed fetch is remembered after the first failure in a row.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest a failed fetch is remembered.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The most of the token endpoint's answer that is read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Which OAuth 2.0 token a call carried, so that a 401 forgets that token and no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenId(u64);

impl TokenId {
    /// A call without an OAuth 2.0 token.
    pub const NONE: TokenId = TokenId(0);
}

/// Makes one request to the token endpoint.
type Fetcher = dyn Fn() -> BoxFuture<'static, Result<Grant, AuthError>> + Send + Sync;

/// A fetch under way, shared by every caller waiting for it.
type Fetch = Shared<BoxFuture<'static, Result<Token, AuthError>>>;

/// An OAuth 2.0 client-credentials client of one API, with its cached token.
pub struct OAuth2 {
    /// The API's name, for logs.
    api: Arc<str>,
    /// Asks the token endpoint for a token.
    fetcher: Arc<Fetcher>,
    /// How long a caller waits for a fetch under way, and the longest a fetch may take.
    wait: Duration,
    /// The token and what the fetches did; locked briefly, never across an `await`.
    cache: Arc<Mutex<Cache>>,
}

/// A token the endpoint granted.
struct Grant {
    /// The access token.
    token: SecretString,
    /// How long it may be used.
    lifetime: Duration,
}

/// A token in use.
#[derive(Clone)]
struct Token {
    /// The access token.
    secret: SecretString,
    /// Which fetch got it.
    id: TokenId,
    /// From when on a new one is fetched (the current one is still used meanwhile).
    refresh_at: Instant,
    /// From when on it is no longer used.
    expires_at: Instant,
}

/// The token and what the fetches did.
#[derive(Default)]
struct Cache {
    /// The current token, once one was fetched (and until a 401 refused it).
    token: Option<Token>,
    /// The fetch under way, when there is one.
    fetching: Option<Fetch>,
    /// The last fetch, when it failed.
    failed: Option<Failed>,
    /// The id of the last token fetched.
    last_id: u64,
}

/// A failed fetch, remembered for a backoff.
struct Failed {
    /// Why it failed.
    error: AuthError,
    /// When the token endpoint may be asked again.
    retry_at: Instant,
    /// Fetches that failed in a row, this one included.
    in_a_row: u32,
}

impl OAuth2 {
    /// The OAuth 2.0 client of API `api`, asking `settings.oauth2_token_url` with `http`; a caller waits at
    /// most the API's request timeout for a token.
    pub fn new(api: &str, settings: &ApiSettings, http: reqwest::Client) -> Self {
        let endpoint = Arc::new(TokenEndpoint::new(settings, http));
        let fetcher = move || {
            let endpoint = endpoint.clone();
            async move { endpoint.request().await }.boxed()
        };
        Self::with_fetcher(api, settings.request_timeout_ms, Arc::new(fetcher))
    }

    /// A client whose tokens come from `fetcher`, callers waiting at most `wait`.
    fn with_fetcher(api: &str, wait: Duration, fetcher: Arc<Fetcher>) -> Self {
        Self { api: Arc::from(api), fetcher, wait, cache: Arc::default() }
    }

    /// A valid token and its id: the cached one until it is due for a refresh, else the one a fetch gets
    /// (started here unless one is under way or a failed one is remembered); the cached one while a refresh
    /// is under way or failed, until it expires.
    pub async fn token(&self) -> Result<(SecretString, TokenId), AuthError> {
        let now = Instant::now();
        let fetch = {
            let mut cache = lock(&self.cache);
            let current = cache.token.as_ref().filter(|t| now < t.expires_at).map(|t| (t.secret.clone(), t.id));
            if cache.token.as_ref().is_some_and(|t| now < t.refresh_at)
                && let Some(current) = current
            {
                return Ok(current);
            }
            let fetch = match (&cache.fetching, &cache.failed) {
                (Some(fetch), _) => fetch.clone(),
                (None, Some(failed)) if now < failed.retry_at => {
                    return current.ok_or_else(|| failed.refusal(now));
                }
                (None, _) => self.start_fetch(&mut cache),
            };
            if let Some(current) = current {
                return Ok(current);
            }
            fetch
        };
        match tokio::time::timeout(self.wait, fetch).await {
            Ok(token) => token.map(|t| (t.secret, t.id)),
            Err(_) => Err(AuthError(format!("the token endpoint has not answered within {} ms", millis(self.wait)))),
        }
    }

    /// After a 401 to a call that carried token `used`: forgets that token, unless a newer one replaced it.
    pub fn refused(&self, used: TokenId) {
        let mut cache = lock(&self.cache);
        if cache.token.as_ref().is_some_and(|t| t.id == used) {
            cache.token = None;
        }
    }

    /// Starts a fetch in a task of its own, bounded by `wait`; it settles the cache when it ends.
    fn start_fetch(&self, cache: &mut Cache) -> Fetch {
        let (fetcher, shared_cache, wait, api) =
            (self.fetcher.clone(), self.cache.clone(), self.wait, self.api.clone());
        let task = tokio::spawn(async move {
            let request = AssertUnwindSafe(async { fetcher().await }).catch_unwind();
            let fetched = match tokio::time::timeout(wait, request).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(AuthError("the token request panicked".into())),
                Err(_) => Err(AuthError(format!("the token endpoint did not answer within {} ms", millis(wait)))),
            };
            settle(&shared_cache, &api, fetched)
        });
        let (shared_cache, api) = (self.cache.clone(), self.api.clone());
        let fetch = async move {
            match task.await {
                Ok(token) => token,
                // The task never ran to its end (its runtime stopped): no fetch is under way any more.
                Err(error) => {
                    settle(&shared_cache, &api, Err(AuthError(format!("the token request stopped: {error}"))))
                }
            }
        }
        .boxed()
        .shared();
        cache.fetching = Some(fetch.clone());
        fetch
    }
}

/// Records how a fetch ended: its token becomes the current one, or its failure is remembered for a backoff.
fn settle(cache: &Mutex<Cache>, api: &str, fetched: Result<Grant, AuthError>) -> Result<Token, AuthError> {
    let now = Instant::now();
    let mut cache = lock(cache);
    cache.fetching = None;
    match fetched {
        Ok(grant) => {
            cache.last_id += 1;
            let refresh_in = grant.lifetime.saturating_sub(REFRESH_MARGIN.min(grant.lifetime / 2));
            let token = Token {
                secret: grant.token,
                id: TokenId(cache.last_id),
                refresh_at: now.checked_add(refresh_in).unwrap_or(now),
                expires_at: now.checked_add(grant.lifetime).unwrap_or(now),
            };
            cache.token = Some(token.clone());
            cache.failed = None;
            tracing::debug!(api, lifetime_ms = millis(grant.lifetime), "OAuth 2.0 token fetched");
            Ok(token)
        }
        Err(error) => {
            let in_a_row = cache.failed.as_ref().map_or(1, |f| f.in_a_row.saturating_add(1));
            let backoff = backoff(in_a_row);
            tracing::warn!(
                api,
                in_a_row,
                backoff_ms = millis(backoff),
                error = %error.0,
                "OAuth 2.0 token request failed: calls that need a token fail until the backoff ends"
            );
            cache.failed =
                Some(Failed { error: error.clone(), retry_at: now.checked_add(backoff).unwrap_or(now), in_a_row });
            Err(error)
        }
    }
}

impl Failed {
    /// The error a caller within the backoff gets.
    fn refusal(&self, now: Instant) -> AuthError {
        let left = self.retry_at.saturating_duration_since(now);
        AuthError(format!("{} (the token endpoint is asked again in {} ms)", self.error.0, millis(left)))
    }
}

/// How long the `in_a_row`-th failed fetch in a row is remembered: [`FIRST_BACKOFF`], doubling, at most
/// [`MAX_BACKOFF`].
fn backoff(in_a_row: u32) -> Duration {
    let factor = 1u32.checked_shl(in_a_row.saturating_sub(1)).unwrap_or(u32::MAX);
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Whole milliseconds of `d`, for texts and logs.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The cache, even after a panic elsewhere while it was locked (every change to it is one assignment).
fn lock(cache: &Mutex<Cache>) -> MutexGuard<'_, Cache> {
    cache.lock().unwrap_or_else(|e| e.into_inner())
}

/// The token endpoint of one API and the client's credentials.
struct TokenEndpoint {
    /// Sends the token requests (the API's client, with its timeouts, TLS and HTTP version).
    http: reqwest::Client,
    /// The token endpoint's URL, as set.
    url: String,
    /// `POST <url>` without its query string or user info, for error texts.
    label: String,
    /// The client id.
    client_id: String,
    /// The client secret.
    client_secret: SecretString,
    /// Scopes asked for, space-separated; empty: none.
    scope: String,
}

/// The token endpoint's answer, as far as it is read.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    /// The token.
    access_token: String,
    /// Its type: `Bearer` (any case), or absent.
    token_type: Option<String>,
    /// Its lifetime in seconds, in whatever form the endpoint sends it.
    expires_in: Option<serde_json::Value>,
}

impl TokenEndpoint {
    fn new(settings: &ApiSettings, http: reqwest::Client) -> Self {
        let label = match Url::parse(&settings.oauth2_token_url) {
            Ok(url) => endpoint_label(&reqwest::Method::POST, &url),
            Err(_) => "POST the token endpoint (oauth2_token_url is not a URL)".to_owned(),
        };
        Self {
            http,
            url: settings.oauth2_token_url.as_str().to_owned(),
            label,
            client_id: settings.oauth2_client_id.clone(),
            client_secret: settings.oauth2_client_secret.clone().unwrap_or_else(|| SecretString::from(String::new())),
            scope: settings.oauth2_scope.clone(),
        }
    }

    /// Asks for a token (client authentication: HTTP basic, as RFC 6749 §2.3.1 requires every server to
    /// accept) and reads the answer.
    async fn request(&self) -> Result<Grant, AuthError> {
        let mut form = vec![("grant_type", "client_credentials")];
        if !self.scope.is_empty() {
            form.push(("scope", self.scope.as_str()));
        }
        let failed = |what: String| AuthError(format!("{} {what}", self.label));
        let mut response = self
            .http
            .post(&self.url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .form(&form)
            .send()
            .await
            .map_err(|e| failed(format!("did not answer: {}", redacted_error(e))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!("answered {status}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| failed(format!("broke off: {}", redacted_error(e))))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(failed(format!("answered more than {MAX_ANSWER_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("answered something that is not a token: {e}")))?;
        grant(answer).map_err(failed)
    }
}

/// The token an answer grants, or why it cannot be used.
fn grant(answer: TokenAnswer) -> Result<Grant, String> {
    if let Some(kind) = answer.token_type.as_deref().filter(|t| !t.eq_ignore_ascii_case("bearer")) {
        let kind: String = kind.chars().take(40).collect();
        return Err(format!("answered a token of type {kind:?}: only Bearer tokens can be used"));
    }
    if answer.access_token.is_empty() || HeaderValue::try_from(format!("Bearer {}", answer.access_token)).is_err() {
        return Err("answered an access_token that cannot be sent in an Authorization header".into());
    }
    Ok(Grant { token: SecretString::from(answer.access_token), lifetime: lifetime(answer.expires_in.as_ref()) })
}

/// The lifetime `expires_in` gives a token: its seconds (an integer, a fraction, or a string of either)
/// within [`MIN_LIFETIME`]..=[`MAX_LIFETIME`]; [`DEFAULT_LIFETIME`] when it is missing or not a positive number.
fn lifetime(expires_in: Option<&serde_json::Value>) -> Duration {
    let seconds = match expires_in {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match seconds {
        Some(s) if s.is_finite() && s > 0.0 => Duration::try_from_secs_f64(s.min(MAX_LIFETIME.as_secs_f64()))
            .unwrap_or(MAX_LIFETIME)
            .clamp(MIN_LIFETIME, MAX_LIFETIME),
        _ => DEFAULT_LIFETIME,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use serde_json::json;

    use super::*;

    /// How the fake token endpoint answers.
    #[derive(Clone, Copy)]
    enum Answer {
        /// Never.
        Hang,
        /// With a failure.
        Fail,
        /// With a token `t-<request number>` living this long.
        Grant(Duration),
    }

    /// A token endpoint without a network: counts its requests and answers as told.
    struct FakeEndpoint {
        /// Requests made so far.
        requests: AtomicU32,
        /// How the next request is answered.
        answer: Mutex<Answer>,
    }

    impl FakeEndpoint {
        fn new(answer: Answer) -> Arc<Self> {
            Arc::new(Self { requests: AtomicU32::new(0), answer: Mutex::new(answer) })
        }

        fn answer(&self, answer: Answer) {
            *self.answer.lock().expect("answer") = answer;
        }

        fn requests(&self) -> u32 {
            self.requests.load(Ordering::SeqCst)
        }

        /// An OAuth 2.0 client asking this endpoint, callers waiting at most `wait`.
        fn client(self: &Arc<Self>, wait: Duration) -> OAuth2 {
            let endpoint = self.clone();
            let fetcher = move || {
                let n = endpoint.requests.fetch_add(1, Ordering::SeqCst) + 1;
                let answer = *endpoint.answer.lock().expect("answer");
                async move {
                    match answer {
                        Answer::Hang => std::future::pending().await,
                        Answer::Fail => Err(AuthError("POST http://auth/token answered 500".into())),
                        Answer::Grant(lifetime) => Ok(Grant { token: SecretString::from(format!("t-{n}")), lifetime }),
                    }
                }
                .boxed()
            };
            OAuth2::with_fetcher("test", wait, Arc::new(fetcher))
        }
    }

    /// `n` callers asking for a token at once: each one's answer (the token's text or the error).
    async fn burst(oauth: &OAuth2, n: usize) -> Vec<Result<String, AuthError>> {
        let calls = (0..n).map(|_| async { oauth.token().await.map(|(t, _)| t.expose_secret().to_owned()) });
        futures::future::join_all(calls).await
    }

    const WAIT: Duration = Duration::from_secs(2);

    #[tokio::test(start_paused = true)]
    async fn callers_of_a_hanging_endpoint_all_fail_within_the_wait_and_one_request_is_made() {
        let endpoint = FakeEndpoint::new(Answer::Hang);
        let oauth = endpoint.client(WAIT);
        let started = Instant::now();
        let answers = burst(&oauth, 20).await;
        assert!(answers.iter().all(Result::is_err), "{answers:?}");
        assert_eq!(started.elapsed(), WAIT, "every caller answered when the wait ended, not one wait after another");
        assert_eq!(endpoint.requests(), 1, "one fetch at a time");
        // The fetch ended with the wait: its failure is remembered, and callers fail at once.
        let started = Instant::now();
        let answers = burst(&oauth, 20).await;
        assert!(answers.iter().all(Result::is_err), "{answers:?}");
        assert_eq!((started.elapsed(), endpoint.requests()), (Duration::ZERO, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fetch_is_remembered_for_a_backoff_that_doubles_to_its_cap_and_resets_on_success() {
        let endpoint = FakeEndpoint::new(Answer::Fail);
        let oauth = endpoint.client(WAIT);
        let answers = burst(&oauth, 50).await;
        assert!(answers.iter().all(|a| a.as_ref().is_err_and(|e| e.0.contains("answered 500"))), "{answers:?}");
        assert_eq!(endpoint.requests(), 1, "a burst of callers makes one request");
        let mut requests = 1;
        for backoff in [1, 2, 4, 8, 16, 30, 30].map(Duration::from_secs) {
            tokio::time::advance(backoff - Duration::from_millis(1)).await;
            assert!(burst(&oauth, 10).await.iter().all(Result::is_err));
            assert_eq!(endpoint.requests(), requests, "no request within the backoff of {backoff:?}");
            tokio::time::advance(Duration::from_millis(1)).await;
            assert!(burst(&oauth, 10).await.iter().all(Result::is_err));
            requests += 1;
            assert_eq!(endpoint.requests(), requests, "one request once the backoff of {backoff:?} ended");
        }
        // The endpoint recovers: the next request after the backoff gets a token; a failure after that is
        // remembered for the first backoff again.
        endpoint.answer(Answer::Grant(Duration::from_secs(3600)));
        tokio::time::advance(MAX_BACKOFF).await;
        let (_, id) = oauth.token().await.expect("a token once the endpoint recovered");
        endpoint.answer(Answer::Fail);
        oauth.refused(id);
        assert!(oauth.token().await.is_err());
        let requests = endpoint.requests();
        tokio::time::advance(FIRST_BACKOFF).await;
        assert!(oauth.token().await.is_err());
        assert_eq!(endpoint.requests(), requests + 1, "a success resets the backoff");
    }

    #[tokio::test(start_paused = true)]
    async fn a_401_forgets_only_the_token_the_refused_call_carried() {
        let endpoint = FakeEndpoint::new(Answer::Grant(Duration::from_secs(3600)));
        let oauth = endpoint.client(WAIT);
        let (first, first_id) = oauth.token().await.expect("token");
        oauth.refused(first_id);
        let (second, second_id) = oauth.token().await.expect("token");
        assert_eq!((first.expose_secret(), second.expose_secret()), ("t-1", "t-2"));
        // A call that carried the first token gets its 401 late: the second token stays.
        oauth.refused(first_id);
        let (again, again_id) = oauth.token().await.expect("token");
        assert_eq!((again.expose_secret(), again_id, endpoint.requests()), ("t-2", second_id, 2));
        oauth.refused(second_id);
        assert_eq!(oauth.token().await.expect("token").0.expose_secret(), "t-3");
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_refreshed_ahead_of_its_expiry_and_used_while_the_refresh_runs() {
        let endpoint = FakeEndpoint::new(Answer::Grant(Duration::from_secs(60)));
        let oauth = endpoint.client(WAIT);
        assert_eq!(oauth.token().await.expect("token").0.expose_secret(), "t-1");
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!((oauth.token().await.expect("cached").0.expose_secret(), endpoint.requests()), ("t-1", 1));
        // Half its lifetime has passed: a refresh starts, and callers go on with the current token meanwhile.
        endpoint.answer(Answer::Hang);
        tokio::time::advance(Duration::from_secs(2)).await;
        let started = Instant::now();
        assert_eq!(oauth.token().await.expect("still valid").0.expose_secret(), "t-1");
        assert_eq!(started.elapsed(), Duration::ZERO, "no caller waits for a refresh");
        // The refresh runs in its own task: let it start.
        tokio::task::yield_now().await;
        assert_eq!(endpoint.requests(), 2, "the refresh was asked for");
        // The refresh failed and the token expired: no token.
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(oauth.token().await.is_err());
    }

    #[test]
    fn any_expires_in_gives_a_bounded_lifetime() {
        let day = MAX_LIFETIME;
        for (expires_in, expected) in [
            (json!(u64::MAX), day),
            (json!(1e300), day),
            (json!(86_401), day),
            (json!(3600), Duration::from_secs(3600)),
            (json!(3600.5), Duration::from_millis(3_600_500)),
            (json!("3600"), Duration::from_secs(3600)),
            (json!(" 90 "), Duration::from_secs(90)),
            (json!(0.25), MIN_LIFETIME),
            (json!(0), DEFAULT_LIFETIME),
            (json!(-5), DEFAULT_LIFETIME),
            (json!(i64::MIN), DEFAULT_LIFETIME),
            (json!("soon"), DEFAULT_LIFETIME),
            (json!("NaN"), DEFAULT_LIFETIME),
            (json!("inf"), DEFAULT_LIFETIME),
            (json!(null), DEFAULT_LIFETIME),
            (json!(true), DEFAULT_LIFETIME),
            (json!({"seconds": 3600}), DEFAULT_LIFETIME),
        ] {
            assert_eq!(lifetime(Some(&expires_in)), expected, "expires_in {expires_in}");
        }
        assert_eq!(lifetime(None), DEFAULT_LIFETIME);
    }

    #[test]
    fn only_a_bearer_token_that_fits_a_header_is_granted() {
        let answer = |token: &str, kind: Option<&str>| TokenAnswer {
            access_token: token.into(),
            token_type: kind.map(str::to_owned),
            expires_in: None,
        };
        for kind in [None, Some("Bearer"), Some("bearer"), Some("BEARER")] {
            assert!(grant(answer("abc.def-ghi", kind)).is_ok(), "{kind:?}");
        }
        for (token, kind) in
            [("s3cret", Some("mac")), ("s3cret", Some("DPoP")), ("s3\ncret", None), ("s3cret\r", None), ("", None)]
        {
            let why = grant(answer(token, kind)).err().unwrap_or_else(|| panic!("{token:?} {kind:?} granted"));
            assert!(!why.contains("s3") && !why.is_empty(), "{why}");
        }
    }
}
