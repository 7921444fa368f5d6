//! The `courier-dlq` binary without a broker: `--help` documents examples and exit codes, bad arguments exit
//! 2, a cluster that does not answer exits 1 with the reason, and nothing panics.

use std::process::{Command, Output};

/// Runs the built binary with `args` and `env`.
fn courier_dlq(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_courier-dlq"));
    command.args(args).env_remove("COURIER_CONFIG");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("courier-dlq runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_shows_the_subcommands_examples_and_exit_codes() {
    let out = courier_dlq(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for needle in
        ["list", "inspect", "replay", "drain", "Examples:", "Exit codes: 0 ok; 1 failure", "2 usage", "--config"]
    {
        assert!(help.contains(needle), "--help lacks {needle}: {help}");
    }
    let replay = text(&courier_dlq(&["replay", "--help"], &[]).stdout);
    assert!(replay.contains("--max-replays") && replay.contains("[default: 3]"), "{replay}");
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["inspect"][..],
        &["replay"],
        &["replay", "x.dlq", "--rate", "0"],
        &["inspect", "x.dlq", "--offset", "9..1"],
        &["inspect", "x.dlq", "--since", "yesterday"],
        &["frobnicate"],
    ] {
        let out = courier_dlq(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(!text(&out.stderr).contains("panicked"), "{args:?}");
    }
    let bad_setting = courier_dlq(&["list"], &[("COURIER__KAFKA__NO_SUCH_KEY", "1")]);
    assert_eq!(bad_setting.status.code(), Some(2), "{}", text(&bad_setting.stderr));
}

#[test]
fn a_cluster_that_does_not_answer_exits_1_with_the_reason() {
    // Nothing listens on port 1.
    let out = courier_dlq(&["list"], &[("COURIER__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("courier-dlq: no Kafka broker answered at 127.0.0.1:1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
