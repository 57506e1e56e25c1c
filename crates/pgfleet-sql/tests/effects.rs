//! Table-driven: SQL text → session effects, plus prefilter, cache and parse-error behaviour.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use pgfleet_sql::{
    analyze_uncached, may_affect_session, Analysis, Analyzer, PinReason as P, SessionEffect as E,
    TransactionOp as T,
};

fn set(n: &str) -> E {
    E::Set { name: n.into() }
}
fn reset(n: &str) -> E {
    E::Reset { name: n.into() }
}
fn set_config(n: &str) -> E {
    E::SetConfig { name: n.into() }
}
fn dealloc(n: Option<&str>) -> E {
    E::Deallocate {
        name: n.map(Into::into),
    }
}

fn cases() -> Vec<(&'static str, Vec<E>)> {
    vec![
        ("SET search_path TO app, public", vec![set("search_path")]),
        ("set SESSION statement_timeout = '5s'", vec![set("statement_timeout")]),
        ("SET \"Search_Path\" = x", vec![set("search_path")]),
        ("SET LOCAL statement_timeout = 0", vec![E::None]),
        ("SET TIME ZONE 'UTC'", vec![set("timezone")]),
        ("SET ROLE app_reader", vec![set("role")]),
        ("SET SCHEMA 'tenant_1'", vec![set("search_path")]),
        ("SET NAMES 'UTF8'", vec![set("client_encoding")]),
        ("SET work_mem FROM CURRENT", vec![set("work_mem")]),
        ("SET work_mem TO DEFAULT", vec![reset("work_mem")]),
        ("RESET work_mem", vec![reset("work_mem")]),
        ("reset all", vec![E::ResetAll]),
        ("RESET ROLE", vec![reset("role")]),
        ("DISCARD ALL", vec![E::DiscardAll]),
        ("DISCARD PLANS", vec![E::None]),
        ("DEALLOCATE s1", vec![dealloc(Some("s1"))]),
        ("DEALLOCATE PREPARE \"S_1\"", vec![dealloc(Some("S_1"))]),
        ("DEALLOCATE ALL", vec![dealloc(None)]),
        ("SELECT set_config('search_path', 'app', false)", vec![set_config("search_path")]),
        ("SELECT set_config('Search_Path', 'app', 'off'::bool)", vec![set_config("search_path")]),
        ("SELECT set_config('search_path', 'app', true)", vec![E::None]),
        ("SELECT 1 FROM t WHERE x = (SELECT set_config('app.tenant', '7', false))", vec![set_config("app.tenant")]),
        ("SELECT set_config($1, 'x', false)", vec![E::Pin(P::SetConfigDynamic)]),
        ("SELECT set_config('a', 'x', $1)", vec![E::Pin(P::SetConfigDynamic)]),
        ("SELECT set_config('a', '1', false), set_config('b', '2', false)", vec![E::Pin(P::SetConfigDynamic)]),
        ("LISTEN jobs", vec![E::Pin(P::Listen)]),
        ("UNLISTEN jobs", vec![E::None]),
        ("SELECT pg_advisory_lock(42)", vec![E::Pin(P::AdvisoryLock)]),
        ("select PG_CATALOG.pg_try_advisory_lock_shared(1, 2)", vec![E::Pin(P::AdvisoryLock)]),
        ("SELECT pg_advisory_xact_lock(42)", vec![E::None]),
        ("SELECT pg_advisory_unlock(42)", vec![E::None]),
        ("UPDATE jobs SET done = true WHERE id IN (SELECT id FROM q WHERE pg_try_advisory_lock(id))", vec![E::Pin(P::AdvisoryLock)]),
        ("WITH l AS (SELECT CASE WHEN x THEN coalesce(pg_advisory_lock_shared(1)::text, '') END FROM t) SELECT * FROM l", vec![E::Pin(P::AdvisoryLock)]),
        ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", vec![E::Pin(P::WithHoldCursor)]),
        ("DECLARE c CURSOR FOR SELECT 1", vec![E::None]),
        ("CREATE TEMP TABLE tt (id int)", vec![E::Pin(P::TempObject)]),
        ("create temporary view v as select 1", vec![E::Pin(P::TempObject)]),
        ("CREATE TEMP SEQUENCE s", vec![E::Pin(P::TempObject)]),
        ("CREATE TEMP TABLE tt AS SELECT 1", vec![E::Pin(P::TempObject)]),
        ("SELECT 1 AS x INTO TEMP tt", vec![E::Pin(P::TempObject)]),
        ("CREATE TABLE pg_temp.tt (id int)", vec![E::Pin(P::TempObject)]),
        ("CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'select 1'", vec![E::Pin(P::TempObject)]),
        ("CREATE TABLE tmp_settings (id int)", vec![E::None]),
        ("PREPARE q AS SELECT 1", vec![E::Pin(P::SqlPrepare)]),
        ("EXECUTE q", vec![E::None]),
        ("SET SESSION AUTHORIZATION alice", vec![E::Pin(P::SessionAuthorization)]),
        ("RESET SESSION AUTHORIZATION", vec![E::Pin(P::SessionAuthorization)]),
        ("LOAD 'auto_explain'", vec![E::Pin(P::Load)]),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", vec![E::None]),
        ("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE", vec![set("default_transaction_isolation")]),
        ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY, DEFERRABLE", vec![E::Pin(P::SetConfigDynamic)]),
        ("DO $$ BEGIN PERFORM pg_advisory_lock(1); END $$", vec![E::Pin(P::AdvisoryLock)]),
        ("DO $$ BEGIN RAISE NOTICE 'hi'; END $$", vec![E::None]),
        ("BEGIN; SET LOCAL x.y = 1; COMMIT", vec![E::Transaction(T::Begin), E::None, E::Transaction(T::Commit)]),
        ("START TRANSACTION; SAVEPOINT s; RELEASE s; ROLLBACK TO SAVEPOINT s; ROLLBACK; END",
            vec![E::Transaction(T::Begin), E::Transaction(T::Savepoint), E::Transaction(T::Release),
                 E::Transaction(T::RollbackTo), E::Transaction(T::Rollback), E::Transaction(T::Commit)]),
        ("PREPARE TRANSACTION 'g'; COMMIT PREPARED 'g'; ROLLBACK PREPARED 'h'",
            vec![E::Transaction(T::Prepare), E::Transaction(T::CommitPrepared), E::Transaction(T::RollbackPrepared)]),
        ("SET a=1; SELECT 1; LISTEN x", vec![set("a"), E::None, E::Pin(P::Listen)]),
        ("/* set me */ SELECT 1 -- listen\n; select 2", vec![E::None, E::None]),
        ("-- leading comment\nSET application_name = 'reporting'", vec![set("application_name")]),
        ("SELECT offset_x FROM dataset", vec![E::None]),
        ("SELECT 'SET search_path = evil; LISTEN x' AS s", vec![E::None]),
        ("INSERT INTO payload (settings) VALUES ('temp')", vec![E::None]),
        ("EXPLAIN ANALYZE SELECT pg_advisory_lock(1)", vec![E::Pin(P::AdvisoryLock)]),
        ("SELECT U&\"pg_advisory_\\006cock\"(1)", vec![E::Pin(P::AdvisoryLock)]),
    ]
}

#[test]
fn table_of_sql_to_effects() {
    let cases = cases();
    assert!(cases.len() >= 40);
    for (sql, expected) in cases {
        let got = analyze_uncached(sql);
        assert_eq!(got.parse_error, None, "{sql}");
        assert_eq!(got.effects, expected, "{sql}");
    }
}

#[test]
fn prefilter_is_a_superset_of_the_analyzer() {
    for (sql, expected) in cases() {
        if expected
            .iter()
            .any(|e| !matches!(e, E::None | E::Transaction(_)))
        {
            assert!(may_affect_session(sql), "prefilter missed {sql}");
        }
    }
    assert!(!may_affect_session("SELECT * FROM users WHERE id = $1"));
    assert!(!may_affect_session("BEGIN"));
    assert!(!may_affect_session("SELECT offset_x FROM dataset"));
    assert!(!may_affect_session("UPDATE t SET x = 1 WHERE id = 2"));
}

#[test]
fn analyzer_skips_ruled_out_text_and_caches_the_rest() {
    let a = Analyzer::new(2);
    let plain = a.analyze("SELECT * FROM users");
    assert!(plain.effects.is_empty() && plain.parse_error.is_none());
    assert_eq!(a.cache_len(), 0, "prefiltered texts are not cached");

    let first = a.analyze("SET search_path = app");
    let again = a.analyze("SET search_path = app");
    assert!(
        Arc::ptr_eq(&first, &again),
        "cache hit returns the same Arc"
    );
    assert_eq!(first.effects, vec![set("search_path")]);
    assert!(first.changes_session());
    assert_eq!(a.cache_len(), 1);

    // Exact text is the key: a different spelling is a different entry; capacity bounds it.
    a.analyze("set search_path = app");
    a.analyze("LISTEN x");
    assert_eq!(a.cache_len(), 2);
    let evicted = a.analyze("SET search_path = app");
    assert!(!Arc::ptr_eq(&first, &evicted));
    assert_eq!(*first, *evicted);

    let uncached = Analyzer::new(0);
    uncached.analyze("SET a = 1");
    assert_eq!(uncached.cache_len(), 0);
}

#[test]
fn analysis_helpers() {
    let a = analyze_uncached("BEGIN; SELECT 1; LISTEN x; SELECT pg_advisory_lock(1)");
    assert_eq!(a.pin_reason(), Some(P::Listen));
    assert!(a.changes_session());
    let tx = analyze_uncached("BEGIN; SET LOCAL a = 1; COMMIT");
    assert_eq!(tx.pin_reason(), None);
    assert!(!tx.changes_session());
}

#[test]
fn parse_error_is_reported_not_raised() {
    let a: Analysis = analyze_uncached("SET search_path TO ;; SELEC 1");
    assert!(a.effects.is_empty());
    assert!(
        a.parse_error.as_deref().is_some_and(|m| !m.is_empty()),
        "{a:?}"
    );
    assert!(!a.changes_session());
}

#[test]
fn deep_nesting_fails_cleanly() {
    // Runs on a 2 MiB stack like a tokio worker.
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let a = Analyzer::new(8);
            for depth in [20usize, 30, 100, 1000, 5000] {
                let sql = format!(
                    "SELECT set_config('a', 'b', false) FROM {}SELECT 1{} x",
                    "(SELECT * FROM ".repeat(depth),
                    ") y".repeat(depth)
                );
                let r = a.analyze(&sql);
                assert!(
                    r.parse_error.is_some() || r.effects.len() == 1,
                    "depth {depth}"
                );
            }
            let parens = format!(
                "SET x = 1; SELECT {}1{}",
                "(".repeat(5000),
                ")".repeat(5000)
            );
            let _ = a.analyze(&parens);
            let chain = format!("SET x = 1; SELECT 1{}", "+1".repeat(20000));
            let _ = a.analyze(&chain);
            let shallow = a.analyze("SELECT set_config('a', 'b', false) FROM (SELECT 1) x");
            assert_eq!(shallow.effects, vec![set_config("a")]);
        })
        .unwrap()
        .join()
        .unwrap();
}
