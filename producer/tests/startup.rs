//! The `producer` binary refuses to start on a bad setting and says which one.

use std::process::Command;

fn run_with(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_producer"));
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("producer binary runs");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_bad_setting_stops_start_up_and_is_named() {
    let cases = [
        ("COURIER__KAFKA__SESSION_TIMEOUT_MS", "forty", "kafka.session_timeout_ms"),
        ("COURIER__PRODUCER__LISTEN", "localhost", "producer.listen"),
        ("COURIER__APIS__PAYMENT__BASE_URL", "pay", "apis.payment.base_url"),
        ("COURIER__PRODUCER__UNKNOWN_KEY", "1", "unknown_key"),
    ];
    for (key, value, setting) in cases {
        let (code, stderr) = run_with(&[(key, value)]);
        assert_eq!(code, Some(2), "{key}={value} must stop start-up; stderr: {stderr}");
        assert!(stderr.contains(setting), "{key}={value}: stderr does not name {setting}: {stderr}");
    }
}

#[test]
fn an_event_schema_that_cannot_be_used_stops_start_up_and_is_named_with_its_path() {
    let dir = std::env::temp_dir().join(format!("courier-startup-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let invalid = dir.join("invalid.json");
    std::fs::write(&invalid, r#"{"type": "objekt"}"#).expect("written");
    let missing = dir.join("missing.json");
    for (path, reason) in [(&missing, "cannot read"), (&invalid, "not a valid JSON Schema")] {
        let path = path.to_str().expect("UTF-8");
        // Refused before any broker is asked: nothing listens on port 1.
        let (code, stderr) = run_with(&[
            ("COURIER__PRODUCER__EVENTS__USERS__SCHEMA", path),
            ("COURIER__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1"),
            ("COURIER__PRODUCER__LISTEN", "127.0.0.1:0"),
            ("COURIER__TELEMETRY__LOG_LEVEL", "off"),
        ]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(&format!("producer.events.users.schema: {path}: ")), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
        // `--check` reads the file too, and says so before it asks the broker.
        let output = Command::new(env!("CARGO_BIN_EXE_producer"))
            .arg("--check")
            .env("COURIER__PRODUCER__EVENTS__USERS__SCHEMA", path)
            .env("COURIER__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
            .output()
            .expect("producer binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "--check: {stderr}");
        assert!(stderr.contains(&format!("producer.events.users.schema: {path}: ")), "--check: {stderr}");
    }
    std::fs::remove_dir_all(&dir).expect("removed");
}

#[test]
fn a_missing_settings_file_is_named() {
    let (code, stderr) = run_with(&[("COURIER_CONFIG", "/nonexistent/courier.toml")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/courier.toml"), "{stderr}");
}

#[test]
fn the_binary_says_its_version_and_what_it_is_and_checks_its_settings_without_printing_secrets() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let output = Command::new(env!("CARGO_BIN_EXE_producer"))
            .args(args)
            .envs(env.iter().copied())
            .env_remove("COURIER_CONFIG")
            .output()
            .expect("producer binary runs");
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        (output.status.code(), text(output.stdout), text(output.stderr))
    };
    let (code, out, _) = run(&["--version"], &[]);
    assert_eq!((code, out.trim()), (Some(0), concat!("producer ", env!("CARGO_PKG_VERSION"))));
    let (code, out, _) = run(&["--help"], &[]);
    assert_eq!(code, Some(0));
    assert!(out.contains("order API") && out.contains("--check"), "{out}");

    // Nothing listens on port 1: the check names the unreachable broker, and no API key is printed. The check
    // reads the default event schema, named here from the repository's root (the test runs in the crate's).
    let key = "a-producer-api-key-never-printed";
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/events/user.registered.json");
    let env = [
        ("COURIER__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1"),
        ("COURIER__PRODUCER__API_KEYS", key),
        ("COURIER__PRODUCER__EVENTS__USERS__SCHEMA", schema),
    ];
    let (code, out, err) = run(&["--check"], &env);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("api_keys") && !out.contains(key) && !err.contains(key), "{out}");
    assert!(err.contains("no Kafka broker answered at 127.0.0.1:1"), "{err}");
}
