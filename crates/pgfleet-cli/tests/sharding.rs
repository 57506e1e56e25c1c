//! A sharded database through the proxy (single-shard execution): three single-server shard
//! clusters and an `audit` cluster for a placement group. Rows must land on the shard that
//! PostgreSQL's own hash partitioning (`satisfies_hash_partition`) names; a transaction that
//! would cross shards is refused with 0A000 (cross-shard statements outside transactions are
//! in crossshard.rs).

#![allow(clippy::unwrap_used)]

mod common;

use common::programs::run;
use common::shards::{primary_servers, HASH_PARTITIONS_3};
use common::*;
use pgfleet_testkit::Cluster;

/// The shards (index = shard number) and the placement cluster.
struct Shards {
    shards: Vec<Cluster>,
    audit: Cluster,
}

fn shards() -> Shards {
    let shards: Vec<Cluster> = (0..3).map(|_| app_cluster()).collect();
    for (i, s) in shards.iter().enumerate() {
        let mut sql = String::from(
            "CREATE TABLE items(id bigint primary key, v text); ALTER TABLE items OWNER TO app;
             CREATE TABLE countries(code text primary key, name text); ALTER TABLE countries OWNER TO app;
             INSERT INTO countries VALUES ('fr', 'France');
             ",
        );
        sql.push_str(HASH_PARTITIONS_3);
        if i == 0 {
            sql.push_str("CREATE TABLE notes(id int, v text); ALTER TABLE notes OWNER TO app;");
        }
        s.psql_db("app", &sql).unwrap();
    }
    let audit = app_cluster();
    audit
        .psql_db(
            "app",
            "CREATE TABLE audit_log(id int, what text); ALTER TABLE audit_log OWNER TO app",
        )
        .unwrap();
    Shards { shards, audit }
}

fn config(s: &Shards) -> String {
    let server = primary_servers;
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
shutdown_timeout = "2s"

[pool]
pool_size = 4

[clusters.shard0]
{s0}
[clusters.shard1]
{s1}
[clusters.shard2]
{s2}
[clusters.audit]
{audit}

[databases.app]
shards = ["shard0", "shard1", "shard2"]
reference_tables = ["countries"]

[databases.app.sharded_tables.items]
column = "id"
type = "bigint"

[databases.app.placement]
audit = {{ cluster = "audit", tables = ["audit_*"] }}

[users.app]
password = "app"
"#,
        s0 = server(&s.shards[0]),
        s1 = server(&s.shards[1]),
        s2 = server(&s.shards[2]),
        audit = server(&s.audit),
    )
}

/// The shard PostgreSQL's hash partitioning (modulus 3) puts `id` in, asked of a real server.
fn shard_of(s: &Shards, id: i64) -> usize {
    let out = s.shards[0]
        .psql_db(
            "app",
            &format!(
                "SELECT r FROM generate_series(0, 2) r \
                 WHERE satisfies_hash_partition('hp'::regclass, 3, r, {id}::bigint)"
            ),
        )
        .unwrap();
    out.trim().parse().unwrap()
}

fn misplaced_and_count(s: &Shards, shard: usize) -> (i64, i64) {
    common::shards::misplaced_and_count(&s.shards, shard, "true")
}

fn port(s: &Shards, shard: usize) -> i32 {
    s.shards[shard].port() as i32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_shard_statements_run_on_their_shard() {
    let s = shards();
    let proxy = TestProxy::start(&config(&s)).await;
    let c = proxy.connect().await;

    // Single-row inserts: simple protocol with literals, extended with a binary int8 parameter.
    for id in 1..=150i64 {
        c.batch_execute(&format!("INSERT INTO items(id, v) VALUES ({id}, 'simple')"))
            .await
            .unwrap();
    }
    let insert = c
        .prepare("INSERT INTO items(id, v) VALUES ($1, $2) RETURNING inet_server_port()")
        .await
        .unwrap();
    for id in 151..=300i64 {
        let row = c.query_one(&insert, &[&id, &"binary"]).await.unwrap();
        assert_eq!(
            row.get::<_, i32>(0),
            port(&s, shard_of(&s, id)),
            "binary int8 parameter {id} routed to its shard"
        );
    }
    // Text-format parameters: pgbench's extended protocol binds `:id` as text.
    let script = std::env::temp_dir().join(format!("pgfleet-shard-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "\\set id 1000 + :client_id * 100000 + random(1, 90000)\n\
         INSERT INTO items(id, v) VALUES (:id, 'text') ON CONFLICT (id) DO NOTHING;\n",
    )
    .unwrap();
    let (ok, out) = run(
        "pgbench",
        &proxy,
        &[
            "-n",
            "-M",
            "extended",
            "-t",
            "100",
            "-f",
            script.to_str().unwrap(),
            "app",
        ],
    )
    .await;
    std::fs::remove_file(&script).ok();
    assert!(ok, "pgbench: {out}");

    // Every row is on the shard PostgreSQL's hash partitioning names, and all arrived.
    let mut total = 0;
    for shard in 0..3 {
        let (misplaced, count) = misplaced_and_count(&s, shard);
        assert_eq!(misplaced, 0, "rows on the wrong shard {shard}");
        assert!(count > 0, "shard {shard} got rows");
        total += count;
    }
    let text_rows: i64 = s
        .shards
        .iter()
        .map(|sh| {
            sh.psql_db("app", "SELECT count(*) FROM items WHERE v = 'text'")
                .unwrap()
                .trim()
                .parse::<i64>()
                .unwrap()
        })
        .sum();
    assert!(text_rows > 90, "text-parameter rows inserted: {text_rows}");
    assert_eq!(total, 300 + text_rows);

    // Point reads by key, simple and extended, come back from the key's shard.
    for id in [1i64, 2, 3, 77, 151, 299] {
        let rows = c
            .simple_query(&format!(
                "SELECT v, inet_server_port() FROM items WHERE id = {id}"
            ))
            .await
            .unwrap();
        let row = rows
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .unwrap_or_else(|| panic!("row {id} found through the proxy"));
        assert_eq!(row.get(1).unwrap(), port(&s, shard_of(&s, id)).to_string());
        let row = c
            .query_one(
                "SELECT v, inet_server_port() FROM items WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(1), port(&s, shard_of(&s, id)));
        assert_eq!(
            row.get::<_, String>(0),
            if id <= 150 { "simple" } else { "binary" }
        );
    }

    // SET pgfleet.shard and the comment hint pick the shard themselves.
    c.batch_execute("SET pgfleet.shard = 2").await.unwrap();
    for _ in 0..3 {
        let p: i32 = c
            .query_one("SELECT inet_server_port() FROM items LIMIT 1", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(p, port(&s, 2));
    }
    c.batch_execute("RESET pgfleet.shard").await.unwrap();
    let p: i32 = c
        .query_one(
            "/* pgfleet: shard=1 */ SELECT inet_server_port() FROM items LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(p, port(&s, 1));

    // Unsharded tables live on the default shard; the placement group on its cluster; a
    // reference table is read on any shard.
    c.batch_execute("INSERT INTO notes VALUES (1, 'n')")
        .await
        .unwrap();
    let p: i32 = c
        .query_one("SELECT inet_server_port() FROM notes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(p, port(&s, 0));
    c.execute("INSERT INTO audit_log VALUES ($1, 'login')", &[&7i32])
        .await
        .unwrap();
    let p: i32 = c
        .query_one("SELECT inet_server_port() FROM audit_log WHERE id = 7", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(p, s.audit.port() as i32);
    assert_eq!(
        s.audit
            .psql_db("app", "SELECT count(*) FROM audit_log")
            .unwrap(),
        "1"
    );
    let name: String = c
        .query_one("SELECT name FROM countries WHERE code = 'fr'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "France");

    // Reads across shards are merged (crossshard.rs tests them in depth).
    let n: i64 = c
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    let direct: i64 = (0..3).map(|i| misplaced_and_count(&s, i).1).sum();
    assert_eq!(n, direct);
    let rows = c
        .simple_query("SELECT id FROM items WHERE id IN (1, 2, 3, 4, 5, 6) ORDER BY id")
        .await
        .unwrap();
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6"]);
    // Writes on several shards need two-phase commit, whose decision log is the metadata
    // database; without one they are refused before anything runs.
    let e = c
        .batch_execute("INSERT INTO items(id, v) VALUES (1001, 'a'), (1002, 'b'), (1003, 'c'), (1004, 'd'), (1005, 'e')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    assert!(
        message(&e).contains("two-phase commit") && message(&e).contains("[metadata]"),
        "{}",
        message(&e)
    );
    let e = c
        .batch_execute("UPDATE countries SET name = 'République française'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    for sh in &s.shards {
        assert_eq!(
            sh.psql_db(
                "app",
                "SELECT count(*) FROM items WHERE id BETWEEN 1001 AND 1005"
            )
            .unwrap(),
            "0"
        );
        assert_eq!(
            sh.psql_db("app", "SELECT name FROM countries").unwrap(),
            "France"
        );
    }
    // A key literal the key type cannot read: 22P02 naming the value.
    let e = c
        .batch_execute("SELECT * FROM items WHERE id = '12a'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22P02");
    assert!(message(&e).contains("12a"), "{}", message(&e));
    // The session is fine afterwards.
    let n: i64 = c
        .query_one("SELECT count(*) FROM items WHERE id = 5", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    proxy.stop().await;
}

/// Two keys on different shards, and the shards; the first not on the default shard (0), so a
/// transaction that starts on the default shard shows.
fn keys_on_two_shards(s: &Shards) -> ((i64, usize), (i64, usize)) {
    let a = (10_001i64..)
        .map(|k| (k, shard_of(s, k)))
        .find(|(_, sh)| *sh != 0)
        .unwrap();
    let b = (a.0 + 1..)
        .map(|k| (k, shard_of(s, k)))
        .find(|(_, sh)| *sh != a.1)
        .unwrap();
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_stay_on_one_shard() {
    let s = shards();
    let proxy = TestProxy::start(&config(&s)).await;
    let mut c = proxy.connect().await;
    let ((ka, sa), (kb, sb)) = keys_on_two_shards(&s);

    // BEGIN alone does not pick the default shard: the first statement with a key does.
    let tx = c.transaction().await.unwrap();
    let p: i32 = tx
        .query_one(
            "INSERT INTO items(id, v) VALUES ($1, 'tx') RETURNING inet_server_port()",
            &[&ka],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(p, port(&s, sa));
    let v: String = tx
        .query_one("SELECT v FROM items WHERE id = $1", &[&ka])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "tx");
    // Statements that name no table run in the transaction, on its shard.
    let p: i32 = tx
        .query_one("SELECT inet_server_port()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(p, port(&s, sa));
    tx.commit().await.unwrap();
    assert_eq!(
        s.shards[sa]
            .psql_db("app", &format!("SELECT v FROM items WHERE id = {ka}"))
            .unwrap(),
        "tx"
    );

    // BEGIN with options is sent as written.
    c.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await
        .unwrap();
    let iso: String = c
        .query_one(
            "SELECT current_setting('transaction_isolation') FROM items WHERE id = $1",
            &[&ka],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(iso, "serializable");
    c.batch_execute("COMMIT").await.unwrap();

    // A statement for another shard inside the transaction: without a metadata database (the
    // two-phase commit's decision log) it is refused, the transaction is failed (the server says
    // 25P02 afterwards), nothing of it is committed, ROLLBACK recovers. (With one, the
    // transaction spans the shards: crossshard.rs.)
    c.batch_execute("BEGIN").await.unwrap();
    c.execute("UPDATE items SET v = 'changed' WHERE id = $1", &[&ka])
        .await
        .unwrap();
    let e = c
        .execute("INSERT INTO items(id, v) VALUES ($1, 'other')", &[&kb])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    assert!(
        message(&e).starts_with(&format!(
            "pgfleet: transaction on shard {sa} cannot continue on shard {sb}"
        )) && message(&e).contains("[metadata]"),
        "{}",
        message(&e)
    );
    let e = c
        .query("SELECT v FROM items WHERE id = $1", &[&ka])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    let v: String = c
        .query_one("SELECT v FROM items WHERE id = $1", &[&ka])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "tx", "the failed transaction was rolled back");
    for sh in &s.shards {
        assert_eq!(
            sh.psql_db(
                "app",
                &format!("SELECT count(*) FROM items WHERE id = {kb}")
            )
            .unwrap(),
            "0"
        );
    }
    // The same in the simple protocol.
    let e = c
        .batch_execute(&format!(
            "BEGIN; UPDATE items SET v = 'x' WHERE id = {ka}; COMMIT"
        ))
        .await;
    assert!(e.is_ok(), "one shard in one text: {e:?}");
    c.batch_execute(&format!("BEGIN; UPDATE items SET v = 'y' WHERE id = {ka}"))
        .await
        .unwrap();
    let e = c
        .batch_execute(&format!("SELECT * FROM items WHERE id = {kb}"))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    assert!(
        message(&e).contains(&format!("shard {sa} cannot continue on shard {sb}")),
        "{}",
        message(&e)
    );
    let e = c.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        s.shards[sa]
            .psql_db("app", &format!("SELECT v FROM items WHERE id = {ka}"))
            .unwrap(),
        "x"
    );

    // A refusal before any server took part (a cross-shard SELECT right after BEGIN) fails the
    // transaction too; COMMIT then reports ROLLBACK, like PostgreSQL.
    c.batch_execute("BEGIN").await.unwrap();
    let e = c.batch_execute("SELECT * FROM items").await.unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    let e = c
        .query("SELECT v FROM items WHERE id = $1", &[&ka])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "25P02", "{}", message(&e));
    let msgs = c.simple_query("COMMIT").await.unwrap();
    assert!(matches!(
        msgs.last(),
        Some(tokio_postgres::SimpleQueryMessage::CommandComplete(0))
    ));
    // BEGIN; COMMIT with nothing in between needs no server.
    c.batch_execute("BEGIN; COMMIT").await.unwrap();
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("ROLLBACK").await.unwrap();
    // The session works normally afterwards, on both shards.
    for (k, sh) in [(ka, sa), (kb, sb)] {
        let p: i32 = c
            .query_one(
                "INSERT INTO items(id, v) VALUES ($1, 'after') ON CONFLICT (id) DO UPDATE SET v = 'after' RETURNING inet_server_port()",
                &[&k],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(p, port(&s, sh));
    }
    proxy.stop().await;
}

/// A reload is followed by sessions already connected: a session keeps its database's router
/// only until the routers are rebuilt, so a placement group moved by a reload is where the
/// session's next statements go, in both protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reroutes_connected_sessions() {
    let s = shards();
    s.shards[2]
        .psql_db(
            "app",
            "CREATE TABLE audit_log(id int, what text); ALTER TABLE audit_log OWNER TO app",
        )
        .unwrap();
    let before = config(&s);
    let after = before.replace(r#"cluster = "audit""#, r#"cluster = "shard2""#);
    assert_ne!(before, after);
    let proxy = TestProxy::start(&before).await;
    let c = proxy.connect().await;
    let insert = "INSERT INTO audit_log VALUES (1, 'x') RETURNING inet_server_port()";
    let simple_port = |msgs: Vec<tokio_postgres::SimpleQueryMessage>| -> i32 {
        msgs.iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(|v| v.parse().unwrap()),
                _ => None,
            })
            .unwrap()
    };
    for _ in 0..3 {
        let p: i32 = c.query_one(insert, &[]).await.unwrap().get(0);
        assert_eq!(p, s.audit.port() as i32);
        assert_eq!(
            simple_port(c.simple_query(insert).await.unwrap()),
            s.audit.port() as i32
        );
    }
    proxy
        .rt
        .apply_config(pgfleet_config::Config::from_toml_str(&after).unwrap());
    for _ in 0..3 {
        let p: i32 = c.query_one(insert, &[]).await.unwrap().get(0);
        assert_eq!(p, port(&s, 2), "extended protocol after the reload");
        assert_eq!(
            simple_port(c.simple_query(insert).await.unwrap()),
            port(&s, 2),
            "simple protocol after the reload"
        );
    }
    assert_eq!(
        s.shards[2]
            .psql_db("app", "SELECT count(*) FROM audit_log")
            .unwrap(),
        "6"
    );
    assert_eq!(
        s.audit
            .psql_db("app", "SELECT count(*) FROM audit_log")
            .unwrap(),
        "6"
    );
    proxy.stop().await;
}
