//! A generated query: its text as pieces of SQL and values, so that the same query can be sent
//! with literals (simple protocol) or with bind parameters (extended protocol), and what the
//! comparison needs to know about its result.

use tokio_postgres::types::ToSql;

use super::data::quote;

/// What a query exercises; the summary counts per category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// One sharded table restricted to one key value (`customer_id = 42`).
    Point,
    /// Only the reference table.
    Reference,
    /// Filters on non-key columns.
    Filter,
    /// `key IN (…)` and `key = ANY(…)`.
    InList,
    /// Multi-key ORDER BY with LIMIT / OFFSET.
    OrderLimit,
    /// Aggregates without GROUP BY.
    Aggregate,
    /// GROUP BY, HAVING.
    GroupBy,
    /// SELECT DISTINCT.
    Distinct,
    /// Joins of sharded tables on their shard keys.
    ColocatedJoin,
    /// Sharded tables joined with the reference table.
    ReferenceJoin,
    /// Joins and subqueries that are not co-located: one shard cannot answer them.
    NonColocated,
    /// Constructs the cross-shard merge does not support (window functions, DISTINCT ON, …).
    Unsupported,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::Point => "point (one key)",
            Category::Reference => "reference only",
            Category::Filter => "filters",
            Category::InList => "IN lists",
            Category::OrderLimit => "ORDER BY + LIMIT/OFFSET",
            Category::Aggregate => "aggregates",
            Category::GroupBy => "GROUP BY / HAVING",
            Category::Distinct => "DISTINCT",
            Category::ColocatedJoin => "co-located joins",
            Category::ReferenceJoin => "reference joins",
            Category::NonColocated => "non-co-located",
            Category::Unsupported => "unsupported by merge",
        }
    }
}

/// A value that is a literal in the simple protocol and may be a parameter in the extended one.
/// Each variant is the Rust type tokio-postgres binds for the column type the server infers.
#[derive(Clone, Debug)]
pub enum Val {
    /// bigint
    I8(i64),
    /// integer
    I4(i32),
    Text(String),
    Bool(bool),
    /// bigint[] (`= ANY(…)`)
    I8Array(Vec<i64>),
}

impl Val {
    fn literal(&self) -> String {
        match self {
            Val::I8(v) => v.to_string(),
            Val::I4(v) => v.to_string(),
            Val::Text(v) => quote(v),
            Val::Bool(v) => if *v { "true" } else { "false" }.into(),
            Val::I8Array(v) => format!(
                "ARRAY[{}]",
                v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// The value as a tokio-postgres parameter.
    pub fn param(&self) -> Box<dyn ToSql + Sync + Send> {
        match self {
            Val::I8(v) => Box::new(*v),
            Val::I4(v) => Box::new(*v),
            Val::Text(v) => Box::new(v.clone()),
            Val::Bool(v) => Box::new(*v),
            Val::I8Array(v) => Box::new(v.clone()),
        }
    }
}

#[derive(Clone, Debug)]
enum Piece {
    Sql(String),
    Val(Val),
}

/// SQL text with values that can become parameters.
#[derive(Clone, Debug, Default)]
pub struct Sql {
    pieces: Vec<Piece>,
}

impl Sql {
    pub fn new(s: &str) -> Sql {
        let mut q = Sql::default();
        q.push(s);
        q
    }

    pub fn push(&mut self, s: &str) -> &mut Sql {
        self.pieces.push(Piece::Sql(s.to_owned()));
        self
    }

    pub fn val(&mut self, v: Val) -> &mut Sql {
        self.pieces.push(Piece::Val(v));
        self
    }

    pub fn append(&mut self, other: &Sql) -> &mut Sql {
        self.pieces.extend(other.pieces.iter().cloned());
        self
    }

    /// The text with every value as a literal.
    pub fn literal_text(&self) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Sql(s) => s.clone(),
                Piece::Val(v) => v.literal(),
            })
            .collect()
    }

    /// The text with values as `$1`, `$2`, … and the values in that order.
    pub fn parameterized(&self) -> (String, Vec<Val>) {
        let mut text = String::new();
        let mut vals = Vec::new();
        for p in &self.pieces {
            match p {
                Piece::Sql(s) => text.push_str(s),
                Piece::Val(v) => {
                    vals.push(v.clone());
                    text.push_str(&format!("${}", vals.len()));
                }
            }
        }
        (text, vals)
    }
}

/// One generated query and what the comparison must know about it.
#[derive(Clone, Debug)]
pub struct Query {
    pub category: Category,
    pub sql: Sql,
    /// ORDER BY fixes the order of the rows (keys end with a unique key): compare as lists;
    /// otherwise as multisets.
    pub ordered: bool,
    /// Output columns of `string_agg` / `array_agg` without ORDER BY, with the separator: their
    /// element order is not defined, so their elements are compared as multisets.
    pub bags: Vec<(usize, &'static str)>,
    /// pgfleet routes it to one shard (or it reads only reference tables), so it must be
    /// answered today: a refusal is a failure.
    pub single_shard: bool,
    /// The extended-protocol run binds the values as parameters (else literals in both runs).
    pub parameterized: bool,
}

impl Query {
    /// The text for the simple protocol.
    pub fn simple_text(&self) -> String {
        self.sql.literal_text()
    }

    /// The text and parameters for the extended protocol.
    pub fn extended(&self) -> (String, Vec<Val>) {
        if self.parameterized {
            self.sql.parameterized()
        } else {
            (self.sql.literal_text(), Vec::new())
        }
    }
}
