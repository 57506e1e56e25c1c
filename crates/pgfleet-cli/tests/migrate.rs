//! `pgfleet migrate` end to end: the built binary against a real PostgreSQL with a metadata
//! database and tenant schemas — new, lint (refusing `up`), plan, up, status, down, exit codes.

use std::path::Path;
use std::process::{Command, Output};

use pgfleet_testkit::Cluster;

fn pgfleet(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_pgfleet"))
        .current_dir(dir)
        .arg("migrate")
        // The config's only user, `app`, would be the default login; this cluster's tables belong
        // to the superuser.
        .args(["--user", "postgres"])
        .args(args)
        .output()
        .expect("run pgfleet");
    eprintln!(
        "$ pgfleet migrate {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn migrate_command_end_to_end() {
    let cluster = Cluster::start().expect("start cluster");
    cluster.psql("CREATE DATABASE app").unwrap();
    cluster.psql("CREATE DATABASE pgfleet_meta").unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(
        dir.join("pgfleet.toml"),
        format!(
            r#"
[clusters.main]
servers = [{{ host = "127.0.0.1", port = {} }}]
[metadata]
cluster = "main"
[databases.app]
cluster = "main"
[databases.app.tenancy]
model = "schema"
[users.app]
password = "app"
"#,
            cluster.port()
        ),
    )
    .unwrap();
    // Tenants come from the tenant directory; its schema is created by the first connection
    // (this status call), then tenants are registered by hand.
    let o = pgfleet(dir, &["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no such migrations directory"),
        "{}",
        stderr(&o)
    );
    std::fs::create_dir(dir.join("migrations")).unwrap();
    let o = pgfleet(dir, &["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("shared: 1 target(s); 1 at none"),
        "{}",
        stdout(&o)
    );
    cluster
        .psql_db(
            "pgfleet_meta",
            "INSERT INTO pgfleet.tenants (database, name, model, schema_name) \
             SELECT 'app', 't' || g, 'schema', 'tenant_t' || g FROM generate_series(1, 12) g",
        )
        .unwrap();

    // new: numbered files in the right folders.
    let o = pgfleet(dir, &["new", "plans"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("shared/V0001__plans.sql"));
    let o = pgfleet(dir, &["new", "Add notes", "--for-tenants", "--down"]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("tenant/V0002__add_notes.sql")
            && stdout(&o).contains("V0002__add_notes.down.sql")
    );
    std::fs::write(
        dir.join("migrations/shared/V0001__plans.sql"),
        "CREATE TABLE plans (id int);\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("migrations/tenant/V0002__add_notes.sql"),
        "CREATE TABLE notes (id int, body text);\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("migrations/tenant/V0002__add_notes.down.sql"),
        "DROP TABLE notes;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("migrations/tenant/V0003__notes_idx.sql"),
        "CREATE INDEX notes_body ON notes (body);\n",
    )
    .unwrap();

    // Lint finds the blocking index on an existing table; up refuses to run.
    let o = pgfleet(dir, &["lint"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("[index-without-concurrently]")
            && stderr(&o).contains("Instead: CREATE INDEX CONCURRENTLY"),
        "{}",
        stderr(&o)
    );
    let o = pgfleet(dir, &["up"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not applying anything"));
    assert_eq!(
        cluster
            .psql_db(
                "app",
                "SELECT count(*) FROM pg_tables WHERE tablename = 'notes'"
            )
            .unwrap(),
        "0"
    );

    std::fs::write(
        dir.join("migrations/tenant/V0003__notes_idx.sql"),
        "CREATE INDEX CONCURRENTLY notes_body ON notes (body);\n",
    )
    .unwrap();
    let o = pgfleet(dir, &["plan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plan = stdout(&o);
    assert!(plan.contains("would run on 12 target(s): apply V0002__add_notes (in a transaction); apply V0003__notes_idx (outside a transaction: CREATE INDEX CONCURRENTLY)"), "{plan}");
    assert!(
        plan.contains("would run on 1 target(s): apply V0001__plans (in a transaction)"),
        "{plan}"
    );

    let o = pgfleet(dir, &["up", "--jobs", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("13 target(s): 13 done"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("runs outside a transaction (CREATE INDEX CONCURRENTLY at line 1)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        cluster
            .psql_db(
                "app",
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'notes_body'"
            )
            .unwrap(),
        "12"
    );

    let o = pgfleet(dir, &["up"]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("13 skipped") && stdout(&o).contains("fleet ledger"),
        "{}",
        stdout(&o)
    );

    let o = pgfleet(dir, &["status"]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("tenant: 12 target(s); 12 at V0003 (newest)"),
        "{}",
        stdout(&o)
    );

    // down without a down script for V0003 fails on every tenant, naming the file.
    let o = pgfleet(dir, &["down", "--continue-on-error", "--tenant", "t3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("V0003__notes_idx has no down script"),
        "{}",
        stdout(&o)
    );
    let o = pgfleet(dir, &["status", "--tenant", "t3", "--verbose"]);
    assert!(
        stdout(&o).contains("app/tenant:t3: version 3, 0 pending"),
        "{}",
        stdout(&o)
    );

    // Unknown --allow rule and unknown database are clear errors.
    let o = pgfleet(dir, &["up", "--allow", "no-such-rule"]);
    assert!(stderr(&o).contains("unknown lint rule `no-such-rule`"));
    let o = pgfleet(dir, &["status", "--database", "nope"]);
    assert!(
        stderr(&o).contains("database `nope` is not in the config"),
        "{}",
        stderr(&o)
    );
}
