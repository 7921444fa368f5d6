//! The real binaries of a chaos run (`producer`, `inventory`, `payment`, `notification`), started as child
//! processes with the run's `COURIER__*` settings, each consumer with a health server of its own, from the
//! workspace's root as the scripts start them (a relative path in the settings, such as the producer's event
//! schema `schemas/events/user.registered.json`, resolves there whatever directory the run starts from).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

pub use courier_tests::app::Consumer;

/// The workspace's root, the binaries' working directory.
const WORKSPACE_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// One running consumer process.
pub struct Member {
    /// Which consumer it is.
    pub consumer: Consumer,
    /// Its health server's port.
    pub health_port: u16,
    /// The process.
    child: Child,
}

/// Starts binaries from one directory with one set of settings.
#[derive(Clone)]
pub struct Fleet {
    /// Where the binaries are.
    bin_dir: PathBuf,
    /// `COURIER__*` settings every process gets.
    env: HashMap<String, String>,
    /// Where the processes' logs go (appended), when set.
    log_dir: Option<PathBuf>,
}

impl Fleet {
    /// A fleet running the binaries of `bin_dir` with `env`; logs to `log_dir` when given.
    pub fn new(bin_dir: &Path, env: HashMap<String, String>, log_dir: Option<PathBuf>) -> Self {
        Self { bin_dir: bin_dir.to_owned(), env, log_dir }
    }

    /// The `COURIER__*` settings every process gets.
    pub fn env(&self) -> &HashMap<String, String> {
        &self.env
    }

    fn command(&self, binary: &str, extra: &[(&str, String)]) -> anyhow::Result<Command> {
        let path = self.bin_dir.join(binary);
        anyhow::ensure!(path.exists(), "{} not found: build the binaries first (cargo build)", path.display());
        let mut command = Command::new(path);
        command.current_dir(WORKSPACE_ROOT).envs(&self.env).envs(extra.iter().map(|(k, v)| (*k, v.as_str())));
        let stderr = match &self.log_dir {
            Some(dir) => {
                let file =
                    std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{binary}.log")))?;
                Stdio::from(file)
            }
            None => Stdio::null(),
        };
        command.stdout(Stdio::null()).stderr(stderr).kill_on_drop(true);
        Ok(command)
    }

    /// Starts the order API on `port` and waits until it answers.
    pub async fn start_producer(&self, port: u16) -> anyhow::Result<Child> {
        let listen = format!("127.0.0.1:{port}");
        let child = self.command("producer", &[("COURIER__PRODUCER__LISTEN", listen)])?.spawn()?;
        wait_for_http(&format!("http://127.0.0.1:{port}/healthz"), Duration::from_secs(60)).await?;
        Ok(child)
    }

    /// Starts one member of `consumer`'s group.
    pub fn start(&self, consumer: Consumer) -> anyhow::Result<Member> {
        let health_port = courier_tests::broker::free_port()?;
        let listen = format!("127.0.0.1:{health_port}");
        let child = self.command(consumer.name, &[("COURIER__CONSUMER__HEALTH_LISTEN", listen)])?.spawn()?;
        Ok(Member { consumer, health_port, child })
    }
}

impl Member {
    /// Kills the process with SIGKILL: nothing is drained or committed.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Stops the process with SIGTERM and waits for it; `true` when it exited 0.
    pub async fn stop(mut self) -> anyhow::Result<bool> {
        terminate(&mut self.child).await
    }

    /// Partitions the member reports assigned (from its `/healthz`), when it answers.
    pub async fn assigned(&self) -> Option<u64> {
        let url = format!("http://127.0.0.1:{}/healthz", self.health_port);
        let body: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
        body["assigned_partitions"].as_u64()
    }
}

/// Stops `child` with SIGTERM and waits for it (SIGKILL after 60 s); `true` when it exited 0.
pub async fn terminate(child: &mut Child) -> anyhow::Result<bool> {
    if let Some(pid) = child.id() {
        Command::new("kill").args(["-TERM", &pid.to_string()]).status().await?;
    }
    match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
        Ok(status) => Ok(status?.success()),
        Err(_) => {
            child.kill().await?;
            Ok(false)
        }
    }
}

/// Waits until `url` answers 200.
async fn wait_for_http(url: &str, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if reqwest::get(url).await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        anyhow::ensure!(started.elapsed() < limit, "{url} did not answer within {limit:?}");
        // Another process starting: ask again shortly.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
