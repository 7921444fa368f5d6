//! Health and readiness of a consumer process.
//!
//! Components report problems by name ([`Health::set_problem`], [`Health::clear`]): an open circuit breaker,
//! the dead-letter guard throttling, no Kafka broker answering. The consumer also reports how many partitions
//! it is assigned ([`Health::set_assigned`]). [`serve`] answers `GET /healthz` (the process is alive, with its
//! assigned partitions) and `GET /readyz` (200 without problems, 503 listing them), for orchestrators and
//! operators, and `GET /metrics` for Prometheus. Components may also report details that do not make the
//! process unready but that an operator must see ([`Health::set_detail`]: events an API keeps throttling);
//! `/readyz` lists them under `details`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The problems a process has now; clones share them.
#[derive(Debug, Clone)]
pub struct Health {
    /// Component name → what is wrong with it, in words.
    problems: Arc<Mutex<BTreeMap<String, String>>>,
    /// Bumped on every change, so that tests and servers can await one.
    changed: Arc<watch::Sender<u64>>,
    /// Partitions each consumer of the process is assigned now, by consumer (a `forward` process runs one
    /// consumer per route, sharing one health).
    assigned: Arc<Mutex<BTreeMap<String, usize>>>,
    /// Component name → what an operator should know about it, in words; not a problem (the process stays
    /// ready).
    details: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            problems: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
            assigned: Arc::default(),
            details: Arc::default(),
        }
    }
}

impl Health {
    /// Records that `component` has a problem, described by `reason`.
    pub fn set_problem(&self, component: &str, reason: impl Into<String>) {
        let reason = reason.into();
        if let Ok(mut problems) = self.problems.lock() {
            if problems.get(component) == Some(&reason) {
                return;
            }
            problems.insert(component.to_owned(), reason);
        }
        self.changed.send_modify(|v| *v += 1);
    }

    /// Records that `component` is fine again.
    pub fn clear(&self, component: &str) {
        let removed = self.problems.lock().map(|mut p| p.remove(component).is_some()).unwrap_or(false);
        if removed {
            self.changed.send_modify(|v| *v += 1);
        }
    }

    /// Records what an operator should know about `component` (without making the process unready); `None`
    /// removes it.
    pub fn set_detail(&self, component: &str, detail: Option<String>) {
        let changed = self
            .details
            .lock()
            .map(|mut details| match detail {
                Some(detail) => details.insert(component.to_owned(), detail.clone()).as_ref() != Some(&detail),
                None => details.remove(component).is_some(),
            })
            .unwrap_or(false);
        if changed {
            self.changed.send_modify(|v| *v += 1);
        }
    }

    /// The current details.
    pub fn details(&self) -> BTreeMap<String, String> {
        self.details.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Records how many partitions `consumer` is assigned now.
    pub fn set_assigned(&self, consumer: &str, partitions: usize) {
        let before = self.assigned.lock().map(|mut a| a.insert(consumer.to_owned(), partitions));
        if before.ok().flatten() != Some(partitions) {
            self.changed.send_modify(|v| *v += 1);
        }
    }

    /// A receiver that sees every change (problems or assignment).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// How many partitions the process's consumers are assigned now, together.
    pub fn assigned(&self) -> usize {
        self.assigned.lock().map(|a| a.values().sum()).unwrap_or(0)
    }

    /// Waits until the number of assigned partitions satisfies `condition`, or `timeout` passes; returns
    /// whether it did.
    pub async fn wait_for_assigned(&self, timeout: std::time::Duration, condition: impl Fn(usize) -> bool) -> bool {
        let this = self.clone();
        self.wait_for(timeout, move |_| condition(this.assigned())).await
    }

    /// Waits until `condition` holds for the current details, or `timeout` passes; returns whether it held.
    pub async fn wait_for_details(
        &self,
        timeout: std::time::Duration,
        condition: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> bool {
        let this = self.clone();
        self.wait_for(timeout, move |_| condition(&this.details())).await
    }

    /// The current problems.
    pub fn problems(&self) -> BTreeMap<String, String> {
        self.problems.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Whether there is no problem.
    pub fn is_ready(&self) -> bool {
        self.problems.lock().map(|p| p.is_empty()).unwrap_or(false)
    }

    /// Waits until `condition` holds for the current problems, or `timeout` passes; returns whether it held.
    pub async fn wait_for(
        &self,
        timeout: std::time::Duration,
        mut condition: impl FnMut(&BTreeMap<String, String>) -> bool,
    ) -> bool {
        let mut rx = self.changed.subscribe();
        let this = self.clone();
        tokio::time::timeout(timeout, async move {
            loop {
                if condition(&this.problems()) {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .is_ok()
    }
}

/// Serves `/healthz`, `/readyz` and `/metrics` (Prometheus) on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, health: Health, shutdown: CancellationToken) -> std::io::Result<()> {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::telemetry::metrics::scrape))
        .with_state(health);
    axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

async fn healthz(State(health): State<Health>) -> Json<Value> {
    Json(json!({"status": "alive", "assigned_partitions": health.assigned()}))
}

async fn readyz(State(health): State<Health>) -> (StatusCode, Json<Value>) {
    let problems = health.problems();
    let (status, mut body) = if problems.is_empty() {
        (StatusCode::OK, json!({"status": "ready"}))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, json!({"status": "not ready", "problems": problems}))
    };
    let details = health.details();
    if !details.is_empty() {
        body["details"] = json!(details);
    }
    (status, Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn problems_come_and_go() {
        let health = Health::default();
        assert!(health.is_ready());
        let waiter = {
            let h = health.clone();
            tokio::spawn(async move { h.wait_for(Duration::from_secs(5), |p| p.contains_key("breaker")).await })
        };
        health.set_problem("breaker", "inventory circuit open");
        assert!(waiter.await.expect("joins"));
        assert!(!health.is_ready());
        health.clear("breaker");
        assert!(health.is_ready());
    }
}
