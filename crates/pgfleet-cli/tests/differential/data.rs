//! The generated dataset of the differential test: three tables sharded by customer (customers by
//! `id`, orders and events by `customer_id`), products sharded by its own `id`, and the reference
//! table countries. Non-key columns have NULLs, values repeat (also whole event rows), and text is
//! full of non-ASCII (`Zürich`, `東京`, emoji) and case variants, so ordering is tested bytewise.
//! No text value contains `,` or `|`: the comparison splits `array_agg` / `string_agg` results on
//! them (see `compare.rs`).

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The tables, created on the plain server and on every shard (rows differ, the schema not).
pub const SCHEMA: &str = "
CREATE TABLE countries(code text PRIMARY KEY, name text NOT NULL);
CREATE TABLE customers(id bigint PRIMARY KEY, name text, country text, vip bool);
CREATE TABLE orders(customer_id bigint NOT NULL, id bigint NOT NULL, amount numeric(12,2),
                    qty int, status text, created_at timestamptz, product_id bigint,
                    PRIMARY KEY (customer_id, id));
CREATE TABLE events(customer_id bigint NOT NULL, id bigint NOT NULL, kind text, flag bool);
CREATE TABLE products(id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2), category text);
ALTER TABLE countries OWNER TO app;
ALTER TABLE customers OWNER TO app;
ALTER TABLE orders OWNER TO app;
ALTER TABLE events OWNER TO app;
ALTER TABLE products OWNER TO app;
";

/// Sizes of the generated tables.
const CUSTOMERS: usize = 300;
const ORDERS: usize = 2000;
const EVENTS: usize = 1000;
const EVENT_DUPLICATES: usize = 60;
const PRODUCTS: usize = 60;
/// Customer ids that orders and events use but customers lacks (outer joins see them).
const ORPHANS: usize = 8;

/// One value of a row, as an SQL literal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lit {
    Null,
    Int(i64),
    /// A numeric in its text form (`-12.30`).
    Num(String),
    Text(String),
    Bool(bool),
    /// A timestamptz in ISO form with offset (`2024-03-05 12:00:00+00`).
    Time(String),
}

impl Lit {
    /// The value as an SQL literal.
    pub fn sql(&self) -> String {
        match self {
            Lit::Null => "NULL".into(),
            Lit::Int(v) => v.to_string(),
            Lit::Num(v) => v.clone(),
            Lit::Text(v) | Lit::Time(v) => quote(v),
            Lit::Bool(v) => if *v { "true" } else { "false" }.into(),
        }
    }
}

/// `'text'` with quotes doubled (standard_conforming_strings is on).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One table's rows; `key` is the index of the shard key column (None: reference table).
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    pub key: Option<usize>,
    pub rows: Vec<Vec<Lit>>,
}

/// The whole dataset.
pub struct Dataset {
    pub tables: Vec<Table>,
    /// Customer ids in neither customers, orders nor events (point queries that find nothing).
    pub absent_ids: Vec<i64>,
}

impl Dataset {
    pub fn table(&self, name: &str) -> &Table {
        self.tables
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no generated table {name}"))
    }

    /// The distinct non-NULL values of `table.column`, in order.
    pub fn values(&self, table: &str, column: &str) -> Vec<Lit> {
        let t = self.table(table);
        let i = t
            .columns
            .iter()
            .position(|c| *c == column)
            .unwrap_or_else(|| panic!("no generated column {table}.{column}"));
        let set: BTreeSet<&Lit> = t
            .rows
            .iter()
            .map(|r| &r[i])
            .filter(|v| **v != Lit::Null)
            .collect();
        set.into_iter().cloned().collect()
    }
}

/// Names with duplicates, case variants, quotes, the empty string and many scripts.
const NAMES: &[&str] = &[
    "Anna",
    "anna",
    "ANNA",
    "Zürich AG",
    "東京商事",
    "Émile",
    "Zoë",
    "🎉 Party GmbH",
    "O'Brien",
    "",
    "Bob",
    "bob",
    "Åsa",
    "Ølaf",
    "a b",
    "Ünal",
    "naïve café",
    "İstanbul Ltd",
    "ß-Werk",
    "Łódź",
    "Ελένη",
    "Дмитрий",
    "محمد",
    "😀",
    "z",
    "Z",
];
const COUNTRIES: &[(&str, &str)] = &[
    ("ch", "Schweiz"),
    ("de", "Deutschland"),
    ("jp", "日本"),
    ("fr", "France"),
    ("es", "España"),
    ("gr", "Ελλάδα"),
    ("tr", "Türkiye"),
    ("us", "United States"),
    ("br", "Brasil"),
    ("kr", "대한민국"),
    ("at", "Österreich"),
    ("is", "Ísland"),
    ("eg", "مصر"),
    ("aq", "🐧 Antarctica"),
];
const STATUSES: &[&str] = &[
    "new",
    "paid",
    "shipped",
    "cancelled",
    "rückerstattet",
    "支払い済み",
];
const KINDS: &[&str] = &["click", "view", "buy", "Ärger", "クリック", "🛒"];
const CATEGORIES: &[&str] = &["tools", "toys", "書籍", "Bücher"];
const PRODUCT_NAMES: &[&str] = &["Hammer", "Säge", "ドライバー", "Zange", "🔧 Schlüssel"];
/// Amounts (in cents) that repeat on purpose.
const COMMON_CENTS: &[i64] = &[0, 999, 1000, 1999, 10000, -500];
/// Seconds after 2024-01-01 00:00:00 UTC that repeat on purpose.
const COMMON_SECONDS: &[i64] = &[0, 86_400, 15_552_000, 31_535_999];

/// Generates the dataset; the same rng state gives the same data.
pub fn generate(rng: &mut ChaCha8Rng) -> Dataset {
    let countries = Table {
        name: "countries",
        columns: &["code", "name"],
        key: None,
        rows: COUNTRIES
            .iter()
            .map(|(c, n)| vec![Lit::Text((*c).into()), Lit::Text((*n).into())])
            .collect(),
    };

    // Distinct ids, in random order: customers, then orphans, then ids nobody uses.
    let mut ids = BTreeSet::new();
    while ids.len() < CUSTOMERS + 2 * ORPHANS {
        ids.insert(rng.gen_range(1..=20_000i64));
    }
    // A negative id and 0 are keys too.
    let mut ids: Vec<i64> = ids.into_iter().collect();
    ids[0] = -7;
    ids[1] = 0;
    ids.shuffle(rng);
    let customer_ids = ids[..CUSTOMERS].to_vec();
    let orphan_ids = ids[CUSTOMERS..CUSTOMERS + ORPHANS].to_vec();
    let absent_ids = ids[CUSTOMERS + ORPHANS..].to_vec();

    let customers = Table {
        name: "customers",
        columns: &["id", "name", "country", "vip"],
        key: Some(0),
        rows: customer_ids
            .iter()
            .map(|&id| {
                let name = if rng.gen_bool(0.05) {
                    Lit::Null
                } else if rng.gen_bool(0.7) {
                    Lit::Text(pick(rng, NAMES).into())
                } else {
                    Lit::Text(format!("Kunde {}", rng.gen_range(1..200)))
                };
                let country = match rng.gen_range(0..20) {
                    0 | 1 => Lit::Null,
                    2 => Lit::Text("xx".into()),
                    _ => Lit::Text(pick(rng, COUNTRIES).0.into()),
                };
                vec![Lit::Int(id), name, country, maybe_null(rng, 0.1, Lit::Bool)]
            })
            .collect(),
    };

    let mut product_ids = BTreeSet::new();
    while product_ids.len() < PRODUCTS {
        product_ids.insert(rng.gen_range(1..=10_000i64));
    }
    let mut product_ids: Vec<i64> = product_ids.into_iter().collect();
    product_ids.shuffle(rng);
    let products = Table {
        name: "products",
        columns: &["id", "name", "price", "category"],
        key: Some(0),
        rows: product_ids
            .iter()
            .map(|&id| {
                let price = if rng.gen_bool(0.1) {
                    Lit::Null
                } else {
                    Lit::Num(cents(rng.gen_range(0..100_000)))
                };
                let category = if rng.gen_bool(0.15) {
                    Lit::Null
                } else {
                    Lit::Text(pick(rng, CATEGORIES).into())
                };
                vec![
                    Lit::Int(id),
                    Lit::Text(pick(rng, PRODUCT_NAMES).into()),
                    price,
                    category,
                ]
            })
            .collect(),
    };

    // Orders: some customers have many, orphans have a few; ids count per customer, so `id`
    // alone repeats and only (customer_id, id) is unique.
    let mut next_id: BTreeMap<i64, i64> = BTreeMap::new();
    let orders = Table {
        name: "orders",
        columns: &[
            "customer_id",
            "id",
            "amount",
            "qty",
            "status",
            "created_at",
            "product_id",
        ],
        key: Some(0),
        rows: (0..ORDERS)
            .map(|_| {
                let customer = if rng.gen_bool(0.05) {
                    pick(rng, &orphan_ids)
                } else if rng.gen_bool(0.3) {
                    pick(rng, &customer_ids[..30])
                } else {
                    pick(rng, &customer_ids)
                };
                let id = next_id.entry(customer).or_insert(0);
                *id += 1;
                let amount = match rng.gen_range(0..12) {
                    0 => Lit::Null,
                    1..=3 => Lit::Num(cents(pick(rng, COMMON_CENTS))),
                    _ => Lit::Num(cents(rng.gen_range(-5_000..500_000))),
                };
                let qty = if rng.gen_bool(0.08) {
                    Lit::Null
                } else {
                    Lit::Int(rng.gen_range(0..=20))
                };
                let status = if rng.gen_bool(0.05) {
                    Lit::Null
                } else {
                    Lit::Text(pick(rng, STATUSES).into())
                };
                let created_at = match rng.gen_range(0..20) {
                    0 => Lit::Null,
                    1..=5 => Lit::Time(timestamp(pick(rng, COMMON_SECONDS))),
                    _ => Lit::Time(timestamp(rng.gen_range(0..31_536_000))),
                };
                let product = match rng.gen_range(0..20) {
                    0 | 1 => Lit::Null,
                    2 => Lit::Int(rng.gen_range(10_001..10_100)),
                    _ => Lit::Int(pick(rng, &product_ids)),
                };
                vec![
                    Lit::Int(customer),
                    Lit::Int(*id),
                    amount,
                    qty,
                    status,
                    created_at,
                    product,
                ]
            })
            .collect(),
    };

    // Events: (customer_id, id) repeats, and some rows are exact copies of others.
    let mut event_rows: Vec<Vec<Lit>> = (0..EVENTS - EVENT_DUPLICATES)
        .map(|_| {
            let customer = if rng.gen_bool(0.04) {
                pick(rng, &orphan_ids)
            } else {
                pick(rng, &customer_ids)
            };
            let kind = if rng.gen_bool(0.1) {
                Lit::Null
            } else {
                Lit::Text(pick(rng, KINDS).into())
            };
            vec![
                Lit::Int(customer),
                Lit::Int(rng.gen_range(1..=40)),
                kind,
                maybe_null(rng, 0.15, Lit::Bool),
            ]
        })
        .collect();
    for _ in 0..EVENT_DUPLICATES {
        let copy = event_rows[rng.gen_range(0..event_rows.len())].clone();
        event_rows.push(copy);
    }
    event_rows.shuffle(rng);
    let events = Table {
        name: "events",
        columns: &["customer_id", "id", "kind", "flag"],
        key: Some(0),
        rows: event_rows,
    };

    Dataset {
        tables: vec![countries, customers, orders, events, products],
        absent_ids,
    }
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, xs: &[T]) -> T {
    *xs.choose(rng).expect("a non-empty pool")
}

fn maybe_null<T>(rng: &mut ChaCha8Rng, p: f64, f: impl FnOnce(T) -> Lit) -> Lit
where
    rand::distributions::Standard: rand::distributions::Distribution<T>,
{
    if rng.gen_bool(p) {
        Lit::Null
    } else {
        f(rng.gen())
    }
}

/// `-12.30` from -1230.
fn cents(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100)
}

/// The UTC timestamp `secs` seconds after 2024-01-01 00:00:00, as `2024-03-05 12:00:00+00`.
pub fn timestamp(secs: i64) -> String {
    // 2024-01-01 is day 19723 since 1970-01-01.
    let total = 19_723 * 86_400 + secs;
    let (days, rem) = (total.div_euclid(86_400), total.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}+00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month, day) of a day number since 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
