//! The HTTP listeners' accept loop: hyper-util's server, configured for a
//! hostile network, which `axum::serve` does not expose.
//!
//! - A connection that sends no complete request head within
//!   [`HEADER_READ_TIMEOUT`] is closed: one that never sends one, and an idle
//!   keep-alive connection between requests. Upgraded connections (WebSockets)
//!   and responses still streaming (server-sent events, logs) are not affected.
//! - At most [`Limits::connections`] connections are open at once, fewer than
//!   the process may open files: the rest wait in the kernel's accept queue, and
//!   the controller, the database pool and the runtime's programs always find
//!   file descriptors free. [`raise_nofile_limit`] first raises the soft limit
//!   to the hard one.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a connection may take to send a request head (and may sit idle
/// between requests).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// File descriptors kept free of connections: for the controller, the
/// database pool, the runtime's programs and their pipes, logs and cgroups.
const RESERVED_FDS: u64 = 512;

/// How many connections the listeners hold at most, together.
#[derive(Debug, Clone)]
pub struct Limits {
    connections: Arc<Semaphore>,
}

impl Limits {
    /// What the open-file limit `nofile` leaves after the reserve (at least 64).
    pub fn for_nofile(nofile: u64) -> Limits {
        let n = nofile.saturating_sub(RESERVED_FDS).max(64);
        Limits {
            connections: Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS as u64) as usize)),
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.available_permits()
    }
}

/// Raises the soft open-file limit to the hard one; returns the limit now in
/// force. The common default of 1024 would let a thousand idle connections
/// take every descriptor.
pub fn raise_nofile_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            limit.current
        }
    }
    .unwrap_or(u64::MAX)
}

/// Serves `app` on `listener` until `stop` completes, then lets the open
/// connections finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: server::Front,
    limits: Limits,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // Shutdown, as axum does it: each connection task holds a receiver of
    // `stopping` (dropped when it ends), and finishes its request on the signal.
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    // HTTP/1.1 only: no h2c (browsers speak HTTP/2 only over TLS, which a
    // proxy in front terminates), and hyper-util's auto-detection would wait
    // for a first byte with no timeout at all.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = limits.connections.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset while queued:
                    // wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, std::convert::Infallible>(app.call(req, peer).await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stopping = stopping_rx.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                () = async { let _ = stopping.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::trace!(error = %e, "connection ended");
            }
            drop((permit, stopping));
        });
    }
    drop((listener, stopping_rx));
    let _ = stopping_tx.send(true);
    stopping_tx.closed().await;
    Ok(())
}
