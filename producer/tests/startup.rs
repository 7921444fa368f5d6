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
fn a_missing_settings_file_is_named() {
    let (code, stderr) = run_with(&[("COURIER_CONFIG", "/nonexistent/courier.toml")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/courier.toml"), "{stderr}");
}
