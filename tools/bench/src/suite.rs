//! The whole benchmark: the closed-loop scenario matrix, the untuned defaults, the open-loop latency runs,
//! the `forward` rows and the producer side, in one run against one broker, printed as Markdown as it goes.

use std::time::Duration;

use clap::Args;

use crate::forward_rows::{Plan, ROWS, RowRuns};
use crate::report::{self, Row};
use crate::scenario::{BATCH_EVENTS, DRAIN_MARKS, Harness, Mode, Scenario, Throughput, Timing};

/// The benchmark's options.
#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// A small run (the target scenario only, short windows) that finishes in under two minutes.
    #[arg(long)]
    quick: bool,
    /// API latencies L to run, ms.
    #[arg(long, value_delimiter = ',', default_values_t = [0, 5, 20, 50])]
    latency_ms: Vec<u64>,
    /// Calls in flight C for courier and the ceiling.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 64, 512])]
    max_in_flight: Vec<usize>,
    /// Distinct keys K.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 100, 10_000])]
    keys: Vec<usize>,
    /// Partitions P of every topic.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Seconds from a worker's first delivery to the start of its measured window.
    #[arg(long, default_value_t = 2)]
    warmup_s: u64,
    /// Seconds each measured window lasts.
    #[arg(long, default_value_t = 10)]
    window_s: u64,
    /// Events preloaded per key count; by default enough for 20,000 events/s over a whole run.
    #[arg(long)]
    events: Option<usize>,
    /// Give every record the four headers the order API sets (see BENCHMARKS.md: Tansu 0.6.0 looks headers
    /// up with a scan of every header it stores, which then dominates).
    #[arg(long)]
    headers: bool,
    /// Skip the open-loop latency runs.
    #[arg(long)]
    no_open_loop: bool,
    /// Skip the producer side.
    #[arg(long)]
    no_producer: bool,
    /// Requests in flight for the producer side.
    #[arg(long, default_value_t = 64)]
    producer_concurrency: usize,
    /// Another build of the `inventory` binary (say, main's before a change), measured next to courier in every
    /// scenario of the matrix with the same settings: a before/after table from one run.
    #[arg(long, value_name = "PATH")]
    courier_before: Option<std::path::PathBuf>,
    /// A Vector binary: the target scenario then also runs Vector as a peer (its `kafka` source into its `http`
    /// sink), with its defaults and tuned, next to courier and the ceiling of the same run.
    #[arg(long, value_name = "PATH")]
    vector: Option<std::path::PathBuf>,
    /// Capacities N of the API for the adaptive-concurrency runs (L = 20 ms, K = 10,000): courier's defaults
    /// against the API's limit fixed at N/2, N, 2N, 4N and 512.
    #[arg(long, value_delimiter = ',', default_values_t = [16, 128])]
    capacity: Vec<usize>,
    /// Skip the adaptive-concurrency runs.
    #[arg(long)]
    no_capacity: bool,
    /// Skip the batching runs (`forward` with a call per event against batches, K = 10,000).
    #[arg(long)]
    no_batching: bool,
    /// Run the `forward` rows alone (records of each format, and each route setting a row names, against
    /// courier's CloudEvents passed through; K = 10,000): nothing else.
    #[arg(long, conflicts_with = "no_forward")]
    forward: bool,
    /// Skip the `forward` rows.
    #[arg(long)]
    no_forward: bool,
    /// Events of each `forward` row's backlog.
    #[arg(long, default_value_t = 150_000)]
    forward_events: usize,
    /// Runs of each `forward` row, a row after the other in each round; the medians are reported.
    #[arg(long, default_value_t = 3)]
    forward_rounds: usize,
    /// The API latency L of the `forward` rows, ms.
    #[arg(long, default_value_t = 20)]
    forward_latency_ms: u64,
}

/// The scenario the targets are stated for.
pub const TARGET: Scenario = Scenario { latency_ms: 20, max_in_flight: 512, keys: 10_000 };

/// Runs the benchmark.
pub async fn run(mut args: SuiteArgs) -> anyhow::Result<()> {
    if args.quick {
        args.latency_ms = vec![TARGET.latency_ms];
        args.max_in_flight = vec![TARGET.max_in_flight];
        args.keys = vec![TARGET.keys];
        args.warmup_s = args.warmup_s.min(1);
        args.window_s = args.window_s.min(3);
        args.no_capacity = true;
        args.no_batching = true;
        args.no_forward = !args.forward;
    }
    let timing = Timing { warmup: Duration::from_secs(args.warmup_s), window: Duration::from_secs(args.window_s) };
    let run_seconds = (args.warmup_s + args.window_s + 4) as usize;
    let events = args.events.unwrap_or(20_000 * run_seconds);
    if let Some(before) = &args.courier_before {
        anyhow::ensure!(before.is_file(), "--courier-before {}: no such file", before.display());
    }
    let peer = match &args.vector {
        Some(vector) => Some(crate::peer::version(vector)?),
        None => None,
    };
    let harness = Harness::start(args.partitions, args.headers, timing, args.courier_before.clone())
        .await?
        .with_peer(args.vector.clone());
    println!("# courier benchmark\n");
    println!("- machine: {}", crate::process::machine());
    if let Some(peer) = &peer {
        println!("- peer: {peer}");
    }
    if args.forward {
        println!("- load average at the start: {}", crate::process::load_average());
        let rows = forward_rows(&harness, &args).await?;
        println!("\n## Targets\n");
        report::forward_rows_targets(&rows);
        println!("\n- load average at the end: {}", crate::process::load_average());
        return Ok(());
    }
    println!(
        "- broker: Tansu (sqlite) on this machine; P = {} partitions; {events} events preloaded per key count; \
         records {} headers",
        args.partitions,
        if args.headers { "with the order API's four" } else { "without" }
    );
    println!(
        "- each run: a fresh consumer group from offset 0; {} s warm-up after the first delivery, then a {} s window",
        args.warmup_s, args.window_s
    );
    println!("- CPU shares are of one core (1.00 = a whole core) over the window: worker / broker / sink\n");

    let mut rows = Vec::new();
    let mut compared = Vec::new();
    let mut target = None;
    let mut target_topic = None;
    println!("## Throughput (closed loop over a preloaded backlog)\n");
    report::matrix_header();
    for &keys in &args.keys {
        let topic = harness.topic(&format!("k{keys}"));
        let took = harness.preload(&topic, events, keys).await?;
        eprintln!("preloaded {events} events with {keys} keys in {:.1} s", took.as_secs_f64());
        if keys == TARGET.keys {
            target_topic = Some(topic.clone());
        }
        for &latency_ms in &args.latency_ms {
            let first = Scenario { latency_ms, max_in_flight: args.max_in_flight[0], keys };
            let baseline = harness.closed_loop(Mode::Baseline, &topic, events, first).await?;
            for &max_in_flight in &args.max_in_flight {
                let scenario = Scenario { latency_ms, max_in_flight, keys };
                let courier = harness.closed_loop(Mode::Courier, &topic, events, scenario).await?;
                let ceiling = harness.closed_loop(Mode::Ceiling, &topic, events, scenario).await?;
                if args.courier_before.is_some() {
                    let before = harness.closed_loop(Mode::CourierBefore, &topic, events, scenario).await?;
                    compared.push((scenario, before, courier));
                }
                let row = Row { scenario, baseline, courier, ceiling };
                report::matrix_row(&row);
                rows.push(row);
            }
            if latency_ms == TARGET.latency_ms && keys == TARGET.keys {
                let defaults = harness.closed_loop(Mode::CourierDefaults, &topic, events, TARGET).await?;
                let short = harness.closed_loop(Mode::CourierShortFetchWait, &topic, events, TARGET).await?;
                let quiet = harness.closed_loop(Mode::CourierQuietLogs, &topic, events, TARGET).await?;
                let small = harness.closed_loop(Mode::CourierSmallFetch, &topic, events, TARGET).await?;
                let row = rows.iter().rev().find(|r| r.scenario == TARGET).copied();
                target = Some((report::TargetRuns { baseline, defaults, short, quiet, small }, row));
            }
        }
    }

    if !compared.is_empty() {
        println!("\n## Before and after (the same run: `--courier-before` against this build)\n");
        report::before_after(&compared);
    }

    let mut latencies = Vec::new();
    if let Some((runs, row)) = &target {
        let report::TargetRuns { baseline, defaults, short, quiet, small } = *runs;
        let ceiling = row.map(|r| r.ceiling);
        println!("\n## The target scenario: L = 20 ms, K = 10,000, P = {}, C = 512\n", args.partitions);
        let workers: Vec<(Mode, Throughput)> = [
            (Mode::Baseline, Some(baseline)),
            (Mode::CourierDefaults, Some(defaults)),
            (Mode::CourierShortFetchWait, Some(short)),
            (Mode::CourierQuietLogs, Some(quiet)),
            (Mode::CourierSmallFetch, Some(small)),
        ]
        .into_iter()
        .chain(row.map(|r| (Mode::Courier, Some(r.courier))))
        .chain(std::iter::once((Mode::Ceiling, ceiling)))
        .filter_map(|(mode, t)| t.map(|t| (mode, t)))
        .collect();
        report::detail_table(&workers);
        println!("\n### Capacity: what courier costs per event (target scenario)\n");
        report::capacity_plan(&[(Mode::CourierDefaults, defaults), (Mode::CourierSmallFetch, small)]);
        if let (Some(_), Some(ceiling), Some(topic)) = (&args.vector, ceiling, &target_topic) {
            println!("\n### Against a peer: Vector, on the same topic and sink in this run\n");
            let vector = harness.closed_loop(Mode::VectorDefaults, topic, events, TARGET).await?;
            let tuned = harness.closed_loop(Mode::VectorTuned, topic, events, TARGET).await?;
            let per_event = harness.closed_loop(Mode::VectorPerEvent, topic, events, TARGET).await?;
            let mut runs = vec![(Mode::CourierDefaults, defaults)];
            runs.extend(row.map(|r| (Mode::Courier, r.courier)));
            runs.extend([
                (Mode::VectorDefaults, vector),
                (Mode::VectorTuned, tuned),
                (Mode::VectorPerEvent, per_event),
            ]);
            report::peer_table(&runs, &ceiling);
        }
        if !args.no_open_loop {
            println!("\n## Latency (open loop: events produced at half of each worker's own maximum)\n");
            report::latency_header();
            for (mode, throughput) in
                workers.iter().filter(|(m, _)| !matches!(m, Mode::Courier | Mode::CourierQuietLogs))
            {
                // At half its own maximum, as every worker.
                let latency = harness.open_loop(*mode, TARGET, throughput.per_sec / 2.0).await?;
                report::latency_row(*mode, &latency);
                latencies.push((*mode, latency));
            }
        }
    }

    let mut capacities = Vec::new();
    if !args.no_capacity && !args.capacity.is_empty() {
        println!("\n## An API with a capacity: the adaptive limit against fixed ones (L = 20 ms, K = 10,000)\n");
        let topic = target_topic_or_preload(&harness, &mut target_topic, events).await?;
        for &capacity in args.capacity.iter().filter(|&&n| n > 0) {
            harness.sink.set_capacity(Some(capacity));
            let scenario = Scenario { max_in_flight: capacity, ..TARGET };
            let adaptive = harness.closed_loop(Mode::CourierDefaults, &topic, events, scenario).await?;
            let mut fixed = Vec::new();
            for limit in fixed_limits(capacity) {
                let scenario = Scenario { max_in_flight: limit, ..scenario };
                fixed.push((limit, harness.closed_loop(Mode::CourierFixedApiLimit, &topic, events, scenario).await?));
            }
            let runs = report::CapacityRuns { capacity, latency_ms: TARGET.latency_ms, adaptive, fixed };
            report::capacity_table(&runs);
            capacities.push(runs);
        }
        harness.sink.set_capacity(None);
    }

    if !args.no_batching {
        println!(
            "\n## Batching: `forward` with a call per event against batches of up to {BATCH_EVENTS} (K = 10,000)\n"
        );
        let topic = target_topic_or_preload(&harness, &mut target_topic, events).await?;
        let mut runs = Vec::new();
        for &latency_ms in &args.latency_ms {
            let scenario = Scenario { latency_ms, ..TARGET };
            let per_event = harness.closed_loop(Mode::ForwardPerEvent, &topic, events, scenario).await?;
            let batched = harness.closed_loop(Mode::ForwardBatched, &topic, events, scenario).await?;
            runs.push((latency_ms, per_event, batched));
        }
        report::batching_table(&runs);
    }

    let mut forwarded = Vec::new();
    if !args.no_forward {
        forwarded = forward_rows(&harness, &args).await?;
    }

    let mut producer = None;
    if !args.no_producer {
        println!("\n## Producer side: `POST /v1/orders` against a direct rdkafka produce loop\n");
        let topic = harness.topic("http");
        let settings = harness.settings(&topic)?;
        let (api, direct) =
            crate::producer_side::measure(&settings, args.producer_concurrency, Duration::from_secs(args.window_s))
                .await?;
        report::producer_table(args.producer_concurrency, &api, &direct);
        producer = Some((api, direct));
    }

    println!("\n## Targets\n");
    report::targets(&rows, target.as_ref().map(|(runs, _)| runs), &latencies, producer.as_ref(), &capacities);
    report::forward_rows_targets(&forwarded);
    Ok(())
}

/// Runs the `forward` rows and prints their table.
async fn forward_rows(harness: &Harness, args: &SuiteArgs) -> anyhow::Result<Vec<RowRuns>> {
    let plan = Plan {
        events: args.forward_events,
        keys: TARGET.keys,
        rounds: args.forward_rounds.max(1),
        latency_ms: args.forward_latency_ms,
    };
    let (from, to) = DRAIN_MARKS;
    println!(
        "\n## `forward` rows: CPU per event by format and route settings (L = {} ms, K = {}, P = {})\n",
        plan.latency_ms, plan.keys, args.partitions
    );
    println!(
        "Each row: `forward` with route `bench` to the sink, every default but the settings named, over a backlog of \
         {} events; {} rounds, a row after the other; medians. Measured from {:.0} % to {:.0} % of the backlog \
         delivered; events, delivered and calls are the sink's counts over each whole run.\n",
        plan.events,
        plan.rounds,
        from * 100.0,
        to * 100.0
    );
    let rows = crate::forward_rows::run(harness, ROWS, plan).await?;
    report::forward_rows_table(&rows);
    Ok(rows)
}

/// The topic with the target scenario's keys (K = 10,000): the matrix's, or one preloaded now, once.
async fn target_topic_or_preload(
    harness: &Harness,
    target_topic: &mut Option<String>,
    events: usize,
) -> anyhow::Result<String> {
    if let Some(topic) = target_topic {
        return Ok(topic.clone());
    }
    let topic = harness.topic(&format!("k{}", TARGET.keys));
    harness.preload(&topic, events, TARGET.keys).await?;
    *target_topic = Some(topic.clone());
    Ok(topic)
}

/// The fixed limits an API of capacity `n` is tried with: N/2, N, 2N, 4N and 512 (the default ceiling).
fn fixed_limits(n: usize) -> Vec<usize> {
    let mut limits = vec![(n / 2).max(1), n, 2 * n, 4 * n, 512];
    limits.sort_unstable();
    limits.dedup();
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_limits_bracket_the_capacity() {
        assert_eq!(fixed_limits(16), [8, 16, 32, 64, 512]);
        assert_eq!(fixed_limits(128), [64, 128, 256, 512]);
        assert_eq!(fixed_limits(1), [1, 2, 4, 512]);
    }
}
