//! [`ShardPlan`]: everything about one SQL text that does not depend on bind values, computed
//! once per text and database topology (cache it by text): which tables each statement touches
//! and where they live, the co-location classes of its sharded tables with their key
//! restrictions, the keys of inserted rows, hints. [`ShardPlan::route`] then plugs in bind
//! parameters and session settings.

use pg_query::{NodeEnum, NodeRef};

use pgfleet_catalog::DatabaseTopology;

use super::error::ShardRouteError;
use super::insert::{InsertPlan, NewKey};
use super::keys::Pred;
use super::placement::default_route;
use super::query::query;
use super::route::ShardRoute;
use super::scope::Place;
use super::utility::{copy, derived_table, utility};
use crate::hint::parse_hints;

/// The bind-independent routing analysis of one SQL text for one database topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardPlan {
    pub(crate) sql: String,
    pub(crate) statements: Vec<Stmt>,
    pub(crate) hint_shard: Option<usize>,
    pub(crate) hint_key: Option<String>,
    pub(crate) hint_errors: Vec<String>,
    pub(crate) params: Vec<u32>,
    pub(crate) sharded_tables: Vec<String>,
}

impl ShardPlan {
    /// Bind parameters (`$n`, sorted) whose values the route depends on. Empty: the route is
    /// known from the text alone (given the session settings).
    pub fn parameters(&self) -> &[u32] {
        &self.params
    }

    /// Problems with `pgfleet:` comment hints (unknown keys, bad values), for a log line or
    /// NOTICE; hints with problems are ignored.
    pub fn hint_problems(&self) -> &[String] {
        &self.hint_errors
    }

    /// Whether every statement of the text is transaction control or a setting (`BEGIN`,
    /// `COMMIT`, `SET`, `SHOW`, `DISCARD`, `DEALLOCATE`): such a text names no table and can run
    /// wherever the session's other statements run (a transaction's shard), not only on the
    /// default shard [`ShardPlan::route`] gives it alone.
    pub fn is_neutral(&self) -> bool {
        !self.statements.is_empty() && self.statements.iter().all(|s| matches!(s, Stmt::Neutral))
    }

    /// Whether no statement of the text names a table (`BEGIN`, `SET`, `SELECT 1`,
    /// `SELECT now()`): it reads no shard's data, so it can run on whichever cluster the session
    /// uses (a transaction's shard); alone, [`ShardPlan::route`] sends it to the default shard.
    /// Utility statements (`CREATE FUNCTION`, …) do not count: they change the cluster they run on;
    /// nor does a text with a `shard` or `shard_key` hint (it asks for its shard).
    pub fn names_no_table(&self) -> bool {
        self.hint_shard.is_none()
            && self.hint_key.is_none()
            && !self.statements.is_empty()
            && self.statements.iter().all(|s| match s {
                Stmt::Neutral => true,
                Stmt::Query(q) => q.mentions.is_empty() && q.write == Write::Read,
                Stmt::Fixed(_) | Stmt::Refused(_) => false,
            })
    }

    /// Number of statements in the text.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// Sharded tables the text names, sorted.
    pub fn sharded_tables(&self) -> &[String] {
        &self.sharded_tables
    }
}

/// One statement's analysis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stmt {
    /// Transaction control and settings: goes wherever the text's other statements go.
    Neutral,
    /// Decided from the text alone.
    Fixed(ShardRoute),
    /// Cannot be routed (unless a hint or setting picks the shard).
    Refused(ShardRouteError),
    /// A query or DML statement routed by its tables and keys.
    Query(Query),
}

/// A table mention with where it lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mention {
    pub name: String,
    pub place: Place,
}

/// Sharded table mentions known to hold rows of the same shards (joined on equal shard keys),
/// with the key restriction of their query level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Class {
    pub members: Vec<usize>,
    pub pred: Pred,
    /// Not the statement's own level (a subquery, CTE, set-operation branch, INSERT's SELECT).
    pub nested: bool,
}

/// What a query statement writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    /// Nothing (or a table whose place decides alone: placed, or an unsharded database).
    Read,
    /// A reference table: every shard.
    Reference(String),
    /// A table on the default shard.
    Default(String),
    /// UPDATE/DELETE of a sharded table mention; `new_key` when an UPDATE sets the key.
    Sharded {
        target: usize,
        new_key: Option<NewKey>,
    },
    /// INSERT into a sharded table.
    Insert(InsertPlan),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Query {
    pub mentions: Vec<Mention>,
    pub classes: Vec<Class>,
    pub write: Write,
    /// A construct that is only answerable on one shard (`DECLARE` cursors).
    pub single_only: Option<&'static str>,
}

/// Analyzes `sql` for database `db`. Only a parse failure is an error here; statements that
/// cannot be routed are kept as refusals, because a shard hint or setting may still route them.
pub fn plan(sql: &str, db: &DatabaseTopology) -> Result<ShardPlan, ShardRouteError> {
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT)
        .map_err(|e| ShardRouteError::Parse(e.to_string()))?;
    let hints = parse_hints(sql);
    let mut statements = Vec::new();
    for raw in &parsed.protobuf.stmts {
        if let Some(stmt) = raw.stmt.as_deref().and_then(|n| n.node.as_ref()) {
            statements.push(statement(sql, stmt, db).unwrap_or_else(Stmt::Refused));
        }
    }
    let mut params = Vec::new();
    let mut sharded_tables = Vec::new();
    for s in &statements {
        if let Stmt::Query(q) = s {
            q.params(&mut params);
            sharded_tables.extend(
                q.mentions
                    .iter()
                    .filter(|m| m.place == Place::Sharded)
                    .map(|m| m.name.clone()),
            );
        }
    }
    params.sort_unstable();
    params.dedup();
    sharded_tables.sort();
    sharded_tables.dedup();
    Ok(ShardPlan {
        sql: sql.to_string(),
        statements,
        hint_shard: hints.shard,
        hint_key: hints.shard_key,
        hint_errors: hints.errors,
        params,
        sharded_tables,
    })
}

impl Query {
    fn params(&self, out: &mut Vec<u32>) {
        for c in &self.classes {
            c.pred.params(out);
        }
        let mut src = |s: &super::keys::Src| {
            if let super::keys::Src::Param(n) | super::keys::Src::ArrayParam(n) = s {
                out.push(*n);
            }
        };
        match &self.write {
            Write::Sharded {
                new_key: Some(NewKey::Value(s)),
                ..
            } => src(s),
            Write::Insert(i) => {
                match &i.rows {
                    super::insert::Rows::Values { keys, .. } => keys.iter().for_each(&mut src),
                    super::insert::Rows::SelectConstant(s) => src(s),
                    _ => {}
                }
                if let Some(NewKey::Value(s)) = &i.conflict_key {
                    src(s);
                }
            }
            _ => {}
        }
    }
}

fn statement(sql: &str, stmt: &NodeEnum, db: &DatabaseTopology) -> Result<Stmt, ShardRouteError> {
    match stmt {
        NodeEnum::SelectStmt(s) if s.into_clause.is_some() => {
            derived_table(sql, NodeRef::SelectStmt(s), db, "SELECT … INTO")
        }
        NodeEnum::SelectStmt(_) | NodeEnum::UpdateStmt(_) | NodeEnum::DeleteStmt(_) => {
            query(sql, stmt.to_ref(), db).map(Stmt::Query)
        }
        NodeEnum::InsertStmt(_) | NodeEnum::MergeStmt(_) => {
            query(sql, stmt.to_ref(), db).map(Stmt::Query)
        }
        NodeEnum::ExplainStmt(e) => match e.query.as_deref().and_then(|n| n.node.as_ref()) {
            Some(inner) => statement(sql, inner, db),
            None => Ok(Stmt::Fixed(default_route(db))),
        },
        NodeEnum::DeclareCursorStmt(d) => match d.query.as_deref().and_then(|n| n.node.as_ref()) {
            Some(inner) => {
                let mut q = query(sql, inner.to_ref(), db)?;
                q.single_only = Some("a cursor over several shards");
                Ok(Stmt::Query(q))
            }
            None => Ok(Stmt::Fixed(default_route(db))),
        },
        NodeEnum::CopyStmt(c) => match c.query.as_deref().and_then(|n| n.node.as_ref()) {
            Some(inner) => statement(sql, inner, db),
            None => copy(c, db),
        },
        NodeEnum::CreateTableAsStmt(c) => match c.query.as_deref().and_then(|n| n.node.as_ref()) {
            Some(inner) => derived_table(sql, inner.to_ref(), db, "CREATE TABLE … AS"),
            None => Ok(Stmt::Fixed(default_route(db))),
        },
        NodeEnum::PrepareStmt(p) => {
            let q = match p.query.as_deref().and_then(|n| n.node.as_ref()) {
                Some(inner) => query(sql, inner.to_ref(), db)?,
                None => return Ok(Stmt::Fixed(default_route(db))),
            };
            match q.mentions.iter().find(|m| m.place == Place::Sharded) {
                Some(m) => Err(ShardRouteError::Unsupported {
                    what: "SQL-level PREPARE (use the extended protocol's Parse instead)"
                        .to_string(),
                    tables: format!("sharded table `{}`", m.name),
                }),
                None => Ok(Stmt::Fixed(default_route(db))),
            }
        }
        // A client must not finish (or fake) one of pgfleet's two-phase commits on a shard.
        NodeEnum::TransactionStmt(t)
            if t.gid.starts_with(crate::own_names::TWO_PHASE_GID_PREFIX) =>
        {
            Err(ShardRouteError::OwnTransaction(t.gid.clone()))
        }
        NodeEnum::TransactionStmt(_)
        | NodeEnum::VariableSetStmt(_)
        | NodeEnum::VariableShowStmt(_)
        | NodeEnum::DiscardStmt(_)
        | NodeEnum::DeallocateStmt(_) => Ok(Stmt::Neutral),
        _ => utility(stmt, db),
    }
}
