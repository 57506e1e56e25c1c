//! Turns a parsed SELECT into the per-shard SELECT and its [`MergePlan`].

use pg_query::protobuf::{
    a_const::Val, AConst, FuncCall, Node, ResTarget, SelectStmt, SortBy, SortByDir, SortByNulls,
};
use pg_query::NodeEnum;

use super::error::MergePlanError;
use super::expr::{
    aggregates_in, as_aggregate, bare_name, call_kind, deparse_select, expr_key, func_name,
    int_const, is_star, output_name, show, AggFn, CallKind,
};
use super::having::HavingBuilder;
use super::limit::{limit_value, make_node, shard_limit, string_node};
use super::refuse::Checker;
use super::types::{
    Aggregate, AggregatePlan, FinalColumn, LimitValue, MergeMode, MergePlan, ShardQuery,
    SortColumn, SortKey,
};

/// The select-list items of a statement (every item of `target_list` is a ResTarget).
fn res_targets(select: &SelectStmt) -> Vec<&ResTarget> {
    select
        .target_list
        .iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(NodeEnum::ResTarget(t)) => Some(t.as_ref()),
            _ => None,
        })
        .collect()
}

fn res_target_node(t: ResTarget) -> Node {
    Node {
        node: Some(NodeEnum::ResTarget(Box::new(t))),
    }
}

pub(crate) fn invalid(sqlstate: &'static str, message: impl Into<String>) -> MergePlanError {
    MergePlanError::Invalid {
        sqlstate,
        message: message.into(),
    }
}

/// Plans a SELECT already checked by [`Checker::check`].
pub(crate) fn plan(
    select: &SelectStmt,
    checker: &Checker<'_>,
) -> Result<ShardQuery, MergePlanError> {
    let limit = limit_value(select.limit_count.as_deref(), "LIMIT", checker)?;
    let offset = limit_value(select.limit_offset.as_deref(), "OFFSET", checker)?;
    let targets = res_targets(select);
    let sort_by = sort_items(select);
    let has_aggregates = targets
        .iter()
        .filter_map(|t| t.val.as_deref())
        .chain(sort_by.iter().filter_map(|s| s.node.as_deref()))
        .any(|n| !aggregates_in(n).is_empty());
    let distinct = !select.distinct_clause.is_empty();
    let aggregate_mode =
        has_aggregates || !select.group_clause.is_empty() || select.having_clause.is_some();
    let offset_set = !matches!(offset, None | Some(LimitValue::Const(0)));
    if offset_set && sort_by.is_empty() && (!aggregate_mode || !select.group_clause.is_empty()) {
        return Err(checker.refuse("OFFSET without ORDER BY"));
    }
    let mut shard = select.clone();
    let (mode, sort) = if aggregate_mode {
        let mut p = AggregatePlanner::new(&targets, checker)?;
        p.plan_targets()?;
        let group_keys = p.group_keys(&select.group_clause)?;
        let mut sort = Vec::new();
        for sb in &sort_by {
            let expr = sort_expr(sb)?;
            check_collation(expr, checker)?;
            let column = match resolve_output(expr, &targets, checker)? {
                Some(i) => i,
                None if distinct => return Err(distinct_order_error()),
                None => p.ensure_final(expr)?,
            };
            sort.push(sort_key(sb, SortColumn::Output(column)));
        }
        let having = match select.having_clause.as_deref() {
            Some(h) => Some(HavingBuilder { planner: &mut p }.predicate(h)?),
            None => None,
        };
        let (shard_targets, plan) = p.finish(group_keys, having);
        shard.target_list = shard_targets;
        shard.having_clause = None;
        shard.sort_clause = Vec::new();
        shard.distinct_clause = Vec::new();
        shard.limit_count = None;
        shard.limit_offset = None;
        (MergeMode::Aggregate(plan), sort)
    } else {
        let mut hidden: Vec<(String, Node)> = Vec::new();
        let mut sort = Vec::new();
        for sb in &sort_by {
            let expr = sort_expr(sb)?;
            check_collation(expr, checker)?;
            let found = resolve_output(expr, &targets, checker)?;
            let column = match found {
                Some(i) if !targets[..=i].iter().any(|t| is_star(t)) => SortColumn::Output(i),
                _ if distinct => return Err(distinct_order_error()),
                _ => {
                    // Not a client column (or after a `*`, whose width pgfleet does not know):
                    // a hidden helper column at the end, removed before rows reach the client.
                    let e = match found.and_then(|i| targets[i].val.as_deref()) {
                        Some(v) => v.clone(),
                        None => expr.clone(),
                    };
                    let key = expr_key(&e)?;
                    let j = match hidden.iter().position(|(k, _)| *k == key) {
                        Some(j) => j,
                        None => {
                            hidden.push((key, e));
                            hidden.len() - 1
                        }
                    };
                    SortColumn::Hidden(j)
                }
            };
            sort.push(sort_key(sb, column));
        }
        let hidden_columns = hidden.len();
        for (j, (_, e)) in hidden.into_iter().enumerate() {
            shard.target_list.push(res_target_node(ResTarget {
                name: format!("__pgfleet_sort_{j}"),
                val: Some(Box::new(e)),
                ..ResTarget::default()
            }));
        }
        shard.limit_count = shard_limit(select, limit, offset);
        shard.limit_offset = None;
        (MergeMode::Rows { hidden_columns }, sort)
    };
    Ok(ShardQuery {
        sql: deparse_select(shard)?,
        plan: MergePlan {
            mode,
            sort,
            distinct,
            limit,
            offset,
        },
        unused_params: Vec::new(),
    })
}

fn distinct_order_error() -> MergePlanError {
    invalid(
        "42P10",
        "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
    )
}

fn sort_items(select: &SelectStmt) -> Vec<&SortBy> {
    select
        .sort_clause
        .iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(NodeEnum::SortBy(s)) => Some(s.as_ref()),
            _ => None,
        })
        .collect()
}

fn sort_expr(sb: &SortBy) -> Result<&Node, MergePlanError> {
    sb.node
        .as_deref()
        .ok_or_else(|| invalid("XX000", "ORDER BY item without an expression"))
}

/// Direction and NULL placement, with PostgreSQL's defaults (SELECT docs, "ORDER BY Clause":
/// NULLS FIRST is the default for DESC order, NULLS LAST otherwise).
fn sort_key(sb: &SortBy, column: SortColumn) -> SortKey {
    let descending = sb.sortby_dir == SortByDir::SortbyDesc as i32;
    let nulls_first = if sb.sortby_nulls == SortByNulls::SortbyNullsFirst as i32 {
        true
    } else if sb.sortby_nulls == SortByNulls::SortbyNullsLast as i32 {
        false
    } else {
        descending
    };
    SortKey {
        column,
        descending,
        nulls_first,
    }
}

/// The merge compares text bytewise; an explicit collation other than "C" would order the shards'
/// rows differently from the merge.
fn check_collation(expr: &Node, checker: &Checker<'_>) -> Result<(), MergePlanError> {
    if let Some(NodeEnum::CollateClause(c)) = expr.node.as_ref() {
        let name = c
            .collname
            .last()
            .and_then(|n| match n.node.as_ref() {
                Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
                _ => None,
            })
            .unwrap_or("");
        if !matches!(name, "C" | "POSIX" | "ucs_basic") {
            return Err(checker.refuse(format!(
                "ORDER BY … COLLATE \"{name}\" (the merge orders text bytewise, as COLLATE \"C\")"
            )));
        }
    }
    Ok(())
}

/// The select-list item an ORDER BY item names: a position, an output column name, or an equal
/// expression (PostgreSQL's `findTargetlistEntrySQL92` then `…SQL99`).
fn resolve_output(
    expr: &Node,
    targets: &[&ResTarget],
    checker: &Checker<'_>,
) -> Result<Option<usize>, MergePlanError> {
    if let Some(NodeEnum::AConst(AConst {
        val: Some(Val::Ival(_)),
        ..
    })) = expr.node.as_ref()
    {
        let n = int_const(expr).unwrap_or(0);
        if n < 1 || n as usize > targets.len() {
            return Err(invalid(
                "42P10",
                format!("ORDER BY position {n} is not in select list"),
            ));
        }
        let i = n as usize - 1;
        if targets[..=i].iter().any(|t| is_star(t)) {
            return Err(checker.refuse(format!(
                "ORDER BY position {n} after a * in the select list (name the column instead)"
            )));
        }
        return Ok(Some(i));
    }
    if let Some(name) = bare_name(expr) {
        if let Some(i) = targets
            .iter()
            .position(|t| !is_star(t) && output_name(t) == name)
        {
            return Ok(Some(i));
        }
    }
    let key = expr_key(expr)?;
    for (i, t) in targets.iter().enumerate() {
        if let Some(v) = t.val.as_deref() {
            if !is_star(t) && expr_key(v)? == key {
                return Ok(Some(i));
            }
        }
    }
    Ok(None)
}

/// Builds the shard select list and the merged columns of an aggregate query.
pub(crate) struct AggregatePlanner<'a> {
    checker: &'a Checker<'a>,
    /// The client's select list as written.
    original: Vec<&'a ResTarget>,
    /// Expression keys of `original`.
    original_keys: Vec<String>,
    /// The shard's select list: rewritten client items, then helpers.
    shard_targets: Vec<ResTarget>,
    /// Expression keys of `shard_targets`.
    shard_keys: Vec<String>,
    columns: Vec<FinalColumn>,
    /// Expression key → merged column, for HAVING and ORDER BY items.
    final_keys: Vec<(String, usize)>,
}

impl<'a> AggregatePlanner<'a> {
    fn new(targets: &[&'a ResTarget], checker: &'a Checker<'a>) -> Result<Self, MergePlanError> {
        let mut original_keys = Vec::new();
        for t in targets {
            if is_star(t) {
                return Err(checker.refuse("* in the select list of an aggregate query"));
            }
            original_keys.push(match t.val.as_deref() {
                Some(v) => expr_key(v)?,
                None => String::new(),
            });
        }
        Ok(AggregatePlanner {
            checker,
            original: targets.to_vec(),
            original_keys,
            shard_targets: Vec::new(),
            shard_keys: Vec::new(),
            columns: Vec::new(),
            final_keys: Vec::new(),
        })
    }

    /// The client's columns: each is a group value or one aggregate. First every client column
    /// gets its shard column (same position), then helpers are appended.
    fn plan_targets(&mut self) -> Result<(), MergePlanError> {
        let mut aggregates = Vec::new();
        for i in 0..self.original.len() {
            let t = self.original[i];
            let Some(val) = t.val.as_deref() else {
                return Err(invalid("XX000", "select-list item without an expression"));
            };
            if aggregates_in(val).is_empty() {
                self.push_shard_target(t.clone())?;
                aggregates.push(None);
            } else if let Some(call) = as_aggregate(val) {
                let (partial, _) = self.partial(call)?;
                let mut name = t.name.clone();
                if name.is_empty() {
                    name = output_name(t);
                }
                self.push_shard_target(ResTarget {
                    name,
                    val: Some(Box::new(partial)),
                    ..ResTarget::default()
                })?;
                aggregates.push(Some(call));
            } else {
                return Err(self.checker.refuse(format!(
                    "an expression over aggregate results in the select list (`{}`); select the aggregates themselves",
                    show(val)
                )));
            }
        }
        for (i, call) in aggregates.into_iter().enumerate() {
            let column = match call {
                None => FinalColumn::Group { column: i },
                Some(call) => FinalColumn::Aggregate(self.aggregate(call, Some(i))?),
            };
            self.columns.push(column);
        }
        Ok(())
    }

    fn push_shard_target(&mut self, t: ResTarget) -> Result<usize, MergePlanError> {
        let key = match t.val.as_deref() {
            Some(v) => expr_key(v)?,
            None => String::new(),
        };
        self.shard_targets.push(t);
        self.shard_keys.push(key);
        Ok(self.shard_targets.len() - 1)
    }

    /// The shard column computing `node` (an existing one when equal), else a new helper.
    fn shard_column_for(&mut self, node: &Node) -> Result<usize, MergePlanError> {
        let key = expr_key(node)?;
        if let Some(i) = self.shard_keys.iter().position(|k| *k == key) {
            return Ok(i);
        }
        let n = self.shard_targets.len() - self.original.len();
        self.push_shard_target(ResTarget {
            name: format!("__pgfleet_{n}"),
            val: Some(Box::new(node.clone())),
            ..ResTarget::default()
        })
    }

    /// The partial aggregate a shard runs for `call` (avg → sum), after refusing what cannot be
    /// combined.
    fn partial(&self, call: &FuncCall) -> Result<(Node, AggFn), MergePlanError> {
        let name = func_name(call);
        let f = match call_kind(call) {
            CallKind::Aggregate(f) => f,
            CallKind::OtherAggregate if call.agg_within_group => {
                return Err(self.checker.refuse(format!(
                    "ordered-set aggregate `{name}(…) WITHIN GROUP (…)`"
                )))
            }
            CallKind::OtherAggregate | CallKind::Plain => {
                return Err(self.checker.refuse(format!("aggregate `{name}()`")))
            }
        };
        if call.agg_distinct {
            return Err(self.checker.refuse(format!("`{name}(DISTINCT …)`")));
        }
        if matches!(f, AggFn::StringAgg | AggFn::ArrayAgg) && !call.agg_order.is_empty() {
            return Err(self.checker.refuse(format!(
                "`{name}(… ORDER BY …)` (each shard's part would be ordered, not the whole)"
            )));
        }
        let mut partial = call.clone();
        if f == AggFn::Avg {
            partial.funcname = vec![string_node("sum")];
        }
        Ok((make_node(NodeEnum::FuncCall(Box::new(partial))), f))
    }

    /// The merged aggregate for `call`; `in_place` is the shard column already computing its
    /// main partial (a client column), else helpers are added.
    fn aggregate(
        &mut self,
        call: &FuncCall,
        in_place: Option<usize>,
    ) -> Result<Aggregate, MergePlanError> {
        let (partial, f) = self.partial(call)?;
        let column = match in_place {
            Some(i) => i,
            None => self.shard_column_for(&partial)?,
        };
        Ok(match f {
            AggFn::Count => Aggregate::Count { column },
            AggFn::Sum => Aggregate::Sum { column },
            AggFn::Min => Aggregate::Min { column },
            AggFn::Max => Aggregate::Max { column },
            AggFn::BoolAnd => Aggregate::BoolAnd { column },
            AggFn::BoolOr => Aggregate::BoolOr { column },
            AggFn::ArrayAgg => Aggregate::ArrayAgg { column },
            AggFn::Avg => {
                let mut count = call.clone();
                count.funcname = vec![string_node("count")];
                let count =
                    self.shard_column_for(&make_node(NodeEnum::FuncCall(Box::new(count))))?;
                Aggregate::Avg { sum: column, count }
            }
            AggFn::StringAgg => {
                let delimiter = match call.args.get(1).and_then(|a| a.node.as_ref()) {
                    Some(NodeEnum::AConst(c)) if c.isnull => String::new(),
                    Some(NodeEnum::AConst(AConst {
                        val: Some(Val::Sval(s)),
                        ..
                    })) => s.sval.clone(),
                    _ => {
                        return Err(self.checker.refuse(
                            "`string_agg()` with a delimiter that is not a string constant",
                        ))
                    }
                };
                Aggregate::StringAgg { column, delimiter }
            }
        })
    }

    /// GROUP BY items as shard columns.
    fn group_keys(&mut self, group_clause: &[Node]) -> Result<Vec<usize>, MergePlanError> {
        let mut keys = Vec::new();
        for g in group_clause {
            let column = if let Some(NodeEnum::AConst(AConst {
                val: Some(Val::Ival(_)),
                ..
            })) = g.node.as_ref()
            {
                let n = int_const(g).unwrap_or(0);
                if n < 1 || n as usize > self.original.len() {
                    return Err(invalid(
                        "42P10",
                        format!("GROUP BY position {n} is not in select list"),
                    ));
                }
                if !matches!(self.columns[n as usize - 1], FinalColumn::Group { .. }) {
                    return Err(invalid(
                        "42803",
                        "aggregate functions are not allowed in GROUP BY",
                    ));
                }
                n as usize - 1
            } else {
                let key = expr_key(g)?;
                let same = self.original_keys.iter().enumerate().position(|(i, k)| {
                    *k == key && matches!(self.columns[i], FinalColumn::Group { .. })
                });
                match same {
                    Some(i) => i,
                    None => {
                        if let Some(name) = bare_name(g) {
                            if self.original.iter().any(|t| t.name == name) {
                                // PostgreSQL prefers an input column of that name; pgfleet
                                // cannot see input columns, so it does not guess.
                                return Err(self.checker.refuse(format!(
                                    "GROUP BY output column name `{name}` (write the expression or its position)"
                                )));
                            }
                        }
                        self.shard_column_for(g)?
                    }
                }
            };
            if !keys.contains(&column) {
                keys.push(column);
            }
        }
        Ok(keys)
    }

    /// The merged column computing `expr` for HAVING or ORDER BY: a client column when equal,
    /// else a hidden one.
    pub(crate) fn ensure_final(&mut self, expr: &Node) -> Result<usize, MergePlanError> {
        let key = expr_key(expr)?;
        if let Some(i) = self.original_keys.iter().position(|k| *k == key) {
            return Ok(i);
        }
        if let Some((_, i)) = self.final_keys.iter().find(|(k, _)| *k == key) {
            return Ok(*i);
        }
        let column = if let Some(call) = as_aggregate(expr) {
            FinalColumn::Aggregate(self.aggregate(call, None)?)
        } else if aggregates_in(expr).is_empty() {
            FinalColumn::Group {
                column: self.shard_column_for(expr)?,
            }
        } else {
            return Err(self.checker.refuse(format!(
                "an expression over aggregate results in HAVING or ORDER BY (`{}`)",
                show(expr)
            )));
        };
        self.columns.push(column);
        self.final_keys.push((key, self.columns.len() - 1));
        Ok(self.columns.len() - 1)
    }

    pub(crate) fn refuse(&self, construct: String) -> MergePlanError {
        self.checker.refuse(construct)
    }

    fn finish(
        self,
        group_keys: Vec<usize>,
        having: Option<super::types::Predicate>,
    ) -> (Vec<Node>, AggregatePlan) {
        let plan = AggregatePlan {
            shard_columns: self.shard_targets.len(),
            group_keys,
            columns: self.columns,
            visible: self.original.len(),
            having,
        };
        let targets = self
            .shard_targets
            .into_iter()
            .map(res_target_node)
            .collect();
        (targets, plan)
    }
}
