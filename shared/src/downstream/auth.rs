//! How calls to a downstream API authenticate (`apis.<name>.auth`): none, a bearer token, a header of the
//! API's choosing (`X-Api-Key: …`), HTTP basic, or OAuth 2.0 client credentials (a token fetched from the
//! token endpoint, cached, refreshed before it expires, fetched again once when the API answers 401; see
//! [`super::oauth2`] for how it behaves when the token endpoint fails).
//!
//! Every credential is a secret: never printed, never logged.

use std::sync::Arc;

use reqwest::RequestBuilder;
use reqwest::header::HeaderName;
use secrecy::{ExposeSecret, SecretString};

pub use super::oauth2::{OAuth2, TokenId};
use crate::settings::ApiSettings;

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

/// Why a call could not be authenticated (the text names the token endpoint without its query string or
/// user info, and never holds a credential).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no OAuth 2.0 token for the API: {0}")]
pub struct AuthError(pub String);

impl Auth {
    /// The authentication `settings` of API `api` ask for, fetching OAuth 2.0 tokens with `http`. Settings
    /// were validated ([`check`]); a missing credential yields no authentication rather than a panic.
    pub fn from_settings(api: &str, settings: &ApiSettings, http: reqwest::Client) -> Self {
        let secret = |s: &Option<SecretString>| s.clone().unwrap_or_else(|| SecretString::from(String::new()));
        match effective_mode(settings) {
            "bearer" => Auth::Bearer(secret(&settings.token)),
            "header" => match HeaderName::from_bytes(settings.auth_header.as_bytes()) {
                Ok(name) => Auth::Header { name, value: secret(&settings.auth_header_value) },
                Err(_) => Auth::None,
            },
            "basic" => Auth::Basic { username: settings.username.clone(), password: secret(&settings.password) },
            "oauth2" => Auth::OAuth2(Arc::new(OAuth2::new(api, settings, http))),
            _ => Auth::None,
        }
    }

    /// `request` with the credentials (for OAuth 2.0, a valid token, fetched first if needed), and which
    /// OAuth 2.0 token it carries ([`TokenId::NONE`] for any other credential).
    pub async fn apply(&self, request: RequestBuilder) -> Result<(RequestBuilder, TokenId), AuthError> {
        Ok(match self {
            Auth::None => (request, TokenId::NONE),
            Auth::Bearer(token) => (request.bearer_auth(token.expose_secret()), TokenId::NONE),
            Auth::Header { name, value } => (request.header(name.clone(), value.expose_secret()), TokenId::NONE),
            Auth::Basic { username, password } => {
                (request.basic_auth(username, Some(password.expose_secret())), TokenId::NONE)
            }
            Auth::OAuth2(oauth) => {
                let (token, id) = oauth.token().await?;
                (request.bearer_auth(token.expose_secret()), id)
            }
        })
    }

    /// After a 401 to a call that carried token `used`: forgets that OAuth 2.0 token (never a newer one), so
    /// that the next call uses a newer token or fetches one; true when the call is worth making again at once
    /// (OAuth 2.0 only: other credentials would be refused again).
    pub fn refused(&self, used: TokenId) -> bool {
        match self {
            Auth::OAuth2(oauth) => {
                oauth.refused(used);
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
