//! Shared set-up for the end-to-end tests: a real PostgreSQL cluster from the test kit with role
//! `app`/`app` and database `app`, and pgfleet started in-process on port 0 in front of it.

#![allow(dead_code, unused_imports, clippy::unwrap_used)]

pub mod fleet;
pub mod programs;
pub mod shards;

use std::time::Duration;

pub use pgfleet_testkit::{try_connect, TestProxy};
use pgfleet_testkit::{Cluster, ClusterOptions};

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

/// Connects to `conn_str` and hands every asynchronous message of the connection (notices,
/// notifications), with the time it arrived, to the returned channel.
pub async fn connect_with_messages(
    conn_str: &str,
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<(std::time::Instant, tokio_postgres::AsyncMessage)>,
) {
    let (client, mut conn) = tokio_postgres::connect(conn_str, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        use futures::StreamExt;
        let mut stream = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(msg)) = stream.next().await {
            let _ = tx.send((std::time::Instant::now(), msg));
        }
    });
    (client, rx)
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

/// `GET /metrics` of the proxy's runtime: the HTTP response (status line, headers, body), which
/// must be a 200.
pub async fn scrape_metrics(proxy: &TestProxy) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(pgfleet_admin::http::serve_metrics(
        proxy.rt.clone(),
        listener,
        std::future::pending(),
    ));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    server.abort();
    assert!(response.contains(" 200 "), "{response}");
    response
}
