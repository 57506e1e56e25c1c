//! One SQL script (the up or down part of a migration) parsed with the real PostgreSQL grammar
//! (libpg_query): its statements, which of them cannot run inside a transaction block, and the
//! parse trees the linter reads.

use std::path::{Path, PathBuf};

use pg_query::protobuf::{AlterTableType, Node, ReindexObjectType, TransactionStmtKind};
use pg_query::NodeEnum;

use crate::checksum::checksum;
use crate::MigrateError;

/// One statement of a script.
#[derive(Clone, Debug)]
pub struct Statement {
    /// Its text, as written (without the separating semicolon).
    pub sql: String,
    /// 1-based line where it starts in the file.
    pub line: usize,
    /// Why it cannot run inside a transaction block, if it cannot (e.g. `CREATE INDEX CONCURRENTLY`).
    pub outside_transaction: Option<&'static str>,
    /// Its parse tree.
    pub node: Node,
}

/// How a script is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// In one transaction together with its history row: all or nothing.
    Transaction,
    /// Statement by statement outside a transaction block, because one of them cannot run
    /// inside one; the history row is written after the last statement succeeded.
    Outside,
}

/// A parsed script.
#[derive(Clone, Debug)]
pub struct Script {
    /// The file.
    pub path: PathBuf,
    /// Its text as read.
    pub text: String,
    /// SHA-256 of the normalized text (see [`crate::checksum`]).
    pub checksum: String,
    /// Its statements, in order.
    pub statements: Vec<Statement>,
}

impl Script {
    /// Parses `text` read from `path`; a syntax error or a transaction control statement is an
    /// error naming the file.
    pub fn parse(path: &Path, text: String) -> Result<Script, MigrateError> {
        let fail = |message: String| MigrateError::Source {
            path: path.to_path_buf(),
            message,
        };
        let parsed = pg_query::parse(&text, pg_query::ParserOptions::DEFAULT)
            .map_err(|e| fail(format!("syntax error: {e}")))?;
        let mut statements = Vec::new();
        for raw in parsed.protobuf.stmts {
            let Some(node) = raw.stmt.map(|b| *b) else {
                continue;
            };
            // Byte offsets from the parser; stmt_len 0 means "to the end".
            let start = usize::try_from(raw.stmt_location).unwrap_or(0);
            let end = match usize::try_from(raw.stmt_len) {
                Ok(0) | Err(_) => text.len(),
                Ok(len) => start + len,
            };
            let sql = text.get(start..end).unwrap_or_default().trim().to_string();
            let leading = text.get(..start).unwrap_or_default();
            let line = leading.matches('\n').count()
                + 1
                + sql_leading_newlines(text.get(start..end).unwrap_or_default());
            if let Some(NodeEnum::TransactionStmt(t)) = &node.node {
                let kind =
                    TransactionStmtKind::try_from(t.kind).unwrap_or(TransactionStmtKind::Undefined);
                return Err(fail(format!(
                    "line {line}: remove the transaction control statement ({kind:?}); pgfleet runs each migration in its own transaction (or outside one when a statement needs it)"
                )));
            }
            statements.push(Statement {
                outside_transaction: outside_transaction(&node),
                sql,
                line,
                node,
            });
        }
        Ok(Script {
            path: path.to_path_buf(),
            checksum: checksum(&text),
            text,
            statements,
        })
    }

    /// How the script runs: outside a transaction when any statement needs it.
    pub fn run_mode(&self) -> RunMode {
        if self
            .statements
            .iter()
            .any(|s| s.outside_transaction.is_some())
        {
            RunMode::Outside
        } else {
            RunMode::Transaction
        }
    }

    /// The first statement that cannot run inside a transaction block, with the reason.
    pub fn first_outside(&self) -> Option<(&Statement, &'static str)> {
        self.statements
            .iter()
            .find_map(|s| s.outside_transaction.map(|r| (s, r)))
    }

    /// The file name, for messages.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

fn sql_leading_newlines(s: &str) -> usize {
    let trimmed = s.trim_start();
    s[..s.len() - trimmed.len()].matches('\n').count()
}

/// Why PostgreSQL refuses this statement inside a transaction block ("cannot run inside a
/// transaction block"), if it does. See the PostgreSQL docs of each command.
pub fn outside_transaction(node: &Node) -> Option<&'static str> {
    match node.node.as_ref()? {
        NodeEnum::IndexStmt(s) if s.concurrent => Some("CREATE INDEX CONCURRENTLY"),
        NodeEnum::DropStmt(s) if s.concurrent => Some("DROP INDEX CONCURRENTLY"),
        NodeEnum::ReindexStmt(s) => {
            let concurrently = s.params.iter().any(|p| {
                matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname == "concurrently")
            });
            let kind = ReindexObjectType::try_from(s.kind).ok();
            if concurrently {
                Some("REINDEX CONCURRENTLY")
            } else if matches!(
                kind,
                Some(ReindexObjectType::ReindexObjectSystem | ReindexObjectType::ReindexObjectDatabase)
            ) {
                Some("REINDEX SYSTEM/DATABASE")
            } else {
                None
            }
        }
        NodeEnum::VacuumStmt(s) if s.is_vacuumcmd => Some("VACUUM"),
        NodeEnum::CreatedbStmt(_) => Some("CREATE DATABASE"),
        NodeEnum::DropdbStmt(_) => Some("DROP DATABASE"),
        NodeEnum::AlterSystemStmt(_) => Some("ALTER SYSTEM"),
        NodeEnum::CreateTableSpaceStmt(_) => Some("CREATE TABLESPACE"),
        NodeEnum::DropTableSpaceStmt(_) => Some("DROP TABLESPACE"),
        NodeEnum::ClusterStmt(s) if s.relation.is_none() => Some("CLUSTER without a table"),
        NodeEnum::CreateSubscriptionStmt(_) => Some("CREATE SUBSCRIPTION"),
        NodeEnum::DropSubscriptionStmt(_) => Some("DROP SUBSCRIPTION"),
        NodeEnum::AlterTableStmt(s) => s.cmds.iter().find_map(|c| match &c.node {
            Some(NodeEnum::AlterTableCmd(cmd))
                if cmd.subtype == AlterTableType::AtDetachPartition as i32
                    && matches!(cmd.def.as_deref(), Some(Node { node: Some(NodeEnum::PartitionCmd(p)) }) if p.concurrent) =>
            {
                Some("ALTER TABLE ... DETACH PARTITION CONCURRENTLY")
            }
            _ => None,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(sql: &str) -> Script {
        match Script::parse(Path::new("V1__t.sql"), sql.to_string()) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn statements_and_lines() {
        let s =
            script("-- header\nCREATE TABLE a (id int);\n\n  INSERT INTO a VALUES (1);\nSELECT 1");
        let got: Vec<(&str, usize)> = s
            .statements
            .iter()
            .map(|s| (s.sql.as_str(), s.line))
            .collect();
        assert_eq!(
            got,
            [
                ("CREATE TABLE a (id int)", 2),
                ("INSERT INTO a VALUES (1)", 4),
                ("SELECT 1", 5)
            ]
        );
        assert_eq!(s.run_mode(), RunMode::Transaction);
    }

    #[test]
    fn statements_that_cannot_run_in_a_transaction() {
        let outside = [
            (
                "CREATE INDEX CONCURRENTLY i ON t (a)",
                "CREATE INDEX CONCURRENTLY",
            ),
            (
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)",
                "CREATE INDEX CONCURRENTLY",
            ),
            ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY"),
            ("REINDEX (CONCURRENTLY) INDEX i", "REINDEX CONCURRENTLY"),
            ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
            ("VACUUM t", "VACUUM"),
            ("VACUUM FULL t", "VACUUM"),
            ("CREATE DATABASE x", "CREATE DATABASE"),
            ("DROP DATABASE x", "DROP DATABASE"),
            ("ALTER SYSTEM SET work_mem = '8MB'", "ALTER SYSTEM"),
            (
                "ALTER TABLE p DETACH PARTITION c CONCURRENTLY",
                "ALTER TABLE ... DETACH PARTITION CONCURRENTLY",
            ),
            ("CLUSTER", "CLUSTER without a table"),
        ];
        for (sql, why) in outside {
            let s = script(sql);
            assert_eq!(s.first_outside().map(|(_, r)| r), Some(why), "{sql}");
            assert_eq!(s.run_mode(), RunMode::Outside, "{sql}");
        }
        for sql in [
            "CREATE INDEX i ON t (a)",
            "DROP INDEX i",
            "REINDEX INDEX i",
            "ANALYZE t",
            "ALTER TABLE p DETACH PARTITION c",
            "CLUSTER t USING i",
            "CREATE TABLE t (a int)",
        ] {
            assert_eq!(script(sql).run_mode(), RunMode::Transaction, "{sql}");
        }
    }

    #[test]
    fn transaction_control_and_syntax_errors_are_refused() {
        for sql in [
            "BEGIN; CREATE TABLE t (a int); COMMIT;",
            "CREATE TABLE t (a int); COMMIT",
        ] {
            let e = Script::parse(Path::new("V1__t.sql"), sql.into())
                .err()
                .map(|e| e.to_string());
            assert!(
                e.as_deref()
                    .is_some_and(|e| e.contains("V1__t.sql") && e.contains("transaction control")),
                "{e:?}"
            );
        }
        let e = Script::parse(Path::new("V2__bad.sql"), "CREATE TABLEX t ();".into())
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("V2__bad.sql") && e.contains("syntax error")),
            "{e:?}"
        );
    }
}
