//! Serving HTTP connections (HTTP/1.1 and HTTP/2, told apart per connection by hyper-util) so that no client can
//! hold the server's connections: at most `producer.max_connections` at once, none kept idle past
//! `producer.header_read_timeout_ms`, and a graceful shutdown bounded in time.
//!
//! * **Idle connections.** A connection with no request in flight for the header read timeout is closed: one
//!   that sends nothing, or only part of a request's headers or of the HTTP/2 preface, and one kept alive after
//!   its last answer. hyper's own header timeout covers HTTP/1.1 only and starts once the protocol is known,
//!   while hyper-util reads the first bytes (to tell the HTTP/2 preface from HTTP/1.1) with no time bound; so each
//!   connection is watched here, whatever its protocol and state. Closing is graceful (HTTP/2 gets a GOAWAY;
//!   a request that arrives meanwhile is answered), then the connection is dropped once it has had no request
//!   in flight for [`CLOSE_GRACE`].
//! * **The cap.** Beyond `producer.max_connections`, connections are not accepted: they wait in the listen
//!   backlog (the kernel completes their handshake and keeps what they send) and are served as soon as a
//!   connection ends, which an idle one does within the header read timeout. A client is never refused, only
//!   delayed; with the backlog full too, the kernel drops new handshakes and clients retry them. The cap is kept
//!   below the process's file descriptor limit ([`connection_cap`]).
//! * **Shutdown.** No new connection is accepted; each connection closes gracefully once its requests are
//!   answered; the server waits at most `producer.shutdown_timeout_ms` for all of them.

use std::convert::Infallible;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// After a connection was asked to close, how long it may stay with no request in flight (for an HTTP/2 client
/// to acknowledge the GOAWAY) before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// File descriptors kept for what is not a client connection: the listener, Kafka's sockets, log files.
pub const RESERVED_FILE_DESCRIPTORS: u64 = 256;

/// How the server treats connections.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Longest a connection may go without a request in flight (before its first request's headers are in, or
    /// between requests) before it is closed.
    pub header_read_timeout: Duration,
    /// Most connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// After shutdown, how long requests in flight may take to finish.
    pub shutdown_timeout: Duration,
}

/// `max_connections`, within the process's limit of open file descriptors: the soft limit is raised towards
/// `max_connections` + [`RESERVED_FILE_DESCRIPTORS`] (up to the hard limit), and where that is not enough the
/// cap is lowered to what the limit allows, with a warning naming both, so that the server never runs out of
/// descriptors for its listener and Kafka.
pub fn connection_cap(max_connections: usize) -> usize {
    let wanted = (max_connections as u64).saturating_add(RESERVED_FILE_DESCRIPTORS);
    let limit = match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "cannot read or raise the limit of open files; producer.max_connections stands");
            return max_connections;
        }
    };
    if limit >= wanted {
        return max_connections;
    }
    let cap = usize::try_from(limit.saturating_sub(RESERVED_FILE_DESCRIPTORS).max(1)).unwrap_or(max_connections);
    tracing::warn!(
        max_connections,
        open_files_limit = limit,
        cap,
        "the limit of open files (ulimit -n) is below producer.max_connections plus {RESERVED_FILE_DESCRIPTORS} \
         for the rest of the process: serving at most {cap} connections; raise the limit to allow more"
    );
    cap
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then waits for the requests in flight, at most
/// `limits.shutdown_timeout`. Returns whether every connection ended in time.
pub async fn serve(listener: TcpListener, router: Router, limits: ServerLimits, shutdown: CancellationToken) -> bool {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let max_connections = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        // A connection is accepted only with a free slot: beyond the cap, it waits in the listen backlog.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = shutdown.cancelled() => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors or the like: give the process a moment rather than spin.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        tokio::spawn(serve_connection(stream, builder.clone(), router.clone(), limits, shutdown.clone(), slot));
    }
    drop(listener);
    // Every connection holds a slot until it ends: all slots free means all connections ended.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    tokio::time::timeout(limits.shutdown_timeout, slots.acquire_many(all)).await.is_ok()
}

/// Serves one connection until it ends, it has been idle for the header read timeout, or the server shuts down;
/// its `slot` is given back when it ends.
async fn serve_connection(
    stream: TcpStream,
    builder: Builder<TokioExecutor>,
    router: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
    slot: OwnedSemaphorePermit,
) {
    let activity = Activity::default();
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let in_flight = activity.start();
            let router = router.clone();
            async move {
                let response: Result<Response, Infallible> = router.oneshot(request.map(Body::new)).await;
                drop(in_flight);
                response
            }
        })
    };
    let mut connection = pin!(builder.serve_connection_with_upgrades(TokioIo::new(stream), service));
    tokio::select! {
        ended = connection.as_mut() => {
            if let Err(error) = ended {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
            return;
        }
        () = activity.idle_for(limits.header_read_timeout) => {
            tracing::debug!("closing a connection that sent no request within producer.header_read_timeout_ms");
        }
        () = shutdown.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection.as_mut() => {}
        () = activity.idle_for(CLOSE_GRACE) => {}
    }
    drop(slot);
}

/// The number of requests in flight on one connection, watched to tell when it has been idle long enough.
#[derive(Clone, Default)]
struct Activity(Arc<watch::Sender<usize>>);

impl Activity {
    /// A request started; it ends when the returned guard is dropped.
    fn start(&self) -> InFlight {
        self.0.send_modify(|requests| *requests += 1);
        InFlight(Arc::clone(&self.0))
    }

    /// Returns once no request has been in flight for `idle`, counted from now or from the end of the last
    /// request, whichever is later.
    async fn idle_for(&self, idle: Duration) {
        let mut requests = self.0.subscribe();
        loop {
            let busy = *requests.borrow_and_update() > 0;
            let changed = if busy {
                requests.changed().await
            } else {
                match tokio::time::timeout(idle, requests.changed()).await {
                    Ok(changed) => changed,
                    Err(_) => return,
                }
            };
            if changed.is_err() {
                return;
            }
        }
    }
}

/// One request in flight; dropping it ends it.
struct InFlight(Arc<watch::Sender<usize>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|requests| *requests = requests.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_without_requests_for_the_whole_time() {
        let activity = Activity::default();
        let started = tokio::time::Instant::now();
        activity.idle_for(Duration::from_secs(10)).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(10) && waited < Duration::from_secs(11), "no request at all: {waited:?}");

        let request = activity.start();
        let waiter = tokio::spawn({
            let activity = activity.clone();
            async move {
                let started = tokio::time::Instant::now();
                activity.idle_for(Duration::from_secs(10)).await;
                started.elapsed()
            }
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!waiter.is_finished(), "a request in flight is not idleness, however long it takes");
        drop(request);
        let waited = waiter.await.expect("the waiter ends");
        assert!(
            waited >= Duration::from_secs(40) && waited < Duration::from_secs(41),
            "10 s after the request: {waited:?}"
        );
    }
}
