//! Cross-shard SELECT planning: from one SELECT that reads several shards, the SQL each shard
//! runs and the [`MergePlan`] that `pgfleet-merge` executes over the shards' rows, so that the
//! client gets exactly what one PostgreSQL server holding all rows would return — or a clear
//! error ([`MergePlanError`], SQLSTATE 0A000) when pgfleet cannot promise that.
//!
//! Module map:
//! - [`types`]: the plan values ([`ShardQuery`], [`MergePlan`], [`AggregatePlan`], …).
//! - `refuse`: constructs refused before planning (window functions, DISTINCT ON, set
//!   operations, row locks, sub-queries that need a global view, …).
//! - `expr`: expression facts (canonical text via pg_query deparse, output names, aggregates).
//! - `build`: the rewrite — hidden ORDER BY columns, `LIMIT limit+offset`, avg → sum + count,
//!   aggregate helper columns; HAVING/ORDER BY/LIMIT/OFFSET/DISTINCT moved after the merge.
//! - `having`: HAVING as a [`Predicate`] the merge evaluates per merged group.
//! - `limit`: LIMIT/OFFSET values and the shards' `LIMIT limit+offset`.
//! - [`error`]: the error type, [`MergePlanError`].
//!
//! Everything works on the pg_query parse tree and deparses it back; no text is patched.
//! Column types are not known here (there is no schema snapshot yet): type-dependent rules
//! (which sums are exact, how values compare) are applied by `pgfleet-merge` when the shards'
//! RowDescription arrives, before any row reaches the client. See docs/sharding.md,
//! "Cross-shard reads".

mod build;
pub mod error;
mod expr;
mod having;
mod limit;
mod refuse;
pub mod types;

pub use error::MergePlanError;
pub use types::{
    Aggregate, AggregatePlan, CompareOp, FinalColumn, LimitValue, Literal, MergeMode, MergePlan,
    Operand, Predicate, ShardQuery, SortColumn, SortKey,
};

use pg_query::NodeEnum;

/// Which tables are copied whole to every shard (reference tables). A sub-query in the select
/// list that reads any other table sees only one shard's rows, so it is refused.
pub trait TableScope {
    /// Whether `schema.table` (schema as written, if any) is a reference table.
    fn is_reference(&self, schema: Option<&str>, table: &str) -> bool;
}

impl<F: Fn(Option<&str>, &str) -> bool> TableScope for F {
    fn is_reference(&self, schema: Option<&str>, table: &str) -> bool {
        self(schema, table)
    }
}

/// A [`TableScope`] with no reference tables: every table is treated as sharded.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllSharded;

impl TableScope for AllSharded {
    fn is_reference(&self, _: Option<&str>, _: &str) -> bool {
        false
    }
}

/// Plans one SELECT that the router sends to several shards.
///
/// The caller has decided that the statement reads several shards; this function decides how.
/// Only the select list, HAVING, ORDER BY, LIMIT/OFFSET and DISTINCT are rewritten; FROM and
/// WHERE go to every shard unchanged (joins and sub-queries in WHERE are the router's to judge).
pub fn plan_select(sql: &str, scope: &dyn TableScope) -> Result<ShardQuery, MergePlanError> {
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT)
        .map_err(|e| MergePlanError::Parse(e.to_string()))?;
    let select = match parsed.protobuf.stmts.as_slice() {
        [one] => match one.stmt.as_deref().and_then(|n| n.node.as_ref()) {
            Some(NodeEnum::SelectStmt(s)) => s.as_ref(),
            _ => {
                return Err(MergePlanError::Unsupported {
                    construct: "a statement other than SELECT".to_string(),
                    tables: Vec::new(),
                })
            }
        },
        _ => {
            return Err(MergePlanError::Unsupported {
                construct: "a query string with several statements".to_string(),
                tables: Vec::new(),
            })
        }
    };
    let checker = refuse::Checker::new(select, scope);
    checker.check(select)?;
    let mut q = build::plan(select, &checker)?;
    let before = param_numbers(pg_query::NodeRef::SelectStmt(select));
    let rewritten = pg_query::parse(&q.sql, pg_query::ParserOptions::DEFAULT)
        .map_err(|e| MergePlanError::Parse(e.to_string()))?;
    let after: std::collections::BTreeSet<u32> = rewritten
        .protobuf
        .stmts
        .iter()
        .filter_map(|s| s.stmt.as_deref().and_then(|n| n.node.as_ref()))
        .flat_map(|n| param_numbers(n.to_ref()))
        .collect();
    q.unused_params = before.difference(&after).copied().collect();
    Ok(q)
}

/// The parameter numbers (`$n`) a parse tree mentions.
fn param_numbers(root: pg_query::NodeRef<'_>) -> std::collections::BTreeSet<u32> {
    let mut found = std::collections::BTreeSet::new();
    let mut stack = vec![root];
    let mut children = Vec::new();
    while let Some(node) = stack.pop() {
        if let pg_query::NodeRef::ParamRef(p) = node {
            if let Ok(n) = u32::try_from(p.number) {
                found.insert(n);
            }
        }
        crate::children::push_children(node, &mut children);
        stack.append(&mut children);
    }
    found
}
