//! The `forward` rows: what reading records of another format, or shaping or signing the request, costs a
//! `forward` route per event, against the route that passes courier's own CloudEvents through, in one run.
//!
//! Each row of [`ROWS`] is the real `forward` binary with one route, `bench`, reading a backlog of K = 10,000
//! keys and calling the sink, every setting at its default but the row's: its route's (`[forward.routes.bench]`)
//! and its API's (`[apis.inventory]`). Its records hold the events in the row's [`Encoding`]; rows of one
//! encoding read the same topic. A record of [`Encoding::Avro`] names its schema in an in-process Schema
//! Registry (`tools/mock-schema-registry`), which the route's `schema_registry.url` points at.
//!
//! Whatever a row sends must name its event to the sink: the event as published, its `data`, or any JSON
//! object with the data's `order_id` and `items` (`{"order_id": "k<key>", "items": [{"sku": "e<seq>"}, …]}`).
//!
//! The rows run in rounds, each row once per round, and each row's figures are the medians of its runs.

use mock_schema_registry::{MockSchemaRegistry, Recorded};
use serde_json::json;

use crate::load::{AVRO_SCHEMA, AVRO_SCHEMA_ID, Encoding};
use crate::scenario::{Drained, Harness};

/// One row: a route and how its records are encoded.
#[derive(Debug, Clone, Copy)]
pub struct ForwardRow {
    /// Its name in the table and in its worker's log file (`bench-forward-<label>.log`).
    pub label: &'static str,
    /// How its records hold the events.
    pub encoding: Encoding,
    /// Its route's settings over the defaults: keys of `[forward.routes.bench]`.
    pub route: &'static [(&'static str, &'static str)],
    /// Its API's settings over the defaults: keys of `[apis.inventory]`.
    pub api: &'static [(&'static str, &'static str)],
    /// Its target: at most this many µs of CPU per event more than the row of that label.
    pub target: Option<(&'static str, f64)>,
}

impl ForwardRow {
    /// Row `label`: records in `encoding`, the route's settings `route`.
    const fn new(label: &'static str, encoding: Encoding, route: &'static [(&'static str, &'static str)]) -> Self {
        Self { label, encoding, route, api: &[], target: None }
    }

    /// The same, its API's settings `api`.
    const fn api(self, api: &'static [(&'static str, &'static str)]) -> Self {
        Self { api, ..self }
    }

    /// The same, its target: at most `micros` µs of CPU per event more than row `reference`.
    const fn within(self, micros: f64, reference: &'static str) -> Self {
        Self { target: Some((reference, micros)), ..self }
    }

    /// Its settings as the `COURIER__…` variables the worker gets.
    pub fn variables(&self) -> Vec<(String, String)> {
        let route = self.route.iter().map(|(k, v)| (format!("COURIER__FORWARD__ROUTES__BENCH__{}", variable(k)), v));
        let api = self.api.iter().map(|(k, v)| (format!("COURIER__APIS__INVENTORY__{}", variable(k)), v));
        route.chain(api).map(|(k, v)| (k, (*v).to_owned())).collect()
    }

    /// Its settings as they would be written in TOML, `key = "value"`, the API's after `apis.inventory.`.
    pub fn describe(&self) -> String {
        let route = self.route.iter().map(|(k, v)| format!("{k} = {v:?}"));
        let api = self.api.iter().map(|(k, v)| {
            if k.contains("secret") {
                format!("apis.inventory.{k} = \"…\"")
            } else {
                format!("apis.inventory.{k} = {v:?}")
            }
        });
        let all: Vec<String> = route.chain(api).collect();
        if all.is_empty() { "every default".to_owned() } else { all.join(", ") }
    }
}

/// A setting's key as the part of a `COURIER__…` variable after its section: `a.b` is `A__B`.
fn variable(key: &str) -> String {
    key.replace('.', "__").to_uppercase()
}

/// The rows, the reference first: courier's CloudEvents passed through as published (what a `forward` route
/// does with every default).
pub const ROWS: &[ForwardRow] = &[
    ForwardRow::new("cloudevents", Encoding::CloudEvents, &[("format", "cloudevents")]),
    ForwardRow::new("json", Encoding::Json, &[("format", "json")]).within(3.0, "cloudevents"),
    ForwardRow::new("avro", Encoding::Avro, &[("format", "avro")]).within(10.0, "cloudevents"),
    ForwardRow::new("mapping", Encoding::CloudEvents, MAPPING).within(10.0, "cloudevents"),
    ForwardRow::new("mapping+filter+header", Encoding::CloudEvents, MAPPING_RECIPE),
    ForwardRow::new("signing", Encoding::CloudEvents, &[("format", "cloudevents")])
        .api(&[("signing.scheme", "standard-webhooks"), ("signing.secrets", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")])
        .within(3.0, "cloudevents"),
];

/// The `mapping` row's route: what the issue's target names, a path templated from the event and the body
/// reshaped by a jq program.
const MAPPING: &[(&str, &str)] = &[
    ("format", "cloudevents"),
    ("method", "PUT"),
    ("path", "orders/{{ data.order_id }}"),
    ("body", "{order_id: .data.order_id, items: .data.items}"),
];

/// The `mapping+filter+header` row's route: as README's request-mapping recipe, a filter every event passes
/// and a templated header too.
const MAPPING_RECIPE: &[(&str, &str)] = &[
    ("format", "cloudevents"),
    ("filter", ".data.order_id != null"),
    ("method", "PUT"),
    ("path", "orders/{{ data.order_id }}"),
    ("headers.x-event-id", "{{ .id }}"),
    ("body", "{order_id: .data.order_id, items: .data.items}"),
];

/// A row's runs and their medians.
#[derive(Debug, Clone)]
pub struct RowRuns {
    /// The row.
    pub row: ForwardRow,
    /// Each run, in the order they ran.
    pub runs: Vec<Drained>,
}

impl RowRuns {
    /// The median of `figure` over the runs (NaN when there are none).
    pub fn median(&self, figure: impl Fn(&Drained) -> f64) -> f64 {
        let mut values: Vec<f64> = self.runs.iter().map(figure).collect();
        values.sort_by(f64::total_cmp);
        match values.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        }
    }

    /// The lowest and highest of `figure` over the runs.
    pub fn range(&self, figure: impl Fn(&Drained) -> f64) -> (f64, f64) {
        self.runs.iter().map(figure).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
    }

    /// Whether every run delivered its whole backlog, and nothing the sink could not read.
    pub fn complete(&self) -> bool {
        self.runs.iter().all(Drained::complete)
    }
}

/// How the rows run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Events per backlog.
    pub events: usize,
    /// Distinct keys.
    pub keys: usize,
    /// Runs of each row.
    pub rounds: usize,
    /// The sink's latency, ms.
    pub latency_ms: u64,
}

/// Preloads a backlog per encoding, then runs every row of `rows` `plan.rounds` times, a row after the other
/// in each round.
pub async fn run(harness: &Harness, rows: &[ForwardRow], plan: Plan) -> anyhow::Result<Vec<RowRuns>> {
    let registry = if rows.iter().any(|r| r.encoding == Encoding::Avro) {
        let schemas = [(AVRO_SCHEMA_ID, json!({ "schema": AVRO_SCHEMA }))].into_iter().collect();
        Some(MockSchemaRegistry::start(Recorded { schemas, ..Recorded::default() }).await)
    } else {
        None
    };
    let mut topics: Vec<(Encoding, String)> = Vec::new();
    for row in rows {
        if topics.iter().all(|(e, _)| *e != row.encoding) {
            let topic = harness.topic(&format!("forward-{}", row.encoding.name()));
            let took = harness.preload_encoded(&topic, plan.events, plan.keys, row.encoding).await?;
            eprintln!("preloaded {} {} events in {:.1} s", plan.events, row.encoding.name(), took.as_secs_f64());
            topics.push((row.encoding, topic));
        }
    }
    let mut results: Vec<RowRuns> = rows.iter().map(|&row| RowRuns { row, runs: Vec::new() }).collect();
    for round in 1..=plan.rounds {
        for result in &mut results {
            let row = result.row;
            let topic = topics.iter().find(|(e, _)| *e == row.encoding).map(|(_, t)| t.as_str()).unwrap_or_default();
            let mut settings = row.variables();
            if let (Encoding::Avro, Some(registry)) = (row.encoding, &registry) {
                settings.push(("COURIER__SCHEMA_REGISTRY__URL".to_owned(), registry.url().to_owned()));
            }
            let drained = harness.drain(row.label, topic, (plan.events, plan.keys), plan.latency_ms, &settings).await?;
            eprintln!(
                "forward row {} (round {round}/{}): {:.0} events/s, {:.1} µs CPU/event, peak {:.1} MiB, {} of {} \
                 events, {} calls",
                row.label,
                plan.rounds,
                drained.per_sec,
                drained.cpu_us,
                drained.peak_mib,
                drained.delivered,
                drained.events,
                drained.calls
            );
            result.runs.push(drained);
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_its_settings_as_courier_variables() {
        let row = ForwardRow::new("mapped", Encoding::CloudEvents, &[("path", "users/{{ data.order_id }}")])
            .api(&[("signing.secrets", "whsec_x")])
            .within(10.0, "cloudevents");
        assert_eq!(
            row.variables(),
            [
                ("COURIER__FORWARD__ROUTES__BENCH__PATH".to_owned(), "users/{{ data.order_id }}".to_owned()),
                ("COURIER__APIS__INVENTORY__SIGNING__SECRETS".to_owned(), "whsec_x".to_owned()),
            ]
        );
        assert_eq!(
            row.describe(),
            r#"path = "users/{{ data.order_id }}", apis.inventory.signing.secrets = "…""#,
            "a secret is not printed"
        );
        assert_eq!(row.target, Some(("cloudevents", 10.0)));
    }

    #[test]
    fn every_target_names_a_row_that_runs_before_it() {
        assert_eq!(ROWS[0].target, None, "the reference");
        for (i, row) in ROWS.iter().enumerate() {
            if let Some((reference, _)) = row.target {
                assert!(ROWS[..i].iter().any(|r| r.label == reference), "{}: no row {reference} before it", row.label);
            }
        }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        let drained = |cpu_us| Drained {
            per_sec: 1.0,
            cpu_us,
            cpu: Default::default(),
            peak_mib: 1.0,
            events: 1,
            delivered: 1,
            calls: 1,
            duplicates: 0,
            out_of_order: 0,
            unreadable: 0,
        };
        let mut runs = RowRuns { row: ROWS[0], runs: [45.0, 41.0, 50.0].map(drained).to_vec() };
        assert_eq!(runs.median(|d| d.cpu_us), 45.0);
        assert_eq!(runs.range(|d| d.cpu_us), (41.0, 50.0));
        runs.runs.push(drained(43.0));
        assert_eq!(runs.median(|d| d.cpu_us), 44.0);
        assert!(runs.complete());
        runs.runs.push(Drained { delivered: 0, ..drained(1.0) });
        assert!(!runs.complete(), "a run that lost its events");
    }
}
