//! The `courier-dlq` binary as a process: `--help` documents examples and exit codes, bad arguments exit 2, a
//! cluster that does not answer exits 1 with the reason, nothing panics; and, against the test broker, a
//! replay killed with SIGKILL half way and run again (once the killed run's lock lapsed) sends every dead
//! letter exactly once, and one stopped by SIGINT or SIGTERM lets go of its lock at once.

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
    assert!(replay.contains("--restore-position") && replay.contains("--from-beginning"), "{replay}");
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["inspect"][..],
        &["replay"],
        &["replay", "x.dlq", "--rate", "0"],
        &["replay", "x.dlq", "--from-beginning", "--restore-position"],
        &["replay", "--from", "letters.jsonl", "--restore-position"],
        &["drain", "x.dlq", "--to", "f", "--from-beginning", "--restore-position"],
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
        // The killed run's lock lapses with its session: a short one, as in the other tests.
        let Round { target, dead_letters, env } = Round::new(&broker.bootstrap, 6000).await;
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut child = replay_until(&broker.bootstrap, &target, &dead_letters, &env, kill_at, round, "150").await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let at_kill = record_count(&broker.bootstrap, &target).await;

        let rerun = rerun_after_the_lock_lapsed(&["replay", &dead_letters], &env);
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

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_replay_lets_go_of_its_lock_at_once_and_a_rerun_sends_the_rest_once() {
    let broker = courier_tests::broker::broker().await;
    // courier's default session timeout: a lock kept until the session times out would hold a rerun 45 s.
    let Round { target, dead_letters, env } = Round::new(&broker.bootstrap, 45_000).await;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (round, (signal, code)) in [("-INT", 130), ("-TERM", 143)].into_iter().enumerate() {
        // Signalled once it sends (its handlers are installed by then), at a rate slow enough that the replay
        // is still sending when the signal arrives, however long a watermark query takes on a loaded machine.
        let at = record_count(&broker.bootstrap, &target).await + 20;
        let mut child = replay_until(&broker.bootstrap, &target, &dead_letters, &env, at, round, "25").await;
        let sent = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill runs");
        assert!(sent.success());
        assert_eq!(child.wait().expect("reaped").code(), Some(code), "{signal}: exits with 128 + the signal");
    }
    let started = Instant::now();
    let rerun = courier_dlq(&["replay", &dead_letters], &env);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun.stderr));
    assert!(started.elapsed() < Duration::from_secs(20), "the lock was free at once: {:?}", started.elapsed());
    let records = replayed_records(&broker.bootstrap, &target, LETTERS).await;
    let from: std::collections::HashSet<_> = records.iter().filter_map(|r| r.header("courier.replay.from")).collect();
    assert_eq!((records.len(), from.len()), (LETTERS, LETTERS), "every dead letter sent once");
}

/// A round's topics and settings.
struct Round {
    /// The original topic.
    target: String,
    /// Its dead-letter topic, holding [`LETTERS`] dead letters.
    dead_letters: String,
    /// The `COURIER__*` settings: the test broker, a group prefix of the round's own, `session_timeout_ms`.
    env: Vec<(&'static str, String)>,
}

impl Round {
    /// Topics of their own, with [`LETTERS`] dead letters, and groups with a session timeout of
    /// `session_timeout_ms`.
    async fn new(bootstrap: &str, session_timeout_ms: u32) -> Self {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let target = format!("orders.created.kill{}", &unique[..10]);
        let dead_letters = format!("{target}.inventory.dlq");
        let env = vec![
            ("COURIER__KAFKA__BOOTSTRAP_SERVERS", bootstrap.to_owned()),
            ("COURIER__KAFKA__GROUP_ID_PREFIX", format!("k{}-", &unique[..10])),
            ("COURIER__KAFKA__SESSION_TIMEOUT_MS", session_timeout_ms.to_string()),
            ("COURIER__KAFKA__HEARTBEAT_INTERVAL_MS", (session_timeout_ms / 4).to_string()),
            ("COURIER__KAFKA__MAX_POLL_INTERVAL_MS", (session_timeout_ms * 3).to_string()),
        ];
        let settings = courier::settings::Settings::load_with_env(
            None,
            Some(env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()),
        )
        .expect("settings");
        courier::kafka::ensure_topics(&settings.kafka, &settings.topics, &[&target, &dead_letters])
            .await
            .expect("topics");
        produce_dead_letters(&settings, &dead_letters, &target).await;
        Self { target, dead_letters, env }
    }
}

/// Starts the binary replaying `dead_letters` at `rate` letters a second, slowed down so that a signal lands
/// while records are being sent, and returns it once `at` records are on `target`.
async fn replay_until(
    bootstrap: &str,
    target: &str,
    dead_letters: &str,
    env: &[(&str, &str)],
    at: i64,
    round: usize,
    rate: &str,
) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_courier-dlq"))
        .args(["replay", dead_letters, "--rate", rate])
        .env_remove("COURIER_CONFIG")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("courier-dlq starts");
    let deadline = Instant::now() + courier_tests::WAIT;
    while record_count(bootstrap, target).await < at {
        assert!(Instant::now() < deadline, "round {round}: the replay never reached {at} records");
        assert!(child.try_wait().expect("status").is_none(), "round {round}: the replay ended before {at} records");
        // The broker has no event to await here: ask again shortly.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child
}

/// Runs `courier-dlq ARGS` until it is not refused for the lock a killed run holds until its session times
/// out (6 s here); the run that was not refused.
fn rerun_after_the_lock_lapsed(args: &[&str], env: &[(&str, &str)]) -> Output {
    let started = Instant::now();
    let deadline = started + courier_tests::WAIT;
    for refused in 0.. {
        let out = courier_dlq(args, env);
        let err = text(&out.stderr);
        if !err.contains("another courier-dlq replay or drain") {
            println!("rerun after the kill: {refused} refused, went on {:?} after the kill", started.elapsed());
            return out;
        }
        assert!(Instant::now() < deadline, "the killed run's lock never lapsed: {err}");
        assert!(err.contains("kafka.session_timeout_ms, 6000 ms"), "{err}");
    }
    unreachable!("the loop returns or fails")
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
