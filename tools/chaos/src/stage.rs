//! The stage of one scenario: a fresh broker, the mock APIs, the order API and consumer groups of the real
//! binaries, with the settings a user runs (every default but Tansu's short group timeouts and workarounds).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mock_apis::{MockApis, MockApisConfig};
use tokio::process::Child;

use crate::cluster::Broker;
use crate::fleet::{Fleet, Member};
use crate::load::{Accepted, Answers, Load};
use courier_tests::app::registry;

/// Where the binaries are and where logs go.
#[derive(Debug, Clone)]
pub struct Options {
    /// The directory holding `producer`, `inventory`, `payment` and `notification`.
    pub bin_dir: PathBuf,
    /// The short variant (CI): fewer events and faults.
    pub quick: bool,
    /// Where the logs of the broker, the processes and the in-process members go; none when `None`.
    pub log_dir: Option<PathBuf>,
}

/// One scenario's running system.
pub struct Stage {
    /// The broker.
    pub broker: Broker,
    /// The downstream APIs.
    pub mock: MockApis,
    /// Starts processes.
    pub fleet: Fleet,
    /// The order API process.
    producer: Child,
    /// `http://127.0.0.1:port` of the order API.
    pub producer_url: String,
    /// Running consumer processes.
    pub members: Vec<Member>,
    /// What the order API answered.
    pub answers: Arc<Answers>,
    /// Whether this is the short variant.
    pub quick: bool,
}

impl Stage {
    /// Starts a broker, the mock APIs, the order API and `per_group` members of every consumer, with `extra`
    /// settings on top.
    pub async fn up(options: &Options, per_group: usize, extra: &[(&str, &str)]) -> anyhow::Result<Stage> {
        Self::up_but(options, per_group, extra, None).await
    }

    /// Like [`Stage::up`], without processes of `in_process`: the scenario runs that group itself
    /// ([`crate::in_process`]).
    pub async fn up_but(
        options: &Options,
        per_group: usize,
        extra: &[(&str, &str)],
        in_process: Option<registry::Registration>,
    ) -> anyhow::Result<Stage> {
        let broker = Broker::start(options.log_dir.as_deref()).await?;
        let mock = MockApis::start(MockApisConfig::default()).await?;
        let mut env: HashMap<String, String> = HashMap::new();
        let mut set = |k: &str, v: &str| {
            env.insert(k.to_owned(), v.to_owned());
        };
        set("COURIER__KAFKA__BOOTSTRAP_SERVERS", &broker.bootstrap);
        // Tansu needs short group timeouts and two workarounds (RELIABILITY.md; the third, cooperative-sticky
        // assignment, is the default); everything else is default.
        set("COURIER__KAFKA__SESSION_TIMEOUT_MS", "6000");
        set("COURIER__KAFKA__HEARTBEAT_INTERVAL_MS", "1500");
        set("COURIER__KAFKA__MAX_POLL_INTERVAL_MS", "15000");
        set("COURIER__KAFKA__REJOIN_UNASSIGNED_AFTER_MS", "15000");
        set("COURIER__CONSUMER__REBALANCE_TIMEOUT_MS", "1000");
        set("COURIER__TELEMETRY__LOG_FORMAT", "json");
        for api in registry::CONSUMERS.iter().flat_map(|consumer| consumer.apis) {
            set(&format!("COURIER__APIS__{}__BASE_URL", api.to_uppercase()), &mock.api_url(api));
        }
        for (k, v) in extra {
            set(k, v);
        }
        if let Some(dir) = &options.log_dir {
            std::fs::create_dir_all(dir)?;
        }
        let fleet = Fleet::new(&options.bin_dir, env, options.log_dir.clone());
        let port = courier_tests::broker::free_port()?;
        let producer = fleet.start_producer(port).await?;
        let mut members = Vec::new();
        for consumer in registry::CONSUMERS {
            if in_process.as_ref().is_some_and(|group| group.name == consumer.name) {
                continue;
            }
            for _ in 0..per_group {
                members.push(fleet.start(consumer)?);
            }
        }
        Ok(Stage {
            broker,
            mock,
            fleet,
            producer,
            producer_url: format!("http://127.0.0.1:{port}"),
            members,
            answers: Arc::new(Answers::default()),
            quick: options.quick,
        })
    }

    /// The settings every process of the stage runs with, for a group run in-process (its health server on a
    /// free port).
    pub fn settings(&self) -> anyhow::Result<courier::settings::Settings> {
        let mut env = self.fleet.env().clone();
        env.insert("COURIER__CONSUMER__HEALTH_LISTEN".into(), "127.0.0.1:0".into());
        Ok(courier::settings::Settings::load_with_env(None, Some(env))?)
    }

    /// Posts orders as `load` says, in the background.
    pub fn post(&self, load: Load) -> tokio::task::JoinHandle<Vec<Accepted>> {
        let (url, answers) = (self.producer_url.clone(), Arc::clone(&self.answers));
        tokio::spawn(async move { crate::load::post_orders(&url, load, answers).await })
    }

    /// Dead letters per dead-letter topic, counted as distinct source records.
    pub async fn dead_letters(&self) -> anyhow::Result<BTreeMap<String, usize>> {
        let mut counts = BTreeMap::new();
        for (source, group) in [
            ("orders.created", "inventory"),
            ("orders.created", "payment"),
            ("orders.created", "notification"),
            ("orders.payment-failed", "inventory"),
        ] {
            let topic = courier::delivery::dlq::dlq_topic(source, group);
            let total = courier_tests::kafka_probe::record_count(&self.broker.bootstrap, &topic).await?;
            let n = usize::try_from(total).unwrap_or(0);
            let letters =
                courier_tests::kafka_probe::read_all(&self.broker.bootstrap, &topic, n, Duration::from_secs(60))
                    .await?;
            let distinct: std::collections::HashSet<(Option<String>, Option<String>)> = letters
                .iter()
                .map(|r| (r.header("courier.dlq.original.partition"), r.header("courier.dlq.original.offset")))
                .collect();
            counts.insert(topic, distinct.len());
        }
        Ok(counts)
    }

    /// Stops every process with SIGTERM (consumers first, the order API last); `true` when all exited 0.
    pub async fn down(mut self) -> anyhow::Result<bool> {
        let mut clean = true;
        for member in self.members.drain(..) {
            clean &= member.stop().await?;
        }
        clean &= crate::fleet::terminate(&mut self.producer).await?;
        self.mock.shutdown().await;
        Ok(clean)
    }
}
