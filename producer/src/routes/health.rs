//! `GET /healthz` (the process is alive) and `GET /readyz` (the broker answers, so orders can be accepted).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// Always 200 while the process serves requests.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "alive"}))
}

/// 200 when the broker answered a metadata request for the orders topic, 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.publisher.broker_reachable(state.readiness_timeout).await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready", "broker": "reachable"}))),
        Err(error) => {
            tracing::warn!(%error, "readiness check: broker unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not ready", "broker": "unreachable"})))
        }
    }
}
