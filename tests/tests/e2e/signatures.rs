//! Signed webhooks through the `forward` consumer and a real broker, as `config/examples/signed-webhooks.toml`
//! (the README's recipe) has them: `user.registered` events reach a partner's endpoint as Standard Webhooks calls
//! signed with two secrets in rotation, and a ledger API signed with an HMAC of its own scheme. Each endpoint
//! answers its first call 503, so one event of each is sent twice. Every raw call the endpoints recorded, the
//! refused one and its retry included, is checked by an independent verifier (`tests/independent/
//! verify_webhooks.py`: the Standard Webhooks Python package, and Python's hmac module): either secret of the
//! rotation verifies each partner call, a wrong secret or an altered body none; the ledger's secret verifies
//! each ledger call.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use courier_tests::WAIT;
use courier_tests::app::spawn_app_with;
use serde_json::{Value, json};
use tokio::sync::watch;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const EXAMPLE: &str = "config/examples/signed-webhooks.toml";
/// The partner's secrets while one is rotated: the new one and the old one (each 32 random bytes).
const NEW_SECRET: &str = "whsec_5GwuHSWkHWosaJso2QgPeai3DmU/P0D8rvLGr72jcCo=";
const OLD_SECRET: &str = "whsec_qtuq/zOSQlp/Nq1LJehZAunwTlLOO8B4C2wxxfkeFUQ=";
/// A secret courier does not have.
const WRONG_SECRET: &str = "whsec_lfwcNx2lLjFo1au5TcZVfg5cPmF7AiSVmU5mbH0Hq+Y=";
/// The ledger's secret.
const LEDGER_SECRET: &str = "ledger-hmac-S3CR3T";

/// An endpoint's answer, counting the calls it answered.
struct Answer {
    /// The status answered.
    status: u16,
    /// The count of calls answered at this endpoint (by any of its answers).
    calls: watch::Sender<usize>,
}

impl Respond for Answer {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.calls.send_modify(|calls| *calls += 1);
        ResponseTemplate::new(self.status)
    }
}

/// Mounts `endpoint` on `server`: 503 to its first call, 204 to every other; returns the count of its calls.
async fn mount(server: &MockServer, endpoint: &str) -> watch::Receiver<usize> {
    let (calls, counted) = watch::channel(0);
    Mock::given(method("POST"))
        .and(path(endpoint))
        .respond_with(Answer { status: 503, calls: calls.clone() })
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST")).and(path(endpoint)).respond_with(Answer { status: 204, calls }).mount(server).await;
    counted
}

/// A `user.registered` CloudEvent with id `id`.
fn registered(id: &str, i: usize) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": "/signup", "type": "user.registered", "subject": format!("u-{i}"),
        "data": {"user_id": format!("u-{i}"), "email": format!("user{i}@example.com")}
    })
}

/// The value of header `name` of `request`.
fn header<'a>(request: &'a Request, name: &str) -> &'a str {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_calls_and_their_retries_verify_with_an_independent_verifier_under_each_rotated_secret() {
    let app = spawn_app_with(&[("COURIER__PRODUCER__EVENTS__USERS__TYPES", "user.registered")]).await;
    let server = MockServer::start().await;
    let partner_calls = mount(&server, "/partner/webhooks").await;
    let ledger_calls = mount(&server, "/ledger/events").await;
    let topic = app.settings.producer.events["users"].topic.clone();
    let (partner_url, ledger_url) = (format!("{}/partner", server.uri()), format!("{}/ledger", server.uri()));
    let settings = app.settings_from(
        Some(EXAMPLE),
        &[
            ("COURIER__FORWARD__ROUTES__PARTNER__TOPICS", &topic),
            ("COURIER__FORWARD__ROUTES__LEDGER__TOPICS", &topic),
            ("COURIER__APIS__PARTNER__BASE_URL", &partner_url),
            ("COURIER__APIS__LEDGER__BASE_URL", &ledger_url),
            ("COURIER__APIS__PARTNER__SIGNING__SECRETS", &format!("{NEW_SECRET},{OLD_SECRET}")),
            ("COURIER__APIS__LEDGER__SIGNING__SECRETS", LEDGER_SECRET),
        ],
    );
    assert!(!format!("{settings:?}").contains(&NEW_SECRET[6..]), "the secrets never print");

    // One id with dots: the specification wants none in the id it signs.
    let ids = ["reg-0", "reg-1", "reg-2", "reg.3"];
    for (i, id) in ids.iter().enumerate() {
        let response = app.post_event("application/cloudevents+json", &[], registered(id, i).to_string()).await;
        assert_eq!(response.status(), 202, "event {id}");
    }
    let forward = app.start_forward(&settings);
    // Every event once, and the one refused with 503 once more.
    for (name, mut calls) in [("partner", partner_calls), ("ledger", ledger_calls)] {
        let all = matches!(tokio::time::timeout(WAIT, calls.wait_for(|n| *n > ids.len())).await, Ok(Ok(_)));
        assert!(all, "{name}: {} calls of {}", *calls.borrow(), ids.len() + 1);
    }
    forward.stop().await.expect("forward stops cleanly");

    let recorded = server.received_requests().await.expect("the endpoints record their calls");
    let partner: Vec<&Request> = recorded.iter().filter(|r| r.url.path() == "/partner/webhooks").collect();
    let ledger: Vec<&Request> = recorded.iter().filter(|r| r.url.path() == "/ledger/events").collect();
    for (name, calls) in [("partner", &partner), ("ledger", &ledger)] {
        assert_eq!(calls.len(), ids.len() + 1, "{name}: raw calls, one per event and the retry");
        let keys: BTreeSet<&str> = calls.iter().map(|r| header(r, "idempotency-key")).collect();
        assert_eq!(keys.len(), ids.len(), "{name}: one idempotency key per event: {keys:?}");
        let retried = header(calls[0], "idempotency-key");
        let attempts: Vec<&&Request> = calls.iter().filter(|r| header(r, "idempotency-key") == retried).collect();
        assert_eq!(attempts.len(), 2, "{name}: the call answered 503 was retried once");
    }

    // Standard Webhooks: webhook-id is the idempotency key on every attempt (its dots percent-encoded), the
    // timestamp is the attempt's, both secrets sign.
    for call in &partner {
        let key = header(call, "idempotency-key");
        assert_eq!(header(call, "webhook-id"), key.replace('.', "%2E"), "{:?}", call.headers);
        let sent: i64 = header(call, "webhook-timestamp").parse().expect("unix seconds");
        assert!((sent - chrono::Utc::now().timestamp()).abs() < WAIT.as_secs() as i64, "{sent} is recent");
        assert_eq!(header(call, "webhook-signature").split(' ').count(), 2, "a signature per secret");
    }
    let dotted = partner.iter().find(|r| header(r, "idempotency-key").ends_with(":reg.3")).expect("reg.3 sent");
    assert!(header(dotted, "webhook-id").ends_with(":reg%2E3"), "{:?}", dotted.headers);
    for call in &ledger {
        assert!(header(call, "x-ledger-signature").starts_with("sha256="), "{:?}", call.headers);
        assert!(header(call, "x-ledger-timestamp").parse::<i64>().is_ok(), "{:?}", call.headers);
        assert!(call.headers.get("webhook-signature").is_none(), "the ledger's own scheme only");
    }

    // The independent verifier, fed every recorded call.
    let calls: Vec<Value> = partner
        .iter()
        .map(|call| ("standard-webhooks", call))
        .chain(ledger.iter().map(|call| ("hmac", call)))
        .map(|(scheme, call)| {
            let headers: BTreeMap<&str, &str> =
                call.headers.iter().map(|(name, value)| (name.as_str(), value.to_str().unwrap_or_default())).collect();
            json!({"scheme": scheme, "headers": headers, "body_base64": STANDARD.encode(&call.body)})
        })
        .collect();
    let verdicts = verify_independently(&json!({
        "standard_webhooks": {"new": NEW_SECRET, "old": OLD_SECRET, "wrong": WRONG_SECRET},
        "hmac": {
            "secrets": {"ledger": LEDGER_SECRET, "wrong": "another-S3CR3T"},
            "header": "X-Ledger-Signature", "prefix": "sha256=", "algorithm": "sha256", "encoding": "hex",
            "signed_payload": "{timestamp}.{body}", "timestamp_header": "X-Ledger-Timestamp",
        },
        "calls": calls,
    }))
    .await;
    assert_eq!(verdicts.len(), calls.len(), "a verdict per call");
    for (verdict, call) in verdicts.iter().zip(&calls) {
        let expected = if call["scheme"] == "hmac" { json!(["ledger"]) } else { json!(["new", "old"]) };
        assert_eq!(verdict["verified_by"], expected, "{call}");
        assert_eq!(verdict["tampered_verified_by"], json!([]), "an altered body verifies under no secret: {call}");
    }
}

/// The verdicts of `tests/independent/verify_webhooks.py` on `spec` (its stdin), one per call. Needs `python3`
/// with `standardwebhooks` (`scripts/test.sh` installs it).
async fn verify_independently(spec: &Value) -> Vec<Value> {
    use tokio::io::AsyncWriteExt;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("independent/verify_webhooks.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test.sh installs standardwebhooks)");
    let mut stdin = child.stdin.take().expect("its stdin");
    stdin.write_all(spec.to_string().as_bytes()).await.expect("the calls written");
    drop(stdin);
    let output = child.wait_with_output().await.expect("the verifier ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{} failed: {stderr}", script.display());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}
