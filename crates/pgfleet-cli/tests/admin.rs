//! The admin console through psql: SHOW commands, RELOAD without dropping clients, PAUSE/RESUME,
//! SHUTDOWN.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use tokio::process::Command;

async fn admin_psql(proxy: &TestProxy, sql: &str) -> (bool, String) {
    let out = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-F",
            "|",
            "-h",
            "127.0.0.1",
            "-p",
            &proxy.port().to_string(),
            "-U",
            "admin",
            "-d",
            "pgfleet",
            "-c",
            sql,
        ])
        .env("PGPASSWORD", "admin")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_commands_list_pools_clients_servers_and_stats() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 3")).await;
    let c = proxy.connect().await;
    c.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let (ok, pools) = admin_psql(&proxy, "SHOW POOLS").await;
    assert!(ok, "{pools}");
    assert!(
        pools
            .lines()
            .next()
            .unwrap()
            .starts_with("user|database|pool_mode|pool_size"),
        "{pools}"
    );
    assert!(pools.contains("app|app|transaction|3|"), "{pools}");
    let (ok, clients) = admin_psql(&proxy, "show clients").await;
    assert!(ok && clients.contains("|active|"), "{clients}");
    let (ok, servers) = admin_psql(&proxy, "SHOW SERVERS").await;
    assert!(ok && servers.contains("|active|"), "{servers}");
    let (ok, stats) = admin_psql(&proxy, "SHOW STATS").await;
    assert!(ok && stats.contains("pinned_listen"), "{stats}");
    let (ok, config) = admin_psql(&proxy, "SHOW CONFIG").await;
    assert!(
        ok && config.contains("pool.pool_size|20") || config.contains("pool.pool_size|3"),
        "{config}"
    );
    assert!(
        !config.contains("|app\n") || !config.contains("password|app"),
        "no passwords: {config}"
    );
    let (ok, version) = admin_psql(&proxy, "SHOW VERSION").await;
    assert!(ok && version.contains("pgfleet "), "{version}");
    let (ok, err) = admin_psql(&proxy, "SHOW NONSENSE").await;
    assert!(!ok && err.contains("unknown admin command"), "{err}");
    c.batch_execute("COMMIT").await.unwrap();
    proxy.stop().await;
}

/// Polls `rt`'s client traffic until `done` holds (sessions publish their counts as they go).
async fn traffic_when(
    proxy: &TestProxy,
    done: impl Fn(&pgfleet_proxy::clients::Traffic) -> bool,
) -> pgfleet_proxy::clients::Traffic {
    for _ in 0..200 {
        let t = proxy.rt.clients().traffic();
        if done(&t) {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    proxy.rt.clients().traffic()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_stats_counts_the_traffic_of_clients_connected_and_gone() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 3")).await;
    // Bytes in count everything a client sends after its startup packet, its login too: the
    // same for two clients of the same user.
    let a = proxy.connect().await;
    let login = traffic_when(&proxy, |t| t.bytes_in > 0).await.bytes_in;
    let b = proxy.connect().await;
    let both = traffic_when(&proxy, |t| t.bytes_in >= 2 * login).await;
    assert_eq!(both.bytes_in, 2 * login, "{both:?}");
    a.simple_query("SELECT 1").await.unwrap();
    b.simple_query("SELECT 1").await.unwrap();
    b.simple_query("SELECT 2").await.unwrap();
    // Each Query message is 14 bytes: tag, length, "SELECT n" and its NUL.
    let sent = 2 * login + 42;
    let t = traffic_when(&proxy, |t| t.bytes_in >= sent).await;
    assert_eq!(
        (t.requests, t.transactions, t.bytes_in),
        (3, 3, sent),
        "{t:?}"
    );
    assert!(t.bytes_out > both.bytes_out, "{t:?} {both:?}");
    // A client that leaves keeps its share of the totals (and its Terminate, 5 bytes, counts).
    drop(b);
    let gone = traffic_when(&proxy, |t| t.bytes_in >= sent + 5).await;
    assert_eq!(
        (gone.requests, gone.transactions, gone.bytes_in),
        (3, 3, sent + 5),
        "{gone:?}"
    );
    assert!(gone.bytes_out >= t.bytes_out, "{gone:?} {t:?}");
    let (ok, stats) = admin_psql(&proxy, "SHOW STATS").await;
    assert!(ok, "{stats}");
    let mut lines = stats.lines();
    let columns: Vec<&str> = lines.next().unwrap().split('|').collect();
    let values: Vec<&str> = lines.next().unwrap().split('|').collect();
    let value = |name: &str| values[columns.iter().position(|c| *c == name).unwrap()];
    assert_eq!(value("requests"), "3", "{stats}");
    assert_eq!(value("transactions"), "3", "{stats}");
    assert_eq!(value("bytes_in"), (sent + 5).to_string(), "{stats}");
    assert_eq!(value("bytes_out"), gone.bytes_out.to_string(), "{stats}");
    a.simple_query("SELECT 3").await.unwrap();
    proxy.stop().await;

    // In session pooling a client idles holding its server: its bytes are counted all the same
    // while it stays connected.
    let proxy = TestProxy::start(&config_text(
        &cluster,
        "pool_size = 1\npool_mode = \"session\"",
    ))
    .await;
    let c = proxy.connect().await;
    let login = traffic_when(&proxy, |t| t.bytes_in > 0).await.bytes_in;
    c.simple_query("SELECT 1").await.unwrap();
    let t = traffic_when(&proxy, |t| t.bytes_in >= login + 14).await;
    assert_eq!((t.requests, t.bytes_in), (1, login + 14), "{t:?}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_new_settings_without_dropping_clients() {
    let cluster = app_cluster();
    let dir = std::env::temp_dir().join(format!("pgfleet-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pgfleet.toml");
    std::fs::write(&path, config_text(&cluster, "pool_size = 2")).unwrap();
    let proxy =
        TestProxy::start_at(&config_text(&cluster, "pool_size = 2"), Some(path.clone())).await;
    let c = proxy.connect().await;
    c.batch_execute("SELECT 1").await.unwrap();
    std::fs::write(&path, config_text(&cluster, "pool_size = 7")).unwrap();
    let (ok, out) = admin_psql(&proxy, "RELOAD").await;
    assert!(ok, "{out}");
    assert_eq!(proxy.rt.pools().list()[0].settings().pool_size, 7);
    c.batch_execute("SELECT 2").await.unwrap();
    // A broken file is refused with every problem named, and the old config stays.
    std::fs::write(&path, config_text(&cluster, "pool_size = 0\nbogus = 1")).unwrap();
    let (ok, out) = admin_psql(&proxy, "RELOAD").await;
    assert!(
        !ok && out.contains("pool.pool_size") && out.contains("pool.bogus"),
        "{out}"
    );
    assert_eq!(proxy.rt.pools().list()[0].settings().pool_size, 7);
    c.batch_execute("SELECT 3").await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_waits_for_transactions_and_holds_new_ones() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(
        &cluster,
        "pool_size = 2\ncheckout_timeout = \"20s\"",
    ))
    .await;
    let a = proxy.connect().await;
    let b = proxy.connect().await;
    a.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let pause = tokio::spawn({
        let port = proxy.port();
        async move {
            let out = Command::new("psql")
                .args([
                    "-X",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    "admin",
                    "-d",
                    "pgfleet",
                    "-c",
                    "PAUSE",
                ])
                .env("PGPASSWORD", "admin")
                .output()
                .await
                .unwrap();
            out.status.success()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pause.is_finished(), "PAUSE waits for the open transaction");
    // The running transaction may finish...
    a.batch_execute("SELECT 2; COMMIT").await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), pause)
        .await
        .unwrap()
        .unwrap());
    // ...but new ones wait until RESUME.
    let held = tokio::spawn(async move {
        b.query_one("SELECT 42", &[])
            .await
            .map(|r| r.get::<_, i32>(0))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !held.is_finished(),
        "new transactions are held while paused"
    );
    let (ok, out) = admin_psql(&proxy, "RESUME").await;
    assert!(ok, "{out}");
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), held)
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
        42
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_graceful() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 2")).await;
    let a = proxy.connect().await;
    a.batch_execute("BEGIN; CREATE TABLE s(x int)")
        .await
        .unwrap();
    let (ok, out) = admin_psql(&proxy, "SHUTDOWN").await;
    assert!(ok, "{out}");
    // The open transaction can still finish...
    a.batch_execute("INSERT INTO s VALUES (1); COMMIT")
        .await
        .unwrap();
    // ...then the client is told and disconnected, and new clients are refused.
    let e = a.batch_execute("SELECT 1").await.unwrap_err();
    let told = e
        .as_db_error()
        .is_some_and(|d| d.code().code() == "57P01" && d.message().contains("shutting down"));
    assert!(told || e.is_closed(), "{e:?}");
    assert!(try_connect(&proxy.conn_str("app", "app", "app"))
        .await
        .is_err());
    assert_eq!(
        cluster
            .psql_db("app", "SELECT count(*) FROM s")
            .unwrap()
            .trim(),
        "1"
    );
}

/// An idle client hears of a shutdown at once (57P01), well before `shutdown_timeout` (2 s here)
/// would cut it off: in transaction pooling it waits without a server, in session pooling it
/// waits holding one. Each waits on its session's own shutdown notifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_told_at_shutdown_in_both_pool_modes() {
    let cluster = app_cluster();
    for mode in ["transaction", "session"] {
        let proxy = TestProxy::start(&config_text(
            &cluster,
            &format!("pool_size = 2\npool_mode = \"{mode}\""),
        ))
        .await;
        let (client, conn) =
            tokio_postgres::connect(&proxy.conn_str("app", "app", "app"), tokio_postgres::NoTls)
                .await
                .unwrap();
        let ended = tokio::spawn(conn);
        client.simple_query("SELECT 1").await.unwrap();
        let (ok, out) = admin_psql(&proxy, "SHUTDOWN").await;
        assert!(ok, "{out}");
        let end = tokio::time::timeout(Duration::from_millis(1500), ended)
            .await
            .unwrap_or_else(|_| panic!("{mode}: the idle client was not told within 1.5 s"))
            .unwrap();
        let e = end.expect_err("the connection ends with the shutdown error");
        assert_eq!(
            e.as_db_error().map(|d| d.code().code()),
            Some("57P01"),
            "{mode}: {e:?}"
        );
    }
}
