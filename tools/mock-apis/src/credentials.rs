//! What each API requires of its callers ([`Required`]: nothing, a header with an exact value, or an OAuth 2.0
//! token), and the OAuth 2.0 token endpoint that issues such tokens (`POST /oauth2/token`, client credentials
//! with HTTP basic client authentication). A call without the credential its API requires is answered 401.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;

use crate::api::Api;
use crate::store::lock;

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
    /// `Authorization: Bearer <token>` with a token issued by `POST /oauth2/token`, neither expired nor revoked.
    OAuth2Token,
}

impl Required {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(token: &str) -> Self {
        Required::Header { name: "authorization".into(), value: format!("Bearer {token}") }
    }

    /// `Authorization: Basic …` for `username` and `password`.
    pub fn basic(username: &str, password: &str) -> Self {
        Required::Header { name: "authorization".into(), value: basic(username, password) }
    }
}

/// The `Authorization` value of HTTP basic authentication.
fn basic(username: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{username}:{password}")))
}

/// An OAuth 2.0 client the token endpoint knows.
#[derive(Debug, Clone)]
struct Client {
    /// `Authorization: Basic …` of its id and secret.
    authorization: String,
    /// Lifetime of the tokens issued to it.
    ttl: Duration,
}

/// What the APIs require and the token endpoint's state.
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    /// Per API (by [`Api::index`]), what a call needs.
    required: Mutex<HashMap<usize, Required>>,
    /// The client the token endpoint accepts, when set.
    client: Mutex<Option<Client>>,
    /// Tokens issued and when each expires.
    tokens: Mutex<HashMap<String, Instant>>,
    /// Tokens issued since start.
    issued: Mutex<u64>,
}

impl Credentials {
    /// Makes calls to `api` require `required`.
    pub(crate) fn require(&self, api: Api, required: Required) {
        lock(&self.required).insert(api.index(), required);
    }

    /// Whether a call to `api` with `headers` carries what the API requires.
    pub(crate) fn allows(&self, api: Api, headers: &HeaderMap) -> bool {
        let required = lock(&self.required).get(&api.index()).cloned().unwrap_or_default();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        match required {
            Required::Nothing => true,
            Required::Header { name, value } => header(&name.to_ascii_lowercase()).is_some_and(|v| v == value),
            Required::OAuth2Token => {
                let Some(token) = header("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
                else {
                    return false;
                };
                lock(&self.tokens).get(&token).is_some_and(|expires| Instant::now() < *expires)
            }
        }
    }

    /// Makes the token endpoint accept `client_id` / `client_secret` and issue tokens living `ttl`.
    pub(crate) fn set_client(&self, client_id: &str, client_secret: &str, ttl: Duration) {
        *lock(&self.client) = Some(Client { authorization: basic(client_id, client_secret), ttl });
    }

    /// Revokes every token issued so far.
    pub(crate) fn revoke_tokens(&self) {
        lock(&self.tokens).clear();
    }

    /// Tokens issued since start.
    pub(crate) fn issued(&self) -> u64 {
        *lock(&self.issued)
    }

    /// A new token and its lifetime for a request with `headers` and form `grant_type`, when the client
    /// authenticates and asks for client credentials.
    pub(crate) fn issue(&self, headers: &HeaderMap, grant_type: Option<&str>) -> Option<(String, Duration)> {
        let client = lock(&self.client).clone()?;
        let presented = headers.get("authorization").and_then(|v| v.to_str().ok());
        if presented != Some(client.authorization.as_str()) || grant_type != Some("client_credentials") {
            return None;
        }
        let mut issued = lock(&self.issued);
        *issued += 1;
        let token = format!("token-{}-{}", *issued, uuid::Uuid::new_v4().simple());
        lock(&self.tokens).insert(token.clone(), Instant::now() + client.ttl);
        Some((token, client.ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), v.parse().expect("value"))).collect()
    }

    #[test]
    fn a_required_header_must_match_exactly() {
        let credentials = Credentials::default();
        assert!(credentials.allows(Api::Sms, &HeaderMap::new()), "nothing required by default");
        credentials.require(Api::Sms, Required::Header { name: "X-Api-Key".into(), value: "k1".into() });
        assert!(credentials.allows(Api::Sms, &headers(&[("x-api-key", "k1")])));
        assert!(!credentials.allows(Api::Sms, &headers(&[("x-api-key", "k2")])));
        assert!(!credentials.allows(Api::Sms, &HeaderMap::new()));
        credentials.require(Api::Email, Required::basic("user", "pass"));
        assert!(credentials.allows(Api::Email, &headers(&[("authorization", "Basic dXNlcjpwYXNz")])));
    }

    #[test]
    fn tokens_are_issued_to_the_client_and_revoked() {
        let credentials = Credentials::default();
        credentials.require(Api::Payment, Required::OAuth2Token);
        assert_eq!(credentials.issue(&HeaderMap::new(), Some("client_credentials")), None, "no client yet");
        credentials.set_client("id", "secret", Duration::from_secs(60));
        let client = headers(&[("authorization", &basic("id", "secret"))]);
        assert_eq!(
            credentials.issue(&headers(&[("authorization", &basic("id", "nope"))]), Some("client_credentials")),
            None
        );
        assert_eq!(credentials.issue(&client, Some("password")), None);
        let (token, ttl) = credentials.issue(&client, Some("client_credentials")).expect("issued");
        assert_eq!((ttl, credentials.issued()), (Duration::from_secs(60), 1));
        let bearer = format!("Bearer {token}");
        assert!(credentials.allows(Api::Payment, &headers(&[("authorization", &bearer)])));
        credentials.revoke_tokens();
        assert!(!credentials.allows(Api::Payment, &headers(&[("authorization", &bearer)])));
    }
}
