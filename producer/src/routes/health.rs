//! `GET /healthz` (the process is alive) and `GET /readyz` (the broker answers, so orders can be accepted).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use courier::kafka::connectivity::{ClusterError, check_cluster};
use serde_json::{Value, json};

use super::AppState;

/// Always 200 while the process serves requests.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "alive"}))
}

/// 200 when the broker answered a metadata request for the orders topic, 503 otherwise, with why: the broker
/// is unreachable, or it refuses the login or the TLS connection (`reason`).
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.publisher.broker_reachable(state.readiness_timeout).await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready", "broker": "reachable"}))),
        Err(error) => {
            // With a login or TLS, a fresh connection tells a refused login or a TLS failure from a broker that is
            // down.
            let secured = state.kafka.security_protocol != "plaintext";
            let check = if secured { check_cluster(&state.kafka, state.readiness_timeout).await } else { Ok(()) };
            let reason = match check {
                Err(failure @ (ClusterError::Authentication(_) | ClusterError::Tls(_))) => failure.to_string(),
                _ => format!("the broker did not answer: {error}"),
            };
            tracing::warn!(%reason, "readiness check: the broker cannot be used");
            let body = json!({"status": "not ready", "broker": "unreachable", "reason": reason});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
    }
}
