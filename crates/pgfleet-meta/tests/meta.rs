//! The metadata store against a real PostgreSQL: schema migrations (idempotent, concurrent,
//! refusing a newer schema), the tenant directory with NOTIFY, the ledger, primary discovery.
//! One cluster for the whole file; each test works in a database of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pgfleet_config::{Config, TenancyConfig, TenantModel};
use pgfleet_meta::{
    find_primary, Endpoint, LedgerEntry, Login, MetaError, MetaStore, NewTenant, TenantChanges,
    TenantState, SCHEMA_VERSION,
};
use pgfleet_testkit::{Cluster, ClusterOptions, SharedCluster};

static CLUSTER: SharedCluster = SharedCluster::new(ClusterOptions::default);

/// The shared cluster and a fresh database in it.
fn fresh_db() -> (Arc<Cluster>, String) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let cluster = CLUSTER.get().expect("start cluster");
    let db = format!(
        "meta_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    cluster.psql(&format!("CREATE DATABASE {db}")).unwrap();
    (cluster, db)
}

fn login(db: &str) -> Login {
    Login {
        user: "postgres".into(),
        password: None,
        database: db.into(),
        application_name: "pgfleet-meta-test".into(),
        connect_timeout: Duration::from_secs(10),
    }
}

fn endpoint(c: &Cluster) -> Endpoint {
    Endpoint {
        host: c.host().into(),
        port: c.port(),
    }
}

async fn store(c: &Cluster, db: &str) -> MetaStore {
    MetaStore::connect_to(&endpoint(c), &login(db))
        .await
        .unwrap()
}

#[tokio::test]
async fn schema_is_created_once_even_by_concurrent_instances() {
    let (c, db) = fresh_db();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (e, l) = (endpoint(&c), login(&db));
        tasks.push(tokio::spawn(async move {
            MetaStore::connect_to(&e, &l).await.map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let rows = c
        .psql_db(
            &db,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM pgfleet.meta_migrations",
        )
        .unwrap();
    let expected: Vec<String> = (1..=SCHEMA_VERSION).map(|v| v.to_string()).collect();
    assert_eq!(rows, expected.join(","));
    // Connecting again applies nothing.
    let mut s = store(&c, &db).await;
    assert_eq!(s.upgrade().await.unwrap(), Vec::<i32>::new());
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let (c, db) = fresh_db();
    drop(store(&c, &db).await);
    c.psql_db(
        &db,
        "INSERT INTO pgfleet.meta_migrations (version, name) VALUES (999, 'from the future')",
    )
    .unwrap();
    match MetaStore::connect_to(&endpoint(&c), &login(&db)).await {
        Err(MetaError::SchemaTooNew { found: 999, known }) => assert_eq!(known, SCHEMA_VERSION),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

#[tokio::test]
async fn tenant_directory_crud() {
    let (c, db) = fresh_db();
    let s = store(&c, &db).await;
    let schema = TenancyConfig::with_model(TenantModel::Schema);
    let acme = s
        .create_tenant(&NewTenant::from_config("app", "acme", &schema, None))
        .await
        .unwrap();
    assert_eq!(acme.schema_name.as_deref(), Some("tenant_acme"));
    assert_eq!(
        (acme.state, acme.shard, acme.database_name.clone()),
        (TenantState::Active, None, None)
    );
    let per_db = TenancyConfig::with_model(TenantModel::Database);
    let globex = s
        .create_tenant(&NewTenant::from_config("app", "globex", &per_db, Some(2)))
        .await
        .unwrap();
    assert_eq!(globex.database_name.as_deref(), Some("tenant_globex"));
    assert_eq!(globex.shard, Some(2));
    // The same name in another pgfleet database is another tenant.
    s.create_tenant(&NewTenant::from_config("other", "acme", &schema, None))
        .await
        .unwrap();

    match s
        .create_tenant(&NewTenant::from_config("app", "acme", &schema, None))
        .await
    {
        Err(MetaError::TenantExists { database, tenant }) => {
            assert_eq!((database.as_str(), tenant.as_str()), ("app", "acme"))
        }
        other => panic!("duplicate accepted: {other:?}"),
    }
    let bad = s
        .create_tenant(&NewTenant::from_config("app", "Bad-Name", &schema, None))
        .await;
    assert!(
        matches!(bad, Err(MetaError::Invalid(ref m)) if m.contains("invalid tenant name `Bad-Name`")),
        "{bad:?}"
    );

    let names: Vec<String> = s
        .tenants("app")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["acme", "globex"]);
    assert_eq!(s.tenant("app", "acme").await.unwrap(), Some(acme.clone()));
    assert_eq!(s.tenant("app", "nobody").await.unwrap(), None);

    let suspended = s
        .set_tenant_state("app", "acme", TenantState::Suspended)
        .await
        .unwrap();
    assert_eq!(suspended.state, TenantState::Suspended);
    assert!(suspended.updated_at >= acme.updated_at);
    assert_eq!(suspended.created_at, acme.created_at);
    let moved = s.set_tenant_shard("app", "globex", Some(5)).await.unwrap();
    assert_eq!(moved.shard, Some(5));
    let missing = s
        .set_tenant_state("app", "nobody", TenantState::Active)
        .await;
    assert!(
        matches!(missing, Err(MetaError::TenantNotFound { .. })),
        "{missing:?}"
    );
    assert!(missing
        .unwrap_err()
        .to_string()
        .contains("tenant `nobody` is not in the tenant directory of database `app`"));

    assert!(s.drop_tenant("app", "acme").await.unwrap());
    assert!(!s.drop_tenant("app", "acme").await.unwrap());
    assert_eq!(s.tenants("app").await.unwrap().len(), 1);
    assert_eq!(s.tenants("other").await.unwrap().len(), 1);

    // The database itself refuses rows that break the rules, even when written by hand.
    let err = c.psql_db(
        &db,
        "INSERT INTO pgfleet.tenants (database, name, model) VALUES ('app', 'x', 'schema')",
    );
    assert!(
        err.is_err(),
        "schema model without a schema name was accepted"
    );
}

#[tokio::test]
async fn every_change_is_announced_with_the_tenant_name() {
    let (c, db) = fresh_db();
    let s = store(&c, &db).await;
    let mut changes = TenantChanges::listen(&endpoint(&c), &login(&db))
        .await
        .unwrap();
    let t = TenancyConfig::with_model(TenantModel::Row);
    s.create_tenant(&NewTenant::from_config("app", "acme", &t, None))
        .await
        .unwrap();
    s.set_tenant_state("app", "acme", TenantState::Moving)
        .await
        .unwrap();
    s.create_tenant(&NewTenant::from_config("app", "globex", &t, None))
        .await
        .unwrap();
    s.drop_tenant("app", "acme").await.unwrap();
    // A change by hand is announced too (the trigger, not the Rust code, sends it).
    c.psql_db(
        &db,
        "UPDATE pgfleet.tenants SET state = 'suspended' WHERE name = 'globex'",
    )
    .unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        let name = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .expect("a notification within 5 s")
            .expect("listener alive");
        got.push(name);
    }
    assert_eq!(got, ["acme", "acme", "globex", "acme", "globex"]);
}

#[tokio::test]
async fn ledger_round_trip() {
    let (c, db) = fresh_db();
    let s = store(&c, &db).await;
    assert_eq!(s.ledger_entry("app", "tenant").await.unwrap(), None);
    let mut e = LedgerEntry {
        database: "app".into(),
        target_kind: "tenant".into(),
        version: 3,
        migrations_digest: "m1".into(),
        targets_digest: "t1".into(),
        targets: 200,
        updated_at: None,
    };
    s.put_ledger_entry(&e).await.unwrap();
    e.version = 4;
    e.migrations_digest = "m2".into();
    s.put_ledger_entry(&e).await.unwrap();
    let got = s.ledger_entry("app", "tenant").await.unwrap().unwrap();
    assert_eq!(
        (got.version, got.migrations_digest.as_str(), got.targets),
        (4, "m2", 200)
    );
    assert!(got.updated_at.is_some());
    assert_eq!(s.ledger_entry("app", "shared").await.unwrap(), None);
    s.clear_ledger_entry("app", "tenant").await.unwrap();
    assert_eq!(s.ledger_entry("app", "tenant").await.unwrap(), None);
}

#[tokio::test]
async fn connect_finds_the_primary_from_the_config() {
    let (c, db) = fresh_db();
    let replica = c.replica().unwrap();
    // A replica listed first with role auto, then the primary with role auto: asked, not trusted.
    let text = format!(
        r#"
[clusters.meta]
servers = [{{ host = "127.0.0.1", port = {r} }}, {{ host = "127.0.0.1", port = {p} }}]
[metadata]
cluster = "meta"
database = "{db}"
"#,
        r = replica.port(),
        p = c.port()
    );
    let config = Config::from_toml_str(&text).unwrap();
    let s = MetaStore::connect(&config, "pgfleet-meta-test")
        .await
        .unwrap();
    assert_eq!(s.endpoint().map(|e| e.port), Some(c.port()));
    // Only the replica: a clear error naming it.
    let only_replica = text.replace(
        &format!(", {{ host = \"127.0.0.1\", port = {} }}", c.port()),
        "",
    );
    let config = Config::from_toml_str(&only_replica).unwrap();
    let cluster = &config.clusters["meta"];
    let err = match find_primary("meta", cluster, &login(&db)).await {
        Ok(_) => panic!("a replica was taken for the primary"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(
        text.contains("cluster `meta` has no reachable primary") && text.contains("is in recovery"),
        "{text}"
    );
    // No metadata configured.
    let none = Config::from_toml_str("").unwrap();
    assert!(matches!(
        MetaStore::connect(&none, "x").await,
        Err(MetaError::NotConfigured)
    ));
}
