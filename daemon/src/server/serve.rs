//! The accept loop: hyper HTTP/1.1 connections with the limits that tower middleware cannot
//! set — request-head size and header count, the head read timeout (slowloris; it also closes
//! idle keep-alive connections), and the connection limit — and graceful shutdown.
//!
//! An accept error is logged and the loop goes on (after a short pause for resource
//! exhaustion such as EMFILE); it never stops serving because of one bad connection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::App;

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish (at most `drain_timeout`) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) {
    let config = &app.config;
    let connections = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_buf_size(config.max_header_bytes.max(8192))
        .max_headers(config.max_headers)
        .keep_alive(true);
    let service = TowerToHyperService::new(router);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            app.metrics.refuse("connection-limit");
            tracing::debug!(%peer, "connection limit reached; closing");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = builder.serve_connection(TokioIo::new(stream), service.clone());
        let conn = graceful.watch(conn);
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            app.metrics.connections.inc();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            app.metrics.connections.dec();
            drop(permit);
        });
    }
    drop(listener);
    app.draining
        .store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!("shutting down: draining in-flight requests");
    if tokio::time::timeout(config.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?config.drain_timeout, "drain timed out; closing the rest");
    }
}
