//! The consumer binaries as an operator meets them first: `--version`, `--help` that says what the binary is,
//! `--check` that validates the settings, prints them with secrets redacted and connects to the cluster.

use courier_tests::broker::{broker, free_port};
use tokio::process::Command;

/// Runs `binary` with `args` and `env`; its exit code, standard output and standard error.
async fn run(binary: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(binary)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("COURIER_CONFIG")
        .output()
        .await
        .expect("the binary runs");
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(output.stdout), text(output.stderr))
}

const BINARIES: [(&str, &str); 3] = [
    (env!("CARGO_BIN_EXE_inventory"), "inventory consumer"),
    (env!("CARGO_BIN_EXE_payment"), "payment consumer"),
    (env!("CARGO_BIN_EXE_notification"), "notification consumer"),
];

#[tokio::test]
async fn every_binary_says_its_version_and_what_it_is() {
    for (binary, what) in BINARIES {
        let (code, out, _) = run(binary, &["--version"], &[]).await;
        assert_eq!(code, 0);
        assert!(out.trim().ends_with(env!("CARGO_PKG_VERSION")), "{out}");
        let (code, out, _) = run(binary, &["--help"], &[]).await;
        assert_eq!(code, 0);
        assert!(out.contains(what) && out.contains("--check") && out.contains("COURIER__"), "{out}");
    }
}

#[tokio::test]
async fn check_prints_the_settings_without_secrets_and_connects() {
    let broker = broker().await;
    let secret = "hunter2-token-never-printed";
    let env =
        [("COURIER__KAFKA__BOOTSTRAP_SERVERS", broker.bootstrap.as_str()), ("COURIER__APIS__PAYMENT__TOKEN", secret)];
    let (code, out, err) = run(BINARIES[1].0, &["--check"], &env).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&broker.bootstrap) && out.contains("lets us in: ok"), "{out}");
    assert!(out.contains("max_in_flight"), "the effective settings are printed: {out}");
    assert!(!out.contains(secret) && !err.contains(secret), "the token is redacted");

    let dead = format!("127.0.0.1:{}", free_port().expect("free port"));
    let (code, _, err) =
        run(BINARIES[0].0, &["--check"], &[("COURIER__KAFKA__BOOTSTRAP_SERVERS", dead.as_str())]).await;
    assert_eq!(code, 1);
    assert!(err.contains("no Kafka broker answered"), "{err}");

    let (code, _, err) = run(BINARIES[0].0, &["--check"], &[("COURIER__KAFKA__SECURITY_PROTOCOL", "tls")]).await;
    assert_eq!(code, 2, "a bad setting");
    assert!(err.contains("kafka.security_protocol"), "{err}");
}
