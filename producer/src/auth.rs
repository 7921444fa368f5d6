//! Who may post orders: API keys (`producer.api_keys`), presented as `Authorization: Bearer <key>` or
//! `X-Api-Key: <key>`.
//!
//! Several keys may be valid at once, so a key is rotated by adding the new one, moving clients over, then
//! removing the old one. A presented key is compared with every configured key in constant time (SHA-256
//! digests compared with `subtle`), so the time of an answer says nothing about how close a guess was. Each
//! key is known in logs and in idempotency scoping by an id derived from its digest (`key-1a2b3c4d5e6f`),
//! never by the key. With no key configured, the API is open.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Header carrying an API key, as an alternative to `Authorization: Bearer`.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The configured API keys, as digests.
#[derive(Clone, Default)]
pub struct ApiKeys {
    /// SHA-256 of each key.
    digests: Arc<Vec<[u8; 32]>>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys").field("keys", &self.digests.len()).finish()
    }
}

/// Who made a request: the id of its API key, or `None` when the API is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub Option<String>);

impl Caller {
    /// The scope of the caller's idempotency keys: two callers using the same `Idempotency-Key` get two
    /// orders, never each other's answer.
    pub fn scope(&self, idempotency_key: &str) -> String {
        match &self.0 {
            Some(id) => format!("{id}:{idempotency_key}"),
            None => idempotency_key.to_owned(),
        }
    }
}

impl ApiKeys {
    /// The keys `keys` (empty: no authentication).
    pub fn new(keys: &[SecretString]) -> Self {
        Self { digests: Arc::new(keys.iter().map(|key| digest(key.expose_secret())).collect()) }
    }

    /// Whether requests must present a key.
    pub fn required(&self) -> bool {
        !self.digests.is_empty()
    }

    /// The id of `presented` when it is one of the keys. Every key is compared, whatever matched.
    fn identify(&self, presented: &str) -> Option<String> {
        let presented = digest(presented);
        let mut found = None;
        for key in self.digests.iter() {
            if bool::from(key.ct_eq(&presented)) {
                found = Some(key_id(key));
            }
        }
        found
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// `key-` and the first 6 bytes of the key's digest, in hex: names the key without revealing it.
fn key_id(digest: &[u8; 32]) -> String {
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("key-{hex}")
}

/// The key a request presents, if any.
fn presented(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    bearer.or_else(|| headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok())).map(str::trim)
}

/// Middleware of the order routes: 401 without a key, 403 with a wrong one; the [`Caller`] for the handler.
pub async fn require_api_key(State(keys): State<ApiKeys>, mut request: Request, next: Next) -> Response {
    let caller = if keys.required() {
        let Some(key) = presented(request.headers()) else {
            return ApiError::Unauthenticated.into_response();
        };
        let Some(id) = keys.identify(key) else {
            tracing::warn!("request refused: its API key is not one of producer.api_keys");
            return ApiError::Forbidden.into_response();
        };
        Caller(Some(id))
    } else {
        Caller(None)
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> ApiKeys {
        ApiKeys::new(&list.iter().map(|k| SecretString::from((*k).to_owned())).collect::<Vec<_>>())
    }

    #[test]
    fn every_configured_key_is_accepted_and_named_without_revealing_it() {
        let keys = keys(&["old-key", "new-key"]);
        let (old, new) = (keys.identify("old-key").expect("old"), keys.identify("new-key").expect("new"));
        assert_ne!(old, new);
        assert!(old.starts_with("key-") && old.len() == 16 && !old.contains("old"), "{old}");
        assert_eq!(keys.identify("old-ke"), None);
        assert_eq!(keys.identify(""), None);
        assert!(!format!("{keys:?}").contains("old-key"));
    }

    #[test]
    fn idempotency_keys_are_scoped_per_caller() {
        assert_eq!(Caller(None).scope("k1"), "k1");
        assert_ne!(Caller(Some("key-a".into())).scope("k1"), Caller(Some("key-b".into())).scope("k1"));
    }

    #[test]
    fn a_key_is_read_from_bearer_or_x_api_key() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented(&headers), None);
        headers.insert(API_KEY_HEADER, "k2".parse().expect("header"));
        assert_eq!(presented(&headers), Some("k2"));
        headers.insert(header::AUTHORIZATION, "Bearer k1".parse().expect("header"));
        assert_eq!(presented(&headers), Some("k1"));
    }
}
