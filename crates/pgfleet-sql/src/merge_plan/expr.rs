//! Facts about expressions of a parse tree that the planner needs: a canonical text to compare
//! expressions, the output column name PostgreSQL gives a select-list item, which function calls
//! are aggregates, and which tables a subtree reads. All walks use an explicit stack.

use pg_query::protobuf::{a_const::Val, FuncCall, ResTarget, SelectStmt};
use pg_query::{Node, NodeEnum, NodeRef};

use crate::children::push_children;

use super::error::MergePlanError;

/// The aggregates pgfleet can combine from per-shard partial results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AggFn {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    BoolAnd,
    BoolOr,
    StringAgg,
    ArrayAgg,
}

/// Built-in aggregates of PostgreSQL 15 (plus `any_value` and the SQL/JSON ones of 16) that
/// pgfleet does not merge. Listed so that they are refused by name instead of being mistaken for
/// ordinary functions (a plain function runs per row, an aggregate per group).
const OTHER_AGGREGATES: &[&str] = &[
    "any_value",
    "bit_and",
    "bit_or",
    "bit_xor",
    "corr",
    "covar_pop",
    "covar_samp",
    "cume_dist",
    "dense_rank",
    "json_agg",
    "json_agg_strict",
    "json_arrayagg",
    "json_object_agg",
    "json_object_agg_strict",
    "json_object_agg_unique",
    "json_object_agg_unique_strict",
    "json_objectagg",
    "jsonb_agg",
    "jsonb_agg_strict",
    "jsonb_object_agg",
    "jsonb_object_agg_strict",
    "jsonb_object_agg_unique",
    "jsonb_object_agg_unique_strict",
    "mode",
    "percent_rank",
    "percentile_cont",
    "percentile_disc",
    "range_agg",
    "range_intersect_agg",
    "rank",
    "regr_avgx",
    "regr_avgy",
    "regr_count",
    "regr_intercept",
    "regr_r2",
    "regr_slope",
    "regr_sxx",
    "regr_sxy",
    "regr_syy",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "var_pop",
    "var_samp",
    "variance",
    "xmlagg",
    "grouping",
];

/// What a function call is, for cross-shard planning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// An ordinary (per-row) function.
    Plain,
    /// An aggregate pgfleet can merge.
    Aggregate(AggFn),
    /// An aggregate pgfleet cannot merge (built-in, or user-defined as shown by aggregate-only
    /// syntax such as `*`, DISTINCT, ORDER BY, FILTER or WITHIN GROUP).
    OtherAggregate,
}

/// The lower-cased last element of a function's (possibly qualified) name.
pub(crate) fn func_name(call: &FuncCall) -> String {
    call.funcname
        .last()
        .and_then(|n| match n.node.as_ref() {
            Some(NodeEnum::String(s)) => Some(s.sval.to_ascii_lowercase()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Classifies a call by name (pgfleet has no catalog of user-defined aggregates: a user-defined
/// aggregate called without aggregate-only syntax looks like a plain function).
pub(crate) fn call_kind(call: &FuncCall) -> CallKind {
    let name = func_name(call);
    let known = match name.as_str() {
        "count" => Some(AggFn::Count),
        "sum" => Some(AggFn::Sum),
        "min" => Some(AggFn::Min),
        "max" => Some(AggFn::Max),
        "avg" => Some(AggFn::Avg),
        "bool_and" | "every" => Some(AggFn::BoolAnd),
        "bool_or" => Some(AggFn::BoolOr),
        "string_agg" => Some(AggFn::StringAgg),
        "array_agg" => Some(AggFn::ArrayAgg),
        _ => None,
    };
    match known {
        Some(f) => CallKind::Aggregate(f),
        None if OTHER_AGGREGATES.contains(&name.as_str()) => CallKind::OtherAggregate,
        None if call.agg_star
            || call.agg_distinct
            || call.agg_within_group
            || !call.agg_order.is_empty()
            || call.agg_filter.is_some() =>
        {
            CallKind::OtherAggregate
        }
        None => CallKind::Plain,
    }
}

/// Aggregate calls in an expression, outermost first, not looking into sub-selects (their
/// aggregates belong to them) or into the arguments of an aggregate.
pub(crate) fn aggregates_in(node: &Node) -> Vec<&FuncCall> {
    let mut found = Vec::new();
    let mut stack: Vec<NodeRef<'_>> = node.node.iter().map(|n| n.to_ref()).collect();
    while let Some(n) = stack.pop() {
        match n {
            NodeRef::SubLink(_) => {}
            NodeRef::FuncCall(call)
                if call_kind(call) != CallKind::Plain && call.over.is_none() =>
            {
                found.push(call)
            }
            _ => push_children(n, &mut stack),
        }
    }
    found
}

/// The expression itself when it is an aggregate call.
pub(crate) fn as_aggregate(node: &Node) -> Option<&FuncCall> {
    match node.node.as_ref() {
        Some(NodeEnum::FuncCall(call))
            if call_kind(call) != CallKind::Plain && call.over.is_none() =>
        {
            Some(call)
        }
        _ => None,
    }
}

/// A canonical text for an expression (pg_query deparse of `SELECT <expr>`), so that two
/// spellings of one expression (`SUM( x )`, `sum(x)`) compare equal, as PostgreSQL's
/// `equal()` on the analyzed trees would for the cases that matter here.
pub(crate) fn expr_key(node: &Node) -> Result<String, MergePlanError> {
    deparse_select(SelectStmt {
        target_list: vec![Node {
            node: Some(NodeEnum::ResTarget(Box::new(ResTarget {
                val: Some(Box::new(node.clone())),
                ..ResTarget::default()
            }))),
        }],
        ..plain_select()
    })
}

/// An empty SELECT with the fields the deparser expects (`op` = SETOP_NONE, `limit_option`
/// = LIMIT_OPTION_DEFAULT).
pub(crate) fn plain_select() -> SelectStmt {
    SelectStmt {
        op: pg_query::protobuf::SetOperation::SetopNone as i32,
        limit_option: pg_query::protobuf::LimitOption::Default as i32,
        ..SelectStmt::default()
    }
}

/// Deparses one SELECT statement.
pub(crate) fn deparse_select(select: SelectStmt) -> Result<String, MergePlanError> {
    let node = NodeEnum::SelectStmt(Box::new(select));
    node.deparse(pg_query::DeparseOptions::default())
        .map_err(|e| MergePlanError::Invalid {
            sqlstate: "XX000",
            message: format!("pgfleet could not deparse the rewritten query: {e}"),
        })
}

/// The output column name PostgreSQL gives a select-list item without alias
/// (`FigureColname` in parse_target.c, for the common forms; others are `?column?`).
pub(crate) fn output_name(target: &ResTarget) -> String {
    if !target.name.is_empty() {
        return target.name.clone();
    }
    let mut node = target.val.as_deref();
    while let Some(n) = node {
        match n.node.as_ref() {
            Some(NodeEnum::ColumnRef(c)) => {
                return match c.fields.last().and_then(|f| f.node.as_ref()) {
                    Some(NodeEnum::String(s)) => s.sval.clone(),
                    _ => "?column?".to_string(),
                }
            }
            Some(NodeEnum::FuncCall(f)) => return func_name(f),
            Some(NodeEnum::TypeCast(t)) => match t.arg.as_deref() {
                Some(arg) if !matches!(arg.node, Some(NodeEnum::AConst(_))) => node = Some(arg),
                _ => {
                    return t
                        .type_name
                        .as_ref()
                        .and_then(|tn| tn.names.last())
                        .and_then(|n| match n.node.as_ref() {
                            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                            _ => None,
                        })
                        .unwrap_or_else(|| "?column?".to_string())
                }
            },
            Some(NodeEnum::CaseExpr(_)) => return "case".to_string(),
            _ => return "?column?".to_string(),
        }
    }
    "?column?".to_string()
}

/// Whether a select-list item is `*` or `t.*`.
pub(crate) fn is_star(target: &ResTarget) -> bool {
    match target.val.as_deref().and_then(|n| n.node.as_ref()) {
        Some(NodeEnum::ColumnRef(c)) => c
            .fields
            .iter()
            .any(|f| matches!(f.node, Some(NodeEnum::AStar(_)))),
        _ => false,
    }
}

/// A bare one-word column reference (`ORDER BY total`), by name.
pub(crate) fn bare_name(node: &Node) -> Option<&str> {
    match node.node.as_ref() {
        Some(NodeEnum::ColumnRef(c)) if c.fields.len() == 1 => match c.fields[0].node.as_ref() {
            Some(NodeEnum::String(s)) => Some(&s.sval),
            _ => None,
        },
        _ => None,
    }
}

/// An integer constant (`ORDER BY 2`, `LIMIT 10`).
pub(crate) fn int_const(node: &Node) -> Option<i64> {
    match node.node.as_ref() {
        Some(NodeEnum::AConst(c)) => match c.val.as_ref() {
            Some(Val::Ival(i)) => Some(i64::from(i.ival)),
            // Integers beyond int4 arrive as "float" constants holding an integer literal.
            Some(Val::Fval(f)) => f.fval.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Relation names (`schema.table` or `table`) read under `root`, without CTE names, each once.
pub(crate) fn relations_in<'a>(
    root: NodeRef<'a>,
    ctes: &[String],
) -> Vec<(Option<&'a str>, &'a str)> {
    let mut out: Vec<(Option<&str>, &str)> = Vec::new();
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if let NodeRef::RangeVar(rv) = n {
            let schema = (!rv.schemaname.is_empty()).then_some(rv.schemaname.as_str());
            let is_cte = schema.is_none() && ctes.iter().any(|c| c == &rv.relname);
            if !is_cte && !out.contains(&(schema, rv.relname.as_str())) {
                out.push((schema, rv.relname.as_str()));
            }
        }
        push_children(n, &mut stack);
    }
    out
}

/// Names of every CTE defined anywhere under `root`.
pub(crate) fn cte_names(root: NodeRef<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if let NodeRef::CommonTableExpr(c) = n {
            out.push(c.ctename.clone());
        }
        push_children(n, &mut stack);
    }
    out
}

/// A display name for a relation.
pub(crate) fn display_relation(schema: Option<&str>, name: &str) -> String {
    match schema {
        Some(s) => format!("{s}.{name}"),
        None => name.to_string(),
    }
}

/// The SQL text of an expression for error messages (its canonical text, or a placeholder).
pub(crate) fn show(node: &Node) -> String {
    expr_key(node)
        .map(|s| s.trim_start_matches("SELECT ").to_string())
        .unwrap_or_else(|_| "expression".to_string())
}
