//! Scale measurements (ignored by default; run with
//! `cargo test -p pgfleet-migrate --release --test scale -- --ignored --nocapture`):
//! a small migration applied to 1,000 tenant schemas with 4 jobs, then `up` with nothing pending
//! over 10,000 tenant schemas, with the fleet ledger and visiting every target.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use pgfleet_config::Config;
use pgfleet_meta::{Login, MetaStore};
use pgfleet_migrate::{
    exec::no_events, Command, Fleet, MigrationSet, Outcome, RunOptions, Selection,
};
use pgfleet_testkit::{Cluster, ClusterOptions};

const UP: Command = Command::Up {
    to: None,
    out_of_order: false,
};

async fn setup(c: &Cluster, tenants: usize) -> (Config, tempfile::TempDir) {
    c.psql("CREATE DATABASE app").unwrap();
    c.psql("CREATE DATABASE pgfleet_meta").unwrap();
    let config = Config::from_toml_str(&format!(
        "[clusters.main]\nservers = [{{ host = \"127.0.0.1\", port = {}, role = \"primary\" }}]\n\
         [metadata]\ncluster = \"main\"\n[databases.app]\ncluster = \"main\"\n\
         [databases.app.tenancy]\nmodel = \"schema\"\n",
        c.port()
    ))
    .unwrap();
    drop(MetaStore::connect(&config, "bench").await.unwrap());
    c.psql_db(
        "pgfleet_meta",
        &format!(
            "INSERT INTO pgfleet.tenants (database, name, model, schema_name) \
             SELECT 'app', 't' || g, 'schema', 'tenant_t' || g FROM generate_series(1, {tenants}) g"
        ),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tenant")).unwrap();
    std::fs::write(
        dir.path().join("tenant/V0001__notes.sql"),
        "CREATE TABLE notes (id bigint PRIMARY KEY, body text);\n",
    )
    .unwrap();
    (config, dir)
}

fn opts(jobs: usize) -> RunOptions {
    let mut o = RunOptions::new(Login {
        user: "postgres".into(),
        password: None,
        database: "postgres".into(),
        application_name: "bench".into(),
        connect_timeout: Duration::from_secs(10),
    });
    o.jobs = jobs;
    o
}

async fn timed_up(config: &Config, dir: &std::path::Path, jobs: usize) -> (Duration, usize, usize) {
    let started = Instant::now();
    let fleet = Fleet::open(
        config,
        MigrationSet::load(dir).unwrap(),
        "app",
        Selection::default(),
    )
    .await
    .unwrap();
    let report = fleet.run(UP, false, &opts(jobs), no_events()).await;
    assert!(report.is_success());
    let applied = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Applied { .. }))
        .count();
    let skipped = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Skipped { .. }))
        .count();
    (started.elapsed(), applied, skipped)
}

#[tokio::test]
#[ignore = "measurement; run explicitly"]
async fn apply_to_1000_schemas_with_4_jobs() {
    let c =
        Cluster::start_with(ClusterOptions::default().setting("max_locks_per_transaction", "256"))
            .unwrap();
    let (config, dir) = setup(&c, 1000).await;
    let (took, applied, _) = timed_up(&config, dir.path(), 4).await;
    assert_eq!(applied, 1000);
    println!("apply one migration to 1,000 tenant schemas, --jobs 4: {took:?}");
}

#[tokio::test]
#[ignore = "measurement; run explicitly"]
async fn nothing_pending_over_10000_schemas() {
    let c =
        Cluster::start_with(ClusterOptions::default().setting("max_locks_per_transaction", "256"))
            .unwrap();
    let (config, dir) = setup(&c, 10_000).await;
    let (took, applied, _) = timed_up(&config, dir.path(), 4).await;
    assert_eq!(applied, 10_000);
    println!("apply one migration to 10,000 tenant schemas, --jobs 4: {took:?}");
    let (took, _, skipped) = timed_up(&config, dir.path(), 4).await;
    assert_eq!(skipped, 10_001);
    println!("up with nothing pending, 10,000 schemas, fleet ledger: {took:?}");
    c.psql_db("pgfleet_meta", "DELETE FROM pgfleet.migration_ledger")
        .unwrap();
    let (took, applied, skipped) = timed_up(&config, dir.path(), 4).await;
    assert_eq!((applied, skipped), (0, 0));
    println!("up with nothing pending, 10,000 schemas, visiting each (no ledger): {took:?}");
}
