//! Tenancy through the proxy against real PostgreSQL: identification (user name suffix, startup
//! parameter, SET, binding, required, unknown tenant, tenant_switch = deny, admin roles), the
//! isolation attack suite of the schema and row models (schema-qualified names, SET search_path,
//! RESET ALL, DISCARD ALL, SET ROLE, set_config, RESET of the tenant setting, multi-statement
//! strings, statements prepared before a tenant switch, COPY, functions, a server connection
//! another tenant used a moment ago with pool_size 1), 20 tenants interleaved at random over 3
//! server connections, suspension seen by a connected session, the per-tenant connection cap and
//! SHOW TENANTS. Tenants are made with `pgfleet tenant create`; one cluster for the file, each test
//! has its own role, databases and metadata database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{message, scrape_metrics, sqlstate, try_connect, TestProxy};
use pgfleet_testkit::{Cluster, ClusterOptions, SharedCluster};
use rand::{Rng, SeedableRng};
use tokio_postgres::{Client, SimpleQueryMessage};

static CLUSTER: SharedCluster = SharedCluster::new(ClusterOptions::default);

/// One test's world: a role and server database, a metadata database, a config, pgfleet.
struct World {
    cluster: Arc<Cluster>,
    role: String,
    db: String,
    dir: tempfile::TempDir,
    proxy: Option<TestProxy>,
}

impl World {
    /// `tenancy` lines go after `[databases.app.tenancy]` (`{id}` stands for the world's id),
    /// `pool` lines into `[pool]`.
    async fn new(tenancy: &str, pool: &str) -> World {
        World::with_proxy(tenancy, pool, "").await
    }

    /// As [`World::new`], with `proxy` lines added to `[proxy]`.
    async fn with_proxy(tenancy: &str, pool: &str, proxy: &str) -> World {
        static N: AtomicUsize = AtomicUsize::new(0);
        let cluster = CLUSTER.get().expect("start cluster");
        let id = format!(
            "{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let role = format!("tapp_{id}");
        let db = format!("tapp_{id}");
        cluster
            .psql(&format!("CREATE ROLE {role} LOGIN PASSWORD 'pw'"))
            .unwrap();
        cluster
            .psql(&format!("CREATE DATABASE {db} OWNER {role}"))
            .unwrap();
        cluster
            .psql(&format!("CREATE DATABASE tmeta_{id}"))
            .unwrap();
        let tenancy = tenancy.replace("{id}", &id);
        let config = format!(
            r#"
[proxy]
listen = "127.0.0.1:0"
shutdown_timeout = "2s"
{proxy}
[pool]
{pool}
[clusters.main]
servers = [{{ host = "127.0.0.1", port = {port}, role = "primary" }}]
[metadata]
cluster = "main"
database = "tmeta_{id}"
[databases.app]
cluster = "main"
server_database = "{db}"
[databases.app.tenancy]
{tenancy}
[users.{role}]
password = "pw"
[users.bound]
password = "pw"
server_user = "{role}"
server_password = "pw"
tenant = "globex"
[users.ops]
password = "pw"
server_user = "{role}"
server_password = "pw"
[users.admin]
password = "admin"
admin = true
"#,
            port = cluster.port(),
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pgfleet.toml"), &config).unwrap();
        let proxy = TestProxy::start(&config).await;
        World {
            cluster,
            role,
            db,
            dir,
            proxy: Some(proxy),
        }
    }

    fn proxy(&self) -> &TestProxy {
        self.proxy.as_ref().unwrap()
    }

    /// `pgfleet tenant ARGS` (logging in as the application role), which must succeed.
    fn tenant(&self, args: &[&str]) {
        let output = Command::new(env!("CARGO_BIN_EXE_pgfleet"))
            .current_dir(self.dir.path())
            .arg("tenant")
            .args(["--user", &self.role])
            .args(args)
            .env_remove("PGPASSWORD")
            .output()
            .expect("run pgfleet");
        assert!(
            output.status.success(),
            "pgfleet tenant {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// SQL as the superuser in the server database.
    fn sql(&self, sql: &str) {
        self.cluster.psql_db(&self.db, sql).unwrap();
    }

    async fn connect(&self, user: &str, extra: &str) -> Client {
        let s = format!("{} {extra}", self.proxy().conn_str(user, "pw", "app"));
        try_connect(&s)
            .await
            .unwrap_or_else(|e| panic!("connect {user}: {e}"))
    }

    /// Connects as `ROLE.tenant`.
    async fn tenant_client(&self, tenant: &str) -> Client {
        self.connect(&format!("{}.{tenant}", self.role), "").await
    }

    /// Schema model: tenants with `notes(id, body)` rows `<tenant>-1`, `<tenant>-2`.
    fn schema_tenants(&self, tenants: &[&str]) {
        for t in tenants {
            self.tenant(&["create", t]);
            self.sql(&format!(
                "CREATE TABLE tenant_{t}.notes (id bigint PRIMARY KEY, body text);
                 ALTER TABLE tenant_{t}.notes OWNER TO {role};
                 INSERT INTO tenant_{t}.notes VALUES (1, '{t}-1'), (2, '{t}-2');",
                role = self.role
            ));
        }
    }

    /// Database model (template `tapp_{id}_{tenant}`): a database per tenant, made by the
    /// superuser and given to the role, with `notes(id, body)` rows `<tenant>-1`, `<tenant>-2`.
    fn database_tenants(&self, tenants: &[&str]) {
        for t in tenants {
            let output = Command::new(env!("CARGO_BIN_EXE_pgfleet"))
                .current_dir(self.dir.path())
                .args(["tenant", "--user", "postgres", "create", t, "--owner"])
                .arg(&self.role)
                .output()
                .expect("run pgfleet");
            assert!(
                output.status.success(),
                "pgfleet tenant create {t}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            self.cluster
                .psql_db(
                    &format!("{}_{t}", self.db),
                    &format!(
                        "CREATE TABLE notes (id bigint PRIMARY KEY, body text);
                         ALTER TABLE notes OWNER TO {role};
                         INSERT INTO notes VALUES (1, '{t}-1'), (2, '{t}-2');",
                        role = self.role
                    ),
                )
                .unwrap();
        }
    }

    /// Row model: one shared `notes` under row-level security (owned by the superuser, so the
    /// application role is subject to it), rows `<tenant>-1`, `<tenant>-2` per tenant.
    fn row_tenants(&self, tenants: &[&str]) {
        self.sql(&format!(
            "CREATE TABLE notes (tenant_id text, id bigint, body text, PRIMARY KEY (tenant_id, id));
             ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
             ALTER TABLE notes FORCE ROW LEVEL SECURITY;
             CREATE POLICY pgfleet_tenant_isolation ON notes
               USING (tenant_id = current_setting('app.current_tenant', true))
               WITH CHECK (tenant_id = current_setting('app.current_tenant', true));
             GRANT ALL ON notes TO {role};",
            role = self.role
        ));
        for t in tenants {
            self.tenant(&["create", t]);
            self.sql(&format!(
                "INSERT INTO notes VALUES ('{t}', 1, '{t}-1'), ('{t}', 2, '{t}-2');"
            ));
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(p) = self.proxy.take() {
            p.rt.shutdown();
        }
    }
}

/// The `body` column of every row of a simple query's last result.
async fn bodies(c: &Client, sql: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = c.simple_query(sql).await?;
    Ok(rows
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.try_get("body").ok().flatten().map(str::to_owned),
            _ => None,
        })
        .collect())
}

/// A refusal by pgfleet: SQLSTATE 42501 with `needle` in the message.
async fn refused(c: &Client, sql: &str, needle: &str) {
    let e = c
        .simple_query(sql)
        .await
        .err()
        .unwrap_or_else(|| panic!("{sql}: expected a refusal"));
    assert_eq!(sqlstate(&e), "42501", "{sql}: {}", message(&e));
    assert!(message(&e).contains(needle), "{sql}: {}", message(&e));
}

/// Only `tenant`'s rows (possibly none).
fn only(tenant: &str, rows: &[String], sql: &str) {
    assert!(
        rows.iter().all(|b| b.starts_with(&format!("{tenant}-"))),
        "{sql}: rows of another tenant: {rows:?}"
    );
}

async fn own_rows(c: &Client, tenant: &str) {
    let rows = bodies(c, "SELECT body FROM notes ORDER BY id")
        .await
        .unwrap();
    assert_eq!(rows, vec![format!("{tenant}-1"), format!("{tenant}-2")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_model_attacks() {
    let w = World::new("model = \"schema\"", "pool_size = 1").await;
    w.schema_tenants(&["acme", "globex"]);
    let a = w.tenant_client("acme").await;
    let b = w.tenant_client("globex").await;
    own_rows(&a, "acme").await;
    own_rows(&b, "globex").await;

    for (sql, needle) in [
        ("SELECT body FROM tenant_globex.notes", "schema tenant_globex"),
        ("SELECT body FROM \"tenant_globex\".notes", "schema tenant_globex"),
        ("SELECT body FROM TENANT_GLOBEX.notes", "schema tenant_globex"),
        ("SELECT 'tenant_globex.notes'::regclass", "tenant_globex"),
        ("UPDATE tenant_globex.notes SET body = 'x'", "tenant_globex"),
        ("SET search_path = tenant_globex", "search_path"),
        ("SET LOCAL search_path = tenant_globex", "search_path"),
        ("SET SCHEMA 'tenant_globex'", "search_path"),
        ("RESET search_path", "search_path"),
        ("SELECT set_config('search_path', 'tenant_globex', false)", "search_path"),
        ("SELECT set_config('search' || '_path', 'tenant_globex', false)", "computed"),
        ("SET ROLE postgres", "role"),
        ("SET SESSION AUTHORIZATION postgres", "session_authorization"),
        ("SELECT 1; SELECT body FROM tenant_globex.notes", "tenant_globex"),
        ("SELECT 1; SET search_path = tenant_globex; SELECT body FROM notes", "search_path"),
        ("COPY tenant_globex.notes TO STDOUT", "tenant_globex"),
        ("COPY (SELECT * FROM tenant_globex.notes) TO STDOUT", "tenant_globex"),
        ("DO $$ BEGIN PERFORM * FROM tenant_globex.notes; END $$", "DO"),
        (
            "CREATE FUNCTION peek() RETURNS SETOF text LANGUAGE sql AS 'SELECT body FROM tenant_globex.notes'",
            "CREATE FUNCTION",
        ),
        (
            "SELECT query_to_xml('SELECT * FROM tenant_' || 'globex.notes', true, false, '')",
            "query_to_xml",
        ),
        ("SELECT * FROM pg_stats", "pg_stats"),
        // pg_settings' update rule calls set_config.
        (
            "BEGIN; UPDATE pg_settings SET setting = 'tenant_globex' WHERE name = 'search_path'; \
             SELECT body FROM notes; COMMIT",
            "update pg_settings",
        ),
        // What every tenant shares: the server role's objects and attributes.
        ("DROP OWNED BY CURRENT_USER", "DROP OWNED"),
        ("ALTER ROLE CURRENT_USER PASSWORD 'x'", "ROLE"),
        ("VACUUM FULL", "without a table list"),
        // The schema name spelled with Unicode escapes.
        (r#"DROP TABLE U&"tenant\005fglobex".notes"#, "schema tenant_globex"),
        (r#"SELECT U&"tenant\005fglobex".now()"#, "schema tenant_globex"),
        // A query given as text, its schema name split so no literal names it.
        (
            "SELECT word FROM ts_stat('SELECT to_tsvector(body) FROM tenant_' || 'globex.notes')",
            "ts_stat",
        ),
        // Another tenant's sequence under a computed name (setval could make its inserts fail).
        ("SELECT setval('tenant_' || 'globex.notes_seq', 1)", "computed sequence"),
        // Other tenants' server connections.
        (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
            "pg_terminate_backend",
        ),
        ("SELECT pg_cancel_backend(1)", "pg_cancel_backend"),
        // pgfleet's own two-phase commits (its decision log finishes them).
        ("ROLLBACK PREPARED 'pgfleet_1_1_1'", "prepared transaction 'pgfleet_1_1_1'"),
        ("COMMIT PREPARED 'pgfleet_1_1_1'", "prepared transaction 'pgfleet_1_1_1'"),
        ("BEGIN; PREPARE TRANSACTION 'pgfleet_9_9_9'", "prepared transaction 'pgfleet_9_9_9'"),
    ] {
        refused(&a, sql, needle).await;
        // The session carries on in its own context.
        own_rows(&a, "acme").await;
    }

    // RESET ALL / DISCARD ALL: the rest of that string runs without a tenant schema (not another
    // tenant's), and the context is back for the next transaction.
    // (DISCARD ALL cannot run inside the implicit transaction of a multi-statement string.)
    for reset in ["RESET ALL; SELECT body FROM notes", "DISCARD ALL"] {
        if let Ok(rows) = bodies(&a, reset).await {
            only("acme", &rows, reset);
        }
        own_rows(&a, "acme").await;
        let path = a.query_one("SHOW search_path", &[]).await.unwrap();
        assert_eq!(path.get::<_, String>(0), "tenant_acme, public");
    }

    // Extended protocol: a refused Parse, then the session is fine.
    let e = a
        .prepare("SELECT body FROM tenant_globex.notes")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    let st = a
        .prepare("SELECT body FROM notes WHERE id = $1")
        .await
        .unwrap();
    let row = a.query_one(&st, &[&1i64]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "acme-1");

    // COPY of its own table.
    let copied = copy_out(&a, "COPY notes TO STDOUT").await;
    assert!(copied.contains("acme-1") && !copied.contains("globex"));

    // A server connection the other tenant used a moment ago (pool_size 1): nothing leaks.
    for _ in 0..5 {
        own_rows(&b, "globex").await;
        let st = b
            .prepare("SELECT body FROM notes ORDER BY id")
            .await
            .unwrap();
        let rows = texts(&b, &st).await;
        only("globex", &rows, "prepared");
        // Same text prepared by acme: never globex's server-side statement.
        let st = a
            .prepare("SELECT body FROM notes ORDER BY id")
            .await
            .unwrap();
        let rows: Vec<String> = a
            .query(&st, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(rows, vec!["acme-1", "acme-2"]);
    }
    // pgfleet's own server-side statements by name from SQL: globex prepares a statement that
    // names its schema (its own, so allowed); on the shared server connection it is a statement
    // `pgfleet_N`, listed in pg_prepared_statements. acme may not run, replace or drop it (run
    // with acme's rights, it would read globex's rows).
    let st = b
        .prepare("SELECT body FROM tenant_globex.notes ORDER BY id")
        .await
        .unwrap();
    only(
        "globex",
        &texts(&b, &st).await,
        "globex's own qualified statement",
    );
    let names: Vec<String> = a
        .query("SELECT name FROM pg_prepared_statements", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("pgfleet_")),
        "acme sees the shared connection's statements: {names:?}"
    );
    for name in names.iter().filter(|n| n.starts_with("pgfleet_")) {
        for sql in [
            format!("EXECUTE {name}"),
            format!("EXECUTE \"{name}\""),
            format!("EXPLAIN EXECUTE {name}"),
            format!("CREATE TEMP TABLE stolen AS EXECUTE {name}"),
            format!("DEALLOCATE {name}"),
            format!("DEALLOCATE PREPARE {name}"),
            format!("PREPARE {name} AS SELECT body FROM notes"),
        ] {
            refused(&a, &sql, &format!("prepared statement {name}")).await;
            own_rows(&a, "acme").await;
        }
    }
    // globex's statement still works after those attempts.
    only("globex", &texts(&b, &st).await, "after the attempts");
    assert_eq!(
        w.proxy().rt.pools().list().len(),
        1,
        "one pool for every tenant"
    );
}

async fn copy_out(c: &Client, sql: &str) -> String {
    use futures::StreamExt;
    let stream = c.copy_out(sql).await.unwrap();
    futures::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_model_attacks() {
    let w = World::new("model = \"row\"", "pool_size = 1").await;
    w.row_tenants(&["acme", "globex"]);
    let a = w.tenant_client("acme").await;
    let b = w.tenant_client("globex").await;
    own_rows(&a, "acme").await;
    own_rows(&b, "globex").await;

    for (sql, needle) in [
        ("SET app.current_tenant = 'globex'", "app.current_tenant"),
        ("SET LOCAL app.current_tenant = 'globex'", "app.current_tenant"),
        ("RESET app.current_tenant", "reset app.current_tenant"),
        ("SET app.current_tenant TO DEFAULT", "app.current_tenant"),
        ("SELECT set_config('app.current_tenant', 'globex', false)", "app.current_tenant"),
        ("SELECT set_config('app.current_tenant', 'globex', true)", "app.current_tenant"),
        ("SELECT set_config('APP.CURRENT_TENANT', 'globex', false)", "app.current_tenant"),
        ("SET ROLE postgres", "role"),
        ("SELECT 1; SET app.current_tenant = 'globex'; SELECT body FROM notes", "app.current_tenant"),
        ("DO $$ BEGIN PERFORM set_config('app.current_tenant', 'globex', false); END $$", "DO"),
        (
            "CREATE FUNCTION become() RETURNS text LANGUAGE sql AS $$ SELECT set_config('app.current_tenant', 'globex', false) $$",
            "CREATE FUNCTION",
        ),
        ("SELECT * FROM pg_stats WHERE tablename = 'notes'", "pg_stats"),
        (
            "BEGIN; UPDATE pg_settings SET setting = 'globex' WHERE name = 'app.current_tenant'; \
             SELECT body FROM notes; COMMIT",
            "update pg_settings",
        ),
        // Row-level security does not restrict TRUNCATE: it would empty every tenant's rows.
        ("TRUNCATE notes", "TRUNCATE"),
        ("DROP POLICY IF EXISTS anything ON notes", "DROP POLICY"),
    ] {
        refused(&a, sql, needle).await;
        own_rows(&a, "acme").await;
    }

    // Row-level security does the rest: other tenants' rows are invisible and cannot be written.
    let rows = bodies(&a, "SELECT body FROM notes WHERE tenant_id = 'globex'")
        .await
        .unwrap();
    assert!(rows.is_empty());
    let updated = a
        .execute(
            "UPDATE notes SET body = 'x' WHERE tenant_id = 'globex'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(updated, 0);
    let e = a
        .execute("INSERT INTO notes VALUES ('globex', 9, 'globex-9')", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "WITH CHECK: {}", message(&e));
    let copied = copy_out(&a, "COPY notes TO STDOUT").await;
    assert!(copied.contains("acme-1") && !copied.contains("globex"));
    let copied = copy_out(&a, "COPY (SELECT * FROM notes) TO STDOUT").await;
    assert!(!copied.contains("globex"));

    // (DISCARD ALL cannot run inside the implicit transaction of a multi-statement string.)
    for reset in ["RESET ALL; SELECT body FROM notes", "DISCARD ALL"] {
        if let Ok(rows) = bodies(&a, reset).await {
            only("acme", &rows, reset);
        }
        own_rows(&a, "acme").await;
        let setting = a.query_one("SHOW app.current_tenant", &[]).await.unwrap();
        assert_eq!(setting.get::<_, String>(0), "acme");
    }

    // Explicit transactions and the server globex used a moment ago.
    for _ in 0..5 {
        let rows = bodies(&b, "BEGIN; SELECT body FROM notes; COMMIT")
            .await
            .unwrap();
        only("globex", &rows, "globex tx");
        own_rows(&a, "acme").await;
    }
    assert_eq!(
        b.query_one("SHOW app.current_tenant", &[])
            .await
            .unwrap()
            .get::<_, String>(0),
        "globex"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identification_switching_and_prepared_statements() {
    let w = World::new("model = \"row\"\nadmin_roles = [\"ops\"]", "pool_size = 2").await;
    w.row_tenants(&["acme", "globex"]);
    let role = w.role.clone();

    // Startup parameter, also through options.
    let c = w.connect(&role, "options='-c pgfleet.tenant=acme'").await;
    own_rows(&c, "acme").await;
    // The user name outranks SET.
    let c = w.tenant_client("acme").await;
    refused(
        &c,
        "SET pgfleet.tenant = 'globex'",
        "comes from the user name",
    )
    .await;
    own_rows(&c, "acme").await;
    // Binding.
    let c = w.connect("bound", "").await;
    own_rows(&c, "globex").await;

    // No tenant: a clear error at the first statement, not at login.
    let c = w.connect(&role, "").await;
    let e = c.simple_query("SELECT body FROM notes").await.unwrap_err();
    assert_eq!(sqlstate(&e), "28000");
    assert!(message(&e).contains("requires a tenant"), "{}", message(&e));
    // An admin role may run without one (row-level security shows it nothing).
    let ops = w.connect("ops", "").await;
    assert!(bodies(&ops, "SELECT body FROM notes")
        .await
        .unwrap()
        .is_empty());

    // Unknown tenant.
    let c = w.tenant_client("nosuch").await;
    let e = c.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "3D000");
    assert!(
        message(&e).contains("tenant `nosuch` does not exist"),
        "{}",
        message(&e)
    );

    // SET pgfleet.tenant switches (tenant_switch = allow); statements prepared before the switch
    // are gone rather than run in the new tenant's context.
    let c = w.connect(&role, "").await;
    c.simple_query("SET pgfleet.tenant = 'acme'").await.unwrap();
    let st = c
        .prepare("SELECT body FROM notes ORDER BY id")
        .await
        .unwrap();
    let rows: Vec<String> = c
        .query(&st, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, vec!["acme-1", "acme-2"]);
    c.simple_query("SET pgfleet.tenant = 'globex'")
        .await
        .unwrap();
    match c.query(&st, &[]).await {
        Ok(rows) => {
            let rows: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            only("globex", &rows, "prepared before the switch");
        }
        Err(e) => assert_eq!(sqlstate(&e), "26000", "{}", message(&e)),
    }
    own_rows(&c, "globex").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_switch_deny() {
    let w = World::new(
        "model = \"schema\"\ntenant_switch = \"deny\"",
        "pool_size = 2",
    )
    .await;
    w.schema_tenants(&["acme", "globex"]);
    let c = w.connect(&w.role, "").await;
    c.simple_query("SET pgfleet.tenant = 'acme'").await.unwrap();
    own_rows(&c, "acme").await;
    refused(&c, "SET pgfleet.tenant = 'globex'", "tenant_switch").await;
    refused(&c, "RESET pgfleet.tenant", "tenant_switch").await;
    own_rows(&c, "acme").await;
}

/// 20 tenants, one session each, interleaved at random (seeded) over 3 server connections in
/// transaction pooling; every read returns exactly that tenant's rows.
async fn interleave(w: &World, tenants: &[String]) {
    let mut clients = Vec::new();
    for t in tenants {
        clients.push(w.tenant_client(t).await);
    }
    let clients = Arc::new(clients);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for _round in 0..30 {
        let picks: Vec<usize> = (0..6).map(|_| rng.gen_range(0..tenants.len())).collect();
        let shapes: Vec<u8> = (0..6).map(|_| rng.gen_range(0..3)).collect();
        let tasks = picks.iter().zip(shapes).map(|(&i, shape)| {
            let clients = clients.clone();
            let tenant = tenants[i].clone();
            async move {
                let c = &clients[i];
                let rows = match shape {
                    0 => bodies(c, "SELECT body FROM notes ORDER BY id")
                        .await
                        .unwrap(),
                    1 => bodies(
                        c,
                        "BEGIN; SELECT pg_sleep(0.01); SELECT body FROM notes ORDER BY id; COMMIT",
                    )
                    .await
                    .unwrap(),
                    _ => c
                        .query("SELECT body FROM notes ORDER BY id", &[])
                        .await
                        .unwrap()
                        .iter()
                        .map(|r| r.get(0))
                        .collect(),
                };
                assert_eq!(rows, vec![format!("{tenant}-1"), format!("{tenant}-2")]);
            }
        });
        futures::future::join_all(tasks).await;
    }
    let open: usize = w
        .proxy()
        .rt
        .pools()
        .list()
        .iter()
        .map(|p| p.stats().open)
        .sum();
    assert!(open <= 3, "{open} server connections");
}

fn twenty() -> Vec<String> {
    (0..20).map(|i| format!("t{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_tenants_over_three_connections_row_model() {
    let w = World::new("model = \"row\"", "pool_size = 3").await;
    let tenants = twenty();
    let names: Vec<&str> = tenants.iter().map(String::as_str).collect();
    w.row_tenants(&names);
    interleave(&w, &tenants).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_tenants_over_three_connections_schema_model() {
    let w = World::new("model = \"schema\"", "pool_size = 3").await;
    let tenants = twenty();
    let names: Vec<&str> = tenants.iter().map(String::as_str).collect();
    w.schema_tenants(&names);
    interleave(&w, &tenants).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspension_reaches_connected_sessions() {
    let w = World::new("model = \"schema\"", "pool_size = 2").await;
    w.schema_tenants(&["acme", "globex"]);
    let a = w.tenant_client("acme").await;
    own_rows(&a, "acme").await;
    // Twice: the second read comes from the cache (the listener is up by now).
    tokio::time::sleep(Duration::from_millis(300)).await;
    own_rows(&a, "acme").await;
    w.tenant(&["suspend", "acme"]);
    let started = std::time::Instant::now();
    let e = loop {
        match a.simple_query("SELECT body FROM notes").await {
            Err(e) => break e,
            Ok(_) if started.elapsed() < Duration::from_secs(2) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Ok(_) => panic!("suspension not seen within 2s"),
        }
    };
    assert_eq!(sqlstate(&e), "57P03");
    assert!(
        message(&e).contains("tenant `acme` is suspended"),
        "{}",
        message(&e)
    );
    // A new session of the suspended tenant fails at its first statement; others carry on.
    let a2 = w.tenant_client("acme").await;
    let e = a2.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "57P03");
    own_rows(&w.tenant_client("globex").await, "globex").await;
    w.tenant(&["resume", "acme"]);
    let started = std::time::Instant::now();
    while a.simple_query("SELECT 1").await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "resume not seen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    own_rows(&a, "acme").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_per_tenant_and_show_tenants() {
    let w = World::new(
        "model = \"row\"\nmax_server_connections = 1\nstatement_timeout = \"5s\"",
        "pool_size = 3\ncheckout_timeout = \"300ms\"",
    )
    .await;
    w.row_tenants(&["acme", "globex"]);
    let a1 = w.tenant_client("acme").await;
    let a2 = w.tenant_client("acme").await;
    let b = w.tenant_client("globex").await;
    a1.simple_query("BEGIN; SELECT 1").await.unwrap();
    // acme holds its one connection: its second session waits, then gets a clear error.
    let e = a2.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "53300");
    assert!(message(&e).contains("tenant `acme`"), "{}", message(&e));
    // Another tenant is not affected.
    own_rows(&b, "globex").await;
    a1.simple_query("COMMIT").await.unwrap();
    own_rows(&a2, "acme").await;
    // The per-tenant statement_timeout is forced.
    let t = a2.query_one("SHOW statement_timeout", &[]).await.unwrap();
    assert_eq!(t.get::<_, String>(0), "5s");
    refused(&a2, "SET statement_timeout = 0", "statement_timeout").await;

    let admin = w.connect("admin", "dbname=pgfleet password=admin").await;
    let rows = admin.simple_query("SHOW TENANTS").await.unwrap();
    let rows: Vec<_> = rows
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((
                r.get("tenant").unwrap().to_owned(),
                r.get("statements").unwrap().parse::<u64>().unwrap(),
                r.get("errors").unwrap().parse::<u64>().unwrap(),
            )),
            _ => None,
        })
        .collect();
    let acme = rows
        .iter()
        .find(|r| r.0 == "acme")
        .expect("acme in SHOW TENANTS");
    assert!(acme.1 >= 4 && acme.2 >= 2, "{rows:?}");
    assert!(rows.iter().any(|r| r.0 == "globex"));
}

/// Session pooling keeps one server for the session: the context is entered again at every
/// transaction (a tenant switch, RESET ALL undoing it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_pooling_follows_the_tenant() {
    let w = World::new("model = \"row\"", "pool_size = 2\npool_mode = \"session\"").await;
    w.row_tenants(&["acme", "globex"]);
    let c = w.connect(&w.role, "").await;
    let e = c.simple_query("SELECT body FROM notes").await.unwrap_err();
    assert_eq!(sqlstate(&e), "28000");
    c.simple_query("SET pgfleet.tenant = 'acme'").await.unwrap();
    own_rows(&c, "acme").await;
    refused(
        &c,
        "SET app.current_tenant = 'globex'",
        "app.current_tenant",
    )
    .await;
    c.simple_query("RESET ALL").await.unwrap();
    // RESET ALL also reset pgfleet.tenant: back to no tenant.
    let e = c.simple_query("SELECT body FROM notes").await.unwrap_err();
    assert_eq!(sqlstate(&e), "28000");
    c.simple_query("SET pgfleet.tenant = 'globex'")
        .await
        .unwrap();
    own_rows(&c, "globex").await;
    let a = w.tenant_client("acme").await;
    own_rows(&a, "acme").await;
    a.simple_query("RESET ALL").await.unwrap();
    own_rows(&a, "acme").await;
    assert_eq!(
        a.query_one("SHOW app.current_tenant", &[])
            .await
            .unwrap()
            .get::<_, String>(0),
        "acme"
    );
}

/// A sharded database: each tenant's statements go to its shard (the directory's `shard`), and
/// shard settings and hints cannot send them elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_on_shards() {
    let shards: Vec<Cluster> = (0..2).map(|_| Cluster::start().unwrap()).collect();
    for s in &shards {
        s.psql("CREATE ROLE tapp LOGIN PASSWORD 'pw'").unwrap();
        s.psql("CREATE DATABASE tapp OWNER tapp").unwrap();
    }
    shards[0].psql("CREATE DATABASE tmeta").unwrap();
    let config = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
shutdown_timeout = "2s"
[clusters.shard0]
{s0}
[clusters.shard1]
{s1}
[metadata]
cluster = "shard0"
database = "tmeta"
[databases.app]
shards = ["shard0", "shard1"]
server_database = "tapp"
[databases.app.tenancy]
model = "schema"
[users.tapp]
password = "pw"
"#,
        s0 = common::shards::primary_servers(&shards[0]),
        s1 = common::shards::primary_servers(&shards[1]),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pgfleet.toml"), &config).unwrap();
    for (tenant, shard) in [("acme", "0"), ("globex", "1")] {
        let out = Command::new(env!("CARGO_BIN_EXE_pgfleet"))
            .current_dir(dir.path())
            .args([
                "tenant", "--user", "tapp", "create", tenant, "--shard", shard,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = &shards[shard.parse::<usize>().unwrap()];
        s.psql_db(
            "tapp",
            &format!(
                "CREATE TABLE tenant_{tenant}.notes (id bigint PRIMARY KEY, body text);
                 ALTER TABLE tenant_{tenant}.notes OWNER TO tapp;
                 INSERT INTO tenant_{tenant}.notes VALUES (1, '{tenant}-1'), (2, '{tenant}-2');"
            ),
        )
        .unwrap();
    }
    let proxy = TestProxy::start(&config).await;
    for tenant in ["acme", "globex", "acme", "globex"] {
        let c = try_connect(&proxy.conn_str(&format!("tapp.{tenant}"), "pw", "app"))
            .await
            .unwrap();
        own_rows(&c, tenant).await;
        refused(&c, "SET pgfleet.shard = 0", "pgfleet.shard").await;
        refused(
            &c,
            "/* pgfleet: shard=0 */ SELECT body FROM notes",
            "shard hint",
        )
        .await;
    }
    proxy.stop().await;
}

/// Database model: each tenant's sessions run in the tenant's own database (pools of their own);
/// another tenant's database cannot be named (PostgreSQL has no cross-database references);
/// switching tenants moves the session's next transaction; a session that keeps its server cannot
/// switch to another database; an admin without a tenant reaches the database's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_model_attacks() {
    let w = World::new(
        "model = \"database\"\ndatabase_template = \"tapp_{id}_{tenant}\"\nadmin_roles = [\"ops\"]",
        "pool_size = 1",
    )
    .await;
    w.database_tenants(&["acme", "globex"]);
    w.sql("CREATE TABLE notes (id bigint, body text); INSERT INTO notes VALUES (1, 'home-1');");
    w.sql(&format!("ALTER TABLE notes OWNER TO {}", w.role));
    let a = w.tenant_client("acme").await;
    let b = w.tenant_client("globex").await;
    // Interleaved over pool_size 1 per tenant database: never the other's rows.
    for _ in 0..5 {
        own_rows(&a, "acme").await;
        own_rows(&b, "globex").await;
    }
    let db: Vec<String> = a
        .simple_query("SELECT current_database() AS body")
        .await
        .unwrap()
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get("body").map(str::to_owned),
            _ => None,
        })
        .collect();
    assert_eq!(db, vec![format!("{}_acme", w.db)]);
    // Another tenant's database by name: PostgreSQL refuses cross-database references.
    let e = a
        .simple_query(&format!("SELECT body FROM {}_globex.public.notes", w.db))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000", "{}", message(&e));
    // Writes stay in the tenant's database.
    a.simple_query("INSERT INTO notes VALUES (3, 'acme-3')")
        .await
        .unwrap();
    assert_eq!(
        w.cluster
            .psql_db(&format!("{}_globex", w.db), "SELECT count(*) FROM notes")
            .unwrap(),
        "2"
    );
    a.simple_query("DELETE FROM notes WHERE id = 3")
        .await
        .unwrap();

    // SET pgfleet.tenant moves the next transaction to the other tenant's database; prepared
    // statements of the previous tenant are gone.
    let c = w.connect(&w.role, "").await;
    c.simple_query("SET pgfleet.tenant = 'acme'").await.unwrap();
    own_rows(&c, "acme").await;
    let st = c
        .prepare("SELECT body FROM notes ORDER BY id")
        .await
        .unwrap();
    c.simple_query("SET pgfleet.tenant = 'globex'")
        .await
        .unwrap();
    own_rows(&c, "globex").await;
    match c.query(&st, &[]).await {
        Ok(rows) => {
            let rows: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            only("globex", &rows, "prepared before the switch");
        }
        Err(e) => assert_eq!(sqlstate(&e), "26000", "{}", message(&e)),
    }
    // A pinned session (LISTEN keeps its server) cannot switch to another database.
    c.simple_query("LISTEN pgfleet_test").await.unwrap();
    // (Refused at the SET itself or at the next statement, depending on when the session
    // enters its tenant again.)
    let e = match c.simple_query("SET pgfleet.tenant = 'acme'").await {
        Err(e) => e,
        Ok(_) => c.simple_query("SELECT body FROM notes").await.unwrap_err(),
    };
    assert_eq!(sqlstate(&e), "0A000", "{}", message(&e));
    assert!(
        message(&e).contains("cannot switch this session to tenant `acme`"),
        "{}",
        message(&e)
    );
    c.simple_query("SET pgfleet.tenant = 'globex'")
        .await
        .unwrap();
    own_rows(&c, "globex").await;
    // (The pinned session held globex's only server connection.)
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // An admin role without a tenant reaches the database's own server database.
    let ops = w.connect("ops", "").await;
    assert_eq!(
        bodies(&ops, "SELECT body FROM notes").await.unwrap(),
        vec!["home-1".to_owned()]
    );
    // Suspension reaches the tenant's sessions.
    w.tenant(&["suspend", "acme"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let e = a.simple_query("SELECT body FROM notes").await.unwrap_err();
    assert_eq!(sqlstate(&e), "57P03", "{}", message(&e));
    own_rows(&b, "globex").await;
}

/// The samples of one family in database `app`: (tenant label, value), in the endpoint's order.
fn tenant_samples(text: &str, family: &str) -> Vec<(String, f64)> {
    let prefix = format!("{family}{{database=\"app\",tenant=\"");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| {
            let (tenant, value) = rest.split_once("\"} ").unwrap();
            (tenant.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// Per-tenant Prometheus metrics: the `proxy.metrics_top_tenants` busiest tenants by name, the
/// rest summed into `tenant="_other"`, agreeing with SHOW TENANTS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_per_tenant_top_n_and_other() {
    let w = World::with_proxy(
        "model = \"row\"",
        "pool_size = 3",
        "metrics_top_tenants = 2",
    )
    .await;
    let tenants = ["acme", "globex", "initech", "hooli", "umbrella"];
    w.row_tenants(&tenants);
    // Before any tenant session: the families are announced, without samples.
    let text = scrape_metrics(w.proxy()).await;
    assert!(
        text.contains("# TYPE pgfleet_tenant_statements_total counter"),
        "{text}"
    );
    assert!(tenant_samples(&text, "pgfleet_tenant_statements_total").is_empty());
    // acme 6 statements, globex 5, initech 3, hooli 2, umbrella 1.
    for (tenant, n) in tenants.iter().zip([6, 5, 3, 2, 1]) {
        let c = w.tenant_client(tenant).await;
        for _ in 0..n {
            own_rows(&c, tenant).await;
        }
    }
    // A statement of hooli refused by pgfleet (before the server sees it): an error.
    let h = w.tenant_client("hooli").await;
    refused(&h, "SET ROLE postgres", "role").await;

    let text = scrape_metrics(w.proxy()).await;
    let statements = tenant_samples(&text, "pgfleet_tenant_statements_total");
    let names: Vec<&str> = statements.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(names, ["acme", "globex", "_other"], "{text}");
    // _other: initech 3 + hooli 2 + umbrella 1.
    assert_eq!(
        statements.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        [6.0, 5.0, 6.0],
        "{text}"
    );
    let errors = tenant_samples(&text, "pgfleet_tenant_errors_total");
    let errors: Vec<f64> = errors.iter().map(|(_, n)| *n).collect();
    assert_eq!(errors, [0.0, 0.0, 1.0], "{text}");
    let transactions = tenant_samples(&text, "pgfleet_tenant_transactions_total");
    assert_eq!(transactions.len(), 3, "{text}");
    assert!(transactions[0].1 >= 6.0, "{text}");
    for family in [
        "pgfleet_tenant_server_seconds_total",
        "pgfleet_tenant_server_connections",
    ] {
        assert_eq!(tenant_samples(&text, family).len(), 3, "{family}: {text}");
    }
    assert!(!text.contains("tenant=\"initech\""), "{text}");

    // SHOW TENANTS lists every tenant; the top two and the sum of the rest agree.
    let admin = w.connect("admin", "dbname=pgfleet password=admin").await;
    let shown: Vec<(String, f64)> = admin
        .simple_query("SHOW TENANTS")
        .await
        .unwrap()
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((
                r.get("tenant").unwrap().to_owned(),
                r.get("statements").unwrap().parse().unwrap(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(shown.len(), 5, "{shown:?}");
    assert_eq!(shown[..2], statements[..2], "{shown:?}");
    let rest: f64 = shown[2..].iter().map(|(_, n)| n).sum();
    assert_eq!(rest, statements[2].1, "{shown:?}");
}

/// A tenant's transaction prefers an idle server already in its context (the one it used
/// last) over the most recently used one, so two tenants alternating over two idle servers each
/// keep theirs instead of re-syncing at every transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_keep_their_idle_server() {
    let w = World::new("model = \"schema\"", "pool_size = 2").await;
    w.schema_tenants(&["acme", "globex"]);
    let a = w.tenant_client("acme").await;
    let b = w.tenant_client("globex").await;
    // Both servers open: one transaction of each at once.
    a.simple_query("BEGIN").await.unwrap();
    b.simple_query("BEGIN").await.unwrap();
    own_rows(&a, "acme").await;
    own_rows(&b, "globex").await;
    a.simple_query("COMMIT").await.unwrap();
    b.simple_query("COMMIT").await.unwrap();
    let mut seen_a = std::collections::BTreeSet::new();
    let mut seen_b = std::collections::BTreeSet::new();
    for _ in 0..5 {
        seen_a.insert(backend_pid(&a).await);
        own_rows(&a, "acme").await;
        seen_b.insert(backend_pid(&b).await);
        own_rows(&b, "globex").await;
    }
    assert_eq!(seen_a.len(), 1, "acme moved between servers: {seen_a:?}");
    assert_eq!(seen_b.len(), 1, "globex moved between servers: {seen_b:?}");
    assert_ne!(seen_a, seen_b);
}

async fn backend_pid(c: &Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// The first column of a prepared statement's rows, as text.
async fn texts(c: &Client, st: &tokio_postgres::Statement) -> Vec<String> {
    c.query(st, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The tenant context goes inside a tenant's extended-protocol request when it can (one implicit
/// transaction with the client's statements). A request that fails rolls that back: the only
/// server is left in the other tenant's context, and pgfleet must set the context again rather
/// than believe it is there.
async fn failed_request_leaves_no_context_behind(w: &World) {
    let a = w.tenant_client("acme").await;
    let b = w.tenant_client("globex").await;
    let rows = "SELECT body FROM notes ORDER BY id";
    let a_rows = a.prepare(rows).await.unwrap();
    let b_rows = b.prepare(rows).await.unwrap();
    let failing = a
        .prepare("SELECT body, 1 / (random() * 0)::int FROM notes")
        .await
        .unwrap();
    for _ in 0..3 {
        only("globex", &texts(&b, &b_rows).await, rows);
        // A's Bind/Execute/Sync carries the sync into acme's context and fails.
        let e = a.query(&failing, &[]).await.unwrap_err();
        assert_eq!(sqlstate(&e), "22012", "{}", message(&e));
        // Rolled back with the request: the server holds globex's context again.
        let got = texts(&a, &a_rows).await;
        assert_eq!(got, vec!["acme-1".to_owned(), "acme-2".to_owned()]);
        own_rows(&a, "acme").await;
    }
    // pgfleet's set_config statement is visible to the tenant, but a tenant may not run it by name
    // (nor any other statement of pgfleet's). Run without pgfleet's secret it would set nothing
    // (tests/pooling.rs checks that for sessions without a tenant, which may run it).
    let name: String = a
        .query_one(
            "SELECT name FROM pg_prepared_statements WHERE statement LIKE 'SELECT pg_catalog.set_config(%' LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    for setting in ["app.current_tenant", "search_path"] {
        for value in ["globex", "tenant_globex"] {
            let sql = format!(
                "BEGIN; EXECUTE {name}('{setting}', '{value}', 'guess'); SELECT body FROM notes; COMMIT"
            );
            refused(&a, &sql, &format!("prepared statement {name}")).await;
            own_rows(&a, "acme").await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_request_leaves_no_context_behind_row_model() {
    let w = World::new("model = \"row\"", "pool_size = 1").await;
    w.row_tenants(&["acme", "globex"]);
    failed_request_leaves_no_context_behind(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_request_leaves_no_context_behind_schema_model() {
    let w = World::new("model = \"schema\"", "pool_size = 1").await;
    w.schema_tenants(&["acme", "globex"]);
    failed_request_leaves_no_context_behind(&w).await;
}
