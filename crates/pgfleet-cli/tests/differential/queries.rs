//! The query generator: a fixed number of queries per category, their shapes and values drawn
//! from the seeded rng and the dataset. Every query has one correct answer on a single
//! PostgreSQL: ORDER BY with LIMIT/OFFSET always ends with a unique key of the rows (`ordered`),
//! aggregates are exact (numeric and integer columns only), and order-dependent aggregates
//! (`string_agg`/`array_agg` without ORDER BY) are marked so their elements compare as multisets.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::data::{quote, Dataset, Lit};
use crate::sql::{Category, Query, Sql, Val};

#[path = "shapes.rs"]
mod shapes;

/// How many queries of each category are generated (≥ 500 in all).
const PER_CATEGORY: [(Category, usize); 12] = [
    (Category::Point, 80),
    (Category::Reference, 35),
    (Category::Filter, 50),
    (Category::InList, 40),
    (Category::OrderLimit, 60),
    (Category::Aggregate, 50),
    (Category::GroupBy, 60),
    (Category::Distinct, 30),
    (Category::ColocatedJoin, 60),
    (Category::ReferenceJoin, 40),
    (Category::NonColocated, 20),
    (Category::Unsupported, 30),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int8,
    Int4,
    Num,
    Text,
    Bool,
    Time,
}

struct Col {
    name: &'static str,
    kind: Kind,
}

const fn col(name: &'static str, kind: Kind) -> Col {
    Col { name, kind }
}

/// What the generator knows about a table.
struct Spec {
    table: &'static str,
    alias: &'static str,
    /// The shard key column (None: reference table).
    key: Option<&'static str>,
    cols: &'static [Col],
    /// Columns whose values identify a row; rows equal in all of them are equal in every
    /// column (events has no primary key, so all of its columns).
    total: &'static [&'static str],
    /// Columns worth grouping by (few distinct values, NULLs).
    group: &'static [&'static str],
}

const CUSTOMERS: Spec = Spec {
    table: "customers",
    alias: "c",
    key: Some("id"),
    cols: &[
        col("id", Kind::Int8),
        col("name", Kind::Text),
        col("country", Kind::Text),
        col("vip", Kind::Bool),
    ],
    total: &["id"],
    group: &["country", "vip", "name"],
};
const ORDERS: Spec = Spec {
    table: "orders",
    alias: "o",
    key: Some("customer_id"),
    cols: &[
        col("customer_id", Kind::Int8),
        col("id", Kind::Int8),
        col("amount", Kind::Num),
        col("qty", Kind::Int4),
        col("status", Kind::Text),
        col("created_at", Kind::Time),
        col("product_id", Kind::Int8),
    ],
    total: &["customer_id", "id"],
    group: &["status", "qty", "customer_id", "product_id"],
};
const EVENTS: Spec = Spec {
    table: "events",
    alias: "e",
    key: Some("customer_id"),
    cols: &[
        col("customer_id", Kind::Int8),
        col("id", Kind::Int8),
        col("kind", Kind::Text),
        col("flag", Kind::Bool),
    ],
    total: &["customer_id", "id", "kind", "flag"],
    group: &["kind", "flag", "customer_id"],
};
const PRODUCTS: Spec = Spec {
    table: "products",
    alias: "p",
    key: Some("id"),
    cols: &[
        col("id", Kind::Int8),
        col("name", Kind::Text),
        col("price", Kind::Num),
        col("category", Kind::Text),
    ],
    total: &["id"],
    group: &["category", "name"],
};
const COUNTRIES: Spec = Spec {
    table: "countries",
    alias: "k",
    key: None,
    cols: &[col("code", Kind::Text), col("name", Kind::Text)],
    total: &["code"],
    group: &["name"],
};
const SHARDED: [&Spec; 4] = [&CUSTOMERS, &ORDERS, &EVENTS, &PRODUCTS];
/// Tables sharded by customer (co-located with each other).
const BY_CUSTOMER: [&Spec; 3] = [&CUSTOMERS, &ORDERS, &EVENTS];

/// Generates every query; the same rng state and dataset give the same queries.
pub fn generate(data: &Dataset, rng: &mut ChaCha8Rng) -> Vec<Query> {
    let mut g = Gen { rng, data };
    let mut out = Vec::new();
    for (cat, n) in PER_CATEGORY {
        for _ in 0..n {
            let mut q = match cat {
                Category::Point => g.point(),
                Category::Reference => g.reference(),
                Category::Filter => g.filter(),
                Category::InList => g.in_list(),
                Category::OrderLimit => g.order_limit(),
                Category::Aggregate => g.aggregate(),
                Category::GroupBy => g.group_by(),
                Category::Distinct => g.distinct(),
                Category::ColocatedJoin => g.colocated_join(),
                Category::ReferenceJoin => g.reference_join(),
                Category::NonColocated => g.non_colocated(),
                Category::Unsupported => g.unsupported(),
            };
            q.category = cat;
            q.parameterized = g.rng.gen_bool(0.6);
            out.push(q);
        }
    }
    out
}

/// The parts of a SELECT being built.
#[derive(Default)]
struct Select {
    distinct: bool,
    items: Vec<String>,
    bags: Vec<(usize, &'static str)>,
    from: String,
    filter: Option<Sql>,
    group: Option<String>,
    having: Option<String>,
    order: Option<String>,
    limit: Option<Sql>,
    single_shard: bool,
}

impl Select {
    fn new(from: &str) -> Select {
        Select {
            from: from.to_owned(),
            ..Select::default()
        }
    }

    fn item(&mut self, s: String, bag: Option<&'static str>) {
        if let Some(sep) = bag {
            self.bags.push((self.items.len(), sep));
        }
        self.items.push(s);
    }

    /// ANDs a condition into WHERE.
    fn and(&mut self, cond: Sql) {
        self.filter = Some(match self.filter.take() {
            None => cond,
            Some(f) => {
                let mut s = Sql::new("(");
                s.append(&f).push(") AND ").append(&cond);
                s
            }
        });
    }

    fn build(self) -> Query {
        let mut sql = Sql::new(if self.distinct {
            "SELECT DISTINCT "
        } else {
            "SELECT "
        });
        sql.push(&self.items.join(", "));
        sql.push(" FROM ").push(&self.from);
        if let Some(f) = &self.filter {
            sql.push(" WHERE ").append(f);
        }
        if let Some(g) = &self.group {
            sql.push(" GROUP BY ").push(g);
        }
        if let Some(h) = &self.having {
            sql.push(" HAVING ").push(h);
        }
        if let Some(o) = &self.order {
            sql.push(" ORDER BY ").push(o);
        }
        if let Some(l) = &self.limit {
            sql.push(" ").append(l);
        }
        Query {
            category: Category::Point,
            sql,
            ordered: self.order.is_some(),
            bags: self.bags,
            single_shard: self.single_shard,
            parameterized: false,
        }
    }
}

/// A query written out whole (joins, subqueries, unsupported constructs).
fn written(sql: Sql, ordered: bool, single_shard: bool) -> Query {
    Query {
        category: Category::Point,
        sql,
        ordered,
        bags: Vec::new(),
        single_shard,
        parameterized: false,
    }
}

/// `a.name`, or `name` without an alias.
fn qual(a: &str, name: &str) -> String {
    if a.is_empty() {
        name.to_owned()
    } else {
        format!("{a}.{name}")
    }
}

struct Gen<'a> {
    rng: &'a mut ChaCha8Rng,
    data: &'a Dataset,
}

impl Gen<'_> {
    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        *xs.choose(self.rng).expect("a non-empty pool")
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.gen_range(0..n)
    }

    /// `FROM orders o` or `FROM orders` (bare column names), and the alias to qualify with.
    fn from(&mut self, spec: &Spec) -> (String, &'static str) {
        if self.chance(0.5) {
            (format!("{} {}", spec.table, spec.alias), spec.alias)
        } else {
            (spec.table.to_owned(), "")
        }
    }

    /// A key of `spec` that has rows (mostly) or none.
    fn key_value(&mut self, spec: &Spec) -> i64 {
        if self.chance(0.1) {
            return self.pick(&self.data.absent_ids.clone());
        }
        let key = spec.key.expect("a sharded table");
        match self.existing(spec, key) {
            Some(Lit::Int(v)) => v,
            other => panic!("key value {other:?}"),
        }
    }

    /// A non-NULL value of `spec.column` from the data.
    fn existing(&mut self, spec: &Spec, column: &str) -> Option<Lit> {
        let values = self.data.values(spec.table, column);
        values.choose(self.rng).cloned()
    }

    /// A value to compare `column` with: from the data, or made up.
    fn value(&mut self, spec: &Spec, c: &Col) -> Sql {
        let mut s = Sql::default();
        let lit = if self.chance(0.8) {
            self.existing(spec, c.name)
        } else {
            None
        };
        match (c.kind, lit) {
            (Kind::Int8, Some(Lit::Int(v))) => s.val(Val::I8(v)),
            (Kind::Int8, _) => s.val(Val::I8(self.rng.gen_range(-10..20_000))),
            (Kind::Int4, Some(Lit::Int(v))) => s.val(Val::I4(v as i32)),
            (Kind::Int4, _) => s.val(Val::I4(self.rng.gen_range(-1..25))),
            (Kind::Text, Some(Lit::Text(v))) => s.val(Val::Text(v)),
            (Kind::Text, _) => {
                let v = self.pick(&["M", "a", "Zz", "é", "東", "nobody"]);
                s.val(Val::Text(v.into()))
            }
            (Kind::Bool, Some(Lit::Bool(v))) => s.val(Val::Bool(v)),
            (Kind::Bool, _) => s.val(Val::Bool(self.chance(0.5))),
            // numeric and timestamptz stay literals (no exact Rust type to bind them as).
            (Kind::Num, Some(Lit::Num(v))) => s.push(&v),
            (Kind::Num, _) => {
                let v = self.pick(&["0", "10.00", "-1.5", "999.99", "2500"]);
                s.push(v)
            }
            (Kind::Time, Some(Lit::Time(v))) => s.push(&quote(&v)),
            (Kind::Time, _) => {
                let d = self.rng.gen_range(0..365);
                s.push(&quote(&crate::data::timestamp(d * 86_400)))
            }
        };
        s
    }

    /// One condition on a column of `spec` (the shard key only if `with_key`).
    fn predicate(&mut self, spec: &Spec, a: &str, with_key: bool) -> Sql {
        let cols: Vec<&Col> = spec
            .cols
            .iter()
            .filter(|c| with_key || Some(c.name) != spec.key)
            .collect();
        let c = cols[self.below(cols.len())];
        let name = qual(a, c.name);
        let mut s = Sql::new(&name);
        let null_test = if self.chance(0.5) {
            " IS NULL"
        } else {
            " IS NOT NULL"
        };
        match (c.kind, self.below(6)) {
            (_, 0) => {
                s.push(null_test);
            }
            (Kind::Bool, 1) => s = Sql::new(&format!("NOT {name}")),
            (Kind::Bool, 2) => s = Sql::new(&name),
            (Kind::Bool, 3) => {
                s.push(" IS NOT TRUE");
            }
            (Kind::Bool, _) => {
                let v = self.value(spec, c);
                s.push(" = ").append(&v);
            }
            (Kind::Text, 1) => {
                let prefix = match self.existing(spec, c.name) {
                    Some(Lit::Text(t)) => t.chars().next().map(String::from),
                    _ => None,
                };
                s.push(" LIKE ")
                    .val(Val::Text(format!("{}%", prefix.unwrap_or_default())));
            }
            (_, 2) => {
                let (v, w) = (self.value(spec, c), self.value(spec, c));
                s.push(" IN (").append(&v).push(", ").append(&w);
                if self.chance(0.5) {
                    let x = self.value(spec, c);
                    s.push(", ").append(&x);
                }
                s.push(")");
            }
            (_, 3) => {
                let (v, w) = (self.value(spec, c), self.value(spec, c));
                s.push(" BETWEEN ").append(&v).push(" AND ").append(&w);
            }
            _ => {
                let op = self.pick(&["=", "<>", ">", ">=", "<", "<="]);
                let v = self.value(spec, c);
                s.push(&format!(" {op} ")).append(&v);
            }
        }
        s
    }

    /// 1–2 conditions joined by AND or OR.
    fn conditions(&mut self, spec: &Spec, a: &str, with_key: bool) -> Sql {
        let p = self.predicate(spec, a, with_key);
        if self.chance(0.6) {
            return p;
        }
        let q = self.predicate(spec, a, with_key);
        let op = if self.chance(0.5) { " AND " } else { " OR " };
        let mut s = Sql::new("(");
        s.append(&p).push(op).append(&q).push(")");
        s
    }

    /// `key = v` in one of its spellings.
    fn key_eq(&mut self, spec: &Spec, a: &str, v: i64) -> Sql {
        let key = qual(a, spec.key.expect("a sharded table"));
        let mut s = Sql::default();
        match self.below(5) {
            0 => s.val(Val::I8(v)).push(&format!(" = {key}")),
            1 => s.push(&format!("{key} IN (")).val(Val::I8(v)).push(")"),
            2 => s
                .push(&format!("{key} = ANY("))
                .val(Val::I8Array(vec![v]))
                .push(")"),
            _ => s.push(&format!("{key} = ")).val(Val::I8(v)),
        };
        s
    }

    /// `key IN (…)` or `key = ANY(ARRAY[…])` with 2–8 values.
    fn key_in(&mut self, spec: &Spec, a: &str) -> Sql {
        let key = qual(a, spec.key.expect("a sharded table"));
        let n = self.rng.gen_range(2..=8);
        let vals: Vec<i64> = (0..n).map(|_| self.key_value(spec)).collect();
        let mut s = Sql::default();
        if self.chance(0.5) {
            s.push(&format!("{key} = ANY("))
                .val(Val::I8Array(vals))
                .push(")");
        } else {
            s.push(&format!("{key} IN ("));
            for (i, v) in vals.into_iter().enumerate() {
                if i > 0 {
                    s.push(", ");
                }
                s.val(Val::I8(v));
            }
            s.push(")");
        }
        s
    }

    /// 1–4 columns (or `*`).
    fn columns(&mut self, spec: &Spec, a: &str) -> Vec<String> {
        if self.chance(0.15) {
            return vec![if a.is_empty() {
                "*".to_owned()
            } else {
                format!("{a}.*")
            }];
        }
        let n = self.rng.gen_range(1..=4.min(spec.cols.len()));
        let mut cols: Vec<&Col> = spec.cols.iter().collect();
        cols.shuffle(self.rng);
        cols[..n].iter().map(|c| qual(a, c.name)).collect()
    }

    /// A sort key of `spec`: a column or an expression over one, with direction and NULLS.
    fn sort_key(&mut self, spec: &Spec, a: &str) -> String {
        let c = &spec.cols[self.below(spec.cols.len())];
        let name = qual(a, c.name);
        let expr = if self.chance(0.7) {
            name
        } else {
            match c.kind {
                Kind::Int8 | Kind::Int4 => format!("-{name}"),
                Kind::Num => format!("abs({name})"),
                Kind::Text => {
                    if self.chance(0.5) {
                        format!("lower({name})")
                    } else {
                        format!("length({name})")
                    }
                }
                Kind::Bool => format!("(NOT {name})"),
                Kind::Time => format!("date_trunc('month', {name})"),
            }
        };
        format!("{expr}{}", self.direction())
    }

    fn direction(&mut self) -> &'static str {
        self.pick(&[
            "",
            "",
            " ASC",
            " DESC",
            " DESC NULLS LAST",
            " ASC NULLS FIRST",
            " NULLS FIRST",
        ])
    }

    /// ORDER BY 0–`lead` sort keys, then the unique key `tail` (random directions): a total order.
    fn total_order(&mut self, spec: &Spec, a: &str, lead: usize, tail: &[String]) -> String {
        let n = self.rng.gen_range(0..=lead);
        let mut keys: Vec<String> = (0..n).map(|_| self.sort_key(spec, a)).collect();
        for t in tail {
            let d = self.direction();
            keys.push(format!("{t}{d}"));
        }
        keys.join(", ")
    }

    fn tail(spec: &Spec, a: &str) -> Vec<String> {
        spec.total.iter().map(|t| qual(a, t)).collect()
    }

    /// LIMIT and/or OFFSET (only after a total ORDER BY).
    fn limit(&mut self) -> Sql {
        let mut s = Sql::default();
        let l = self.pick(&[1i64, 3, 10, 25, 100]);
        match self.below(5) {
            0 => s.push("OFFSET ").val(Val::I8(self.rng.gen_range(0..50))),
            1 => s.push("LIMIT ").val(Val::I8(l)),
            2 => s.push(&format!("FETCH FIRST {l} ROWS ONLY")),
            _ => s
                .push("LIMIT ")
                .val(Val::I8(l))
                .push(" OFFSET ")
                .val(Val::I8(self.pick(&[0i64, 1, 5, 40, 5000]))),
        };
        s
    }

    /// An aggregate over a column of `spec`, and the separator if its element order is free.
    fn aggregate_item(&mut self, spec: &Spec, a: &str) -> (String, Option<&'static str>) {
        if self.chance(0.15) {
            return ("count(*)".into(), None);
        }
        let c = &spec.cols[self.below(spec.cols.len())];
        let name = qual(a, c.name);
        let f = match c.kind {
            Kind::Int8 | Kind::Int4 | Kind::Num => {
                self.pick(&["count", "sum", "min", "max", "avg", "array_agg"])
            }
            Kind::Text => self.pick(&["count", "min", "max", "string_agg", "array_agg"]),
            Kind::Bool => self.pick(&["count", "bool_and", "bool_or", "every", "array_agg"]),
            Kind::Time => self.pick(&["count", "min", "max"]),
        };
        match f {
            "string_agg" => (format!("string_agg({name}, '|')"), Some("|")),
            "array_agg" => (format!("array_agg({name})"), Some(",")),
            f => (format!("{f}({name})"), None),
        }
    }

    /// A HAVING condition of the forms the merge evaluates (comparisons with constants).
    fn having(&mut self, spec: &Spec, a: &str) -> String {
        let one = |g: &mut Gen| -> String {
            let c = &spec.cols[g.below(spec.cols.len())];
            let name = qual(a, c.name);
            match (c.kind, g.below(4)) {
                (_, 0) => format!("count(*) > {}", g.rng.gen_range(0..5)),
                (Kind::Num | Kind::Int4 | Kind::Int8, 1) => {
                    format!("sum({name}) > {}", g.pick(&["0", "100", "1000.50"]))
                }
                (Kind::Bool, _) => format!("bool_or({name})"),
                (Kind::Text, 2) => format!("max({name}) >= 'M'"),
                (_, 3) => format!("min({name}) IS NOT NULL"),
                _ => format!("count({name}) >= {}", g.rng.gen_range(1..4)),
            }
        };
        let h = one(self);
        if self.chance(0.25) {
            let h2 = one(self);
            let op = self.pick(&["AND", "OR"]);
            format!("{h} {op} {h2}")
        } else {
            h
        }
    }
}
