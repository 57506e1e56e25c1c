//! Bad input and faults: malformed packets get 08P01 and a disconnect without hurting anyone else;
//! a killed backend or a restarted server costs the affected clients an error, not the proxy.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw bytes as a fresh client and returns everything the proxy answers until it closes.
async fn raw_exchange(proxy: &TestProxy, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("proxy closes the connection");
    out
}

fn startup(user: &str) -> Vec<u8> {
    let mut b = bytes::BytesMut::new();
    pgfleet_wire::startup::encode_startup(&mut b, &[("user", user), ("database", "app")]);
    b.to_vec()
}

fn error_code(reply: &[u8]) -> Option<String> {
    let pos = reply.iter().position(|&b| b == b'E')?;
    let body = &reply[pos + 5..];
    let fields = pgfleet_wire::backend::ErrorFields::decode(body).ok()?;
    fields.code().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_refused_and_harms_no_one() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 2")).await;
    let bystander = proxy.connect().await;
    bystander
        .batch_execute("BEGIN; CREATE TABLE b(x int)")
        .await
        .unwrap();

    // Length field below the minimum.
    assert_eq!(
        error_code(&raw_exchange(&proxy, &[0, 0, 0, 2, 0, 0]).await).as_deref(),
        Some("08P01")
    );
    // Length above the startup limit.
    assert_eq!(
        error_code(&raw_exchange(&proxy, &[0, 0x10, 0, 0, 0, 3, 0, 0]).await).as_deref(),
        Some("08P01")
    );
    // Unsupported protocol version.
    assert_eq!(
        error_code(&raw_exchange(&proxy, &[0, 0, 0, 8, 0, 2, 0, 0]).await).as_deref(),
        Some("08P01")
    );
    // Parameter list without its terminator.
    assert_eq!(
        error_code(
            &raw_exchange(
                &proxy,
                &[0, 0, 0, 13, 0, 3, 0, 0, b'u', b's', b'e', b'r', 0]
            )
            .await
        )
        .as_deref(),
        Some("08P01")
    );
    // Garbage queued right after an SSLRequest (CVE-2021-23214 pattern).
    let mut ssl = vec![0, 0, 0, 8, 4, 210, 22, 47];
    ssl.extend_from_slice(b"garbage!");
    let reply = raw_exchange(&proxy, &ssl).await;
    assert_eq!(error_code(&reply).as_deref(), Some("08P01"));
    // A plain SSLRequest is answered 'N', then a normal login works (tokio-postgres does this with
    // sslmode=prefer).
    let c = try_connect(&format!(
        "{} sslmode=prefer",
        proxy.conn_str("app", "app", "app")
    ))
    .await
    .unwrap();
    c.batch_execute("SELECT 1").await.unwrap();
    // A query before authentication finishes.
    let mut pkt = startup("app");
    pkt.extend_from_slice(b"Q\0\0\0\x0dSELECT 1\0");
    let reply = raw_exchange(&proxy, &pkt).await;
    assert_eq!(error_code(&reply).as_deref(), Some("08P01"));
    // The bystander's transaction is untouched and no server connection leaked.
    bystander
        .batch_execute("INSERT INTO b VALUES (1); COMMIT")
        .await
        .unwrap();
    assert_eq!(
        bystander
            .query_one("SELECT count(*) FROM b", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        1
    );
    let pool = proxy.rt.pools().list()[0].clone();
    // The server goes back to the pool right after the client got its answer.
    let released = eventually(5, || {
        let s = pool.stats();
        s.open <= 2 && s.busy == 0
    })
    .await;
    assert!(released, "{:?}", pool.stats());
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_after_login_get_08p01() {
    let cluster = app_cluster();
    let text = format!("{}\n[users.open]\nauth_method = \"trust\"\nserver_user = \"app\"\nserver_password = \"app\"\n", config_text(&cluster, "pool_size = 1"));
    let proxy = TestProxy::start(&text).await;
    for garbage in [
        &b"\x01\0\0\0\x04"[..],
        &b"Q\0\0\0\x02"[..],
        &b"Q\x7f\xff\xff\xff"[..],
    ] {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let mut b = bytes::BytesMut::new();
        pgfleet_wire::startup::encode_startup(&mut b, &[("user", "open"), ("database", "app")]);
        s.write_all(&b).await.unwrap();
        // Read the login answer up to ReadyForQuery.
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(6).any(|w| w == b"Z\0\0\0\x05I") {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(garbage).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(error_code(&out).as_deref(), Some("08P01"), "{garbage:?}");
    }
    let c = proxy.connect().await;
    assert_eq!(
        c.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0),
        1
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_backend_costs_one_error_then_the_pool_recovers() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 1")).await;
    let c = proxy.connect().await;
    let pid: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let killer = tokio::spawn({
        let admin = cluster.config_string("postgres", "postgres");
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let k = try_connect(&admin).await.unwrap();
            k.execute("SELECT pg_terminate_backend($1)", &[&pid])
                .await
                .unwrap();
        }
    });
    let e = c.execute("SELECT pg_sleep(5)", &[]).await.unwrap_err();
    killer.await.unwrap();
    assert_eq!(sqlstate(&e), "57P01");
    // The same client carries on with a new server connection.
    let new_pid: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(pid, new_pid);
    // A backend killed while idle in the pool is noticed at checkout.
    let k = try_connect(&cluster.config_string("postgres", "postgres"))
        .await
        .unwrap();
    k.execute("SELECT pg_terminate_backend($1)", &[&new_pid])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        c.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0),
        1
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_then_back() {
    let mut cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(
        &cluster,
        "pool_size = 2\nconnect_timeout = \"1s\"",
    ))
    .await;
    let c = proxy.connect().await;
    c.batch_execute("SELECT 1").await.unwrap();
    cluster.stop().unwrap();
    let e = c.query("SELECT 1", &[]).await.unwrap_err();
    let m = message(&e);
    assert!(
        m.contains("pgfleet") && (m.contains("127.0.0.1") || m.contains("connection")),
        "{m}"
    );
    // New clients may log in (pgfleet knows the server's parameters) but get a clear error for
    // their queries while it is down.
    let fresh = proxy.connect().await;
    let e = fresh.query("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "08006");
    assert!(
        message(&e).contains("failed to connect to server 127.0.0.1"),
        "{}",
        message(&e)
    );
    cluster.start_again().unwrap();
    assert!(
        c.query_one("SELECT 1", &[]).await.is_ok() || c.query_one("SELECT 1", &[]).await.is_ok()
    );
    let c2 = proxy.connect().await;
    assert_eq!(
        c2.query_one("SELECT 2", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        2
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_at_start() {
    let mut cluster = app_cluster();
    cluster.stop().unwrap();
    let proxy = TestProxy::start(&config_text(&cluster, "connect_timeout = \"1s\"")).await;
    let e = try_connect(&proxy.conn_str("app", "app", "app"))
        .await
        .err()
        .unwrap();
    assert!(
        message(&e).contains("failed to connect to server"),
        "{}",
        message(&e)
    );
    cluster.start_again().unwrap();
    let c = proxy.connect().await;
    assert_eq!(
        c.query_one("SELECT 3", &[]).await.unwrap().get::<_, i32>(0),
        3
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_gone_mid_copy_leaves_a_healthy_pool() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 1")).await;
    let setup = proxy.connect().await;
    setup.batch_execute("CREATE TABLE cc(x int)").await.unwrap();
    {
        let c = proxy.connect().await;
        let sink = c
            .copy_in::<_, bytes::Bytes>("COPY cc FROM STDIN")
            .await
            .unwrap();
        use futures::SinkExt;
        futures::pin_mut!(sink);
        sink.feed(bytes::Bytes::from_static(b"1\n2\n"))
            .await
            .unwrap();
        sink.flush().await.unwrap();
        drop(c);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        setup
            .query_one("SELECT count(*) FROM cc", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        0
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_client_connections_is_enforced() {
    let cluster = app_cluster();
    let text = config_text(&cluster, "").replace(
        "shutdown_timeout = \"2s\"",
        "shutdown_timeout = \"2s\"\nmax_client_connections = 2",
    );
    let proxy = TestProxy::start(&text).await;
    let _a = proxy.connect().await;
    let _b = proxy.connect().await;
    let e = try_connect(&proxy.conn_str("app", "app", "app"))
        .await
        .err()
        .unwrap();
    assert_eq!(sqlstate(&e), "53300");
    drop(_a);
    let mut ok = false;
    for _ in 0..50 {
        if try_connect(&proxy.conn_str("app", "app", "app"))
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "a freed slot is reusable");
    proxy.stop().await;
}
