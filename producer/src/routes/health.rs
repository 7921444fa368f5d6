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

/// 200 when the broker answered a metadata request for each topic the API publishes to (`orders.created` and
/// the topics of `[producer.events]`) and every one exists; 503 otherwise, with why: topics that do not exist
/// (`missing_topics`, e.g. on a cluster where courier does not create them), a broker that is unreachable, or
/// one that refuses the login or the TLS connection (`reason`).
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let event_topics = state.events.topics();
    match state.publisher.unusable_topics(&event_topics, state.readiness_timeout).await {
        Ok(unusable) if unusable.is_empty() => {
            (StatusCode::OK, Json(json!({"status": "ready", "broker": "reachable"})))
        }
        Ok(unusable) => {
            let names: Vec<&str> = unusable.iter().map(|topic| topic.name.as_str()).collect();
            let list: Vec<String> = unusable.iter().map(ToString::to_string).collect();
            let reason = format!("topics the API publishes to cannot be used: {}", list.join(", "));
            tracing::warn!(topics = ?names, %reason, "readiness check: topics missing");
            let body = json!({"status": "not ready", "broker": "reachable", "missing_topics": names, "reason": reason});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
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
