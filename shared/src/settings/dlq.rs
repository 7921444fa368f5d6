//! `[dlq]`: where undeliverable events go, and the guard that stops a flood of them.

use std::time::Duration;

use serde::Deserialize;
use serde_with::{DurationMilliSeconds, serde_as};

use super::SettingsError;
use super::durations::check_duration;

/// `[dlq]`: dead-lettering.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqSettings {
    /// Whether undeliverable events go to the dead-letter topic `<topic>.<group>.dlq` (else they are logged
    /// and skipped).
    pub enabled: bool,
    /// Most events one consumer may dead-letter within any `guard_window_ms`; past it, events bound for the
    /// dead-letter topic wait their turn (a downstream outage or a bad deploy is not a stream of poison
    /// pills to dump at full speed); 0 disables the guard.
    pub guard_max_records: u32,
    /// The guard's sliding window.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub guard_window_ms: Duration,
}

impl DlqSettings {
    /// Checks each field on its own.
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        check_duration("dlq.guard_window_ms", self.guard_window_ms)
    }
}
