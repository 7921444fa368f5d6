//! The harness (broker, sink, worker processes) and the two kinds of run it measures: a closed-loop run
//! over a preloaded backlog (throughput, CPU, memory) and an open-loop run at a fixed rate (latency).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use courier::settings::Settings;
use courier_tests::broker::TansuProcess;
use tokio::process::Child;

use crate::load::{Encoding, Loader};
use crate::peer::Tuning;
use crate::process::{self, Memory};
use crate::sink::{Run, Sink};

/// The worker being measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One sequential consumer per partition in one group.
    Baseline,
    /// courier's `inventory` binary with `max_in_flight` set by the scenario.
    Courier,
    /// courier's `inventory` binary with nothing tuned: every setting at its default.
    CourierDefaults,
    /// courier's inventory consumer with every default but `kafka.fetch_wait_max_ms` (see BENCHMARKS.md).
    CourierShortFetchWait,
    /// courier's `inventory` binary with every default but `telemetry.log_level = "warn"`: what the info log
    /// line and the span of each event cost.
    CourierQuietLogs,
    /// courier's `inventory` binary with every default but its fetches: at most [`SMALL_FETCH_BYTES`] per
    /// fetch (`fetch.max.bytes`), answered as soon as there are records (`kafka.fetch_wait_max_ms` =
    /// [`SHORT_FETCH_WAIT_MS`]). Apache Kafka bounds each partition's part of a fetch response
    /// (`max.partition.fetch.bytes`, 1 MiB) and answers at once when it has records; Tansu 0.6.0 does
    /// neither (BENCHMARKS.md), and its large fetches fill courier's partition queues several times over.
    /// This is courier's memory with fetches like Apache Kafka's.
    CourierSmallFetch,
    /// One consumer, a task per record, `max_in_flight` at once, no order, no offsets.
    Ceiling,
    /// Another build of the `inventory` binary (`--courier-before`), run as [`Mode::Courier`] is.
    CourierBefore,
    /// courier's `inventory` binary with every default but the API's limit of calls in flight: fixed
    /// (`apis.inventory.adaptive_concurrency = false`) at the scenario's C (`apis.inventory.max_in_flight`).
    CourierFixedApiLimit,
    /// courier's `forward` binary, one route to the sink, every default: a call per event (the event as
    /// published, structured mode).
    ForwardPerEvent,
    /// The same route with `batch_max_events` = [`BATCH_EVENTS`]: up to that many events in one call.
    ForwardBatched,
    /// The peer, Vector (`--vector`), with its defaults ([`Tuning::Defaults`]).
    VectorDefaults,
    /// The peer with [`crate::peer::TUNED`] ([`Tuning::Tuned`]).
    VectorTuned,
    /// The peer with [`crate::peer::PER_EVENT`] ([`Tuning::PerEvent`]): a call per event.
    VectorPerEvent,
}

/// `batch_max_events` of [`Mode::ForwardBatched`].
pub const BATCH_EVENTS: usize = 100;

/// `kafka.fetch_wait_max_ms` of [`Mode::CourierShortFetchWait`] and [`Mode::CourierSmallFetch`].
pub const SHORT_FETCH_WAIT_MS: u32 = 10;

/// `fetch.max.bytes` of [`Mode::CourierSmallFetch`]: Apache Kafka's bound on one partition's part of a fetch.
pub const SMALL_FETCH_BYTES: u32 = 1024 * 1024;

impl Mode {
    /// The name printed in tables.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Baseline => "baseline",
            Mode::Courier => "courier",
            Mode::CourierDefaults => "courier (defaults)",
            Mode::CourierShortFetchWait => "courier (defaults, fetch_wait_max_ms = 10)",
            Mode::CourierQuietLogs => "courier (defaults, log_level = warn)",
            Mode::CourierSmallFetch => "courier (defaults, fetch.max.bytes = 1 MiB, fetch_wait_max_ms = 10)",
            Mode::Ceiling => "ceiling",
            Mode::CourierBefore => "courier (before)",
            Mode::CourierFixedApiLimit => "courier (defaults, fixed API limit)",
            Mode::ForwardPerEvent => "forward (defaults: a call per event)",
            Mode::ForwardBatched => "forward (defaults, batch_max_events = 100)",
            Mode::VectorDefaults => "Vector (defaults)",
            Mode::VectorTuned => "Vector (tuned)",
            Mode::VectorPerEvent => "Vector (a call per event)",
        }
    }

    /// The `bench worker --mode` value.
    fn worker(self) -> &'static str {
        match self {
            Mode::Baseline => "baseline",
            Mode::Courier
            | Mode::CourierDefaults
            | Mode::CourierShortFetchWait
            | Mode::CourierQuietLogs
            | Mode::CourierSmallFetch
            | Mode::CourierBefore
            | Mode::CourierFixedApiLimit => "courier",
            Mode::ForwardPerEvent | Mode::ForwardBatched => "forward",
            Mode::Ceiling => "ceiling",
            Mode::VectorDefaults | Mode::VectorTuned | Mode::VectorPerEvent => "vector",
        }
    }
}

/// One point of the scenario matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// API latency in ms.
    pub latency_ms: u64,
    /// Calls in flight allowed to courier and the ceiling.
    pub max_in_flight: usize,
    /// Distinct keys.
    pub keys: usize,
}

impl Scenario {
    /// min(max_in_flight, K)·1000/L: what key-ordered concurrency allows before the CPU binds (∞ at L = 0).
    pub fn bound(self) -> f64 {
        (self.max_in_flight.min(self.keys) as f64) * 1000.0 / self.latency_ms as f64
    }
}

/// How long runs last.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// From the first delivery to the start of the measurement (group joins, connection pools, caches).
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
}

/// Share of one core each process took during a window (1.0 = a whole core).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuShare {
    /// The worker.
    pub worker: f64,
    /// The broker.
    pub broker: f64,
    /// This process: the sink, and in open-loop runs the producer.
    pub harness: f64,
}

/// What a closed-loop run measured.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Events delivered per second in the window.
    pub per_sec: f64,
    /// Worker CPU seconds per 1,000 events delivered in the window.
    pub cpu_per_1000: f64,
    /// CPU share of each process in the window.
    pub cpu: CpuShare,
    /// Worker memory at the start of the window.
    pub memory_start: Memory,
    /// Worker memory at the end of the window (its peak is over the whole run).
    pub memory_end: Memory,
    /// Repeated deliveries over the whole run.
    pub duplicates: u64,
    /// Deliveries that overtook a later event of their key.
    pub out_of_order: u64,
    /// The backlog ran out before the window ended: the rate is a lower bound.
    pub ran_dry: bool,
    /// Requests the sink answered 429 in the window (only a sink with a capacity does).
    pub throttled: u64,
    /// Requests the sink answered 429 over the whole run.
    pub throttled_run: u64,
    /// 99th percentile of the latency of the answers the sink served in the window, ms (NaN: no capacity
    /// set, latencies are not kept).
    pub api_p99_ms: f64,
}

impl Throughput {
    /// How much the worker's RSS grew across the window, in MiB.
    pub fn growth_mib(&self) -> f64 {
        self.memory_end.now_mib - self.memory_start.now_mib
    }
}

/// What an open-loop run measured.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Events produced per second.
    pub rate: f64,
    /// Events produced in the window (their latency is measured).
    pub measured: usize,
    /// Of those, events that never arrived.
    pub missing: usize,
    /// Produce-to-API latency percentiles, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Worst, ms.
    pub max_ms: f64,
    /// CPU share of each process while events were produced.
    pub cpu: CpuShare,
}

/// What a run over a whole backlog measured ([`Harness::drain`]).
#[derive(Debug, Clone, Copy)]
pub struct Drained {
    /// Events delivered per second between the two marks ([`DRAIN_MARKS`]).
    pub per_sec: f64,
    /// Worker CPU µs per event delivered between the marks.
    pub cpu_us: f64,
    /// CPU share of each process between the marks.
    pub cpu: CpuShare,
    /// Highest resident set size of the worker over the run, MiB.
    pub peak_mib: f64,
    /// Events of the backlog.
    pub events: u64,
    /// Distinct events the sink saw.
    pub delivered: u64,
    /// Requests the sink received.
    pub calls: u64,
    /// Repeated deliveries.
    pub duplicates: u64,
    /// Deliveries that overtook a later event of their key.
    pub out_of_order: u64,
    /// Requests the sink could not read (a body naming no event, or an event outside the backlog).
    pub unreadable: u64,
}

impl Drained {
    /// Every event of the backlog arrived, and every request named one.
    pub fn complete(&self) -> bool {
        self.delivered == self.events && self.unreadable == 0
    }
}

/// The share of the backlog delivered when the measurement starts and when it ends: the group's start and
/// the last partitions' tail are left out.
pub const DRAIN_MARKS: (f64, f64) = (0.2, 0.9);

/// How long a run may go without a delivery before it is taken as stalled (its missing events are reported).
const STALL: Duration = Duration::from_secs(15);

/// The broker, the sink and what every worker is told.
pub struct Harness {
    /// The broker (Tansu, sqlite storage).
    tansu: TansuProcess,
    /// The API.
    pub sink: Sink,
    /// Partitions of every topic.
    partitions: i32,
    /// Whether records carry the order API's four headers.
    headers: bool,
    /// Run lengths.
    pub timing: Timing,
    /// Topics and groups named so far (each gets a fresh name).
    topics: std::sync::atomic::AtomicUsize,
    /// The `inventory` binary [`Mode::CourierBefore`] runs.
    before: Option<std::path::PathBuf>,
    /// The Vector binary [`Mode::VectorDefaults`] and [`Mode::VectorTuned`] run.
    vector: Option<std::path::PathBuf>,
}

/// Process figures at one instant.
struct Snapshot {
    /// When.
    at: Instant,
    /// When, in µs since the Unix epoch (the sink's clock).
    unix: u64,
    /// Events delivered so far.
    delivered: u64,
    /// Requests answered 429 so far.
    throttled: u64,
    /// CPU seconds of the worker, the broker and this process.
    cpu: [f64; 3],
    /// Worker memory.
    memory: Memory,
}

impl Harness {
    /// Starts the broker and the sink.
    pub async fn start(
        partitions: i32,
        headers: bool,
        timing: Timing,
        before: Option<std::path::PathBuf>,
    ) -> anyhow::Result<Self> {
        let tansu = TansuProcess::start()?;
        courier_tests::broker::wait_until_reachable(&tansu.bootstrap, Duration::from_secs(60)).await?;
        let sink = Sink::start().await?;
        Ok(Self { tansu, sink, partitions, headers, timing, topics: Default::default(), before, vector: None })
    }

    /// The same harness, running `vector` as the peer.
    pub fn with_peer(self, vector: Option<std::path::PathBuf>) -> Self {
        Self { vector, ..self }
    }

    /// A fresh topic name.
    pub fn topic(&self, kind: &str) -> String {
        let n = self.topics.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("bench.{kind}.{}.{n}", std::process::id())
    }

    /// The settings every process gets, as `COURIER__…` variables: broker, topic, API, ports. Nothing else:
    /// courier logs as it does for a user.
    fn environment(&self, topic: &str) -> Vec<(String, String)> {
        [
            ("COURIER__KAFKA__BOOTSTRAP_SERVERS", self.tansu.bootstrap.clone()),
            ("COURIER__TOPICS__ORDERS_CREATED", topic.to_owned()),
            ("COURIER__TOPICS__PARTITIONS", self.partitions.to_string()),
            ("COURIER__CONSUMER__HEALTH_LISTEN", "127.0.0.1:0".to_owned()),
            ("COURIER__PRODUCER__LISTEN", "127.0.0.1:0".to_owned()),
            ("COURIER__APIS__INVENTORY__BASE_URL", self.sink.url()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Settings for `topic`, for this process's own clients.
    pub fn settings(&self, topic: &str) -> anyhow::Result<Settings> {
        Ok(Settings::load_with_env(None, Some(self.environment(topic).into_iter().collect()))?)
    }

    /// Creates `topic` and puts `events` events with `keys` keys on it.
    pub async fn preload(&self, topic: &str, events: usize, keys: usize) -> anyhow::Result<Duration> {
        self.preload_encoded(topic, events, keys, Encoding::CloudEvents).await
    }

    /// The same, the events in `encoding`.
    pub async fn preload_encoded(
        &self,
        topic: &str,
        events: usize,
        keys: usize,
        encoding: Encoding,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let settings = self.settings(topic)?;
        Loader::encoding(&settings, topic, keys, self.headers, encoding).await?.preload(events).await?;
        Ok(started.elapsed())
    }

    /// Starts worker `mode` on `topic` in a fresh group.
    fn spawn(&self, mode: Mode, topic: &str, scenario: Scenario) -> anyhow::Result<Child> {
        // A fresh group per run: a killed worker's group is never joined again.
        let group =
            format!("{}-{}-{}", topic, mode.worker(), self.topics.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let mut env = self.environment(topic);
        let defaults = matches!(
            mode,
            Mode::CourierDefaults
                | Mode::CourierShortFetchWait
                | Mode::CourierQuietLogs
                | Mode::CourierSmallFetch
                | Mode::CourierFixedApiLimit
                | Mode::ForwardPerEvent
                | Mode::ForwardBatched
        );
        if mode == Mode::CourierFixedApiLimit {
            env.push(("COURIER__APIS__INVENTORY__ADAPTIVE_CONCURRENCY".to_owned(), "false".to_owned()));
            env.push(("COURIER__APIS__INVENTORY__MAX_IN_FLIGHT".to_owned(), scenario.max_in_flight.to_string()));
        } else if !defaults {
            env.push(("COURIER__CONSUMER__MAX_IN_FLIGHT".to_owned(), scenario.max_in_flight.to_string()));
        }
        if mode == Mode::CourierQuietLogs {
            env.push(("COURIER__TELEMETRY__LOG_LEVEL".to_owned(), "warn".to_owned()));
        }
        if matches!(mode, Mode::CourierShortFetchWait | Mode::CourierSmallFetch) {
            env.push(("COURIER__KAFKA__FETCH_WAIT_MAX_MS".to_owned(), SHORT_FETCH_WAIT_MS.to_string()));
        }
        if mode == Mode::CourierSmallFetch {
            env.push(("COURIER__KAFKA__PROPERTIES__FETCH_MAX_BYTES".to_owned(), SMALL_FETCH_BYTES.to_string()));
        }
        let command = match mode.worker() {
            "courier" => {
                // The binary a user runs: courier's inventory consumer, next to this one (or the other build
                // compared with it).
                let binary = match (&self.before, mode) {
                    (Some(before), Mode::CourierBefore) => before.clone(),
                    _ => std::env::current_exe()?.with_file_name("inventory"),
                };
                anyhow::ensure!(
                    binary.exists(),
                    "{} is missing: cargo build --release --bin inventory (scripts/bench.sh does)",
                    binary.display()
                );
                env.push(("COURIER__KAFKA__GROUP_ID_PREFIX".to_owned(), format!("{group}-")));
                tokio::process::Command::new(binary)
            }
            "forward" => {
                if mode == Mode::ForwardBatched {
                    env.push((
                        "COURIER__FORWARD__ROUTES__BENCH__BATCH_MAX_EVENTS".to_owned(),
                        BATCH_EVENTS.to_string(),
                    ));
                }
                forward_command(topic, &group, &mut env)?
            }
            "vector" => {
                let binary = self.vector.as_ref().context("a Vector run without --vector")?;
                let tuning = match mode {
                    Mode::VectorTuned => Tuning::Tuned,
                    Mode::VectorPerEvent => Tuning::PerEvent,
                    _ => Tuning::Defaults,
                };
                let uri = format!("{}/reservations", self.sink.url());
                let config = std::env::temp_dir().join(format!("bench-vector-{}.toml", std::process::id()));
                std::fs::write(&config, crate::peer::config(tuning, &self.tansu.bootstrap, topic, &group, &uri)?)
                    .with_context(|| format!("writing {}", config.display()))?;
                // Vector reads its settings from its config alone: courier's variables are not passed.
                env.clear();
                let mut command = tokio::process::Command::new(binary);
                command.arg("--config").arg(config);
                command
            }
            worker => {
                let mut command = tokio::process::Command::new(std::env::current_exe()?);
                command.args(["worker", "--mode", worker, "--group", &group]);
                command
            }
        };
        let log = match mode {
            Mode::VectorDefaults => "vector-defaults",
            Mode::VectorTuned => "vector-tuned",
            Mode::VectorPerEvent => "vector-per-event",
            _ => mode.worker(),
        };
        launch(command, env, defaults, log)
    }

    /// Starts `forward` on `topic` in a fresh group: route `bench` to the sink with every default but
    /// `settings` (`COURIER__…` variables).
    fn spawn_forward(&self, topic: &str, log: &str, settings: &[(String, String)]) -> anyhow::Result<Child> {
        let group = format!("{topic}-forward-{}", self.topics.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let mut env = self.environment(topic);
        let command = forward_command(topic, &group, &mut env)?;
        env.extend_from_slice(settings);
        launch(command, env, true, log)
    }

    fn snapshot(&self, worker: u32, run: &Run) -> anyhow::Result<Snapshot> {
        let broker = self.tansu.broker_pid().context("the broker's process id")?;
        Ok(Snapshot {
            at: Instant::now(),
            unix: crate::sink::unix_micros(),
            delivered: run.delivered(),
            throttled: run.throttled(),
            cpu: [
                process::cpu_seconds(worker)?,
                process::cpu_seconds(broker)?,
                process::cpu_seconds(std::process::id())?,
            ],
            memory: process::memory(worker)?,
        })
    }

    /// Runs `mode` over the `events` preloaded on `topic`; measures the window after the warm-up.
    pub async fn closed_loop(
        &self,
        mode: Mode,
        topic: &str,
        events: usize,
        scenario: Scenario,
    ) -> anyhow::Result<Throughput> {
        self.sink.set_latency(Duration::from_millis(scenario.latency_ms));
        let run = self.sink.start_run(events, scenario.keys);
        let mut worker = self.spawn(mode, topic, scenario)?;
        let pid = worker.id().context("worker pid")?;
        run.wait_for(1, Duration::from_secs(120)).await.with_context(|| format!("{} never started", mode.label()))?;
        tokio::time::sleep(self.timing.warmup).await;
        let start = self.snapshot(pid, &run)?;
        tokio::time::sleep(self.timing.window).await;
        let end = self.snapshot(pid, &run)?;
        worker.kill().await?;
        if run.unknown() > 0 {
            eprintln!("warning: {} requests of {} named no event of its run", run.unknown(), mode.label());
        }
        let seconds = end.at.duration_since(start.at).as_secs_f64();
        let delivered = end.delivered.saturating_sub(start.delivered);
        Ok(Throughput {
            per_sec: delivered as f64 / seconds,
            cpu_per_1000: (end.cpu[0] - start.cpu[0]) * 1000.0 / (delivered.max(1) as f64),
            cpu: share(&start, &end, seconds),
            memory_start: start.memory,
            memory_end: end.memory,
            duplicates: run.duplicates(),
            out_of_order: run.out_of_order(),
            ran_dry: end.delivered >= events as u64,
            throttled: end.throttled - start.throttled,
            throttled_run: run.throttled(),
            api_p99_ms: percentile(&run.served_between(start.unix, end.unix), 0.99),
        })
    }

    /// Runs `forward` (route `bench`, every default but `settings`) over the `events` preloaded on `topic` (with
    /// `keys` keys) against the sink answering after `latency_ms`, until every event arrived or deliveries
    /// stalled; measures between the [`DRAIN_MARKS`] and counts what the sink received over the whole run.
    pub async fn drain(
        &self,
        label: &str,
        topic: &str,
        (events, keys): (usize, usize),
        latency_ms: u64,
        settings: &[(String, String)],
    ) -> anyhow::Result<Drained> {
        self.sink.set_latency(Duration::from_millis(latency_ms));
        let run = self.sink.start_run(events, keys);
        let mut worker = self.spawn_forward(topic, &format!("forward-{label}"), settings)?;
        let pid = worker.id().context("worker pid")?;
        let total = events as u64;
        let mark = |share: f64| ((total as f64 * share) as u64).max(1);
        let mut window = None;
        if reach(&run, 1, Duration::from_secs(120)).await && reach(&run, mark(DRAIN_MARKS.0), STALL).await {
            let start = self.snapshot(pid, &run)?;
            if reach(&run, mark(DRAIN_MARKS.1), STALL).await {
                window = Some((start, self.snapshot(pid, &run)?));
            }
        }
        let _ = reach(&run, total, STALL).await;
        // A worker that exited on its own has no memory left to read: its figures are NaN.
        let peak_mib = process::memory(pid).map_or(f64::NAN, |m| m.peak_mib);
        worker.kill().await?;
        let (per_sec, cpu_us, cpu) = match window {
            Some((start, end)) => {
                let seconds = end.at.duration_since(start.at).as_secs_f64();
                let delivered = end.delivered.saturating_sub(start.delivered).max(1) as f64;
                (delivered / seconds, (end.cpu[0] - start.cpu[0]) * 1e6 / delivered, share(&start, &end, seconds))
            }
            None => (f64::NAN, f64::NAN, CpuShare::default()),
        };
        Ok(Drained {
            per_sec,
            cpu_us,
            cpu,
            peak_mib,
            events: total,
            delivered: run.delivered(),
            calls: run.calls(),
            duplicates: run.duplicates(),
            out_of_order: run.out_of_order(),
            unreadable: run.rejected() + run.unknown(),
        })
    }

    /// Runs `mode` while events are produced at `rate` per second (K = `scenario.keys`); measures the
    /// produce-to-API latency of the events produced after the warm-up.
    pub async fn open_loop(&self, mode: Mode, scenario: Scenario, rate: f64) -> anyhow::Result<Latency> {
        let topic = self.topic("open");
        let loader = Loader::new(&self.settings(&topic)?, &topic, scenario.keys, self.headers).await?;
        let Timing { warmup, window } = self.timing;
        // Room for the primers, then the events of the run.
        let primers = 1_000;
        let total = primers + (rate * (warmup + window).as_secs_f64()).round() as usize + 1;
        self.sink.set_latency(Duration::from_millis(scenario.latency_ms));
        let run: Arc<Run> = self.sink.start_run(total, scenario.keys);
        let mut worker = self.spawn(mode, &topic, scenario)?;
        let pid = worker.id().context("worker pid")?;
        // One event at a time until the worker answers, so that the run starts with the worker in its group.
        let mut primed = 0;
        loop {
            anyhow::ensure!(primed < primers, "{} did not start within {primers} primer events", mode.label());
            loader.one(primed).await?;
            primed += 1;
            if run.wait_for(1, Duration::from_millis(200)).await.is_ok() {
                break;
            }
        }
        // Whatever primers are still on their way arrive before the run starts.
        run.wait_for(primed as u64, Duration::from_secs(60)).await?;
        let start = self.snapshot(pid, &run)?;
        let stamps = loader.open_loop(primed, rate, warmup + window).await?;
        let end = self.snapshot(pid, &run)?;
        let measured_from = stamps.first().copied().unwrap_or(0) + warmup.as_micros() as u64;
        let measured: Vec<(usize, u64)> =
            (primed..).zip(stamps.iter().copied()).filter(|&(_, stamp)| stamp >= measured_from).collect();
        // Every event produced is waited for (a late one is a latency figure, not a loss), within reason.
        let _ = run.wait_for((primed + stamps.len()) as u64, Duration::from_secs(30)).await;
        worker.kill().await?;
        let mut latencies: Vec<f64> = measured
            .iter()
            .filter_map(|&(seq, stamp)| run.arrival(seq).map(|at| at.saturating_sub(stamp) as f64 / 1000.0))
            .collect();
        latencies.sort_by(f64::total_cmp);
        let seconds = end.at.duration_since(start.at).as_secs_f64();
        Ok(Latency {
            rate,
            measured: measured.len(),
            missing: measured.len() - latencies.len(),
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            max_ms: latencies.last().copied().unwrap_or(f64::NAN),
            cpu: share(&start, &end, seconds),
        })
    }
}

/// The `forward` binary next to this one, as route `bench` reading `topic` in consumer group `group` and
/// calling the sink (the `inventory` API's base URL); its variables go to `env`.
fn forward_command(
    topic: &str,
    group: &str,
    env: &mut Vec<(String, String)>,
) -> anyhow::Result<tokio::process::Command> {
    let binary = std::env::current_exe()?.with_file_name("forward");
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: cargo build --release --bin forward (scripts/bench.sh does)",
        binary.display()
    );
    env.push(("COURIER__KAFKA__GROUP_ID_PREFIX".to_owned(), format!("{group}-")));
    env.push(("COURIER__FORWARD__ROUTES__BENCH__TOPICS".to_owned(), topic.to_owned()));
    env.push(("COURIER__FORWARD__ROUTES__BENCH__API".to_owned(), "inventory".to_owned()));
    Ok(tokio::process::Command::new(binary))
}

/// Starts `command` with `env`, its logs in `bench-<log>.log` of the temporary directory; with `defaults`, the
/// caller's own `COURIER__…` variables are removed first.
fn launch(
    mut command: tokio::process::Command,
    env: Vec<(String, String)>,
    defaults: bool,
    log: &str,
) -> anyhow::Result<Child> {
    // Settings in the caller's environment reach courier (to try a tuning), never the defaults run.
    if defaults {
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("COURIER__")) {
            command.env_remove(key);
        }
    }
    // A worker's logs (on stderr, at courier's default level, as for a user) go to a file, as a container's
    // go to its log driver: the bench's own output is the report.
    let log = std::env::temp_dir().join(format!("bench-{log}.log"));
    let log = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    Ok(command.envs(env).stdout(std::process::Stdio::null()).stderr(log).kill_on_drop(true).spawn()?)
}

/// Waits until `run` has `n` events, for as long as deliveries keep coming: false once none arrived for
/// `stall`.
async fn reach(run: &Run, n: u64, stall: Duration) -> bool {
    let mut seen = run.delivered();
    loop {
        if run.wait_for(n, stall).await.is_ok() {
            return true;
        }
        let now = run.delivered();
        if now == seen {
            return false;
        }
        seen = now;
    }
}

/// CPU share of each process between two snapshots `seconds` apart.
fn share(start: &Snapshot, end: &Snapshot, seconds: f64) -> CpuShare {
    let of = |i: usize| (end.cpu[i] - start.cpu[i]) / seconds;
    CpuShare { worker: of(0), broker: of(1), harness: of(2) }
}

/// The `q` quantile of sorted `values` (nearest rank); NaN when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.50), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn the_bound_is_key_ordered_concurrency_over_latency() {
        let s = Scenario { latency_ms: 20, max_in_flight: 512, keys: 10_000 };
        assert_eq!(s.bound(), 25_600.0);
        assert_eq!(Scenario { keys: 1, ..s }.bound(), 50.0);
    }
}
