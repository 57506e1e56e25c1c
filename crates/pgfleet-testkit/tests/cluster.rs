//! Real PostgreSQL clusters: start, parallel ports, replicas, stop/start, crash, drop.

use std::net::TcpStream;
use std::thread::sleep;
use std::time::{Duration, Instant};

use pgfleet_testkit::{Cluster, ClusterOptions, Error};

fn poll_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn start_and_select_1_with_tokio_postgres() {
    let started = Instant::now();
    let cluster = Cluster::start().expect("start");
    eprintln!("cluster start took {:?}", started.elapsed());
    let (client, conn) = tokio_postgres::connect(
        &cluster.config_string("postgres", "postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect");
    tokio::spawn(conn);
    let row = client
        .query_one("SELECT 1::int4", &[])
        .await
        .expect("query");
    assert_eq!(row.get::<_, i32>(0), 1);

    // The URL form works too.
    let (client, conn) = tokio_postgres::connect(
        &cluster.url("postgres", None, "postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect by url");
    tokio::spawn(conn);
    let row = client.query_one("SHOW fsync", &[]).await.expect("show");
    assert_eq!(row.get::<_, String>(0), "off");
}

#[test]
fn parallel_clusters_get_different_ports_and_settings_apply() {
    let handles: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                Cluster::start_with(ClusterOptions::default().setting("work_mem", "7MB"))
                    .expect("start")
            })
        })
        .collect();
    let clusters: Vec<Cluster> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    assert_ne!(clusters[0].port(), clusters[1].port());
    assert_ne!(clusters[0].data_dir(), clusters[1].data_dir());
    for c in &clusters {
        assert_eq!(c.psql("SHOW work_mem").expect("psql"), "7MB");
        assert_eq!(c.psql("SELECT 1, 'a'").expect("psql"), "1|a");
    }
}

#[test]
fn psql_reports_sql_errors() {
    let cluster = Cluster::start().expect("start");
    let err = cluster
        .psql("SELECT * FROM no_such_table")
        .expect_err("must fail");
    assert!(matches!(err, Error::Command { .. }), "{err}");
    assert!(err.to_string().contains("no_such_table"), "{err}");
}

#[test]
fn replica_follows_primary_and_can_be_promoted() {
    let primary = Cluster::start().expect("start primary");
    let started = Instant::now();
    let replica = primary.replica().expect("start replica");
    eprintln!("replica start took {:?}", started.elapsed());
    assert_ne!(primary.port(), replica.port());
    assert_eq!(
        replica.psql("SELECT pg_is_in_recovery()").expect("psql"),
        "t"
    );

    primary
        .psql("CREATE TABLE t (id int); INSERT INTO t VALUES (42)")
        .expect("create on primary");
    poll_until("the table on the replica", Duration::from_secs(10), || {
        replica.psql("SELECT id FROM t").ok().as_deref() == Some("42")
    });
    assert!(
        replica.psql("INSERT INTO t VALUES (1)").is_err(),
        "standby must be read-only"
    );

    replica.promote().expect("promote");
    assert_eq!(
        replica.psql("SELECT pg_is_in_recovery()").expect("psql"),
        "f"
    );
    replica
        .psql("INSERT INTO t VALUES (1)")
        .expect("write after promote");
}

#[test]
fn drop_stops_the_server_and_removes_the_directory() {
    let cluster = Cluster::start().expect("start");
    let dir = cluster.data_dir().to_path_buf();
    let port = cluster.port();
    assert!(dir.join("PG_VERSION").is_file());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(cluster);
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still accepts"
    );
}

#[test]
fn stop_start_again_and_crash_recovery_keep_data_and_port() {
    // The template runs with synchronous_commit = off, which lets a SIGKILL lose the last commits.
    let mut cluster =
        Cluster::start_with(ClusterOptions::default().setting("synchronous_commit", "on"))
            .expect("start");
    let port = cluster.port();
    cluster
        .psql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('x')")
        .expect("create");

    cluster.stop().expect("stop");
    assert!(!cluster.is_running());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(cluster.psql("SELECT 1").is_err());
    cluster.start_again().expect("start again");
    assert_eq!(cluster.port(), port);
    assert_eq!(cluster.psql("SELECT v FROM kept").expect("psql"), "x");

    cluster
        .psql("INSERT INTO kept VALUES ('y')")
        .expect("insert");
    cluster.kill().expect("kill");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    cluster.start_again().expect("start after crash");
    assert_eq!(
        cluster.psql("SELECT count(*) FROM kept").expect("psql"),
        "2"
    );
}

#[test]
fn custom_hba_replaces_the_rules() {
    let cluster = Cluster::start_with(
        ClusterOptions::default()
            .hba_line("host all postgres 127.0.0.1/32 trust")
            .hba_line("host all all 127.0.0.1/32 reject"),
    )
    .expect("start");
    cluster.psql("CREATE ROLE app LOGIN").expect("create role");
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-U",
            "app",
            "-d",
            "postgres",
            "-c",
            "SELECT 1",
        ])
        .arg("-p")
        .arg(cluster.port().to_string())
        .output()
        .expect("run psql");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rejects connection"));
}
