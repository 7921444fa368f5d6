//! Helpers for the HTTP tests: starting a server, building the bodies of calls, sending requests and
//! reading their answers.

use std::time::Duration;

use mock_apis::{Api, MockApis, MockApisConfig};
use reqwest::{Client, IntoUrl, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// How long a test waits for the server to reach a state.
pub const WAIT: Duration = Duration::from_secs(10);

/// A server with the default configuration, on a free port.
pub async fn start() -> MockApis {
    MockApis::start(MockApisConfig::default()).await.expect("server starts")
}

/// An inventory reservation of two `SKU-1` for `order`.
pub fn reservation(order: &str) -> Value {
    json!({"order_id": order, "items": [{"sku": "SKU-1", "quantity": 2}]})
}

/// A payment charge body.
pub fn charge(order: &str, amount: u64, currency: &str) -> Value {
    json!({"order_id": order, "amount": amount, "currency": currency})
}

/// An e-mail body.
pub fn email(to: &str, subject: &str, body: &str) -> Value {
    json!({"to": to, "subject": subject, "body": body})
}

/// An SMS body.
pub fn sms(to: &str, text: &str) -> Value {
    json!({"to": to, "text": text})
}

/// The URL of `path` on the server, e.g. `url(&server, "/stats")`.
pub fn url(server: &MockApis, path: &str) -> String {
    format!("{}{path}", server.base_url())
}

/// A POST to `url` carrying `key` as its `Idempotency-Key`.
pub fn keyed(client: &Client, url: impl IntoUrl, key: &str) -> RequestBuilder {
    client.post(url).header("Idempotency-Key", key)
}

/// Sends the request and expects an answer (of any status).
pub async fn answered(request: RequestBuilder) -> Response {
    request.send().await.expect("request is answered")
}

/// GETs `url` and reads its answer as JSON into a `T` (`what` names it if that fails).
pub async fn get<T: DeserializeOwned>(client: &Client, url: impl IntoUrl, what: &str) -> T {
    answered(client.get(url)).await.json().await.expect(what)
}

/// POSTs a JSON body to `url`, with an `Idempotency-Key` when `key` is given.
pub async fn post_to(client: &Client, url: impl IntoUrl, key: Option<&str>, body: &Value) -> Response {
    let mut request = client.post(url).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    answered(request).await
}

/// POSTs a JSON body to the endpoint of `api`.
pub async fn post(client: &Client, server: &MockApis, api: Api, key: Option<&str>, body: &Value) -> Response {
    post_to(client, url(server, api.endpoint_path()), key, body).await
}

/// POSTs a release of `order`'s reservation.
pub async fn release(client: &Client, server: &MockApis, order: &str, key: &str, body: &Value) -> Response {
    post_to(client, url(server, &Api::release_path(order)), Some(key), body).await
}

/// POSTs to the endpoint of `api` with a client that gives up after `patience`, and checks that the
/// client timed out.
pub async fn post_timing_out(server: &MockApis, api: Api, key: &str, body: &Value, patience: Duration) {
    let impatient = Client::builder().timeout(patience).build().expect("client");
    let request = keyed(&impatient, url(server, api.endpoint_path()), key).json(body);
    let error = request.send().await.expect_err("the client times out");
    assert!(error.is_timeout(), "{error}");
}

/// Sends the request on a task of its own; the task ends with the answer's status.
pub fn spawn_status(request: RequestBuilder) -> JoinHandle<reqwest::Result<StatusCode>> {
    tokio::spawn(async move { request.send().await.map(|r| r.status()) })
}

/// The body of an answer, as JSON.
pub async fn json_of(response: Response) -> Value {
    response.json().await.expect("body is JSON")
}

/// The raw value of an answer's header.
pub fn header<'r>(response: &'r Response, name: &str) -> Option<&'r [u8]> {
    response.headers().get(name).map(|v| v.as_bytes())
}

/// Whether the answer says it is a replay (`Idempotent-Replayed: true`).
pub fn replayed(response: &Response) -> bool {
    header(response, "idempotent-replayed") == Some(&b"true"[..])
}

/// The answer's `Retry-After`, as text.
pub fn retry_after(response: &Response) -> Option<&str> {
    response.headers().get("retry-after").and_then(|v| v.to_str().ok())
}

/// Checks that the answer is a problem+json with `status` (in the status line and in the body), and
/// returns the problem.
pub async fn problem_of(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(header(&response, "content-type"), Some(&b"application/problem+json"[..]));
    let problem = json_of(response).await;
    assert_eq!(problem["status"], status.as_u16());
    problem
}

/// The statuses of the calls to `api` in its journal, in arrival order.
pub fn statuses(server: &MockApis, api: Api) -> Vec<u16> {
    server.calls(api).iter().map(|c| c.status).collect()
}

/// The time now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
        .try_into()
        .expect("fits in u64")
}
