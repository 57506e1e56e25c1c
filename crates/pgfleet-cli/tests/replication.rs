//! Read/write splitting over real streaming replicas: every write on the primary, reads spread
//! over replicas, lag and health awareness, overrides, and following a promoted replica.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::fleet::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_primary_reads_spread_over_replicas() {
    let f = fleet(2);
    let proxy = TestProxy::start(&fleet_config(&f, "")).await;
    settled(&proxy).await;
    let c = proxy.connect().await;
    let primary = f.primary.port() as i32;
    let replica_ports: Vec<i32> = f.replicas.iter().map(|r| r.port() as i32).collect();

    let mut seen: HashMap<i32, usize> = HashMap::new();
    for _ in 0..300 {
        let p = port_of(&c, "SELECT inet_server_port()").await;
        *seen.entry(p).or_default() += 1;
    }
    assert_eq!(seen.get(&primary), None, "no read on the primary: {seen:?}");
    for p in &replica_ports {
        let n = seen.get(p).copied().unwrap_or(0);
        assert!(
            (120..=180).contains(&n),
            "round robin spreads reads evenly: {seen:?}"
        );
    }
    for _ in 0..50 {
        assert_eq!(
            port_of(
                &c,
                "INSERT INTO t(v) VALUES ('x') RETURNING inet_server_port()"
            )
            .await,
            primary
        );
    }

    // The statements a first-word router gets wrong all go to the primary.
    c.batch_execute("CREATE SEQUENCE s; CREATE FUNCTION bump() RETURNS int LANGUAGE sql VOLATILE AS 'INSERT INTO t(v) VALUES (''f'') RETURNING 1'").await.unwrap();
    let on_primary = [
        "WITH d AS (DELETE FROM t WHERE v = 'nothing' RETURNING id) SELECT inet_server_port() FROM (SELECT 1) x LEFT JOIN d ON true",
        "SELECT inet_server_port() FROM (SELECT id FROM t LIMIT 1 FOR UPDATE) x",
        "SELECT (inet_server_port() + nextval('s') * 0)::int",
        "SELECT inet_server_port() + bump() * 0",
        "SELECT inet_server_port() FROM (SELECT pg_catalog.pg_advisory_xact_lock(1)) x",
        "/* pgfleet: role=primary */ SELECT inet_server_port()",
    ];
    for sql in on_primary {
        assert_eq!(port_of(&c, sql).await, primary, "{sql}");
    }
    // A read-only transaction stays on one replica from BEGIN to COMMIT.
    c.batch_execute("BEGIN READ ONLY").await.unwrap();
    let first = port_of(&c, "SELECT inet_server_port()").await;
    assert!(
        replica_ports.contains(&first),
        "read-only transaction on {first}, replicas {replica_ports:?}, primary {primary}"
    );
    for _ in 0..5 {
        assert_eq!(port_of(&c, "SELECT inet_server_port()").await, first);
    }
    c.batch_execute("COMMIT").await.unwrap();
    // A read-write transaction runs on the primary.
    c.batch_execute("BEGIN").await.unwrap();
    assert_eq!(port_of(&c, "SELECT inet_server_port()").await, primary);
    c.batch_execute("COMMIT").await.unwrap();
    // SET pgfleet.role pins the session's routing.
    c.batch_execute("SET pgfleet.role = 'primary'")
        .await
        .unwrap();
    assert_eq!(port_of(&c, "SELECT inet_server_port()").await, primary);
    c.batch_execute("RESET pgfleet.role").await.unwrap();
    assert!(replica_ports.contains(&port_of(&c, "SELECT inet_server_port()").await));
    // Extended protocol: a prepared read goes to replicas, a prepared write to the primary.
    let read = c.prepare("SELECT inet_server_port() + $1").await.unwrap();
    let write = c
        .prepare("UPDATE t SET v = v WHERE id = $1 RETURNING inet_server_port()")
        .await
        .unwrap();
    for _ in 0..10 {
        let p: i32 = c.query_one(&read, &[&0i32]).await.unwrap().get(0);
        assert!(replica_ports.contains(&p));
        let w: Vec<tokio_postgres::Row> = c.query(&write, &[&1i32]).await.unwrap();
        assert_eq!(w[0].get::<_, i32>(0), primary);
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_and_dead_replicas_stop_getting_reads() {
    let mut f = fleet(2);
    let proxy = TestProxy::start(&fleet_config(
        &f,
        "max_lag_bytes = \"64kB\"\nban_time = \"30s\"",
    ))
    .await;
    settled(&proxy).await;
    let c = proxy.connect().await;
    let (r0, r1) = (f.replicas[0].port() as i32, f.replicas[1].port() as i32);

    // Pause replay on replica 0 and write past max_lag_bytes: it is excluded once over the limit.
    f.replicas[0].psql("SELECT pg_wal_replay_pause()").unwrap();
    c.batch_execute("INSERT INTO t(v) SELECT repeat('x', 1000) FROM generate_series(1, 500)")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut excluded = false;
    while Instant::now() < deadline && !excluded {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut ports = Vec::new();
        for _ in 0..20 {
            ports.push(port_of(&c, "SELECT inet_server_port()").await);
        }
        excluded = ports.iter().all(|p| *p == r1);
    }
    assert!(excluded, "the paused replica stops receiving reads");
    // Resume: it catches up and gets reads again.
    f.replicas[0].psql("SELECT pg_wal_replay_resume()").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut back = false;
    while Instant::now() < deadline && !back {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..10 {
            back |= port_of(&c, "SELECT inet_server_port()").await == r0;
        }
    }
    assert!(back, "the caught-up replica gets reads again");

    // Stop replica 1: reads keep working (a refused connect bans it and routes again).
    f.replicas[1].stop().unwrap();
    for _ in 0..50 {
        let p = port_of(&c, "SELECT inet_server_port()").await;
        assert_ne!(p, r1);
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_a_promoted_replica() {
    let mut f = fleet(1);
    let text = fleet_config(
        &f,
        "failover_timeout = \"20s\"\nban_time = \"200ms\"\nmax_ban_time = \"500ms\"",
    )
    .replace("role = \"primary\"", "role = \"auto\"")
    .replace("role = \"replica\"", "role = \"auto\"");
    let proxy = TestProxy::start(&text).await;
    settled(&proxy).await;
    let c = proxy.connect().await;
    assert_eq!(
        port_of(
            &c,
            "INSERT INTO t(v) VALUES ('before') RETURNING inet_server_port()"
        )
        .await,
        f.primary.port() as i32
    );
    f.primary.kill().unwrap();
    // A write while there is no primary waits (up to failover_timeout) instead of failing.
    let writer = {
        let conn = proxy.conn_str("app", "app", "app");
        tokio::spawn(async move {
            let w = try_connect(&conn).await.unwrap();
            let start = Instant::now();
            let p: i32 = w
                .query_one(
                    "INSERT INTO t(v) VALUES ('during') RETURNING inet_server_port()",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            (p, start.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    f.replicas[0].promote().unwrap();
    let (port, waited) = tokio::time::timeout(Duration::from_secs(20), writer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        port,
        f.replicas[0].port() as i32,
        "the write landed on the promoted server"
    );
    assert!(
        waited >= Duration::from_millis(1000),
        "it waited for the promotion ({waited:?})"
    );
    // Afterwards writes go to the new primary at once, and never error as read-only.
    for _ in 0..20 {
        let p = port_of(
            &c,
            "INSERT INTO t(v) VALUES ('after') RETURNING inet_server_port()",
        )
        .await;
        assert_eq!(p, f.replicas[0].port() as i32);
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_your_writes_never_misses_while_eventual_does() {
    let f = fleet_with(&[
        pgfleet_testkit::ClusterOptions::default().setting("recovery_min_apply_delay", "1s")
    ]);
    let proxy = TestProxy::start(&fleet_config(&f, "max_lag_time = \"1h\"")).await;
    settled(&proxy).await;
    let replica = f.replicas[0].port() as i32;

    let rounds = |consistency: &'static str| {
        let conn = proxy.conn_str("app", "app", "app");
        async move {
            let c = try_connect(&conn).await.unwrap();
            c.batch_execute(&format!("SET pgfleet.consistency = '{consistency}'"))
                .await
                .unwrap();
            let (mut missed, mut on_replica) = (0, 0);
            for i in 0..500 {
                let v = format!("{consistency}-{i}");
                c.execute("INSERT INTO t(v) VALUES ($1)", &[&v])
                    .await
                    .unwrap();
                let row = c
                    .query_one(
                        "SELECT count(*)::int, inet_server_port() FROM t WHERE v = $1",
                        &[&v],
                    )
                    .await
                    .unwrap();
                if row.get::<_, i32>(0) == 0 {
                    missed += 1;
                }
                if row.get::<_, i32>(1) == replica {
                    on_replica += 1;
                }
            }
            (missed, on_replica)
        }
    };
    let (missed, _) = rounds("read_your_writes").await;
    assert_eq!(missed, 0, "read_your_writes never misses its own write");
    let (missed, on_replica) = rounds("eventual").await;
    assert!(on_replica > 0 && missed > 0, "eventual reads the delayed replica and misses (proof the test can fail): missed {missed}, on replica {on_replica}");

    // The token: SHOW pgfleet.last_write_lsn after a write, usable by another session.
    let c = proxy.connect().await;
    c.batch_execute("SET pgfleet.consistency = 'read_your_writes'")
        .await
        .unwrap();
    c.execute("INSERT INTO t(v) VALUES ('token')", &[])
        .await
        .unwrap();
    let token: String = c
        .query_one("SHOW pgfleet.last_write_lsn", &[])
        .await
        .unwrap()
        .get(0);
    assert!(token.contains('/'), "{token}");
    let other = proxy.connect().await;
    other
        .batch_execute(&format!(
            "SET pgfleet.consistency = 'read_your_writes'; SET pgfleet.after_lsn = '{token}'"
        ))
        .await
        .unwrap();
    let n: i64 = other
        .query_one("SELECT count(*) FROM t WHERE v = 'token'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "a causal read after the token sees the write");
    // strong: the primary only.
    other
        .batch_execute("SET pgfleet.consistency = 'strong'")
        .await
        .unwrap();
    assert_eq!(
        port_of(&other, "SELECT inet_server_port()").await,
        f.primary.port() as i32
    );
    proxy.stop().await;
}
