//! Consistency beyond plain splitting, on real streaming replicas: quorum writes (waiting, and both
//! timeout actions), read-your-writes waiting for a replica (`ryw_wait`), per-statement
//! consistency hints, validation of `pgfleet.*` settings, and reads replayed elsewhere when their
//! replica dies under pgbench.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::fleet::*;
use common::programs::*;
use common::*;
use pgfleet_testkit::ClusterOptions;

fn delayed(delay: &str) -> ClusterOptions {
    ClusterOptions::default().setting("recovery_min_apply_delay", delay)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_commit_waits_for_the_delayed_replica() {
    let f = fleet_with(&[delayed("1s")]);
    let proxy = TestProxy::start(&fleet_config(
        &f,
        "max_lag_time = \"1h\"\nwrite_quorum = 1\nquorum_timeout = \"10s\"",
    ))
    .await;
    settled(&proxy).await;
    let c = proxy.connect().await;
    for i in 0..3 {
        let start = Instant::now();
        c.execute("INSERT INTO t(v) VALUES ($1)", &[&format!("q{i}")])
            .await
            .unwrap();
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900),
            "COMMIT answered after {took:?}, before the 1s-delayed replica replayed it"
        );
        // Answered means replayed: the replica has the row now.
        let on_replica = f.replicas[0]
            .psql_db("app", &format!("SELECT count(*) FROM t WHERE v = 'q{i}'"))
            .unwrap();
        assert_eq!(on_replica.trim(), "1", "the replica has replayed the write");
    }
    // A write through SQL-level EXECUTE (a session command) waits for the quorum too.
    c.batch_execute("PREPARE ins(text) AS INSERT INTO t(v) VALUES ($1)")
        .await
        .unwrap();
    let start = Instant::now();
    c.batch_execute("EXECUTE ins('via-execute')").await.unwrap();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "EXECUTE of a prepared INSERT answered after {took:?}, before the replica replayed it"
    );
    // So does an extended-protocol write of the now pinned session (no new routing happens).
    let start = Instant::now();
    c.execute("INSERT INTO t(v) VALUES ($1)", &[&"pinned-extended"])
        .await
        .unwrap();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "an extended-protocol INSERT of a pinned session answered after {took:?}"
    );
    // Reads are not held.
    let start = Instant::now();
    port_of(&c, "SELECT inet_server_port()").await;
    assert!(start.elapsed() < Duration::from_millis(500));
    // A session can opt out.
    c.batch_execute("SET pgfleet.write_quorum = 0")
        .await
        .unwrap();
    let start = Instant::now();
    c.execute("INSERT INTO t(v) VALUES ('fast')", &[])
        .await
        .unwrap();
    assert!(start.elapsed() < Duration::from_millis(800));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_timeout_errors_or_warns_and_the_data_is_committed() {
    let mut f = fleet(1);
    let base = "write_quorum = 1\nquorum_timeout = \"300ms\"\nban_time = \"100ms\"";
    let proxy = TestProxy::start(&fleet_config(&f, base)).await;
    settled(&proxy).await;
    let c = proxy.connect().await;
    c.execute("INSERT INTO t(v) VALUES ('replicated')", &[])
        .await
        .unwrap();
    f.replicas[0].stop().unwrap();

    // Action "error": the COMMIT's response carries 58000, and the row is committed anyway.
    let e = c
        .batch_execute("INSERT INTO t(v) VALUES ('unconfirmed')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "58000", "{}", message(&e));
    let msg = message(&e);
    assert!(
        msg.contains("committed on the primary") && msg.contains("write_quorum"),
        "{msg}"
    );
    assert_eq!(
        f.primary
            .psql_db("app", "SELECT count(*) FROM t WHERE v = 'unconfirmed'")
            .unwrap()
            .trim(),
        "1"
    );
    // The session goes on normally.
    assert_eq!(
        port_of(&c, "SELECT inet_server_port()").await,
        f.primary.port() as i32
    );
    assert!(proxy.rt.stats().quorum_timeouts.load(Ordering::Relaxed) >= 1);
    proxy.stop().await;

    // Action "warning": psql shows the WARNING and succeeds.
    let proxy = TestProxy::start(&fleet_config(
        &f,
        &format!("{base}\nquorum_timeout_action = \"warning\""),
    ))
    .await;
    let (ok, out) = run(
        "psql",
        &proxy,
        &[
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "app",
            "-c",
            "INSERT INTO t(v) VALUES ('warned')",
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains("WARNING") && out.contains("committed on the primary"),
        "{out}"
    );
    assert_eq!(
        f.primary
            .psql_db("app", "SELECT count(*) FROM t WHERE v = 'warned'")
            .unwrap()
            .trim(),
        "1"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_your_writes_waits_for_a_replica_within_ryw_wait() {
    let f = fleet_with(&[delayed("300ms")]);
    let proxy = TestProxy::start(&fleet_config(
        &f,
        "max_lag_time = \"1h\"\nryw_wait = \"5s\"",
    ))
    .await;
    settled(&proxy).await;
    let replica = f.replicas[0].port() as i32;
    let c = proxy.connect().await;
    c.batch_execute("SET pgfleet.consistency = 'read_your_writes'")
        .await
        .unwrap();
    for i in 0..5 {
        let v = format!("ryw{i}");
        c.execute("INSERT INTO t(v) VALUES ($1)", &[&v])
            .await
            .unwrap();
        let start = Instant::now();
        let row = c
            .query_one(
                "SELECT count(*)::int, inet_server_port() FROM t WHERE v = $1",
                &[&v],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 1, "the read sees the write");
        assert_eq!(
            row.get::<_, i32>(1),
            replica,
            "the read waited for the replica instead of going to the primary"
        );
        assert!(start.elapsed() >= Duration::from_millis(150));
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_hints_and_bad_settings() {
    let f = fleet(1);
    let proxy = TestProxy::start(&fleet_config(&f, "")).await;
    settled(&proxy).await;
    let (primary, replica) = (f.primary.port() as i32, f.replicas[0].port() as i32);
    let c = proxy.connect().await;
    assert_eq!(port_of(&c, "SELECT inet_server_port()").await, replica);
    assert_eq!(
        port_of(
            &c,
            "/* pgfleet: consistency=strong */ SELECT inet_server_port()"
        )
        .await,
        primary,
        "a hint makes one statement strong"
    );
    assert_eq!(port_of(&c, "SELECT inet_server_port()").await, replica);

    // Bad values: a clear 22023 at the next statement, naming setting and value; nothing runs.
    let cases = [
        ("pgfleet.consistency", "'bogus'", "read_your_writes"),
        ("pgfleet.role", "'leader'", "primary, replica or auto"),
        ("pgfleet.max_staleness", "'soon'", "200ms"),
        ("pgfleet.write_quorum", "'many'", "number of replicas"),
        ("pgfleet.after_lsn", "'nowhere'", "last_write_lsn"),
    ];
    for (name, value, hint) in cases {
        let s = proxy.connect().await;
        let set_level = if name == "pgfleet.after_lsn" {
            "SET pgfleet.consistency = 'read_your_writes'; "
        } else if name == "pgfleet.max_staleness" {
            "SET pgfleet.consistency = 'bounded'; "
        } else {
            ""
        };
        s.batch_execute(&format!("{set_level}SET {name} = {value}"))
            .await
            .unwrap();
        let statement = if name == "pgfleet.write_quorum" {
            "INSERT INTO t(v) VALUES ('never')"
        } else {
            "SELECT 1"
        };
        let e = s.batch_execute(statement).await.unwrap_err();
        assert_eq!(sqlstate(&e), "22023", "{name}: {}", message(&e));
        let msg = message(&e);
        assert!(
            msg.contains(name) && msg.contains(value.trim_matches('\'')) && msg.contains(hint),
            "{msg}"
        );
        // Fixing the setting fixes the session.
        s.batch_execute(&format!("RESET {name}")).await.unwrap();
        s.batch_execute(statement).await.unwrap();
    }
    assert_eq!(
        f.primary
            .psql_db("app", "SELECT count(*) FROM t WHERE v = 'never'")
            .unwrap()
            .trim(),
        "1",
        "the refused INSERT did not run; the one after RESET did"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_pgbench_costs_no_transaction() {
    let mut f = fleet(2);
    let init = std::process::Command::new("pgbench")
        .args(["-i", "-s", "1", "-q", "-h", "127.0.0.1", "-U", "app", "app"])
        .args(["-p", &f.primary.port().to_string()])
        .env("PGPASSWORD", "app")
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    // Let the replicas replay the pgbench tables before reads go there.
    for r in &f.replicas {
        let deadline = Instant::now() + Duration::from_secs(20);
        while r
            .psql_db("app", "SELECT count(*) FROM pgbench_accounts")
            .map(|n| n.trim() != "100000")
            .unwrap_or(true)
        {
            assert!(
                Instant::now() < deadline,
                "replica did not replay pgbench -i"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let proxy = TestProxy::start(&fleet_config(&f, "ban_time = \"30s\"")).await;
    settled(&proxy).await;
    // pgbench through the proxy; once it runs steadily, one replica is killed. (Not after a fixed
    // time: on a loaded machine pgbench's logins can outlast it, and a replica killed before any
    // read reached it is only refused at checkout, with nothing in flight to replay.)
    let ((ok, out), ()) = tokio::join!(
        run(
            "pgbench",
            &proxy,
            &["-n", "-S", "-c", "20", "-j", "2", "-T", "6", "app"],
        ),
        async {
            let deadline = Instant::now() + Duration::from_secs(4);
            while proxy.rt.clients().traffic().transactions < 2000 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            f.replicas[0].kill().unwrap();
        }
    );
    assert!(ok, "pgbench failed:\n{out}");
    assert_eq!(failed_transactions(&out), Some(0), "{out}");
    assert!(processed(&out).unwrap_or(0) > 1000, "{out}");
    assert!(
        proxy.rt.stats().read_retries.load(Ordering::Relaxed) > 0,
        "reads in flight on the killed replica were replayed"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_adds_replicas_starts_their_monitor() {
    let f = fleet(1);
    // The primary alone, as `fleet_config` writes it before adding replicas.
    let proxy = TestProxy::start(&config_text(&f.primary, "pool_size = 4")).await;
    let c = proxy.connect().await;
    let replica = f.replicas[0].port() as i32;
    assert_ne!(port_of(&c, "SELECT inet_server_port()").await, replica);
    let with_replica = pgfleet_config::Config::from_toml_str(&fleet_config(&f, "")).unwrap();
    proxy.rt.apply_config(with_replica);
    // The maintenance task starts the new cluster's monitor within a second; once it has measured
    // the replica, reads go there. (Seconds alone; the generous limit is for a loaded CI machine.)
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = proxy.connect().await;
        if port_of(&c, "SELECT inet_server_port()").await == replica {
            break;
        }
        if Instant::now() >= deadline {
            for s in proxy.rt.clusters().list() {
                eprintln!("view of {}: {:?}", s.name, *s.view.read());
                eprintln!(
                    "catalog of {}: {} safe functions",
                    s.name,
                    s.catalog.load().safe.len()
                );
            }
            for e in proxy.rt.pools().list() {
                eprintln!(
                    "pool {:?} -> {}:{}",
                    e.key,
                    e.target().host,
                    e.target().port
                );
            }
            panic!("reads never reached the replica added by the reload");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_show_counters_pools_and_replication() {
    let f = fleet(1);
    let proxy = TestProxy::start(&fleet_config(&f, "")).await;
    settled(&proxy).await;
    let c = proxy.connect().await;
    for _ in 0..5 {
        port_of(&c, "SELECT inet_server_port()").await;
    }
    let response = scrape_metrics(&proxy).await;
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    assert!(response.contains("text/plain; version=0.0.4"), "{response}");
    let value = |prefix: &str| -> f64 {
        response
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sample `{prefix}` in:\n{response}"))
    };
    assert!(value("pgfleet_requests_total ") >= 5.0);
    let primary = format!("127.0.0.1:{}", f.primary.port());
    let replica = format!("127.0.0.1:{}", f.replicas[0].port());
    assert_eq!(
        value(&format!(
            "pgfleet_endpoint_writes{{cluster=\"main\",endpoint=\"{primary}\"}}"
        )),
        1.0
    );
    assert_eq!(
        value(&format!(
            "pgfleet_endpoint_role{{cluster=\"main\",endpoint=\"{replica}\",role=\"replica\"}}"
        )),
        1.0
    );
    value(&format!(
        "pgfleet_replication_lag_bytes{{cluster=\"main\",endpoint=\"{replica}\"}}"
    ));
    assert!(
        value(&format!(
            "pgfleet_pool_checkouts_total{{user=\"app\",database=\"app\",endpoint=\"{replica}\"}}"
        )) >= 5.0,
        "the reads went through the replica's pool"
    );
    proxy.stop().await;
}
