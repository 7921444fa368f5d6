//! The router and the one handler every API's endpoint shares. A call goes: counted, in flight → its
//! credentials checked (else 401) → its `Idempotency-Key` and JSON object body checked (else 400) → a fault
//! picked (`fail_body_contains`, `fail_first_per_key`, then the draw) → the latency waited → an injected
//! failure answered, or the first answer to its key replayed, or the API's business rules applied → a hang
//! waited → answered, or its connection reset → journaled.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::api::{Api, Outcome, order_id_text, spec};
use crate::connection::ResetSwitch;
use crate::credentials::Credentials;
use crate::faults::Fault;
use crate::store::{ApiStats, Effect, InFlight, Store, lock, unix_ms};

/// Longest `Idempotency-Key` accepted, in bytes.
const MAX_KEY_LEN: usize = 255;

/// What every handler shares.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// What the APIs remember.
    pub store: Arc<Store>,
    /// What the APIs require of callers; the token endpoint's state.
    pub credentials: Arc<Mutex<Credentials>>,
    /// Turns `true` when the server stops, cutting latency and hangs short.
    pub stopping: watch::Receiver<bool>,
}

/// The router: `/healthz`, `/stats`, `/oauth2/token`, and per API its endpoint, `/{api}/effects` and
/// `/{api}/declines`.
pub(crate) fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/stats", get(stats))
        .route("/oauth2/token", post(token));
    for api in Api::ALL {
        let endpoint = move |State(state): State<AppState>,
                             ConnectInfo(connection): ConnectInfo<ResetSwitch>,
                             order: Result<Option<Path<String>>, PathRejection>,
                             headers: HeaderMap,
                             body: Bytes| async move {
            let order = order.map(|order| order.map(|Path(order)| order)).map_err(|e| e.body_text());
            serve(&state, api, &connection, order, &headers, &body).await
        };
        let effects =
            move |State(state): State<AppState>| async move { Json(state.store.read(api, |s| s.effects.clone())) };
        let declines =
            move |State(state): State<AppState>| async move { Json(state.store.read(api, |s| s.declines.clone())) };
        router = router
            .route(api.endpoint_path(), post(endpoint))
            .route(&format!("/{api}/effects"), get(effects))
            .route(&format!("/{api}/declines"), get(declines));
    }
    router
        .fallback(|method: Method, uri: Uri| async move {
            problem(StatusCode::NOT_FOUND, format!("no such endpoint: {method} {}", uri.path()))
        })
        .with_state(state)
}

/// Serves a `POST` to `api` on `connection`; `order` is the order id of a release's path (`None` for the
/// other APIs).
async fn serve(
    state: &AppState,
    api: Api,
    connection: &ResetSwitch,
    order: Result<Option<String>, String>,
    headers: &HeaderMap,
    raw: &[u8],
) -> Response {
    let received = SystemTime::now();
    let body = serde_json::from_slice::<Value>(raw).map_err(|e| format!("body is not valid JSON: {e}"));
    let key = idempotency_key(headers);
    let journaled = body.as_ref().map_or(Value::Null, Value::clone);
    let mut call = state.store.arrive(api, key.as_ref().ok().map(|key| (*key).to_owned()), journaled, received);
    if !lock(&state.credentials).allows(api, headers) {
        state.store.update(api, |s| s.stats.unauthorized += 1);
        tracing::info!("{api}: refused a call without the credentials it requires");
        return answered(&mut call, problem(StatusCode::UNAUTHORIZED, "missing or wrong credentials"));
    }
    let request = match key.and_then(|key| request(key, body, order, headers, received)) {
        Ok(request) => request,
        Err(detail) => {
            state.store.update(api, |s| s.stats.rejected += 1);
            tracing::info!("{api}: rejected a request: {detail}");
            return answered(&mut call, problem(StatusCode::BAD_REQUEST, detail));
        }
    };
    let key = request.idempotency_key.clone();
    let faults = state.store.read(api, |s| s.faults.clone());
    let fault = faults.pick(raw, || state.store.attempt(api, &key), rand::random());
    if let Some(Fault::Fail(status, ..)) = &fault {
        call.status = status.as_u16();
    }
    // A statement of its own: the thread-local generator must not live across the `.await`.
    let delay = faults.delay_ms(&mut rand::rng());
    if !pause(state, delay).await {
        return answered(&mut call, problem(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down"));
    }
    if let Some(Fault::Fail(status, detail, retry_after)) = fault {
        state.store.update(api, |s| s.stats.injected_failures += 1);
        tracing::info!("{api}: injected {} (key {key}): {detail}", status.as_u16());
        let mut response = problem(status, detail);
        if retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(faults.retry_after_secs));
        }
        return answered(&mut call, response);
    }
    let described = (spec(api).describe)(&request.body);
    let (outcome, status, answer) = state.store.apply(api, request);
    match outcome {
        Outcome::Effect => tracing::info!("{api}: {described} (key {key})"),
        Outcome::Replayed => tracing::info!("{api}: duplicate of key {key}, replayed the first answer"),
        _ => tracing::info!("{api}: {outcome:?} {} {answer} (key {key})", status.as_u16()),
    }
    call.status = status.as_u16();
    if fault == Some(Fault::Hang) {
        state.store.update(api, |s| s.stats.hangs += 1);
        tracing::info!("{api}: injected hang, answering key {key} in {} ms", faults.hang_ms);
        // Stopping cuts the hang short; the effect is recorded, so it is answered.
        pause(state, faults.hang_ms).await;
    }
    let mut response = (status, Json(answer)).into_response();
    if outcome == Outcome::Replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if fault == Some(Fault::Reset) {
        state.store.update(api, |s| s.stats.resets += 1);
        tracing::info!("{api}: injected connection reset instead of answering key {key}");
        connection.pull();
    }
    answered(&mut call, response)
}

/// Notes `response` as the call's answer.
fn answered(call: &mut InFlight, response: Response) -> Response {
    call.status = response.status().as_u16();
    response
}

/// Waits `ms` milliseconds; `false` when cut short because the server is stopping.
async fn pause(state: &AppState, ms: u64) -> bool {
    let mut stopping = state.stopping.clone();
    if *stopping.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(ms)) => true,
        _ = stopping.wait_for(|stopping| *stopping) => false,
    }
}

/// The trimmed `Idempotency-Key`, or why it is unusable.
fn idempotency_key(headers: &HeaderMap) -> Result<&str, String> {
    let key = headers.get("idempotency-key").ok_or("missing Idempotency-Key header")?;
    let key = key.to_str().map_err(|_| "Idempotency-Key must be visible ASCII")?.trim();
    match key.len() {
        0 => Err("Idempotency-Key must not be empty".to_owned()),
        n if n > MAX_KEY_LEN => Err(format!("Idempotency-Key must be at most {MAX_KEY_LEN} bytes, got {n}")),
        _ => Ok(key),
    }
}

/// The request of a call with `key` and `body`, as an effect yet to be answered, or why it is malformed: the
/// body must be a JSON object, and a release's gets the `order` of its path as `order_id` (refused when it
/// names another order).
fn request(
    key: &str,
    body: Result<Value, String>,
    order: Result<Option<String>, String>,
    headers: &HeaderMap,
    received: SystemTime,
) -> Result<Effect, String> {
    let mut body = body?;
    let fields = body.as_object_mut().ok_or("body must be a JSON object")?;
    if let Some(order) = order.map_err(|e| format!("the order id in the path is unusable: {e}"))? {
        match fields.get("order_id") {
            None | Some(Value::Null) => {
                fields.insert("order_id".to_owned(), Value::String(order));
            }
            Some(given) if order_id_text(given).as_ref() == Some(&order) => {}
            Some(given) => return Err(format!("the body's order_id {given} is not the order {order:?} of the path")),
        }
    }
    let text = |value: &HeaderValue| value.to_str().ok().map(str::to_owned);
    let cloudevent = headers
        .iter()
        .filter(|(name, _)| name.as_str() == "content-type" || name.as_str().starts_with("ce-"))
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), text(value)?)))
        .collect();
    let traceparent = headers.get("traceparent").and_then(text);
    Ok(Effect {
        idempotency_key: key.to_owned(),
        body,
        received_at_unix_ms: unix_ms(received),
        traceparent,
        cloudevent,
        response: Value::Null,
    })
}

/// An RFC 9457 problem-details answer (`application/problem+json`).
fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = json!({"type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail.into()});
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}

/// `GET /stats`: the counters of every API, by name.
async fn stats(State(state): State<AppState>) -> Json<BTreeMap<Api, ApiStats>> {
    Json(Api::ALL.into_iter().map(|api| (api, state.store.read(api, |s| s.stats))).collect())
}

/// `POST /oauth2/token`: a token for the client credentials grant, or 401 `invalid_client`.
async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let grant_type = form.get("grant_type").map(String::as_str);
    match lock(&state.credentials).issue(&headers, grant_type) {
        Some((token, ttl)) => {
            tracing::info!("oauth2: issued a token for {} s", ttl.as_secs());
            Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl.as_secs()})).into_response()
        }
        None => (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response(),
    }
}
