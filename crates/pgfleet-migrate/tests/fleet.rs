//! pgfleet migrate against a real PostgreSQL: 200 tenant schemas, a failure in one tenant then
//! resumed, two runners at once, drift and repair, CRLF, down migrations, CREATE INDEX
//! CONCURRENTLY, lock-timeout retries, tenant databases, the fleet ledger and
//! bring_tenant_to_current. One cluster for the file; each test has its own databases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgfleet_config::{Config, TenancyConfig, TenantModel};
use pgfleet_meta::{Login, MetaStore, NewTenant, TenantState};
use pgfleet_migrate::{
    bring_tenant_to_current, exec::no_events, Command, Event, EventSink, Fleet, FleetReport,
    MigrationSet, Outcome, RunOptions, Selection,
};
use pgfleet_testkit::{Cluster, ClusterOptions, SharedCluster};

static CLUSTER: SharedCluster = SharedCluster::new(ClusterOptions::default);

const UP: Command = Command::Up {
    to: None,
    out_of_order: false,
};

/// One test's world: an app database and a metadata database in the shared cluster, a
/// migrations directory, and the config naming them.
struct World {
    cluster: Arc<Cluster>,
    app: String,
    config: Config,
    dir: tempfile::TempDir,
}

impl World {
    fn new(model: &str) -> World {
        static N: AtomicUsize = AtomicUsize::new(0);
        let cluster = CLUSTER.get().expect("start cluster");
        let n = N.fetch_add(1, Ordering::Relaxed);
        let app = format!("app_{}_{n}", std::process::id());
        let meta = format!("meta_{}_{n}", std::process::id());
        cluster.psql(&format!("CREATE DATABASE {app}")).unwrap();
        cluster.psql(&format!("CREATE DATABASE {meta}")).unwrap();
        let text = format!(
            r#"
[clusters.main]
servers = [{{ host = "127.0.0.1", port = {port}, role = "primary" }}]
[metadata]
cluster = "main"
database = "{meta}"
[databases.{app}]
cluster = "main"
[databases.{app}.tenancy]
model = "{model}"
"#,
            port = cluster.port()
        );
        let config = Config::from_toml_str(&text).unwrap();
        World {
            cluster,
            app,
            config,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn set(&self) -> MigrationSet {
        MigrationSet::load(self.dir.path()).unwrap()
    }

    fn sql(&self, sql: &str) -> String {
        self.cluster.psql_db(&self.app, sql).unwrap()
    }

    async fn meta(&self) -> MetaStore {
        MetaStore::connect(&self.config, "test").await.unwrap()
    }

    /// Adds tenants t000..t{n-1} to the directory.
    async fn add_tenants(&self, names: impl IntoIterator<Item = String>) {
        let meta = self.meta().await;
        let tenancy = self.config.databases[&self.app].tenancy.clone().unwrap();
        for name in names {
            meta.create_tenant(&NewTenant::from_config(&self.app, &name, &tenancy, None))
                .await
                .unwrap();
        }
    }

    async fn fleet(&self) -> Fleet {
        Fleet::open(&self.config, self.set(), &self.app, Selection::default())
            .await
            .unwrap()
    }

    async fn run(&self, command: Command, opts: &RunOptions) -> FleetReport {
        self.fleet()
            .await
            .run(command, false, opts, no_events())
            .await
    }
}

fn tenants(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("t{i:03}")).collect()
}

fn opts() -> RunOptions {
    let mut o = RunOptions::new(Login {
        user: "postgres".into(),
        password: None,
        database: "postgres".into(),
        application_name: "pgfleet-migrate-test".into(),
        connect_timeout: Duration::from_secs(10),
    });
    o.lock_wait = Duration::from_secs(20);
    o
}

fn count(report: &FleetReport, pred: impl Fn(&Outcome) -> bool) -> usize {
    report.results.iter().filter(|r| pred(&r.outcome)).count()
}

fn failures(report: &FleetReport) -> Vec<(String, String)> {
    report
        .failures()
        .map(|r| match &r.outcome {
            Outcome::Failed { error, .. } => (r.target.name(), error.clone()),
            _ => unreachable!(),
        })
        .collect()
}

/// A recorder of events, to look at notes.
fn recorder() -> (EventSink, Arc<Mutex<Vec<Event>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink_log = log.clone();
    (Arc::new(move |e| sink_log.lock().unwrap().push(e)), log)
}

#[tokio::test]
async fn two_hundred_tenant_schemas_and_the_shared_target() {
    let w = World::new("schema");
    w.write(
        "shared/V0001__plans.sql",
        "CREATE TABLE plans (id bigint PRIMARY KEY, name text);\n",
    );
    w.write(
        "tenant/V0002__notes.sql",
        "CREATE TABLE notes (id bigint PRIMARY KEY, body text);\n",
    );
    w.write(
        "tenant/V0003__notes_body.sql",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS notes_body ON notes (body);\n",
    );
    w.add_tenants(tenants(200)).await;

    let started = Instant::now();
    let report = w.run(UP, &opts()).await;
    let first = started.elapsed();
    assert!(report.is_success(), "{:?}", failures(&report));
    assert_eq!(
        count(&report, |o| matches!(o, Outcome::Applied { .. })),
        201
    );
    assert_eq!(w.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'notes' AND schemaname LIKE 'tenant_t%'"), "200");
    assert_eq!(
        w.sql("SELECT count(*) FROM pg_indexes WHERE indexname = 'notes_body'"),
        "200"
    );
    assert_eq!(w.sql("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'notes_body' AND i.indisvalid"), "200");
    // Shared migrations stay out of tenant schemas and vice versa.
    assert_eq!(
        w.sql("SELECT string_agg(schemaname, ',') FROM pg_tables WHERE tablename = 'plans'"),
        "public"
    );
    assert_eq!(
        w.sql("SELECT version || ':' || transactional FROM pgfleet.schema_history"),
        "1:true"
    );
    assert_eq!(
        w.sql("SELECT string_agg(version || ':' || transactional, ',' ORDER BY version) FROM tenant_t123.pgfleet_schema_history"),
        "2:true,3:false"
    );

    // Nothing pending: the fleet ledger lets the run skip every target without visiting it.
    let started = Instant::now();
    let again = w.run(UP, &opts()).await;
    let skipped = started.elapsed();
    assert_eq!(
        count(&again, |o| matches!(o, Outcome::Skipped { .. })),
        201,
        "{again:?}"
    );
    assert!(
        again
            .notes
            .iter()
            .any(|n| n.contains("200 tenant target(s)") && n.contains("fleet ledger")),
        "{:?}",
        again.notes
    );

    // Status visits each one and reports them all current, compactly.
    let fleet = w.fleet().await;
    let status = fleet.status(&opts(), no_events()).await;
    let text = pgfleet_migrate::report::status_text(&status, fleet.migrations(), false);
    assert!(
        text.contains("tenant: 200 target(s); 200 at V0003 (newest)"),
        "{text}"
    );
    assert!(
        text.contains("shared: 1 target(s); 1 at V0001 (newest)"),
        "{text}"
    );

    // A new tenant changes the target list: the next run visits everyone and migrates it.
    w.add_tenants(["late".to_string()]).await;
    let report = w.run(UP, &opts()).await;
    assert_eq!(count(&report, |o| matches!(o, Outcome::Applied { .. })), 1);
    assert_eq!(
        count(&report, |o| matches!(o, Outcome::UpToDate)),
        200,
        "shared target skipped by the ledger"
    );
    assert_eq!(count(&report, |o| matches!(o, Outcome::Skipped { .. })), 1);
    println!(
        "200 tenant schemas + shared: first up {first:?}, nothing pending (ledger) {skipped:?}"
    );
}

#[tokio::test]
async fn a_failure_in_one_tenant_stops_new_work_then_a_rerun_resumes() {
    let w = World::new("schema");
    w.write(
        "tenant/V0001__notes.sql",
        "CREATE TABLE notes (id bigint PRIMARY KEY);\nINSERT INTO notes VALUES (1);\n",
    );
    w.add_tenants(tenants(30)).await;
    // Tenant t010 already has an incompatible table: the migration fails there only.
    w.sql("CREATE SCHEMA tenant_t010; CREATE TABLE tenant_t010.notes (id text);");
    let mut o = opts();
    o.jobs = 1;
    let report = w.run(UP, &o).await;
    let failed = failures(&report);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, format!("{}/tenant:t010", w.app));
    assert!(
        failed[0].1.contains("V0001__notes.sql")
            && failed[0].1.contains("relation \"notes\" already exists"),
        "{}",
        failed[0].1
    );
    assert_eq!(count(&report, |o| matches!(o, Outcome::Applied { .. })), 10);
    assert_eq!(count(&report, |o| matches!(o, Outcome::NotStarted)), 19);
    let text = pgfleet_migrate::report::run_text(&report, false);
    assert!(
        text.contains("failed on 1 target(s)")
            && text.contains("tenant `t010` (schema tenant_t010"),
        "{text}"
    );
    assert!(!report.is_success());
    // The failing tenant's transaction rolled back: no history row, the old table untouched.
    assert_eq!(w.sql("SELECT to_regclass('tenant_t010.pgfleet_schema_history') IS NULL OR NOT EXISTS (SELECT FROM tenant_t010.pgfleet_schema_history)"), "t");

    // With --continue-on-error every other tenant is migrated, the failure still reported.
    o.continue_on_error = true;
    let report = w.run(UP, &o).await;
    assert_eq!(failures(&report).len(), 1);
    assert_eq!(count(&report, |o| matches!(o, Outcome::Applied { .. })), 19);
    assert_eq!(count(&report, |o| matches!(o, Outcome::UpToDate)), 10);

    // Fixed, rerun: only the failed tenant has work left.
    w.sql("DROP TABLE tenant_t010.notes;");
    o.continue_on_error = false;
    let report = w.run(UP, &o).await;
    assert!(report.is_success(), "{:?}", failures(&report));
    assert_eq!(count(&report, |o| matches!(o, Outcome::Applied { .. })), 1);
    assert_eq!(w.sql("SELECT count(*) FROM tenant_t010.notes"), "1");
}

#[tokio::test]
async fn two_runners_at_once_apply_each_migration_once() {
    let w = World::new("schema");
    w.sql("CREATE TABLE public.applied_log (schema text)");
    w.write(
        "tenant/V0001__slow.sql",
        "SELECT pg_sleep(0.02);\nINSERT INTO public.applied_log SELECT current_schema();\nCREATE TABLE notes (id int);\n",
    );
    w.add_tenants(tenants(40)).await;
    let (a, b) = (w.fleet().await, w.fleet().await);
    let o = opts();
    let (ra, rb) = tokio::join!(
        a.run(UP, false, &o, no_events()),
        b.run(UP, false, &o, no_events())
    );
    assert!(
        ra.is_success() && rb.is_success(),
        "{:?} {:?}",
        failures(&ra),
        failures(&rb)
    );
    let applied = |r: &FleetReport| count(r, |o| matches!(o, Outcome::Applied { .. }));
    assert_eq!(
        applied(&ra) + applied(&rb),
        40,
        "each tenant migrated by exactly one runner"
    );
    assert_eq!(
        w.sql("SELECT count(*), count(DISTINCT schema) FROM public.applied_log"),
        "40|40"
    );

    // A runner that cannot get a target's lock in time says who holds it.
    w.write("tenant/V0002__more.sql", "CREATE TABLE more (id int);\n");
    let holder = w.cluster.url("postgres", None, &w.app);
    let (client, conn) = tokio_postgres::connect(&holder, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .execute("SET application_name = 'the-other-runner'", &[])
        .await
        .unwrap();
    client
        .execute(
            "SELECT pg_advisory_lock(1885826409, hashtext('pgfleet-migrate:schema:tenant_t005'))",
            &[],
        )
        .await
        .unwrap();
    let mut o = opts();
    o.lock_wait = Duration::from_millis(300);
    o.continue_on_error = true;
    let report = w.run(UP, &o).await;
    let failed = failures(&report);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].0.ends_with("tenant:t005"));
    assert!(
        failed[0]
            .1
            .contains("another pgfleet migrate is migrating this target (held by pid")
            && failed[0].1.contains("the-other-runner"),
        "{}",
        failed[0].1
    );
}

#[tokio::test]
async fn checksum_drift_is_refused_until_repaired_and_crlf_changes_nothing() {
    let w = World::new("schema");
    w.write(
        "tenant/V0001__notes.sql",
        "CREATE TABLE notes (id int);\nCREATE TABLE tags (id int);\n",
    );
    w.add_tenants(tenants(3)).await;
    assert!(w.run(UP, &opts()).await.is_success());

    // A CRLF checkout with trailing spaces: same checksum, nothing to do, no drift.
    w.write(
        "tenant/V0001__notes.sql",
        "CREATE TABLE notes (id int);  \r\nCREATE TABLE tags (id int);\r\n\r\n",
    );
    let report = w.run(UP, &opts()).await;
    assert!(report.is_success(), "{:?}", failures(&report));
    assert_eq!(
        count(&report, |o| matches!(
            o,
            Outcome::UpToDate | Outcome::Skipped { .. }
        )),
        4
    );
    w.write("tenant/V0002__more.sql", "CREATE TABLE more (id int);\r\n");
    assert!(w.run(UP, &opts()).await.is_success());

    // An edit after applying: every tenant refuses, naming file, target and both checksums.
    let old = w.set().get(1).unwrap().up.checksum.clone();
    w.write(
        "tenant/V0001__notes.sql",
        "CREATE TABLE notes (id bigint);\nCREATE TABLE tags (id int);\n",
    );
    let new = w.set().get(1).unwrap().up.checksum.clone();
    let mut o = opts();
    o.continue_on_error = true;
    let report = w.run(UP, &o).await;
    let failed = failures(&report);
    assert_eq!(failed.len(), 3);
    assert!(failed[0].1.contains(&format!("V0001__notes.sql changed after it was applied: applied checksum {old}, file checksum {new}")), "{}", failed[0].1);
    let text = pgfleet_migrate::report::run_text(&report, false);
    assert!(text.contains("tenant `t000` (schema tenant_t000"), "{text}");

    let report = w.run(Command::Repair, &opts()).await;
    assert!(report.is_success(), "{:?}", failures(&report));
    assert_eq!(
        count(
            &report,
            |o| matches!(o, Outcome::Applied { steps } if steps == &["repair checksum of V0001__notes"])
        ),
        3
    );
    assert_eq!(
        w.sql("SELECT checksum FROM tenant_t001.pgfleet_schema_history WHERE version = 1"),
        new
    );
    let report = w.run(UP, &opts()).await;
    assert!(report.is_success());
    assert_eq!(count(&report, |o| matches!(o, Outcome::UpToDate)), 4);
}

#[tokio::test]
async fn down_migrations_revert_newest_first() {
    let w = World::new("schema");
    w.write("tenant/V0001__notes.sql", "CREATE TABLE notes (id int);\n");
    w.write("tenant/V0001__notes.down.sql", "DROP TABLE notes;\n");
    w.write("tenant/V0002__tags.sql", "CREATE TABLE tags (id int);\n");
    w.write("tenant/V0002__tags.down.sql", "DROP TABLE tags;\n");
    w.write(
        "tenant/V0003__idx.sql",
        "CREATE INDEX CONCURRENTLY tags_id ON tags (id);\n",
    );
    w.write(
        "tenant/V0003__idx.down.sql",
        "DROP INDEX CONCURRENTLY tags_id;\n",
    );
    w.add_tenants(tenants(4)).await;
    assert!(w.run(UP, &opts()).await.is_success());
    let versions = || {
        w.sql("SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') FROM tenant_t002.pgfleet_schema_history")
    };
    assert_eq!(versions(), "1,2,3");

    let report = w.run(Command::Down { to: None }, &opts()).await;
    assert!(report.is_success(), "{:?}", failures(&report));
    assert_eq!(versions(), "1,2");
    assert_eq!(
        w.sql("SELECT count(*) FROM pg_indexes WHERE indexname = 'tags_id'"),
        "0"
    );

    let report = w.run(Command::Down { to: Some(0) }, &opts()).await;
    assert!(report.is_success(), "{:?}", failures(&report));
    assert_eq!(versions(), "");
    assert_eq!(
        w.sql("SELECT count(*) FROM pg_tables WHERE tablename IN ('notes', 'tags')"),
        "0"
    );

    // Up again, then a migration without a down script cannot be reverted.
    w.write("tenant/V0004__nodown.sql", "CREATE TABLE x (id int);\n");
    assert!(w.run(UP, &opts()).await.is_success());
    let report = w.run(Command::Down { to: None }, &opts()).await;
    let failed = failures(&report);
    assert!(
        !failed.is_empty() && failed[0].1.contains("V0004__nodown has no down script"),
        "{failed:?}"
    );
}

#[tokio::test]
async fn concurrent_index_runs_outside_a_transaction_with_a_note() {
    let w = World::new("schema");
    w.write("shared/V0001__t.sql", "CREATE TABLE t (id int, v text);\nINSERT INTO t SELECT g, g::text FROM generate_series(1, 1000) g;\n");
    w.write(
        "shared/V0002__t_v.sql",
        "CREATE INDEX CONCURRENTLY t_v ON t (v);\n",
    );
    let (events, log) = recorder();
    let fleet = Fleet::open(&w.config, w.set(), &w.app, Selection::default())
        .await
        .unwrap();
    let report = fleet.run(UP, false, &opts(), events).await;
    assert!(report.is_success(), "{:?}", failures(&report));
    assert_eq!(w.sql("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 't_v'"), "t");
    assert_eq!(
        w.sql("SELECT transactional FROM pgfleet.schema_history WHERE version = 2"),
        "f"
    );
    let notes: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Note { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert!(
        notes.iter().any(|n| n.contains(
            "V0002__t_v.sql: runs outside a transaction (CREATE INDEX CONCURRENTLY at line 1)"
        )),
        "{notes:?}"
    );
    // The plan says so too.
    w.write(
        "shared/V0003__t_v2.sql",
        "CREATE INDEX CONCURRENTLY t_v2 ON t (v, id);\n",
    );
    let fleet = Fleet::open(&w.config, w.set(), &w.app, Selection::default())
        .await
        .unwrap();
    let plan = fleet.run(UP, true, &opts(), no_events()).await;
    let text = pgfleet_migrate::report::run_text(&plan, false);
    assert!(text.contains("would run on 1 target(s): apply V0003__t_v2 (outside a transaction: CREATE INDEX CONCURRENTLY)"), "{text}");
    assert_eq!(
        w.sql("SELECT count(*) FROM pgfleet.schema_history"),
        "2",
        "a dry run changes nothing"
    );
}

#[tokio::test]
async fn lock_timeouts_are_retried_with_backoff() {
    let w = World::new("schema");
    w.write("shared/V0001__t.sql", "CREATE TABLE t (id int);\n");
    assert!(w.run(UP, &opts()).await.is_success());
    w.write(
        "shared/V0002__alter.sql",
        "ALTER TABLE t ADD COLUMN v text;\n",
    );
    // Another session holds a lock on t for a while.
    let (client, conn) = tokio_postgres::connect(
        &w.cluster.url("postgres", None, &w.app),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE;")
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        client.batch_execute("COMMIT").await.unwrap();
    });
    let mut o = opts();
    o.lock_timeout = Duration::from_millis(100);
    o.retry_backoff = Duration::from_millis(100);
    o.lock_retries = 6;
    let (events, log) = recorder();
    let fleet = w.fleet().await;
    let report = fleet.run(UP, false, &o, events).await;
    release.await.unwrap();
    assert!(report.is_success(), "{:?}", failures(&report));
    let retries = log
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Note { message, .. } if message.contains("lock timeout")))
        .count();
    assert!(retries >= 1, "expected at least one retry note");

    // Without retries the lock timeout is the error, with its SQLSTATE.
    w.write(
        "shared/V0003__alter2.sql",
        "ALTER TABLE t ADD COLUMN w text;\n",
    );
    let (client, conn) = tokio_postgres::connect(
        &w.cluster.url("postgres", None, &w.app),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE;")
        .await
        .unwrap();
    o.lock_retries = 0;
    let report = w.run(UP, &o).await;
    let failed = failures(&report);
    assert!(
        failed.len() == 1 && failed[0].1.contains("SQLSTATE 55P03"),
        "{failed:?}"
    );
    client.batch_execute("COMMIT").await.unwrap();
}

#[tokio::test]
async fn tenant_databases_and_bring_tenant_to_current() {
    let w = World::new("database");
    w.write(
        "tenant/V0001__notes.sql",
        "CREATE TABLE notes (id bigint PRIMARY KEY, body text);\n",
    );
    w.write(
        "tenant/V0002__seed.sql",
        "INSERT INTO notes VALUES (1, 'hello');\n",
    );
    let names: Vec<String> = (0..3).map(|i| format!("{}_d{i}", w.app)).collect();
    for n in &names {
        w.cluster
            .psql(&format!("CREATE DATABASE tenant_{n}"))
            .unwrap();
    }
    w.add_tenants(names.clone()).await;
    let report = w.run(UP, &opts()).await;
    assert!(report.is_success(), "{:?}", failures(&report));
    assert_eq!(
        count(&report, |o| matches!(o, Outcome::Applied { .. })),
        3,
        "3 tenant databases"
    );
    assert_eq!(
        count(&report, |o| matches!(o, Outcome::UpToDate)),
        1,
        "the shared target has no migrations"
    );
    for n in &names {
        assert_eq!(
            w.cluster
                .psql_db(&format!("tenant_{n}"), "SELECT body FROM notes")
                .unwrap(),
            "hello"
        );
    }

    // A tenant created later, brought to the current version on its own.
    let late = format!("{}_late", w.app);
    w.cluster
        .psql(&format!("CREATE DATABASE tenant_{late}"))
        .unwrap();
    let meta = w.meta().await;
    let tenancy = TenancyConfig::with_model(TenantModel::Database);
    let tenant = meta
        .create_tenant(&NewTenant::from_config(&w.app, &late, &tenancy, None))
        .await
        .unwrap();
    let result = bring_tenant_to_current(&w.config, w.set(), &tenant, &opts())
        .await
        .unwrap();
    assert!(
        matches!(&result.outcome, Outcome::Applied { steps } if steps.len() == 2),
        "{:?}",
        result.outcome
    );
    assert_eq!(
        w.cluster
            .psql_db(
                &format!("tenant_{late}"),
                "SELECT count(*) FROM pgfleet.schema_history"
            )
            .unwrap(),
        "2"
    );

    // A tenant being moved is skipped (and named); a tenant on a shard of an unsharded
    // database is an error naming it.
    meta.set_tenant_state(&w.app, &names[0], TenantState::Moving)
        .await
        .unwrap();
    w.write(
        "tenant/V0003__more.sql",
        "ALTER TABLE notes ADD COLUMN tag text;\n",
    );
    let report = w.run(UP, &opts()).await;
    assert_eq!(
        count(
            &report,
            |o| matches!(o, Outcome::Skipped { reason } if reason.contains("being moved"))
        ),
        1
    );
    assert!(report.is_success(), "{:?}", failures(&report));
    assert_eq!(
        count(&report, |o| matches!(o, Outcome::Applied { .. })),
        3,
        "two others and the late one"
    );
    meta.set_tenant_shard(&w.app, &names[1], Some(3))
        .await
        .unwrap();
    let err = Fleet::open(&w.config, w.set(), &w.app, Selection::default())
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e
            .contains(&format!("tenant `{}` is placed on shard 3", names[1]))
            && e.contains("has no shards in the config")),
        "{err:?}"
    );
}

#[tokio::test]
async fn selection_by_tenant_and_the_tenancy_needs_metadata() {
    let w = World::new("schema");
    w.write("tenant/V0001__notes.sql", "CREATE TABLE notes (id int);\n");
    w.add_tenants(tenants(5)).await;
    let sel = Selection {
        kinds: Vec::new(),
        tenants: vec!["t003".into()],
    };
    let fleet = Fleet::open(&w.config, w.set(), &w.app, sel).await.unwrap();
    let report = fleet.run(UP, false, &opts(), no_events()).await;
    let names: Vec<String> = report.results.iter().map(|r| r.target.name()).collect();
    assert_eq!(names, [format!("{}/tenant:t003", w.app)]);
    assert_eq!(
        w.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'notes'"),
        "1"
    );
    let bad = Selection {
        kinds: Vec::new(),
        tenants: vec!["nobody".into()],
    };
    let err = Fleet::open(&w.config, w.set(), &w.app, bad)
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("tenant `nobody` is not in the tenant directory")),
        "{err:?}"
    );

    let mut no_meta = w.config.clone();
    no_meta.metadata = None;
    let err = Fleet::open(&no_meta, w.set(), &w.app, Selection::default())
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("has tenancy but the config has no [metadata] table")),
        "{err:?}"
    );
}

#[tokio::test]
async fn session_state_of_a_migration_does_not_follow_the_connection_to_the_next_target() {
    let w = World::new("schema");
    w.sql("CREATE ROLE migrate_leak_probe");
    // A temporary table and a role switch would break the next tenant on a reused connection
    // (relation "scratch" already exists / permission denied) unless the session is reset.
    w.write(
        "tenant/V0001__scratch.sql",
        "CREATE TEMP TABLE scratch AS SELECT 1 AS one;\nCREATE TABLE notes (id int);\nSET ROLE migrate_leak_probe;\n",
    );
    w.add_tenants(tenants(4)).await;
    let mut o = opts();
    o.jobs = 1;
    let report = w.run(UP, &o).await;
    assert!(report.is_success(), "{:?}", failures(&report));
    assert_eq!(count(&report, |o| matches!(o, Outcome::Applied { .. })), 4);
}
