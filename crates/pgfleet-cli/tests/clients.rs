//! Real client programs through the proxy: psql (including \copy) and pgbench in both pool modes
//! with every query mode.

#![allow(clippy::unwrap_used)]

mod common;

use common::programs::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_queries_and_copy() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 2")).await;
    let dir = std::env::temp_dir().join(format!("pgfleet-psql-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.csv");
    let output = dir.join("out.csv");
    let rows: String = (1..=500).map(|i| format!("{i},name {i}\n")).collect();
    std::fs::write(&input, rows).unwrap();
    let script = format!(
        "CREATE TABLE people(id int primary key, name text);\n\
         \\copy people FROM '{}' WITH (FORMAT csv)\n\
         SELECT count(*), max(id) FROM people;\n\
         \\copy (SELECT * FROM people WHERE id <= 10 ORDER BY id) TO '{}' WITH (FORMAT csv)\n\
         SET application_name = 'psql-test';\n\
         SHOW application_name;\n",
        input.display(),
        output.display()
    );
    let script_file = dir.join("script.sql");
    std::fs::write(&script_file, &script).unwrap();
    let (ok, text) = psql_script(&proxy, "app", &script_file).await;
    assert!(ok, "{text}");
    assert!(text.contains("500|500"), "{text}");
    assert!(text.contains("psql-test"), "{text}");
    let copied = std::fs::read_to_string(&output).unwrap();
    assert_eq!(copied.lines().count(), 10);
    assert_eq!(copied.lines().next(), Some("1,name 1"));
    // A failing statement reports the server's error.
    let (ok, text) = run(
        "psql",
        &proxy,
        &[
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "app",
            "-c",
            "SELECT * FROM nope",
        ],
    )
    .await;
    assert!(!ok);
    assert!(text.contains("relation \"nope\" does not exist"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
    proxy.stop().await;
}

/// A client with another `client_encoding`: texts that cannot change the session go through byte
/// for byte (the server reads them as LATIN1); a text pgfleet must analyse and that is not UTF-8
/// ends the connection with an error that says why (never forwarded under another meaning), and
/// the proxy keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latin1_client_texts_pass_through_or_get_a_clear_error() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(&cluster, "pool_size = 1")).await;
    let latin1 = "dbname=app client_encoding=LATIN1";
    let dir = std::env::temp_dir().join(format!("pgfleet-latin1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let psql_file = |script: &[u8]| {
        let file = dir.join("latin1.sql");
        std::fs::write(&file, script).unwrap();
        file
    };
    // 'café' in LATIN1: the byte 0xE9 is not UTF-8.
    let file = psql_file(
        b"CREATE TABLE words(w text);\n\
          INSERT INTO words VALUES ('caf\xe9');\n\
          SELECT length(w), current_setting('client_encoding') FROM words WHERE w = 'caf\xe9';\n",
    );
    let (ok, text) = psql_script(&proxy, latin1, &file).await;
    assert!(ok, "{text}");
    assert!(text.contains("4|LATIN1"), "{text}");
    // A UTF-8 client reads the same word.
    let (ok, text) = run(
        "psql",
        &proxy,
        &[
            "-X",
            "-A",
            "-t",
            "-d",
            "app",
            "-c",
            "SELECT count(*) FROM words WHERE w = 'café'",
        ],
    )
    .await;
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "1");
    // A setting pgfleet would have to replay: refused with the reason.
    let file = psql_file(b"SET application_name = 'caf\xe9';\n");
    let (ok, text) = psql_script(&proxy, latin1, &file).await;
    assert!(!ok, "{text}");
    assert!(
        text.contains("FATAL:  invalid UTF-8 in Query message"),
        "{text}"
    );
    assert!(text.contains("set client_encoding to UTF8"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
    // The only server connection went back to the pool: the next client gets it.
    let (ok, text) = run(
        "psql",
        &proxy,
        &["-X", "-A", "-t", "-d", "app", "-c", "SELECT 41 + 1"],
    )
    .await;
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "42");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_in_both_pool_modes_and_every_query_mode() {
    let cluster = app_cluster();
    for pool_mode in ["transaction", "session"] {
        let size = if pool_mode == "session" { 8 } else { 4 };
        let proxy = TestProxy::start(&config_text(
            &cluster,
            &format!("pool_size = {size}\npool_mode = \"{pool_mode}\"\ncheckout_timeout = \"30s\""),
        ))
        .await;
        if pool_mode == "transaction" {
            let (ok, text) = run("pgbench", &proxy, &["-i", "-s", "1", "-q", "app"]).await;
            assert!(ok, "pgbench -i: {text}");
        }
        for query_mode in ["simple", "extended", "prepared"] {
            let (ok, text) = run(
                "pgbench",
                &proxy,
                &[
                    "-n", "-c", "8", "-j", "2", "-t", "40", "-M", query_mode, "app",
                ],
            )
            .await;
            assert!(ok, "{pool_mode}/{query_mode}: {text}");
            assert_eq!(
                failed_transactions(&text),
                Some(0),
                "{pool_mode}/{query_mode}: {text}"
            );
            assert_eq!(
                processed(&text),
                Some(320),
                "{pool_mode}/{query_mode}: {text}"
            );
        }
        proxy.stop().await;
    }
    // The balance invariant of TPC-B holds: every update landed exactly once (-n keeps pgbench from
    // truncating the history between runs).
    let sums = cluster
        .psql_db("app", "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history)")
        .unwrap();
    assert_eq!(sums.trim(), "t");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_prepared_100_clients_over_10_servers() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&config_text(
        &cluster,
        "pool_size = 10\ncheckout_timeout = \"30s\"",
    ))
    .await;
    let (ok, text) = run("pgbench", &proxy, &["-i", "-s", "1", "-q", "app"]).await;
    assert!(ok, "{text}");
    let (ok, text) = run(
        "pgbench",
        &proxy,
        &[
            "-c", "100", "-j", "2", "-t", "30", "-M", "prepared", "-S", "app",
        ],
    )
    .await;
    assert!(ok, "{text}");
    assert_eq!(failed_transactions(&text), Some(0), "{text}");
    assert_eq!(processed(&text), Some(3000), "{text}");
    let (ok, text) = run(
        "pgbench",
        &proxy,
        &[
            "-c", "100", "-j", "2", "-t", "10", "-M", "prepared", "-N", "app",
        ],
    )
    .await;
    assert!(ok, "{text}");
    assert_eq!(failed_transactions(&text), Some(0), "{text}");
    let open = proxy.rt.pools().list()[0].stats().open;
    assert!(open <= 10, "{open} server connections for pool_size 10");
    proxy.stop().await;
}
