//! `pgfleet serve --config FILE`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use pgfleet_config::Config;
use pgfleet_proxy::{Proxy, Runtime};

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The config file.
    #[arg(long, short, default_value = "pgfleet.toml")]
    config: PathBuf,
}

/// Sets up logging from RUST_LOG (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The multi-threaded runtime every long-running command uses.
pub fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// Builds the proxy for `config`, binds its listen address and, with `proxy.metrics_listen`,
/// starts the metrics endpoint (stopped when shutdown starts).
pub async fn start(config: Config, path: Option<PathBuf>) -> anyhow::Result<Proxy> {
    let listen = config.proxy.listen;
    let metrics = config.proxy.metrics_listen;
    let rt = Runtime::new(config, path, Some(Arc::new(pgfleet_admin::AdminConsole)));
    let proxy = Proxy::bind(rt.clone(), listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    if let Some(addr) = metrics {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding proxy.metrics_listen {addr}"))?;
        tracing::info!(listen = %addr, "serving Prometheus metrics at /metrics");
        tokio::spawn(async move {
            let stop = {
                let rt = rt.clone();
                async move { rt.shutdown_started().await }
            };
            if let Err(e) = pgfleet_admin::http::serve_metrics(rt, listener, stop).await {
                tracing::error!(error = %e, "the metrics endpoint stopped");
            }
        });
    }
    Ok(proxy)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Runs until SIGINT/SIGTERM or the admin console's SHUTDOWN, then shuts down gracefully.
pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    init_tracing();
    let config = Config::load(&args.config)
        .map_err(|e| anyhow::anyhow!("{}:\n{e}", args.config.display()))?;
    tokio_runtime()?.block_on(async move {
        let proxy = start(config, Some(args.config.clone())).await?;
        let rt = proxy.runtime().clone();
        tracing::info!(listen = %proxy.local_addr()?, "pgfleet is accepting connections");
        let signals = tokio::spawn({
            let rt = rt.clone();
            async move {
                stop_signal().await;
                tracing::info!("shutting down");
                rt.shutdown();
            }
        });
        proxy.run().await;
        signals.abort();
        Ok(ExitCode::SUCCESS)
    })
}
