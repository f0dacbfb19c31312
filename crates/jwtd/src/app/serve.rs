//! The accept loop: TCP or TLS connections served by hyper (HTTP/1.1 and HTTP/2), with the
//! connection-level limits (header buffer, header read time, TLS handshake time, idle time,
//! HTTP/2 keep-alive pings), and graceful shutdown: stop accepting, let requests in flight
//! finish within a bound, then return.
//!
//! Idle connections are closed after `Limits::idle_timeout` without a request in flight, for
//! both protocols: hyper's HTTP/1 header-read timer only covers part of it, and HTTP/2 has no
//! idle timer at all, so 10,000 silent h2 prefaces would otherwise hold every connection slot.
//! HTTP/2 connections are also pinged, and closed when a ping goes unanswered (a peer gone
//! without a FIN).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use crate::http::{Https, Limits};

/// How often an HTTP/2 connection is pinged, and how long the answer may take.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests in flight on one connection, and when the last one ended.
#[derive(Debug)]
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    /// Since the connection's start; updated as requests start and end.
    last_ms: std::sync::atomic::AtomicU64,
    started: tokio::time::Instant,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Activity { in_flight: 0.into(), last_ms: 0.into(), started: tokio::time::Instant::now() })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// When the connection becomes idle for `idle`, or `None` while a request is in flight.
    fn idle_at(&self, idle: Duration) -> Option<tokio::time::Instant> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.in_flight.load(Relaxed) > 0 {
            return None;
        }
        Some(self.started + Duration::from_millis(self.last_ms.load(Relaxed)) + idle)
    }
}

/// Counts a request in flight from its creation to its drop.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        activity.touch();
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Serves one connection until it ends, closing it gracefully when `stop` turns true or when it
/// has been idle for `idle`.
async fn drive<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    router: Router,
    peer: SocketAddr,
    https: bool,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let counted = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
        if https {
            req.extensions_mut().insert(Https);
        }
        let in_flight = InFlight::start(&counted);
        let answer = router.clone().oneshot(req);
        async move {
            let response = answer.await;
            drop(in_flight);
            response
        }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    // Set once an idle connection was asked to close: a graceful HTTP/2 close waits for the
    // peer to answer a ping, which a silent peer never does, so it is dropped after a grace.
    let mut drop_at: Option<tokio::time::Instant> = None;
    loop {
        let idle_at = activity.idle_at(idle);
        tokio::select! {
            result = conn.as_mut() => return result,
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = sleep_until(idle_at), if !closing => {
                if activity.idle_at(idle).is_some_and(|at| at <= tokio::time::Instant::now()) {
                    debug!(%peer, "closing an idle connection");
                    closing = true;
                    drop_at = Some(tokio::time::Instant::now() + IDLE_CLOSE_GRACE);
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = sleep_until(drop_at), if drop_at.is_some() => {
                debug!(%peer, "dropping an idle connection that did not close");
                return Ok(());
            }
        }
    }
}

/// How long an idle connection asked to close may take before it is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Waits until `at`, or forever when `None` (a request is in flight: it is checked again when
/// the select loop wakes for another reason, at the latest after [`IDLE_RECHECK`]).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => tokio::time::sleep(IDLE_RECHECK).await,
    }
}

/// How often a busy connection looks again whether it became idle.
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown` resolves, then drains for at most
/// `limits.drain_timeout`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.body_timeout)
        .max_buf_size(limits.connection_buffer_bytes());
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(H2_KEEP_ALIVE_INTERVAL))
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT)
        .max_header_list_size(u32::try_from(limits.connection_buffer_bytes()).unwrap_or(u32::MAX));
    let (stop, stopped) = watch::channel(false);
    let max_connections = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // At `max_connections`, stop accepting: newcomers wait in the backlog, nobody is reset.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                warn!(error = %e, "cannot accept a connection");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let stopped = stopped.clone();
        let builder = builder.clone();
        let router = router.clone();
        let tls = tls.clone();
        let idle = limits.idle_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let https = tls.is_some();
            let result = match tls {
                None => drive(&builder, stream, router, peer, https, idle, stopped).await,
                Some(acceptor) => match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => drive(&builder, stream, router, peer, https, idle, stopped).await,
                    Ok(Err(e)) => {
                        debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let open = max_connections - slots.available_permits();
    info!(connections = open, "stopped accepting; letting requests in flight finish");
    let _ = stop.send(true);
    // Every connection holds a slot until it has ended: all slots back means all closed.
    let all_closed = slots.acquire_many(u32::try_from(max_connections).unwrap_or(u32::MAX));
    if tokio::time::timeout(limits.drain_timeout, all_closed).await.is_err() {
        warn!(bound_secs = limits.drain_timeout.as_secs(), "requests still in flight after the shutdown bound");
    }
}
