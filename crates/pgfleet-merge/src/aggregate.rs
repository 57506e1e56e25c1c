//! Combining aggregate partials from several shards into the value one server would compute,
//! with PostgreSQL's result types: count → int8; sum(int2/int4) → int8 (exact, overflow is an
//! error); sum(int8/numeric) → numeric (exact); avg(int2/int4/int8/numeric) → numeric with
//! `numeric_div`'s scale; min/max of every comparable type; bool_and/bool_or; string_agg of
//! text; array_agg (arrays concatenated). Float sums and averages are refused: their result
//! depends on the order of additions, so no merge can promise one server's answer.

use pgfleet_sql::merge_plan::{Aggregate, FinalColumn};
use pgfleet_wire::rows::FieldDescription;

use crate::array;
use crate::error::MergeError;
use crate::numeric::Numeric;
use crate::value::{is_comparable, oid, type_name, Format, Value};

/// A merged column, checked against the shards' RowDescription.
#[derive(Clone, Debug)]
pub(crate) struct FinalSpec {
    pub source: FinalColumn,
    /// Type and format of the main shard column.
    pub in_oid: u32,
    pub format: Format,
    /// Type of the merged value.
    pub out_oid: u32,
    /// Format of avg()'s count helper column (text for other columns).
    pub count_format: Format,
}

impl FinalSpec {
    pub(crate) fn compile(
        source: &FinalColumn,
        fields: &[FieldDescription],
    ) -> Result<FinalSpec, MergeError> {
        let field = |i: usize| {
            fields.get(i).ok_or_else(|| {
                MergeError::Protocol(format!(
                    "a shard returned {} columns, the merge plan reads column {}",
                    fields.len(),
                    i + 1
                ))
            })
        };
        let (main, out_oid) = match source {
            FinalColumn::Group { column } => {
                let f = field(*column)?;
                (f, f.type_oid)
            }
            FinalColumn::Aggregate(a) => {
                let f = field(a.main_column())?;
                let t = f.type_oid;
                let refuse = |what: &str| {
                    Err(MergeError::Unsupported(format!(
                        "{what} over {} values",
                        type_name(t)
                    )))
                };
                let out = match a {
                    Aggregate::Count { .. } if t == oid::INT8 => t,
                    Aggregate::Sum { .. } if t == oid::INT8 || t == oid::NUMERIC => t,
                    Aggregate::Sum { .. } => {
                        return refuse("sum() (only exact integer and numeric sums are merged)")
                    }
                    Aggregate::Avg { count, .. } if t == oid::INT8 || t == oid::NUMERIC => {
                        if field(*count)?.type_oid != oid::INT8 {
                            return Err(MergeError::Protocol(
                                "avg() count helper is not bigint".into(),
                            ));
                        }
                        oid::NUMERIC
                    }
                    Aggregate::Avg { .. } => {
                        return refuse("avg() (only integer and numeric averages are merged)")
                    }
                    Aggregate::Min { .. } | Aggregate::Max { .. } if is_comparable(t) => t,
                    Aggregate::Min { .. } | Aggregate::Max { .. } => return refuse("min()/max()"),
                    Aggregate::BoolAnd { .. } | Aggregate::BoolOr { .. } if t == oid::BOOL => t,
                    Aggregate::StringAgg { .. } if t == oid::TEXT => t,
                    Aggregate::StringAgg { .. } => return refuse("string_agg()"),
                    Aggregate::ArrayAgg { .. } => t,
                    Aggregate::Count { .. }
                    | Aggregate::BoolAnd { .. }
                    | Aggregate::BoolOr { .. } => {
                        return Err(MergeError::Protocol(format!(
                            "unexpected {} result for {a:?}",
                            type_name(t)
                        )))
                    }
                };
                (f, out)
            }
        };
        let count_format = match source {
            FinalColumn::Aggregate(Aggregate::Avg { count, .. }) => {
                Format::from_code(field(*count)?.format)
            }
            _ => Format::Text,
        };
        Ok(FinalSpec {
            count_format,
            source: source.clone(),
            in_oid: main.type_oid,
            format: Format::from_code(main.format),
            out_oid,
        })
    }
}

/// The running merge of one column of one group.
#[derive(Clone, Debug)]
pub(crate) enum State {
    /// First value seen (`None` until a partial row arrives).
    Group(Option<Option<Vec<u8>>>),
    Count(i64),
    SumInt(Option<i64>),
    SumNumeric(Option<Numeric>),
    Min(Option<(Value, Vec<u8>)>),
    Max(Option<(Value, Vec<u8>)>),
    Avg {
        sum: Option<Numeric>,
        count: i64,
    },
    Bool {
        and: bool,
        acc: Option<bool>,
    },
    Concat(Option<Vec<u8>>),
}

fn int8(spec_format: Format, b: &[u8]) -> Result<i64, MergeError> {
    match Value::decode(oid::INT8, spec_format, b)? {
        Value::Int(i) => Ok(i),
        _ => Err(MergeError::BadValue("expected bigint".into())),
    }
}

fn numeric(type_oid: u32, format: Format, b: &[u8]) -> Result<Numeric, MergeError> {
    match Value::decode(type_oid, format, b)? {
        Value::Int(i) => Ok(Numeric::from_i64(i)),
        Value::Numeric(n) => Ok(n),
        _ => Err(MergeError::BadValue("expected a number".into())),
    }
}

impl State {
    pub(crate) fn new(spec: &FinalSpec) -> State {
        match &spec.source {
            FinalColumn::Group { .. } => State::Group(None),
            FinalColumn::Aggregate(a) => match a {
                Aggregate::Count { .. } => State::Count(0),
                Aggregate::Sum { .. } if spec.in_oid == oid::INT8 => State::SumInt(None),
                Aggregate::Sum { .. } => State::SumNumeric(None),
                Aggregate::Min { .. } => State::Min(None),
                Aggregate::Max { .. } => State::Max(None),
                Aggregate::Avg { .. } => State::Avg {
                    sum: None,
                    count: 0,
                },
                Aggregate::BoolAnd { .. } => State::Bool {
                    and: true,
                    acc: None,
                },
                Aggregate::BoolOr { .. } => State::Bool {
                    and: false,
                    acc: None,
                },
                Aggregate::StringAgg { .. } | Aggregate::ArrayAgg { .. } => State::Concat(None),
            },
        }
    }

    /// Adds one shard's partial row; returns the bytes of memory it now holds in addition.
    pub(crate) fn update(
        &mut self,
        spec: &FinalSpec,
        row: &[Option<&[u8]>],
    ) -> Result<usize, MergeError> {
        let main = match &spec.source {
            FinalColumn::Group { column } => *column,
            FinalColumn::Aggregate(a) => a.main_column(),
        };
        let v = row.get(main).copied().flatten();
        match self {
            State::Group(first) => {
                if first.is_none() {
                    let grown = v.map_or(0, <[u8]>::len);
                    *first = Some(v.map(<[u8]>::to_vec));
                    return Ok(grown);
                }
            }
            State::Count(n) => {
                if let Some(b) = v {
                    *n = n
                        .checked_add(int8(spec.format, b)?)
                        .ok_or(MergeError::Overflow)?;
                }
            }
            State::SumInt(s) => {
                if let Some(b) = v {
                    let x = int8(spec.format, b)?;
                    *s = Some(match s {
                        Some(acc) => acc.checked_add(x).ok_or(MergeError::Overflow)?,
                        None => x,
                    });
                }
            }
            State::SumNumeric(s) => {
                if let Some(b) = v {
                    let x = numeric(spec.in_oid, spec.format, b)?;
                    let grown = x.to_text().len();
                    *s = Some(match s.take() {
                        Some(acc) => acc.add(&x),
                        None => x,
                    });
                    return Ok(grown);
                }
            }
            State::Min(best) | State::Max(best) => {
                let want_max = matches!(spec.source, FinalColumn::Aggregate(Aggregate::Max { .. }));
                if let Some(b) = v {
                    let x = Value::decode(spec.in_oid, spec.format, b)?;
                    let replace = match best {
                        None => true,
                        Some((cur, _)) => {
                            let o = x.compare(cur)?;
                            if want_max {
                                o.is_gt()
                            } else {
                                o.is_lt()
                            }
                        }
                    };
                    if replace {
                        *best = Some((x, b.to_vec()));
                        return Ok(b.len());
                    }
                }
            }
            State::Avg { sum, count } => {
                let FinalColumn::Aggregate(Aggregate::Avg {
                    count: count_col, ..
                }) = &spec.source
                else {
                    return Err(MergeError::Protocol("avg state without avg plan".into()));
                };
                if let Some(b) = v {
                    let x = numeric(spec.in_oid, spec.format, b)?;
                    *sum = Some(match sum.take() {
                        Some(acc) => acc.add(&x),
                        None => x,
                    });
                }
                if let Some(b) = row.get(*count_col).copied().flatten() {
                    *count = count
                        .checked_add(int8(spec.count_format, b)?)
                        .ok_or(MergeError::Overflow)?;
                }
            }
            State::Bool { and, acc } => {
                if let Some(b) = v {
                    let Value::Bool(x) = Value::decode(oid::BOOL, spec.format, b)? else {
                        return Err(MergeError::BadValue("expected boolean".into()));
                    };
                    *acc = Some(match acc {
                        Some(a) if *and => *a && x,
                        Some(a) => *a || x,
                        None => x,
                    });
                }
            }
            State::Concat(acc) => {
                if let Some(b) = v {
                    match (acc.as_mut(), &spec.source) {
                        (None, _) => *acc = Some(b.to_vec()),
                        (
                            Some(a),
                            FinalColumn::Aggregate(Aggregate::StringAgg { delimiter, .. }),
                        ) => {
                            a.extend_from_slice(delimiter.as_bytes());
                            a.extend_from_slice(b);
                        }
                        (Some(a), _) => array::concat(a, b, spec.format == Format::Binary)?,
                    }
                    return Ok(b.len() + 1);
                }
            }
        }
        Ok(0)
    }

    /// The merged value in the column's output format.
    pub(crate) fn finish(self, spec: &FinalSpec) -> Option<Vec<u8>> {
        let binary = spec.format == Format::Binary;
        match self {
            State::Group(first) => first.flatten(),
            State::Count(n) => Some(encode_int8(n, binary)),
            State::SumInt(s) => s.map(|n| encode_int8(n, binary)),
            State::SumNumeric(s) => s.map(|n| encode_numeric(&n, binary)),
            State::Min(b) | State::Max(b) => b.map(|(_, raw)| raw),
            State::Avg { sum, count } => match sum {
                Some(s) if count > 0 => Some(encode_numeric(&s.div_count(count), binary)),
                _ => None,
            },
            State::Bool { acc, .. } => acc.map(|b| match (binary, b) {
                (true, b) => vec![u8::from(b)],
                (false, true) => b"t".to_vec(),
                (false, false) => b"f".to_vec(),
            }),
            State::Concat(acc) => acc,
        }
    }
}

fn encode_int8(n: i64, binary: bool) -> Vec<u8> {
    if binary {
        n.to_be_bytes().to_vec()
    } else {
        n.to_string().into_bytes()
    }
}

fn encode_numeric(n: &Numeric, binary: bool) -> Vec<u8> {
    if binary {
        let mut out = Vec::new();
        n.encode_binary(&mut out);
        out
    } else {
        n.to_text().into_bytes()
    }
}
