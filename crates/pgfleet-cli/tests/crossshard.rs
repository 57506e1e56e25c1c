//! Statements that need several shards, through the proxy: merged SELECTs (simple and extended
//! protocol, text and binary), writes on several shards in two-phase commit with the decision
//! log in the metadata database, DDL on every shard, and recovery of in-doubt transactions after
//! pgfleet is killed in the middle of a commit (the `pgfleet` binary, aborted by its crash hook).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::shards::{primary_servers, HASH_PARTITIONS_3};
use common::*;
use pgfleet_testkit::Cluster;
use tokio_postgres::SimpleQueryMessage;

const ROWS: i64 = 300;

struct Shards {
    shards: Vec<Cluster>,
}

/// Three shards; the metadata database lives on shard 0's cluster. Each shard has `items`
/// (sharded by id), `countries` (reference) and the hash-partitioned helper `hp` to check
/// placement with PostgreSQL's own `satisfies_hash_partition`.
fn shards() -> Shards {
    let shards: Vec<Cluster> = (0..3).map(|_| app_cluster()).collect();
    for s in &shards {
        s.psql_db(
            "app",
            "CREATE TABLE items(id bigint primary key, v text, n int); ALTER TABLE items OWNER TO app;
             CREATE TABLE countries(code text primary key, name text); ALTER TABLE countries OWNER TO app;
             INSERT INTO countries VALUES ('fr', 'France'), ('de', 'Deutschland');
             ",
        )
        .unwrap();
        s.psql_db("app", HASH_PARTITIONS_3).unwrap();
    }
    shards[0]
        .psql("CREATE DATABASE pgfleet_meta OWNER app")
        .unwrap();
    Shards { shards }
}

fn config(s: &Shards, listen: &str) -> String {
    let server = primary_servers;
    format!(
        r#"
[proxy]
listen = "{listen}"
shutdown_timeout = "2s"
node_id = 3

[pool]
pool_size = 4

[clusters.shard0]
{s0}
[clusters.shard1]
{s1}
[clusters.shard2]
{s2}

[databases.app]
shards = ["shard0", "shard1", "shard2"]
reference_tables = ["countries"]

[databases.app.sharded_tables.items]
column = "id"
type = "bigint"

[metadata]
cluster = "shard0"
database = "pgfleet_meta"
user = "app"
password = "app"

[users.app]
password = "app"

[users.batch]
password = "batch"
server_user = "app"
server_password = "app"
cross_shard_writes = false

[users.admin]
password = "admin"
admin = true
"#,
        s0 = server(&s.shards[0]),
        s1 = server(&s.shards[1]),
        s2 = server(&s.shards[2]),
    )
}

fn misplaced_and_count(s: &Shards, shard: usize, filter: &str) -> (i64, i64) {
    common::shards::misplaced_and_count(&s.shards, shard, filter)
}

fn prepared_xacts(s: &Shards) -> i64 {
    s.shards
        .iter()
        .map(|c| {
            c.psql("SELECT count(*) FROM pg_prepared_xacts")
                .unwrap()
                .trim()
                .parse::<i64>()
                .unwrap()
        })
        .sum()
}

fn texts(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect()
}

fn n_of(id: i64) -> Option<i32> {
    (id % 13 != 0).then_some((id % 10) as i32)
}

async fn load(c: &tokio_postgres::Client) {
    let insert = c
        .prepare("INSERT INTO items(id, v, n) VALUES ($1, $2, $3)")
        .await
        .unwrap();
    for id in 1..=ROWS {
        c.execute(&insert, &[&id, &format!("v{}", id % 7), &n_of(id)])
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_shard_reads_are_merged() {
    let s = shards();
    let proxy = TestProxy::start(&config(&s, "127.0.0.1:0")).await;
    let c = proxy.connect().await;
    load(&c).await;
    for shard in 0..3 {
        let (misplaced, count) = misplaced_and_count(&s, shard, "true");
        assert_eq!(misplaced, 0);
        assert!(count > 50, "shard {shard} has {count} rows");
    }

    // Aggregates over every shard, simple protocol.
    let rows = texts(
        &c.simple_query("SELECT count(*), count(n), sum(n), min(id), max(id), avg(n) FROM items")
            .await
            .unwrap(),
    );
    let ns: Vec<i64> = (1..=ROWS).filter_map(n_of).map(i64::from).collect();
    let sum: i64 = ns.iter().sum();
    let avg = pg_avg(&s.shards[0], sum, ns.len() as i64);
    assert_eq!(
        rows,
        vec![vec![
            Some(ROWS.to_string()),
            Some(ns.len().to_string()),
            Some(sum.to_string()),
            Some("1".into()),
            Some(ROWS.to_string()),
            Some(avg)
        ]]
    );

    // ORDER BY + LIMIT/OFFSET merged, in both protocols.
    let rows = texts(
        &c.simple_query("SELECT id FROM items ORDER BY id DESC LIMIT 5 OFFSET 3")
            .await
            .unwrap(),
    );
    let ids: Vec<String> = rows.iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(ids, ["297", "296", "295", "294", "293"]);
    let rows = c
        .query(
            "SELECT id, v FROM items WHERE n = $1 ORDER BY v, id LIMIT $2",
            &[&3i32, &4i64],
        )
        .await
        .unwrap();
    let mut expected: Vec<(String, i64)> = (1..=ROWS)
        .filter(|id| n_of(*id) == Some(3))
        .map(|id| (format!("v{}", id % 7), id))
        .collect();
    expected.sort();
    expected.truncate(4);
    let got: Vec<(String, i64)> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
    assert_eq!(got, expected);

    // GROUP BY + HAVING + ORDER BY on an aggregate, binary results.
    let rows = c
        .query(
            "SELECT v, count(*) AS c, sum(n) FROM items GROUP BY v HAVING count(*) > 42 ORDER BY c DESC, v",
            &[],
        )
        .await
        .unwrap();
    let mut groups: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    for id in 1..=ROWS {
        let e = groups.entry(format!("v{}", id % 7)).or_default();
        e.0 += 1;
        e.1 += i64::from(n_of(id).unwrap_or(0));
    }
    let mut expected: Vec<(String, i64, i64)> = groups
        .into_iter()
        .filter(|(_, (c, _))| *c > 42)
        .map(|(v, (c, s))| (v, c, s))
        .collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let got: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(got, expected);
    assert!(!got.is_empty());

    // DISTINCT with NULLs, and = ANY($1) over several shards.
    let rows = texts(
        &c.simple_query("SELECT DISTINCT n FROM items ORDER BY n NULLS FIRST")
            .await
            .unwrap(),
    );
    let mut expected = vec![None];
    expected.extend((0..10).map(|i| Some(i.to_string())));
    assert_eq!(
        rows.into_iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        expected
    );
    let rows = c
        .query(
            "SELECT id FROM items WHERE id = ANY($1) ORDER BY id",
            &[&vec![1i64, 2, 3, 100, 200, 1000]],
        )
        .await
        .unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, [1, 2, 3, 100, 200]);
    // Exactly two of the three shards (1 and 2): the merge has two inputs.
    let mut some: Vec<i64> = [1, 2]
        .iter()
        .flat_map(|i| {
            s.shards[*i]
                .psql_db("app", "SELECT id FROM items ORDER BY id LIMIT 2")
                .unwrap()
                .lines()
                .map(|l| l.trim().parse::<i64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    some.sort();
    let list: Vec<String> = some.iter().map(i64::to_string).collect();
    let rows = texts(
        &c.simple_query(&format!(
            "SELECT id FROM items WHERE id IN ({}) ORDER BY id DESC",
            list.join(", ")
        ))
        .await
        .unwrap(),
    );
    some.reverse();
    assert_eq!(
        rows.iter()
            .map(|r| r[0].clone().unwrap().parse::<i64>().unwrap())
            .collect::<Vec<_>>(),
        some
    );
    // Reference-table joins stay correct across shards.
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM items JOIN countries ON countries.code = 'fr' WHERE items.n = 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        n,
        (1..=ROWS).filter(|id| n_of(*id) == Some(1)).count() as i64
    );

    // What cannot be merged correctly is refused, naming the construct; a shard's error
    // reaches the client with its SQLSTATE; the session goes on.
    let e = c
        .query("SELECT id, row_number() OVER (ORDER BY id) FROM items", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    assert!(message(&e).contains("window"), "{}", message(&e));
    let e = c
        .simple_query("SELECT 1 / (id - id) FROM items")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22012");
    let e = c
        .simple_query("SELECT * FROM items; SELECT 1")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    let n: i64 = c
        .query_one("SELECT count(*) FROM items WHERE id > 100", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, ROWS - 100);

    let admin = proxy.connect_as("admin", "admin", "pgfleet").await;
    let stats = texts(&admin.simple_query("SHOW STATS").await.unwrap());
    assert!(!stats.is_empty());
    proxy.stop().await;
}

/// PostgreSQL's avg(int) text: numeric with 16 significant decimals after the point here.
fn pg_avg(c: &Cluster, sum: i64, count: i64) -> String {
    // Ask a server rather than re-implementing numeric division.
    c.psql(&format!("SELECT {sum}::numeric / {count}"))
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_shard_writes_commit_on_every_shard_or_none() {
    let s = shards();
    let proxy = TestProxy::start(&config(&s, "127.0.0.1:0")).await;
    let c = proxy.connect().await;
    load(&c).await;

    // A multi-row INSERT whose rows belong to different shards: each shard gets its rows.
    let n = c
        .execute(
            "INSERT INTO items(id, v) VALUES (1001, 'a'), (1002, 'b'), (1003, 'c'), (1004, 'd'), (1005, 'e')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 5);
    let mut total = 0;
    for shard in 0..3 {
        let (misplaced, count) = misplaced_and_count(&s, shard, "id > 1000");
        assert_eq!(misplaced, 0);
        total += count;
    }
    assert_eq!(total, 5);
    // Extended protocol with parameters, RETURNING rows from every shard.
    let rows = c
        .query(
            "INSERT INTO items(id, v) VALUES ($1, $2), ($3, $4), ($5, $6) RETURNING id, v",
            &[&2001i64, &"x", &2002i64, &"y", &2003i64, &"z"],
        )
        .await
        .unwrap();
    let mut got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    got.sort();
    assert_eq!(
        got,
        [(2001, "x".into()), (2002, "y".into()), (2003, "z".into())]
    );
    for shard in 0..3 {
        assert_eq!(misplaced_and_count(&s, shard, "id > 2000").0, 0);
    }

    // UPDATE and DELETE on every shard: the counts add up.
    let n = c
        .execute("UPDATE items SET v = 'u' WHERE n = 4", &[])
        .await
        .unwrap();
    assert_eq!(
        n as usize,
        (1..=ROWS).filter(|id| n_of(*id) == Some(4)).count()
    );
    let n = c
        .execute(
            "DELETE FROM items WHERE id IN (1001, 1002, 1003, 1004, 1005)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 5);

    // A reference-table write and DDL reach every shard.
    // One row changed, as on one server (every shard's copy changed).
    let n = c
        .execute(
            "UPDATE countries SET name = 'République française' WHERE code = 'fr'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    c.batch_execute("ALTER TABLE items ADD COLUMN note text")
        .await
        .unwrap();
    c.batch_execute("CREATE INDEX CONCURRENTLY items_v ON items (v)")
        .await
        .unwrap();
    for sh in &s.shards {
        assert_eq!(
            sh.psql_db("app", "SELECT name FROM countries WHERE code = 'fr'")
                .unwrap(),
            "République française"
        );
        assert_eq!(
            sh.psql_db("app", "SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'note'")
                .unwrap(),
            "1"
        );
        assert_eq!(
            sh.psql_db(
                "app",
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'items_v'"
            )
            .unwrap(),
            "1"
        );
    }

    // Shard by shard: the first failure stops it, and the error says where it completed.
    s.shards[1]
        .psql_db("app", "CREATE INDEX items_n ON items (n)")
        .unwrap();
    let e = c
        .batch_execute("CREATE INDEX CONCURRENTLY items_n ON items (n)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P07", "{}", message(&e));
    assert!(
        message(&e).contains("failed on shard 1")
            && message(&e).contains("completed on shards [0]"),
        "{}",
        message(&e)
    );
    assert_eq!(
        s.shards[2]
            .psql_db(
                "app",
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'items_n'"
            )
            .unwrap(),
        "0"
    );

    // All or nothing: a duplicate key on one shard fails the whole INSERT, and no shard keeps
    // its rows.
    let e = c
        .execute(
            "INSERT INTO items(id, v) VALUES (3001, 'a'), (3002, 'b'), (3003, 'c'), (1, 'dup')",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505", "{}", message(&e));
    let n: i64 = c
        .query_one("SELECT count(*) FROM items WHERE id > 3000", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    for sh in &s.shards {
        assert_eq!(
            sh.psql_db("app", "SELECT count(*) FROM items WHERE id > 3000")
                .unwrap(),
            "0"
        );
    }
    assert_eq!(prepared_xacts(&s), 0, "no prepared transaction is left");
    assert_eq!(
        s.shards[0]
            .psql_db(
                "pgfleet_meta",
                "SELECT count(*) FROM pgfleet.commit_decisions"
            )
            .unwrap(),
        "0",
        "finished decisions are forgotten"
    );

    // A user that may not write across shards is refused before anything runs.
    let b = proxy.connect_as("batch", "batch", "app").await;
    let e = b
        .batch_execute("UPDATE items SET v = 'no'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    assert!(
        message(&e).contains("cross_shard_writes"),
        "{}",
        message(&e)
    );
    let n: i64 = b
        .query_one("SELECT count(*) FROM items WHERE v = 'no'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    proxy.stop().await;
}

/// pgfleet as a child process, aborted by its crash hook at `crash_at` (if any).
fn spawn_pgfleet(dir: &std::path::Path, config: &str, crash_at: Option<&str>) -> Child {
    let path = dir.join("pgfleet.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgfleet"));
    cmd.args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(point) = crash_at {
        cmd.env("PGFLEET_CRASH_AT", point);
    }
    cmd.spawn().unwrap()
}

async fn connect_when_up(port: u16) -> tokio_postgres::Client {
    let url = format!("host=127.0.0.1 port={port} user=app password=app dbname=app");
    for _ in 0..200 {
        if let Ok(c) = try_connect(&url).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("pgfleet did not come up on port {port}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_finishes_transactions_left_in_doubt() {
    let s = shards();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config(&s, &format!("127.0.0.1:{port}"));
    let rows = "INSERT INTO items(id, v) VALUES (5001, 'a'), (5002, 'b'), (5003, 'c'), (5004, 'd'), (5005, 'e')";
    let on_shards = |filter: &str| -> i64 {
        s.shards
            .iter()
            .map(|c| {
                c.psql_db("app", &format!("SELECT count(*) FROM items WHERE {filter}"))
                    .unwrap()
                    .parse::<i64>()
                    .unwrap()
            })
            .sum()
    };

    for (point, committed) in [("prepared", false), ("decided", true)] {
        let mut child = spawn_pgfleet(dir.path(), &config, Some(point));
        let c = connect_when_up(port).await;
        let e = c.batch_execute(rows).await;
        assert!(
            e.is_err(),
            "pgfleet aborted at {point}: the client loses its connection"
        );
        let _ = child.wait();
        assert!(
            prepared_xacts(&s) > 0,
            "{point}: prepared transactions are left behind"
        );
        assert_eq!(on_shards("id > 5000"), 0, "{point}: nothing is visible yet");

        // A restart resolves them: committed everywhere after the decision, rolled back
        // everywhere before it.
        let mut child = spawn_pgfleet(dir.path(), &config, None);
        let c = connect_when_up(port).await;
        let mut left = prepared_xacts(&s);
        for _ in 0..100 {
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = prepared_xacts(&s);
        }
        assert_eq!(left, 0, "{point}: recovery left prepared transactions");
        let expected = if committed { 5 } else { 0 };
        assert_eq!(on_shards("id > 5000"), expected, "{point}: all or nothing");
        let n: i64 = c
            .query_one("SELECT count(*) FROM items WHERE id > 5000", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, expected);
        c.batch_execute("DELETE FROM items WHERE id > 5000")
            .await
            .unwrap();
        // The pass that finished them also forgets their decision.
        let decisions = || {
            s.shards[0]
                .psql_db(
                    "pgfleet_meta",
                    "SELECT count(*) FROM pgfleet.commit_decisions",
                )
                .unwrap()
        };
        for _ in 0..100 {
            if decisions() == "0" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(decisions(), "0", "{point}: the decision is forgotten");
        child.kill().unwrap();
        let _ = child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_splits_rows_by_shard_and_reads_every_shard() {
    let s = shards();
    let proxy = TestProxy::start(&config(&s, "127.0.0.1:0")).await;
    let dir = tempfile::tempdir().unwrap();
    // psql -c COMMAND against the proxy (psql's \copy sends COPY … FROM STDIN / TO STDOUT).
    let psql = |command: String| {
        let proxy = &proxy;
        async move {
            common::programs::run(
                "psql",
                proxy,
                &["-d", "app", "-v", "ON_ERROR_STOP=1", "-c", &command],
            )
            .await
        }
    };

    // Text format through psql's \copy (COPY … FROM STDIN): escapes, NULLs, a tab in a value.
    let text = dir.path().join("items.txt");
    let mut data = String::new();
    for id in 1..=5000i64 {
        let n = if id % 11 == 0 {
            "\\N".to_owned()
        } else {
            (id % 10).to_string()
        };
        data.push_str(&format!("{id}\tv\\t{id}\\\\x\t{n}\n"));
    }
    std::fs::write(&text, &data).unwrap();
    let (ok, out) = psql(format!("\\copy items FROM '{}'", text.display())).await;
    assert!(ok, "{out}");
    assert!(out.contains("COPY 5000"), "{out}");
    let mut total = 0;
    for shard in 0..3 {
        let (misplaced, count) = misplaced_and_count(&s, shard, "true");
        assert_eq!(misplaced, 0, "shard {shard}");
        assert!(count > 1000, "shard {shard}: {count}");
        total += count;
    }
    assert_eq!(total, 5000);
    let c = proxy.connect().await;
    let v: String = c
        .query_one("SELECT v FROM items WHERE id = 42", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "v\t42\\x");
    let nulls: i64 = c
        .query_one("SELECT count(*) FROM items WHERE n IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(nulls, 5000 / 11);

    // CSV with a header and a column list in another order; quoted newlines.
    let csv = dir.path().join("items.csv");
    let mut data = String::from("n,id,v\n");
    for id in 10_001..=10_300i64 {
        data.push_str(&format!("{},{id},\"line\nbreak, \"\"{id}\"\"\"\n", id % 10));
    }
    std::fs::write(&csv, &data).unwrap();
    let (ok, out) = psql(format!(
        "\\copy items (n, id, v) FROM '{}' WITH (FORMAT csv, HEADER)",
        csv.display()
    ))
    .await;
    assert!(ok && out.contains("COPY 300"), "{out}");
    for shard in 0..3 {
        assert_eq!(misplaced_and_count(&s, shard, "id > 10000").0, 0);
    }
    let v: String = c
        .query_one("SELECT v FROM items WHERE id = 10007", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "line\nbreak, \"10007\"");

    // All or nothing: a row that fails on one shard (duplicate key) copies nothing anywhere;
    // a key the key type cannot read is refused by pgfleet.
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "20001\ta\t1\n20002\tb\t2\n20003\tc\t3\n1\tdup\t4\n").unwrap();
    let (ok, out) = psql(format!("\\copy items FROM '{}'", bad.display())).await;
    assert!(!ok && out.contains("duplicate key"), "{out}");
    std::fs::write(&bad, "20001\ta\t1\nnot-a-number\tb\t2\n").unwrap();
    let (ok, out) = psql(format!("\\copy items FROM '{}'", bad.display())).await;
    assert!(
        !ok && out.contains("COPY row 2") && out.contains("not-a-number"),
        "{out}"
    );
    let n: i64 = c
        .query_one("SELECT count(*) FROM items WHERE id > 20000", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    assert_eq!(prepared_xacts(&s), 0);

    // A reference table: every shard gets every row.
    let (ok, out) = psql("COPY countries FROM STDIN".to_owned()).await;
    assert!(!ok || out.contains("COPY 0"), "{out}");
    let refs = dir.path().join("countries.txt");
    std::fs::write(&refs, "it\tItalia\nes\tEspaña\n").unwrap();
    let (ok, out) = psql(format!("\\copy countries FROM '{}'", refs.display())).await;
    assert!(ok && out.contains("COPY 2"), "{out}");
    for sh in &s.shards {
        assert_eq!(
            sh.psql_db("app", "SELECT name FROM countries WHERE code = 'es'")
                .unwrap(),
            "España"
        );
    }

    // COPY TO STDOUT returns every shard's rows (one CSV header).
    let dump = dir.path().join("dump.csv");
    let (ok, out) = psql(format!(
        "\\copy items TO '{}' WITH (FORMAT csv, HEADER)",
        dump.display()
    ))
    .await;
    assert!(ok && out.contains("COPY 5300"), "{out}");
    let dumped = std::fs::read_to_string(&dump).unwrap();
    assert_eq!(dumped.matches("id,v,n\n").count(), 1);
    assert!(dumped.starts_with("id,v,n\n"));
    proxy.stop().await;
}

/// Issue 4: COPY of 1,000,000 rows into 4 shards puts every row on the shard its hash names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_of_a_million_rows_into_four_shards() {
    let shards: Vec<Cluster> = (0..4).map(|_| app_cluster()).collect();
    for s in &shards {
        s.psql_db(
            "app",
            "CREATE TABLE items(id bigint, v text); ALTER TABLE items OWNER TO app;
             CREATE TABLE hp4(id bigint) PARTITION BY HASH (id);
             CREATE TABLE hp4_0 PARTITION OF hp4 FOR VALUES WITH (MODULUS 4, REMAINDER 0);
             CREATE TABLE hp4_1 PARTITION OF hp4 FOR VALUES WITH (MODULUS 4, REMAINDER 1);
             CREATE TABLE hp4_2 PARTITION OF hp4 FOR VALUES WITH (MODULUS 4, REMAINDER 2);
             CREATE TABLE hp4_3 PARTITION OF hp4 FOR VALUES WITH (MODULUS 4, REMAINDER 3);",
        )
        .unwrap();
    }
    shards[0]
        .psql("CREATE DATABASE pgfleet_meta OWNER app")
        .unwrap();
    let clusters: String = shards
        .iter()
        .enumerate()
        .map(|(i, c)| format!("[clusters.shard{i}]\n{}\n", primary_servers(c)))
        .collect();
    let config = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
[pool]
pool_size = 2
{clusters}
[databases.app]
shards = ["shard0", "shard1", "shard2", "shard3"]
[databases.app.sharded_tables.items]
column = "id"
type = "bigint"
[metadata]
cluster = "shard0"
database = "pgfleet_meta"
user = "app"
password = "app"
[users.app]
password = "app"
"#
    );
    let proxy = TestProxy::start(&config).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("million.txt");
    let mut data = String::with_capacity(20 << 20);
    for id in 1..=1_000_000i64 {
        data.push_str(&id.to_string());
        data.push_str("\trow\n");
    }
    std::fs::write(&file, data).unwrap();
    let started = std::time::Instant::now();
    let (ok, out) = common::programs::run(
        "psql",
        &proxy,
        &[
            "-d",
            "app",
            "-c",
            &format!("\\copy items FROM '{}'", file.display()),
        ],
    )
    .await;
    assert!(ok && out.contains("COPY 1000000"), "{out}");
    eprintln!(
        "COPY of 1,000,000 rows into 4 shards took {:.1?}",
        started.elapsed()
    );
    let mut total = 0i64;
    for (i, s) in shards.iter().enumerate() {
        let out = s
            .psql_db(
                "app",
                &format!(
                    "SELECT count(*) FILTER (WHERE NOT satisfies_hash_partition('hp4'::regclass, 4, {i}, id)), count(*) FROM items"
                ),
            )
            .unwrap();
        let (misplaced, count) = out.trim().split_once('|').unwrap();
        assert_eq!(misplaced, "0", "shard {i} holds rows of another shard");
        let count: i64 = count.parse().unwrap();
        assert!(count > 200_000, "shard {i}: {count}");
        total += count;
    }
    assert_eq!(total, 1_000_000);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_shards_and_the_merge() {
    let s = shards();
    let proxy = TestProxy::start(&config(&s, "127.0.0.1:0")).await;
    let c = proxy.connect().await;
    load(&c).await;
    let plan = |rows: Vec<SimpleQueryMessage>| -> String {
        texts(&rows)
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let text = plan(
        c.simple_query("EXPLAIN SELECT id FROM items ORDER BY id DESC LIMIT 5 OFFSET 2")
            .await
            .unwrap(),
    );
    assert!(
        text.contains("cross-shard SELECT on shards 0, 1, 2"),
        "{text}"
    );
    assert!(
        text.contains("LIMIT 7"),
        "the shards' pushed-down limit: {text}"
    );
    assert!(text.contains("k-way merge"), "{text}");
    assert!(text.contains("LIMIT 5 OFFSET 2 applied once"), "{text}");
    for shard in 0..3 {
        assert!(
            text.contains(&format!("Shard {shard} (cluster shard{shard}")),
            "{text}"
        );
    }
    assert!(
        text.contains("  Limit") || text.contains("  ->"),
        "each shard's own plan: {text}"
    );
    // Extended protocol with a parameter, aggregates.
    let rows = c
        .query(
            "EXPLAIN SELECT v, count(*) FROM items WHERE n > $1 GROUP BY v HAVING count(*) > 1",
            &[&2i32],
        )
        .await
        .unwrap();
    let text: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let text = text.join("\n");
    assert!(
        text.contains("partial aggregates combined") && text.contains("HAVING"),
        "{text}"
    );
    // ANALYZE runs the statement on every shard; of a write it is refused.
    let text = plan(
        c.simple_query("EXPLAIN (ANALYZE, COSTS off) SELECT count(*) FROM items")
            .await
            .unwrap(),
    );
    assert!(text.contains("actual"), "{text}");
    let e = c
        .simple_query("EXPLAIN ANALYZE UPDATE items SET v = 'x'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    let text = plan(
        c.simple_query("EXPLAIN UPDATE items SET v = 'x'")
            .await
            .unwrap(),
    );
    assert!(
        text.contains("two-phase commit") && text.contains("Update on items"),
        "{text}"
    );
    let n: i64 = c
        .query_one("SELECT count(*) FROM items WHERE v = 'x'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "EXPLAIN without ANALYZE changed nothing");
    proxy.stop().await;
}

/// The shard PostgreSQL's hash partitioning (modulus 3) puts `id` in.
fn shard_of(s: &Shards, id: i64) -> usize {
    s.shards[0]
        .psql_db(
            "app",
            &format!(
                "SELECT r FROM generate_series(0, 2) r \
                 WHERE satisfies_hash_partition('hp'::regclass, 3, r, {id}::bigint)"
            ),
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Keys on two different shards, starting the search at `from`.
fn two_shards(s: &Shards, from: i64) -> (i64, i64) {
    let a = from;
    let sa = shard_of(s, a);
    let b = (a + 1..).find(|k| shard_of(s, *k) != sa).unwrap();
    (a, b)
}

fn rows_on_shards(s: &Shards, filter: &str) -> i64 {
    s.shards
        .iter()
        .map(|c| {
            c.psql_db("app", &format!("SELECT count(*) FROM items WHERE {filter}"))
                .unwrap()
                .parse::<i64>()
                .unwrap()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_span_shards_and_commit_with_two_phase_commit() {
    let s = shards();
    let proxy = TestProxy::start(&config(&s, "127.0.0.1:0")).await;
    let mut c = proxy.connect().await;

    // pgfleet's own two-phase commits are not the client's to finish or to fake.
    for sql in [
        "ROLLBACK PREPARED 'pgfleet_1_1_1'",
        "COMMIT PREPARED 'pgfleet_1_1_1'",
        "BEGIN; PREPARE TRANSACTION 'pgfleet_1_1_2'",
    ] {
        let e = c.simple_query(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}: {}", message(&e));
        assert!(
            message(&e).contains("one of pgfleet's two-phase commits"),
            "{sql}: {}",
            message(&e)
        );
    }
    // Other names are the client's own business: the server answers.
    let e = c
        .simple_query("ROLLBACK PREPARED 'not_pgfleets'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42704", "{}", message(&e));
    c.batch_execute("SELECT 1").await.unwrap();
    let (a, b) = two_shards(&s, 7001);

    // Simple protocol: BEGIN, a write on each shard, back to the first, COMMIT.
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute(&format!("INSERT INTO items(id, v) VALUES ({a}, 'a')"))
        .await
        .unwrap();
    c.batch_execute(&format!("INSERT INTO items(id, v) VALUES ({b}, 'b')"))
        .await
        .unwrap();
    c.batch_execute(&format!("UPDATE items SET v = 'a2' WHERE id = {a}"))
        .await
        .unwrap();
    // Inside the transaction each shard sees its own uncommitted rows; outside, nothing yet.
    assert_eq!(rows_on_shards(&s, "id > 7000"), 0);
    let rows = c.simple_query("COMMIT").await.unwrap();
    assert!(
        rows.iter()
            .any(|m| matches!(m, SimpleQueryMessage::CommandComplete(_))),
        "{rows:?}"
    );
    assert_eq!(rows_on_shards(&s, "id > 7000"), 2);
    assert_eq!(
        rows_on_shards(&s, &format!("id = {a} AND v = 'a2'")),
        1,
        "both statements on the first shard committed"
    );
    assert_eq!(prepared_xacts(&s), 0);

    // ROLLBACK undoes every shard.
    let (c1, c2) = two_shards(&s, 7101);
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute(&format!("INSERT INTO items(id, v) VALUES ({c1}, 'x')"))
        .await
        .unwrap();
    c.batch_execute(&format!("INSERT INTO items(id, v) VALUES ({c2}, 'x')"))
        .await
        .unwrap();
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(rows_on_shards(&s, "id > 7100"), 0);

    // An error on one shard fails the whole transaction: COMMIT answers ROLLBACK.
    let (d1, _) = two_shards(&s, 7201);
    let dup = (7001..7201)
        .find(|k| shard_of(&s, *k) != shard_of(&s, d1) && (*k == a || *k == b))
        .unwrap();
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute(&format!("INSERT INTO items(id, v) VALUES ({d1}, 'x')"))
        .await
        .unwrap();
    let e = c
        .batch_execute(&format!("INSERT INTO items(id, v) VALUES ({dup}, 'dup')"))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    let e = c.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    let rows = c.simple_query("COMMIT").await.unwrap();
    assert!(
        rows.iter()
            .any(|m| matches!(m, SimpleQueryMessage::CommandComplete(_))),
        "{rows:?}"
    );
    assert_eq!(rows_on_shards(&s, "id > 7200"), 0);

    // Extended protocol through tokio-postgres' transaction API, parameters routed at Bind.
    let (e1, e2) = two_shards(&s, 7301);
    let tx = c.transaction().await.unwrap();
    let insert = tx
        .prepare("INSERT INTO items(id, v) VALUES ($1, $2)")
        .await
        .unwrap();
    tx.execute(&insert, &[&e1, &"e1"]).await.unwrap();
    tx.execute(&insert, &[&e2, &"e2"]).await.unwrap();
    let v: String = tx
        .query_one("SELECT v FROM items WHERE id = $1", &[&e1])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "e1");
    tx.commit().await.unwrap();
    assert_eq!(rows_on_shards(&s, "id > 7300"), 2);

    // Savepoints do not span shards.
    let (f1, f2) = two_shards(&s, 7401);
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute(&format!("INSERT INTO items(id, v) VALUES ({f1}, 'f')"))
        .await
        .unwrap();
    c.batch_execute("SAVEPOINT sp").await.unwrap();
    let e = c
        .batch_execute(&format!("INSERT INTO items(id, v) VALUES ({f2}, 'f')"))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(rows_on_shards(&s, "id > 7400"), 0);

    // Preparing COMMIT instead of running it is refused; the transaction fails everywhere and
    // ROLLBACK ends it.
    let (h1, h2) = two_shards(&s, 7601);
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute(&format!("INSERT INTO items(id, v) VALUES ({h1}, 'h')"))
        .await
        .unwrap();
    c.batch_execute(&format!("INSERT INTO items(id, v) VALUES ({h2}, 'h')"))
        .await
        .unwrap();
    let e = c.prepare("COMMIT").await.unwrap_err();
    assert_eq!(sqlstate(&e), "0A000", "{}", message(&e));
    let e = c.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(rows_on_shards(&s, "id > 7600"), 0);
    assert_eq!(prepared_xacts(&s), 0);

    // A client that leaves in the middle: every shard rolls back, nothing stays prepared.
    let (g1, g2) = two_shards(&s, 7501);
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute(&format!("INSERT INTO items(id, v) VALUES ({g1}, 'g')"))
        .await
        .unwrap();
    c.batch_execute(&format!("INSERT INTO items(id, v) VALUES ({g2}, 'g')"))
        .await
        .unwrap();
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rows_on_shards(&s, "id > 7500"), 0);
    assert_eq!(prepared_xacts(&s), 0);
    let c = proxy.connect().await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM items WHERE id > 7000", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 4);
    proxy.stop().await;
}

/// A shard's NoticeResponse in the middle of a cross-shard read reaches the client at once, as
/// from one server, although pgfleet otherwise holds a small answer back to write it in one piece.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_during_a_cross_shard_read_arrives_before_the_rows() {
    let s = shards();
    for shard in &s.shards {
        shard
            .psql_db(
                "app",
                "CREATE FUNCTION noisy(i bigint) RETURNS bigint LANGUAGE plpgsql AS $$ \
                 BEGIN RAISE NOTICE 'working on %', i; PERFORM pg_sleep(2); RETURN i; END $$",
            )
            .unwrap();
    }
    let proxy = TestProxy::start(&config(&s, "127.0.0.1:0")).await;
    let (a, b) = two_shards(&s, 1);
    let setup = proxy.connect().await;
    for id in [a, b] {
        setup
            .execute("INSERT INTO items(id, v) VALUES ($1, 'x')", &[&id])
            .await
            .unwrap();
    }
    let (c, mut messages) = connect_with_messages(&proxy.conn_str("app", "app", "app")).await;
    let started = std::time::Instant::now();
    let sql = format!("SELECT noisy(id) FROM items WHERE id IN ({a}, {b}) ORDER BY 1");
    let query = c.simple_query(&sql);
    let rows = tokio::time::timeout(Duration::from_secs(30), query)
        .await
        .unwrap()
        .unwrap();
    let finished = std::time::Instant::now();
    assert_eq!(
        texts(&rows),
        vec![vec![Some(a.to_string())], vec![Some(b.to_string())]]
    );
    let (first_at, message) = tokio::time::timeout(Duration::from_secs(5), messages.recv())
        .await
        .expect("no notice reached the client")
        .unwrap();
    let tokio_postgres::AsyncMessage::Notice(notice) = message else {
        panic!("not a notice: {message:?}");
    };
    assert!(
        notice.message().starts_with("working on "),
        "{}",
        notice.message()
    );
    // Both shards sleep 2 s after their notice: it must not wait for the end of the query.
    assert!(
        first_at.duration_since(started) < Duration::from_millis(1500),
        "the first notice came {:?} after the query started (the query took {:?})",
        first_at.duration_since(started),
        finished.duration_since(started)
    );
    proxy.stop().await;
}
