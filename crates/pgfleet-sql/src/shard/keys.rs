//! Shard key restrictions from WHERE and ON clauses: which key values a query level's rows can
//! have, as a small boolean tree over key atoms ([`Pred`]), computed once per text; bind values
//! are plugged in later.
//!
//! Recognised (on the real parse tree): `key = v`, `v = key`, `key IN (v, …)`,
//! `key = ANY(ARRAY[…])`, `key = ANY('{…}')`, `key = ANY($n)`, `key IS NULL`, inside AND and OR.
//! A value `v` is a literal, `$n`, or either under casts to a type of the key's family
//! (`'42'::bigint`, `$1::int4`). Anything else (functions, other operators, NOT, subqueries,
//! casts to other types) restricts nothing: fanning out more than needed is safe, fewer is not.

use pg_query::protobuf::{a_const::Val, AExprKind, BoolExprType, NullTestType, TypeName};
use pg_query::{Node, NodeEnum};

use pgfleet_catalog::{ShardKeyType, ShardKeyValue};

use super::array::parse_text_array;
use super::error::ShardRouteError;

/// One source of key values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Src {
    /// A literal, already read as the key's type.
    Value(ShardKeyValue),
    /// `key IS NULL` (or a NULL inserted key): the shard PostgreSQL would give a NULL key.
    NullKey,
    /// `$n`: one value.
    Param(u32),
    /// `= ANY($n)`: an array of values.
    ArrayParam(u32),
}

/// Key values a row can have: one sharded table mention's key ∈ the union of `srcs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Atom {
    /// Index of the table mention.
    pub table: usize,
    /// The values (an empty list matches no row: `key = NULL`).
    pub srcs: Vec<Src>,
}

/// A restriction of a query level's rows by key values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pred {
    /// No restriction known.
    Any,
    /// One atom.
    Atom(Atom),
    /// All must hold.
    And(Vec<Pred>),
    /// One must hold.
    Or(Vec<Pred>),
}

impl Pred {
    /// Keeps only the atoms of tables `keep` accepts (others become `Any`) and simplifies.
    pub fn project(&self, keep: &dyn Fn(usize) -> bool) -> Pred {
        match self {
            Pred::Any => Pred::Any,
            Pred::Atom(a) if keep(a.table) => Pred::Atom(a.clone()),
            Pred::Atom(_) => Pred::Any,
            Pred::And(ps) => {
                let parts: Vec<Pred> = ps
                    .iter()
                    .map(|p| p.project(keep))
                    .filter(|p| *p != Pred::Any)
                    .collect();
                match parts.len() {
                    0 => Pred::Any,
                    1 => parts.into_iter().next().unwrap_or(Pred::Any),
                    _ => Pred::And(parts),
                }
            }
            Pred::Or(ps) => {
                let parts: Vec<Pred> = ps.iter().map(|p| p.project(keep)).collect();
                if parts.contains(&Pred::Any) {
                    Pred::Any
                } else {
                    Pred::Or(parts)
                }
            }
        }
    }

    /// Every parameter number the predicate reads.
    pub fn params(&self, out: &mut Vec<u32>) {
        match self {
            Pred::Any => {}
            Pred::Atom(a) => out.extend(a.srcs.iter().filter_map(|s| match s {
                Src::Param(n) | Src::ArrayParam(n) => Some(*n),
                _ => None,
            })),
            Pred::And(ps) | Pred::Or(ps) => ps.iter().for_each(|p| p.params(out)),
        }
    }
}

/// What the caller knows about column references of one scope.
pub(crate) trait Columns {
    /// The sharded table mention whose shard key column `column_ref` (a ColumnRef's fields)
    /// names, with the key's type; `None` if it names anything else or is ambiguous.
    fn key_of(&self, fields: &[Node]) -> Option<(usize, ShardKeyType, String)>;
    /// Whether `key IS NULL` may restrict (not on the nullable side of an outer join).
    fn null_test_restricts(&self) -> bool;
}

/// The top-level AND conjuncts of `node`.
pub(crate) fn conjuncts(node: &Node) -> Vec<&Node> {
    let mut out = Vec::new();
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        match n.node.as_ref() {
            Some(NodeEnum::BoolExpr(b)) if b.boolop == BoolExprType::AndExpr as i32 => {
                stack.extend(b.args.iter().rev());
            }
            _ => out.push(n),
        }
    }
    out
}

/// `a.key = b.key` between key columns of two sharded table mentions.
pub(crate) fn key_equality(node: &Node, cols: &dyn Columns) -> Option<(usize, usize)> {
    let Some(NodeEnum::AExpr(e)) = node.node.as_ref() else {
        return None;
    };
    if e.kind != AExprKind::AexprOp as i32 || op_name(&e.name) != Some("=") {
        return None;
    }
    let (l, r) = (column(e.lexpr.as_deref()?)?, column(e.rexpr.as_deref()?)?);
    let (a, _, _) = cols.key_of(l)?;
    let (b, _, _) = cols.key_of(r)?;
    Some((a, b))
}

/// The restriction `node` puts on key values. The parser bounds the tree's depth (FIELD-NOTES,
/// "Deep nesting"), which bounds this recursion.
pub(crate) fn pred(node: &Node, cols: &dyn Columns) -> Result<Pred, ShardRouteError> {
    let Some(n) = node.node.as_ref() else {
        return Ok(Pred::Any);
    };
    match n {
        NodeEnum::BoolExpr(b) if b.boolop == BoolExprType::AndExpr as i32 => {
            let parts = b
                .args
                .iter()
                .map(|a| pred(a, cols))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Pred::And(parts))
        }
        NodeEnum::BoolExpr(b) if b.boolop == BoolExprType::OrExpr as i32 => {
            let parts = b
                .args
                .iter()
                .map(|a| pred(a, cols))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Pred::Or(parts))
        }
        NodeEnum::NullTest(t) if t.nulltesttype == NullTestType::IsNull as i32 => {
            let key = t
                .arg
                .as_deref()
                .and_then(column)
                .and_then(|f| cols.key_of(f));
            match key {
                Some((table, _, _)) if cols.null_test_restricts() => Ok(Pred::Atom(Atom {
                    table,
                    srcs: vec![Src::NullKey],
                })),
                _ => Ok(Pred::Any),
            }
        }
        NodeEnum::AExpr(e) if op_name(&e.name) == Some("=") => {
            let (Some(l), Some(r)) = (e.lexpr.as_deref(), e.rexpr.as_deref()) else {
                return Ok(Pred::Any);
            };
            let kind = AExprKind::try_from(e.kind).unwrap_or(AExprKind::Undefined);
            // `key = v` or `v = key` (only `=` is symmetric; ANY and IN keep the key left).
            let (key_side, value_side) = match (kind, column(l).and_then(|f| cols.key_of(f))) {
                (_, Some(k)) => (k, r),
                (AExprKind::AexprOp, None) => match column(r).and_then(|f| cols.key_of(f)) {
                    Some(k) => (k, l),
                    None => return Ok(Pred::Any),
                },
                _ => return Ok(Pred::Any),
            };
            let (table, key_type, key_name) = key_side;
            let srcs = match kind {
                AExprKind::AexprOp => scalar_srcs(value_side, key_type, &key_name, false)?,
                AExprKind::AexprIn => match value_side.node.as_ref() {
                    Some(NodeEnum::List(list)) => list_srcs(&list.items, key_type, &key_name)?,
                    _ => None,
                },
                AExprKind::AexprOpAny => array_srcs(value_side, key_type, &key_name)?,
                _ => None,
            };
            Ok(srcs.map_or(Pred::Any, |srcs| Pred::Atom(Atom { table, srcs })))
        }
        _ => Ok(Pred::Any),
    }
}

/// The fields of a ColumnRef.
pub(crate) fn column(node: &Node) -> Option<&[Node]> {
    match node.node.as_ref()? {
        NodeEnum::ColumnRef(c) => Some(&c.fields),
        _ => None,
    }
}

fn op_name(name: &[Node]) -> Option<&str> {
    // `OPERATOR(pg_catalog.=)` is still `=`; the last element is the operator.
    match name.last()?.node.as_ref()? {
        NodeEnum::String(s) => Some(s.sval.as_str()),
        _ => None,
    }
}

/// A value expression as far as routing can read it.
#[derive(Debug)]
pub(crate) enum Scalar {
    /// A literal in text form (string, integer or a float constant's text).
    Text(String),
    /// A float/numeric constant (`1.5`, or an integer too large for int4).
    Numeric(String),
    /// `NULL`.
    Null,
    /// `$n`.
    Param(u32),
}

/// Reads `node` as a constant or parameter of the key's type, through casts to types of the
/// key's family. `None` when it is anything else.
pub(crate) fn scalar(node: &Node, key_type: ShardKeyType) -> Option<Scalar> {
    let mut n = node.node.as_ref()?;
    // A bounded loop over nested casts ('1'::int8::int8).
    for _ in 0..8 {
        match n {
            NodeEnum::AConst(c) if c.isnull => return Some(Scalar::Null),
            NodeEnum::AConst(c) => {
                return match c.val.as_ref()? {
                    Val::Ival(i) => Some(Scalar::Text(i.ival.to_string())),
                    Val::Fval(f) => Some(Scalar::Numeric(f.fval.clone())),
                    Val::Sval(s) => Some(Scalar::Text(s.sval.clone())),
                    Val::Boolval(_) | Val::Bsval(_) => None,
                }
            }
            NodeEnum::ParamRef(p) => return u32::try_from(p.number).ok().map(Scalar::Param),
            NodeEnum::TypeCast(t) => {
                let ty = t.type_name.as_ref()?;
                if !ty.array_bounds.is_empty() || !same_family(ty, key_type) {
                    return None;
                }
                n = t.arg.as_deref()?.node.as_ref()?;
            }
            _ => return None,
        }
    }
    None
}

/// Whether a cast to `ty` keeps a key value's meaning (types of the key's family).
pub(crate) fn same_family(ty: &TypeName, key_type: ShardKeyType) -> bool {
    let Some(NodeEnum::String(s)) = ty.names.last().and_then(|n| n.node.as_ref()) else {
        return false;
    };
    let name = s.sval.as_str();
    match key_type {
        ShardKeyType::BigInt | ShardKeyType::Integer | ShardKeyType::SmallInt => {
            matches!(
                name,
                "int2" | "int4" | "int8" | "smallint" | "integer" | "bigint"
            )
        }
        ShardKeyType::Text | ShardKeyType::Varchar => matches!(name, "text" | "varchar"),
        ShardKeyType::Uuid => name == "uuid",
        ShardKeyType::Date => name == "date",
        ShardKeyType::Timestamp => name == "timestamp",
        ShardKeyType::TimestampTz => name == "timestamptz",
    }
}

/// One value on the other side of `key = …`. `Ok(None)`: not readable (no restriction).
/// `insert`: a NULL is the row's key (NullKey) rather than a comparison that matches nothing.
pub(crate) fn scalar_srcs(
    node: &Node,
    key_type: ShardKeyType,
    key_name: &str,
    insert: bool,
) -> Result<Option<Vec<Src>>, ShardRouteError> {
    Ok(match scalar(node, key_type) {
        None => None,
        Some(Scalar::Null) if insert => Some(vec![Src::NullKey]),
        // `key = NULL` is never true.
        Some(Scalar::Null) => Some(Vec::new()),
        Some(Scalar::Param(n)) => Some(vec![Src::Param(n)]),
        Some(Scalar::Text(t)) => Some(vec![Src::Value(read(key_type, key_name, &t)?)]),
        // A numeric constant compared with an integer key: exact only when it is an integer
        // (`id = 5.5` is legal SQL that matches nothing); other keys: leave it to the server.
        // `id = 1.0` equals 1; `1.5` or `1e3` are left to the server.
        Some(Scalar::Numeric(t)) => {
            let integral = match t.split_once('.') {
                Some((int, frac)) if frac.bytes().all(|b| b == b'0') => int,
                Some(_) => return Ok(None),
                None => t.as_str(),
            };
            match ShardKeyValue::parse_text(key_type, integral) {
                Ok(v) if key_type.integer_bounds().is_some() => Some(vec![Src::Value(v)]),
                _ => None,
            }
        }
    })
}

fn list_srcs(
    items: &[Node],
    key_type: ShardKeyType,
    key_name: &str,
) -> Result<Option<Vec<Src>>, ShardRouteError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match scalar_srcs(item, key_type, key_name, false)? {
            Some(mut srcs) => out.append(&mut srcs),
            // One unreadable element: the list restricts nothing we can prove.
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// The array of `key = ANY(…)`.
fn array_srcs(
    node: &Node,
    key_type: ShardKeyType,
    key_name: &str,
) -> Result<Option<Vec<Src>>, ShardRouteError> {
    let mut n = node;
    for _ in 0..8 {
        match n.node.as_ref() {
            Some(NodeEnum::AArrayExpr(a)) => return list_srcs(&a.elements, key_type, key_name),
            Some(NodeEnum::ParamRef(p)) => {
                return Ok(u32::try_from(p.number)
                    .ok()
                    .map(|n| vec![Src::ArrayParam(n)]))
            }
            Some(NodeEnum::AConst(c)) => {
                return match c.val.as_ref() {
                    Some(Val::Sval(s)) if !c.isnull => {
                        let elements =
                            parse_text_array(&s.sval).map_err(|e| ShardRouteError::InvalidKey {
                                key: key_name.to_string(),
                                reason: format!("malformed array literal `{}`: {e}", s.sval),
                            })?;
                        let mut out = Vec::new();
                        for e in elements.into_iter().flatten() {
                            out.push(Src::Value(read(key_type, key_name, &e)?));
                        }
                        Ok(Some(out))
                    }
                    // `= ANY(NULL)` is never true.
                    _ if c.isnull => Ok(Some(Vec::new())),
                    _ => Ok(None),
                };
            }
            Some(NodeEnum::TypeCast(t)) => {
                let ty = t.type_name.as_ref();
                let element_ok =
                    ty.is_some_and(|ty| !ty.array_bounds.is_empty() && same_family(ty, key_type));
                if !element_ok {
                    return Ok(None);
                }
                match t.arg.as_deref() {
                    Some(arg) => n = arg,
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// A literal read as the key's type; a value the server would refuse is an error here too.
pub(crate) fn read(
    key_type: ShardKeyType,
    key_name: &str,
    text: &str,
) -> Result<ShardKeyValue, ShardRouteError> {
    ShardKeyValue::parse_text(key_type, text).map_err(|e| ShardRouteError::InvalidKey {
        key: key_name.to_string(),
        reason: e.to_string(),
    })
}
