//! What each API requires of its callers ([`Required`]; a call without it is answered 401), and the OAuth 2.0
//! token endpoint issuing such tokens (`POST /oauth2/token`, client credentials, HTTP basic client auth).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;

use crate::api::Api;

/// What an API requires of a call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Required {
    /// Nothing (the default).
    #[default]
    Nothing,
    /// This header with exactly this value.
    Header {
        /// The header's name (any case).
        name: String,
        /// Its value.
        value: String,
    },
    /// `Authorization: Bearer <token>` with a token from `POST /oauth2/token`, neither expired nor revoked.
    OAuth2Token,
}

impl Required {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(token: &str) -> Self {
        Required::Header { name: "authorization".into(), value: format!("Bearer {token}") }
    }

    /// `Authorization: Basic …` of `username` and `password`.
    pub fn basic(username: &str, password: &str) -> Self {
        Required::Header { name: "authorization".into(), value: basic(username, password) }
    }
}

/// The `Authorization` value of HTTP basic authentication.
fn basic(username: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{username}:{password}")))
}

/// What the APIs require, and the token endpoint's state.
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    /// What a call needs, per API.
    pub required: HashMap<Api, Required>,
    /// The `Authorization` the token endpoint accepts from its client, and the lifetime of its tokens.
    pub client: Option<(String, Duration)>,
    /// Tokens issued, and when each expires.
    pub tokens: HashMap<String, Instant>,
    /// Tokens issued since start.
    pub issued: u64,
}

impl Credentials {
    /// Makes the token endpoint accept `client_id` / `client_secret` and issue tokens living `ttl`.
    pub fn set_client(&mut self, client_id: &str, client_secret: &str, ttl: Duration) {
        self.client = Some((basic(client_id, client_secret), ttl));
    }

    /// Whether a call to `api` with `headers` carries what the API requires.
    pub fn allows(&self, api: Api, headers: &HeaderMap) -> bool {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        match self.required.get(&api).unwrap_or(&Required::Nothing) {
            Required::Nothing => true,
            Required::Header { name, value } => header(&name.to_ascii_lowercase()) == Some(value.as_str()),
            Required::OAuth2Token => header("authorization")
                .and_then(|value| value.strip_prefix("Bearer "))
                .and_then(|token| self.tokens.get(token))
                .is_some_and(|expires| Instant::now() < *expires),
        }
    }

    /// A new token and its lifetime, when the request's `headers` authenticate the client and its form asks
    /// for `grant_type` `client_credentials`.
    pub fn issue(&mut self, headers: &HeaderMap, grant_type: Option<&str>) -> Option<(String, Duration)> {
        let presented = headers.get("authorization").and_then(|value| value.to_str().ok());
        let (authorization, ttl) = self.client.clone()?;
        if presented != Some(authorization.as_str()) || grant_type != Some("client_credentials") {
            return None;
        }
        self.issued += 1;
        let token = format!("token-{}-{}", self.issued, uuid::Uuid::new_v4().simple());
        self.tokens.insert(token.clone(), Instant::now() + ttl);
        Some((token, ttl))
    }
}
