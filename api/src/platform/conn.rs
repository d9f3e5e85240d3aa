//! The accept loop of `serve`: HTTP/1.1 connections with a cap in total and per client
//! address, a time limit on reading each request's headers (so a client that sends a
//! byte every few seconds, or keeps an idle connection, cannot hold a place), the peer
//! address for the rate limits, and graceful shutdown that lets requests in flight finish.

use crate::limits::LimitsConfig;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

/// Open connections per client address (IPv6 by `/64`).
#[derive(Debug, Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// A place held by one connection; given back on drop.
struct Place {
    table: Arc<PerAddress>,
    ip: IpAddr,
    _total: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Ok(mut map) = self.table.0.lock()
            && let Some(n) = map.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// The address connections are counted under.
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Serves `app` on `listener` until `stop` resolves, then waits (at most `drain`) for the
/// connections' requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: &LimitsConfig,
    stop: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()> {
    let total = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let per_address = Arc::new(PerAddress::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_timeout_ms.max(1)))
        .max_buf_size(64 * 1024 + 8 * 1024)
        .keep_alive(true);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(place) = admit(&total, &per_address, peer.ip(), limits) else {
            metrics::counter!("aurelio_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Errors here are the client's (reset, header timeout, malformed request).
            if let Err(e) = connection.await {
                tracing::debug!(peer = %peer, error = %e, "connection closed");
            }
            drop(place);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {drain:?}: closing them");
    }
    Ok(())
}

/// A place for a new connection from `ip`, if the totals allow one.
fn admit(
    total: &Arc<tokio::sync::Semaphore>,
    per_address: &Arc<PerAddress>,
    ip: IpAddr,
    limits: &LimitsConfig,
) -> Option<Place> {
    let permit = total.clone().try_acquire_owned().ok()?;
    let ip = counted_as(ip);
    let mut map = per_address.0.lock().ok()?;
    let n = map.entry(ip).or_insert(0);
    if *n >= limits.max_connections_per_ip.max(1) {
        return None;
    }
    *n += 1;
    drop(map);
    Some(Place { table: per_address.clone(), ip, _total: permit })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
