//! The HTTP surface: the endpoint of every API in the table of APIs, their effects and declines, `/stats`,
//! `/healthz` and the OAuth 2.0 token endpoint, as one axum [`Router`].
//!
//! A request to an API endpoint goes: counted and marked in flight → checked (`Idempotency-Key`, JSON
//! object body; else 400) → fault picked (`fail_body_contains`, then `fail_first_per_key`, then the random
//! draw) → `latency_ms` + jitter waited → injected failure answered if picked (not remembered) → first
//! answer replayed, or the business rules applied (see [`crate::api`]: effect, decline, nothing to do, or
//! a refusal that is not remembered) → `hang_ms` waited if it hangs → answered (or its connection reset)
//! → added to the call journal and no longer in flight.
//!
//! A release (`POST /inventory/reservations/{order_id}/release`) takes its order id from the path: it is
//! added to the body when the body leaves `order_id` out, and a body naming another order is refused 400.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::api::{Api, describe_decline, order_id_text};
use crate::connection::ResetSwitch;
use crate::credentials::Credentials;
use crate::faults::{Faults, Injection};
use crate::problem::problem;
use crate::store::{ApiStats, Arrival, InFlight, Outcome, Request, Store};

/// Header that makes a repeated call harmless.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Header set to `true` on an answer replayed for an already used idempotency key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// Header carrying the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// Longest `Idempotency-Key` accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// What every handler shares.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// Effects, keys, counters and faults.
    pub store: Arc<Store>,
    /// What each API requires of its callers; the OAuth 2.0 token endpoint's state.
    pub credentials: Arc<Credentials>,
    /// Turns `true` when the server stops; cuts latency and hangs short.
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// Waits `ms` milliseconds; `false` when cut short because the server is stopping.
    async fn pause(&self, ms: u64) -> bool {
        let mut shutdown = self.shutdown.clone();
        if *shutdown.borrow() {
            return false;
        }
        if ms == 0 {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => true,
            _ = shutdown.wait_for(|stopping| *stopping) => false,
        }
    }
}

/// The router of the whole server: the fixed routes, then per API (from the table of APIs) its endpoint
/// and its `/{api}/effects` and `/{api}/declines`.
pub(crate) fn router(state: AppState) -> Router {
    let mut router =
        Router::new().route("/healthz", get(healthz)).route("/stats", get(stats)).route("/oauth2/token", post(token));
    for api in Api::ALL {
        let spec = api.spec();
        tracing::debug!("{api}: POST {} ({})", spec.endpoint_path, spec.doc);
        let endpoint = if spec.endpoint_path.contains("{order_id}") {
            post(
                move |State(state): State<AppState>,
                      ConnectInfo(connection): ConnectInfo<ResetSwitch>,
                      order_id: Result<Path<String>, PathRejection>,
                      headers: HeaderMap,
                      body: Bytes| {
                    let order_id = order_id.map(|Path(id)| id).map_err(|e| e.body_text());
                    serve_call(state, api, connection, Some(order_id), headers, body)
                },
            )
        } else {
            post(
                move |State(state): State<AppState>,
                      ConnectInfo(connection): ConnectInfo<ResetSwitch>,
                      headers: HeaderMap,
                      body: Bytes| { serve_call(state, api, connection, None, headers, body) },
            )
        };
        router = router
            .route(spec.endpoint_path, endpoint)
            .route(
                &format!("/{api}/effects"),
                get(move |State(state): State<AppState>| async move { Json(state.store.effects(api)) }),
            )
            .route(
                &format!("/{api}/declines"),
                get(move |State(state): State<AppState>| async move { Json(state.store.declines(api)) }),
            );
    }
    router.fallback(not_found).with_state(state)
}

/// `POST` to an API endpoint: counts the call and keeps it in flight (and, once answered, in the journal)
/// while [`answer_call`] answers it, and resets `connection` instead when the answer is marked
/// [`ResetConnection`]. `order_id` is the order id of a release's path (or why it is unusable); `None` for
/// the other APIs.
async fn serve_call(
    state: AppState,
    api: Api,
    connection: ResetSwitch,
    order_id: Option<Result<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = SystemTime::now();
    let json = serde_json::from_slice::<Value>(&body).map_err(|e| format!("body is not valid JSON: {e}"));
    let arrival = Arrival {
        idempotency_key: idempotency_key(&headers).ok().map(str::to_owned),
        body: json.as_ref().map_or(Value::Null, Value::clone),
        received,
    };
    let mut call = state.store.arrive(api, arrival);
    let json = match order_id {
        Some(order_id) => json.and_then(|json| with_path_order_id(json, order_id)),
        None => json,
    };
    let response = answer_call(&state, api, &mut call, &headers, &body, json, received).await;
    call.answer(response.status());
    if response.extensions().get::<ResetConnection>().is_some() {
        connection.pull();
    }
    response
}

/// Marks an answer that must not be sent: its connection is reset instead (the `reset_rate` fault).
#[derive(Debug, Clone, Copy)]
struct ResetConnection;

/// The fault picked for a well-formed call, in the order they are checked.
#[derive(Debug)]
enum Verdict {
    /// Answer this injected failure, with no effect.
    Fail {
        /// Status answered.
        status: StatusCode,
        /// `detail` of the problem body.
        detail: String,
        /// Whether to send `Retry-After`.
        retry_after: bool,
    },
    /// Go on: take effect or replay, hanging if [`Injection::Hang`].
    Proceed(Injection),
}

/// Decides what a well-formed call with `key` and raw body `body` gets from `faults`: `fail_body_contains`,
/// then `fail_first_per_key`, then the random draw.
fn verdict(store: &Store, api: Api, faults: &Faults, key: &str, body: &[u8]) -> Verdict {
    let status = |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let retries =
        |status: StatusCode| status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE;
    if faults.body_fails(&String::from_utf8_lossy(body)) {
        let status = status(faults.fail_body_status);
        let text = faults.fail_body_contains.as_deref().unwrap_or_default();
        return Verdict::Fail {
            status,
            detail: format!("injected failure: the body contains {text:?}"),
            retry_after: retries(status),
        };
    }
    let attempt = store.count_attempt(api, key);
    if faults.attempt_fails(attempt) {
        let status = status(faults.fail_first_status);
        return Verdict::Fail {
            status,
            detail: format!(
                "injected failure: call {attempt} of {} failed with this idempotency key",
                faults.fail_first_per_key
            ),
            retry_after: retries(status),
        };
    }
    match faults.injection(rand::random::<f64>()) {
        Injection::Error => Verdict::Fail {
            status: StatusCode::SERVICE_UNAVAILABLE,
            detail: "injected failure: the service is unavailable, try again".to_owned(),
            retry_after: false,
        },
        Injection::Throttle => Verdict::Fail {
            status: StatusCode::TOO_MANY_REQUESTS,
            detail: format!("injected throttling: retry after {} seconds", faults.retry_after_secs),
            retry_after: true,
        },
        injection => Verdict::Proceed(injection),
    }
}

/// The body of a release, `json`, with the order id of its path, `order_id` (or why it is unusable):
/// added as `order_id` when the body leaves it out (or sets it `null`); refused when the body names
/// another order. A body that is not an object is left for [`parse_request`] to refuse.
fn with_path_order_id(mut json: Value, order_id: Result<String, String>) -> Result<Value, String> {
    let order_id = order_id.map_err(|e| format!("the order id in the path is unusable: {e}"))?;
    let Some(fields) = json.as_object_mut() else {
        return Ok(json);
    };
    match fields.get("order_id") {
        None | Some(Value::Null) => {
            fields.insert("order_id".to_owned(), Value::String(order_id));
        }
        Some(given) if order_id_text(Some(given)).as_deref() == Some(order_id.as_str()) => {}
        Some(given) => {
            return Err(format!("the body's order_id {given} is not the order {order_id:?} of the path"));
        }
    }
    Ok(json)
}

/// Answers a `POST` to an API endpoint: checks it, applies the faults, decides it by the business rules
/// or replays the first answer.
async fn answer_call(
    state: &AppState,
    api: Api,
    call: &mut InFlight,
    headers: &HeaderMap,
    body: &[u8],
    json: Result<Value, String>,
    received: SystemTime,
) -> Response {
    if !state.credentials.allows(api, headers) {
        state.store.count_unauthorized(api);
        tracing::info!("{api}: refused a call without the credentials the API requires");
        return problem(StatusCode::UNAUTHORIZED, "missing or wrong credentials".to_owned());
    }
    let request = match parse_request(headers, json, received) {
        Ok(request) => request,
        Err(detail) => {
            state.store.count_rejected(api);
            tracing::info!("{api}: rejected a request: {detail}");
            return problem(StatusCode::BAD_REQUEST, detail);
        }
    };
    let key = request.idempotency_key.clone();
    let faults = state.store.faults(api);
    let verdict = verdict(&state.store, api, &faults, &key, body);
    if let Verdict::Fail { status, .. } = &verdict {
        call.settle(*status);
    }
    // A statement of its own: the thread-local generator must not live across the `.await`.
    let delay_ms = faults.delay_ms(&mut rand::rng());
    if !state.pause(delay_ms).await {
        return shutting_down();
    }
    let injection = match verdict {
        Verdict::Fail { status, detail, retry_after } => {
            state.store.count_injected_failure(api);
            tracing::info!("{api}: injected {} (key {key}): {detail}", status.as_u16());
            let mut response = problem(status, detail);
            if retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(faults.retry_after_secs));
            }
            return response;
        }
        Verdict::Proceed(injection) => injection,
    };
    let (answer, replayed) = match state.store.apply(api, request) {
        Outcome::Applied { answer, effect } => {
            tracing::info!("{api}: {} (key {key})", api.describe(&effect.body));
            (answer, false)
        }
        Outcome::Declined { answer, decline } => {
            tracing::info!("{api}: {} (key {key})", describe_decline(&decline.body, &answer.body));
            (answer, false)
        }
        Outcome::Unchanged(answer) => {
            tracing::info!("{api}: nothing to do, {} (key {key})", answer.body);
            (answer, false)
        }
        Outcome::Refused(answer) => {
            tracing::info!("{api}: refused {} {} (key {key}, not remembered)", answer.status.as_u16(), answer.body);
            (answer, false)
        }
        Outcome::Replayed(answer) => {
            tracing::info!("{api}: duplicate of key {key}, replayed the first answer");
            (answer, true)
        }
    };
    call.settle(answer.status);
    if injection == Injection::Hang {
        state.store.count_hang(api);
        tracing::info!("{api}: injected hang, answering key {key} in {} ms", faults.hang_ms);
        // Stopping cuts the hang short; the effect is recorded, so answer it.
        state.pause(faults.hang_ms).await;
    }
    let mut response = (answer.status, Json(answer.body)).into_response();
    if replayed {
        response.headers_mut().insert(HeaderName::from_static(IDEMPOTENT_REPLAYED), HeaderValue::from_static("true"));
    }
    if injection == Injection::Reset {
        state.store.count_reset(api);
        tracing::info!("{api}: injected connection reset instead of answering key {key}");
        response.extensions_mut().insert(ResetConnection);
    }
    response
}

/// The trimmed `Idempotency-Key` header, or why it is unusable.
fn idempotency_key(headers: &HeaderMap) -> Result<&str, String> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or("missing Idempotency-Key header")?
        .to_str()
        .map_err(|_| "Idempotency-Key must be visible ASCII")?
        .trim();
    if key.is_empty() {
        return Err("Idempotency-Key must not be empty".to_owned());
    }
    Ok(key)
}

/// The key, body and trace context of a call whose body parsed as `json` (or did not, and why), or why
/// the call is malformed.
fn parse_request(headers: &HeaderMap, json: Result<Value, String>, received: SystemTime) -> Result<Request, String> {
    let key = idempotency_key(headers)?;
    if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(format!("Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY_LEN} bytes, got {}", key.len()));
    }
    let body = json?;
    if !body.is_object() {
        return Err("body must be a JSON object".to_owned());
    }
    let traceparent = headers.get(TRACEPARENT).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let cloudevent = headers
        .iter()
        .filter(|(name, _)| name.as_str() == "content-type" || name.as_str().starts_with("ce-"))
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    Ok(Request { idempotency_key: key.to_owned(), body, traceparent, cloudevent, received })
}

/// The answer to a request cut short because the server is stopping.
fn shutting_down() -> Response {
    problem(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down")
}

/// `GET /healthz`.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /stats`: the counters of every API, by name.
async fn stats(State(state): State<AppState>) -> Json<BTreeMap<Api, ApiStats>> {
    Json(state.store.all_stats())
}

/// `POST /oauth2/token`: a token for the client credentials grant, or 401 `invalid_client`.
async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Response {
    match state.credentials.issue(&headers, form.get("grant_type").map(String::as_str)) {
        Some((token, ttl)) => {
            tracing::info!("oauth2: issued a token for {} s", ttl.as_secs());
            Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl.as_secs()})).into_response()
        }
        None => (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response(),
    }
}

/// Any other route.
async fn not_found(method: Method, uri: Uri) -> Response {
    problem(StatusCode::NOT_FOUND, format!("no such endpoint: {method} {}", uri.path()))
}
