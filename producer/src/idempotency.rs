//! `Idempotency-Key`: a client that retries a request with the same key gets the same order id and event id,
//! and the order is published once.
//!
//! The ids are derived from the key (UUID v5), so they are the same on any replica and after a restart; the
//! answer is also remembered for `producer.idempotency_ttl_secs` (at most `producer.idempotency_capacity`
//! keys), so a retry within that time is answered without publishing again. Concurrent requests with the same
//! key wait for the first one. A key reused with a different body is refused.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use courier::publisher::PublishError;
use courier::telemetry::metrics;
use moka::future::Cache;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;

/// Request header that makes a retried request answer the same.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Response header set when the answer is a remembered one.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Namespace of the UUIDs derived from idempotency keys.
const NAMESPACE: Uuid = Uuid::from_u128(0x6f0a_2b8e_3d1c_4b5a_9e7f_1c2d_3e4f_5a6b);
/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// The answer given to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered<T> {
    /// Fingerprint of the request body the key was first used with.
    pub fingerprint: u64,
    /// The answer.
    pub answer: T,
}

/// Remembered answers by key.
#[derive(Clone)]
pub struct IdempotencyStore<T: Clone + Send + Sync + 'static> {
    /// Key → first answer; errors are not remembered.
    cache: Cache<String, Remembered<T>>,
}

impl<T: Clone + Send + Sync + 'static> IdempotencyStore<T> {
    /// A store remembering up to `capacity` keys for `ttl` each.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self { cache: Cache::builder().max_capacity(capacity).time_to_live(ttl).build() }
    }

    /// A store sized by `producer.idempotency_capacity` and `producer.idempotency_ttl_secs`.
    pub fn from_settings(producer: &courier::settings::ProducerSettings) -> Self {
        Self::new(producer.idempotency_capacity, producer.idempotency_ttl_secs)
    }

    /// Returns the remembered answer for `key`, or runs `make` (once, even for concurrent callers) and
    /// remembers its answer when it succeeds.
    pub async fn get_or_try_insert<E, F>(&self, key: &str, make: F) -> Result<Remembered<T>, Arc<E>>
    where
        E: Send + Sync + 'static,
        F: Future<Output = Result<Remembered<T>, E>>,
    {
        self.cache.try_get_with(key.to_owned(), make).await
    }
}

/// A stable fingerprint of a JSON body (object keys are sorted by serde_json, so key order does not matter).
pub fn fingerprint(body: &serde_json::Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    body.to_string().hash(&mut hasher);
    hasher.finish()
}

/// The request's `Idempotency-Key`, checked and scoped to the caller (two clients using the same key get two
/// answers, never each other's); `None` without one.
pub fn request_key(headers: &HeaderMap, caller: &Caller) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| ApiError::IdempotencyKey("Idempotency-Key must be ASCII".into()))?;
    validate_key(key).map_err(ApiError::IdempotencyKey)?;
    Ok(Some(caller.scope(key)))
}

/// Runs `publish` once per key: with a key (and the request's body `fingerprint`), a retry gets the first
/// answer without publishing again, and a key reused with another body is refused; without, it just runs.
/// Returns the answer and whether it is a remembered one. A publish that fails is not remembered: 503.
pub async fn once<T, F>(
    store: &IdempotencyStore<T>,
    key: Option<&str>,
    fingerprint: u64,
    publish: F,
    retry_after_secs: u64,
) -> Result<(T, bool), ApiError>
where
    T: Clone + Send + Sync + 'static,
    F: Future<Output = Result<T, PublishError>>,
{
    let unavailable = ApiError::BrokerUnavailable { retry_after_secs };
    let Some(key) = key else {
        return publish.await.map(|answer| (answer, false)).map_err(|_| unavailable);
    };
    let mut fresh = false;
    let remembered = store
        .get_or_try_insert(key, async {
            fresh = true;
            publish.await.map(|answer| Remembered { fingerprint, answer })
        })
        .await
        .map_err(|_| unavailable)?;
    if remembered.fingerprint != fingerprint {
        return Err(ApiError::IdempotencyKey(
            "this Idempotency-Key was used before with a different request body".into(),
        ));
    }
    if !fresh {
        tracing::info!("repeated Idempotency-Key: answering with the first response");
        metrics::idempotent_replay();
    }
    Ok((remembered.answer, !fresh))
}

/// The 202 answer: `answer` as JSON, marked `Idempotent-Replayed: true` when it is a remembered one.
pub fn accepted<T: Serialize>(answer: T, replayed: bool) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(answer)).into_response();
    if replayed {
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// Checks that a key is usable: 1 to 255 visible ASCII characters.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"));
    }
    Ok(())
}

/// The order id and event id for a request: derived from the key when there is one, fresh otherwise.
pub fn ids_for(key: Option<&str>) -> (Uuid, Uuid) {
    match key {
        Some(key) => (
            Uuid::new_v5(&NAMESPACE, format!("order:{key}").as_bytes()),
            Uuid::new_v5(&NAMESPACE, format!("event:{key}").as_bytes()),
        ),
        None => (Uuid::now_v7(), Uuid::now_v7()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn ids_are_stable_per_key() {
        assert_eq!(ids_for(Some("k1")), ids_for(Some("k1")));
        assert_ne!(ids_for(Some("k1")), ids_for(Some("k2")));
        let (order, event) = ids_for(Some("k1"));
        assert_ne!(order, event);
        assert_ne!(ids_for(None), ids_for(None));
    }

    #[test]
    fn fingerprint_ignores_key_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":[1,2]}"#).expect("json");
        let b: serde_json::Value = serde_json::from_str(r#"{"b":[1,2],"a":1}"#).expect("json");
        let c: serde_json::Value = serde_json::from_str(r#"{"b":[2,1],"a":1}"#).expect("json");
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn keys_are_validated() {
        assert!(validate_key("order-42_retry").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("has space").is_err());
        assert!(validate_key(&"x".repeat(256)).is_err());
    }

    #[tokio::test]
    async fn concurrent_callers_run_once_and_errors_are_not_remembered() {
        let store: IdempotencyStore<u32> = IdempotencyStore::new(10, Duration::from_secs(60));
        let runs = AtomicU32::new(0);
        let make = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok::<_, String>(Remembered { fingerprint: 1, answer: 7 })
        };
        let (a, b) = tokio::join!(store.get_or_try_insert("k", make()), store.get_or_try_insert("k", make()));
        assert_eq!(a.expect("ok").answer, 7);
        assert_eq!(b.expect("ok").answer, 7);
        assert_eq!(runs.load(Ordering::SeqCst), 1);

        let failed = store.get_or_try_insert("e", async { Err::<Remembered<u32>, _>("broker down".to_owned()) }).await;
        assert!(failed.is_err());
        let retried =
            store.get_or_try_insert("e", async { Ok::<_, String>(Remembered { fingerprint: 2, answer: 9 }) }).await;
        assert_eq!(retried.expect("ok").answer, 9);
    }
}
