//! LIMIT and OFFSET: read as values the merge applies once, and the shards' `LIMIT limit+offset`.

use pg_query::protobuf::{
    a_const::Val, AConst, AExpr, AExprKind, Node, SelectStmt, TypeCast, TypeName,
};
use pg_query::NodeEnum;

use super::build::invalid;
use super::error::MergePlanError;
use super::expr::{int_const, show};
use super::refuse::Checker;
use super::types::LimitValue;

/// A LIMIT or OFFSET clause as a value pgfleet can apply after the merge.
pub(crate) fn limit_value(
    node: Option<&Node>,
    what: &str,
    checker: &Checker<'_>,
) -> Result<Option<LimitValue>, MergePlanError> {
    let Some(node) = node else { return Ok(None) };
    match node.node.as_ref() {
        // LIMIT ALL and LIMIT NULL mean no limit; OFFSET NULL means 0.
        Some(NodeEnum::AConst(c)) if c.isnull => return Ok(None),
        Some(NodeEnum::ParamRef(p)) => return Ok(Some(LimitValue::Param(p.number as u32))),
        Some(NodeEnum::TypeCast(c)) => {
            if let Some(NodeEnum::ParamRef(p)) = c.arg.as_deref().and_then(|a| a.node.as_ref()) {
                return Ok(Some(LimitValue::Param(p.number as u32)));
            }
        }
        _ => {}
    }
    match int_const(node) {
        Some(n) if n < 0 => Err(invalid(
            if what == "LIMIT" { "2201W" } else { "2201X" },
            format!("{what} must not be negative"),
        )),
        Some(n) => Ok(Some(LimitValue::Const(n as u64))),
        None => Err(checker.refuse(format!(
            "{what} `{}` (use an integer constant or a parameter)",
            show(node)
        ))),
    }
}

pub(crate) fn make_node(n: NodeEnum) -> Node {
    Node { node: Some(n) }
}

fn int_node(v: u64) -> Node {
    let val = match i32::try_from(v) {
        Ok(i) => Val::Ival(pg_query::protobuf::Integer { ival: i }),
        Err(_) => Val::Fval(pg_query::protobuf::Float {
            fval: v.to_string(),
        }),
    };
    make_node(NodeEnum::AConst(AConst {
        isnull: false,
        location: -1,
        val: Some(val),
    }))
}

pub(crate) fn string_node(s: &str) -> Node {
    make_node(NodeEnum::String(pg_query::protobuf::String {
        sval: s.to_string(),
    }))
}

fn bigint(arg: Node) -> Node {
    make_node(NodeEnum::TypeCast(Box::new(TypeCast {
        arg: Some(Box::new(arg)),
        type_name: Some(TypeName {
            names: vec![string_node("pg_catalog"), string_node("int8")],
            typemod: -1,
            location: -1,
            ..TypeName::default()
        }),
        location: -1,
    })))
}

fn plus(l: Node, r: Node) -> Node {
    make_node(NodeEnum::AExpr(Box::new(AExpr {
        kind: AExprKind::AexprOp as i32,
        name: vec![string_node("+")],
        lexpr: Some(Box::new(l)),
        rexpr: Some(Box::new(r)),
        location: -1,
        ..AExpr::default()
    })))
}

/// The shards' LIMIT: `limit + offset` (each shard's first limit+offset rows contain every row
/// of the merged window), no OFFSET. With parameters PostgreSQL adds them per execution.
pub(crate) fn shard_limit(
    select: &SelectStmt,
    limit: Option<LimitValue>,
    offset: Option<LimitValue>,
) -> Option<Box<Node>> {
    let limit_node = select.limit_count.as_deref();
    let offset_node = select.limit_offset.as_deref();
    match (limit, offset, limit_node) {
        (None, Some(LimitValue::Param(_)), _) => {
            // No limit, but the OFFSET parameter must stay in the text so that its type is
            // still inferred (as bigint); NULL + x is NULL, i.e. no limit.
            let null = make_node(NodeEnum::AConst(AConst {
                isnull: true,
                location: -1,
                val: None,
            }));
            offset_node.map(|o| Box::new(plus(bigint(null), bigint(o.clone()))))
        }
        (None, _, _) | (Some(_), _, None) => None,
        (Some(LimitValue::Const(l)), None | Some(LimitValue::Const(_)), _) => {
            let o = match offset {
                Some(LimitValue::Const(o)) => o,
                _ => 0,
            };
            // A sum beyond bigint means no limit in practice.
            l.checked_add(o)
                .filter(|s| *s <= i64::MAX as u64)
                .map(|s| Box::new(int_node(s)))
        }
        (Some(_), None, Some(l)) => Some(Box::new(l.clone())),
        (Some(_), Some(_), Some(l)) => {
            offset_node.map(|o| Box::new(plus(bigint(l.clone()), bigint(o.clone()))))
        }
    }
}
