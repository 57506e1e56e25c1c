//! Globally unique ids: `pgfleet ids install` (the binary) on three real shards, then
//! `pgfleet.id()` called on the shards directly and through pgfleet (with `shard=N` hints, as a
//! column DEFAULT of a table sharded on another key, and fetched first for a table sharded by its
//! id): every id unique, carrying its shard's generator number and a time within the test,
//! increasing per shard. Then the limits: a burst beyond 4,096 ids in one millisecond, a clock
//! that stepped backwards, a cancel in the middle of a call. Prints the measured ids/s.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::shards::primary_servers;
use common::*;
use pgfleet_catalog::ids::{IdParts, EPOCH_UNIX_MS, MAX_SEQUENCE};
use pgfleet_testkit::Cluster;
use tokio_postgres::{Client, SimpleQueryMessage};

fn config(shards: &[Cluster]) -> String {
    let mut text = String::from(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout = \"2s\"\n[pool]\npool_size = 4\n",
    );
    for (i, c) in shards.iter().enumerate() {
        text.push_str(&format!("[clusters.shard{i}]\n{}\n", primary_servers(c)));
    }
    let names: Vec<String> = (0..shards.len()).map(|i| format!("\"shard{i}\"")).collect();
    text.push_str(&format!(
        r#"
[databases.app]
shards = [{}]

[databases.app.sharded_tables.events]
column = "account_id"
type = "bigint"

[databases.app.sharded_tables.items]
column = "id"
type = "bigint"

[users.app]
password = "app"

[users.admin]
password = "admin"
admin = true
"#,
        names.join(", ")
    ));
    text
}

/// Runs `pgfleet ids install --config DIR/pgfleet.toml ARGS`.
fn install(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_pgfleet"))
        .args(["ids", "install", "--config"])
        .arg(dir.join("pgfleet.toml"))
        .args(args)
        .env_remove("PGPASSWORD")
        .output()
        .expect("run pgfleet");
    eprintln!(
        "$ pgfleet ids install {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `pgfleet ids install` must succeed; returns its stdout.
fn install_ok(dir: &Path) -> String {
    let o = install(dir, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Milliseconds since 1970-01-01 UTC.
fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A connection straight to a shard's database `app`, as `app` (SCRAM).
async fn direct(c: &Cluster) -> Client {
    try_connect(&format!("{} password=app", c.config_string("app", "app")))
        .await
        .unwrap()
}

/// The first column of every row, as bigint.
fn ids_of(messages: &[SimpleQueryMessage]) -> Vec<i64> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().parse().unwrap()),
            _ => None,
        })
        .collect()
}

async fn many(c: &Client, sql_prefix: &str, n: usize) -> Vec<i64> {
    ids_of(
        &c.simple_query(&format!(
            "{sql_prefix}SELECT pgfleet.id() FROM generate_series(1, {n})"
        ))
        .await
        .unwrap(),
    )
}

/// `setup` (one statement returning one row), then `n` ids, in one simple Query.
async fn after(c: &Client, setup: &str, n: usize) -> Vec<i64> {
    let mut ids = ids_of(
        &c.simple_query(&format!(
            "{setup}; SELECT pgfleet.id() FROM generate_series(1, {n})"
        ))
        .await
        .unwrap(),
    );
    ids.remove(0);
    ids
}

fn assert_increasing(ids: &[i64], what: &str) {
    for w in ids.windows(2) {
        assert!(w[0] < w[1], "{what}: {} then {}", w[0], w[1]);
    }
}

/// Sets the shard's sequence to millisecond `ahead_ms` after the server's clock, sequence
/// number `seq` (the next id gets `seq + 1`). `app` owns the sequence: it installed it.
fn sequence_ahead(ahead_ms: i64, seq: u16) -> String {
    format!(
        "SELECT setval('pgfleet.id_seq', ((floor(date_part('epoch', clock_timestamp()) * 1000)::bigint - {EPOCH_UNIX_MS} + {ahead_ms}) << 12) | {seq})"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_unique_carry_their_shard_and_grow_per_shard() {
    let shards: Vec<Cluster> = (0..3).map(|_| app_cluster()).collect();
    let dir = tempfile::tempdir().unwrap();
    let text = config(&shards);
    std::fs::write(dir.path().join("pgfleet.toml"), &text).unwrap();

    let out = install_ok(dir.path());
    for (i, s) in shards.iter().enumerate() {
        assert!(
            out.contains(&format!(
                "database app shard {i} (cluster shard{i}, server database app): installed pgfleet.id() on 127.0.0.1:{}, generator {i}",
                s.port()
            )),
            "{out}"
        );
    }
    assert!(out.contains("installed on 3 of 3 shard(s)"), "{out}");
    for s in &shards {
        s.psql_db(
            "app",
            "CREATE TABLE events(id bigint DEFAULT pgfleet.id(), account_id bigint, note text, PRIMARY KEY (account_id, id));
             ALTER TABLE events OWNER TO app;
             CREATE TABLE items(id bigint PRIMARY KEY, v text); ALTER TABLE items OWNER TO app;",
        )
        .unwrap();
    }
    let proxy = TestProxy::start(&text).await;
    let via_proxy = proxy.connect().await;

    let start = unix_ms();
    // In generation order per shard: these are made one after another.
    let mut sequential: Vec<Vec<i64>> = vec![Vec::new(); 3];
    for (i, s) in shards.iter().enumerate() {
        let c = direct(s).await;
        let t = Instant::now();
        let batch = many(&c, "", 4000).await;
        eprintln!(
            "shard {i}: 4000 ids in one statement in {:?} ({:.0} ids/s)",
            t.elapsed(),
            4000.0 / t.elapsed().as_secs_f64()
        );
        sequential[i].extend(batch);
        let one = c.prepare("SELECT pgfleet.id()").await.unwrap();
        for _ in 0..50 {
            sequential[i].push(c.query_one(&one, &[]).await.unwrap().get(0));
        }
    }
    for (i, ids) in sequential.iter_mut().enumerate() {
        let hint = format!("/* pgfleet: shard={i} */ ");
        ids.extend(many(&via_proxy, &hint, 2000).await);
        let one = via_proxy
            .prepare(&format!("{hint}SELECT pgfleet.id()"))
            .await
            .unwrap();
        for _ in 0..50 {
            ids.push(via_proxy.query_one(&one, &[]).await.unwrap().get(0));
        }
    }
    // Four clients per shard at once, two straight to the shard and two through pgfleet.
    let mut tasks = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        for k in 0..4 {
            let c = if k < 2 {
                direct(s).await
            } else {
                proxy.connect().await
            };
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                let hint = format!("/* pgfleet: shard={i} */ ");
                for _ in 0..5 {
                    ids.extend(many(&c, &hint, 100).await);
                }
                (i, ids)
            }));
        }
    }
    let mut concurrent = Vec::new();
    for t in tasks {
        concurrent.push(t.await.unwrap());
    }
    let end = unix_ms();

    let mut seen = HashSet::new();
    let mut total = 0;
    let mut check = |shard: usize, ids: &[i64]| {
        for id in ids {
            assert!(seen.insert(*id), "id {id} was made twice");
            let p = IdParts::decode(*id).unwrap();
            assert_eq!(usize::from(p.generator), shard, "id {id}: {p:?}");
            assert!(
                (start..=end).contains(&p.unix_millis()),
                "id {id} at {} outside the test's [{start}, {end}]",
                p.unix_millis()
            );
        }
        total += ids.len();
    };
    for (i, ids) in sequential.iter().enumerate() {
        assert_increasing(ids, &format!("shard {i}"));
        check(i, ids);
    }
    for (i, ids) in &concurrent {
        assert_eq!(ids.len(), 500);
        assert_increasing(ids, &format!("one client of shard {i}"));
        check(*i, ids);
    }
    assert!(total >= 20_000, "{total}");

    // pgfleet.id_parts in SQL agrees with the Rust decoder.
    for (i, ids) in sequential.iter().enumerate() {
        let c = direct(&shards[i]).await;
        for id in ids.iter().step_by(997) {
            let row = c
                .query_one(
                    "SELECT (extract(epoch FROM ts) * 1000)::bigint, generator, seq FROM pgfleet.id_parts($1)",
                    &[id],
                )
                .await
                .unwrap();
            let p = IdParts::decode(*id).unwrap();
            let got: (i64, i32, i32) = (row.get(0), row.get(1), row.get(2));
            assert_eq!(
                got,
                (p.unix_millis(), i32::from(p.generator), i32::from(p.seq))
            );
        }
        let g: i32 = c
            .query_one("SELECT pgfleet.id_generator()", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(g, i as i32);
    }

    // A column DEFAULT of a table sharded on another key: each row's id is made by the shard
    // the row lives on.
    let insert = via_proxy
        .prepare("INSERT INTO events (account_id, note) VALUES ($1, 'x') RETURNING id")
        .await
        .unwrap();
    let mut returned = HashSet::new();
    for account in 1..=30i64 {
        let id: i64 = via_proxy
            .query_one(&insert, &[&account])
            .await
            .unwrap()
            .get(0);
        assert!(returned.insert(id));
    }
    let mut rows = 0;
    for (i, s) in shards.iter().enumerate() {
        for line in s.psql_db("app", "SELECT id FROM events").unwrap().lines() {
            let id: i64 = line.trim().parse().unwrap();
            assert!(returned.contains(&id));
            assert_eq!(usize::from(IdParts::decode(id).unwrap().generator), i);
            rows += 1;
        }
    }
    assert_eq!(rows, 30);

    // A table sharded by its id: take the id first, then insert; the row is where pgfleet
    // routes the id.
    for n in 0..10 {
        let id: i64 = via_proxy
            .query_one("SELECT pgfleet.id()", &[])
            .await
            .unwrap()
            .get(0);
        via_proxy
            .execute(
                "INSERT INTO items (id, v) VALUES ($1, $2)",
                &[&id, &format!("v{n}")],
            )
            .await
            .unwrap();
        let v: String = via_proxy
            .query_one("SELECT v FROM items WHERE id = $1", &[&id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, format!("v{n}"));
    }
    let placed: i64 = shards
        .iter()
        .map(|s| {
            s.psql_db("app", "SELECT count(*) FROM items")
                .unwrap()
                .trim()
                .parse::<i64>()
                .unwrap()
        })
        .sum();
    assert_eq!(placed, 10);

    // Installing again changes nothing, and the sequences go on from where they were.
    let last: Vec<i64> = (0..3)
        .map(|i| {
            let mine = concurrent
                .iter()
                .filter(|(s, _)| *s == i)
                .flat_map(|(_, ids)| ids);
            sequential[i].iter().chain(mine).copied().max().unwrap()
        })
        .collect();
    let out = install_ok(dir.path());
    for (i, s) in shards.iter().enumerate() {
        assert!(
            out.contains(&format!(
                "database app shard {i} (cluster shard{i}, server database app): reinstalled pgfleet.id() on 127.0.0.1:{}, generator {i} as before",
                s.port()
            )),
            "{out}"
        );
        let c = direct(s).await;
        let next: i64 = c
            .query_one("SELECT pgfleet.id()", &[])
            .await
            .unwrap()
            .get(0);
        assert!(next > last[i]);
        assert!(!seen.contains(&next));
    }
    let o = install(dir.path(), &["--database", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("database `nope` is not in the config"));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_a_clock_step_back_and_cancels_keep_ids_unique() {
    let shards = vec![app_cluster()];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pgfleet.toml"), config(&shards)).unwrap();
    let dry = install(dir.path(), &["--dry-run"]);
    assert!(dry.status.success());
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("CREATE OR REPLACE FUNCTION pgfleet.id()")
    );
    install_ok(dir.path());
    let s = &shards[0];
    let c = direct(s).await;

    // One statement, 20,000 ids: distinct and increasing in the order they were made.
    let t = Instant::now();
    let ids = many(&c, "", 20_000).await;
    let elapsed = t.elapsed();
    eprintln!(
        "one client: 20000 ids in one statement in {elapsed:?}: {:.0} ids/s",
        20_000.0 / elapsed.as_secs_f64()
    );
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 20_000);
    assert_increasing(&ids, "burst");

    // Four clients at once, 5,000 ids each.
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(direct(s).await);
    }
    let t = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(async move { many(&c, "", 5000).await }))
        .collect();
    let mut all: HashSet<i64> = ids.iter().copied().collect();
    for task in tasks {
        let mine = task.await.unwrap();
        assert_increasing(&mine, "one of four clients");
        for id in mine {
            assert!(all.insert(id), "id {id} was made twice");
        }
    }
    eprintln!(
        "four clients at once: 20000 ids in {:?}: {:.0} ids/s",
        t.elapsed(),
        20_000.0 / t.elapsed().as_secs_f64()
    );
    assert_eq!(all.len(), 40_000);

    // More than 4,096 ids in a millisecond: put the sequence 5 ms ahead of the clock at the
    // last sequence number of that millisecond (in the same request, so that no time passes).
    // The first call waits for the clock instead of handing out an id from the future; the
    // next id is in a later millisecond, from sequence number 0.
    let t = Instant::now();
    let ids = after(&c, &sequence_ahead(5, MAX_SEQUENCE - 1), 100).await;
    let end = unix_ms();
    assert!(t.elapsed() >= Duration::from_millis(4), "{:?}", t.elapsed());
    assert_increasing(&ids, "across the wrap");
    let parts: Vec<IdParts> = ids.iter().map(|id| IdParts::decode(*id).unwrap()).collect();
    assert_eq!(parts[0].seq, MAX_SEQUENCE);
    assert_eq!(parts[1].seq, 0);
    assert!(parts[1].millis > parts[0].millis);
    for p in &parts {
        assert!(p.unix_millis() <= end, "{p:?} is after {end}");
        assert!(all.insert(p.encode().unwrap()));
    }

    // The server's clock stepped back a minute (as if): ids go on from the sequence at once,
    // unique and increasing, their times a minute ahead until the clock catches up.
    let t = Instant::now();
    let ids = after(&c, &sequence_ahead(60_000, 0), 1000).await;
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_increasing(&ids, "clock behind the sequence");
    let first = IdParts::decode(ids[0]).unwrap().unix_millis();
    assert!(first > unix_ms() + 50_000, "{first}");
    for id in &ids {
        assert!(all.insert(*id));
    }

    // A call cancelled while it holds the lock (here: waiting for the clock) releases it.
    let e = c
        .simple_query(&format!(
            "{}; SET statement_timeout = '3ms'; SELECT pgfleet.id() FROM generate_series(1, 1000000)",
            sequence_ahead(8, 0)
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "57014");
    let held = s
        .psql_db(
            "app",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
        )
        .unwrap();
    assert_eq!(held.trim(), "0");
    let other = direct(s).await;
    let next = tokio::time::timeout(
        Duration::from_secs(5),
        other.query_one("SELECT pgfleet.id()", &[]),
    )
    .await
    .expect("pgfleet.id() is not blocked by the cancelled call")
    .unwrap();
    assert!(all.insert(next.get(0)));
}
