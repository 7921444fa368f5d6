//! How duration settings are read and bounded. A duration keeps its unit in its key and is written as a whole
//! number (`session_timeout_ms = 45000`, `idempotency_ttl_secs = 86400`); its field is a `Duration`, read with
//! serde_with's `DurationMilliSeconds<u64>` or `DurationSeconds<u64>`, or with [`MillisOrOff`] where 0 turns
//! the feature off. Every duration is at most [`MAX_DURATION`].

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_with::DeserializeAs;

use super::{SettingsError, check};

/// The longest any duration setting may be: a week. Longer values are surely mistakes, and values near
/// `u64::MAX` milliseconds would overflow the clock arithmetic of timers.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Checks that duration `setting` is at most [`MAX_DURATION`].
pub(super) fn check_duration(setting: &str, duration: Duration) -> Result<(), SettingsError> {
    let most = MAX_DURATION.as_millis();
    check(duration <= MAX_DURATION, setting, &format!("must be at most {most} ms (a week)"))
}

/// Whole milliseconds, where 0 means "off": `None`.
pub(super) struct MillisOrOff;

impl<'de> DeserializeAs<'de, Option<Duration>> for MillisOrOff {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        let millis = u64::deserialize(deserializer)?;
        Ok((millis > 0).then(|| Duration::from_millis(millis)))
    }
}
