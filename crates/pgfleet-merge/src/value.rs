//! Typed values of the columns the merge must understand (sort keys, group keys, DISTINCT
//! columns, aggregate partials), decoded from either wire format by type OID, compared in
//! PostgreSQL's order for that type, and turned into canonical bytes for grouping.

use std::cmp::Ordering;

use pgfleet_catalog::{parse_key, ShardKeyType, ShardKeyValue, ValueFormat};

use crate::error::MergeError;
use crate::numeric::Numeric;

/// Type OIDs (`pg_type.oid`, stable across PostgreSQL versions).
pub mod oid {
    /// bool
    pub const BOOL: u32 = 16;
    /// bytea
    pub const BYTEA: u32 = 17;
    /// name
    pub const NAME: u32 = 19;
    /// int8
    pub const INT8: u32 = 20;
    /// int2
    pub const INT2: u32 = 21;
    /// int4
    pub const INT4: u32 = 23;
    /// text
    pub const TEXT: u32 = 25;
    /// float4
    pub const FLOAT4: u32 = 700;
    /// float8
    pub const FLOAT8: u32 = 701;
    /// bpchar (char(n))
    pub const BPCHAR: u32 = 1042;
    /// varchar
    pub const VARCHAR: u32 = 1043;
    /// date
    pub const DATE: u32 = 1082;
    /// timestamp
    pub const TIMESTAMP: u32 = 1114;
    /// timestamptz
    pub const TIMESTAMPTZ: u32 = 1184;
    /// numeric
    pub const NUMERIC: u32 = 1700;
    /// uuid
    pub const UUID: u32 = 2950;
}

/// Format of a column's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Text (format code 0).
    Text,
    /// Binary (format code 1).
    Binary,
}

impl Format {
    /// From a RowDescription format code.
    pub fn from_code(code: i16) -> Format {
        if code == 1 {
            Format::Binary
        } else {
            Format::Text
        }
    }
}

/// A decoded non-NULL value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// int2, int4, int8.
    Int(i64),
    /// float4 (widened), float8.
    Float(f64),
    /// numeric.
    Numeric(Numeric),
    /// text, varchar, name, bpchar (trailing blanks removed: they are insignificant for bpchar).
    Bytes(Vec<u8>),
    /// bool.
    Bool(bool),
    /// date (days), timestamp and timestamptz (microseconds), in PostgreSQL's representation.
    Time(i64),
    /// uuid.
    Uuid([u8; 16]),
}

/// Whether the merge can compare, group and deduplicate values of this type.
pub fn is_comparable(type_oid: u32) -> bool {
    use oid::*;
    matches!(
        type_oid,
        BOOL | NAME
            | INT8
            | INT2
            | INT4
            | TEXT
            | FLOAT4
            | FLOAT8
            | BPCHAR
            | VARCHAR
            | DATE
            | TIMESTAMP
            | TIMESTAMPTZ
            | NUMERIC
            | UUID
    )
}

/// A short type name for messages.
pub fn type_name(type_oid: u32) -> String {
    use oid::*;
    match type_oid {
        BOOL => "boolean".into(),
        BYTEA => "bytea".into(),
        NAME => "name".into(),
        INT8 => "bigint".into(),
        INT2 => "smallint".into(),
        INT4 => "integer".into(),
        TEXT => "text".into(),
        FLOAT4 => "real".into(),
        FLOAT8 => "double precision".into(),
        BPCHAR => "character".into(),
        VARCHAR => "character varying".into(),
        DATE => "date".into(),
        TIMESTAMP => "timestamp".into(),
        TIMESTAMPTZ => "timestamptz".into(),
        NUMERIC => "numeric".into(),
        UUID => "uuid".into(),
        other => format!("type OID {other}"),
    }
}

fn bad(type_oid: u32, why: impl std::fmt::Display) -> MergeError {
    MergeError::BadValue(format!(
        "invalid {} value from a shard: {why}",
        type_name(type_oid)
    ))
}

fn fixed<const N: usize>(type_oid: u32, b: &[u8]) -> Result<[u8; N], MergeError> {
    b.try_into()
        .map_err(|_| bad(type_oid, format!("expected {N} bytes, got {}", b.len())))
}

fn utf8(type_oid: u32, b: &[u8]) -> Result<&str, MergeError> {
    std::str::from_utf8(b).map_err(|_| bad(type_oid, "not UTF-8"))
}

/// An integer as PostgreSQL writes it (`-` and up to 18 digits: any such number fits an i64),
/// read straight from the bytes; `None` for anything else, which the caller parses in full.
fn short_int_text(b: &[u8]) -> Option<i64> {
    let (negative, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(d - b'0');
    }
    Some(if negative { -v } else { v })
}

impl Value {
    /// Decodes a value of a comparable type (see [`is_comparable`]).
    pub fn decode(type_oid: u32, format: Format, b: &[u8]) -> Result<Value, MergeError> {
        use oid::*;
        Ok(match (type_oid, format) {
            (INT2, Format::Binary) => {
                Value::Int(i64::from(i16::from_be_bytes(fixed(type_oid, b)?)))
            }
            (INT4, Format::Binary) => {
                Value::Int(i64::from(i32::from_be_bytes(fixed(type_oid, b)?)))
            }
            (INT8, Format::Binary) => Value::Int(i64::from_be_bytes(fixed(type_oid, b)?)),
            (INT2 | INT4 | INT8, Format::Text) => Value::Int(match short_int_text(b) {
                Some(v) => v,
                None => utf8(type_oid, b)?.parse().map_err(|e| bad(type_oid, e))?,
            }),
            (FLOAT4, Format::Binary) => {
                Value::Float(f64::from(f32::from_be_bytes(fixed(type_oid, b)?)))
            }
            (FLOAT8, Format::Binary) => Value::Float(f64::from_be_bytes(fixed(type_oid, b)?)),
            // float4 text is the shortest text that reads back as the same float4: read it as
            // one, so text and binary results compare alike.
            (FLOAT4, Format::Text) => Value::Float(f64::from(
                utf8(type_oid, b)?
                    .parse::<f32>()
                    .map_err(|e| bad(type_oid, e))?,
            )),
            (FLOAT8, Format::Text) => Value::Float(
                utf8(type_oid, b)?
                    .parse::<f64>()
                    .map_err(|e| bad(type_oid, e))?,
            ),
            (NUMERIC, Format::Text) => {
                Value::Numeric(Numeric::parse(utf8(type_oid, b)?).map_err(|e| bad(type_oid, e.0))?)
            }
            (NUMERIC, Format::Binary) => {
                Value::Numeric(Numeric::decode_binary(b).map_err(|e| bad(type_oid, e.0))?)
            }
            (TEXT | VARCHAR | NAME, _) => Value::Bytes(b.to_vec()),
            (BPCHAR, _) => {
                let end = b.iter().rposition(|c| *c != b' ').map_or(0, |i| i + 1);
                Value::Bytes(b[..end].to_vec())
            }
            (BOOL, Format::Binary) => Value::Bool(fixed::<1>(type_oid, b)?[0] != 0),
            (BOOL, Format::Text) => match b {
                b"t" => Value::Bool(true),
                b"f" => Value::Bool(false),
                _ => return Err(bad(type_oid, "expected t or f")),
            },
            (DATE, Format::Binary) => {
                Value::Time(i64::from(i32::from_be_bytes(fixed(type_oid, b)?)))
            }
            (TIMESTAMP | TIMESTAMPTZ, Format::Binary) => {
                Value::Time(i64::from_be_bytes(fixed(type_oid, b)?))
            }
            (UUID, Format::Binary) => Value::Uuid(fixed(type_oid, b)?),
            (DATE | TIMESTAMP | TIMESTAMPTZ | UUID, Format::Text) => {
                let key_type = match type_oid {
                    DATE => ShardKeyType::Date,
                    TIMESTAMP => ShardKeyType::Timestamp,
                    TIMESTAMPTZ => ShardKeyType::TimestampTz,
                    _ => ShardKeyType::Uuid,
                };
                // pgfleet-catalog reads PostgreSQL's ISO output (DateStyle ISO) exactly.
                match parse_key(key_type, ValueFormat::Text, b).map_err(|e| bad(type_oid, e))? {
                    ShardKeyValue::Date(d) => Value::Time(i64::from(d)),
                    ShardKeyValue::Timestamp(t) | ShardKeyValue::TimestampTz(t) => Value::Time(t),
                    ShardKeyValue::Uuid(u) => Value::Uuid(u),
                    other => return Err(bad(type_oid, format!("unexpected value {other}"))),
                }
            }
            _ => {
                return Err(MergeError::Unsupported(format!(
                    "values of {} cannot be compared by the cross-shard merge",
                    type_name(type_oid)
                )))
            }
        })
    }

    /// PostgreSQL's order for values of one type. Integers compare exactly with numerics (for
    /// HAVING); floats order NaN above everything and -0 equal to 0, as `float8_cmp` does.
    pub fn compare(&self, other: &Value) -> Result<Ordering, MergeError> {
        Ok(match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Numeric(a), Value::Numeric(b)) => a.cmp(b),
            (Value::Int(a), Value::Numeric(b)) => Numeric::from_i64(*a).cmp(b),
            (Value::Numeric(a), Value::Int(b)) => a.cmp(&Numeric::from_i64(*b)),
            (Value::Float(a), Value::Float(b)) => float_cmp(*a, *b),
            (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Time(a), Value::Time(b)) => a.cmp(b),
            (Value::Uuid(a), Value::Uuid(b)) => a.cmp(b),
            _ => {
                return Err(MergeError::BadValue(format!(
                    "cannot compare {self:?} with {other:?}"
                )))
            }
        })
    }

    /// Appends bytes that are equal exactly when two values of one type are equal.
    pub fn canonical(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => {
                out.push(1);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Value::Float(f) => {
                out.push(2);
                let bits = if f.is_nan() {
                    u64::MAX
                } else if *f == 0.0 {
                    0
                } else {
                    f.to_bits()
                };
                out.extend_from_slice(&bits.to_be_bytes());
            }
            Value::Numeric(n) => {
                out.push(3);
                let text = n.normalized().to_text();
                out.extend_from_slice(&(text.len() as u32).to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            Value::Bytes(b) => {
                out.push(4);
                out.extend_from_slice(&(b.len() as u32).to_be_bytes());
                out.extend_from_slice(b);
            }
            Value::Bool(b) => out.extend_from_slice(&[5, u8::from(*b)]),
            Value::Time(t) => {
                out.push(6);
                out.extend_from_slice(&t.to_be_bytes());
            }
            Value::Uuid(u) => {
                out.push(7);
                out.extend_from_slice(u);
            }
        }
    }
}

fn float_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        // Neither is NaN: partial_cmp is total here (and -0 == 0).
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Compares two possibly-NULL values for one sort key.
pub fn compare_nullable(
    a: Option<&Value>,
    b: Option<&Value>,
    descending: bool,
    nulls_first: bool,
) -> Result<Ordering, MergeError> {
    Ok(match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => {
            if nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (Some(_), None) => {
            if nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Some(x), Some(y)) => {
            let o = x.compare(y)?;
            if descending {
                o.reverse()
            } else {
                o
            }
        }
    })
}

/// Canonical bytes of a possibly-NULL value (NULLs are equal to each other for GROUP BY and
/// DISTINCT, as in PostgreSQL).
pub fn canonical_nullable(v: Option<&Value>, out: &mut Vec<u8>) {
    match v {
        None => out.push(0),
        Some(v) => v.canonical(out),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integer_text_reads_like_the_full_parse() {
        for text in [
            "0",
            "-0",
            "7",
            "-7",
            "123456789012345678",
            "-123456789012345678",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999",
            "",
            "-",
            "+5",
            "1 ",
            " 1",
            "1a",
            "--1",
        ] {
            let full = text.parse::<i64>().ok();
            if let Some(v) = short_int_text(text.as_bytes()) {
                assert_eq!(Some(v), full, "{text:?}");
            }
            let decoded = Value::decode(oid::INT8, Format::Text, text.as_bytes()).ok();
            assert_eq!(decoded, full.map(Value::Int), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn every_int8_round_trips_through_its_text(v in any::<i64>()) {
            let text = v.to_string();
            prop_assert_eq!(
                Value::decode(oid::INT8, Format::Text, text.as_bytes()).unwrap(),
                Value::Int(v)
            );
        }
    }
}
