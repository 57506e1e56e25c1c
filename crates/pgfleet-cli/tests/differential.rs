//! Differential test of sharding (issue 4): one generated dataset loaded whole into a plain
//! PostgreSQL and split over 3 shards behind pgfleet; every generated query runs through both,
//! in the simple and the extended protocol, and pgfleet must give the plain server's answer —
//! the same RowDescription (names, and type OIDs in the extended protocol) and the same rows (as
//! lists where ORDER BY fixes the order, else as multisets) — or refuse with SQLSTATE 0A000.
//! Anything else (another answer, another error) fails, printing the seed, the query and both
//! results.
//!
//! The generator is seeded: [`SEED`], or `PGFLEET_DIFF_SEED` (decimal or `0x…`) to try others.
//! Dataset: `differential/data.rs`; queries: `differential/queries.rs` (building blocks) and
//! `differential/shapes.rs` (the shapes of each category); comparison: `differential/compare.rs`.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "differential/compare.rs"]
mod compare;
#[path = "differential/data.rs"]
mod data;
#[path = "differential/queries.rs"]
mod queries;
#[path = "differential/sql.rs"]
mod sql;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use compare::Outcome;
use pgfleet_catalog::{Catalog, ShardKeyValue};
use pgfleet_config::Config;
use pgfleet_testkit::Cluster;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sql::{Category, Query};

/// The generator's seed unless `PGFLEET_DIFF_SEED` is set.
const SEED: u64 = 0x5EED_0004;

/// The fraction of (query, protocol) runs pgfleet must answer rather than refuse with 0A000.
/// With cross-shard execution every category but the non-co-located joins and the constructs the
/// merge refuses is answered: about 94 % of runs with the default seed (seeds 1–3 alike). A
/// regression that starts refusing what used to work fails here even when nothing is wrong.
const MIN_ANSWERED: f64 = 0.90;

const SHARDS: usize = 3;
/// How long pgfleet may take for one query before the test calls it hung.
const QUERY_TIMEOUT: Duration = Duration::from_secs(20);

fn seed() -> u64 {
    match std::env::var("PGFLEET_DIFF_SEED") {
        Err(_) => SEED,
        Ok(s) => {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            }
            .unwrap_or_else(|e| panic!("PGFLEET_DIFF_SEED={s}: {e}"))
        }
    }
}

fn config(shards: &[Cluster]) -> String {
    let clusters: String = shards
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "[clusters.shard{i}]\nservers = [{{ host = \"127.0.0.1\", port = {}, role = \"primary\" }}]\n",
                c.port()
            )
        })
        .collect();
    let names: Vec<String> = (0..shards.len()).map(|i| format!("\"shard{i}\"")).collect();
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
shutdown_timeout = "2s"

[pool]
pool_size = 4

{clusters}
[databases.app]
shards = [{names}]
reference_tables = ["countries"]

[databases.app.sharded_tables.customers]
column = "id"
type = "bigint"

[databases.app.sharded_tables.orders]
column = "customer_id"
type = "bigint"

[databases.app.sharded_tables.events]
column = "customer_id"
type = "bigint"

[databases.app.sharded_tables.products]
column = "id"
type = "bigint"

[users.app]
password = "app"
"#,
        names = names.join(", ")
    )
}

/// Creates the schema on `plain` and every shard, loads all rows into `plain` and each row into
/// the shard pgfleet's own shard map names (reference tables: every shard).
async fn load(data: &data::Dataset, plain: &Cluster, shards: &[Cluster], config: &str) {
    let config = Config::from_toml_str(config).unwrap();
    let catalog = Catalog::from_config(&config).unwrap();
    let topology = catalog.database("app").unwrap();

    let mut scripts: Vec<Vec<String>> = vec![vec![data::SCHEMA.to_owned()]; SHARDS + 1];
    for t in &data.tables {
        let mut per_target: Vec<Vec<String>> = vec![Vec::new(); SHARDS + 1];
        for row in &t.rows {
            let values = format!(
                "({})",
                row.iter()
                    .map(data::Lit::sql)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            per_target[SHARDS].push(values.clone());
            match t.key {
                None => (0..SHARDS).for_each(|s| per_target[s].push(values.clone())),
                Some(k) => {
                    let data::Lit::Int(key) = row[k] else {
                        panic!("{}: key {:?} is not an integer", t.name, row[k])
                    };
                    let shard = topology
                        .shard_for(t.name, &ShardKeyValue::Int(key))
                        .unwrap();
                    per_target[shard].push(values);
                }
            }
        }
        for (target, rows) in per_target.into_iter().enumerate() {
            if t.key.is_some() && target < SHARDS {
                assert!(!rows.is_empty(), "shard {target} got no rows of {}", t.name);
            }
            for chunk in rows.chunks(500) {
                scripts[target].push(format!(
                    "INSERT INTO {} ({}) VALUES {};",
                    t.name,
                    t.columns.join(", "),
                    chunk.join(", ")
                ));
            }
        }
    }
    let targets: Vec<&Cluster> = shards.iter().chain(std::iter::once(plain)).collect();
    for (c, script) in targets.into_iter().zip(scripts) {
        let client = try_connect(&c.config_string("postgres", "app"))
            .await
            .unwrap();
        client
            .batch_execute(&script.join("\n"))
            .await
            .unwrap_or_else(|e| panic!("loading port {}: {e:?}", c.port()));
        client.batch_execute("ANALYZE").await.unwrap();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Simple,
    Extended,
}

/// Counts per category and protocol (index 0 simple, 1 extended).
#[derive(Default)]
struct Tally {
    queries: usize,
    identical: [usize; 2],
    refused: [usize; 2],
    failed: [usize; 2],
}

async fn run(client: &tokio_postgres::Client, q: &Query, p: Protocol) -> Outcome {
    match p {
        Protocol::Simple => compare::simple(client, &q.simple_text()).await,
        Protocol::Extended => {
            let (text, params) = q.extended();
            compare::extended(client, &text, &params).await
        }
    }
}

/// The query as sent in protocol `p`, for reports.
fn shown(q: &Query, p: Protocol) -> String {
    match p {
        Protocol::Simple => q.simple_text(),
        Protocol::Extended => {
            let (text, params) = q.extended();
            if params.is_empty() {
                text
            } else {
                format!("{text}\n    parameters: {params:?}")
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgfleet_answers_like_one_postgres() {
    let started = Instant::now();
    let seed = seed();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = data::generate(&mut rng);
    let queries = queries::generate(&data, &mut rng);
    assert!(queries.len() >= 500, "{} queries", queries.len());

    let mut clusters: Vec<Cluster> = std::thread::scope(|s| {
        let starting: Vec<_> = (0..=SHARDS).map(|_| s.spawn(app_cluster)).collect();
        starting.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let plain = clusters.pop().unwrap();
    let shards = clusters;
    let config = config(&shards);
    load(&data, &plain, &shards, &config).await;
    let loaded = started.elapsed();

    let proxy = TestProxy::start(&config).await;
    let mut fleet = proxy.connect().await;
    let one = try_connect(&format!(
        "host=127.0.0.1 port={} user=app password=app dbname=app",
        plain.port()
    ))
    .await
    .unwrap();

    let mut tally: BTreeMap<Category, Tally> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    // Runs whose correct answer has rows (a generator that only finds empty results tests little).
    let mut with_rows = 0usize;
    for (n, q) in queries.iter().enumerate() {
        let t = tally.entry(q.category).or_default();
        t.queries += 1;
        for (pi, p) in [Protocol::Simple, Protocol::Extended]
            .into_iter()
            .enumerate()
        {
            let expected = run(&one, q, p).await;
            if matches!(&expected, Outcome::Rows { rows, .. } if !rows.is_empty()) {
                with_rows += 1;
            }
            let got = match tokio::time::timeout(QUERY_TIMEOUT, run(&fleet, q, p)).await {
                Ok(o) => o,
                Err(_) => {
                    // The connection's state is unknown after a hang: start a new one.
                    fleet = proxy.connect().await;
                    Outcome::Error {
                        code: "(timeout)".into(),
                        message: format!("no answer within {QUERY_TIMEOUT:?}"),
                    }
                }
            };
            let verdict = match (&expected, &got) {
                (Outcome::Error { .. }, _) => {
                    Err("plain PostgreSQL failed: the generator made a bad query".to_owned())
                }
                (_, Outcome::Error { code, .. }) if code == "0A000" => {
                    if q.single_shard {
                        Err("refused, but one shard answers it".to_owned())
                    } else {
                        t.refused[pi] += 1;
                        Ok(())
                    }
                }
                (_, Outcome::Error { .. }) => {
                    Err("pgfleet failed with another SQLSTATE than 0A000".to_owned())
                }
                (
                    Outcome::Rows {
                        columns: c1,
                        rows: r1,
                    },
                    Outcome::Rows {
                        columns: c2,
                        rows: r2,
                    },
                ) => compare::compare(q, (c1, r1), (c2, r2)).map(|()| t.identical[pi] += 1),
            };
            if let Err(why) = verdict {
                t.failed[pi] += 1;
                failures.push(format!(
                    "query #{n} ({}, {p:?} protocol, seed {seed:#x}): {why}\n    {}\n  plain PostgreSQL: {}\n  pgfleet:          {}",
                    q.category.name(),
                    shown(q, p),
                    expected.show(15),
                    got.show(15)
                ));
            }
        }
    }
    proxy.stop().await;

    let runs = 2 * queries.len();
    let identical: usize = tally
        .values()
        .map(|t| t.identical.iter().sum::<usize>())
        .sum();
    let refused: usize = tally
        .values()
        .map(|t| t.refused.iter().sum::<usize>())
        .sum();
    println!(
        "\ndifferential test, seed {seed:#x}: {} queries × 2 protocols (data loaded in {:.1?}, all done in {:.1?})",
        queries.len(),
        loaded,
        started.elapsed()
    );
    println!(
        "{:<26} {:>7} {:>17} {:>17} {:>13}",
        "category", "queries", "identical (s/x)", "refused (s/x)", "failed (s/x)"
    );
    for (cat, t) in &tally {
        println!(
            "{:<26} {:>7} {:>8}/{:<8} {:>8}/{:<8} {:>6}/{:<6}",
            cat.name(),
            t.queries,
            t.identical[0],
            t.identical[1],
            t.refused[0],
            t.refused[1],
            t.failed[0],
            t.failed[1]
        );
    }
    let answered = identical as f64 / runs as f64;
    println!(
        "answered identically: {identical} of {runs} runs ({:.1} %), refused with 0A000: {refused}, failed: {}",
        answered * 100.0,
        failures.len()
    );
    println!(
        "runs with rows in the answer: {with_rows} of {runs}; queries one shard answers (must not be refused): {}",
        queries.iter().filter(|q| q.single_shard).count()
    );
    for f in &failures {
        println!("\n{f}");
    }
    assert!(
        failures.is_empty(),
        "{} runs where pgfleet did not give plain PostgreSQL's answer or 0A000 (seed {seed:#x}); see above",
        failures.len()
    );
    assert!(
        answered >= MIN_ANSWERED,
        "pgfleet answered {:.1} % of runs, less than MIN_ANSWERED = {:.1} % (seed {seed:#x})",
        answered * 100.0,
        MIN_ANSWERED * 100.0
    );
}
