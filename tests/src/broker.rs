//! The test broker, started once per test binary and shared by its tests (each test uses its own topics and
//! consumer groups). Apache Kafka in a container is tried only with the `docker` feature (on by default).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::sync::OnceCell;

/// Environment variable naming an existing broker (`host:port`) to test against.
pub const BOOTSTRAP_ENV: &str = "COURIER_TEST_BOOTSTRAP";

/// A broker the tests can reach.
pub struct TestBroker {
    /// `host:port` to bootstrap from.
    pub bootstrap: String,
    /// What provides it, for logs: `environment`, `testcontainers` or `tansu`.
    pub kind: &'static str,
    /// Keeps a Tansu broker or a container alive for the whole test binary.
    _guard: Guard,
}

enum Guard {
    None,
    Tansu(#[allow(dead_code)] TansuProcess),
    #[cfg(feature = "docker")]
    Container(#[allow(dead_code)] Box<dyn std::any::Any + Send + Sync>),
}

static BROKER: OnceCell<TestBroker> = OnceCell::const_new();

/// The shared test broker, started on first use.
pub async fn broker() -> &'static TestBroker {
    BROKER
        .get_or_init(|| async {
            let broker = start().await.unwrap_or_else(|e| panic!("no test broker: {e:#}"));
            tracing::info!(bootstrap = %broker.bootstrap, kind = broker.kind, "test broker ready");
            broker
        })
        .await
}

async fn start() -> anyhow::Result<TestBroker> {
    if let Ok(bootstrap) = std::env::var(BOOTSTRAP_ENV) {
        wait_until_reachable(&bootstrap, Duration::from_secs(60)).await?;
        return Ok(TestBroker { bootstrap, kind: "environment", _guard: Guard::None });
    }
    #[cfg(feature = "docker")]
    if docker_answers() {
        return start_container().await;
    }
    let tansu = TansuProcess::start()?;
    let bootstrap = tansu.bootstrap.clone();
    wait_until_reachable(&bootstrap, Duration::from_secs(60)).await.map_err(|e| {
        anyhow::anyhow!("{e:#}\ntansu log:\n{}", std::fs::read_to_string(tansu.log_path()).unwrap_or_default())
    })?;
    Ok(TestBroker { bootstrap, kind: "tansu", _guard: Guard::Tansu(tansu) })
}

/// Whether a Docker daemon answers on its socket (`DOCKER_HOST` or the default Unix socket).
#[cfg(feature = "docker")]
fn docker_answers() -> bool {
    let socket = match std::env::var("DOCKER_HOST") {
        Ok(host) => match host.strip_prefix("unix://") {
            Some(path) => PathBuf::from(path),
            None => return !host.is_empty(),
        },
        Err(_) => PathBuf::from("/var/run/docker.sock"),
    };
    use std::io::Write;
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 64];
    matches!(std::io::Read::read(&mut stream, &mut reply), Ok(n) if n > 0 && reply[..n].starts_with(b"HTTP/1."))
}

#[cfg(feature = "docker")]
async fn start_container() -> anyhow::Result<TestBroker> {
    use testcontainers_modules::kafka::apache::{KAFKA_PORT, Kafka};
    use testcontainers_modules::testcontainers::runners::AsyncRunner;
    let container = Kafka::default().start().await?;
    let port = container.get_host_port_ipv4(KAFKA_PORT).await?;
    let bootstrap = format!("127.0.0.1:{port}");
    wait_until_reachable(&bootstrap, Duration::from_secs(120)).await?;
    Ok(TestBroker { bootstrap, kind: "testcontainers", _guard: Guard::Container(Box::new(container)) })
}

/// Polls the broker's metadata until it answers or `limit` passes.
pub async fn wait_until_reachable(bootstrap: &str, limit: Duration) -> anyhow::Result<()> {
    let bootstrap = bootstrap.to_owned();
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create()?;
        let deadline = Instant::now() + limit;
        loop {
            match client.fetch_metadata(None, Duration::from_secs(2)) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    anyhow::bail!("broker {bootstrap} not reachable after {limit:?}: {e}")
                }
                Err(_) => {}
            }
        }
    })
    .await?
}

/// A Tansu broker on sqlite storage in a temporary directory, on a free loopback port.
///
/// It runs under a small shell that holds a pipe from this process on its standard input: when the test
/// process ends, however it ends, the pipe closes and the shell stops the broker, so no broker outlives its
/// tests.
pub struct TansuProcess {
    /// `127.0.0.1:port`.
    pub bootstrap: String,
    /// The shell supervising the broker; its stdin is the lifeline pipe.
    child: Mutex<Child>,
    /// Holds the sqlite file and the log; removed by the supervising shell when the broker stops.
    dir: PathBuf,
}

/// How to start a [`TansuProcess`] beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct TansuOptions {
    /// A SCRAM-SHA-512 user (name, password): the broker is started once without authentication to create it,
    /// then again on the same storage with `--authentication`, so every client must log in.
    pub scram_user: Option<(String, String)>,
    /// The port advertised to clients in metadata, when they reach the broker through a proxy; the broker's
    /// own port when `None`.
    pub advertised_port: Option<u16>,
}

impl TansuProcess {
    /// Starts Tansu (`tansu` on PATH or in `~/.cargo/bin`).
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(&TansuOptions::default())
    }

    /// Starts Tansu with `options`.
    pub fn start_with(options: &TansuOptions) -> anyhow::Result<Self> {
        let port = free_port()?;
        // The supervising shell removes the directory once the broker has stopped.
        let dir = tempfile::Builder::new().prefix("courier-tansu-").tempdir()?.keep();
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{}", options.advertised_port.unwrap_or(port));
        let tansu = tansu_binary();
        // With a SCRAM user: a first broker without authentication takes the user (`tansu user create` is
        // retried until that broker listens, at most 30 s), then stops; the real one requires logins.
        let script = r#"
# Always run in the background: `exec` makes the background job the broker itself, so `$!` is its pid.
broker() { exec "$TANSU_BIN" broker --listener-url "$URL" --advertised-listener-url "$ADVERTISED" --storage-engine sqlite://courier.db "$@"; }
if [ -n "$SCRAM_USER" ]; then
  broker >setup.log 2>&1 &
  pid=$!
  tries=0
  until "$TANSU_BIN" user create --broker "$URL" "$SCRAM_USER" "$SCRAM_PASSWORD" --mechanism scram512 >>setup.log 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -ge 150 ] && break
    sleep 0.2
  done
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  set -- --authentication
fi
broker "$@" >broker.log 2>&1 &
pid=$!
read -r _ignored
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
cd / && rm -rf "$DATA_DIR"
"#;
        let (user, password) = options.scram_user.clone().unwrap_or_default();
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&dir)
            .env("TANSU_BIN", &tansu)
            .env("URL", &url)
            .env("ADVERTISED", &advertised)
            .env("SCRAM_USER", user)
            .env("SCRAM_PASSWORD", password)
            .env("DATA_DIR", &dir)
            .env_remove("STORAGE_ENGINE")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("cannot start tansu ({}): {e}; run scripts/install-tansu.sh", tansu.display())
            })?;
        Ok(Self { bootstrap: format!("127.0.0.1:{port}"), child: Mutex::new(child), dir })
    }

    /// The broker's process id (the supervising shell's child), once it has started.
    pub fn broker_pid(&self) -> Option<u32> {
        let shell = self.child.lock().ok()?.id();
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    /// The broker's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("broker.log")
    }
}

impl Drop for TansuProcess {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

fn tansu_binary() -> PathBuf {
    if let Ok(path) = std::env::var("TANSU_BIN") {
        return PathBuf::from(path);
    }
    let cargo_bin = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin").join("tansu"));
    match cargo_bin {
        Ok(path) if path.exists() => path,
        _ => PathBuf::from("tansu"),
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
