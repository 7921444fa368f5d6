//! The OpenAPI contract, judged by an independent tool: Schemathesis (PyPI) reads the document the `producer`
//! binary serves at `/openapi.json` and fuzzes every operation of it against that binary over a real broker, with
//! all its checks (`--checks all`): no server error, no status code, content type or header the document does not
//! declare, every response body matching its schema, every request the document calls valid accepted and every
//! one it calls invalid refused, authentication enforced. The served document is the committed
//! `docs/openapi.json`, fetched without an API key.
//!
//! Schemathesis reads the hooks of `tests/independent/schemathesis_hooks.py`, which tell it the two rules the
//! document states in prose (a fresh `Idempotency-Key` per new request; the `ce-*` headers belong to binary mode).
//! Needs `python3` with `schemathesis` (`scripts/test.sh` installs it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use courier_tests::app::spawn_app_with;
use courier_tests::broker::free_port;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The API key the producer requires and Schemathesis sends.
const API_KEY: &str = "openapi-fuzz-key-0123456789";
/// Test cases Schemathesis generates per operation and phase: some 1,500 requests in all, about half a minute.
const MAX_EXAMPLES: &str = "200";
/// The longest the whole run may take before the test fails.
const RUN_BOUND: Duration = Duration::from_secs(300);

#[tokio::test]
async fn schemathesis_finds_no_failure_in_the_producer_against_its_openapi_document() {
    // The in-process app creates the test's topics; the binary is what is fuzzed.
    let app = spawn_app_with(&[]).await;
    let port = free_port().expect("a free port");
    let address = format!("http://127.0.0.1:{port}");
    let mut producer = Command::new(producer_binary())
        .envs(&app.env)
        .env("COURIER__PRODUCER__LISTEN", format!("127.0.0.1:{port}"))
        .env("COURIER__PRODUCER__API_KEYS", API_KEY)
        .env("COURIER__TELEMETRY__LOG_LEVEL", "info")
        .env("COURIER__TELEMETRY__LOG_FORMAT", "json")
        .env_remove("COURIER_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the producer binary starts");
    // Its log lines go to stderr.
    let mut lines = BufReader::new(producer.stderr.take().expect("its stderr")).lines();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("its log") {
            if line.contains("order API listening") {
                return;
            }
        }
        panic!("the producer stopped before it listened");
    })
    .await
    .expect("the producer listens within a minute");
    // Its log is not needed any more, but must keep being read so that the producer never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let served = app.http.get(format!("{address}/openapi.json")).send().await.expect("the producer answers");
    assert_eq!(served.status(), 200, "the document needs no API key");
    let committed = std::fs::read_to_string(root().join("docs/openapi.json")).expect("docs/openapi.json");
    assert!(served.text().await.expect("the document") == committed, "the served document is docs/openapi.json");

    let workdir = tempfile::tempdir().expect("a directory for Schemathesis' files");
    let run = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run", &format!("{address}/openapi.json")])
        .args(["--checks", "all", "--max-examples", MAX_EXAMPLES, "--workers", "1", "--no-color"])
        .args(["--request-timeout", "30", "--header", &format!("Authorization: Bearer {API_KEY}")])
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env("PYTHONPATH", root().join("tests/independent"))
        .current_dir(workdir.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_BOUND, run)
        .await
        .expect("Schemathesis finishes within its bound")
        .expect("python3 -m schemathesis.cli runs (scripts/test.sh installs schemathesis)");
    let report = String::from_utf8_lossy(&output.stdout);
    let summary = report.find("SUMMARY").map_or(&*report, |at| &report[report[..at].rfind('\n').unwrap_or(0)..]);
    println!("schemathesis:\n{summary}");
    assert!(
        output.status.success(),
        "Schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated: u64 = summary
        .lines()
        .find_map(|line| line.trim().split_once(" generated").and_then(|(count, _)| count.parse().ok()))
        .expect("the summary counts the generated test cases");
    assert!(generated >= 500, "every operation fuzzed: {generated} test cases");
    drop(producer);
    app.shutdown().await;
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `producer` binary of this build (the profile and target directory this test was built in), built by Cargo
/// first so that it is the code under test (nothing to build when `cargo test --workspace` built it already).
fn producer_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // <target>/<profile>/deps/e2e-…
    let profile_dir = exe.parent().and_then(Path::parent).expect("the profile directory");
    let target = profile_dir.parent().expect("the target directory");
    let profile = profile_dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // The producer's own integration test links the binary, with the features of a workspace test build.
    let mut build = std::process::Command::new(cargo);
    build.args(["test", "--workspace", "--locked", "--no-run", "--test", "startup", "--target-dir"]).arg(target);
    if profile != "debug" {
        build.args(["--profile", if profile == "release" { "release" } else { profile }]);
    }
    let status = build.current_dir(root()).status().expect("cargo runs");
    assert!(status.success(), "cargo could not build the producer binary");
    profile_dir.join("producer")
}
