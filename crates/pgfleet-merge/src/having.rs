//! Evaluating HAVING ([`Predicate`]) over a merged group, with SQL's three-valued logic: a
//! comparison with NULL is NULL, `NULL AND false` is false, `NULL OR true` is true, and a group
//! is kept only when the whole condition is true.

use std::cmp::Ordering;

use pgfleet_sql::merge_plan::{CompareOp, Literal, Operand, Predicate};

use crate::error::MergeError;
use crate::numeric::Numeric;
use crate::value::{oid, Format, Value};

/// A merged row as HAVING sees it: the decoded value of each merged column (None = NULL) and
/// each column's type.
pub(crate) struct GroupRow<'a> {
    pub values: &'a [Option<Value>],
    pub types: &'a [u32],
}

/// An operand after lookup: a typed value, an untyped literal, or NULL.
enum Resolved<'a> {
    Null,
    Value(&'a Value, u32),
    Literal(&'a Literal),
}

pub(crate) fn evaluate(p: &Predicate, row: &GroupRow<'_>) -> Result<Option<bool>, MergeError> {
    Ok(match p {
        Predicate::Const(c) => *c,
        Predicate::Not(inner) => evaluate(inner, row)?.map(|b| !b),
        Predicate::And(items) => {
            let mut result = Some(true);
            for i in items {
                match evaluate(i, row)? {
                    Some(false) => return Ok(Some(false)),
                    None => result = None,
                    Some(true) => {}
                }
            }
            result
        }
        Predicate::Or(items) => {
            let mut result = Some(false);
            for i in items {
                match evaluate(i, row)? {
                    Some(true) => return Ok(Some(true)),
                    None => result = None,
                    Some(false) => {}
                }
            }
            result
        }
        Predicate::IsNull { operand, negated } => {
            let is_null = matches!(resolve(operand, row)?, Resolved::Null);
            Some(is_null != *negated)
        }
        Predicate::Compare { left, op, right } => {
            let ordering = match (resolve(left, row)?, resolve(right, row)?) {
                (Resolved::Null, _) | (_, Resolved::Null) => return Ok(None),
                (Resolved::Value(a, _), Resolved::Value(b, _)) => a.compare(b)?,
                (Resolved::Value(a, t), Resolved::Literal(l)) => {
                    a.compare(&literal_as(l, t, a)?)?
                }
                (Resolved::Literal(l), Resolved::Value(b, t)) => literal_as(l, t, b)?.compare(b)?,
                (Resolved::Literal(a), Resolved::Literal(b)) => literal_pair(a, b)?,
            };
            Some(match op {
                CompareOp::Eq => ordering == Ordering::Equal,
                CompareOp::Ne => ordering != Ordering::Equal,
                CompareOp::Lt => ordering == Ordering::Less,
                CompareOp::Le => ordering != Ordering::Greater,
                CompareOp::Gt => ordering == Ordering::Greater,
                CompareOp::Ge => ordering != Ordering::Less,
            })
        }
    })
}

fn resolve<'a>(o: &'a Operand, row: &'a GroupRow<'_>) -> Result<Resolved<'a>, MergeError> {
    Ok(match o {
        Operand::Literal(Literal::Null) => Resolved::Null,
        Operand::Literal(l) => Resolved::Literal(l),
        Operand::Column(i) => match (row.values.get(*i), row.types.get(*i)) {
            (Some(Some(v)), Some(t)) => Resolved::Value(v, *t),
            (Some(None), _) => Resolved::Null,
            _ => {
                return Err(MergeError::Protocol(format!(
                    "HAVING reads merged column {i}, which does not exist"
                )))
            }
        },
    })
}

fn mismatch(l: &Literal, type_oid: u32) -> MergeError {
    MergeError::BadValue(format!(
        "HAVING compares {} with constant {l:?}",
        crate::value::type_name(type_oid)
    ))
}

/// A literal read as the type of the value it is compared with (PostgreSQL resolves an untyped
/// literal to the other operand's type; numbers compare exactly across integer and numeric).
fn literal_as(l: &Literal, type_oid: u32, other: &Value) -> Result<Value, MergeError> {
    match (l, other) {
        (Literal::Number(n), Value::Int(_) | Value::Numeric(_)) => Numeric::parse(n)
            .map(Value::Numeric)
            .map_err(|_| mismatch(l, type_oid)),
        (Literal::Number(n), Value::Float(_)) => n
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| mismatch(l, type_oid)),
        (Literal::Bool(b), Value::Bool(_)) => Ok(Value::Bool(*b)),
        (Literal::String(s), _) => Value::decode(type_oid, Format::Text, s.as_bytes()),
        _ => Err(mismatch(l, type_oid)),
    }
}

fn literal_pair(a: &Literal, b: &Literal) -> Result<Ordering, MergeError> {
    match (a, b) {
        (Literal::Number(x), Literal::Number(y)) => {
            let x = Numeric::parse(x).map_err(|_| mismatch(a, oid::NUMERIC))?;
            let y = Numeric::parse(y).map_err(|_| mismatch(b, oid::NUMERIC))?;
            Ok(x.cmp(&y))
        }
        (Literal::String(x), Literal::String(y)) => Ok(x.as_bytes().cmp(y.as_bytes())),
        (Literal::Bool(x), Literal::Bool(y)) => Ok(x.cmp(y)),
        _ => Err(MergeError::BadValue(format!(
            "HAVING compares constants {a:?} and {b:?} of different types"
        ))),
    }
}
