//! How calls to a downstream API authenticate (`apis.<name>.auth`): none, a bearer token, a header of the
//! API's choosing (`X-Api-Key: …`), HTTP basic, or OAuth 2.0 client credentials (a token fetched from the
//! token endpoint, cached, refreshed before it expires, fetched again once when the API answers 401).
//!
//! Every credential is a secret: never printed, never logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::RequestBuilder;
use reqwest::header::HeaderName;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::settings::ApiSettings;

/// A token is refreshed this long before it expires (or at half its lifetime, if that is sooner).
const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// How an API's calls authenticate.
#[derive(Clone)]
pub enum Auth {
    /// No credentials.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// A header of the API's choosing with a secret value.
    Header {
        /// The header's name.
        name: HeaderName,
        /// Its value.
        value: SecretString,
    },
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretString,
    },
    /// OAuth 2.0 client credentials.
    OAuth2(Arc<OAuth2>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "none",
            Auth::Bearer(_) => "bearer",
            Auth::Header { .. } => "header",
            Auth::Basic { .. } => "basic",
            Auth::OAuth2(_) => "oauth2",
        })
    }
}

/// The authentication modes, as `apis.<name>.auth` spells them (empty: `bearer` when a token is set, else
/// `none`).
pub const MODES: [&str; 5] = ["none", "bearer", "header", "basic", "oauth2"];

/// Why a call could not be authenticated.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no OAuth 2.0 token for the API: {0}")]
pub struct AuthError(pub String);

impl Auth {
    /// The authentication `settings` ask for, fetching OAuth 2.0 tokens with `http`. Settings were
    /// validated ([`check`]); a missing credential yields no authentication rather than a panic.
    pub fn from_settings(settings: &ApiSettings, http: reqwest::Client) -> Self {
        let secret = |s: &Option<SecretString>| s.clone().unwrap_or_else(|| SecretString::from(String::new()));
        match effective_mode(settings) {
            "bearer" => Auth::Bearer(secret(&settings.token)),
            "header" => match HeaderName::from_bytes(settings.auth_header.as_bytes()) {
                Ok(name) => Auth::Header { name, value: secret(&settings.auth_header_value) },
                Err(_) => Auth::None,
            },
            "basic" => Auth::Basic { username: settings.username.clone(), password: secret(&settings.password) },
            "oauth2" => Auth::OAuth2(Arc::new(OAuth2 {
                http,
                token_url: settings.oauth2_token_url.clone(),
                client_id: settings.oauth2_client_id.clone(),
                client_secret: secret(&settings.oauth2_client_secret),
                scope: settings.oauth2_scope.clone(),
                token: Mutex::new(None),
            })),
            _ => Auth::None,
        }
    }

    /// `request` with the credentials (for OAuth 2.0, a valid token, fetched first if needed).
    pub async fn apply(&self, request: RequestBuilder) -> Result<RequestBuilder, AuthError> {
        Ok(match self {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token.expose_secret()),
            Auth::Header { name, value } => request.header(name.clone(), value.expose_secret()),
            Auth::Basic { username, password } => request.basic_auth(username, Some(password.expose_secret())),
            Auth::OAuth2(oauth) => request.bearer_auth(oauth.token().await?.expose_secret()),
        })
    }

    /// After a 401: forgets the OAuth 2.0 token so that the next call fetches a new one; true when the call
    /// is worth making again at once (OAuth 2.0 only: other credentials would be refused again).
    pub async fn refused(&self) -> bool {
        match self {
            Auth::OAuth2(oauth) => {
                *oauth.token.lock().await = None;
                true
            }
            _ => false,
        }
    }
}

/// The mode `settings` ask for: `auth`, or `bearer` when empty with a token set, else `none`.
pub fn effective_mode(settings: &ApiSettings) -> &str {
    match settings.auth.as_str() {
        "" if settings.token.is_some() => "bearer",
        "" => "none",
        mode => mode,
    }
}

/// The first authentication setting of API `name` that cannot work: its name and why.
pub fn check(name: &str, settings: &ApiSettings) -> Result<(), (String, String)> {
    let setting = |key: &str| format!("apis.{name}.{key}");
    let missing = |s: &Option<SecretString>| s.as_ref().is_none_or(|s| s.expose_secret().is_empty());
    let mode = effective_mode(settings);
    let fail = |key: &str, why: String| Err((setting(key), why));
    match mode {
        "none" => Ok(()),
        "bearer" if missing(&settings.token) => fail("token", "must be set with auth = \"bearer\"".into()),
        "header" if HeaderName::from_bytes(settings.auth_header.as_bytes()).is_err() => {
            fail("auth_header", "must be a header name (e.g. X-Api-Key) with auth = \"header\"".into())
        }
        "header" if missing(&settings.auth_header_value) => {
            fail("auth_header_value", "must be set with auth = \"header\"".into())
        }
        "basic" if settings.username.is_empty() => fail("username", "must be set with auth = \"basic\"".into()),
        "basic" if missing(&settings.password) => fail("password", "must be set with auth = \"basic\"".into()),
        "oauth2" if reqwest::Url::parse(&settings.oauth2_token_url).is_err() => {
            fail("oauth2_token_url", "must be the token endpoint's URL with auth = \"oauth2\"".into())
        }
        "oauth2" if settings.oauth2_client_id.is_empty() => {
            fail("oauth2_client_id", "must be set with auth = \"oauth2\"".into())
        }
        "oauth2" if missing(&settings.oauth2_client_secret) => {
            fail("oauth2_client_secret", "must be set with auth = \"oauth2\"".into())
        }
        "bearer" | "header" | "basic" | "oauth2" => Ok(()),
        _ => fail("auth", format!("must be one of {}", MODES.join(", "))),
    }
}

/// An OAuth 2.0 client-credentials client with its cached token.
pub struct OAuth2 {
    /// Sends the token requests.
    http: reqwest::Client,
    /// The token endpoint.
    token_url: String,
    /// The client id.
    client_id: String,
    /// The client secret.
    client_secret: SecretString,
    /// Scopes asked for, space-separated; empty: none.
    scope: String,
    /// The current token and when to refresh it; one fetch at a time.
    token: Mutex<Option<(SecretString, Instant)>>,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenResponse {
    /// The token.
    access_token: String,
    /// Its lifetime in seconds, when the endpoint says.
    expires_in: Option<u64>,
}

impl OAuth2 {
    /// A valid token: the cached one until shortly before it expires, else a new one.
    async fn token(&self) -> Result<SecretString, AuthError> {
        let mut cached = self.token.lock().await;
        if let Some((token, refresh_at)) = cached.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        let refresh_in = lifetime.saturating_sub(REFRESH_MARGIN.min(lifetime / 2));
        *cached = Some((token.clone(), Instant::now() + refresh_in));
        Ok(token)
    }

    /// Asks the token endpoint for a token (client authentication: HTTP basic, as RFC 6749 §2.3.1 requires
    /// every server to accept).
    async fn fetch(&self) -> Result<(SecretString, Duration), AuthError> {
        let mut form = vec![("grant_type", "client_credentials")];
        if !self.scope.is_empty() {
            form.push(("scope", self.scope.as_str()));
        }
        let response = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .form(&form)
            .send()
            .await
            .map_err(|e| AuthError(format!("the token endpoint did not answer: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(AuthError(format!("the token endpoint answered {status}")));
        }
        let answer: TokenResponse =
            response.json().await.map_err(|e| AuthError(format!("the token endpoint's answer is not a token: {e}")))?;
        tracing::debug!(expires_in = answer.expires_in, "OAuth 2.0 token fetched");
        // Without a lifetime, refresh every 5 minutes.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(300));
        Ok((SecretString::from(answer.access_token), lifetime))
    }
}
