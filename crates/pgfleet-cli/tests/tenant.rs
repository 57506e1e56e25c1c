//! `pgfleet tenant` end to end: the built binary against real PostgreSQL with a metadata
//! database — create (schema, database and row models; bad names, duplicates, orphan schemas,
//! failing migrations rolled back), list, show, suspend, resume, drop (refused without
//! --confirm), placement on shards, and `policies` making row-level security filter rows for a
//! non-owner role, with the warnings for an owner and a BYPASSRLS role. One cluster for the file;
//! each test has its own roles and databases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pgfleet_testkit::{Cluster, ClusterOptions, SharedCluster};

static CLUSTER: SharedCluster = SharedCluster::new(ClusterOptions::default);

/// One test's world: a role and server databases in the shared cluster, a metadata database,
/// a work directory with the config.
struct World {
    cluster: Arc<Cluster>,
    /// Unique suffix: `<pid>_<n>`.
    id: String,
    /// The application role (owner of the server database), also the config's user.
    role: String,
    /// The server database of pgfleet database `app`.
    db: String,
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        static N: AtomicUsize = AtomicUsize::new(0);
        let cluster = CLUSTER.get().expect("start cluster");
        let id = format!(
            "{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let role = format!("app_{id}");
        let db = format!("app_{id}");
        cluster
            .psql(&format!("CREATE ROLE {role} LOGIN PASSWORD 'pw'"))
            .unwrap();
        cluster
            .psql(&format!("CREATE DATABASE {db} OWNER {role}"))
            .unwrap();
        cluster.psql(&format!("CREATE DATABASE meta_{id}")).unwrap();
        World {
            cluster,
            id,
            role,
            db,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes the config: cluster `main`, the metadata database, database `app` with `tenancy`
    /// lines (after `[databases.app.tenancy]`), the role as the only application user.
    fn configure(&self, tenancy: &str) {
        self.write_config(&format!(
            "[databases.app]\ncluster = \"main\"\nserver_database = \"{}\"\n[databases.app.tenancy]\n{tenancy}\n",
            self.db
        ));
    }

    fn write_config(&self, databases: &str) {
        let text = format!(
            r#"
[clusters.main]
servers = [{{ host = "127.0.0.1", port = {port}, role = "primary" }}]
[metadata]
cluster = "main"
database = "meta_{id}"
{databases}
[users.{role}]
password = "pw"
[users.admin]
password = "admin"
admin = true
"#,
            port = self.cluster.port(),
            id = self.id,
            role = self.role,
        );
        std::fs::write(self.dir.path().join("pgfleet.toml"), text).unwrap();
    }

    fn write(&self, rel: &str, text: &str) {
        let path: PathBuf = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Runs `pgfleet tenant ARGS` in the work directory.
    fn tenant(&self, args: &[&str]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_pgfleet"))
            .current_dir(self.dir.path())
            .arg("tenant")
            .args(args)
            .env_remove("PGPASSWORD")
            .output()
            .expect("run pgfleet");
        eprintln!(
            "$ pgfleet tenant {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Runs `pgfleet tenant ARGS`, which must succeed; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.tenant(args);
        assert!(
            o.status.success(),
            "pgfleet tenant {args:?} failed: {}",
            stderr(&o)
        );
        stdout(&o)
    }

    /// Runs `pgfleet tenant ARGS`, which must fail with status 1; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.tenant(args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "pgfleet tenant {args:?}: {}",
            stdout(&o)
        );
        stderr(&o)
    }

    fn sql(&self, sql: &str) -> String {
        self.cluster.psql_db(&self.db, sql).unwrap()
    }

    fn meta_sql(&self, sql: &str) -> String {
        self.cluster
            .psql_db(&format!("meta_{}", self.id), sql)
            .unwrap()
    }

    /// A connection as the application role to its database.
    async fn connect_as_role(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(
            &self.cluster.config_string(&self.role, &self.db),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        client
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "expected {part:?} in:\n{text}");
}

#[test]
fn schema_model_lifecycle() {
    let w = World::new();
    w.configure("model = \"schema\"");
    w.write(
        "migrations/tenant/V0001__notes.sql",
        "CREATE TABLE notes (id int PRIMARY KEY, body text);\nINSERT INTO notes VALUES (1, 'welcome');\n",
    );

    // A bad name is refused before anything happens.
    let e = w.fails(&["create", "Acme"]);
    assert_contains(
        &e,
        "invalid tenant name `Acme`; use 1 to 48 lower-case letters",
    );
    assert_eq!(
        w.meta_sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgfleet'"),
        "0",
        "not even the metadata database was touched"
    );

    // Create: schema owned by the default login (the config's only application user), the
    // tenant migrations applied in it, the directory entry active.
    let out = w.ok(&["create", "acme"]);
    assert_contains(
        &out,
        &format!("tenant `acme` created in database `app`: schema tenant_acme in database {} on cluster main", w.db),
    );
    assert_contains(&out, "tenant migrations: 1 step(s): apply V0001__notes");
    assert_eq!(w.sql("SELECT body FROM tenant_acme.notes"), "welcome");
    assert_eq!(
        w.sql("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'tenant_acme'"),
        w.role
    );
    assert_eq!(
        w.meta_sql("SELECT model, schema_name, state, shard IS NULL FROM pgfleet.tenants WHERE name = 'acme'"),
        "schema|tenant_acme|active|t"
    );

    // Creating it again is a clear error and changes nothing.
    w.sql("INSERT INTO tenant_acme.notes VALUES (2, 'kept')");
    let e = w.fails(&["create", "acme"]);
    assert_contains(&e, "tenant `acme` already exists in database `app` (model schema, cluster main, state active, created ");
    assert_contains(&e, "nothing was changed");
    assert_eq!(w.sql("SELECT count(*) FROM tenant_acme.notes"), "2");

    // A schema left over without a directory entry is a conflict, never adopted.
    w.sql("CREATE SCHEMA tenant_orphan");
    let e = w.fails(&["create", "orphan"]);
    assert_contains(
        &e,
        &format!("schema tenant_orphan in database {} on cluster main already exists, but tenant `orphan` is not in the tenant directory", w.db),
    );
    assert_eq!(
        w.meta_sql("SELECT count(*) FROM pgfleet.tenants WHERE name = 'orphan'"),
        "0"
    );

    // --shard on an unsharded database.
    let e = w.fails(&["create", "globex", "--shard", "1"]);
    assert_contains(
        &e,
        "database `app` is not sharded; --shard 1 does not apply",
    );

    // A failing tenant migration: nothing is left behind.
    w.write(
        "broken/tenant/V0001__broken.sql",
        "CREATE TABLE notes (id int REFERENCES nowhere (id));\n",
    );
    let e = w.fails(&["create", "initech", "--dir", "broken"]);
    assert_contains(&e, "tenant migrations failed for tenant `initech`");
    assert_contains(&e, "relation \"nowhere\" does not exist");
    assert_contains(&e, "the tenant was not created (schema tenant_initech");
    assert_eq!(
        w.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_initech'"),
        "0"
    );
    assert_eq!(
        w.meta_sql("SELECT count(*) FROM pgfleet.tenants WHERE name = 'initech'"),
        "0"
    );
    let e = w.fails(&["create", "initech", "--dir", "nope"]);
    assert_contains(&e, "reading migrations from nope (--dir)");

    // list and show.
    w.ok(&["create", "globex"]);
    let out = w.ok(&["list"]);
    assert_contains(&out, "2 tenant(s) in database `app` (model schema)");
    assert_contains(&out, "NAME    STATE   SHARD  SCHEMA         CREATED");
    assert!(
        out.lines()
            .any(|l| l.starts_with("acme    active  -      tenant_acme")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("globex  active  -      tenant_globex")),
        "{out}"
    );
    let out = w.ok(&["show", "acme"]);
    for line in [
        "tenant:     acme",
        "model:      schema",
        "schema:     tenant_acme",
        "shard:      -",
        "state:      active",
        "created_at: 20",
    ] {
        assert_contains(&out, line);
    }

    // suspend / resume, each idempotent.
    assert_contains(
        &w.ok(&["suspend", "acme"]),
        "tenant `acme` is now suspended",
    );
    assert_eq!(
        w.meta_sql("SELECT state FROM pgfleet.tenants WHERE name = 'acme'"),
        "suspended"
    );
    assert_contains(
        &w.ok(&["suspend", "acme"]),
        "tenant `acme` is already suspended; nothing changed",
    );
    assert_contains(&w.ok(&["show", "acme"]), "state:      suspended");
    assert_contains(&w.ok(&["resume", "acme"]), "tenant `acme` is now active");
    assert_contains(&w.ok(&["resume", "acme"]), "already active");
    w.meta_sql("UPDATE pgfleet.tenants SET state = 'moving' WHERE name = 'globex'");
    assert_contains(
        &w.fails(&["suspend", "globex"]),
        "tenant `globex` is being moved (state moving)",
    );
    assert_contains(
        &w.fails(&["drop", "globex", "--confirm"]),
        "tenant `globex` is being moved",
    );
    w.meta_sql("UPDATE pgfleet.tenants SET state = 'active' WHERE name = 'globex'");

    // drop: refused without --confirm, saying what it would drop.
    let e = w.fails(&["drop", "acme"]);
    assert_contains(
        &e,
        &format!("refusing to drop tenant `acme` without --confirm: this drops schema tenant_acme in database {} on cluster main with everything in it (DROP SCHEMA … CASCADE) and cannot be undone", w.db),
    );
    assert_eq!(w.sql("SELECT count(*) FROM tenant_acme.notes"), "2");
    let out = w.ok(&["drop", "acme", "--confirm"]);
    assert_contains(&out, "tenant `acme` dropped: schema tenant_acme");
    assert_eq!(
        w.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_acme'"),
        "0"
    );
    assert_contains(
        &w.fails(&["show", "acme"]),
        "tenant `acme` is not in the tenant directory of database `app`",
    );
    assert_contains(
        &w.fails(&["drop", "acme", "--confirm"]),
        "is not in the tenant directory",
    );
    assert_contains(
        &w.fails(&["resume", "nobody"]),
        "tenant `nobody` is not in the tenant directory",
    );

    // A schema dropped by hand: drop still removes the directory entry, and says so.
    w.sql("DROP SCHEMA tenant_globex CASCADE");
    assert_contains(&w.ok(&["drop", "globex", "--confirm"]), "was already gone");
    assert_contains(&w.ok(&["list"]), "0 tenant(s) in database `app`");

    // Policies are for the row model.
    assert_contains(
        &w.fails(&["policies"]),
        "database `app` uses model \"schema\"; row-level security policies are for model \"row\"",
    );
}

#[tokio::test]
async fn database_model_lifecycle() {
    let w = World::new();
    // Database names are global to the cluster: a template unique to this test.
    let prefix = format!("w{}", w.id);
    w.configure(&format!(
        "model = \"database\"\ndatabase_template = \"{prefix}_{{tenant}}\""
    ));
    w.write(
        "migrations/tenant/V0001__notes.sql",
        "CREATE TABLE notes (id int PRIMARY KEY, body text);\nINSERT INTO notes VALUES (1, 'welcome');\n",
    );
    let tenant_db = format!("{prefix}_acme");

    // CREATE DATABASE needs CREATEDB: log in as the superuser, give the database to the role.
    let out = w.ok(&["--user", "postgres", "create", "acme", "--owner", &w.role]);
    assert_contains(
        &out,
        &format!("tenant `acme` created in database `app`: database {tenant_db} on cluster main"),
    );
    assert_contains(&out, "tenant migrations: 1 step(s)");
    assert_eq!(
        w.cluster
            .psql(&format!(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{tenant_db}'"
            ))
            .unwrap(),
        w.role
    );
    assert_eq!(
        w.cluster
            .psql_db(&tenant_db, "SELECT body FROM notes")
            .unwrap(),
        "welcome"
    );
    assert_eq!(
        w.cluster
            .psql_db(&tenant_db, "SELECT count(*) FROM pgfleet.schema_history")
            .unwrap(),
        "1"
    );
    let out = w.ok(&["show", "acme"]);
    assert_contains(&out, &format!("tenant database: {tenant_db}"));
    assert_contains(&out, "model:           database");

    let e = w.fails(&["--user", "postgres", "create", "acme"]);
    assert_contains(&e, "tenant `acme` already exists in database `app`");

    // The default login (the application role) may not create databases: a clear server error,
    // nothing registered.
    let e = w.fails(&["create", "globex"]);
    assert_contains(&e, &format!("creating database {prefix}_globex on cluster main: permission denied to create database"));
    assert!(!e.contains("db error"), "the server's message once: {e}");
    assert_eq!(
        w.meta_sql("SELECT count(*) FROM pgfleet.tenants WHERE name = 'globex'"),
        "0"
    );

    // drop ends the tenant database's sessions (WITH (FORCE)).
    let (session, conn) = tokio_postgres::connect(
        &w.cluster.config_string("postgres", &tenant_db),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    session.batch_execute("SELECT 1").await.unwrap();
    let e = w.fails(&["drop", "acme"]);
    assert_contains(
        &e,
        &format!("this drops database {tenant_db} on cluster main, ending its sessions"),
    );
    let out = w.ok(&["--user", "postgres", "drop", "acme", "--confirm"]);
    assert_contains(
        &out,
        &format!("tenant `acme` dropped: database {tenant_db} on cluster main dropped"),
    );
    assert_eq!(
        w.cluster
            .psql(&format!(
                "SELECT count(*) FROM pg_database WHERE datname = '{tenant_db}'"
            ))
            .unwrap(),
        "0"
    );
    assert!(
        session.batch_execute("SELECT 1").await.is_err(),
        "the open session was ended"
    );
    let _ = conn.await;
    assert_contains(
        &w.ok(&["list"]),
        "0 tenant(s) in database `app` (model database)",
    );
}

#[tokio::test]
async fn row_model_policies_isolate_tenants() {
    let w = World::new();
    w.configure("model = \"row\"");
    // Tables owned by the superuser; the proxy's role (the config's user) may read and write.
    w.sql(&format!(
        "CREATE TABLE notes (id serial PRIMARY KEY, tenant_id text NOT NULL, body text);
         CREATE TABLE devices (id serial PRIMARY KEY, tenant_id uuid NOT NULL);
         CREATE TABLE plans (id int);
         GRANT SELECT, INSERT, UPDATE, DELETE ON notes, devices, plans TO {role};
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role};
         INSERT INTO notes (tenant_id, body) VALUES ('acme', 'a1'), ('acme', 'a2'), ('globex', 'g1');
         INSERT INTO devices (tenant_id) VALUES
             ('00000000-0000-0000-0000-00000000000a'),
             ('00000000-0000-0000-0000-00000000000b'),
             ('00000000-0000-0000-0000-00000000000b');",
        role = w.role
    ));

    // Check only: everything missing is reported, exit status 1.
    let o = w.tenant(&["policies"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert_contains(
        &out,
        "row-level security of database `app` (column tenant_id, setting app.current_tenant):",
    );
    assert_contains(&out, "needs fixing public.notes: row-level security is off; FORCE ROW LEVEL SECURITY is off (the table's owner is exempt from its policies); policy pgfleet_tenant_isolation is missing");
    assert_contains(
        &out,
        "without column tenant_id (no policy, shared by every tenant): public.plans",
    );
    assert_contains(
        &out,
        "0 table(s) ok, 2 need fixing; run `pgfleet tenant policies --apply` to fix them",
    );

    // The default login does not own the tables: the fix fails, saying why.
    let o = w.tenant(&["policies", "--apply"]);
    assert_eq!(o.status.code(), Some(1));
    assert_contains(
        &stdout(&o),
        "failed public.notes: must be owner of table notes",
    );
    assert_contains(
        &stdout(&o),
        &format!("the login is `{}`: run with --user OWNER", w.role),
    );

    let out = w.ok(&["--user", "postgres", "policies", "--apply"]);
    assert_contains(&out, "fixed public.devices: row-level security is off;");
    assert_contains(&out, "fixed public.notes:");
    assert_contains(&out, "ok: public.devices, public.notes");
    let out = w.ok(&["policies"]);
    assert_contains(&out, "2 table(s) ok, 0 need fixing");

    // Row-level security now filters rows for the proxy's role.
    let c = w.connect_as_role().await;
    let count = |sql: &'static str| {
        let c = &c;
        async move { c.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        count("SELECT count(*) FROM notes").await,
        0,
        "no tenant set: no rows"
    );
    c.batch_execute("SET app.current_tenant = 'acme'")
        .await
        .unwrap();
    assert_eq!(count("SELECT count(*) FROM notes").await, 2);
    c.batch_execute("SET app.current_tenant = 'globex'")
        .await
        .unwrap();
    assert_eq!(count("SELECT count(*) FROM notes").await, 1);
    let e = c
        .batch_execute("INSERT INTO notes (tenant_id, body) VALUES ('acme', 'sneaky')")
        .await
        .unwrap_err();
    assert_eq!(e.code().unwrap().code(), "42501", "{e:?}");
    c.batch_execute("INSERT INTO notes (tenant_id, body) VALUES ('globex', 'g2')")
        .await
        .unwrap();
    assert_eq!(count("SELECT count(*) FROM notes").await, 2);
    assert_eq!(
        c.execute("UPDATE notes SET body = 'x'", &[]).await.unwrap(),
        2,
        "updates reach the tenant's rows only"
    );
    // The uuid column: the setting is cast, and an empty setting (after RESET) is no tenant.
    c.batch_execute("SET app.current_tenant = '00000000-0000-0000-0000-00000000000b'")
        .await
        .unwrap();
    assert_eq!(count("SELECT count(*) FROM devices").await, 2);
    c.batch_execute("SET app.current_tenant = '00000000-0000-0000-0000-00000000000a'")
        .await
        .unwrap();
    assert_eq!(count("SELECT count(*) FROM devices").await, 1);
    c.batch_execute("RESET app.current_tenant").await.unwrap();
    assert_eq!(count("SELECT count(*) FROM devices").await, 0);
    assert_eq!(count("SELECT count(*) FROM notes").await, 0);
    drop(c);
    assert_eq!(
        w.sql("SELECT count(*) FROM notes"),
        "4",
        "the superuser sees every row"
    );

    // A policy changed by hand is reported and replaced.
    w.sql("ALTER POLICY pgfleet_tenant_isolation ON devices USING (true)");
    let o = w.tenant(&["policies"]);
    assert_eq!(o.status.code(), Some(1));
    assert_contains(&stdout(&o), "needs fixing public.devices: policy pgfleet_tenant_isolation differs: USING is `true`, expected `\"tenant_id\" = NULLIF(current_setting('app.current_tenant', true), '')::uuid`");
    assert_contains(
        &w.ok(&["--user", "postgres", "policies", "--apply"]),
        "fixed public.devices: policy pgfleet_tenant_isolation differs",
    );
    assert_eq!(
        w.sql("SELECT qual FROM pg_policies WHERE tablename = 'devices'"),
        "(tenant_id = (NULLIF(current_setting('app.current_tenant'::text, true), ''::text))::uuid)"
    );

    // Warnings: another permissive policy, a BYPASSRLS role, a role that owns a table.
    w.sql("CREATE POLICY everyone ON plans USING (true)");
    w.sql("CREATE POLICY open_notes ON notes FOR SELECT USING (true)");
    let o = w.tenant(&["policies"]);
    assert!(o.status.success());
    assert_contains(&stderr(&o), "warning: public.notes has other permissive policies (open_notes): PostgreSQL combines permissive policies with OR");
    w.sql("DROP POLICY open_notes ON notes");

    w.cluster
        .psql(&format!("ALTER ROLE {} BYPASSRLS", w.role))
        .unwrap();
    let o = w.tenant(&["policies"]);
    assert!(o.status.success(), "warnings do not fail the check");
    assert_contains(
        &stderr(&o),
        &format!("warning: role `{}` has BYPASSRLS on cluster main: row-level security never applies to it", w.role),
    );
    let c = w.connect_as_role().await;
    c.batch_execute("SET app.current_tenant = 'acme'")
        .await
        .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM notes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        n, 4,
        "BYPASSRLS sees every tenant's rows, hence the warning"
    );
    drop(c);
    w.cluster
        .psql(&format!("ALTER ROLE {} NOBYPASSRLS", w.role))
        .unwrap();

    w.sql(&format!("ALTER TABLE notes OWNER TO {}", w.role));
    let o = w.tenant(&["policies"]);
    assert!(o.status.success());
    assert_contains(
        &stderr(&o),
        &format!("warning: role `{}` owns 1 table(s) with the tenant column on cluster main (public.notes): FORCE ROW LEVEL SECURITY makes the policy apply to it", w.role),
    );
    // FORCE: the owner is filtered too (but could switch it off, hence the warning).
    let c = w.connect_as_role().await;
    c.batch_execute("SET app.current_tenant = 'acme'")
        .await
        .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM notes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    drop(c);

    // Row model tenants: a directory entry only; dropping it leaves the rows.
    let out = w.ok(&["create", "acme"]);
    assert_contains(&out, "tenant `acme` added to database `app` (model row, cluster main): nothing to create; its rows are told apart by column tenant_id");
    assert_contains(
        &w.ok(&["list"]),
        "1 tenant(s) in database `app` (model row)",
    );
    assert_contains(
        &w.fails(&["drop", "acme"]),
        "this removes tenant `acme` from the tenant directory (its rows with column tenant_id",
    );
    let out = w.ok(&["drop", "acme", "--confirm"]);
    assert_contains(&out, "tenant `acme` removed from the tenant directory; its rows with column tenant_id in the shared tables of database");
    assert_contains(&out, "stay");
    assert_eq!(
        w.sql("SELECT count(*) FROM notes WHERE tenant_id = 'acme'"),
        "2"
    );
}

#[test]
fn sharded_databases_place_tenants_and_policies_on_every_shard() {
    let w = World::new();
    let second = Cluster::start().expect("start second cluster");
    let (rows_db, schemas_db) = (format!("rows_{}", w.id), format!("schemas_{}", w.id));
    for c in [&*w.cluster, &second] {
        if !std::ptr::eq(c, &*w.cluster) {
            c.psql(&format!("CREATE ROLE {} LOGIN PASSWORD 'pw'", w.role))
                .unwrap();
        }
        c.psql(&format!("CREATE DATABASE {rows_db}")).unwrap();
        c.psql(&format!("CREATE DATABASE {schemas_db} OWNER {}", w.role))
            .unwrap();
        c.psql_db(
            &rows_db,
            "CREATE TABLE orders (id int, tenant_id text); CREATE TABLE countries (code text)",
        )
        .unwrap();
    }
    let text = format!(
        r#"
[clusters.s1]
servers = [{{ host = "127.0.0.1", port = {port1}, role = "primary" }}]
[databases.rows]
shards = ["main", "s1"]
server_database = "{rows_db}"
reference_tables = ["countries"]
[databases.rows.tenancy]
model = "row"
[databases.schemas]
shards = ["main", "s1"]
server_database = "{schemas_db}"
[databases.schemas.tenancy]
model = "schema"
"#,
        port1 = second.port()
    );
    w.write_config(&text);

    // Two databases with tenancy: --database is needed.
    assert_contains(
        &w.fails(&["list"]),
        "several databases have tenancy (rows, schemas); choose one with --database",
    );

    // Policies on every shard.
    let o = w.tenant(&["--database", "rows", "policies"]);
    assert_eq!(o.status.code(), Some(1));
    assert_contains(&stdout(&o), "0 table(s) ok, 2 need fixing");
    let out = w.ok(&[
        "--database",
        "rows",
        "--user",
        "postgres",
        "policies",
        "--apply",
    ]);
    assert_contains(
        &out,
        &format!("shard 0 (cluster main), database {rows_db}:\n  fixed public.orders"),
    );
    assert_contains(
        &out,
        &format!("shard 1 (cluster s1), database {rows_db}:\n  fixed public.orders"),
    );
    assert_contains(
        &out,
        "without column tenant_id (no policy, shared by every tenant): public.countries",
    );
    for c in [&*w.cluster, &second] {
        assert_eq!(
            c.psql_db(&rows_db, "SELECT relrowsecurity, relforcerowsecurity, (SELECT count(*) FROM pg_policies WHERE tablename = 'orders') FROM pg_class WHERE relname = 'orders'")
                .unwrap(),
            "t|t|1"
        );
    }

    // Schema tenants: pinned to a shard, or placed by the hash of their name; the schema is
    // created on that shard's cluster only.
    let e = w.fails(&["--database", "schemas", "create", "acme", "--shard", "2"]);
    assert_contains(
        &e,
        "database `schemas` has 2 shard(s) (0 to 1); there is no shard 2",
    );
    let out = w.ok(&["--database", "schemas", "create", "acme", "--shard", "1"]);
    assert_contains(
        &out,
        &format!("schema tenant_acme in database {schemas_db} on shard 1 (cluster s1)"),
    );
    let has_schema = |c: &Cluster, name: &str| {
        c.psql_db(
            &schemas_db,
            &format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{name}'"),
        )
        .unwrap()
    };
    assert_eq!(has_schema(&second, "tenant_acme"), "1");
    assert_eq!(has_schema(&w.cluster, "tenant_acme"), "0");
    for name in ["t1", "t2", "t3", "t4"] {
        w.ok(&["--database", "schemas", "create", name]);
        let show = w.ok(&["--database", "schemas", "show", name]);
        let shard = show
            .lines()
            .find_map(|l| l.strip_prefix("shard:"))
            .map(str::trim)
            .unwrap()
            .to_string();
        let (on, off) = match shard.as_str() {
            "0" => (&*w.cluster, &second),
            "1" => (&second, &*w.cluster),
            other => panic!("shard {other}"),
        };
        assert_eq!(has_schema(on, &format!("tenant_{name}")), "1", "{show}");
        assert_eq!(has_schema(off, &format!("tenant_{name}")), "0", "{show}");
    }
    // The hash placement agrees with PostgreSQL's own hash partitioning of the name as text.
    w.cluster
        .psql_db(
            &schemas_db,
            "CREATE TABLE names (k text) PARTITION BY HASH (k);
             CREATE TABLE names_0 PARTITION OF names FOR VALUES WITH (MODULUS 2, REMAINDER 0);
             CREATE TABLE names_1 PARTITION OF names FOR VALUES WITH (MODULUS 2, REMAINDER 1);
             INSERT INTO names VALUES ('t1'), ('t2'), ('t3'), ('t4');",
        )
        .unwrap();
    let by_postgres = w
        .cluster
        .psql_db(&schemas_db, "SELECT string_agg(k || '=' || right(tableoid::regclass::text, 1), ',' ORDER BY k) FROM names")
        .unwrap();
    let by_pgfleet = w
        .meta_sql("SELECT string_agg(name || '=' || shard, ',' ORDER BY name) FROM pgfleet.tenants WHERE database = 'schemas' AND name LIKE 't_'");
    assert_eq!(by_pgfleet, by_postgres);

    let out = w.ok(&["--database", "schemas", "drop", "acme", "--confirm"]);
    assert_contains(&out, "on shard 1 (cluster s1) dropped");
    assert_eq!(has_schema(&second, "tenant_acme"), "0");
}
