//! What kind of execution a statement needs when it runs on several shards.

use pg_query::NodeEnum;

/// How a statement runs across shards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrossShardKind {
    /// A SELECT: planned with [`crate::merge_plan::plan_select`] and merged.
    Read,
    /// A statement that changes data or schema inside a transaction: run on every shard in one
    /// two-phase-commit transaction.
    Write,
    /// A statement PostgreSQL refuses inside a transaction block (`CREATE INDEX CONCURRENTLY`,
    /// `VACUUM`, …), named: run shard by shard.
    OutsideTransaction(&'static str),
    /// COPY.
    Copy,
    /// EXPLAIN.
    Explain,
    /// Something pgfleet does not run across shards, named.
    Unsupported(&'static str),
}

/// The kind of the first statement of `sql` (callers pass single statements); a text that does
/// not parse is `Unsupported` (the server will report the syntax error when it runs anywhere).
pub fn cross_shard_kind(sql: &str) -> CrossShardKind {
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        return CrossShardKind::Unsupported("a statement that does not parse");
    };
    let Some(node) = first_statement(&parsed) else {
        return CrossShardKind::Unsupported("an empty statement");
    };
    match node {
        NodeEnum::SelectStmt(s) if s.into_clause.is_some() => {
            CrossShardKind::Unsupported("SELECT INTO")
        }
        NodeEnum::SelectStmt(_) => CrossShardKind::Read,
        NodeEnum::IndexStmt(i) if i.concurrent => {
            CrossShardKind::OutsideTransaction("CREATE INDEX CONCURRENTLY")
        }
        NodeEnum::DropStmt(d) if d.concurrent => {
            CrossShardKind::OutsideTransaction("DROP INDEX CONCURRENTLY")
        }
        NodeEnum::ReindexStmt(r)
            if r.params.iter().any(|p| {
                matches!(p.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname == "concurrently")
            }) =>
        {
            CrossShardKind::OutsideTransaction("REINDEX CONCURRENTLY")
        }
        NodeEnum::VacuumStmt(v) if v.is_vacuumcmd => CrossShardKind::OutsideTransaction("VACUUM"),
        NodeEnum::CopyStmt(_) => CrossShardKind::Copy,
        NodeEnum::ExplainStmt(_) => CrossShardKind::Explain,
        NodeEnum::TransactionStmt(_) => CrossShardKind::Unsupported("transaction control"),
        NodeEnum::DeclareCursorStmt(_) => CrossShardKind::Unsupported("a cursor"),
        _ => CrossShardKind::Write,
    }
}

/// The first statement of a parse result.
pub(crate) fn first_statement(parsed: &pg_query::ParseResult) -> Option<&NodeEnum> {
    parsed
        .protobuf
        .stmts
        .first()
        .and_then(|s| s.stmt.as_ref())
        .and_then(|n| n.node.as_ref())
}

/// An option's value (`DefElem` argument) as text: strings, booleans and integers.
pub(crate) fn option_value(d: &pg_query::protobuf::DefElem) -> Option<String> {
    d.arg.as_ref().and_then(|a| match a.node.as_ref() {
        Some(NodeEnum::String(s)) => Some(s.sval.clone()),
        Some(NodeEnum::Boolean(b)) => Some(b.boolval.to_string()),
        Some(NodeEnum::Integer(i)) => Some(i.ival.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        use CrossShardKind::*;
        assert_eq!(cross_shard_kind("SELECT * FROM t"), Read);
        assert_eq!(cross_shard_kind("UPDATE t SET a = 1"), Write);
        assert_eq!(cross_shard_kind("CREATE TABLE t (a int)"), Write);
        assert_eq!(
            cross_shard_kind("CREATE INDEX CONCURRENTLY i ON t (a)"),
            OutsideTransaction("CREATE INDEX CONCURRENTLY")
        );
        assert_eq!(cross_shard_kind("VACUUM t"), OutsideTransaction("VACUUM"));
        assert_eq!(cross_shard_kind("ANALYZE t"), Write);
        assert_eq!(cross_shard_kind("COPY t FROM STDIN"), Copy);
        assert_eq!(cross_shard_kind("EXPLAIN SELECT 1"), Explain);
        assert_eq!(
            cross_shard_kind("SELECT 1 INTO x"),
            Unsupported("SELECT INTO")
        );
    }
}
