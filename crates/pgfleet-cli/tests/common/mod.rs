//! Shared set-up for the end-to-end tests: a real PostgreSQL cluster from the test kit with role
//! `app`/`app` and database `app`, and pgfleet started in-process on port 0 in front of it.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pgfleet_config::Config;
use pgfleet_proxy::{Proxy, Runtime};
use pgfleet_testkit::{Cluster, ClusterOptions};
use tokio_postgres::{Client, NoTls};

/// A cluster whose TCP logins (other than the superuser) need SCRAM, so every test also exercises
/// pgfleet's server-side SCRAM login.
pub fn app_cluster() -> Cluster {
    let opts = ClusterOptions::default()
        .hba_line("local all all trust")
        .hba_line("host all postgres 127.0.0.1/32 trust")
        .hba_line("host replication all 127.0.0.1/32 trust")
        .hba_line("host all all 127.0.0.1/32 scram-sha-256");
    let c = Cluster::start_with(opts).expect("start cluster");
    c.psql("CREATE ROLE app LOGIN PASSWORD 'app'").unwrap();
    c.psql("CREATE DATABASE app OWNER app").unwrap();
    c
}

/// The config text for a proxy in front of `cluster`, with extra `[pool]` lines.
pub fn config_text(cluster: &Cluster, pool: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
shutdown_timeout = "2s"

[pool]
{pool}

[clusters.main]
servers = [{{ host = "127.0.0.1", port = {port}, role = "primary" }}]

[databases.app]
cluster = "main"

[users.app]
password = "app"

[users.admin]
password = "admin"
admin = true
"#,
        port = cluster.port()
    )
}

/// pgfleet running in-process.
pub struct TestProxy {
    pub addr: SocketAddr,
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
        let proxy = Proxy::bind(rt.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = proxy.local_addr().unwrap();
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
            .unwrap()
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

/// The SQLSTATE of a tokio-postgres error (panics when it has none).
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_owned())
        .unwrap_or_else(|| panic!("not a database error: {e}"))
}

/// The message of a tokio-postgres database error.
pub fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| e.to_string())
}

/// Waits until `f` is true (polling every 20 ms, up to `secs` seconds).
pub async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}
