//! A sharded database: shared migrations on every shard, tenant schemas on the shard the
//! tenant directory places them on. Three real clusters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use pgfleet_config::Config;
use pgfleet_meta::{Login, MetaStore, NewTenant};
use pgfleet_migrate::{
    exec::no_events, Command, Fleet, MigrationSet, Outcome, RunOptions, Selection,
};
use pgfleet_testkit::Cluster;

#[tokio::test]
async fn three_shards_and_tenants_placed_on_them() {
    let starts: Vec<_> = (0..3).map(|_| std::thread::spawn(Cluster::start)).collect();
    let shards: Vec<Cluster> = starts
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    for c in &shards {
        c.psql("CREATE DATABASE app").unwrap();
    }
    shards[0].psql("CREATE DATABASE pgfleet_meta").unwrap();
    let text = format!(
        r#"
[clusters.shard0]
servers = [{{ host = "127.0.0.1", port = {}, role = "primary" }}]
[clusters.shard1]
servers = [{{ host = "127.0.0.1", port = {}, role = "primary" }}]
[clusters.shard2]
servers = [{{ host = "127.0.0.1", port = {}, role = "primary" }}]
[metadata]
cluster = "shard0"
[databases.app]
shards = ["shard0", "shard1", "shard2"]
[databases.app.sharded_tables.customers]
column = "id"
type = "bigint"
[databases.app.tenancy]
model = "schema"
"#,
        shards[0].port(),
        shards[1].port(),
        shards[2].port()
    );
    let config = match Config::from_toml_str(&text) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("shared")).unwrap();
    std::fs::create_dir_all(dir.path().join("tenant")).unwrap();
    std::fs::write(
        dir.path().join("shared/V0001__customers.sql"),
        "CREATE TABLE customers (id bigint PRIMARY KEY);\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tenant/V0002__notes.sql"),
        "CREATE TABLE notes (id bigint PRIMARY KEY);\n",
    )
    .unwrap();

    let meta = MetaStore::connect(&config, "test").await.unwrap();
    let tenancy = config.databases["app"].tenancy.clone().unwrap();
    for i in 0..60 {
        let t = NewTenant::from_config("app", &format!("t{i:02}"), &tenancy, Some(i % 3));
        meta.create_tenant(&t).await.unwrap();
    }
    let mut opts = RunOptions::new(Login {
        user: "postgres".into(),
        password: None,
        database: "postgres".into(),
        application_name: "test".into(),
        connect_timeout: Duration::from_secs(10),
    });
    opts.jobs = 2;
    let set = MigrationSet::load(dir.path()).unwrap();
    let fleet = Fleet::open(&config, set, "app", Selection::default())
        .await
        .unwrap();
    let names: Vec<String> = fleet.targets().take(4).map(|t| t.name()).collect();
    assert_eq!(
        names,
        [
            "app/shared#0",
            "app/shared#1",
            "app/shared#2",
            "app/tenant:t00#0"
        ]
    );
    let report = fleet
        .run(
            Command::Up {
                to: None,
                out_of_order: false,
            },
            false,
            &opts,
            no_events(),
        )
        .await;
    assert!(
        report.is_success(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    assert_eq!(
        report
            .results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Applied { .. }))
            .count(),
        63
    );
    for (i, c) in shards.iter().enumerate() {
        assert_eq!(
            c.psql_db(
                "app",
                "SELECT count(*) FROM pg_tables WHERE tablename = 'customers'"
            )
            .unwrap(),
            "1",
            "shard {i}"
        );
        let schemas = c
            .psql_db(
                "app",
                "SELECT count(*) FROM pg_tables WHERE tablename = 'notes'",
            )
            .unwrap();
        assert_eq!(schemas, "20", "shard {i} holds its 20 tenants");
        let t = format!("t{i:02}");
        assert_eq!(
            c.psql_db(
                "app",
                &format!("SELECT count(*) FROM tenant_{t}.pgfleet_schema_history")
            )
            .unwrap(),
            "1",
            "tenant {t} is on shard {i}"
        );
    }

    // A tenant without a shard in a sharded database is an error naming it.
    meta.set_tenant_shard("app", "t05", None).await.unwrap();
    let set = MigrationSet::load(dir.path()).unwrap();
    let err = Fleet::open(&config, set, "app", Selection::default())
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("tenant `t05` has no shard in the tenant directory")),
        "{err:?}"
    );
    meta.set_tenant_shard("app", "t05", Some(7)).await.unwrap();
    let set = MigrationSet::load(dir.path()).unwrap();
    let err = Fleet::open(&config, set, "app", Selection::default())
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e
                .contains("tenant `t05` is placed on shard 7, but database `app` has 3 shard(s)")),
        "{err:?}"
    );
}
