//! The HTTP/1.1 listener: hyper's own connection driver with its timer, so a client that
//! never finishes a request head is closed (api.md "Limits every deployment has"), a cap on
//! open connections so the process never runs out of descriptors, and hyper-util's graceful
//! shutdown for SIGTERM.
//!
//! axum's `serve` cannot do the first (it builds hyper without a timer, so hyper's header
//! timeout never runs) nor the second, so this is the accept loop of hyper-util's examples
//! with those two settings added.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// How connections are bounded. The defaults are api.md's.
#[derive(Clone, Debug)]
pub struct Limits {
    /// A connection has this long to send a complete request head, counted from when it is
    /// accepted or from the end of its previous response (hyper's header timer also runs
    /// while a keep-alive connection waits for its next request, so an idle connection is
    /// closed after this too: stricter than api.md's 60 s idle rule, never looser).
    pub header_read_timeout: Duration,
    /// At most this many open connections; `None` derives it from the descriptor limit.
    pub max_connections: Option<usize>,
    /// How long a stop waits for accepted requests to finish before closing what is left.
    pub shutdown_grace: Duration,
    /// Failed authentications allowed per client address per minute (0: no limit).
    pub auth_failures_per_minute: u32,
    /// Open event streams allowed per token.
    pub streams_per_token: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: None,
            shutdown_grace: Duration::from_secs(8),
            auth_failures_per_minute: 30,
            streams_per_token: 8,
        }
    }
}

/// Descriptors kept back for what is not a connection: the database, its WAL and
/// shared-memory files for the writer and each pooled reader, the gateway's database, logs.
const RESERVED_DESCRIPTORS: u64 = 128;
/// The cap when the descriptor limit is generous.
const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// The connection cap: the configured one, or what the process's descriptor limit leaves
/// after the reserve (so `ulimit -n 1024` gives 896), never below 16.
pub fn connection_cap(configured: Option<usize>) -> usize {
    if let Some(n) = configured {
        return n.max(1);
    }
    let soft = descriptor_limit().unwrap_or(1024);
    let room = soft.saturating_sub(RESERVED_DESCRIPTORS).max(16);
    usize::try_from(room)
        .unwrap_or(usize::MAX)
        .min(DEFAULT_MAX_CONNECTIONS)
}

fn descriptor_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0).then_some(lim.rlim_cur)
}

/// Resolves once `stop` is true (the guard `wait_for` returns is not `Send`; dropped here).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Serves `router` on `listener` until `stop` turns true, then stops accepting, lets every
/// accepted request finish (up to `limits.shutdown_grace`) and returns.
pub async fn run(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(connection_cap(limits.max_connections)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        // A free slot first: at the cap, new connections wait in the kernel's backlog until
        // one closes (a slow one is closed by the header timeout), instead of taking a
        // descriptor the process may not have.
        let permit = tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: the descriptor is not ours to close; wait a little
                    // rather than spin (what axum and hyper-util do too).
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(remote));
            let router = router.clone();
            async move {
                let resp = router.oneshot(req.map(axum::body::Body::new)).await;
                Ok::<_, Infallible>(match resp {
                    Ok(r) => r,
                    Err(never) => match never {},
                })
            }
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %remote, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("stopping with requests still open after the grace period");
    }
}
