//! The HTTP endpoint (`proxy.metrics_listen`): `GET /metrics` in the Prometheus text format.

use std::future::Future;
use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use pgfleet_proxy::Runtime;
use tokio::net::TcpListener;

use crate::snapshot;

/// The exposition format's content type.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of `rt` now.
pub fn metrics_text(rt: &Runtime) -> String {
    let stats = crate::show::stat_cells(rt.stats(), rt.clients().len(), rt.clients().traffic());
    crate::metrics::render(
        &stats,
        &snapshot::pools_of(rt),
        &snapshot::replication_of(rt),
        &crate::tenants::metric_rows(rt),
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
