//! The running server: [`MockApis::start`] binds and spawns it; the handle reads and changes its state
//! in-process and stops it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::Api;
use crate::connection::{ResetSwitch, ResettableListener};
use crate::credentials::Required;
use crate::faults::Faults;
use crate::handler::{AppState, router};
use crate::store::{ApiState, ApiStats, Call, Effect, Store, lock};

/// How long [`MockApis::shutdown`] waits for open connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How to start the server.
#[derive(Debug, Clone, PartialEq)]
pub struct MockApisConfig {
    /// Address to listen on, `ip:port`; port 0 picks a free port.
    pub listen: String,
    /// Faults every API starts with.
    pub faults: Faults,
}

impl Default for MockApisConfig {
    /// A free port on 127.0.0.1, no faults: what a test wants.
    fn default() -> Self {
        Self { listen: "127.0.0.1:0".to_owned(), faults: Faults::default() }
    }
}

/// A running mock server. Dropping it stops the server in the background; [`MockApis::shutdown`] stops it
/// and waits.
#[derive(Debug)]
pub struct MockApis {
    /// The bound address.
    addr: SocketAddr,
    /// What the APIs remember and require, shared with the handlers.
    state: AppState,
    /// Set to `true` to stop the server.
    stop: watch::Sender<bool>,
    /// The server task; `None` once awaited.
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl MockApis {
    /// Binds `config.listen` and spawns the server on the current Tokio runtime. Fails when the address
    /// cannot be bound, a rate is not within 0.0–1.0 or a failure status not within 400–599.
    pub async fn start(config: MockApisConfig) -> anyhow::Result<MockApis> {
        // Sanitizing leaves valid faults as they are (NaN included: it is never equal to itself).
        anyhow::ensure!(config.faults.clone().sanitized() == config.faults, "invalid faults: {:?}", config.faults);
        let listener =
            TcpListener::bind(&config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr().context("cannot read the bound address")?;
        let (stop, mut stopping) = watch::channel(false);
        let store = Arc::new(Store::new(config.faults));
        let state = AppState { store, credentials: Arc::default(), stopping: stopping.clone() };
        let app = router(state.clone()).into_make_service_with_connect_info::<ResetSwitch>();
        let server = tokio::spawn(async move {
            let stopped = async move {
                // An error means the handle is gone: stop as well.
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            axum::serve(ResettableListener(listener), app).with_graceful_shutdown(stopped).await
        });
        tracing::info!("mock APIs listening on http://{addr}");
        Ok(MockApis { addr, state, stop, server: Some(server) })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ip:port` of the server (an unspecified bind address replaced by the loopback address).
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The base URL of an API (a name or an [`Api`]), what `apis.<name>.base_url` expects, e.g.
    /// `http://127.0.0.1:PORT/inventory` (for `inventory_release` too, whose endpoint lies under it).
    pub fn api_url(&self, api: impl fmt::Display) -> String {
        let name = api.to_string();
        let api = Api::ALL.into_iter().find(|api| api.as_str() == name);
        let path = api.map_or(name.as_str(), |api| api.base_path()).trim_matches('/');
        format!("{}/{path}", self.base_url())
    }

    /// Replaces the faults of `api`; rates outside 0.0–1.0 are clamped, failure statuses outside 400–599
    /// become 503.
    pub fn set_faults(&self, api: Api, faults: Faults) {
        self.state.store.update(api, |state| state.faults = faults.sanitized());
    }

    /// Replaces the faults of every API.
    pub fn set_all_faults(&self, faults: Faults) {
        Api::ALL.into_iter().for_each(|api| self.set_faults(api, faults.clone()));
    }

    /// Makes calls to `api` require `required`; others are answered 401 ([`ApiStats::unauthorized`]).
    pub fn require(&self, api: Api, required: Required) {
        lock(&self.state.credentials).required.insert(api, required);
    }

    /// Makes `POST /oauth2/token` issue tokens living `ttl` to `client_id` / `client_secret` (HTTP basic
    /// client authentication, `grant_type=client_credentials`).
    pub fn set_oauth2_client(&self, client_id: &str, client_secret: &str, ttl: Duration) {
        lock(&self.state.credentials).set_client(client_id, client_secret, ttl);
    }

    /// Revokes every OAuth 2.0 token issued so far.
    pub fn revoke_tokens(&self) {
        lock(&self.state.credentials).tokens.clear();
    }

    /// OAuth 2.0 tokens issued since start.
    pub fn tokens_issued(&self) -> u64 {
        lock(&self.state.credentials).issued
    }

    /// The URL of the OAuth 2.0 token endpoint.
    pub fn oauth2_token_url(&self) -> String {
        format!("{}/oauth2/token", self.base_url())
    }

    /// The counters of `api`.
    pub fn stats(&self, api: Api) -> ApiStats {
        self.state.store.read(api, |state| state.stats)
    }

    /// The effects of `api`, in the order they were recorded.
    pub fn effects(&self, api: Api) -> Vec<Effect> {
        self.state.store.read(api, |state| state.effects.clone())
    }

    /// The declines of `api` (`GET /{api}/declines`: charges answered 402), in the order they were recorded.
    pub fn declines(&self, api: Api) -> Vec<Effect> {
        self.state.store.read(api, |state| state.declines.clone())
    }

    /// The call journal of `api`: every `POST` answered since start, in arrival order.
    pub fn calls(&self, api: Api) -> Vec<Call> {
        self.state.store.read(api, ApiState::calls)
    }

    /// Waits until `api` has at least `n` effects and returns them, at most `timeout`.
    pub async fn wait_for_effects(&self, api: Api, n: usize, timeout: Duration) -> anyhow::Result<Vec<Effect>> {
        let wanted = format!("at least {n} effect(s)");
        self.state.store.wait_until(api, timeout, &wanted, |s| (s.effects.len() >= n).then(|| s.effects.clone())).await
    }

    /// Waits until the journal of `api` holds at least `n` answered calls and returns them, at most `timeout`.
    pub async fn wait_for_calls(&self, api: Api, n: usize, timeout: Duration) -> anyhow::Result<Vec<Call>> {
        let wanted = format!("at least {n} call(s) in the journal");
        self.state.store.wait_until(api, timeout, &wanted, |s| Some(s.calls()).filter(|calls| calls.len() >= n)).await
    }

    /// Waits until the counters of `api` meet `condition` and returns them, at most `timeout`.
    pub async fn wait_for_stats(
        &self,
        api: Api,
        timeout: Duration,
        mut condition: impl FnMut(&ApiStats) -> bool,
    ) -> anyhow::Result<ApiStats> {
        let wanted = "its counters to meet a condition";
        self.state.store.wait_until(api, timeout, wanted, |s| condition(&s.stats).then_some(s.stats)).await
    }

    /// Stops accepting connections, cuts latency and hangs short, and waits for open requests to finish,
    /// at most 10 s before cutting them.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        let Some(mut server) = self.server.take() else {
            return;
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await.is_err() {
            server.abort();
            tracing::warn!("mock APIs still had open connections after {SHUTDOWN_GRACE:?}; cut them");
        }
    }
}

impl Drop for MockApis {
    /// Stops the server in the background.
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
