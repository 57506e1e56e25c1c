//! Differential test against real PostgreSQL: the same data split by hash over 3 servers and
//! whole in one table; every query runs (a) as per-shard SQL on each shard + pgfleet's merge and
//! (b) as written on the whole table, and the results must be identical — RowDescription names
//! and types, rows (in order where ORDER BY fixes it), and the command tag. Text results come
//! from the simple protocol; binary results from the extended protocol.

mod common;

use std::error::Error as StdError;

use common::{run, Row, ShardResult};
use pgfleet_merge::Limits;
use pgfleet_sql::merge_plan::{plan_select, AllSharded};
use pgfleet_testkit::Cluster;
use pgfleet_wire::rows::FieldDescription;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Any value's raw binary bytes.
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Raw, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }
    fn from_sql_null(_: &Type) -> Result<Raw, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

async fn connect(c: &Cluster) -> Client {
    let (client, conn) = tokio_postgres::connect(&c.config_string("postgres", "postgres"), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// Deterministic data with NULLs, duplicates, non-ASCII text, negative and fractional numbers.
fn rows() -> Vec<String> {
    let names = ["alice", "Bob", "bob", "Émile", "zoë", "", "a b", "ÅSA", "x"];
    let mut seed: u64 = 42;
    let mut next = move |m: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % m
    };
    (1..=600)
        .map(|id| {
            let g = if next(10) == 0 {
                "NULL".to_string()
            } else {
                next(7).to_string()
            };
            let a = if next(8) == 0 {
                "NULL".to_string()
            } else {
                (next(2001) as i64 - 1000).to_string()
            };
            let t = if next(9) == 0 {
                "NULL".to_string()
            } else {
                format!("'{}'", names[next(9) as usize])
            };
            let n = if next(9) == 0 {
                "NULL".to_string()
            } else {
                format!("{}.{:02}", next(20000) as i64 - 10000, next(100))
            };
            let b = ["true", "false", "NULL"][next(3) as usize];
            let d = if next(10) == 0 {
                "NULL".to_string()
            } else {
                format!("date '2024-01-01' + {}", next(400) as i64 - 200)
            };
            let ts = if next(10) == 0 {
                "NULL".to_string()
            } else {
                format!(
                    "timestamptz '2024-03-01 12:00:00+00' + interval '{} minutes'",
                    next(100000)
                )
            };
            let u = if next(10) == 0 {
                "NULL".to_string()
            } else {
                format!("'{:08x}-0000-4000-8000-{:012x}'", next(5), next(1 << 40))
            };
            let big = (next(1 << 40) as i64 - (1 << 39)) * 1000;
            format!(
                "({id}, {g}, {a}, {t}, {n}, {b}, {d}, {ts}, {u}, {big}, {}::real)",
                next(1000) as f64 / 8.0
            )
        })
        .collect()
}

const SCHEMA: &str = "(id bigint, g int, a int, t text, n numeric(12,2), b bool, d date, ts timestamptz, u uuid, big bigint, r real)";

/// (query with `{t}` for the table, ORDER BY fixes the row order)
const QUERIES: &[(&str, bool)] = &[
    ("SELECT id, g, a, t FROM {t} ORDER BY g NULLS FIRST, a DESC, id", true),
    ("SELECT id, t FROM {t} ORDER BY t DESC NULLS LAST, n, id LIMIT 25 OFFSET 10", true),
    ("SELECT id, n FROM {t} ORDER BY n DESC, id LIMIT 30", true),
    ("SELECT id FROM {t} ORDER BY d, ts DESC, id LIMIT 40 OFFSET 3", true),
    ("SELECT id, u FROM {t} ORDER BY u NULLS FIRST, id LIMIT 50", true),
    ("SELECT id, b FROM {t} ORDER BY b, id DESC LIMIT 20 OFFSET 100", true),
    ("SELECT * FROM {t} ORDER BY big, id LIMIT 15", true),
    ("SELECT id, a * 2 AS twice FROM {t} ORDER BY twice NULLS FIRST, id LIMIT 33", true),
    ("SELECT id FROM {t} ORDER BY lower(t), id OFFSET 590", true),
    ("SELECT count(*), count(a), sum(a), min(a), max(a), avg(a) FROM {t}", true),
    ("SELECT sum(n), avg(n), min(n), max(n), sum(big), avg(big) FROM {t}", true),
    ("SELECT g, count(*), sum(a), avg(a), min(t), max(t) FROM {t} GROUP BY g ORDER BY g", true),
    ("SELECT g, count(*) AS c, sum(n) FROM {t} GROUP BY g HAVING count(*) > 80 AND sum(n) > 0 ORDER BY c DESC, g", true),
    ("SELECT t, avg(n), min(d), max(ts) FROM {t} GROUP BY t HAVING avg(n) < 500 OR t IS NULL ORDER BY t NULLS FIRST", true),
    ("SELECT g, b, count(*) FROM {t} GROUP BY g, b ORDER BY 3 DESC, 1, 2 LIMIT 10 OFFSET 2", true),
    ("SELECT count(*) FROM {t} GROUP BY b ORDER BY max(a) DESC", true),
    ("SELECT g, bool_and(b), bool_or(b), every(a > 0) FROM {t} GROUP BY g ORDER BY g NULLS FIRST", true),
    ("SELECT DISTINCT g FROM {t} ORDER BY g DESC", true),
    ("SELECT DISTINCT t, b FROM {t} ORDER BY t, b LIMIT 12 OFFSET 1", true),
    ("SELECT DISTINCT t FROM {t}", false),
    ("SELECT DISTINCT count(*) FROM {t} GROUP BY a ORDER BY 1", true),
    ("SELECT g, count(*) FILTER (WHERE a > 0), avg(a) FILTER (WHERE b) FROM {t} GROUP BY g ORDER BY g", true),
    ("SELECT count(*), sum(a) FROM {t} WHERE id < 0", true),
    ("SELECT g, sum(a) FROM {t} WHERE id < 0 GROUP BY g", true),
    ("SELECT max(t), min(ts), max(d), min(big), max(r) FROM {t}", true),
];

async fn fields_of(client: &Client, sql: &str, binary: bool) -> Vec<FieldDescription> {
    let stmt = client
        .prepare(sql)
        .await
        .unwrap_or_else(|e| panic!("prepare {sql}: {e}"));
    stmt.columns()
        .iter()
        .map(|c| FieldDescription {
            name: c.name().to_string(),
            table_oid: 0,
            column: 0,
            type_oid: c.type_().oid(),
            type_size: -1,
            type_modifier: -1,
            format: i16::from(binary),
        })
        .collect()
}

async fn text_rows(client: &Client, sql: &str) -> Vec<Row> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).map(|s| s.as_bytes().to_vec()))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

async fn binary_rows(client: &Client, sql: &str) -> Vec<Row> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get::<_, Raw>(i).0).collect())
        .collect()
}

/// Runs one query both ways and compares.
async fn check(shards: &[Client], whole: &Client, query: &str, ordered: bool, binary: bool) {
    let direct = query.replace("{t}", "t_all");
    let sharded = query.replace("{t}", "t");
    let q = plan_select(&sharded, &AllSharded).unwrap_or_else(|e| panic!("{sharded}: {e}"));
    let mut results = Vec::new();
    for s in shards {
        let fields = fields_of(s, &q.sql, binary).await;
        let rows = if binary {
            binary_rows(s, &q.sql).await
        } else {
            text_rows(s, &q.sql).await
        };
        results.push(ShardResult { fields, rows });
    }
    let limits = Limits::resolve(&q.plan, |_| None).expect("limits");
    let got = run(&q.plan, &results, limits, 64 << 20, &[0, 2, 1, 1, 0, 2])
        .unwrap_or_else(|e| panic!("merge of {sharded} ({}): {e}", q.sql));
    let want_fields = fields_of(whole, &direct, binary).await;
    let want_rows = if binary {
        binary_rows(whole, &direct).await
    } else {
        text_rows(whole, &direct).await
    };
    let names = |f: &[FieldDescription]| {
        f.iter()
            .map(|x| (x.name.clone(), x.type_oid))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&got.fields),
        names(&want_fields),
        "columns of {query} (shard SQL: {})",
        q.sql
    );
    assert_eq!(got.tag, format!("SELECT {}", want_rows.len()), "{query}");
    let (mut got_rows, mut want_rows) = (got.rows, want_rows);
    if !ordered {
        got_rows.sort();
        want_rows.sort();
    }
    assert_eq!(
        got_rows, want_rows,
        "rows of {query} (binary: {binary}, shard SQL: {})",
        q.sql
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_results_equal_one_server() {
    let clusters: Vec<Cluster> = (0..3).map(|_| Cluster::start().expect("start")).collect();
    let mut shards = Vec::new();
    for c in &clusters {
        let client = connect(c).await;
        client
            .batch_execute(&format!("CREATE TABLE t {SCHEMA}"))
            .await
            .expect("create");
        shards.push(client);
    }
    let whole = connect(&clusters[0]).await;
    whole
        .batch_execute(&format!("CREATE TABLE t_all {SCHEMA}"))
        .await
        .expect("create");
    let data = rows();
    whole
        .batch_execute(&format!("INSERT INTO t_all VALUES {}", data.join(",\n")))
        .await
        .expect("insert all");
    // Split by PostgreSQL's own hash of the id (the same function hash partitioning uses).
    for (i, s) in shards.iter().enumerate() {
        s.batch_execute(&format!(
            "INSERT INTO t VALUES {}; DELETE FROM t WHERE abs(hashint8extended(id, 0) % 3) <> {i}",
            data.join(",\n")
        ))
        .await
        .expect("insert shard");
    }
    let mut per_shard = Vec::new();
    for s in &shards {
        per_shard.push(
            s.query_one("SELECT count(*) FROM t", &[])
                .await
                .expect("count")
                .get::<_, i64>(0),
        );
    }
    assert_eq!(per_shard.iter().sum::<i64>(), 600);
    assert!(
        per_shard.iter().all(|n| *n > 100),
        "hash split {per_shard:?}"
    );

    for (query, ordered) in QUERIES {
        check(&shards, &whole, query, *ordered, false).await;
        check(&shards, &whole, query, *ordered, true).await;
    }

    // LIMIT without ORDER BY: any 5 of the matching rows, as from one server.
    let q = plan_select("SELECT id, t FROM t WHERE a > 900 LIMIT 5", &AllSharded).expect("plans");
    let mut results = Vec::new();
    for s in &shards {
        results.push(ShardResult {
            fields: fields_of(s, &q.sql, false).await,
            rows: text_rows(s, &q.sql).await,
        });
    }
    let got = run(
        &q.plan,
        &results,
        Limits::resolve(&q.plan, |_| None).expect("limits"),
        64 << 20,
        &[2, 0],
    )
    .expect("merge");
    let all = text_rows(&whole, "SELECT id, t FROM t_all WHERE a > 900").await;
    assert!(all.len() > 5);
    assert_eq!(got.rows.len(), 5);
    assert!(got.rows.iter().all(|r| all.contains(r)), "{:?}", got.rows);

    // string_agg / array_agg: same elements (their order is unspecified without ORDER BY inside).
    let agg = "SELECT g, string_agg(t, ';'), array_agg(a) FROM {t} GROUP BY g ORDER BY g";
    let sharded = agg.replace("{t}", "t");
    let q = plan_select(&sharded, &AllSharded).expect("plans");
    let mut results = Vec::new();
    for s in &shards {
        results.push(ShardResult {
            fields: fields_of(s, &q.sql, false).await,
            rows: text_rows(s, &q.sql).await,
        });
    }
    let got = run(&q.plan, &results, Limits::default(), 64 << 20, &[1]).expect("merge");
    let want = text_rows(&whole, &agg.replace("{t}", "t_all")).await;
    assert_eq!(got.rows.len(), want.len());
    let sorted = |v: &Option<Vec<u8>>, sep: char, trim: bool| {
        let s = String::from_utf8(v.clone().unwrap_or_default()).expect("utf8");
        let s = if trim {
            s.trim_start_matches('{').trim_end_matches('}').to_string()
        } else {
            s
        };
        let mut parts: Vec<String> = s.split(sep).map(str::to_string).collect();
        parts.sort();
        parts
    };
    for (g, w) in got.rows.iter().zip(&want) {
        assert_eq!(g[0], w[0]);
        assert_eq!(sorted(&g[1], ';', false), sorted(&w[1], ';', false));
        assert_eq!(sorted(&g[2], ',', true), sorted(&w[2], ',', true));
    }

    // Refused when the types arrive: a float sum would depend on the order of additions.
    let q = plan_select("SELECT sum(r) FROM t", &AllSharded).expect("plans");
    let mut results = Vec::new();
    for s in &shards {
        results.push(ShardResult {
            fields: fields_of(s, &q.sql, false).await,
            rows: text_rows(s, &q.sql).await,
        });
    }
    let err = run(&q.plan, &results, Limits::default(), 64 << 20, &[0]).expect_err("refused");
    assert_eq!(err.sqlstate(), "0A000");
}

/// The avg() division vectors of the numeric unit tests, checked against the server.
#[tokio::test]
async fn numeric_avg_matches_server() {
    let c = Cluster::start().expect("start");
    let client = connect(&c).await;
    for (values, sum, count) in [
        ("1,2", "3", 2),
        ("1", "1", 1),
        ("0,0,2", "2", 3),
        ("0,0,-2", "-2", 3),
        ("10.00,2.50", "12.50", 2),
        ("123456789012,1,1", "123456789014", 3),
        ("0.001,0.002,0.0001", "0.0031", 3),
    ] {
        let want: String = text_rows(
            &client,
            &format!("SELECT avg(x)::text FROM unnest(ARRAY[{values}]::numeric[]) x"),
        )
        .await[0][0]
            .as_ref()
            .map(|b| String::from_utf8(b.clone()).expect("utf8"))
            .expect("avg");
        let got = pgfleet_merge::numeric::Numeric::parse(sum)
            .expect("sum")
            .div_count(count)
            .to_text();
        assert_eq!(got, want, "avg of {values}");
    }
}
