//! `bench`: measures courier's consumer runtime against two references on the same broker, API and events.
//!
//! * **courier**: the inventory consumer (key-ordered concurrency, watermark commits, retries, DLQ).
//! * **baseline**: one sequential at-least-once rdkafka consumer per partition in one group (recv → call the
//!   API → store the offset) — what Spring Kafka's `concurrency`, Kafka Connect tasks or more replicas give.
//! * **ceiling**: one rdkafka consumer handing every record to its own task, `max_in_flight` calls at once, no
//!   ordering and no offset tracking — incorrect, but it shows what this machine allows.
//!
//! The orchestrator starts a Tansu broker (sqlite) and the mock API (answering after L ms), preloads N events
//! over P partitions and K keys, then runs each worker as a child process (`bench worker …`) so that its CPU
//! time and peak RSS are its own (from /proc). Throughput is counted at the mock API.

mod workers;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use courier_tests::broker::TansuProcess;
use courier_tests::produce::{TestRecord, order_event, order_record, produce};
use mock_apis::{Api, Faults, MockApis, MockApisConfig};

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// What to run.
    #[command(subcommand)]
    command: Option<Command>,
    /// Events per scenario.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// API latency in ms.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Calls in flight for courier and the ceiling.
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// A small run that finishes in under two minutes.
    #[arg(long)]
    quick: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one worker (started by the orchestrator).
    Worker(workers::WorkerArgs),
}

/// What one worker run measured.
#[derive(Debug, Clone, Copy)]
struct Figures {
    /// Delivered events per second, first to last effect.
    per_sec: f64,
    /// Worker CPU seconds per 1,000 delivered events.
    cpu_per_1000: f64,
    /// Worker peak RSS in MiB.
    rss_mib: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.command {
        Some(Command::Worker(worker)) => runtime.block_on(workers::run(worker)),
        None => runtime.block_on(orchestrate(args)),
    }
}

async fn orchestrate(mut args: Args) -> anyhow::Result<()> {
    if args.quick {
        args.events = args.events.min(5_000);
    }
    let tansu = TansuProcess::start()?;
    courier_tests::broker::wait_until_reachable(&tansu.bootstrap, Duration::from_secs(60)).await?;
    let mock = MockApis::start(MockApisConfig::default()).await?;
    mock.set_faults(Api::Inventory, Faults { latency_ms: args.latency_ms, ..Faults::default() });
    let topic = format!("bench.orders.{}", std::process::id());
    let env = environment(&tansu.bootstrap, &topic, &mock, &args);
    let settings = courier::settings::Settings::load_with_env(None, Some(env.iter().cloned().collect()))?;

    let records: Vec<TestRecord> = (0..args.events)
        .map(|i| order_record(&order_event(&format!("key-{}", i % args.keys), &format!("SEQ-{i}")), None))
        .collect();
    let started = Instant::now();
    produce(&settings, &records).await.context("preloading events")?;
    println!(
        "preloaded {} events over {} partitions and {} keys in {:.1} s; API latency {} ms, max_in_flight {}",
        args.events,
        args.partitions,
        args.keys,
        started.elapsed().as_secs_f64(),
        args.latency_ms,
        args.max_in_flight
    );

    let mut results = Vec::new();
    for mode in ["baseline", "courier", "ceiling"] {
        mock.reset();
        let figures = run_worker(mode, &env, &mock, args.events).await?;
        println!(
            "{mode:<9} {:>9.0} events/s  {:>7.3} CPU s per 1,000  peak RSS {:>6.1} MiB",
            figures.per_sec, figures.cpu_per_1000, figures.rss_mib
        );
        results.push((mode, figures));
    }
    let get = |m: &str| results.iter().find(|(mode, _)| *mode == m).map(|(_, f)| *f).expect("measured");
    let (baseline, courier, ceiling) = (get("baseline"), get("courier"), get("ceiling"));
    let bound = (args.max_in_flight.min(args.keys) as f64) * 1000.0 / args.latency_ms.max(1) as f64;
    println!("\n| worker | events/s | CPU s / 1,000 events | peak RSS MiB |");
    println!("|---|---|---|---|");
    for (mode, f) in &results {
        println!("| {mode} | {:.0} | {:.3} | {:.1} |", f.per_sec, f.cpu_per_1000, f.rss_mib);
    }
    println!(
        "\ncourier/baseline = {:.1}x, courier/ceiling = {:.0} %, efficiency = {:.0} % of min(max_in_flight, K)·1000/L = {:.0}/s",
        courier.per_sec / baseline.per_sec,
        100.0 * courier.per_sec / ceiling.per_sec,
        100.0 * courier.per_sec / bound,
        bound
    );
    mock.shutdown().await;
    drop(tansu);
    Ok(())
}

/// The settings of every worker, as environment variables.
fn environment(bootstrap: &str, topic: &str, mock: &MockApis, args: &Args) -> Vec<(String, String)> {
    let mut env = vec![
        ("COURIER__KAFKA__BOOTSTRAP_SERVERS", bootstrap.to_owned()),
        ("COURIER__KAFKA__SESSION_TIMEOUT_MS", "6000".to_owned()),
        ("COURIER__KAFKA__HEARTBEAT_INTERVAL_MS", "1500".to_owned()),
        ("COURIER__KAFKA__MAX_POLL_INTERVAL_MS", "15000".to_owned()),
        ("COURIER__TOPICS__ORDERS_CREATED", topic.to_owned()),
        ("COURIER__TOPICS__PARTITIONS", args.partitions.to_string()),
        ("COURIER__CONSUMER__MAX_IN_FLIGHT", args.max_in_flight.to_string()),
        ("COURIER__CONSUMER__HEALTH_LISTEN", "127.0.0.1:0".to_owned()),
        ("COURIER__TELEMETRY__LOG_LEVEL", "warn".to_owned()),
        ("COURIER__APIS__INVENTORY__BASE_URL", mock.api_url("inventory")),
    ];
    env.push(("COURIER__PRODUCER__LISTEN", "127.0.0.1:0".to_owned()));
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Runs worker `mode` as a child process until every event arrived; measures it.
async fn run_worker(mode: &str, env: &[(String, String)], mock: &MockApis, events: usize) -> anyhow::Result<Figures> {
    let group = format!("bench-{mode}-{}", std::process::id());
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["worker", "--mode", mode, "--group", &group])
        .envs(env.iter().cloned())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("worker pid")?;
    let timeout = Duration::from_secs(600);
    mock.wait_for_effects(Api::Inventory, 1, timeout).await?;
    let cpu_start = cpu_seconds(pid)?;
    let effects = mock.wait_for_effects(Api::Inventory, events, timeout).await?;
    let cpu = cpu_seconds(pid)? - cpu_start;
    let rss_mib = peak_rss_kib(pid)? as f64 / 1024.0;
    child.kill().await?;
    let first = effects.iter().map(|e| e.received_at_unix_ms).min().unwrap_or(0);
    let last = effects.iter().map(|e| e.received_at_unix_ms).max().unwrap_or(0);
    let seconds = (last.saturating_sub(first) as f64 / 1000.0).max(0.001);
    Ok(Figures {
        per_sec: (events.saturating_sub(1)) as f64 / seconds,
        cpu_per_1000: cpu * 1000.0 / events as f64,
        rss_mib,
    })
}

/// User plus system CPU seconds of process `pid`.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Ok(ticks / 100.0)
}

/// Peak resident set size of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}
