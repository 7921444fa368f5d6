//! One `replay` or `drain` of a dead-letter topic at a time: the **lock**, membership of a consumer group
//! (`courier-dlq-lock-<topic>`, after `kafka.group_id_prefix`) holding its only partition.
//!
//! A run joins the group, subscribed to the ledger's topic ([`LEDGER_TOPIC`], one partition) with the
//! cooperative-sticky assignor, before it reads its position, and goes on only once it is assigned that
//! partition. A member that joins while another holds it gets nothing (the sticky assignor leaves a partition
//! with its owner, and one partition cannot be shared), so it refuses to start ([`DlqError::Locked`]) and
//! names the group's members. The group coordinator decides: of two runs started at the same instant, one
//! is assigned the partition. The holder keeps its membership by polling on a thread of its own and leaves
//! the group when the run ends, also when it is interrupted (Ctrl-C, SIGTERM: `main` drops the run).
//!
//! A run killed outright stays a member until its session times out (`kafka.session_timeout_ms`): that is
//! how the lock of a crashed run expires. A run started meanwhile waits in its join until the dead member is
//! removed and then gets the partition (on Tansu 0.6.0, with a 6 s session, five reruns started right after a
//! SIGKILL all went on this way); should a coordinator give it nothing instead, it is refused like any later
//! member and can be run again after the session timeout. A holder that loses the partition (its process
//! stalled past the session timeout) stops before its next send or commit ([`LockWatch::check`],
//! [`DlqError::LockLost`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use courier::kafka;
use courier::settings::Settings;
use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};

use crate::error::DlqError;
use crate::ledger::{self, LEDGER_TOPIC};
use crate::read::REQUEST_TIMEOUT;

/// Where the lock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Joining: the group has not assigned this member yet.
    Joining,
    /// This member holds the partition.
    Held,
    /// The group assigned the partition to another member.
    Refused,
    /// This member held the partition and no longer does (or the lock was released).
    Lost,
}

/// The lock's state, shared with the polling thread's rebalance callbacks.
struct Shared {
    /// Where the lock stands.
    state: Mutex<State>,
    /// Signalled on every change of `state`.
    changed: Condvar,
    /// The last error the group's client reported, for a join that never completes.
    last_error: Mutex<Option<String>>,
}

impl Shared {
    /// The state now.
    fn get(&self) -> State {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the state with `to` and wakes the waiter.
    fn update(&self, to: impl FnOnce(State) -> State) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = to(*state);
        self.changed.notify_all();
    }

    /// Waits until the join is decided or `limit` passed; the state then.
    fn decided(&self, limit: Duration) -> State {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (state, _) = self
            .changed
            .wait_timeout_while(state, limit, |s| *s == State::Joining)
            .unwrap_or_else(PoisonError::into_inner);
        *state
    }
}

/// Whether `list` holds the ledger topic's partition.
fn holds(list: &TopicPartitionList) -> bool {
    list.elements().iter().any(|e| e.topic() == LEDGER_TOPIC && e.partition() == 0)
}

/// The lock group's client context: follows the assignment.
struct LockContext {
    /// The lock's state.
    shared: Arc<Shared>,
}

impl ClientContext for LockContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "lock group client error");
        *self.shared.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for LockContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            // librdkafka hands every cooperative assignment to this callback, an empty one included: the first
            // one decides the join.
            Rebalance::Assign(list) => {
                // The group is a lock: nothing is read through it.
                if let Err(error) = consumer.pause(list) {
                    tracing::debug!(%error, "cannot pause the lock partition");
                }
                let ours = holds(list);
                self.shared.update(|state| match state {
                    State::Joining if ours => State::Held,
                    State::Joining => State::Refused,
                    other => other,
                });
            }
            Rebalance::Revoke(list) if holds(list) => {
                self.shared.update(|state| if state == State::Held { State::Lost } else { state });
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => {
                tracing::warn!(%error, "lock group rebalance error");
                *self.shared.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
            }
        }
    }
}

/// What a run checks, before each send or commit, to know it still holds the lock.
#[derive(Clone)]
pub struct LockWatch {
    /// The lock's state.
    shared: Arc<Shared>,
    /// The dead-letter topic.
    topic: String,
    /// The lock group.
    group: String,
}

impl LockWatch {
    /// `Ok` while the lock is held; [`DlqError::LockLost`] once it is not.
    pub fn check(&self) -> Result<(), DlqError> {
        match self.shared.get() {
            State::Held => Ok(()),
            _ => Err(DlqError::LockLost { topic: self.topic.clone(), group: self.group.clone() }),
        }
    }
}

/// The lock on one dead-letter topic, held until dropped.
pub struct Lock {
    /// Its state, topic and group.
    watch: LockWatch,
    /// Tells the polling thread to leave the group.
    stop: Arc<AtomicBool>,
    /// The polling thread (it owns the group's client).
    poller: Option<JoinHandle<()>>,
}

impl Lock {
    /// Takes the lock on `topic` (blocking): joins its group and waits until the group assigned its partition,
    /// to this run ([`Lock`]) or to another ([`DlqError::Locked`]).
    pub fn take(settings: &Settings, topic: &str) -> Result<Lock, DlqError> {
        ledger::ensure_topic(settings)?;
        let kafka = &settings.kafka;
        let group = kafka.group_id(&format!("courier-dlq-lock-{topic}"));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::Joining),
            changed: Condvar::new(),
            last_error: Mutex::new(None),
        });
        let consumer: BaseConsumer<LockContext> =
            kafka::base_config(kafka, &format!("dlq-lock-{}", std::process::id()))
                .set("group.id", &group)
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", "latest")
                .set("session.timeout.ms", kafka.session_timeout_ms.as_millis().to_string())
                .set("heartbeat.interval.ms", kafka.heartbeat_interval_ms.as_millis().to_string())
                .set("max.poll.interval.ms", kafka.max_poll_interval_ms.as_millis().to_string())
                .set("partition.assignment.strategy", "cooperative-sticky")
                .create_with_context(LockContext { shared: Arc::clone(&shared) })
                .map_err(DlqError::kafka("creating the lock's Kafka client"))?;
        consumer.subscribe(&[LEDGER_TOPIC]).map_err(DlqError::kafka(&format!("joining group {group}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("dlq-lock".into())
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        if let Some(Err(error)) = consumer.poll(Duration::from_millis(100)) {
                            tracing::debug!(%error, "lock group poll");
                        }
                    }
                    // Leaves the group now rather than when the session times out.
                    consumer.unsubscribe();
                    drop(consumer);
                })
                .map_err(|source| DlqError::Io { path: "courier-dlq lock thread".into(), source })?
        };
        let watch = LockWatch { shared: Arc::clone(&shared), topic: topic.to_owned(), group: group.clone() };
        let lock = Lock { watch, stop, poller: Some(poller) };
        // A dead member is removed after its session timeout, and a rebalance may take up to another.
        let limit = 2 * kafka.session_timeout_ms + Duration::from_secs(10);
        let started = Instant::now();
        match shared.decided(limit) {
            State::Held => {
                tracing::info!(%group, %topic, waited_ms = started.elapsed().as_millis() as u64, "lock taken");
                Ok(lock)
            }
            State::Refused | State::Lost => {
                tracing::info!(%group, %topic, waited_ms = started.elapsed().as_millis() as u64, "lock held by another run");
                drop(lock);
                Err(DlqError::Locked {
                    topic: topic.to_owned(),
                    group: group.clone(),
                    members: members(settings, &group),
                    session_timeout_ms: kafka.session_timeout_ms.as_millis(),
                })
            }
            State::Joining => {
                let last_error = shared.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone();
                drop(lock);
                Err(DlqError::LockTimeout {
                    topic: topic.to_owned(),
                    group,
                    waited: limit,
                    last_error: last_error.unwrap_or_else(|| "none reported".into()),
                })
            }
        }
    }

    /// What a run checks to know it still holds the lock.
    pub fn watch(&self) -> LockWatch {
        self.watch.clone()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // A run still going (its future dropped, a blocking part still working) stops at its next check.
        self.watch.shared.update(|_| State::Lost);
        self.stop.store(true, Ordering::SeqCst);
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
    }
}

/// `; its members: client-id@host, …` of `group`, for the error that names who holds the lock (best effort:
/// empty when the broker does not say).
fn members(settings: &Settings, group: &str) -> String {
    let Ok(client) = kafka::base_config(&settings.kafka, "dlq-lock-probe").create::<BaseConsumer>() else {
        return String::new();
    };
    let Ok(groups) = client.fetch_group_list(Some(group), REQUEST_TIMEOUT) else { return String::new() };
    let members: Vec<String> = groups
        .groups()
        .iter()
        .flat_map(|g| g.members())
        .map(|m| format!("{}@{}", m.client_id(), m.client_host()))
        .collect();
    match members.is_empty() {
        true => String::new(),
        false => format!("; its members: {}", members.join(", ")),
    }
}
