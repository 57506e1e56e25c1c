//! The proxy speaks the PostgreSQL protocol to real clients: simple and extended queries, errors
//! with the server's SQLSTATE, multi-statement strings, COPY both ways, cancel.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::{SinkExt, StreamExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_extended_errors_and_multi_statement() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 2")).await;
    let c = proxy.connect().await;

    // Extended protocol with parameters, text and binary results.
    let row = c
        .query_one(
            "SELECT $1::int + 1, $2::text || 'x', now() IS NOT NULL",
            &[&41i32, &"a"],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    assert_eq!(row.get::<_, String>(1), "ax");
    assert!(row.get::<_, bool>(2));

    // Simple protocol, several statements in one string.
    let msgs = c
        .simple_query("CREATE TABLE t(id int primary key, v text); INSERT INTO t VALUES (1,'a'),(2,'b'); SELECT count(*) FROM t")
        .await
        .unwrap();
    let counts: Vec<String> = msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(counts, vec!["2"]);

    // The server's error arrives with its SQLSTATE, and the session keeps working.
    let e = c
        .execute("INSERT INTO t VALUES (1, 'dup')", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    let e = c
        .query("SELECT * FROM missing_table", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P01");
    let e = c.simple_query("SELEC 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42601");
    assert_eq!(
        c.query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        2
    );

    // An error inside a transaction leaves it failed (25P02) until ROLLBACK, like PostgreSQL.
    c.batch_execute("BEGIN").await.unwrap();
    assert!(c.execute("SELECT 1/0", &[]).await.is_err());
    let e = c.execute("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();

    // Notices pass through.
    c.batch_execute("DO $$ BEGIN RAISE NOTICE 'hello from the server'; END $$")
        .await
        .unwrap();

    // Empty query.
    c.simple_query("").await.unwrap();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_executes_before_one_sync() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 1")).await;
    let c = proxy.connect().await;
    c.batch_execute("CREATE TABLE p(i int)").await.unwrap();
    let stmt = c
        .prepare("INSERT INTO p VALUES ($1) RETURNING i * 10")
        .await
        .unwrap();
    // tokio-postgres pipelines these futures on one connection.
    let params: Vec<i32> = (0..50).collect();
    let futs: Vec<_> = params
        .iter()
        .map(|i| {
            let (c, stmt) = (&c, &stmt);
            async move { c.query_one(stmt, &[i]).await }
        })
        .collect();
    let rows = futures::future::join_all(futs).await;
    for (i, r) in rows.into_iter().enumerate() {
        assert_eq!(r.unwrap().get::<_, i32>(0), i as i32 * 10);
    }
    assert_eq!(
        c.query_one("SELECT count(*) FROM p", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        50
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_and_out() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 1")).await;
    let c = proxy.connect().await;
    c.batch_execute("CREATE TABLE c(id int, v text)")
        .await
        .unwrap();
    let sink = c.copy_in("COPY c FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    let mut data = String::new();
    for i in 0..10_000 {
        data.push_str(&format!("{i}\tvalue {i}\n"));
    }
    sink.send(bytes::Bytes::from(data)).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 10_000);

    let stream = c
        .copy_out("COPY (SELECT id FROM c ORDER BY id) TO STDOUT")
        .await
        .unwrap();
    futures::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 10_000);
    assert_eq!(text.lines().last(), Some("9999"));

    // A COPY with bad data fails with the server's error and the session goes on.
    let sink = c.copy_in("COPY c FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"not-a-number\tx\n"))
        .await
        .unwrap();
    let e = sink.finish().await.unwrap_err();
    assert_eq!(sqlstate(&e), "22P02");
    assert_eq!(
        c.query_one("SELECT count(*) FROM c", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        10_000
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reaches_the_running_query() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 2")).await;
    let c = proxy.connect().await;
    let token = c.cancel_token();
    let start = Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    let e = c.execute("SELECT pg_sleep(10)", &[]).await.unwrap_err();
    canceller.await.unwrap();
    assert_eq!(sqlstate(&e), "57014");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "cancel took {:?}",
        start.elapsed()
    );
    // The connection is usable afterwards.
    assert_eq!(
        c.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0),
        1
    );
    proxy.stop().await;
}
