//! `[telemetry]`: logs, traces and the lag metric.

use std::time::Duration;

use serde::Deserialize;
use serde_with::serde_as;

use super::durations::{MillisOrOff, check_duration};
use super::{SettingsError, invalid};

/// `[telemetry]`: logs, traces and metrics.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `tracing` filter directive, e.g. `info` or `info,courier=debug`.
    pub log_level: String,
    /// `json` (one JSON object a line, for containers) or `pretty` (for people).
    pub log_format: LogFormat,
    /// OTLP/gRPC endpoint traces are exported to (e.g. `http://otel-collector:4317`); empty: not exported
    /// unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub otlp_endpoint: String,
    /// How often a consumer reads librdkafka's statistics for `courier_consumer_lag`; `None` (0): no lag metric.
    #[serde_as(as = "MillisOrOff")]
    pub statistics_interval_ms: Option<Duration>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

impl TelemetrySettings {
    /// Checks each field on its own.
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            return Err(invalid("telemetry.log_level", e.to_string()));
        }
        let endpoint = self.otlp_endpoint.trim();
        if !endpoint.is_empty()
            && reqwest::Url::parse(endpoint).map_or(true, |u| !["http", "https"].contains(&u.scheme()))
        {
            return Err(invalid("telemetry.otlp_endpoint", format!("{endpoint:?} is not an http(s) URL")));
        }
        check_duration("telemetry.statistics_interval_ms", self.statistics_interval_ms.unwrap_or_default())
    }
}
