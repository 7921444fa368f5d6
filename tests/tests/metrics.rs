//! The metrics say what happened: a known flow through the order API and the inventory consumer, against a
//! real broker, and the scraped counters checked against what the mock API and the dead-letter topic saw.
//! Then the dashboard and the alert rules: every metric their PromQL names exists in that scrape.
//!
//! One test in this file: the metrics recorder is the process's, and another test's traffic would mix in.

use courier_consumers::inventory::Inventory;
use courier_tests::WAIT;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use courier::delivery::dlq::dlq_topic;
use courier::telemetry::metrics as names;
use courier_consumers::order_topics::OrderTopics;
use courier_tests::app::{sample_order, spawn_app_with};
use courier_tests::kafka_probe;
use courier_tests::scrape::{Metrics, scrape};
use mock_apis::{Api, Faults};
use promql_parser::parser::{self, Expr};
use serde_json::{Value, json};

/// Scrapes `url` until `check` passes for the scrape, or `WAIT` passes (then fails with what `check` said).
async fn scrape_until(url: &str, check: impl Fn(&Metrics) -> Result<(), String>) -> Metrics {
    let deadline = Instant::now() + WAIT;
    loop {
        let metrics = scrape(url).await.expect("the scrape answers and parses");
        let Err(why) = check(&metrics) else {
            return metrics;
        };
        assert!(Instant::now() < deadline, "the metrics never settled: {why}; scraped: {:?}", metrics.names());
        // Polling an HTTP endpoint: the metric has no event to await.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_counters_equal_what_the_api_and_the_dead_letter_topic_saw() {
    const N: usize = 12;
    let app = spawn_app_with(&[
        ("COURIER__TELEMETRY__STATISTICS_INTERVAL_MS", "300"),
        // A breaker that opens on this flow's failures and closes again soon, so its metrics move too.
        ("COURIER__APIS__INVENTORY__BREAKER_MINIMUM_CALLS", "4"),
        ("COURIER__APIS__INVENTORY__BREAKER_COOLDOWN_MS", "300"),
    ])
    .await;
    let metrics_url = format!("{}/metrics", app.address);
    // Every key's first inventory call fails 503: one retry per event.
    app.mock.set_faults(Api::Inventory, Faults { fail_first_per_key: 1, fail_first_status: 503, ..Faults::default() });

    for i in 0..N {
        assert_eq!(app.post_order(&sample_order(i), None).await.status(), 202);
    }
    // A dead letter: an unknown SKU is refused 409, for good.
    let unknown = json!({
        "customer": {"id": "c-x", "email": "x@example.com"},
        "items": [{"sku": "UNKNOWN-1", "quantity": 1, "unit_price": 100}],
        "currency": "EUR"
    });
    assert_eq!(app.post_order(&unknown, None).await.status(), 202);
    // An idempotent replay: the same Idempotency-Key twice, one record.
    assert_eq!(app.post_order(&sample_order(100), Some("metrics-replay")).await.status(), 202);
    let replayed = app.post_order(&sample_order(100), Some("metrics-replay")).await;
    assert_eq!(replayed.status(), 202);
    assert!(replayed.headers().contains_key("idempotent-replayed"));
    let published = N + 2;
    // A bad request: counted as a 4xx answer, nothing published.
    let bad = app.http.post(format!("{}/v1/orders", app.address)).body("{").header("content-type", "application/json");
    assert_eq!(bad.send().await.expect("answers").status(), 400);

    let consumer = app.consumer(Inventory).start();
    let delivered = N + 1;
    app.mock.wait_for_effects(Api::Inventory, delivered, WAIT).await.expect("every known SKU reserved");
    let dlq = dlq_topic(app.settings.topics.orders_created(), &app.settings.kafka.group_id("inventory"));
    let dead = kafka_probe::read_all(&app.bootstrap, &dlq, 1, WAIT).await.expect("the dead-letter topic reads");
    assert_eq!(dead.len(), 1, "one dead letter");

    let inventory = [("consumer", "inventory")];
    let topic = app.settings.topics.orders_created();
    // Counters move when a delivery finishes, just after its effect; commits and lag follow within a second.
    let m = scrape_until(&metrics_url, |m| {
        let finished = m.sum(names::EVENTS_FINISHED, &inventory);
        let committed = m.sum(names::COMMITTED_OFFSET, &[("consumer", "inventory"), ("topic", topic)]);
        let lag =
            m.0.samples.iter().filter(|s| s.metric == names::CONSUMER_LAG && s.labels.get("topic") == Some(topic));
        let lag: Vec<f64> = lag
            .map(|s| m.sum(names::CONSUMER_LAG, &[("topic", topic), ("partition", &s.labels["partition"])]))
            .collect();
        let settled = finished == (delivered + 1) as f64
            && committed == published as f64
            && !lag.is_empty()
            && lag.iter().all(|l| *l == 0.0);
        let commits = m.sum(names::COMMITS, &inventory);
        if settled {
            Ok(())
        } else {
            Err(format!("finished {finished}, commits {commits}, committed offsets sum {committed}, lag {lag:?}"))
        }
    })
    .await;
    consumer.stop().await.expect("the consumer stops cleanly");
    let stats = app.mock.stats(Api::Inventory);
    println!("inventory API: {stats:?}");

    // Consumer side, against the API's own counts and the dead-letter topic.
    assert_eq!(m.sum(names::EVENTS_RECEIVED, &[("consumer", "inventory"), ("topic", topic)]), published as f64);
    let finished = |outcome: &str| m.sum(names::EVENTS_FINISHED, &[("consumer", "inventory"), ("outcome", outcome)]);
    assert_eq!(finished("done"), stats.effects as f64, "done = effects at the API");
    assert_eq!(finished("dead_lettered"), dead.len() as f64, "dead-lettered = records on the DLQ topic");
    let api = |labels: &[(&str, &str)]| {
        let mut all = vec![("api", "inventory")];
        all.extend_from_slice(labels);
        m.sum(names::CALLS, &all)
    };
    let refused_by_breaker = api(&[("outcome", "circuit_open")]);
    assert_eq!(api(&[]) - refused_by_breaker, stats.calls as f64, "calls made = raw calls the API received");
    assert_eq!(api(&[("status", "503")]), stats.injected_failures as f64, "503s counted = 503s answered");
    assert_eq!(api(&[("status", "409")]), stats.refused as f64, "409s counted = refusals");
    assert_eq!(api(&[("outcome", "success")]), (stats.effects + stats.duplicates) as f64);
    assert_eq!(m.sum(names::CALL_DURATION, &[("api", "inventory")]), stats.calls as f64, "every call timed");
    assert_eq!(
        m.sum(names::RETRIES, &[("consumer", "inventory"), ("reason", "http_status")]),
        stats.injected_failures as f64,
        "one retry per 503"
    );
    assert_eq!(m.sum(names::RETRIES, &[("consumer", "inventory"), ("reason", "circuit_open")]), refused_by_breaker);
    assert_eq!(m.sum(names::END_TO_END, &[("consumer", "inventory")]), finished("done"), "one latency per success");
    assert!(m.sum(names::BREAKER_TRANSITIONS, &[("api", "inventory"), ("to", "open")]) >= 1.0, "the breaker opened");
    assert!(m.sum(names::BREAKER_TRANSITIONS, &[("api", "inventory"), ("to", "closed")]) >= 1.0, "and closed");
    assert_eq!(m.sum(names::BREAKER_STATE, &[("api", "inventory")]), 0.0, "closed at the end");
    assert!(m.sum(names::REBALANCES, &[("consumer", "inventory"), ("kind", "assign")]) >= 1.0);
    assert!(m.sum(names::COMMITS, &[("consumer", "inventory"), ("result", "ok")]) >= 1.0);
    assert_eq!(m.sum(names::DLQ_GUARD_WAITING, &inventory), 0.0);

    // Producer side.
    let orders = [("route", "/v1/orders"), ("method", "POST")];
    let answered = |status: &str| m.sum(names::HTTP_REQUESTS, &[orders[0], orders[1], ("status", status)]);
    assert_eq!(answered("202"), (published + 1) as f64, "every 202, the replayed answer included");
    assert_eq!(answered("400"), 1.0);
    assert_eq!(m.sum(names::HTTP_DURATION, &orders), (published + 2) as f64, "every request timed");
    assert_eq!(m.sum(names::PUBLISHED, &[("topic", topic), ("result", "acknowledged")]), published as f64);
    assert_eq!(m.sum(names::PUBLISH_DURATION, &[("topic", topic)]), published as f64);
    assert_eq!(m.sum(names::IDEMPOTENT_REPLAYS, &[]), 1.0);

    // Process and build.
    assert_eq!(m.sum(names::BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    assert!(m.sum("process_resident_memory_bytes", &[]) > 0.0);
    assert!(m.has("process_open_fds"));
    for sample in &m.0.samples {
        for forbidden in ["event_id", "order_id", "key", "idempotency_key"] {
            assert!(sample.labels.get(forbidden).is_none(), "{} is labelled by {forbidden}", sample.metric);
        }
    }

    // The dashboard and the alert rules name only metrics this scrape has.
    let scraped = m.names();
    let referenced = referenced_metrics();
    assert!(referenced.len() >= 10, "the dashboard and alerts reference metrics: {referenced:?}");
    let missing: BTreeSet<_> = referenced.iter().filter(|name| !scraped.contains(*name)).collect();
    assert!(missing.is_empty(), "referenced but not scraped: {missing:?}; scraped: {scraped:?}");
    app.shutdown().await;
}

/// Every metric named by the PromQL of `deploy/grafana/courier.json` and `deploy/prometheus/alerts.yml`
/// (histogram buckets by their base name; Prometheus's own `up` left out). Fails on an expression that does
/// not parse.
fn referenced_metrics() -> BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |relative: &str| {
        std::fs::read_to_string(root.join(relative)).unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
    };
    let mut expressions = Vec::new();
    let dashboard: Value = serde_json::from_str(&read("deploy/grafana/courier.json")).expect("the dashboard is JSON");
    collect_exprs(&dashboard, &mut expressions);
    assert!(!expressions.is_empty(), "the dashboard has queries");
    let alerts: serde_norway::Value =
        serde_norway::from_str(&read("deploy/prometheus/alerts.yml")).expect("alerts are YAML");
    let groups = alerts["groups"].as_sequence().expect("alerts.yml has groups");
    let mut alert_names = BTreeSet::new();
    for rule in groups.iter().flat_map(|g| g["rules"].as_sequence().expect("a group has rules")) {
        let name = rule["alert"].as_str().expect("every rule is an alert with a name");
        assert!(alert_names.insert(name.to_owned()), "alert {name} twice");
        assert!(rule["annotations"]["summary"].as_str().is_some_and(|s| !s.is_empty()), "{name} has a summary");
        assert!(rule["labels"]["severity"].as_str().is_some(), "{name} has a severity");
        expressions.push(rule["expr"].as_str().expect("an alert has an expr").to_owned());
    }
    assert!(alert_names.len() >= 4, "a few alerts: {alert_names:?}");
    let mut names = BTreeSet::new();
    for expression in &expressions {
        // Grafana's interval variables stand for a range.
        let promql =
            expression.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h");
        let expr = parser::parse(&promql).unwrap_or_else(|e| panic!("{expression:?} is not PromQL: {e}"));
        selectors(&expr, &mut names);
    }
    names.remove("up");
    names.into_iter().map(|name| name.strip_suffix("_bucket").map(str::to_owned).unwrap_or(name)).collect()
}

/// Every `expr` string in a dashboard's JSON.
fn collect_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) if !expr.trim().is_empty() => out.push(expr.clone()),
                    _ => collect_exprs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, out)),
        _ => {}
    }
}

/// The metric names of every selector in `expr`.
fn selectors(expr: &Expr, out: &mut BTreeSet<String>) {
    match expr {
        Expr::VectorSelector(vs) => out.extend(vs.name.clone()),
        Expr::MatrixSelector(ms) => out.extend(ms.vs.name.clone()),
        Expr::Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(param) = &a.param {
                selectors(param, out);
            }
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Subquery(s) => selectors(&s.expr, out),
        Expr::Call(call) => call.args.args.iter().for_each(|arg| selectors(arg, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}
