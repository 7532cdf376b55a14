//! The HTTP listener: HTTP/1.1 on hyper with the limits axum's `serve` leaves out — a cap on
//! open connections (total and per address), a deadline for a request's head that is also the
//! keep-alive idle timeout, and a write deadline for responses nobody reads.

use crate::config::WRITE_TIMEOUT;
use crate::net::{ConnLimits, WriteTimeout};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::Service;

/// The listener's settings (from `[server]`).
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_ip: usize,
    /// A request head must arrive within this, and an idle keep-alive connection is closed
    /// after it.
    pub(crate) idle: Duration,
}

/// Runs until the task is dropped (at exit: the HTTP faces stay up while a stop flushes).
pub(crate) async fn serve(listener: TcpListener, app: Router, limits: Limits) {
    let caps = ConnLimits::new(limits.max_connections, limits.max_connections_per_ip);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.idle)
        .keep_alive(true);
    let http = Arc::new(http);
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match caps.try_open(peer.ip()) {
            Ok(p) => p,
            Err(why) => {
                tracing::warn!(%peer, reason = %why, "http connection refused");
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let app = app.clone();
        let http = http.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().call(req)
            });
            let io = TokioIo::new(WriteTimeout::new(sock, WRITE_TIMEOUT));
            if let Err(e) = http.serve_connection(io, svc).with_upgrades().await {
                tracing::debug!(%peer, error = %e, "http connection ended");
            }
        });
    }
}
