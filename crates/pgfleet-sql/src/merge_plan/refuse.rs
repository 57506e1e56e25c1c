//! Constructs whose answer over several shards would differ from one server's answer, found
//! before planning so that such a query is refused (SQLSTATE 0A000) and never answered wrongly.

use pg_query::protobuf::{LimitOption, SelectStmt, SetOperation, SortByDir};
use pg_query::{Node, NodeEnum, NodeRef};

use crate::children::push_children;

use super::error::MergePlanError;
use super::expr::{aggregates_in, cte_names, display_relation, func_name, relations_in};
use super::TableScope;

/// The statement-level facts the checks need.
pub(crate) struct Checker<'a> {
    /// CTE names (not tables).
    pub ctes: Vec<String>,
    /// Every relation the statement reads, for messages.
    pub tables: Vec<String>,
    pub scope: &'a dyn TableScope,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(select: &SelectStmt, scope: &'a dyn TableScope) -> Checker<'a> {
        let root = NodeRef::SelectStmt(select);
        let ctes = cte_names(root);
        let mut tables: Vec<String> = relations_in(root, &ctes)
            .into_iter()
            .map(|(s, n)| display_relation(s, n))
            .collect();
        tables.sort();
        Checker {
            ctes,
            tables,
            scope,
        }
    }

    /// The error for an unsupported construct.
    pub(crate) fn refuse(&self, construct: impl Into<String>) -> MergePlanError {
        MergePlanError::Unsupported {
            construct: construct.into(),
            tables: self.tables.clone(),
        }
    }

    /// Tables under `root` that are not copied whole to every shard.
    fn sharded_in(&self, root: NodeRef<'_>) -> Vec<String> {
        relations_in(root, &self.ctes)
            .into_iter()
            .filter(|(s, n)| !self.scope.is_reference(*s, n))
            .map(|(s, n)| display_relation(s, n))
            .collect()
    }

    /// Checks of the top-level SELECT and everything under it.
    pub(crate) fn check(&self, select: &SelectStmt) -> Result<(), MergePlanError> {
        if select.op != SetOperation::SetopNone as i32 {
            return Err(self.refuse("UNION/INTERSECT/EXCEPT"));
        }
        if !select.values_lists.is_empty() {
            return Err(self.refuse("VALUES"));
        }
        if select.into_clause.is_some() {
            return Err(self.refuse("SELECT INTO"));
        }
        if select.limit_option == LimitOption::WithTies as i32 {
            return Err(self.refuse("FETCH FIRST … WITH TIES"));
        }
        if select.distinct_clause.iter().any(|n| n.node.is_some()) {
            return Err(self.refuse("DISTINCT ON"));
        }
        if !select.window_clause.is_empty() {
            return Err(self.refuse("WINDOW clause"));
        }
        for g in &select.group_clause {
            if matches!(g.node, Some(NodeEnum::GroupingSet(_))) {
                return Err(self.refuse("GROUPING SETS/ROLLUP/CUBE"));
            }
        }
        for s in &select.sort_clause {
            if let Some(NodeEnum::SortBy(sb)) = s.node.as_ref() {
                if sb.sortby_dir == SortByDir::SortbyUsing as i32 {
                    return Err(self.refuse("ORDER BY … USING"));
                }
            }
        }
        // Per-row sub-selects in the select list, HAVING and ORDER BY see only the shard's own
        // rows of a sharded table.
        let per_row: Vec<&Node> = select
            .target_list
            .iter()
            .chain(select.having_clause.as_deref())
            .chain(select.sort_clause.iter())
            .collect();
        for node in per_row {
            if let Some(n) = node.node.as_ref() {
                self.check_sublinks(n.to_ref())?;
            }
        }
        self.walk_all(select)
    }

    /// Window functions, row locks and sub-queries that need every shard's rows at once,
    /// anywhere in the statement.
    fn walk_all(&self, top: &SelectStmt) -> Result<(), MergePlanError> {
        let mut stack = vec![NodeRef::SelectStmt(top)];
        while let Some(n) = stack.pop() {
            match n {
                NodeRef::FuncCall(call) if call.over.is_some() => {
                    return Err(self.refuse(format!("window function `{}()`", func_name(call))));
                }
                NodeRef::SelectStmt(s) => {
                    if !s.locking_clause.is_empty() {
                        return Err(self.refuse("FOR UPDATE/FOR SHARE"));
                    }
                    if !std::ptr::eq(s, top) {
                        if let Some(what) = needs_global_view(s) {
                            let sharded = self.sharded_in(NodeRef::SelectStmt(s));
                            if !sharded.is_empty() {
                                return Err(self.refuse(format!(
                                    "a sub-query with {what} over sharded table {}",
                                    sharded.join(", ")
                                )));
                            }
                        }
                    }
                }
                _ => {}
            }
            push_children(n, &mut stack);
        }
        Ok(())
    }

    fn check_sublinks(&self, root: NodeRef<'_>) -> Result<(), MergePlanError> {
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            if let NodeRef::SubLink(s) = n {
                if let Some(sub) = s.subselect.as_deref().and_then(|x| x.node.as_ref()) {
                    let sharded = self.sharded_in(sub.to_ref());
                    if !sharded.is_empty() {
                        return Err(self.refuse(format!(
                            "a sub-query in the select list, HAVING or ORDER BY reading sharded table {}",
                            sharded.join(", ")
                        )));
                    }
                }
                continue;
            }
            push_children(n, &mut stack);
        }
        Ok(())
    }
}

/// What makes a nested SELECT's result depend on all rows of its tables (its per-shard result
/// would be a different answer).
fn needs_global_view(s: &SelectStmt) -> Option<&'static str> {
    let union_all = s.op == SetOperation::SetopUnion as i32 && s.all;
    if s.op != SetOperation::SetopNone as i32 && !union_all {
        return Some("UNION/INTERSECT/EXCEPT");
    }
    if !s.group_clause.is_empty() || s.having_clause.is_some() {
        return Some("GROUP BY/HAVING");
    }
    if !s.distinct_clause.is_empty() {
        return Some("DISTINCT");
    }
    if s.limit_count.is_some() || s.limit_offset.is_some() {
        return Some("LIMIT/OFFSET");
    }
    if s.target_list.iter().any(|t| match t.node.as_ref() {
        Some(NodeEnum::ResTarget(r)) => r
            .val
            .as_deref()
            .is_some_and(|v| !aggregates_in(v).is_empty()),
        _ => false,
    }) {
        return Some("aggregates");
    }
    None
}
