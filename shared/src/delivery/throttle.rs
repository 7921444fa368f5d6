//! Events an API keeps throttling. A 429 spends none of an event's attempts (see `worker`), so an API that
//! throttles one event for good would hold its key and its partition's commits with nothing but lag to show
//! it. Here throttling is made visible and, when asked, bounded:
//!
//! * `courier_events_throttled_total` counts each stretch of 429s an event goes through;
//! * an event throttled without a break for longer than `consumer.throttle_alert_ms` is listed on `/readyz`
//!   under `details` (the consumer stays ready: the API asks it to wait) and counted in
//!   `courier_events_throttled_long`;
//! * after `consumer.max_throttle_ms` (when set), each further 429 spends one of the event's attempts, so
//!   that the event ends in its dead letter.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::health::Health;
use crate::telemetry::metrics::EventMetrics;

/// How long a throttle may last before it is shown, and how long before it spends attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Throttled for longer than this without a break, an event is listed on `/readyz`.
    pub alert_after: Duration,
    /// Throttled for this long without a break, an event's further 429s spend attempts; `None`: never.
    pub charge_after: Option<Duration>,
}

/// The events of one consumer throttled for longer than the alert threshold, shown on `/readyz`.
pub struct Throttles {
    /// The thresholds.
    policy: ThrottlePolicy,
    /// Events listed now, by the id of their throttle: what each is (topic, partition, offset, event id).
    listed: Mutex<BTreeMap<u64, String>>,
    /// The id of the next throttle listed.
    next: AtomicU64,
    /// Where the list is shown (`details` of `/readyz`, under [`Throttles::component`]).
    health: Health,
    /// The name the list is shown under.
    component: String,
}

impl Throttles {
    /// The throttles of the consumer `metrics` counts for, shown on `health`.
    pub fn new(policy: ThrottlePolicy, metrics: &EventMetrics, health: Health) -> Self {
        let component = format!("throttled {}", metrics.consumer());
        Self { policy, listed: Mutex::default(), next: AtomicU64::new(0), health, component }
    }

    /// The name under which `/readyz` lists this consumer's long throttles.
    #[cfg(test)]
    pub fn component(&self) -> &str {
        &self.component
    }

    /// Shows the list as it is now.
    fn show(&self, listed: &BTreeMap<u64, String>, metrics: &EventMetrics) {
        metrics.throttled_long(listed.len());
        let detail = listed.values().next().map(|first| {
            let seconds = self.policy.alert_after.as_secs();
            match listed.len() {
                1 => format!("1 event throttled (429) for more than {seconds} s: {first}"),
                n => format!("{n} events throttled (429) for more than {seconds} s, among them {first}"),
            }
        });
        self.health.set_detail(&self.component, detail);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, String>> {
        self.listed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One event's stretch of 429s: started at its first 429, ended by any other outcome (or when the event's
/// delivery ends).
pub struct Throttle<'a> {
    /// The consumer's throttles.
    throttles: &'a Throttles,
    /// Its metrics.
    metrics: &'a EventMetrics,
    /// When the stretch began, while the event is throttled.
    since: Option<Instant>,
    /// Its id in the list, while listed.
    listed: Option<u64>,
}

/// What a 429 means for the event now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Wait as asked, spending no attempt.
    Wait,
    /// Throttled for longer than `consumer.max_throttle_ms`: the 429 spends an attempt.
    Charge,
}

impl<'a> Throttle<'a> {
    /// No throttle yet, for an event of the consumer `metrics` counts for.
    pub fn new(throttles: &'a Throttles, metrics: &'a EventMetrics) -> Self {
        Self { throttles, metrics, since: None, listed: None }
    }

    /// The event got a 429; `describe` says which event it is, for the list.
    pub fn throttled(&mut self, describe: impl FnOnce() -> String) -> Throttled {
        let now = Instant::now();
        let since = *self.since.get_or_insert_with(|| {
            self.metrics.throttled();
            now
        });
        let lasted = now.duration_since(since);
        let policy = self.throttles.policy;
        if self.listed.is_none() && lasted > policy.alert_after {
            let id = self.throttles.next.fetch_add(1, Ordering::Relaxed);
            let mut listed = self.throttles.lock();
            listed.insert(id, describe());
            self.throttles.show(&listed, self.metrics);
            self.listed = Some(id);
        }
        match policy.charge_after {
            Some(limit) if lasted >= limit => Throttled::Charge,
            _ => Throttled::Wait,
        }
    }

    /// The event got any other outcome: the stretch of 429s is over.
    pub fn ended(&mut self) {
        self.since = None;
        if let Some(id) = self.listed.take() {
            let mut listed = self.throttles.lock();
            listed.remove(&id);
            self.throttles.show(&listed, self.metrics);
        }
    }
}

impl Drop for Throttle<'_> {
    fn drop(&mut self) {
        self.ended();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn throttles(alert_after: u64, charge_after: Option<u64>) -> (Throttles, EventMetrics, Health) {
        let health = Health::default();
        let metrics = EventMetrics::new(Arc::from("test"));
        let policy = ThrottlePolicy {
            alert_after: Duration::from_secs(alert_after),
            charge_after: charge_after.map(Duration::from_secs),
        };
        (Throttles::new(policy, &metrics, health.clone()), metrics, health)
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_throttle_is_listed_until_it_ends_and_only_then_spends_attempts() {
        let (throttles, metrics, health) = throttles(60, Some(120));
        let mut throttle = Throttle::new(&throttles, &metrics);
        assert_eq!(throttle.throttled(|| "e-1".into()), Throttled::Wait);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(throttle.throttled(|| "orders/3@17 (event e-1)".into()), Throttled::Wait);
        let detail = health.details().remove(throttles.component()).expect("listed past the alert threshold");
        assert!(detail.contains("orders/3@17 (event e-1)") && detail.contains("60 s"), "{detail}");
        assert!(health.is_ready(), "a throttle is a detail, not a problem");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(throttle.throttled(String::new), Throttled::Charge, "past max_throttle_ms");
        throttle.ended();
        assert!(health.details().is_empty(), "delisted once a call got another answer");
        assert_eq!(throttle.throttled(String::new), Throttled::Wait, "a new stretch starts afresh");
    }

    #[tokio::test(start_paused = true)]
    async fn without_max_throttle_a_429_never_spends_an_attempt_and_a_dropped_delivery_is_delisted() {
        let (throttles, metrics, health) = throttles(1, None);
        let mut throttle = Throttle::new(&throttles, &metrics);
        throttle.throttled(String::new);
        tokio::time::advance(Duration::from_secs(86_400)).await;
        assert_eq!(throttle.throttled(|| "e-1".into()), Throttled::Wait);
        let mut other = Throttle::new(&throttles, &metrics);
        other.throttled(String::new);
        tokio::time::advance(Duration::from_secs(2)).await;
        other.throttled(|| "e-2".into());
        let detail = health.details().remove(throttles.component()).expect("listed");
        assert!(detail.starts_with("2 events throttled"), "{detail}");
        drop(throttle);
        drop(other);
        assert!(health.details().is_empty());
    }
}
