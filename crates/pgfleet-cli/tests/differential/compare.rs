//! Running one query in one protocol, and comparing two answers.
//!
//! Simple protocol: values are the server's text output. Extended protocol (tokio-postgres asks
//! for binary results): each value is decoded by its column type into a string (numeric digit for
//! digit, with its scale; timestamps as ISO text in UTC; arrays element by element), so equal
//! strings mean equal binary values.

use std::error::Error as StdError;
use std::fmt::Write as _;

use tokio_postgres::types::{FromSql, Kind, ToSql, Type};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::data::civil_from_days;
use crate::sql::{Query, Val};

/// A column as the RowDescription names it: name and (extended protocol only) type OID.
pub type Column = (String, Option<u32>);
pub type Row = Vec<Option<String>>;

/// What a server (or pgfleet) answered.
#[derive(Debug)]
pub enum Outcome {
    Rows {
        columns: Vec<Column>,
        rows: Vec<Row>,
    },
    Error {
        code: String,
        message: String,
    },
}

impl Outcome {
    fn from_error(e: &tokio_postgres::Error) -> Outcome {
        match e.as_db_error() {
            Some(db) => Outcome::Error {
                code: db.code().code().to_owned(),
                message: db.message().to_owned(),
            },
            None => Outcome::Error {
                code: "(none)".into(),
                message: e.to_string(),
            },
        }
    }

    /// Up to `max` rows, for failure reports.
    pub fn show(&self, max: usize) -> String {
        match self {
            Outcome::Error { code, message } => format!("ERROR {code}: {message}"),
            Outcome::Rows { columns, rows } => {
                let mut s = format!("columns {columns:?}, {} rows", rows.len());
                for r in rows.iter().take(max) {
                    let _ = write!(s, "\n      {r:?}");
                }
                if rows.len() > max {
                    s.push_str("\n      …");
                }
                s
            }
        }
    }
}

/// The simple protocol (one Query message).
pub async fn simple(client: &Client, text: &str) -> Outcome {
    match client.simple_query(text).await {
        Err(e) => Outcome::from_error(&e),
        Ok(msgs) => {
            let mut columns = Vec::new();
            let mut rows = Vec::new();
            for m in msgs {
                match m {
                    SimpleQueryMessage::RowDescription(cols) => {
                        columns = cols.iter().map(|c| (c.name().to_owned(), None)).collect();
                    }
                    SimpleQueryMessage::Row(r) => {
                        rows.push((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect());
                    }
                    SimpleQueryMessage::CommandComplete(_) => {}
                    _ => {}
                }
            }
            Outcome::Rows { columns, rows }
        }
    }
}

/// The extended protocol: Parse/Describe, then Bind (parameters in binary) / Execute with binary
/// results.
pub async fn extended(client: &Client, text: &str, params: &[Val]) -> Outcome {
    let stmt = match client.prepare(text).await {
        Ok(s) => s,
        Err(e) => return Outcome::from_error(&e),
    };
    let boxed: Vec<_> = params.iter().map(Val::param).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = boxed
        .iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect();
    match client.query(&stmt, &refs).await {
        Err(e) => Outcome::from_error(&e),
        Ok(rows) => {
            let columns = stmt
                .columns()
                .iter()
                .map(|c| (c.name().to_owned(), Some(c.type_().oid())))
                .collect();
            let rows = rows
                .iter()
                .map(|r| {
                    r.columns()
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            let raw: Raw = r.get(i);
                            raw.0.map(|b| render(c.type_(), &b))
                        })
                        .collect()
                })
                .collect();
            Outcome::Rows { columns, rows }
        }
    }
}

/// Compares pgfleet's rows with the plain server's: columns exactly, rows as lists when the
/// query's ORDER BY fixes their order, else as multisets; free-order aggregates element-wise.
pub fn compare(
    q: &Query,
    plain: (&[Column], &[Row]),
    fleet: (&[Column], &[Row]),
) -> Result<(), String> {
    if plain.0 != fleet.0 {
        return Err(format!(
            "columns differ: plain {:?}, pgfleet {:?}",
            plain.0, fleet.0
        ));
    }
    let norm = |rows: &[Row]| -> Vec<Row> {
        let mut rows: Vec<Row> = rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                for (i, sep) in &q.bags {
                    if let Some(Some(v)) = r.get_mut(*i) {
                        *v = sort_elements(v, sep);
                    }
                }
                r
            })
            .collect();
        if !q.ordered {
            rows.sort();
        }
        rows
    };
    let (a, b) = (norm(plain.1), norm(fleet.1));
    if a.len() != b.len() {
        return Err(format!(
            "{} rows from plain PostgreSQL, {} from pgfleet",
            a.len(),
            b.len()
        ));
    }
    match a.iter().zip(&b).position(|(x, y)| x != y) {
        None => Ok(()),
        Some(i) => Err(format!(
            "row {i}{} differs: plain {:?}, pgfleet {:?}",
            if q.ordered { "" } else { " (sorted)" },
            a[i],
            b[i]
        )),
    }
}

/// `{b,a,c}` → `{a,b,c}`, `b|a` → `a|b`: the elements in a fixed order.
fn sort_elements(v: &str, sep: &str) -> String {
    let (open, inner, close) = match v.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        Some(inner) if sep == "," => ("{", inner, "}"),
        _ => ("", v, ""),
    };
    let mut parts: Vec<&str> = inner.split(sep).collect();
    parts.sort_unstable();
    format!("{open}{}{close}", parts.join(sep))
}

/// Any value's raw binary bytes.
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Raw, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }
    fn from_sql_null(_: &Type) -> Result<Raw, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

/// A binary value as a string, by its type (types the dataset does not produce: hex).
fn render(ty: &Type, b: &[u8]) -> String {
    if let Kind::Array(elem) = ty.kind() {
        return render_array(elem, b);
    }
    match *ty {
        Type::BOOL => if b[0] != 0 { "t" } else { "f" }.into(),
        Type::INT2 => i16::from_be_bytes(be(b, 0)).to_string(),
        Type::INT4 => i32::from_be_bytes(be(b, 0)).to_string(),
        Type::INT8 => i64::from_be_bytes(be(b, 0)).to_string(),
        Type::FLOAT4 => f32::from_be_bytes(be(b, 0)).to_string(),
        Type::FLOAT8 => f64::from_be_bytes(be(b, 0)).to_string(),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
            String::from_utf8_lossy(b).into_owned()
        }
        Type::NUMERIC => render_numeric(b),
        Type::TIMESTAMPTZ | Type::TIMESTAMP => {
            let micros = i64::from_be_bytes(be(b, 0));
            let secs = micros.div_euclid(1_000_000);
            let frac = micros.rem_euclid(1_000_000);
            // 2000-01-01 is day 10957 since 1970-01-01.
            let days = secs.div_euclid(86_400) + 10_957;
            let rem = secs.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{frac:06}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60
            )
        }
        Type::DATE => {
            let (y, m, d) = civil_from_days(i64::from(i32::from_be_bytes(be(b, 0))) + 10_957);
            format!("{y:04}-{m:02}-{d:02}")
        }
        _ => b.iter().fold(String::from("\\x"), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        }),
    }
}

/// A one-dimensional binary array as `{e1,e2,NULL}` (NULL elements as `NULL`).
fn render_array(elem: &Type, b: &[u8]) -> String {
    let ndim = i32::from_be_bytes(be(b, 0));
    if ndim == 0 {
        return "{}".into();
    }
    let mut at = 12;
    let mut n = 1i64;
    for _ in 0..ndim {
        n *= i64::from(i32::from_be_bytes(be(b, at)));
        at += 8;
    }
    let mut parts = Vec::new();
    for _ in 0..n {
        let len = i32::from_be_bytes(be(b, at));
        at += 4;
        if len < 0 {
            parts.push("NULL".to_owned());
        } else {
            let len = len as usize;
            parts.push(render(elem, &b[at..at + len]));
            at += len;
        }
    }
    format!("{{{}}}", parts.join(","))
}

/// PostgreSQL's numeric send format (base-10000 digits, weight, sign, display scale) as text,
/// like `numeric_out`.
fn render_numeric(b: &[u8]) -> String {
    let ndigits = i16::from_be_bytes(be(b, 0)) as usize;
    let weight = i32::from(i16::from_be_bytes(be(b, 2)));
    let sign = u16::from_be_bytes(be(b, 4));
    let dscale = usize::from(u16::from_be_bytes(be(b, 6)));
    match sign {
        0xC000 => return "NaN".into(),
        0xD000 => return "Infinity".into(),
        0xF000 => return "-Infinity".into(),
        _ => {}
    }
    let digit = |i: i32| -> i16 {
        if i >= 0 && (i as usize) < ndigits {
            i16::from_be_bytes(be(b, 8 + 2 * i as usize))
        } else {
            0
        }
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                let _ = write!(s, "{}", digit(i));
            } else {
                let _ = write!(s, "{:04}", digit(i));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(i));
            i += 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_sorted() {
        assert_eq!(sort_elements("{c,NULL,a}", ","), "{NULL,a,c}");
        assert_eq!(sort_elements("b|a", "|"), "a|b");
    }
}
