//! The HTTP endpoint (`proxy.metrics_listen`): `GET /metrics` in the Prometheus text format.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use pgfleet_proxy::Runtime;
use tokio::net::TcpListener;

use crate::snapshot::{ClusterSnapshot, PoolSnapshot, ReplicationSnapshot};

/// The exposition format's content type.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of `rt` now.
pub fn metrics_text(rt: &Runtime) -> String {
    let stats = crate::show::stat_cells(rt.stats(), rt.clients().len());
    let pools: Vec<PoolSnapshot> = rt
        .pools()
        .list()
        .iter()
        .map(|p| PoolSnapshot::of(p))
        .collect();
    let clusters = rt
        .clusters()
        .list()
        .iter()
        .map(|c| ClusterSnapshot::of(c))
        .collect();
    crate::metrics::render(
        &stats,
        &pools,
        &ReplicationSnapshot {
            clusters,
            now: Instant::now(),
        },
    )
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve_metrics(
    rt: Arc<Runtime>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let rt = rt.clone();
            async move { ([(CONTENT_TYPE, PROMETHEUS_TEXT)], metrics_text(&rt)) }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
