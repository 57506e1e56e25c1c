//! An in-process pgfleet on port 0 for tests: the real proxy (and admin console) in front of test
//! clusters, plus tokio-postgres connection helpers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pgfleet_config::Config;
use pgfleet_proxy::{Proxy, Runtime};
use tokio_postgres::{Client, NoTls};

/// pgfleet running in-process.
pub struct TestProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its runtime (pools, stats, clusters) for assertions.
    pub rt: Arc<Runtime>,
    task: tokio::task::JoinHandle<()>,
}

impl TestProxy {
    /// Starts pgfleet with this config text (its listen address is replaced by port 0).
    pub async fn start(config: &str) -> TestProxy {
        Self::start_at(config, None).await
    }

    /// As [`TestProxy::start`], remembering `path` for RELOAD.
    pub async fn start_at(config: &str, path: Option<std::path::PathBuf>) -> TestProxy {
        let config =
            Config::from_toml_str(config).unwrap_or_else(|e| panic!("bad test config: {e}"));
        let rt = Runtime::new(config, path, Some(Arc::new(pgfleet_admin::AdminConsole)));
        let proxy = Proxy::bind(rt.clone(), std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("test proxy set-up");
        let addr = proxy.local_addr().expect("test proxy set-up");
        let task = tokio::spawn(proxy.run());
        TestProxy { addr, rt, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A tokio-postgres connection string through the proxy.
    pub fn conn_str(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname={db}",
            self.port()
        )
    }

    /// Connects as app/app to database app.
    pub async fn connect(&self) -> Client {
        self.connect_as("app", "app", "app").await
    }

    pub async fn connect_as(&self, user: &str, password: &str, db: &str) -> Client {
        try_connect(&self.conn_str(user, password, db))
            .await
            .expect("test proxy set-up")
    }

    /// Stops the proxy and waits for it.
    pub async fn stop(self) {
        self.rt.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Connects with tokio-postgres and drives the connection in the background.
pub async fn try_connect(conn_str: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(conn_str, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}
