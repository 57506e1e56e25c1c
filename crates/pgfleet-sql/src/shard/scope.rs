//! The tables a statement reads or writes, grouped into scopes: one per query level (each
//! SELECT, also the branches of UNION/INTERSECT/EXCEPT, subqueries, CTE bodies, and the
//! UPDATE/DELETE statement itself). A scope knows its tables (with aliases), its WHERE clause,
//! and its joins, which is what shard key extraction needs.
//!
//! The walk uses an explicit stack (no recursion: a hostile query must not grow our call stack).
//! CTE names are resolved as PostgreSQL does ("WITH Queries", queries-with.html): a name in a
//! WITH list is visible in the statement it belongs to, to the CTEs after it, and — only under
//! `WITH RECURSIVE` — to itself and the CTEs before it.

use pg_query::protobuf::{JoinType, RangeVar};
use pg_query::{Node, NodeEnum, NodeRef};

use pgfleet_catalog::{DatabaseTopology, TableLocation};

use crate::children::push_children;

/// Where one table lives, resolved against the topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// A sharded table.
    Sharded,
    /// A reference table.
    Reference,
    /// A table of a sharded database on its default shard.
    Default,
    /// A table in a placement group on this cluster.
    Placed(String),
    /// A table of an unsharded database on its own cluster.
    Home,
}

/// One mention of a table in a FROM list (or the target of UPDATE/DELETE/INSERT).
#[derive(Clone, Debug)]
pub(crate) struct TableRef {
    /// The name as PostgreSQL stores it (no schema).
    pub name: String,
    /// The schema as written, empty when not written.
    pub schema: String,
    /// The alias, if any (then the table's own name is not visible for column references).
    pub alias: Option<String>,
    /// Where it lives.
    pub place: Place,
    /// Its scope.
    pub scope: usize,
    /// Byte offset of the name in the text (identifies the mention).
    pub location: i32,
}

impl TableRef {
    /// Whether a column qualifier (`x` in `x.col`, or `s`, `x` in `s.x.col`) names this mention.
    pub fn answers_to(&self, schema: Option<&str>, name: &str) -> bool {
        match (&self.alias, schema) {
            (Some(alias), None) => alias == name,
            (Some(_), Some(_)) => false,
            (None, None) => self.name == name,
            (None, Some(s)) => self.schema == s && self.name == name,
        }
    }
}

/// A join inside one scope.
#[derive(Debug)]
pub(crate) struct Join<'a> {
    /// The ON condition.
    pub quals: Option<&'a Node>,
    /// True when this join and every join around it in the scope are inner joins: only then do
    /// key restrictions in ON restrict the scope's rows.
    pub all_inner: bool,
    /// `USING (…)` columns.
    pub using: Vec<String>,
    /// Locations of the tables directly on each side (not inside subqueries).
    pub left: Vec<i32>,
    /// See `left`.
    pub right: Vec<i32>,
}

/// One query level.
#[derive(Debug, Default)]
pub(crate) struct Scope<'a> {
    /// The enclosing scope and how many of its CTE names are visible here.
    parent: Option<(usize, usize)>,
    /// CTE names of this scope's WITH clause, in order.
    ctes: Vec<String>,
    /// Whether that WITH clause is RECURSIVE.
    recursive: bool,
    /// The WHERE clause.
    pub where_clause: Option<&'a Node>,
    /// The joins.
    pub joins: Vec<Join<'a>>,
    /// Whether any join in the scope is an outer join.
    pub has_outer_join: bool,
}

/// Every scope and table mention of one statement.
#[derive(Debug, Default)]
pub(crate) struct Tables<'a> {
    /// Scope 0 is the statement itself.
    pub scopes: Vec<Scope<'a>>,
    /// Every table mention, in walk order.
    pub refs: Vec<TableRef>,
}

/// One entry of the walk: a node, its scope, how many CTEs of the parent scope a scope starting
/// at this node may see, and whether every join above it in its scope is an inner join.
struct Item<'a> {
    node: NodeRef<'a>,
    scope: usize,
    cte_limit: usize,
    all_inner: bool,
}

/// Walks `root` (a statement) and collects scopes and table mentions. `skip` holds locations of
/// RangeVars that are not reads (an INSERT's target).
pub(crate) fn collect<'a>(db: &DatabaseTopology, root: NodeRef<'a>, skip: &[i32]) -> Tables<'a> {
    let mut t = Tables::default();
    let mut stack = vec![Item {
        node: root,
        scope: usize::MAX,
        cte_limit: usize::MAX,
        all_inner: true,
    }];
    let mut children = Vec::new();
    while let Some(item) = stack.pop() {
        let mut scope = item.scope;
        let mut all_inner = item.all_inner;
        match item.node {
            NodeRef::SelectStmt(_)
            | NodeRef::InsertStmt(_)
            | NodeRef::UpdateStmt(_)
            | NodeRef::DeleteStmt(_)
            | NodeRef::MergeStmt(_) => {
                scope = t.scopes.len();
                all_inner = true;
                let parent = (item.scope != usize::MAX).then_some((item.scope, item.cte_limit));
                let mut s = Scope {
                    parent,
                    ..Scope::default()
                };
                let (with, where_clause) = match item.node {
                    NodeRef::SelectStmt(n) => (n.with_clause.as_ref(), n.where_clause.as_deref()),
                    NodeRef::InsertStmt(n) => (n.with_clause.as_ref(), None),
                    NodeRef::UpdateStmt(n) => (n.with_clause.as_ref(), n.where_clause.as_deref()),
                    NodeRef::DeleteStmt(n) => (n.with_clause.as_ref(), n.where_clause.as_deref()),
                    NodeRef::MergeStmt(n) => (n.with_clause.as_ref(), None),
                    _ => (None, None),
                };
                if let Some(w) = with {
                    s.recursive = w.recursive;
                    s.ctes = w
                        .ctes
                        .iter()
                        .filter_map(|c| match c.node.as_ref() {
                            Some(NodeEnum::CommonTableExpr(c)) => Some(c.ctename.clone()),
                            _ => None,
                        })
                        .collect();
                }
                s.where_clause = where_clause;
                t.scopes.push(s);
            }
            NodeRef::CommonTableExpr(c) => {
                let s = &t.scopes[scope];
                let limit = if s.recursive {
                    usize::MAX
                } else {
                    s.ctes
                        .iter()
                        .position(|n| *n == c.ctename)
                        .unwrap_or(usize::MAX)
                };
                if let Some(q) = c.ctequery.as_deref().and_then(|n| n.node.as_ref()) {
                    stack.push(Item {
                        node: q.to_ref(),
                        scope,
                        cte_limit: limit,
                        all_inner: true,
                    });
                }
                continue;
            }
            NodeRef::RangeVar(rv) => {
                if !skip.contains(&rv.location) && !t.is_cte(scope, rv) {
                    t.add_table(db, rv, scope);
                }
                continue;
            }
            NodeRef::JoinExpr(j) => {
                let inner = j.jointype == JoinType::JoinInner as i32;
                all_inner = all_inner && inner;
                if let Some(s) = t.scopes.get_mut(scope) {
                    s.has_outer_join |= !inner;
                    s.joins.push(Join {
                        quals: j.quals.as_deref(),
                        all_inner,
                        using: j
                            .using_clause
                            .iter()
                            .filter_map(|c| match c.node.as_ref() {
                                Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                                _ => None,
                            })
                            .collect(),
                        left: side_tables(j.larg.as_deref()),
                        right: side_tables(j.rarg.as_deref()),
                    });
                }
            }
            // The new table of SELECT INTO, and `FOR UPDATE OF t` (names an existing mention).
            NodeRef::IntoClause(_) | NodeRef::LockingClause(_) => continue,
            // CTE bodies are pushed with their visibility above, from the scope's WITH list.
            NodeRef::WithClause(w) => {
                for c in &w.ctes {
                    if let Some(NodeEnum::CommonTableExpr(c)) = c.node.as_ref() {
                        stack.push(Item {
                            node: NodeRef::CommonTableExpr(c),
                            scope,
                            cte_limit: usize::MAX,
                            all_inner: true,
                        });
                    }
                }
                continue;
            }
            _ => {}
        }
        if scope == usize::MAX {
            // A utility statement at the root: its tables belong to a scope of their own.
            scope = t.scopes.len();
            t.scopes.push(Scope::default());
        }
        push_children(item.node, &mut children);
        stack.extend(children.drain(..).map(|node| Item {
            node,
            scope,
            cte_limit: usize::MAX,
            all_inner,
        }));
    }
    t
}

impl Tables<'_> {
    fn is_cte(&self, scope: usize, rv: &RangeVar) -> bool {
        if !rv.schemaname.is_empty() || scope == usize::MAX {
            return false;
        }
        let mut at = Some((scope, usize::MAX));
        while let Some((id, limit)) = at {
            let Some(s) = self.scopes.get(id) else {
                return false;
            };
            if s.ctes.iter().take(limit).any(|c| *c == rv.relname) {
                return true;
            }
            at = s.parent;
        }
        false
    }

    fn add_table(&mut self, db: &DatabaseTopology, rv: &RangeVar, scope: usize) {
        let place = match db.table_location(&rv.relname) {
            TableLocation::Sharded(_) => Place::Sharded,
            TableLocation::Reference => Place::Reference,
            TableLocation::DefaultShard(_) => Place::Default,
            TableLocation::Placed(g) => Place::Placed(g.cluster().to_string()),
            TableLocation::Home(_) => Place::Home,
        };
        let scope = if scope == usize::MAX {
            self.scopes.push(Scope::default());
            self.scopes.len() - 1
        } else {
            scope
        };
        self.refs.push(TableRef {
            name: rv.relname.clone(),
            schema: rv.schemaname.clone(),
            alias: rv.alias.as_ref().map(|a| a.aliasname.clone()),
            place,
            scope,
            location: rv.location,
        });
    }
}

/// Locations of the tables on one side of a join, through nested joins (not subqueries).
fn side_tables(node: Option<&Node>) -> Vec<i32> {
    let mut out = Vec::new();
    let mut stack: Vec<&Node> = node.into_iter().collect();
    while let Some(n) = stack.pop() {
        match n.node.as_ref() {
            Some(NodeEnum::RangeVar(rv)) => out.push(rv.location),
            Some(NodeEnum::JoinExpr(j)) => {
                stack.extend(j.larg.as_deref());
                stack.extend(j.rarg.as_deref());
            }
            _ => {}
        }
    }
    out
}
