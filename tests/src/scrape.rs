//! Reading a Prometheus `/metrics` scrape: fetch it, then ask for the sum of a metric's samples whose labels
//! match.

use prometheus_parse::{Scrape, Value};

/// A parsed scrape.
pub struct Metrics(pub Scrape);

/// `GET url` (a `/metrics` endpoint) and parse the exposition.
pub async fn scrape(url: &str) -> anyhow::Result<Metrics> {
    let response = reqwest::get(url).await?.error_for_status()?;
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    anyhow::ensure!(content_type.starts_with("text/plain"), "content type {content_type:?}");
    let text = response.text().await?;
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    Ok(Metrics(Scrape::parse(lines)?))
}

impl Metrics {
    /// The sum of the samples of `name` whose labels include every `(label, value)` of `labels`; a
    /// histogram counts its observations. 0 when there is none.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
                Value::Summary(_) => 0.0,
            })
            .sum()
    }

    /// Whether any sample of `name` (a histogram's base name included) is present.
    pub fn has(&self, name: &str) -> bool {
        self.0.samples.iter().any(|s| s.metric == name)
    }

    /// Every metric name in the scrape, histograms by their base name.
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.0.samples.iter().map(|s| s.metric.clone()).collect()
    }
}
