//! HAVING as a [`Predicate`] over merged columns. PostgreSQL evaluates HAVING per group, so it
//! cannot run on a shard (which sees only part of each group): shards drop it and the merge
//! evaluates it. Only a small language is accepted — AND/OR/NOT, the six comparisons, IS [NOT]
//! NULL, boolean columns, and constants — everything else is refused rather than guessed.

use pg_query::protobuf::{a_const::Val, AExprKind, BoolExprType, NullTestType};
use pg_query::{Node, NodeEnum};

use super::build::AggregatePlanner;
use super::error::MergePlanError;
use super::expr::show;
use super::types::{CompareOp, Literal, Operand, Predicate};

/// Converts HAVING, adding hidden merged columns for the aggregates and group values it reads.
pub(crate) struct HavingBuilder<'p, 'a> {
    pub planner: &'p mut AggregatePlanner<'a>,
}

impl HavingBuilder<'_, '_> {
    pub(crate) fn predicate(&mut self, node: &Node) -> Result<Predicate, MergePlanError> {
        match node.node.as_ref() {
            Some(NodeEnum::BoolExpr(b)) => {
                let args = b
                    .args
                    .iter()
                    .map(|a| self.predicate(a))
                    .collect::<Result<Vec<_>, _>>()?;
                match BoolExprType::try_from(b.boolop) {
                    Ok(BoolExprType::AndExpr) => Ok(Predicate::And(args)),
                    Ok(BoolExprType::OrExpr) => Ok(Predicate::Or(args)),
                    Ok(BoolExprType::NotExpr) if args.len() == 1 => Ok(Predicate::Not(Box::new(
                        args.into_iter().next().unwrap_or(Predicate::Const(None)),
                    ))),
                    _ => Err(self.unsupported(node)),
                }
            }
            Some(NodeEnum::AExpr(e)) if e.kind == AExprKind::AexprOp as i32 => {
                let op = match e.name.as_slice() {
                    [n] => match n.node.as_ref() {
                        Some(NodeEnum::String(s)) => compare_op(&s.sval),
                        _ => None,
                    },
                    _ => None,
                };
                match (op, e.lexpr.as_deref(), e.rexpr.as_deref()) {
                    (Some(op), Some(l), Some(r)) => Ok(Predicate::Compare {
                        left: self.operand(l)?,
                        op,
                        right: self.operand(r)?,
                    }),
                    _ => Err(self.unsupported(node)),
                }
            }
            Some(NodeEnum::NullTest(t)) => match t.arg.as_deref() {
                Some(arg) if !t.argisrow => Ok(Predicate::IsNull {
                    operand: self.operand(arg)?,
                    negated: t.nulltesttype == NullTestType::IsNotNull as i32,
                }),
                _ => Err(self.unsupported(node)),
            },
            Some(NodeEnum::AConst(c)) if c.isnull => Ok(Predicate::Const(None)),
            Some(NodeEnum::AConst(c)) => match c.val.as_ref() {
                Some(Val::Boolval(b)) => Ok(Predicate::Const(Some(b.boolval))),
                _ => Err(self.unsupported(node)),
            },
            // A boolean aggregate or group value used as a condition (`HAVING bool_or(paid)`).
            Some(NodeEnum::FuncCall(_) | NodeEnum::ColumnRef(_)) => Ok(Predicate::Compare {
                left: Operand::Column(self.planner.ensure_final(node)?),
                op: CompareOp::Eq,
                right: Operand::Literal(Literal::Bool(true)),
            }),
            _ => Err(self.unsupported(node)),
        }
    }

    fn operand(&mut self, node: &Node) -> Result<Operand, MergePlanError> {
        match node.node.as_ref() {
            Some(NodeEnum::AConst(c)) if c.isnull => Ok(Operand::Literal(Literal::Null)),
            Some(NodeEnum::AConst(c)) => match c.val.as_ref() {
                Some(Val::Ival(i)) => Ok(Operand::Literal(Literal::Number(i.ival.to_string()))),
                Some(Val::Fval(f)) => Ok(Operand::Literal(Literal::Number(f.fval.clone()))),
                Some(Val::Sval(s)) => Ok(Operand::Literal(Literal::String(s.sval.clone()))),
                Some(Val::Boolval(b)) => Ok(Operand::Literal(Literal::Bool(b.boolval))),
                _ => Err(self.unsupported(node)),
            },
            Some(
                NodeEnum::TypeCast(_)
                | NodeEnum::SubLink(_)
                | NodeEnum::ParamRef(_)
                | NodeEnum::AExpr(_)
                | NodeEnum::BoolExpr(_),
            ) => Err(self.unsupported(node)),
            _ => Ok(Operand::Column(self.planner.ensure_final(node)?)),
        }
    }

    fn unsupported(&self, node: &Node) -> MergePlanError {
        self.planner.refuse(format!(
            "HAVING expression `{}` (pgfleet evaluates HAVING after the merge and supports AND, OR, NOT, comparisons of aggregates and grouped columns with constants, and IS NULL)",
            show(node)
        ))
    }
}

fn compare_op(op: &str) -> Option<CompareOp> {
    Some(match op {
        "=" => CompareOp::Eq,
        "<>" | "!=" => CompareOp::Ne,
        "<" => CompareOp::Lt,
        "<=" => CompareOp::Le,
        ">" => CompareOp::Gt,
        ">=" => CompareOp::Ge,
        _ => return None,
    })
}
