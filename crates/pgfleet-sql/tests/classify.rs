//! Table-driven: SQL text → (target, reason kind), plus functions, transaction control, hints,
//! cache and deep-nesting behaviour of the read/write classification.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use pgfleet_sql::{
    classify_uncached, Analyzer, Target, Target::Primary as P, Target::Replica as R,
    TxControl as Tx, WriteReason as W,
};

/// A reason "kind": the variant, ignoring the name it carries.
fn kind(r: &Option<W>) -> &'static str {
    match r {
        None => "read",
        Some(W::Dml) => "dml",
        Some(W::Ddl) => "ddl",
        Some(W::LockingRead) => "locking",
        Some(W::ModifyingCte) => "cte",
        Some(W::SelectInto) => "into",
        Some(W::Lock) => "lock",
        Some(W::CopyFrom) => "copy_from",
        Some(W::Call) => "call",
        Some(W::Do) => "do",
        Some(W::SequenceFunction(_)) => "seq",
        Some(W::AdvisoryLock(_)) => "advisory",
        Some(W::VolatileFunction(_)) => "volatile",
        Some(W::TransactionControl) => "tx",
        Some(W::SessionCommand) => "session",
        Some(W::ParseError) => "parse",
        Some(W::Other(_)) => "other",
    }
}

fn cases() -> Vec<(&'static str, Target, &'static str)> {
    vec![
        // Plain reads.
        ("SELECT 1", R, "read"),
        ("select * from users where id = $1", R, "read"),
        ("TABLE t", R, "read"),
        ("VALUES (1), (2)", R, "read"),
        ("VALUES (1)", R, "read"),
        ("SHOW work_mem", R, "read"),
        ("SHOW ALL", R, "read"),
        ("SELECT a FROM t UNION ALL SELECT b FROM u ORDER BY 1", R, "read"),
        ("SELECT * FROM t WHERE x IN (SELECT y FROM u)", R, "read"),
        ("WITH c AS (SELECT 1) SELECT * FROM c", R, "read"),
        ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r WHERE n < 5) SELECT * FROM r", R, "read"),
        ("SELECT count(*) FROM t GROUP BY a HAVING count(*) > 1", R, "read"),
        ("SELECT f(x) FROM t", R, "read"),
        ("SELECT now(), random()", R, "read"),
        ("SELECT currval('s')", R, "read"),
        ("SELECT 'nextval(1)', 'DELETE FROM t'", R, "read"),
        ("SELECT * FROM generate_series(1, 3)", R, "read"),
        ("SELECT 1; SELECT 2", R, "read"),
        ("EXPLAIN SELECT 1", R, "read"),
        ("EXPLAIN ANALYZE SELECT * FROM t", R, "read"),
        ("EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM t", R, "read"),
        ("COPY t TO STDOUT", R, "read"),
        ("COPY (SELECT * FROM t) TO STDOUT WITH (FORMAT csv)", R, "read"),
        ("DECLARE c CURSOR FOR SELECT * FROM t", R, "read"),
        ("", R, "read"),
        ("-- just a comment", R, "read"),
        ("/* pgfleet: role=primary */ SELECT 1", R, "read"),
        ("/* pgfleet: role=replica */ DELETE FROM t", P, "dml"),
        // Transaction control.
        ("BEGIN READ ONLY", R, "read"),
        ("START TRANSACTION READ ONLY", R, "read"),
        ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", R, "read"),
        ("SET TRANSACTION READ ONLY", R, "read"),
        ("COMMIT", R, "read"),
        ("END", R, "read"),
        ("ROLLBACK", R, "read"),
        ("ABORT", R, "read"),
        ("SAVEPOINT a", R, "read"),
        ("ROLLBACK TO SAVEPOINT a", R, "read"),
        ("RELEASE a", R, "read"),
        ("BEGIN", P, "tx"),
        ("START TRANSACTION", P, "tx"),
        ("BEGIN READ WRITE", P, "tx"),
        ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY", P, "tx"),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY", P, "tx"),
        ("SET TRANSACTION READ WRITE", P, "tx"),
        ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", P, "tx"),
        ("PREPARE TRANSACTION 'g1'", P, "tx"),
        ("COMMIT PREPARED 'g1'", P, "tx"),
        ("ROLLBACK PREPARED 'g1'", P, "tx"),
        ("BEGIN; SELECT 1; COMMIT", P, "tx"),
        ("BEGIN READ ONLY; SELECT 1; COMMIT", R, "read"),
        // DML.
        ("INSERT INTO t VALUES (1)", P, "dml"),
        ("INSERT INTO t SELECT * FROM u", P, "dml"),
        ("UPDATE t SET a = 1 WHERE id = 2", P, "dml"),
        ("DELETE FROM t", P, "dml"),
        ("MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE", P, "dml"),
        ("TRUNCATE t", P, "dml"),
        ("WITH c AS (SELECT 1) INSERT INTO t SELECT * FROM c", P, "dml"),
        ("SELECT 1; DELETE FROM t", P, "dml"),
        ("EXPLAIN ANALYZE DELETE FROM t", P, "dml"),
        ("EXPLAIN DELETE FROM t", P, "dml"),
        ("COPY (DELETE FROM t RETURNING *) TO STDOUT", P, "dml"),
        // Hidden writes inside reads.
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", P, "cte"),
        ("WITH i AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM i", P, "cte"),
        ("SELECT * FROM (WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM u) s", P, "cte"),
        ("SELECT * FROM t FOR UPDATE", P, "locking"),
        ("SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED", P, "locking"),
        ("SELECT * FROM t FOR SHARE", P, "locking"),
        ("SELECT * FROM t FOR KEY SHARE NOWAIT", P, "locking"),
        ("SELECT * FROM t WHERE id IN (SELECT id FROM u FOR SHARE)", P, "locking"),
        ("SELECT * FROM (SELECT * FROM u FOR UPDATE) s", P, "locking"),
        ("WITH l AS (SELECT * FROM u FOR UPDATE) SELECT * FROM l", P, "locking"),
        ("EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE", P, "locking"),
        ("DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE", P, "locking"),
        ("SELECT * INTO new_t FROM t", P, "into"),
        ("SELECT nextval('s')", P, "seq"),
        ("SELECT pg_catalog.setval('s', 10)", P, "seq"),
        ("SELECT id FROM t WHERE id = (SELECT nextval('s'))", P, "seq"),
        ("SELECT pg_advisory_lock(1)", P, "advisory"),
        ("SELECT pg_try_advisory_xact_lock(1, 2)", P, "advisory"),
        ("SELECT pg_advisory_unlock_all()", P, "advisory"),
        ("SELECT CASE WHEN x THEN pg_advisory_lock_shared(1) END FROM t", P, "advisory"),
        // Other primary-only statements.
        ("LOCK TABLE t IN ACCESS EXCLUSIVE MODE", P, "lock"),
        ("COPY t FROM STDIN", P, "copy_from"),
        ("COPY t (a, b) FROM STDIN WITH (FORMAT csv)", P, "copy_from"),
        ("CALL p(1)", P, "call"),
        ("DO $$ BEGIN PERFORM 1; END $$", P, "do"),
        ("CREATE TABLE t (id int)", P, "ddl"),
        ("CREATE TABLE t2 AS SELECT * FROM t", P, "ddl"),
        ("CREATE INDEX CONCURRENTLY i ON t (a)", P, "ddl"),
        ("CREATE VIEW v AS SELECT 1", P, "ddl"),
        ("ALTER TABLE t ADD COLUMN b int", P, "ddl"),
        ("DROP TABLE t", P, "ddl"),
        ("GRANT SELECT ON t TO app", P, "ddl"),
        ("COMMENT ON TABLE t IS 'x'", P, "ddl"),
        ("REFRESH MATERIALIZED VIEW m", P, "ddl"),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", P, "ddl"),
        ("ALTER SYSTEM SET work_mem = '1MB'", P, "ddl"),
        ("VACUUM t", P, "other"),
        ("ANALYZE t", P, "other"),
        ("CHECKPOINT", P, "other"),
        // Session commands (the proxy handles them separately).
        ("SET work_mem = '64MB'", P, "session"),
        ("SET LOCAL statement_timeout = 0", P, "session"),
        ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", P, "session"),
        ("RESET ALL", P, "session"),
        ("LISTEN chan", P, "session"),
        ("UNLISTEN *", P, "session"),
        ("NOTIFY chan, 'x'", P, "session"),
        ("PREPARE p AS SELECT 1", P, "session"),
        ("EXECUTE p", P, "session"),
        ("DEALLOCATE ALL", P, "session"),
        ("DISCARD ALL", P, "session"),
        ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", P, "session"),
        ("FETCH 10 FROM c", P, "session"),
        ("CLOSE c", P, "session"),
        ("SELECT 1; SET work_mem = '1MB'", P, "session"),
        // Syntax errors.
        ("SELEC 1", P, "parse"),
        ("SELECT * FROM", P, "parse"),
        ("SELECT 'unterminated", P, "parse"),
        ("SELECT 1; DELETE FROM", P, "parse"),
    ]
}

#[test]
fn classification_table() {
    let table = cases();
    assert!(table.len() >= 70, "{} cases", table.len());
    let mut failures = Vec::new();
    for (sql, target, reason) in &table {
        let c = classify_uncached(sql);
        if c.target != *target || kind(&c.reason) != *reason {
            failures.push(format!(
                "{sql:?}: got ({:?}, {:?}), want ({target:?}, {reason})",
                c.target, c.reason
            ));
        }
        // The invariant the router relies on.
        assert_eq!(c.reason.is_some(), c.target == P, "{sql:?}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn reasons_name_the_function() {
    assert_eq!(
        classify_uncached("SELECT nextval('s')").reason,
        Some(W::SequenceFunction("nextval".into()))
    );
    assert_eq!(
        classify_uncached("SELECT PG_CATALOG.pg_advisory_lock(1)").reason,
        Some(W::AdvisoryLock("pg_catalog.pg_advisory_lock".into()))
    );
    assert_eq!(
        classify_uncached("VACUUM t").reason,
        Some(W::Other("VacuumStmt".into()))
    );
    // The first statement that needs the primary names the reason.
    assert_eq!(
        classify_uncached("SELECT 1; LOCK t; DELETE FROM t").reason,
        Some(W::Lock)
    );
}

#[test]
fn functions_of_reads_are_listed_in_text_order() {
    let f = |sql: &str| classify_uncached(sql).functions;
    assert_eq!(f("SELECT f(x) FROM t"), ["f"]);
    assert_eq!(f("SELECT now(), random()"), ["now", "random"]);
    assert_eq!(
        f("SELECT pg_catalog.random(), MySchema.F(1), now(), now()"),
        ["pg_catalog.random", "myschema.f", "now"]
    );
    assert_eq!(
        f("SELECT count(*) FROM t WHERE a = lower($1); SELECT g() FROM generate_series(1, 2)"),
        ["count", "lower", "g", "generate_series"]
    );
    assert_eq!(f("EXPLAIN ANALYZE SELECT h()"), ["h"]);
    assert_eq!(f("SELECT 1"), Vec::<String>::new());
    // Only read statements contribute.
    assert_eq!(f("SELECT a(); UPDATE t SET x = b()"), ["a"]);
    assert!(f("SELECT nextval('s'), now()").is_empty());
}

#[test]
fn transaction_control_of_the_first_statement() {
    let tx = |sql: &str| classify_uncached(sql).tx;
    assert_eq!(
        tx("BEGIN READ ONLY"),
        Tx::Begin {
            read_only: Some(true)
        }
    );
    assert_eq!(
        tx("START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY"),
        Tx::Begin {
            read_only: Some(true)
        }
    );
    assert_eq!(tx("BEGIN"), Tx::Begin { read_only: None });
    assert_eq!(
        tx("BEGIN READ WRITE"),
        Tx::Begin {
            read_only: Some(false)
        }
    );
    assert_eq!(
        tx("SET TRANSACTION READ ONLY"),
        Tx::SetTransactionReadOnly(true)
    );
    assert_eq!(
        tx("SET TRANSACTION READ WRITE"),
        Tx::SetTransactionReadOnly(false)
    );
    assert_eq!(tx("COMMIT"), Tx::Commit);
    assert_eq!(tx("COMMIT AND CHAIN"), Tx::Commit);
    assert_eq!(tx("ROLLBACK"), Tx::Rollback);
    assert_eq!(tx("ROLLBACK TO SAVEPOINT a"), Tx::None);
    assert_eq!(
        tx("BEGIN READ ONLY; SELECT 1"),
        Tx::Begin {
            read_only: Some(true)
        }
    );
    assert_eq!(tx("SELECT 1; COMMIT"), Tx::None);
    assert_eq!(tx("SELEC"), Tx::None);
}

#[test]
fn hints_are_exposed_and_applied_by_target_with_hint() {
    let c = classify_uncached("/* pgfleet: role=primary */ SELECT 1");
    assert_eq!((c.target, c.hints.role), (R, Some(P)));
    assert_eq!(c.target_with_hint(), P);
    // A replica hint never moves a write.
    let c = classify_uncached("/* pgfleet: role=replica */ DELETE FROM t");
    assert_eq!(c.target_with_hint(), P);
    let c = classify_uncached("SELECT 1 /* pgfleet: consistency=read_your_writes, colour=blue */");
    assert_eq!(c.hints.consistency.as_deref(), Some("read_your_writes"));
    assert_eq!(c.hints.errors, ["unknown hint key `colour` (ignored)"]);
    assert_eq!(c.target_with_hint(), R);
}

#[test]
fn deep_nesting_goes_to_the_primary_without_crashing() {
    for depth in [10usize, 100, 1_000, 10_000] {
        let sql = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        let c = classify_uncached(&sql);
        assert!(c.target == R || c.reason == Some(W::ParseError), "{depth}");
        let sub = format!(
            "{}SELECT 1 FOR UPDATE{}",
            "SELECT * FROM (".repeat(depth),
            ") s".repeat(depth)
        );
        assert_eq!(classify_uncached(&sub).target, P, "{depth}");
    }
}

#[test]
fn cache_returns_the_same_classification() {
    let a = Analyzer::new(2);
    let first = a.classify("SELECT * FROM t FOR UPDATE");
    let again = a.classify("SELECT * FROM t FOR UPDATE");
    assert!(Arc::ptr_eq(&first, &again));
    assert_eq!(*first, classify_uncached("SELECT * FROM t FOR UPDATE"));
    a.classify("SELECT 1");
    a.classify("SELECT 2");
    assert_eq!(a.classify_cache_len(), 2);
    // The session-effect cache is separate and still works.
    assert!(a.analyze("SET x = 1").changes_session());
    let off = Analyzer::new(0);
    assert_eq!(off.classify("SELECT 1").target, R);
    assert_eq!(off.classify_cache_len(), 0);
}
