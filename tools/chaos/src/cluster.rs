//! The broker of a chaos run: Tansu on sqlite storage in a directory of its own, on a fixed loopback port,
//! which the suite can kill with SIGKILL and start again on the same storage.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::{Child, Command};

/// One Tansu broker.
pub struct Broker {
    /// `127.0.0.1:port`.
    pub bootstrap: String,
    /// Holds the sqlite file (and the log, when no log directory is given).
    dir: tempfile::TempDir,
    /// The broker's log file.
    log: PathBuf,
    /// The running process, when it runs.
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker on a free port, logging to `<log_dir>/broker.log` (appended to) or to its own directory,
    /// and waits until it answers.
    pub async fn start(log_dir: Option<&Path>) -> anyhow::Result<Self> {
        let port = courier_tests::broker::free_port()?;
        let dir = tempfile::Builder::new().prefix("courier-chaos-").tempdir()?;
        let log = log_dir.unwrap_or(dir.path()).join("broker.log");
        let mut broker = Self { bootstrap: format!("127.0.0.1:{port}"), dir, log, child: None };
        broker.restart().await?;
        Ok(broker)
    }

    /// Starts the broker process again on the same port and storage, and waits until it answers.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let url = format!("tcp://{}", self.bootstrap);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(tansu_binary())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://courier.db"])
            .current_dir(self.dir.path())
            .env_remove("STORAGE_ENGINE")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        self.child = Some(child);
        courier_tests::broker::wait_until_reachable(&self.bootstrap, Duration::from_secs(60)).await
    }

    /// Kills the broker with SIGKILL (no flush, no goodbye) and waits for it to be gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }
}

fn tansu_binary() -> PathBuf {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    match home.map(|h| h.join("bin").join("tansu")) {
        Ok(path) if path.exists() => path,
        _ => PathBuf::from("tansu"),
    }
}
