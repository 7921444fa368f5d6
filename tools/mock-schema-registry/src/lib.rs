//! An in-process Confluent-compatible Schema Registry for tests: the REST subset courier's decoder reads, served
//! from recorded schemas, with the registry's own error bodies.
//!
//! | request | answer |
//! |---|---|
//! | `GET /schemas/ids/{id}` | 200 `{"schemaType"?, "schema", "references"?}`; 404 `{"error_code":40403,"message":"Schema {id} not found"}` |
//! | `GET /subjects/{subject}/versions/{version}` | 200 `{"subject","version","id","schemaType"?,"schema","references"?}`; 404 with 40401 (`Subject '{subject}' not found.`) or 40402 (`Version {version} not found.`) |
//!
//! Every answer is `application/vnd.schemaregistry.v1+json`. With credentials required ([`Required`]), a request
//! without them gets 401 `{"error_code":401,"message":"Unauthorized"}`; a [`Fault`] makes every request fail as
//! a registry does (403 with 40301, 500 with 50001, 503) or answer late. [`MockSchemaRegistry::requests`] lists
//! the paths asked for, so a test can count fetches.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

/// The content type of every answer of a Schema Registry.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// What a registry holds, as `make_fixtures.py` records it (`registry.json`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Recorded {
    /// The body of `GET /schemas/ids/{id}`, by id.
    pub schemas: BTreeMap<u32, Value>,
    /// Subject → version → schema id.
    #[serde(default)]
    pub subjects: BTreeMap<String, BTreeMap<u32, u32>>,
}

impl Recorded {
    /// Reads a recorded registry (`registry.json`).
    pub fn load(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not a recorded registry: {e}", path.display()))
    }

    /// The same registry without schema `id` (its requests answer 40403).
    pub fn without(mut self, id: u32) -> Self {
        self.schemas.remove(&id);
        self
    }
}

/// The credentials the registry requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Required {
    /// HTTP basic: this user name and password.
    Basic(String, String),
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

/// How every request fails, when set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 403 `{"error_code":40301,"message":"User is denied operation Read on …"}` (RBAC refuses).
    Forbidden,
    /// 500 `{"error_code":50001,"message":"Error in the backend data store"}`.
    BackendError,
    /// 503 with a body that is not the registry's (a load balancer with no registry behind it).
    Unavailable,
    /// The answer comes after this long.
    Slow(Duration),
}

/// What the server shares between requests.
#[derive(Debug, Default)]
struct Shared {
    /// The schemas served.
    recorded: Recorded,
    /// The credentials required, if any.
    required: Option<Required>,
    /// The fault every request meets, if any.
    fault: Mutex<Option<Fault>>,
    /// How long every answer is held back (so concurrent requests overlap).
    delay: Mutex<Duration>,
    /// The path of every request, in order.
    requests: Mutex<Vec<String>>,
}

/// A Schema Registry on a free loopback port, for as long as the value lives.
#[derive(Debug, Clone)]
pub struct MockSchemaRegistry {
    /// `http://127.0.0.1:<port>`.
    url: String,
    /// The state its handlers share.
    shared: Arc<Shared>,
}

impl MockSchemaRegistry {
    /// Serves `recorded`, open to every request.
    pub async fn start(recorded: Recorded) -> Self {
        Self::serve(recorded, None).await
    }

    /// Serves `recorded` to requests that carry `required`.
    pub async fn start_with_credentials(recorded: Recorded, required: Required) -> Self {
        Self::serve(recorded, Some(required)).await
    }

    /// Starts the server.
    async fn serve(recorded: Recorded, required: Option<Required>) -> Self {
        let shared = Arc::new(Shared { recorded, required, ..Shared::default() });
        let app = axum::Router::new()
            .route("/schemas/ids/{id}", get(schema_by_id))
            .route("/subjects/{subject}/versions/{version}", get(subject_version))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), guard))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, shared }
    }

    /// The registry's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Makes every request fail with `fault` from now on (`None`: answer again).
    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.shared.fault.lock().expect("fault lock") = fault;
    }

    /// Holds back every answer by `delay` from now on.
    pub fn set_delay(&self, delay: Duration) {
        *self.shared.delay.lock().expect("delay lock") = delay;
    }

    /// The path of every request received so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().expect("requests lock").clone()
    }
}

/// Records the request, then applies the delay, the fault and the credentials.
async fn guard(State(shared): State<Arc<Shared>>, request: Request, next: axum::middleware::Next) -> Response {
    shared.requests.lock().expect("requests lock").push(request.uri().path().to_owned());
    let delay = *shared.delay.lock().expect("delay lock");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let fault = *shared.fault.lock().expect("fault lock");
    match fault {
        Some(Fault::Forbidden) => {
            let message = "User is denied operation Read on Subject: orders-value";
            return error(StatusCode::FORBIDDEN, 40301, message);
        }
        Some(Fault::BackendError) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, 50001, "Error in the backend data store");
        }
        Some(Fault::Unavailable) => return (StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream").into_response(),
        Some(Fault::Slow(wait)) => tokio::time::sleep(wait).await,
        None => {}
    }
    if let Some(required) = &shared.required {
        let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        let expected = match required {
            Required::Basic(user, password) => {
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
            }
            Required::Bearer(token) => format!("Bearer {token}"),
        };
        if given != expected {
            return error(StatusCode::UNAUTHORIZED, 401, "Unauthorized");
        }
    }
    next.run(request).await
}

/// `GET /schemas/ids/{id}`.
async fn schema_by_id(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>) -> Response {
    match id.parse::<u32>().ok().and_then(|id| shared.recorded.schemas.get(&id)) {
        Some(schema) => answer(StatusCode::OK, schema.clone()),
        None => error(StatusCode::NOT_FOUND, 40403, &format!("Schema {id} not found")),
    }
}

/// `GET /subjects/{subject}/versions/{version}`.
async fn subject_version(
    State(shared): State<Arc<Shared>>,
    UrlPath((subject, version)): UrlPath<(String, String)>,
) -> Response {
    let Some(versions) = shared.recorded.subjects.get(&subject) else {
        return error(StatusCode::NOT_FOUND, 40401, &format!("Subject '{subject}' not found."));
    };
    let found = match version.as_str() {
        "latest" => versions.iter().next_back().map(|(v, id)| (*v, *id)),
        number => number.parse::<u32>().ok().and_then(|v| versions.get(&v).map(|id| (v, *id))),
    };
    let Some((number, id)) = found else {
        return error(StatusCode::NOT_FOUND, 40402, &format!("Version {version} not found."));
    };
    let mut body = json!({"subject": subject, "version": number, "id": id});
    if let (Some(body), Some(Value::Object(schema))) = (body.as_object_mut(), shared.recorded.schemas.get(&id)) {
        body.extend(schema.clone());
    }
    answer(StatusCode::OK, body)
}

/// `body` with `status`, as the registry's content type.
fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// The registry's error body: `{"error_code": code, "message": message}`.
fn error(status: StatusCode, code: u32, message: &str) -> Response {
    answer(status, json!({"error_code": code, "message": message}))
}
