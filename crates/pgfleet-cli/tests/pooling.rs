//! Transaction pooling done right: servers are shared between transactions, session settings follow
//! the client, prepared statements work on any server, session-only features pin, and nothing leaks
//! from one client to the next.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;

async fn backend_pid(c: &tokio_postgres::Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_follow_clients_across_servers() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 2")).await;
    let setup = proxy.connect().await;
    setup
        .batch_execute("CREATE TABLE kv(k int primary key, v int)")
        .await
        .unwrap();
    setup
        .batch_execute("INSERT INTO kv SELECT g, g * 2 FROM generate_series(1, 100) g")
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for client_no in 0..20i32 {
        let conn = proxy.conn_str("app", "app", "app");
        tasks.push(tokio::spawn(async move {
            let c = try_connect(&conn).await.unwrap();
            let get = c.prepare("SELECT v FROM kv WHERE k = $1").await.unwrap();
            let add = c
                .prepare("UPDATE kv SET v = v + 1 WHERE k = $1 RETURNING v")
                .await
                .unwrap();
            let mut pids = std::collections::HashSet::new();
            for i in 0..30i32 {
                let k = 1 + (client_no * 30 + i) % 100;
                let v: i32 = c.query_one(&get, &[&k]).await.unwrap().get(0);
                assert!(v >= k * 2);
                // An explicit transaction holds one server for all its statements.
                let tx_pid = {
                    c.batch_execute("BEGIN").await.unwrap();
                    let p1 = backend_pid(&c).await;
                    c.query_one(&add, &[&k]).await.unwrap();
                    let p2 = backend_pid(&c).await;
                    c.batch_execute("COMMIT").await.unwrap();
                    assert_eq!(p1, p2, "a transaction stays on one server");
                    p1
                };
                pids.insert(tx_pid);
            }
            pids.len()
        }));
    }
    let mut switched = 0;
    for t in tasks {
        if t.await.unwrap() > 1 {
            switched += 1;
        }
    }
    assert!(switched > 0, "clients moved between the two servers");
    let total: i64 = setup
        .query_one("SELECT sum(v)::bigint FROM kv", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, (1..=100).map(|k| k * 2).sum::<i64>() + 20 * 30);
    let open = proxy.rt.pools().list()[0].stats().open;
    assert!(open <= 2, "pool_size respected, {open} open");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_settings_replay_and_never_leak() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 1")).await;
    let a = proxy.connect().await;
    let b = proxy.connect().await;
    a.batch_execute(
        "CREATE SCHEMA sa; CREATE TABLE sa.t(x text); INSERT INTO sa.t VALUES ('from sa')",
    )
    .await
    .unwrap();
    a.batch_execute("SET search_path = sa, public; SET application_name = 'client-a'; SET statement_timeout = '7s'")
        .await
        .unwrap();
    for _ in 0..5 {
        // B shares the one server connection and must see none of A's settings.
        let row = b.query_one("SELECT current_setting('search_path'), current_setting('application_name'), current_setting('statement_timeout')", &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "\"$user\", public");
        assert_ne!(row.get::<_, String>(1), "client-a");
        assert_eq!(row.get::<_, String>(2), "0");
        // A keeps its settings on the same server after B used it.
        let row = a.query_one("SELECT x, current_setting('application_name'), current_setting('statement_timeout') FROM t", &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "from sa");
        assert_eq!(row.get::<_, String>(1), "client-a");
        assert_eq!(row.get::<_, String>(2), "7s");
    }
    // A SET rolled back with its transaction is not replayed.
    a.batch_execute("BEGIN; SET work_mem = '77MB'; ROLLBACK")
        .await
        .unwrap();
    b.batch_execute("SELECT 1").await.unwrap();
    assert_ne!(
        a.query_one("SHOW work_mem", &[])
            .await
            .unwrap()
            .get::<_, String>(0),
        "77MB"
    );
    // SET LOCAL lasts only for its transaction.
    a.batch_execute("BEGIN; SET LOCAL work_mem = '5MB'; COMMIT")
        .await
        .unwrap();
    assert_ne!(
        a.query_one("SHOW work_mem", &[])
            .await
            .unwrap()
            .get::<_, String>(0),
        "5MB"
    );
    // RESET returns to the startup value, RESET ALL to all of them.
    a.batch_execute("RESET statement_timeout").await.unwrap();
    b.batch_execute("SET statement_timeout = '3s'")
        .await
        .unwrap();
    assert_eq!(
        a.query_one("SHOW statement_timeout", &[])
            .await
            .unwrap()
            .get::<_, String>(0),
        "0"
    );
    a.batch_execute("RESET ALL").await.unwrap();
    assert_eq!(
        a.query_one("SHOW search_path", &[])
            .await
            .unwrap()
            .get::<_, String>(0),
        "\"$user\", public"
    );
    assert_eq!(
        b.query_one("SHOW statement_timeout", &[])
            .await
            .unwrap()
            .get::<_, String>(0),
        "3s"
    );
    assert!(proxy.rt.stats().settings_replays.load(Ordering::Relaxed) > 0);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_options_are_the_session_defaults() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 1")).await;
    let conn = format!(
        "{} options='-c statement_timeout=4s' application_name=opt-client",
        proxy.conn_str("app", "app", "app")
    );
    let a = try_connect(&conn).await.unwrap();
    let b = proxy.connect().await;
    b.batch_execute("SET statement_timeout = '9s'")
        .await
        .unwrap();
    let row = a
        .query_one(
            "SELECT current_setting('statement_timeout'), current_setting('application_name')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("4s".into(), "opt-client".into())
    );
    a.batch_execute("SET statement_timeout = '1s'; RESET statement_timeout")
        .await
        .unwrap();
    assert_eq!(
        a.query_one("SHOW statement_timeout", &[])
            .await
            .unwrap()
            .get::<_, String>(0),
        "4s"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_features_pin_the_client() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 2")).await;
    let a = proxy.connect().await;
    a.batch_execute("CREATE TEMP TABLE scratch(x int); INSERT INTO scratch VALUES (1)")
        .await
        .unwrap();
    // Others use the pool meanwhile; A keeps its temp table because it is pinned.
    let b = proxy.connect().await;
    for _ in 0..5 {
        b.batch_execute("SELECT 1").await.unwrap();
        assert_eq!(
            a.query_one("SELECT count(*) FROM scratch", &[])
                .await
                .unwrap()
                .get::<_, i64>(0),
            1
        );
    }
    let pins = proxy
        .rt
        .stats()
        .pins
        .iter()
        .map(|p| p.load(Ordering::Relaxed))
        .sum::<u64>();
    assert_eq!(pins, 1);
    // With one of two servers pinned, B still gets the other.
    let pid_b = backend_pid(&b).await;
    assert_ne!(pid_b, backend_pid(&a).await);
    drop(a);
    // A's server is cleaned (DISCARD ALL) and returned: its temp table is gone for the next client.
    assert!(eventually(5, || proxy.rt.pools().list()[0].stats().busy == 0).await);
    let c = proxy.connect().await;
    let c2 = proxy.connect().await;
    c.batch_execute("BEGIN").await.unwrap();
    c2.batch_execute("BEGIN").await.unwrap();
    for cl in [&c, &c2] {
        let e = cl.query("SELECT * FROM scratch", &[]).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42P01");
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_notify_in_transaction_and_session_mode() {
    let cluster = app_cluster();
    for mode in ["transaction", "session"] {
        let proxy = TestProxy::start(&config_text(
            &cluster,
            &format!("pool_size = 3\npool_mode = \"{mode}\""),
        ))
        .await;
        let (listener, mut messages) =
            connect_with_messages(&proxy.conn_str("app", "app", "app")).await;
        let first_notification = async move {
            while let Some((_, msg)) = messages.recv().await {
                if let tokio_postgres::AsyncMessage::Notification(n) = msg {
                    return Some(n.payload().to_owned());
                }
            }
            None
        };
        listener.batch_execute("LISTEN events").await.unwrap();
        let sender = proxy.connect().await;
        sender
            .batch_execute("NOTIFY events, 'hello'")
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), first_notification)
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some("hello"), "mode {mode}");
        proxy.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_leaving_mid_transaction_is_rolled_back() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(
        &cluster,
        "pool_size = 1\ncheckout_timeout = \"2s\"",
    ))
    .await;
    let setup = proxy.connect().await;
    setup.batch_execute("CREATE TABLE r(x int)").await.unwrap();
    let a = proxy.connect().await;
    a.batch_execute("BEGIN; INSERT INTO r VALUES (1)")
        .await
        .unwrap();
    drop(a);
    // The single server comes back rolled back; the next client can use it.
    assert_eq!(
        setup
            .query_one("SELECT count(*) FROM r", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        0
    );
    assert_eq!(
        setup
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'",
                &[]
            )
            .await
            .unwrap()
            .get::<_, i64>(0),
        0
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deallocate_and_close_of_protocol_statements() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 1")).await;
    let c = proxy.connect().await;
    let s = c.prepare("SELECT 1").await.unwrap();
    assert_eq!(c.query_one(&s, &[]).await.unwrap().get::<_, i32>(0), 1);
    drop(s); // tokio-postgres sends Close for the statement
    let s2 = c.prepare("SELECT 2").await.unwrap();
    assert_eq!(c.query_one(&s2, &[]).await.unwrap().get::<_, i32>(0), 2);
    // DEALLOCATE ALL forgets the client's statements; SQL-level PREPARE pins and works.
    c.batch_execute("DEALLOCATE ALL").await.unwrap();
    c.batch_execute("PREPARE q(int) AS SELECT $1 * 2")
        .await
        .unwrap();
    let r = c.simple_query("EXECUTE q(21)").await.unwrap();
    let v = r.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap().to_owned()),
        _ => None,
    });
    assert_eq!(v.as_deref(), Some("42"));
    c.batch_execute("DEALLOCATE q").await.unwrap();
    proxy.stop().await;
}

/// `DISCARD ALL` in a multi-statement string fails on the server (it cannot run in a
/// transaction block) and drops nothing; a `DEALLOCATE ALL` followed by an error in the same
/// string did drop the server's statements. Either way the client's statements keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_discard_or_deallocate_keeps_statements_working() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 1")).await;
    let c = proxy.connect().await;
    let s = c.prepare("SELECT 7").await.unwrap();
    assert_eq!(c.query_one(&s, &[]).await.unwrap().get::<_, i32>(0), 7);
    for failing in ["DISCARD ALL; SELECT 1", "DEALLOCATE ALL; SELECT 1/0"] {
        assert!(c.batch_execute(failing).await.is_err(), "{failing}");
        assert_eq!(
            c.query_one(&s, &[]).await.unwrap().get::<_, i32>(0),
            7,
            "after {failing}"
        );
        // A new statement of the same text is prepared on the server without 42P05.
        let again = c.prepare("SELECT 7").await.unwrap();
        assert_eq!(c.query_one(&again, &[]).await.unwrap().get::<_, i32>(0), 7);
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_text_different_search_path_never_shares_a_statement() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 1")).await;
    let setup = proxy.connect().await;
    setup
        .batch_execute("CREATE SCHEMA s1; CREATE SCHEMA s2; CREATE TABLE s1.t(v text); CREATE TABLE s2.t(v text); INSERT INTO s1.t VALUES ('one'); INSERT INTO s2.t VALUES ('two')")
        .await
        .unwrap();
    let a = try_connect(&format!(
        "{} options='-c search_path=s1'",
        proxy.conn_str("app", "app", "app")
    ))
    .await
    .unwrap();
    let b = try_connect(&format!(
        "{} options='-c search_path=s2'",
        proxy.conn_str("app", "app", "app")
    ))
    .await
    .unwrap();
    let sa = a.prepare("SELECT v FROM t").await.unwrap();
    let sb = b.prepare("SELECT v FROM t").await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            a.query_one(&sa, &[]).await.unwrap().get::<_, String>(0),
            "one"
        );
        assert_eq!(
            b.query_one(&sb, &[]).await.unwrap().get::<_, String>(0),
            "two"
        );
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_exhaustion_error_says_what_happened() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(
        &cluster,
        "pool_size = 1\ncheckout_timeout = \"300ms\"",
    ))
    .await;
    let a = proxy.connect().await;
    a.batch_execute("BEGIN").await.unwrap();
    let b = proxy.connect().await;
    let e = b.query("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "53300");
    assert_eq!(
        message(&e),
        "pgfleet: no server connection for app@app within 300ms (pool_size 1, 1 busy, 0 waiting)"
    );
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        b.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0),
        1
    );
    proxy.stop().await;
}

/// Writes a raw extended-protocol exchange and reads until ReadyForQuery, returning the message
/// types received, the first ErrorResponse's SQLSTATE, and the bodies of DataRows.
async fn raw_request(
    s: &mut tokio::net::TcpStream,
    out: &[u8],
) -> (Vec<u8>, Option<String>, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(out).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    let mut tags = Vec::new();
    let mut code = None;
    let mut rows = Vec::new();
    loop {
        while let Some(f) = pgfleet_wire::split_frame(&mut buf, 1 << 20).unwrap() {
            tags.push(f.tag());
            if f.tag() == b'D' {
                rows.extend_from_slice(f.body());
            }
            if f.tag() == b'E' && code.is_none() {
                code = pgfleet_wire::backend::ErrorFields::decode(f.body())
                    .unwrap()
                    .code()
                    .map(str::to_owned);
            }
            if f.tag() == b'Z' {
                return (tags, code, rows);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read_buf(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed");
    }
}

/// Logs in as app/app over a raw socket (SCRAM via the proxy's trust-free path is not needed:
/// the test config's `open` user is trusted).
async fn raw_login(proxy: &TestProxy) -> tokio::net::TcpStream {
    raw_login_with(proxy, &[]).await
}

/// As [`raw_login`], with more startup parameters.
async fn raw_login_with(proxy: &TestProxy, extra: &[(&str, &str)]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let mut b = bytes::BytesMut::new();
    let mut params = vec![("user", "open"), ("database", "app")];
    params.extend_from_slice(extra);
    pgfleet_wire::startup::encode_startup(&mut b, &params);
    s.write_all(&b).await.unwrap();
    let (tags, code, _) = raw_request(&mut s, &[]).await;
    assert_eq!(code, None, "{tags:?}");
    s
}

/// A proxy with one server connection and a trusted user `open` (server role app), for the raw
/// protocol tests.
async fn one_server_proxy_with_trusted_user(cluster: &pgfleet_testkit::Cluster) -> TestProxy {
    let text = format!(
        "{}\n[users.open]\nauth_method = \"trust\"\nserver_user = \"app\"\nserver_password = \"app\"\n",
        config_text(cluster, "pool_size = 1")
    );
    TestProxy::start(&text).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unnamed_statement_survives_server_switches_and_never_leaks() {
    use pgfleet_wire::frontend::{encode_parse, encode_sync};
    let cluster = app_cluster();
    let proxy = one_server_proxy_with_trusted_user(&cluster).await;
    let bind_execute_sync = |out: &mut bytes::BytesMut| {
        // Bind "" to "" with no parameters, Execute, Sync.
        pgfleet_wire::frame::write_message(out, b'B', |b| b.extend_from_slice(b"\0\0\0\0\0\0\0\0"));
        pgfleet_wire::frame::write_message(out, b'E', |b| b.extend_from_slice(b"\0\0\0\0\0"));
        encode_sync(out);
    };
    let mut a = raw_login(&proxy).await;
    let mut b = raw_login(&proxy).await;
    // A prepares its unnamed statement in one request...
    let mut out = bytes::BytesMut::new();
    encode_parse(&mut out, "", "SELECT 'mine'", &[]);
    encode_sync(&mut out);
    assert_eq!(raw_request(&mut a, &out).await.1, None);
    // ...B uses the only server in between and leaves its own unnamed statement there...
    let mut out = bytes::BytesMut::new();
    encode_parse(&mut out, "", "SELECT 'other'", &[]);
    encode_sync(&mut out);
    assert_eq!(raw_request(&mut b, &out).await.1, None);
    // ...and A's Bind of "" still runs A's statement.
    let mut out = bytes::BytesMut::new();
    bind_execute_sync(&mut out);
    let (tags, code, rows) = raw_request(&mut a, &out).await;
    assert_eq!(code, None);
    assert_eq!(tags, vec![b'2', b'D', b'C', b'Z']);
    assert!(rows.ends_with(b"mine"), "{rows:?}");
    // A client that never prepared an unnamed statement cannot run the one left on the server.
    let mut c = raw_login(&proxy).await;
    let mut out = bytes::BytesMut::new();
    bind_execute_sync(&mut out);
    let (_, code, _) = raw_request(&mut c, &out).await;
    assert_eq!(code.as_deref(), Some("26000"));
    proxy.stop().await;
}

/// A one-server proxy and two raw sessions whose custom setting `app.who` is `a` and `b`.
async fn sessions_a_and_b() -> (
    pgfleet_testkit::Cluster,
    TestProxy,
    tokio::net::TcpStream,
    tokio::net::TcpStream,
) {
    let cluster = app_cluster();
    let proxy = one_server_proxy_with_trusted_user(&cluster).await;
    let a = raw_login_with(&proxy, &[("options", "-c app.who=a")]).await;
    let b = raw_login_with(&proxy, &[("options", "-c app.who=b")]).await;
    (cluster, proxy, a, b)
}

/// One extended-protocol request: Parse "" of `sql`, Bind, Execute, Sync.
fn extended(sql: &str) -> bytes::BytesMut {
    use pgfleet_wire::frontend::{encode_bind, encode_execute, encode_parse, encode_sync};
    let mut out = bytes::BytesMut::new();
    encode_parse(&mut out, "", sql, &[]);
    encode_bind(&mut out, "", "", &[], &[]);
    encode_execute(&mut out, "", 0);
    encode_sync(&mut out);
    out
}

/// The custom setting `app.who` as the session sees it, read by `request`, whose answers must be
/// exactly the client's own `answers` (none of pgfleet's settings sync).
async fn who_by(s: &mut tokio::net::TcpStream, request: &[u8], answers: &[u8]) -> String {
    let (tags, code, rows) = raw_request(s, request).await;
    assert_eq!(code, None, "{tags:?}");
    assert_eq!(tags, answers, "the client's answers only");
    String::from_utf8_lossy(&rows[6..]).into_owned()
}

const WHO: &str = "SELECT current_setting('app.who')";

/// `app.who` through an extended request of its own: ParseComplete, BindComplete, the row,
/// CommandComplete, ReadyForQuery.
async fn who(s: &mut tokio::net::TcpStream) -> String {
    who_by(s, &extended(WHO), b"12DCZ").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_sync_inside_a_failed_request_is_done_again() {
    let (_cluster, proxy, mut a, mut b) = sessions_a_and_b().await;
    assert_eq!(who(&mut b).await, "b");
    // A's failing request carries the sync to A's settings: its error rolls the sync back too.
    let (tags, code, _) = raw_request(&mut a, &extended("SELECT 1 / (random() * 0)::int")).await;
    assert_eq!(code.as_deref(), Some("22012"), "{tags:?}");
    assert_eq!(
        tags,
        vec![b'1', b'2', b'E', b'Z'],
        "the client's answers only"
    );
    // The only server holds B's value again; pgfleet must not believe it holds A's.
    assert_eq!(who(&mut a).await, "a");
    assert_eq!(who(&mut b).await, "b");
    // The sync went inside the requests: pgfleet's set_config statement is prepared on the server.
    let (_, code, rows) = raw_request(
        &mut a,
        &extended("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'SELECT pg_catalog.set_config($1, $2, false) WHERE %'"),
    )
    .await;
    assert_eq!(code, None);
    assert!(rows.ends_with(b"1"), "{rows:?}");
    proxy.stop().await;
}

/// `app.who` through a simple Query, which carries the settings sync when one is due.
async fn who_simple(s: &mut tokio::net::TcpStream) -> String {
    who_by(s, &simple(&format!("{WHO};")), b"TDCZ").await
}

/// One simple Query.
fn simple(sql: &str) -> bytes::BytesMut {
    let mut out = bytes::BytesMut::new();
    pgfleet_wire::frontend::encode_query(&mut out, sql);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_sync_inside_a_simple_query() {
    let (_cluster, proxy, mut a, mut b) = sessions_a_and_b().await;
    assert_eq!(who_simple(&mut b).await, "b");
    assert_eq!(who_simple(&mut a).await, "a");
    // A failing Query rolls the sync it carried back.
    assert_eq!(who_simple(&mut b).await, "b");
    let (tags, code, _) = raw_request(&mut a, &simple("SELECT 1 / (random() * 0)::int")).await;
    assert_eq!(code.as_deref(), Some("22012"), "{tags:?}");
    assert_eq!(who_simple(&mut a).await, "a");
    // pgfleet's set_config statement deallocated behind its back: the Query that carries the
    // sync fails with PostgreSQL's error (the server skips it until the Sync pgfleet sends), never
    // runs with B's settings, and the next one works again.
    let (_, code, rows) = raw_request(
        &mut b,
        &simple("SELECT name FROM pg_prepared_statements WHERE statement LIKE 'SELECT pg_catalog.set_config($1, $2, false) WHERE %'"),
    )
    .await;
    assert_eq!(code, None);
    let name = String::from_utf8_lossy(&rows[6..]).into_owned();
    assert!(name.starts_with("pgfleet_"), "{name}");
    // Run through SQL by a client, the statement sets nothing without pgfleet's secret.
    for sql in [
        format!("EXECUTE {name}('app.who', 'evil', 'guess')"),
        format!("EXPLAIN (ANALYZE) EXECUTE {name}('app.who', 'evil', '')"),
    ] {
        let (tags, code, _) = raw_request(&mut b, &simple(&sql)).await;
        assert_eq!(code, None, "{sql}: {tags:?}");
    }
    let (_, _, rows) = raw_request(&mut b, &simple("SHOW app.who")).await;
    assert!(rows.ends_with(b"b"), "{rows:?}");
    let (tags, code, _) = raw_request(&mut b, &simple(&format!("DEALLOCATE {name}"))).await;
    assert_eq!(code, None, "{tags:?}");
    let (tags, code, _) = raw_request(&mut a, &simple("SELECT current_setting('app.who')")).await;
    assert_eq!(code.as_deref(), Some("26000"), "{tags:?}");
    assert_eq!(tags, vec![b'E', b'Z']);
    assert_eq!(who_simple(&mut a).await, "a");
    assert_eq!(who_simple(&mut b).await, "b");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_sync_stays_out_of_a_request_that_opens_a_transaction() {
    let (_cluster, proxy, mut a, mut b) = sessions_a_and_b().await;
    assert_eq!(who(&mut b).await, "b");
    // Had the sync joined A's BEGIN, A's ROLLBACK would undo it.
    let (tags, code, _) = raw_request(&mut a, &extended("BEGIN")).await;
    assert_eq!((code, tags.last()), (None, Some(&b'Z')));
    assert_eq!(who(&mut a).await, "a");
    let (_, code, _) = raw_request(&mut a, &extended("ROLLBACK")).await;
    assert_eq!(code, None);
    assert_eq!(who(&mut a).await, "a");
    assert_eq!(who(&mut b).await, "b");
    // One request that begins and rolls back a transaction ends idle and without an error: only
    // keeping the sync out of it keeps A's settings.
    assert_eq!(who(&mut b).await, "b");
    let mut out = bytes::BytesMut::new();
    for sql in ["BEGIN", "SELECT current_setting('app.who')", "ROLLBACK"] {
        out.extend_from_slice(&extended(sql)[..]);
        out.truncate(out.len() - 5); // each statement's Sync
    }
    pgfleet_wire::frontend::encode_sync(&mut out);
    let (tags, code, rows) = raw_request(&mut a, &out).await;
    assert_eq!(code, None, "{tags:?}");
    assert!(rows.ends_with(b"a"), "{rows:?}");
    assert_eq!(tags.last(), Some(&b'Z'));
    assert_eq!(who(&mut a).await, "a");
    assert_eq!(who(&mut b).await, "b");
    proxy.stop().await;
}

/// The settings sync (FunctionCalls of set_config) leaves the server's unnamed statement in place,
/// as PostgreSQL's fast path does: pgfleet binds it again without a new Parse, in the settings
/// of the client that prepared it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unnamed_statement_survives_a_settings_sync() {
    use pgfleet_wire::frontend::{encode_bind, encode_execute, encode_parse, encode_sync};
    let cluster = app_cluster();
    let proxy = one_server_proxy_with_trusted_user(&cluster).await;
    let mut a = raw_login_with(&proxy, &[("application_name", "client a")]).await;
    let mut b = raw_login_with(&proxy, &[("application_name", "client b")]).await;
    let mut out = bytes::BytesMut::new();
    encode_parse(
        &mut out,
        "",
        "SELECT current_setting('application_name')",
        &[],
    );
    encode_sync(&mut out);
    assert_eq!(raw_request(&mut a, &out).await.1, None);
    // B's named statement runs on the only server: a sync to B's settings, the unnamed slot untouched.
    let mut out = bytes::BytesMut::new();
    encode_parse(
        &mut out,
        "b1",
        "SELECT current_setting('application_name')",
        &[],
    );
    encode_bind(&mut out, "", "b1", &[], &[]);
    encode_execute(&mut out, "", 0);
    encode_sync(&mut out);
    let (_, code, rows) = raw_request(&mut b, &out).await;
    assert_eq!(code, None);
    assert!(rows.ends_with(b"client b"), "{rows:?}");
    // A binds its unnamed statement after the sync back to A's settings.
    let reprepares = proxy.rt.stats().reprepares.load(Ordering::Relaxed);
    let mut out = bytes::BytesMut::new();
    encode_bind(&mut out, "", "", &[], &[]);
    encode_execute(&mut out, "", 0);
    encode_sync(&mut out);
    let (tags, code, rows) = raw_request(&mut a, &out).await;
    assert_eq!(code, None, "{tags:?}");
    assert_eq!(tags, vec![b'2', b'D', b'C', b'Z']);
    assert!(rows.ends_with(b"client a"), "{rows:?}");
    assert_eq!(
        proxy.rt.stats().reprepares.load(Ordering::Relaxed),
        reprepares,
        "no new Parse was needed"
    );
    proxy.stop().await;
}
