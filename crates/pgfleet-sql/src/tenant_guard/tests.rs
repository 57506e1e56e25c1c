use super::*;

fn pattern() -> (String, String) {
    ("tenant_".to_owned(), String::new())
}

fn schema_rules() -> TenantRules {
    TenantRules {
        tenant: Some("acme".into()),
        protected: vec![
            "search_path".into(),
            "role".into(),
            "session_authorization".into(),
        ],
        own_schemas: vec!["tenant_acme".into()],
        tenant_switch_refused: None,
        pinned_shard: false,
        shared_rows: false,
    }
}

fn row_rules() -> TenantRules {
    TenantRules {
        tenant: Some("acme".into()),
        protected: vec![
            "app.current_tenant".into(),
            "role".into(),
            "session_authorization".into(),
        ],
        own_schemas: Vec::new(),
        tenant_switch_refused: Some("tenant is fixed".into()),
        pinned_shard: true,
        shared_rows: true,
    }
}

fn check(sql: &str, rules: &TenantRules) -> Result<(), String> {
    tenant_facts(sql, Some(&pattern()))
        .check(rules)
        .map_err(|v| v.message)
}

#[test]
fn schema_model_table() {
    let r = schema_rules();
    let allowed = [
        "SELECT * FROM notes",
        "SELECT * FROM tenant_acme.notes",
        "SELECT * FROM public.plans JOIN notes USING (id)",
        "INSERT INTO notes VALUES (1, 'tenant_x is just text')",
        "SELECT tenant_id, n.tenant_x FROM notes n",
        "SET work_mem = '8MB'",
        "RESET ALL",
        "DISCARD ALL",
        "SHOW search_path",
        "SELECT set_config('work_mem', '8MB', false)",
        "COPY notes TO STDOUT",
        "SELECT current_setting('search_path')",
        "PREPARE mine AS SELECT * FROM notes",
        "EXECUTE mine",
        "DEALLOCATE mine",
        "DEALLOCATE ALL",
        "SELECT name, statement FROM pg_prepared_statements",
        "EXECUTE \"PGFLEET_1\"",
        "ROLLBACK PREPARED 'mine'",
        "COMMIT PREPARED 'PGFLEET_1'",
        "SELECT * FROM pg_prepared_xacts",
        "VACUUM notes",
        "VACUUM (ANALYZE) notes, public.plans",
        "ANALYZE notes",
        "CLUSTER notes USING notes_pkey",
        "REINDEX TABLE notes",
        "REINDEX SCHEMA tenant_acme",
        "SELECT ts_rewrite('a & b'::tsquery, 'a'::tsquery, 'c'::tsquery)",
        "SELECT nextval('notes_id_seq')",
        "SELECT setval('public.s'::regclass, 5, false)",
        "SELECT lastval()",
        r#"SELECT * FROM U&"tenant\005facme".notes"#,
        r#"SELECT U&"b\\ody" FROM notes"#,
    ];
    for sql in allowed {
        assert_eq!(check(sql, &r), Ok(()), "{sql}");
    }
    let refused = [
        ("SELECT * FROM tenant_globex.notes", "schema tenant_globex"),
        ("SELECT * FROM \"tenant_globex\".notes", "schema tenant_globex"),
        ("SELECT * FROM TENANT_GLOBEX.notes", "schema tenant_globex"),
        ("SELECT 1; DELETE FROM tenant_globex.notes", "schema tenant_globex"),
        ("COPY tenant_globex.notes TO STDOUT", "schema tenant_globex"),
        ("COPY (SELECT * FROM tenant_globex.notes) TO STDOUT", "tenant_globex"),
        ("SELECT tenant_globex.f()", "tenant_globex"),
        ("SELECT 'tenant_globex.notes'::regclass", "tenant_globex"),
        ("DROP SCHEMA tenant_globex CASCADE", "tenant_globex"),
        ("GRANT USAGE ON SCHEMA tenant_globex TO x", "tenant_globex"),
        ("ALTER SCHEMA tenant_acme RENAME TO tenant_globex", "tenant_globex"),
        ("ALTER TABLE notes SET SCHEMA tenant_globex", "tenant_globex"),
        ("SET search_path = tenant_globex", "search_path"),
        ("SET LOCAL search_path = tenant_globex", "search_path"),
        ("SET SCHEMA 'public'", "search_path"),
        ("RESET search_path", "reset search_path"),
        ("SELECT set_config('search_path', 'x', true)", "search_path"),
        ("SELECT pg_catalog.set_config('SEARCH_PATH', 'x', false)", "search_path"),
        ("SELECT set_config('search' || '_path', 'x', false)", "computed"),
        ("SET ROLE postgres", "role"),
        ("SET SESSION AUTHORIZATION postgres", "session_authorization"),
        ("DO $$ BEGIN PERFORM 1; END $$", "DO blocks"),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select * from tenant_globex.notes'",
            "CREATE FUNCTION",
        ),
        ("SELECT query_to_xml('select 1', true, false, '')", "query_to_xml"),
        ("SELECT * FROM pg_stats", "pg_stats"),
        ("CREATE SCHEMA mine", "create a schema"),
        ("ALTER ROLE app SET work_mem = 1", "ALTER ROLE"),
        ("EXECUTE pgfleet_3", "prepared statement pgfleet_3"),
        ("EXECUTE PGFLEET_3(1, 'x')", "prepared statement pgfleet_3"),
        ("EXECUTE \"pgfleet_3\"", "prepared statement pgfleet_3"),
        ("EXPLAIN ANALYZE EXECUTE pgfleet_3", "prepared statement pgfleet_3"),
        ("CREATE TABLE t AS EXECUTE pgfleet_3", "prepared statement pgfleet_3"),
        ("SELECT 1; EXECUTE pgfleet_3", "prepared statement pgfleet_3"),
        ("PREPARE pgfleet_3 AS SELECT 1", "prepared statement pgfleet_3"),
        ("DEALLOCATE pgfleet_3", "prepared statement pgfleet_3"),
        ("DEALLOCATE PREPARE pgfleet_3", "prepared statement pgfleet_3"),
        (
            "SELECT * FROM ts_stat('SELECT to_tsvector(body) FROM tenant_' || 'globex.notes')",
            "ts_stat",
        ),
        (
            "SELECT ts_rewrite('a'::tsquery, 'SELECT t, s FROM ' || 'x')",
            "ts_rewrite",
        ),
        ("SELECT * FROM crosstab('SELECT 1')", "crosstab"),
        ("SELECT setval('tenant_' || 'globex.s', 1)", "setval with a computed sequence"),
        ("SELECT nextval(16400)", "nextval with a computed sequence"),
        ("SELECT currval(x) FROM t", "currval with a computed sequence"),
        ("SELECT nextval('tenant_globex.s')", "schema tenant_globex"),
        ("DROP OWNED BY CURRENT_USER", "DROP OWNED"),
        ("REASSIGN OWNED BY CURRENT_USER TO x", "REASSIGN OWNED"),
        (
            "UPDATE pg_settings SET setting = 'tenant_globex' WHERE name = 'search_path'",
            "update pg_settings",
        ),
        (
            "WITH s AS (UPDATE pg_catalog.pg_settings SET setting = 'x' RETURNING 1) SELECT * FROM s",
            "update pg_settings",
        ),
        ("ALTER ROLE CURRENT_USER PASSWORD 'x'", "ROLE"),
        ("ALTER USER app CONNECTION LIMIT 0", "ROLE"),
        ("CREATE ROLE x", "ROLE"),
        ("DROP ROLE x", "ROLE"),
        ("GRANT admin TO app", "role membership"),
        ("ALTER DATABASE app CONNECTION LIMIT 0", "ALTER DATABASE"),
        ("VACUUM FULL", "VACUUM and ANALYZE without a table list"),
        ("ANALYZE", "VACUUM and ANALYZE without a table list"),
        ("CLUSTER", "CLUSTER without a table"),
        ("REINDEX DATABASE app", "REINDEX DATABASE"),
        ("REINDEX SYSTEM", "REINDEX DATABASE"),
        (r#"DROP TABLE U&"tenant\005fglobex".notes"#, "schema tenant_globex"),
        (r#"DROP TABLE u&"tenant\+00005Fglobex".notes"#, "schema tenant_globex"),
        (r#"SELECT U&"tenant\005fglobex".f()"#, "schema tenant_globex"),
        (r#"SELECT NULL::U&"tenant\005fglobex".t"#, "schema tenant_globex"),
        (
            r#"GRANT ALL ON ALL TABLES IN SCHEMA U&"tenant\005fglobex" TO x"#,
            "schema tenant_globex",
        ),
        (r#"DROP TABLE U&"tenant!005fglobex" UESCAPE '!'.notes"#, "UESCAPE"),
        (r#"DROP TABLE U&"tenant\05fglobex".notes"#, "malformed"),
        ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity", "pg_terminate_backend"),
        ("SELECT pg_catalog.pg_cancel_backend(42)", "pg_cancel_backend"),
        ("ROLLBACK PREPARED 'pgfleet_1_5_7'", "prepared transaction 'pgfleet_1_5_7'"),
        ("COMMIT PREPARED 'pgfleet_1_5_7'", "prepared transaction 'pgfleet_1_5_7'"),
        ("PREPARE TRANSACTION 'pgfleet_1_5_7'", "prepared transaction 'pgfleet_1_5_7'"),
    ];
    for (sql, needle) in refused {
        let e = check(sql, &r).expect_err(sql);
        assert!(e.contains(needle), "{sql}: {e}");
    }
}

#[test]
fn row_model_table() {
    let r = row_rules();
    assert_eq!(check("SELECT * FROM notes", &r), Ok(()));
    // Without a schema model every schema name is fine.
    assert_eq!(
        tenant_facts("SELECT * FROM tenant_globex.notes", None).check(&r),
        Ok(())
    );
    for (sql, needle) in [
        ("SET app.current_tenant = 'globex'", "app.current_tenant"),
        ("RESET app.current_tenant", "reset app.current_tenant"),
        ("SET app.current_tenant TO DEFAULT", "reset"),
        (
            "SELECT set_config('app.current_tenant', 'globex', false)",
            "app.current_tenant",
        ),
        ("SET pgfleet.tenant = 'globex'", "tenant is fixed"),
        ("SET ROLE other", "role"),
        ("/* pgfleet: shard=1 */ SELECT 1", "shard hint"),
        ("TRUNCATE notes", "TRUNCATE"),
        ("TRUNCATE TABLE notes, other RESTART IDENTITY", "TRUNCATE"),
        (
            "ALTER TABLE notes DISABLE ROW LEVEL SECURITY",
            "row-level security off",
        ),
        (
            "ALTER TABLE notes NO FORCE ROW LEVEL SECURITY",
            "row-level security off",
        ),
        ("CREATE POLICY p ON notes USING (true)", "POLICY"),
        ("ALTER POLICY p ON notes USING (true)", "POLICY"),
        ("DROP POLICY p ON notes", "DROP POLICY"),
    ] {
        let e = check(sql, &r).expect_err(sql);
        assert!(e.contains(needle), "{sql}: {e}");
    }
    // The schema model keeps tenants apart by schema: its own tables are its own to empty.
    for sql in [
        "TRUNCATE notes",
        "ALTER TABLE notes ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE notes FORCE ROW LEVEL SECURITY",
        "DROP TABLE notes",
    ] {
        assert_eq!(check(sql, &schema_rules()), Ok(()), "{sql}");
    }
    assert_eq!(
        check("ALTER TABLE notes FORCE ROW LEVEL SECURITY", &r),
        Ok(())
    );
}

#[test]
fn settings_only_texts() {
    let only = |sql: &str| tenant_facts(sql, None).only_settings;
    assert!(only("SET pgfleet.tenant = 'acme'"));
    assert!(only(
        "SET application_name = 'x'; SHOW work_mem; RESET work_mem"
    ));
    assert!(!only("SET pgfleet.tenant = 'acme'; SELECT * FROM notes"));
    assert!(!only("SELECT set_config('pgfleet.tenant', 'acme', false)"));
    assert!(!only("not sql"));
}

#[test]
fn template_matching() {
    let p = ("t_".to_owned(), "_s".to_owned());
    assert!(matches_template("t_acme_s", &p));
    assert!(!matches_template("t__s", &p));
    assert!(!matches_template("t_1x_s", &p));
    assert!(!matches_template("public", &p));
}

#[test]
fn shared_analyses_check_like_the_exact_text() {
    let texts = [
        "SELECT * FROM notes WHERE id = 5",
        "SELECT * FROM notes WHERE body = 'tenant_x is just text' LIMIT 3",
        "SELECT * FROM tenant_acme.notes WHERE id = 7",
        "SELECT * FROM tenant_globex.notes WHERE id = 7",
        "SELECT 'tenant_globex.notes'::regclass",
        "SELECT to_regclass('\"tenant_globex\".notes'), 1",
        "SELECT * FROM notes WHERE body = 'tenant_globex.x'",
        "SELECT * FROM notes WHERE body = 'tenant_acme.x'",
        "SELECT set_config('search_path', 'x', true)",
        "SELECT set_config('app.current_tenant', 'globex', false)",
        "SELECT set_config('work_mem', '8MB', false)",
        "SET search_path = 'tenant_globex'",
        "SET app.current_tenant = 'globex'",
        "SET work_mem = '8MB'",
        "SET pgfleet.tenant = 'globex'",
        "DO 'BEGIN PERFORM 1; END'",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'",
        "SELECT query_to_xml('select 1', true, false, '')",
        "/* pgfleet: shard=1 */ SELECT * FROM notes WHERE id = 3",
        "SELECT * FROM pg_stats WHERE attname = 'x'",
        "INSERT INTO notes VALUES (1, 'a'), (2, 'b'); SELECT 1",
        "COPY (SELECT * FROM notes WHERE id = 1) TO STDOUT",
        "SELECT * FROM notes WHERE id = 5 AND",
        "SELECT nextval('notes_id_seq')",
        "SELECT setval('tenant_globex.s', 5)",
        "SELECT setval('tenant_' || 'globex.s', 5)",
        "SELECT nextval(16400)",
    ];
    let g = TenantGuard::new(Some(pattern()), 64);
    for rules in [schema_rules(), row_rules()] {
        for sql in texts {
            let exact = tenant_facts(sql, Some(&pattern())).check(&rules);
            // Twice: the second time from the cache.
            for _ in 0..2 {
                assert_eq!(g.facts(sql).check(&rules), exact, "{sql}");
            }
        }
    }
    // Texts that differ only in literals share one analysis.
    let a = g.facts("SELECT * FROM notes WHERE id = 1 AND body = 'x'");
    let b = g.facts("SELECT * FROM notes WHERE id = 2 AND body = 'y'");
    assert!(std::sync::Arc::ptr_eq(&a, &b));
}

#[test]
fn guard_caches_by_text() {
    let g = TenantGuard::new(Some(pattern()), 4);
    let a = g.facts("SELECT * FROM tenant_b.x");
    let b = g.facts("SELECT * FROM tenant_b.x");
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(a.tenant_schemas, vec!["tenant_b".to_owned()]);
}
