//! `[consumer]`: the delivery runtime every consumer runs on: how much is in flight, how events are retried,
//! how long rebalances and shutdowns may take, and where the health server listens.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_with::{DurationMilliSeconds, serde_as};

use super::durations::{MillisOrOff, check_duration};
use super::{MAX_CONCURRENCY, SettingsError, check};

/// `[consumer]`: the delivery runtime.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSettings {
    /// Most downstream calls in flight at once in one consumer process (over all partitions and keys).
    pub max_in_flight: usize,
    /// Most started-but-unfinished events per partition; the partition is paused at this bound and resumed
    /// when half of it drained, so memory stays bounded whatever the lag.
    pub max_buffered_per_partition: usize,
    /// Most started-but-unfinished events of the whole process, over all partitions (paused ones included);
    /// at this bound every partition is paused until half of it finished.
    pub max_buffered_total: usize,
    /// How often the watermark of finished events is committed.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub commit_interval_ms: Duration,
    /// Delay cap of the first retry of a transient failure; doubles with each attempt (full jitter).
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub retry_initial_backoff_ms: Duration,
    /// Upper bound of any retry delay (Retry-After included).
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub retry_max_backoff_ms: Duration,
    /// Attempts per event (the first call included) before it is routed to the failure path.
    pub retry_max_attempts: u32,
    /// Longest time an event may spend retrying before it is routed to the failure path.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub retry_max_elapsed_ms: Duration,
    /// On a rebalance, how long to wait for the revoked partitions' in-flight events before giving them up.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub rebalance_timeout_ms: Duration,
    /// On shutdown, how long to wait for in-flight events before exiting.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub drain_timeout_ms: Duration,
    /// An event an API has throttled (429) without a break for longer than this is listed on `/readyz` (`details`,
    /// without making the consumer not ready) and counted in `courier_events_throttled_long`.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    pub throttle_alert_ms: Duration,
    /// After an event has been throttled without a break for this long, each further 429 spends one of its attempts, so
    /// that an API throttling one event for good dead-letters it in the end; `None` (0): never (a 429 never spends an
    /// attempt).
    #[serde_as(as = "MillisOrOff")]
    pub max_throttle_ms: Option<Duration>,
    /// Address of the consumer's health server (`/healthz`, `/readyz`), `ip:port`; port 0 picks a free port.
    pub health_listen: SocketAddr,
}

/// The longest drain a container stop allows for (Kubernetes' default grace period is 30 s; the final
/// commit and leaving the group follow the drain).
const MAX_STOP: Duration = Duration::from_secs(25);

impl ConsumerSettings {
    /// Checks each field on its own.
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        check(self.max_in_flight >= 1, "consumer.max_in_flight", "must be at least 1 (0 would deliver nothing)")?;
        check(
            self.max_in_flight <= MAX_CONCURRENCY,
            "consumer.max_in_flight",
            &format!("must be at most {MAX_CONCURRENCY}"),
        )?;
        check(self.max_buffered_per_partition >= 1, "consumer.max_buffered_per_partition", "must be at least 1")?;
        for (setting, duration) in [
            ("consumer.commit_interval_ms", self.commit_interval_ms),
            ("consumer.retry_initial_backoff_ms", self.retry_initial_backoff_ms),
            ("consumer.retry_max_backoff_ms", self.retry_max_backoff_ms),
            ("consumer.retry_max_elapsed_ms", self.retry_max_elapsed_ms),
            ("consumer.rebalance_timeout_ms", self.rebalance_timeout_ms),
            ("consumer.drain_timeout_ms", self.drain_timeout_ms),
            ("consumer.throttle_alert_ms", self.throttle_alert_ms),
            ("consumer.max_throttle_ms", self.max_throttle_ms.unwrap_or_default()),
        ] {
            check_duration(setting, duration)?;
        }
        check(!self.commit_interval_ms.is_zero(), "consumer.commit_interval_ms", "must be positive")?;
        let most = MAX_STOP.as_millis();
        check(
            self.drain_timeout_ms <= MAX_STOP,
            "consumer.drain_timeout_ms",
            &format!(
                "must be at most {most} ms: with the final commit after it, a longer drain outlasts a container's \
                 stop (Kubernetes' default grace period is 30 s) and ends in SIGKILL"
            ),
        )?;
        check(!self.retry_initial_backoff_ms.is_zero(), "consumer.retry_initial_backoff_ms", "must be positive")?;
        check(self.retry_max_attempts >= 1, "consumer.retry_max_attempts", "must be at least 1")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{assert_refused, load};

    #[test]
    fn the_health_listen_address_is_checked() {
        assert_refused(&[
            ("COURIER__CONSUMER__HEALTH_LISTEN", "everywhere", "consumer.health_listen"),
            ("COURIER__CONSUMER__HEALTH_LISTEN", "localhost:8081", "consumer.health_listen"),
            ("COURIER__CONSUMER__HEALTH_LISTEN", "0.0.0.0", "consumer.health_listen"),
            ("COURIER__CONSUMER__HEALTH_LISTEN", "0.0.0.0:70000", "consumer.health_listen"),
        ]);
        let s = load(&[("COURIER__CONSUMER__HEALTH_LISTEN", "[::1]:9000")]).expect("an IPv6 address");
        assert_eq!(s.consumer.health_listen, std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 9000)));
    }

    #[test]
    fn zero_turns_max_throttle_off() {
        let off = load(&[]).expect("defaults");
        assert_eq!(off.consumer.max_throttle_ms, None, "0 by default: a 429 never spends an attempt");
        let on = load(&[("COURIER__CONSUMER__MAX_THROTTLE_MS", "90000")]).expect("valid");
        assert_eq!(on.consumer.max_throttle_ms, Some(Duration::from_secs(90)));
    }
}
