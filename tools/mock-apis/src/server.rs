//! The running server: [`MockApis::start`] binds and spawns it, the handle reads and changes its state
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
use crate::credentials::{Credentials, Required};
use crate::faults::Faults;
use crate::routes::{AppState, router};
use crate::store::{ApiStats, Call, Effect, Store};

/// Address the `mock-apis` binary listens on by default (the APIs' base URLs in `config/default.toml`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";

/// How long [`MockApis::shutdown`] waits for open connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How to start the server.
#[derive(Debug, Clone, PartialEq)]
pub struct MockApisConfig {
    /// Address to listen on, `ip:port`; port 0 picks a free port (see [`MockApis::base_url`]).
    pub listen: String,
    /// Faults every API starts with; change them later with [`MockApis::set_faults`].
    pub faults: Faults,
}

impl MockApisConfig {
    /// Listens on `listen`, no faults.
    pub fn new(listen: impl Into<String>) -> Self {
        Self { listen: listen.into(), faults: Faults::default() }
    }

    /// The same config with every API starting with `faults`.
    pub fn with_faults(self, faults: Faults) -> Self {
        Self { faults, ..self }
    }
}

impl Default for MockApisConfig {
    /// A free port on 127.0.0.1, no faults: what a test wants.
    fn default() -> Self {
        Self::new("127.0.0.1:0")
    }
}

/// A running mock server. Dropping it stops the server in the background; [`MockApis::shutdown`] stops it
/// and waits.
#[derive(Debug)]
pub struct MockApis {
    /// The address the server is bound to.
    addr: SocketAddr,
    /// Effects, keys, counters and faults, shared with the handlers.
    store: Arc<Store>,
    /// What each API requires of its callers, and the OAuth 2.0 token endpoint's state.
    credentials: Arc<Credentials>,
    /// Set to `true` to stop the server.
    stop: watch::Sender<bool>,
    /// The server task; `None` once awaited.
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// A wait that ran out of time; says what was awaited and where the API stood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitTimeout {
    /// The API waited on.
    pub api: Api,
    /// What was awaited, in words.
    pub wanted: String,
    /// How long the wait lasted.
    pub waited: Duration,
    /// The API's counters when the wait gave up.
    pub stats: ApiStats,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting on {} for {}; its counters: {:?}",
            self.waited, self.api, self.wanted, self.stats
        )
    }
}

impl std::error::Error for WaitTimeout {}

impl MockApis {
    /// Binds `config.listen` and spawns the server on the current Tokio runtime. Fails when the address
    /// cannot be bound or a fault rate is not between 0.0 and 1.0.
    pub async fn start(config: MockApisConfig) -> anyhow::Result<MockApis> {
        config.faults.validate().map_err(|e| anyhow::anyhow!("invalid faults: {e}"))?;
        let listener =
            TcpListener::bind(&config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr().context("cannot read the bound address")?;
        let store = Arc::new(Store::new(config.faults));
        let (stop, stopping) = watch::channel(false);
        let credentials = Arc::new(Credentials::default());
        let app = router(AppState {
            store: Arc::clone(&store),
            credentials: Arc::clone(&credentials),
            shutdown: stopping.clone(),
        });
        let mut stopping = stopping;
        let server = tokio::spawn(async move {
            axum::serve(ResettableListener(listener), app.into_make_service_with_connect_info::<ResetSwitch>())
                .with_graceful_shutdown(async move {
                    // An error means the handle is gone: stop as well.
                    let _ = stopping.wait_for(|stop| *stop).await;
                })
                .await
        });
        tracing::info!("mock APIs listening on http://{addr}");
        Ok(MockApis { addr, store, credentials, stop, server: Some(server) })
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ip:port` of the server (an unspecified bind address such as `0.0.0.0` is replaced by the
    /// loopback address, which reaches it).
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The base URL of one API, `base_url()/api`, e.g. `http://127.0.0.1:PORT/inventory` (what courier's
    /// `apis.<name>.base_url` setting expects). Takes a name or an [`Api`]. For
    /// [`Api::InventoryRelease`] (or `"inventory_release"`) it is the inventory API's base URL,
    /// `http://127.0.0.1:PORT/inventory`, under which a consumer calls
    /// `/reservations/{order_id}/release` (see [`Api::release_path`]); its effects are under
    /// `base_url()/inventory_release/effects` instead.
    pub fn api_url(&self, api: impl fmt::Display) -> String {
        let name = api.to_string();
        let path = match name.parse::<Api>() {
            Ok(api) => api.base_path().trim_matches('/'),
            Err(_) => name.trim_matches('/'),
        };
        format!("{}/{path}", self.base_url())
    }

    /// Replaces the faults of `api`. Rates outside 0.0–1.0 are clamped; failure statuses outside 400–599
    /// become 503.
    pub fn set_faults(&self, api: Api, faults: Faults) {
        self.store.set_faults(api, faults);
    }

    /// Replaces the faults of every API.
    pub fn set_all_faults(&self, faults: Faults) {
        for api in Api::ALL {
            self.store.set_faults(api, faults.clone());
        }
    }

    /// Makes calls to `api` require `required`; a call without it is answered 401 and counted in
    /// [`ApiStats::unauthorized`].
    pub fn require(&self, api: Api, required: Required) {
        self.credentials.require(api, required);
    }

    /// Makes `POST /oauth2/token` ([`MockApis::oauth2_token_url`]) issue tokens living `ttl` to the client
    /// `client_id` / `client_secret` (HTTP basic client authentication, `grant_type=client_credentials`).
    pub fn set_oauth2_client(&self, client_id: &str, client_secret: &str, ttl: Duration) {
        self.credentials.set_client(client_id, client_secret, ttl);
    }

    /// Revokes every OAuth 2.0 token issued so far: the next call with one is answered 401.
    pub fn revoke_tokens(&self) {
        self.credentials.revoke_tokens();
    }

    /// OAuth 2.0 tokens issued since start.
    pub fn tokens_issued(&self) -> u64 {
        self.credentials.issued()
    }

    /// The URL of the OAuth 2.0 token endpoint.
    pub fn oauth2_token_url(&self) -> String {
        format!("{}/oauth2/token", self.base_url())
    }

    /// A snapshot of the counters of `api`.
    pub fn stats(&self, api: Api) -> ApiStats {
        self.store.stats(api)
    }

    /// A snapshot of the effects of `api`, in the order they were recorded (declined charges are not
    /// effects: see [`MockApis::declines`]).
    pub fn effects(&self, api: Api) -> Vec<Effect> {
        self.store.effects(api)
    }

    /// A snapshot of the declines of `api` (what `GET /{api}/declines` serves): the requests declined by
    /// a business rule since start, in the order they were recorded. Only the payment
    /// API declines (charges answered 402, see [`crate::DECLINED_AMOUNT_SUFFIX`]); they are not among
    /// its [`effects`](MockApis::effects) and are counted in [`ApiStats::declines`].
    pub fn declines(&self, api: Api) -> Vec<Effect> {
        self.store.declines(api)
    }

    /// A snapshot of the call journal of `api`: every `POST` answered since start, in arrival order.
    pub fn calls(&self, api: Api) -> Vec<Call> {
        self.store.calls(api)
    }

    /// Waits until `api` has recorded at least `n` effects and returns all of them, or gives up after
    /// `timeout`. Wakes on every change, no polling.
    pub async fn wait_for_effects(&self, api: Api, n: usize, timeout: Duration) -> Result<Vec<Effect>, WaitTimeout> {
        self.store
            .wait_until(api, timeout, |view| (view.effects.len() >= n).then(|| view.effects.to_vec()))
            .await
            .map_err(|stats| WaitTimeout { api, wanted: format!("at least {n} effect(s)"), waited: timeout, stats })
    }

    /// Waits until the call journal of `api` holds at least `n` calls and returns all of them, or gives
    /// up after `timeout`. Wakes on every change, no polling. A call enters the journal once answered.
    pub async fn wait_for_calls(&self, api: Api, n: usize, timeout: Duration) -> Result<Vec<Call>, WaitTimeout> {
        self.store.wait_until(api, timeout, |view| (view.calls.len() >= n).then(|| view.calls.to_vec())).await.map_err(
            |stats| WaitTimeout { api, wanted: format!("at least {n} call(s) in the journal"), waited: timeout, stats },
        )
    }

    /// Waits until the counters of `api` satisfy `condition` (e.g. `|s| s.in_flight == 0`) and returns
    /// them, or gives up after `timeout`.
    pub async fn wait_for_stats(
        &self,
        api: Api,
        timeout: Duration,
        mut condition: impl FnMut(&ApiStats) -> bool,
    ) -> Result<ApiStats, WaitTimeout> {
        self.store.wait_until(api, timeout, |view| condition(view.stats).then_some(*view.stats)).await.map_err(
            |stats| WaitTimeout { api, wanted: "its counters to meet a condition".to_owned(), waited: timeout, stats },
        )
    }

    /// Stops accepting connections, cuts latency and hangs short (their requests are answered at once),
    /// and waits for open requests to finish, at most 10 s before cutting them.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        let Some(mut server) = self.server.take() else {
            return;
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
            Ok(Ok(Ok(()))) => tracing::info!("mock APIs stopped"),
            Ok(Ok(Err(e))) => tracing::warn!("mock APIs stopped with an error: {e}"),
            Ok(Err(e)) => tracing::warn!("mock APIs server task failed: {e}"),
            Err(_) => {
                server.abort();
                tracing::warn!("mock APIs still had open connections after {SHUTDOWN_GRACE:?}; cut them");
            }
        }
    }
}

impl Drop for MockApis {
    fn drop(&mut self) {
        // Stops the server in the background when the handle is dropped without `shutdown`.
        self.stop.send_replace(true);
    }
}
