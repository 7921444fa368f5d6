//! Markdown tables of the figures, and the verdict on each target.

use crate::forward_rows::RowRuns;
use crate::producer_side::Requests;
use crate::scenario::{CpuShare, Drained, Latency, Mode, Scenario, Throughput};

/// One point of the matrix: the three workers on the same backlog.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The scenario.
    pub scenario: Scenario,
    /// One sequential consumer per partition (C does not apply).
    pub baseline: Throughput,
    /// courier.
    pub courier: Throughput,
    /// The unordered ceiling.
    pub ceiling: Throughput,
}

fn shares(cpu: &CpuShare) -> String {
    format!("{:.2} / {:.2} / {:.2}", cpu.worker, cpu.broker, cpu.harness)
}

fn notes(t: &Throughput) -> String {
    let mut notes = Vec::new();
    if t.ran_dry {
        notes.push("ran out of events (a lower bound)".to_owned());
    }
    if t.duplicates > 0 {
        notes.push(format!("{} repeated", t.duplicates));
    }
    if t.out_of_order > 0 {
        notes.push(format!("{} out of key order", t.out_of_order));
    }
    notes.join(", ")
}

/// The notes of each named run that has any, as `name: notes; …`.
fn named_notes(runs: &[(&str, &Throughput)]) -> String {
    let named: Vec<String> = runs
        .iter()
        .map(|(name, t)| (name, notes(t)))
        .filter(|(_, n)| !n.is_empty())
        .map(|(name, n)| format!("{name}: {n}"))
        .collect();
    named.join("; ")
}

/// Prints the header of the matrix table.
pub fn matrix_header() {
    println!(
        "| L ms | K | C | baseline /s | courier /s | ceiling /s | courier/baseline | courier/ceiling | efficiency | \
         courier CPU ms/1k | ceiling CPU ms/1k | courier RSS MiB (peak) | CPU courier run | notes |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
}

/// Prints one matrix row.
pub fn matrix_row(row: &Row) {
    let Row { scenario, baseline, courier, ceiling } = row;
    let efficiency = if scenario.latency_ms == 0 {
        "n/a (L = 0)".to_owned()
    } else {
        format!("{:.0} %", 100.0 * courier.per_sec / scenario.bound())
    };
    let note = named_notes(&[("baseline", baseline), ("courier", courier), ("ceiling", ceiling)]);
    println!(
        "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.1}× | {:.0} % | {} | {:.0} | {:.0} | {:.1} ({:.1}) | {} | {} |",
        scenario.latency_ms,
        scenario.keys,
        scenario.max_in_flight,
        baseline.per_sec,
        courier.per_sec,
        ceiling.per_sec,
        courier.per_sec / baseline.per_sec,
        100.0 * courier.per_sec / ceiling.per_sec,
        efficiency,
        courier.cpu_per_1000 * 1000.0,
        ceiling.cpu_per_1000 * 1000.0,
        courier.memory_end.now_mib,
        courier.memory_end.peak_mib,
        shares(&courier.cpu),
        note
    );
}

/// Prints every figure of the workers of the target scenario.
pub fn detail_table(workers: &[(Mode, Throughput)]) {
    println!(
        "| worker | events/s | CPU ms per 1,000 | RSS MiB start → end of window (peak) | CPU worker / broker / sink | \
         repeated | out of key order |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|");
    for (mode, t) in workers {
        println!(
            "| {} | {:.0} | {:.0} | {:.1} → {:.1} ({:.1}) | {} | {} | {} |",
            mode.label(),
            t.per_sec,
            t.cpu_per_1000 * 1000.0,
            t.memory_start.now_mib,
            t.memory_end.now_mib,
            t.memory_end.peak_mib,
            shares(&t.cpu),
            t.duplicates,
            t.out_of_order
        );
    }
}

/// Prints courier's runs and the peer's (`runs`) against the unordered `ceiling` of the same invocation: events/s,
/// worker CPU µs per event and peak RSS, each also as a ratio to the ceiling's, then repeated and out-of-order
/// deliveries; then what the tuned peer run set.
pub fn peer_table(runs: &[(Mode, Throughput)], ceiling: &Throughput) {
    println!(
        "| worker | events/s | of the ceiling | CPU µs per event | × the ceiling's | peak RSS MiB | × the ceiling's | \
         repeated | out of key order | notes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let cpu_us = |t: &Throughput| t.cpu_per_1000 * 1000.0;
    for (mode, t) in runs.iter().chain(std::iter::once(&(Mode::Ceiling, *ceiling))) {
        let dry = if t.ran_dry { "ran out of events (a lower bound)" } else { "" };
        println!(
            "| {} | {:.0} | {:.0} % | {:.0} | {:.2}× | {:.1} | {:.2}× | {} | {} | {dry} |",
            mode.label(),
            t.per_sec,
            100.0 * t.per_sec / ceiling.per_sec,
            cpu_us(t),
            cpu_us(t) / cpu_us(ceiling),
            t.memory_end.peak_mib,
            t.memory_end.peak_mib / ceiling.memory_end.peak_mib,
            t.duplicates,
            t.out_of_order,
        );
    }
    let named = |settings: &[(&str, &str)]| {
        settings.iter().map(|(key, value)| format!("`{key} = {value}`")).collect::<Vec<_>>().join(", ")
    };
    println!(
        "\nVector (tuned) sets {}; Vector (a call per event) sets {}. Vector's calls carry JSON arrays (its batches); \
         courier's and the ceiling's carry one event each.",
        named(crate::peer::TUNED),
        named(crate::peer::PER_EVENT)
    );
}

/// Prints what courier costs per event for a reader who plans capacity: of `workers` (courier's runs of the
/// target scenario), events/s, the cores the worker used, events/s per core, CPU seconds and the broker's CPU
/// seconds per million events, and the peak RSS.
pub fn capacity_plan(workers: &[(Mode, Throughput)]) {
    println!(
        "| worker | events/s | worker cores | events/s per core | worker CPU s per 1 M events | broker CPU s per 1 M \
         events | peak RSS MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (mode, t) in workers {
        let per_core = if t.cpu.worker > 0.0 { t.per_sec / t.cpu.worker } else { f64::NAN };
        let broker_per_million = if t.per_sec > 0.0 { t.cpu.broker / t.per_sec * 1e6 } else { f64::NAN };
        println!(
            "| {} | {:.0} | {:.2} | {:.0} | {:.0} | {:.0} | {:.1} |",
            mode.label(),
            t.per_sec,
            t.cpu.worker,
            per_core,
            t.cpu_per_1000 * 1000.0,
            broker_per_million,
            t.memory_end.peak_mib
        );
    }
}

/// Prints the batching table: per latency, `forward` with a call per event and with batches, from one run.
pub fn batching_table(runs: &[(u64, Throughput, Throughput)]) {
    println!(
        "| L ms | per event /s | batched /s | batched/per event | per event CPU ms/1k | batched CPU ms/1k | \
         per event RSS MiB (peak) | batched RSS MiB (peak) | repeated | out of key order |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (latency_ms, single, batched) in runs {
        println!(
            "| {latency_ms} | {:.0} | {:.0}{} | {:.2}× | {:.0} | {:.0} | {:.1} | {:.1} | {} / {} | {} / {} |",
            single.per_sec,
            batched.per_sec,
            if batched.ran_dry { " (ran out of events)" } else { "" },
            batched.per_sec / single.per_sec,
            single.cpu_per_1000 * 1000.0,
            batched.cpu_per_1000 * 1000.0,
            single.memory_end.peak_mib,
            batched.memory_end.peak_mib,
            single.duplicates,
            batched.duplicates,
            single.out_of_order,
            batched.out_of_order,
        );
    }
}

/// Prints the before/after table: per scenario, the other build's throughput, CPU and memory next to
/// this build's.
pub fn before_after(compared: &[(Scenario, Throughput, Throughput)]) {
    println!(
        "| L ms | K | C | before /s | after /s | after/before | before CPU ms/1k | after CPU ms/1k | \
         before RSS MiB (peak) | after RSS MiB (peak) | notes |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (scenario, before, after) in compared {
        let note = named_notes(&[("before", before), ("after", after)]);
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.2}× | {:.0} | {:.0} | {:.1} | {:.1} | {} |",
            scenario.latency_ms,
            scenario.keys,
            scenario.max_in_flight,
            before.per_sec,
            after.per_sec,
            after.per_sec / before.per_sec,
            before.cpu_per_1000 * 1000.0,
            after.cpu_per_1000 * 1000.0,
            before.memory_end.peak_mib,
            after.memory_end.peak_mib,
            note
        );
    }
}

/// The runs against an API with a capacity of `capacity` calls at once: courier with every default (its
/// adaptive limit) and with the API's limit fixed at each of `fixed`.
#[derive(Debug, Clone)]
pub struct CapacityRuns {
    /// The API's capacity N.
    pub capacity: usize,
    /// The API's unloaded latency L, ms.
    pub latency_ms: u64,
    /// courier with every default.
    pub adaptive: Throughput,
    /// courier with `apis.inventory.max_in_flight` fixed at each value.
    pub fixed: Vec<(usize, Throughput)>,
}

impl CapacityRuns {
    /// The fixed limit that delivered the most, and its run.
    pub fn best_fixed(&self) -> Option<&(usize, Throughput)> {
        self.fixed.iter().max_by(|a, b| a.1.per_sec.total_cmp(&b.1.per_sec))
    }
}

/// Prints the table of one capacity: each run's throughput against the best fixed limit, the API's p99
/// latency against L, and the 429s it answered.
pub fn capacity_table(runs: &CapacityRuns) {
    let best = runs.best_fixed().map_or(f64::NAN, |(_, t)| t.per_sec);
    println!(
        "N = {}: latency {} ms up to {} calls in flight, linear beyond, 429 past {} (most it can serve: {:.0}/s)\n",
        runs.capacity,
        runs.latency_ms,
        runs.capacity,
        2 * runs.capacity,
        runs.capacity as f64 * 1000.0 / runs.latency_ms as f64
    );
    println!(
        "| courier, API limit | events/s | vs best fixed | API p99 ms | p99 / L | 429s in window | 429s in run | \
         CPU ms/1k | RSS MiB (peak) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let adaptive = ("adaptive (defaults, ceiling 512)".to_owned(), &runs.adaptive);
    let fixed = runs.fixed.iter().map(|(c, t)| (format!("fixed at {c}"), t));
    for (name, t) in std::iter::once(adaptive).chain(fixed) {
        println!(
            "| {name} | {:.0} | {:.0} % | {:.1} | {:.2} | {} | {} | {:.0} | {:.1} |",
            t.per_sec,
            100.0 * t.per_sec / best,
            t.api_p99_ms,
            t.api_p99_ms / runs.latency_ms as f64,
            t.throttled,
            t.throttled_run,
            t.cpu_per_1000 * 1000.0,
            t.memory_end.peak_mib
        );
    }
    println!();
}

/// Prints the header of the latency table.
pub fn latency_header() {
    println!(
        "| worker | rate /s | events measured | missing | p50 ms | p99 ms | max ms | CPU worker / broker / harness |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
}

/// Prints one latency row.
pub fn latency_row(mode: Mode, l: &Latency) {
    println!(
        "| {} | {:.0} | {} | {} | {:.1} | {:.1} | {:.1} | {} |",
        mode.label(),
        l.rate,
        l.measured,
        l.missing,
        l.p50_ms,
        l.p99_ms,
        l.max_ms,
        shares(&l.cpu)
    );
}

/// Prints the producer-side comparison.
pub fn producer_table(concurrency: usize, api: &Requests, direct: &Requests) {
    println!("| path ({concurrency} in flight) | acknowledged /s | p50 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|");
    for (name, r) in [("POST /v1/orders (202 after the broker's ack)", api), ("direct rdkafka produce loop", direct)] {
        println!("| {name} | {:.0} | {:.1} | {:.1} | {} |", r.per_sec, r.p50_ms, r.p99_ms, r.errors);
    }
    println!(
        "\norder API / direct loop = {:.0} % of the throughput; p99 {:.1} ms vs {:.1} ms",
        100.0 * api.per_sec / direct.per_sec,
        api.p99_ms,
        direct.p99_ms
    );
}

fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**not met**" }
}

/// The target scenario's runs beside its matrix row.
#[derive(Debug, Clone, Copy)]
pub struct TargetRuns {
    /// The per-partition baseline.
    pub baseline: Throughput,
    /// courier with every default.
    pub defaults: Throughput,
    /// courier with every default but `kafka.fetch_wait_max_ms` ([`Mode::CourierShortFetchWait`]).
    pub short: Throughput,
    /// courier with every default but `log_level = warn` ([`Mode::CourierQuietLogs`]).
    pub quiet: Throughput,
    /// courier with every default but fetches like Apache Kafka's ([`Mode::CourierSmallFetch`]).
    pub small: Throughput,
}

/// The memory target: a peak of at most 64 MiB, and flat (at most 4 MiB of growth across a window).
fn memory_met(peak_mib: f64, growth_mib: f64) -> bool {
    peak_mib <= 64.0 && growth_mib <= 4.0
}

/// Judges each target from what was measured (a target whose scenario did not run is said so).
pub fn targets(
    rows: &[Row],
    target: Option<&TargetRuns>,
    latencies: &[(Mode, Latency)],
    producer: Option<&(Requests, Requests)>,
    capacities: &[CapacityRuns],
) {
    let target_row = rows.iter().find(|r| r.scenario == crate::suite::TARGET);
    match target_row {
        Some(r) => {
            let (x, pct) = (r.courier.per_sec / r.baseline.per_sec, 100.0 * r.courier.per_sec / r.ceiling.per_sec);
            println!(
                "- L = 20, K = 10,000, C = 512: courier/baseline = {x:.1}× (≥ 25×), courier/ceiling = {pct:.0} % (≥ 75 %): {}. \
                 CPU worker / broker / sink in courier's window: {}.",
                verdict(x >= 25.0 && pct >= 75.0),
                shares(&r.courier.cpu)
            );
        }
        None => println!("- L = 20, K = 10,000, C = 512: not in this run's matrix."),
    }
    match (target, target_row) {
        (Some(TargetRuns { baseline, defaults, .. }), Some(r)) => {
            let (x, pct) = (defaults.per_sec / baseline.per_sec, 100.0 * defaults.per_sec / r.ceiling.per_sec);
            println!(
                "- the same with every setting at its default: {x:.1}× the baseline, {pct:.0} % of the ceiling: {}.",
                verdict(x >= 25.0 && pct >= 75.0)
            );
        }
        _ => println!("- defaults: the target scenario did not run."),
    }
    if let (Some(TargetRuns { defaults, .. }), Some(r)) = (target, target_row) {
        let pct = 100.0 * defaults.per_sec / r.ceiling.per_sec;
        println!(
            "- every default (adaptive API limit included) ≥ 90 % of the ceiling at L = 20, K = 10,000: {pct:.0} %: {}.",
            verdict(pct >= 90.0)
        );
    }
    for r in rows.iter().filter(|r| r.scenario.latency_ms > 0 && r.scenario.keys == 100) {
        let pct = 100.0 * r.courier.per_sec / r.scenario.bound();
        println!(
            "- few keys, L = {}, K = 100, C = {}: {:.0} events/s, {pct:.0} % of min(C, K) · 1000 / L (≥ 80 %): {}.",
            r.scenario.latency_ms,
            r.scenario.max_in_flight,
            r.courier.per_sec,
            verdict(pct >= 80.0)
        );
    }
    for runs in capacities {
        let Some((best_limit, best)) = runs.best_fixed() else { continue };
        let t = &runs.adaptive;
        let pct = 100.0 * t.per_sec / best.per_sec;
        let p99 = t.api_p99_ms / runs.latency_ms as f64;
        println!(
            "- an API with a capacity of {}: adaptive {:.0} % of the best fixed limit ({best_limit}) (≥ 90 %): {}; the \
             API's p99 {p99:.2} × L (≤ 2×): {}; 429s: {} in the run, {} in the measured window (none sustained): {}.",
            runs.capacity,
            pct,
            verdict(pct >= 90.0),
            verdict(p99 <= 2.0),
            t.throttled_run,
            t.throttled,
            verdict(t.throttled == 0)
        );
    }
    let at_zero: Vec<&Row> = rows.iter().filter(|r| r.scenario.latency_ms == 0).collect();
    if at_zero.is_empty() {
        println!("- L = 0, CPU per event: no L = 0 scenario in this run.");
    } else {
        let worst = at_zero.iter().map(|r| r.courier.cpu_per_1000 * 1000.0).fold(0.0, f64::max);
        let list: Vec<String> = at_zero
            .iter()
            .map(|r| {
                format!(
                    "K={} C={}: {:.0} µs",
                    r.scenario.keys,
                    r.scenario.max_in_flight,
                    r.courier.cpu_per_1000 * 1000.0
                )
            })
            .collect();
        println!(
            "- L = 0: worker CPU per delivered event ≤ 50 µs: worst {worst:.0} µs ({}): {}.",
            list.join(", "),
            verdict(worst <= 50.0)
        );
        let one_key = at_zero.iter().find(|r| r.scenario.keys == 1);
        let many_keys = at_zero.iter().filter(|r| r.scenario.keys > 1).max_by_key(|r| r.scenario.keys);
        if let (Some(one), Some(many)) = (one_key, many_keys) {
            let ratio = one.courier.cpu_per_1000 / many.courier.cpu_per_1000;
            println!(
                "- L = 0: CPU per event with one key within 1.2× of K = {}: {:.0} against {:.0} µs, {ratio:.2}×: {}.",
                many.scenario.keys,
                one.courier.cpu_per_1000 * 1000.0,
                many.courier.cpu_per_1000 * 1000.0,
                verdict(ratio <= 1.2)
            );
        }
    }
    let courier_runs: Vec<&Throughput> = rows.iter().map(|r| &r.courier).chain(target.map(|t| &t.defaults)).collect();
    if !courier_runs.is_empty() {
        let peak = courier_runs.iter().map(|t| t.memory_end.peak_mib).fold(0.0, f64::max);
        let growth = courier_runs.iter().map(|t| t.growth_mib()).fold(f64::MIN, f64::max);
        println!(
            "- worker RSS ≤ 64 MiB and flat: highest peak {peak:.1} MiB over {} courier runs, largest growth across a \
             window {growth:+.1} MiB: {}.",
            courier_runs.len(),
            verdict(memory_met(peak, growth))
        );
    }
    if let Some(TargetRuns { defaults, small, .. }) = target {
        let growth = small.growth_mib();
        println!(
            "- the same with fetches like Apache Kafka's ({}): peak {:.1} MiB, growth across the window {growth:+.1} MiB, \
             at {:.2}× the defaults' throughput: {}.",
            Mode::CourierSmallFetch.label(),
            small.memory_end.peak_mib,
            small.per_sec / defaults.per_sec,
            verdict(memory_met(small.memory_end.peak_mib, growth))
        );
    }
    for (mode, l) in latencies.iter().filter(|(m, _)| matches!(m, Mode::CourierDefaults | Mode::CourierShortFetchWait))
    {
        println!(
            "- p99 produce-to-API latency ≤ L + 10 ms at half load, {}: {:.1} ms at {:.0} events/s (p50 {:.1}, max {:.1}, \
             {} missing): {}.",
            mode.label(),
            l.p99_ms,
            l.rate,
            l.p50_ms,
            l.max_ms,
            l.missing,
            verdict(l.p99_ms <= 30.0 && l.missing == 0)
        );
    }
    if latencies.is_empty() {
        println!("- latency: the open-loop run did not run.");
    }
    if let Some((api, direct)) = producer {
        println!(
            "- producer side (no numeric target): the order API acknowledges {:.0} % of what a direct produce loop does.",
            100.0 * api.per_sec / direct.per_sec
        );
    }
}

/// The row `row`'s figures are compared with: its target's reference, else the first row.
fn reference_of<'a>(row: &RowRuns, rows: &'a [RowRuns]) -> Option<&'a RowRuns> {
    match row.row.target {
        Some((label, _)) => rows.iter().find(|r| r.row.label == label),
        None => rows.first(),
    }
}

/// Prints the table of the `forward` rows: per row the medians of its runs, and its CPU per event against
/// its reference's.
pub fn forward_rows_table(rows: &[RowRuns]) {
    println!(
        "| row | route settings | records | events/s | CPU µs/event (min–max) | Δ µs/event | ratio | against | \
         peak RSS MiB | events / delivered / calls | CPU worker / broker / sink | notes |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---|---:|---|---|---|");
    for row in rows {
        let cpu = row.median(|d| d.cpu_us);
        let (lo, hi) = row.range(|d| d.cpu_us);
        let (delta, ratio, against) = match reference_of(row, rows) {
            Some(reference) if reference.row.label != row.row.label => {
                let base = reference.median(|d| d.cpu_us);
                (format!("{:+.1}", cpu - base), format!("{:.2}×", cpu / base), reference.row.label)
            }
            _ => ("—".to_owned(), "—".to_owned(), "(reference)"),
        };
        let cpu_shares = CpuShare {
            worker: row.median(|d| d.cpu.worker),
            broker: row.median(|d| d.cpu.broker),
            harness: row.median(|d| d.cpu.harness),
        };
        let counts: Vec<String> =
            row.runs.iter().map(|d| format!("{} / {} / {}", d.events, d.delivered, d.calls)).collect();
        let mut notes = Vec::new();
        let total = |f: fn(&Drained) -> u64| row.runs.iter().map(f).sum::<u64>();
        if total(|d| d.duplicates) > 0 {
            notes.push(format!("{} repeated", total(|d| d.duplicates)));
        }
        if total(|d| d.out_of_order) > 0 {
            notes.push(format!("{} out of key order", total(|d| d.out_of_order)));
        }
        if total(|d| d.unreadable) > 0 {
            notes.push(format!("{} requests the sink could not read", total(|d| d.unreadable)));
        }
        if !row.complete() {
            notes.push("**events missing**".to_owned());
        }
        println!(
            "| {} | {} | {} | {:.0} | {cpu:.1} ({lo:.1}–{hi:.1}) | {delta} | {ratio} | {against} | {:.1} | {} | {} | {} |",
            row.row.label,
            row.row.describe(),
            row.row.encoding.name(),
            row.median(|d| d.per_sec),
            row.median(|d| d.peak_mib),
            if counts.iter().all(|c| *c == counts[0]) {
                format!("{} (each run)", counts[0])
            } else {
                counts.join("; ")
            },
            shares(&cpu_shares),
            notes.join(", ")
        );
    }
}

/// Judges the target of each `forward` row that has one: its median CPU per event at most so many µs above its
/// reference's, every event delivered.
pub fn forward_rows_targets(rows: &[RowRuns]) {
    for row in rows {
        let Some((label, micros)) = row.row.target else { continue };
        let Some(reference) = rows.iter().find(|r| r.row.label == label) else {
            println!("- `{}`: its reference `{label}` did not run.", row.row.label);
            continue;
        };
        let delta = row.median(|d| d.cpu_us) - reference.median(|d| d.cpu_us);
        let complete = row.complete() && reference.complete();
        println!(
            "- `forward` row `{}` ({}): {delta:+.1} µs of CPU per event against `{label}` (≤ +{micros} µs){}: {}.",
            row.row.label,
            row.row.describe(),
            if complete { "" } else { ", events missing" },
            verdict(complete && delta <= micros)
        );
    }
}
