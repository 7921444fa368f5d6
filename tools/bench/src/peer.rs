//! The peer courier is compared with: [Vector](https://vector.dev), a binary given with `--vector`, reading the
//! same topic through its `kafka` source and calling the same sink through its `http` sink (adaptive request
//! concurrency, end-to-end acknowledgements: an offset is committed once the call that carried its record was
//! answered), from a config written for each run.
//!
//! Two configs are run: Vector's [`Tuning::Defaults`] (only what a run needs is set: the broker, the topic, a
//! fresh group read from offset 0, the sink's URL, JSON bodies, acknowledgements) and [`Tuning::Tuned`], which
//! adds the settings of [`TUNED`]. Vector's `http` sink sends a batch of events per call, a JSON array; with its
//! source's default decoding each element is a log event whose `message` holds the record's value as a string,
//! which the sink reads ([`crate::sink`]).

use std::path::Path;

use anyhow::Context;
use toml::{Table, Value};

/// Which config Vector runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// Every setting at Vector's default but those a run needs.
    Defaults,
    /// The same with [`TUNED`] on top.
    Tuned,
    /// The same with [`PER_EVENT`] on top: a call per event, as courier and the references make.
    PerEvent,
}

/// What [`Tuning::Tuned`] sets, as dotted keys of the config (`sources.kafka…`, `sinks.api…`), with values in
/// TOML: the sink's batches (a call of up to 100 events, as `forward`'s batching rows send, sent after at most
/// 10 ms instead of 1 s), its adaptive limit starting where the ceiling's fixed limit is rather than at 1, and
/// the source's fetches answered after at most 10 ms (`kafka.fetch_wait_max_ms` of courier's tuned rows).
pub const TUNED: &[(&str, &str)] = &[
    ("sinks.api.batch.max_events", "100"),
    ("sinks.api.batch.timeout_secs", "0.01"),
    ("sinks.api.request.adaptive_concurrency.initial_concurrency", "64"),
    ("sources.kafka.fetch_wait_max_ms", "10"),
];

/// What [`Tuning::PerEvent`] sets: batches of one event (a call per event, as an API that takes one event per
/// request needs, as courier's inventory consumer and the references call), and the adaptive limit's bound
/// raised from 200 to the ceiling's C = 512.
pub const PER_EVENT: &[(&str, &str)] =
    &[("sinks.api.batch.max_events", "1"), ("sinks.api.request.adaptive_concurrency.max_concurrency_limit", "512")];

/// Vector's config (TOML) for one run: reading `topic` from the broker at `bootstrap` (`host:port`) in consumer
/// group `group` (never used before: read from offset 0), calling `uri`.
pub fn config(tuning: Tuning, bootstrap: &str, topic: &str, group: &str, uri: &str) -> anyhow::Result<String> {
    let mut root: Table = toml::from_str(&format!(
        r#"
        [sources.kafka]
        type = "kafka"
        bootstrap_servers = {bootstrap}
        topics = [{topic}]
        group_id = {group}
        auto_offset_reset = "earliest"

        [sinks.api]
        type = "http"
        inputs = ["kafka"]
        uri = {uri}
        method = "post"
        encoding.codec = "json"
        request.concurrency = "adaptive"
        acknowledgements.enabled = true
        healthcheck.enabled = false
        "#,
        bootstrap = Value::from(bootstrap),
        topic = Value::from(topic),
        group = Value::from(group),
        uri = Value::from(uri),
    ))
    .context("Vector's config")?;
    let extra = match tuning {
        Tuning::Defaults => &[][..],
        Tuning::Tuned => TUNED,
        Tuning::PerEvent => PER_EVENT,
    };
    for (key, value) in extra {
        set(&mut root, key, value)?;
    }
    Ok(toml::to_string(&root)?)
}

/// Sets the dotted `key` of `root` to `value` (TOML), making the tables on its way.
fn set(root: &mut Table, key: &str, value: &str) -> anyhow::Result<()> {
    let (path, last) = key.rsplit_once('.').with_context(|| format!("{key}: not a dotted key"))?;
    let mut table = root;
    for part in path.split('.') {
        table = table
            .entry(part)
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .with_context(|| format!("{key}: {part} is not a table"))?;
    }
    let value: Table = toml::from_str(&format!("v = {value}")).with_context(|| format!("{key} = {value}"))?;
    table.insert(last.to_owned(), value["v"].clone());
    Ok(())
}

/// What `vector --version` says (`vector 0.57.0 (x86_64-unknown-linux-gnu 8832452 2026-07-14 …)`).
pub fn version(binary: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", binary.display()))?;
    anyhow::ensure!(out.status.success(), "{} --version failed: {}", binary.display(), out.status);
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(tuning: Tuning) -> Table {
        let config = config(tuning, "127.0.0.1:9092", "bench.k10000.1.0", "g\"1", "http://127.0.0.1:1/");
        toml::from_str(&config.expect("config")).expect("valid TOML")
    }

    #[test]
    fn the_defaults_set_only_what_a_run_needs() {
        let root = parsed(Tuning::Defaults);
        let source = root["sources"]["kafka"].as_table().expect("source");
        assert_eq!(source["group_id"].as_str(), Some("g\"1"), "quoted as TOML");
        assert_eq!(source["topics"].as_array().map(Vec::len), Some(1));
        assert_eq!(source["auto_offset_reset"].as_str(), Some("earliest"));
        assert_eq!(source.len(), 5, "type, broker, topic, group, offset reset: {source:?}");
        let sink = root["sinks"]["api"].as_table().expect("sink");
        assert_eq!(sink["acknowledgements"]["enabled"].as_bool(), Some(true));
        assert_eq!(sink["request"]["concurrency"].as_str(), Some("adaptive"));
        assert!(sink.get("batch").is_none(), "Vector's own batches: {sink:?}");
    }

    #[test]
    fn the_tuned_config_adds_each_tuned_key_and_keeps_the_rest() {
        let root = parsed(Tuning::Tuned);
        let sink = &root["sinks"]["api"];
        assert_eq!(sink["batch"]["max_events"].as_integer(), Some(100));
        assert_eq!(sink["batch"]["timeout_secs"].as_float(), Some(0.01));
        assert_eq!(sink["request"]["adaptive_concurrency"]["initial_concurrency"].as_integer(), Some(64));
        assert_eq!(sink["request"]["concurrency"].as_str(), Some("adaptive"), "kept beside the tuned keys");
        assert_eq!(root["sources"]["kafka"]["fetch_wait_max_ms"].as_integer(), Some(10));
        let per_event = parsed(Tuning::PerEvent);
        assert_eq!(per_event["sinks"]["api"]["batch"]["max_events"].as_integer(), Some(1));
        assert!(per_event["sources"]["kafka"].get("fetch_wait_max_ms").is_none(), "only PER_EVENT is added");
        let mut plain = parsed(Tuning::Defaults);
        for (key, _) in TUNED {
            set(&mut plain, key, "0").expect("settable");
        }
        assert!(set(&mut plain, "sinks.api.uri.x", "1").is_err(), "a string is not a table");
    }
}
