//! Every lint rule with a positive and a negative case, on parsed statements.

use std::path::Path;

use pgfleet_migrate::lint::{lint_script, lint_set, LintContext, RULES};
use pgfleet_migrate::script::Script;
use pgfleet_migrate::{MigrationSet, TargetKind};

const CTX: LintContext = LintContext {
    runner_lock_timeout_ms: 5000,
};

fn rules(sql: &str, ctx: LintContext) -> Vec<&'static str> {
    let script = match Script::parse(Path::new("V1__t.sql"), sql.to_string()) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    lint_script(&script, ctx)
        .into_iter()
        .map(|f| f.rule)
        .collect()
}

/// (rule, SQL that must trigger it, SQL that must not)
const CASES: &[(&str, &str, &str)] = &[
    (
        "volatile-default",
        "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid()",
        "ALTER TABLE users ADD COLUMN created timestamptz DEFAULT now()",
    ),
    (
        "not-null-without-default",
        "ALTER TABLE users ADD COLUMN plan text NOT NULL",
        "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free'",
    ),
    (
        "index-without-concurrently",
        "CREATE INDEX users_email ON users (email)",
        "CREATE INDEX CONCURRENTLY users_email ON users (email)",
    ),
    (
        "foreign-key-without-not-valid",
        "ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id)",
        "ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
    ),
    (
        "check-without-not-valid",
        "ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0)",
        "ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0) NOT VALID",
    ),
    (
        "alter-column-type",
        "ALTER TABLE orders ALTER COLUMN amount TYPE numeric(12,2)",
        "ALTER TABLE orders ALTER COLUMN amount SET DEFAULT 0",
    ),
    (
        "rename-column",
        "ALTER TABLE users RENAME COLUMN email TO mail",
        "ALTER INDEX users_email RENAME TO users_mail",
    ),
    (
        "rename-table",
        "ALTER TABLE users RENAME TO accounts",
        "ALTER SEQUENCE users_id_seq RENAME TO accounts_id_seq",
    ),
    (
        "drop-column",
        "ALTER TABLE users DROP COLUMN email",
        "ALTER TABLE users DROP CONSTRAINT users_email_key",
    ),
    ("drop-table", "DROP TABLE users", "DROP VIEW users_view"),
    (
        "set-not-null",
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
        "ALTER TABLE users ALTER COLUMN email DROP NOT NULL",
    ),
    ("vacuum-full", "VACUUM FULL users", "VACUUM (ANALYZE) users"),
    ("cluster", "CLUSTER users USING users_pkey", "ANALYZE users"),
];

#[test]
fn every_rule_has_a_positive_and_a_negative_case() {
    for (rule, bad, good) in CASES {
        let found = rules(bad, CTX);
        assert!(
            found.contains(rule),
            "{rule}: expected a finding for `{bad}`, got {found:?}"
        );
        let found = rules(good, CTX);
        assert!(
            !found.contains(rule),
            "{rule}: no finding expected for `{good}`, got {found:?}"
        );
    }
    // missing-lock-timeout depends on what the runner sets, and on the file.
    let no_runner_timeout = LintContext {
        runner_lock_timeout_ms: 0,
    };
    let ddl = "ALTER TABLE users ADD COLUMN note text";
    assert_eq!(rules(ddl, no_runner_timeout), ["missing-lock-timeout"]);
    assert_eq!(rules(ddl, CTX), Vec::<&str>::new());
    assert_eq!(
        rules(
            &format!("SET lock_timeout = '3s';\n{ddl}"),
            no_runner_timeout
        ),
        Vec::<&str>::new()
    );
    assert_eq!(
        rules(&format!("SET lock_timeout = 0;\n{ddl}"), CTX),
        ["missing-lock-timeout"]
    );
    let covered: Vec<&str> = CASES
        .iter()
        .map(|c| c.0)
        .chain(["missing-lock-timeout"])
        .collect();
    for rule in RULES {
        assert!(
            covered.contains(&rule.id),
            "rule {} has no test case",
            rule.id
        );
    }
}

#[test]
fn tables_created_in_the_same_file_are_new() {
    let sql = "CREATE TABLE t (id bigint);
               CREATE INDEX t_id ON t (id);
               ALTER TABLE t ADD COLUMN v text NOT NULL;
               ALTER TABLE t ADD CONSTRAINT c CHECK (id > 0);
               ALTER TABLE t ALTER COLUMN v TYPE varchar(10);
               ALTER TABLE t RENAME COLUMN v TO w;
               DROP TABLE t;";
    assert_eq!(
        rules(
            sql,
            LintContext {
                runner_lock_timeout_ms: 0
            }
        ),
        Vec::<&str>::new()
    );
}

#[test]
fn serial_columns_and_nested_volatile_calls() {
    assert_eq!(
        rules("ALTER TABLE t ADD COLUMN n bigserial", CTX),
        ["volatile-default"]
    );
    assert_eq!(
        rules(
            "ALTER TABLE t ADD COLUMN n text DEFAULT md5(random()::text)",
            CTX
        ),
        ["volatile-default"]
    );
    assert_eq!(
        rules("ALTER TABLE t ADD COLUMN n int DEFAULT 42", CTX),
        Vec::<&str>::new()
    );
}

#[test]
fn findings_explain_risk_and_alternative_and_can_be_allowed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("shared")).expect("mkdir");
    std::fs::create_dir_all(dir.join("tenant")).expect("mkdir");
    std::fs::write(
        dir.join("shared/V1__drop.sql"),
        "ALTER TABLE users DROP COLUMN email;\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("tenant/V2__rename.sql"),
        "-- pgfleet: allow=rename-column\nALTER TABLE notes RENAME COLUMN body TO text;\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("tenant/V3__index.sql"),
        "\n\nCREATE INDEX notes_body ON notes (body);\n",
    )
    .expect("write");
    let set = MigrationSet::load(dir).expect("load");
    let all = lint_set(&set, &TargetKind::ALL, &[], CTX);
    let got: Vec<(&str, usize)> = all.iter().map(|f| (f.rule, f.line)).collect();
    assert_eq!(got, [("drop-column", 1), ("index-without-concurrently", 3)]);
    let text = all[0].to_string();
    assert!(
        text.contains("V1__drop.sql:1: [drop-column] ALTER TABLE users DROP COLUMN email"),
        "{text}"
    );
    assert!(
        text.contains("breaks running application instances")
            && text.contains("Instead: first deploy code"),
        "{text}"
    );
    let allowed = lint_set(&set, &TargetKind::ALL, &["drop-column".to_string()], CTX);
    assert_eq!(allowed.len(), 1);
    let tenant_only = lint_set(&set, &[TargetKind::Tenant], &[], CTX);
    assert_eq!(tenant_only.len(), 1);
}
