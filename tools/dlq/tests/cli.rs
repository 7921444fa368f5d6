//! The `courier-dlq` binary as a process: `--help` documents examples and exit codes, bad arguments exit 2, a
//! cluster that does not answer exits 1 with the reason, nothing panics; and, against the test broker, a
//! replay killed with SIGKILL half way and run again sends every dead letter exactly once.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// Dead letters in each round of the kill test: three batches of sends.
const LETTERS: usize = 250;

/// The replay records on `topic` (its whole content), read until at least `expected` are there.
async fn replayed_records(
    bootstrap: &str,
    topic: &str,
    expected: usize,
) -> Vec<courier_tests::kafka_probe::ReadRecord> {
    courier_tests::kafka_probe::read_all(bootstrap, topic, expected, Duration::from_secs(30)).await.expect("read")
}

/// Records on `topic` now (the sum of its partitions' high watermarks).
async fn record_count(bootstrap: &str, topic: &str) -> i64 {
    courier_tests::kafka_probe::record_count(bootstrap, topic).await.expect("watermarks")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_killed_half_way_and_run_again_sends_every_dead_letter_once() {
    let broker = courier_tests::broker::broker().await;
    let mut resumed_rounds = 0;
    // Kill points before the first commit, inside later batches and near the end: five rounds.
    for (round, kill_at) in [15_i64, 60, 130, 190, 240].into_iter().enumerate() {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let target = format!("orders.created.kill{}", &unique[..10]);
        let dead_letters = format!("{target}.inventory.dlq");
        let env = [
            ("COURIER__KAFKA__BOOTSTRAP_SERVERS", broker.bootstrap.clone()),
            ("COURIER__KAFKA__GROUP_ID_PREFIX", format!("k{}-", &unique[..10])),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let settings = courier::settings::Settings::load_with_env(
            None,
            Some(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
        )
        .expect("settings");
        courier::kafka::ensure_topics(&settings.kafka, &settings.topics, &[&target, &dead_letters])
            .await
            .expect("topics");
        produce_dead_letters(&settings, &dead_letters, &target).await;

        // Slowed down so that the kill lands while records are being sent; killed once `kill_at` are on the
        // original topic.
        let mut child = Command::new(env!("CARGO_BIN_EXE_courier-dlq"))
            .args(["replay", &dead_letters, "--rate", "150"])
            .env_remove("COURIER_CONFIG")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("courier-dlq starts");
        let deadline = Instant::now() + courier_tests::WAIT;
        while record_count(&broker.bootstrap, &target).await < kill_at {
            assert!(Instant::now() < deadline, "round {round}: the replay never reached {kill_at} records");
            assert!(child.try_wait().expect("status").is_none(), "round {round}: the replay ended before the kill");
            // The broker has no event to await here: ask again shortly.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let at_kill = record_count(&broker.bootstrap, &target).await;

        let rerun = courier_dlq(&["replay", &dead_letters], &env);
        let out = text(&rerun.stdout);
        assert_eq!(rerun.status.code(), Some(0), "round {round}: {out}{}", text(&rerun.stderr));
        let resumed: usize = out
            .lines()
            .filter(|l| l.contains("already replayed by an interrupted run") && l.contains(&dead_letters))
            .count();
        resumed_rounds += usize::from(resumed > 0);

        let records = replayed_records(&broker.bootstrap, &target, LETTERS).await;
        let mut sent = std::collections::BTreeMap::<String, usize>::new();
        for record in &records {
            let from = record.header("courier.replay.from").expect("every record there is a replay");
            *sent.entry(from).or_default() += 1;
        }
        let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "round {round} (killed at {at_kill}): sent more than once: {twice:?}\n{out}\n{}",
            text(&rerun.stderr)
        );
        assert_eq!(
            (records.len(), sent.len()),
            (LETTERS, LETTERS),
            "round {round} (killed at {at_kill}): every dead letter sent once\n{out}"
        );
        // A third run finds nothing left to send.
        let again = courier_dlq(&["replay", &dead_letters], &env);
        assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
        assert!(text(&again.stdout).contains("replayed 0 of 0 dead letters read"), "{}", text(&again.stdout));
        assert_eq!(record_count(&broker.bootstrap, &target).await, LETTERS as i64);
    }
    assert!(resumed_rounds > 0, "no kill landed inside a batch: the look-back was never exercised");
}

/// Produces [`LETTERS`] dead letters of `original` (keyed, as inventory dead-letters them) to `topic`.
async fn produce_dead_letters(settings: &courier::settings::Settings, topic: &str, original: &str) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer =
        courier::kafka::producer_config(&settings.kafka, "test-dead-letters", Duration::from_secs(30))
            .create()
            .expect("producer");
    let mut pending = Vec::new();
    for i in 0..LETTERS {
        let (key, value) = (format!("order-{i}"), format!(r#"{{"id":"ev-{i}","type":"order.created"}}"#));
        let headers = [
            ("courier.dlq.original.topic", original.to_owned()),
            ("courier.dlq.original.offset", i.to_string()),
            ("courier.dlq.consumer", "inventory".to_owned()),
            ("courier.dlq.error.kind", "http_status".to_owned()),
            ("courier.dlq.http.status", "409".to_owned()),
        ];
        let headers = headers
            .iter()
            .fold(OwnedHeaders::new(), |h, (k, v)| h.insert(Header { key: k, value: Some(v.as_bytes()) }));
        let record = FutureRecord::to(topic).key(&key).payload(&value).headers(headers);
        pending.push(producer.send_result(record).map_err(|(e, _)| e).expect("queued"));
    }
    for delivery in pending {
        delivery.await.expect("not cancelled").map_err(|(e, _)| e).expect("acknowledged");
    }
}
