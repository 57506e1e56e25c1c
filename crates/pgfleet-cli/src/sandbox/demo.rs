//! The demo schema and data of a sharded sandbox (`--shards N`): pure SQL generation.
//!
//! Every shard gets the same three tables; `countries` (a reference table) gets the same rows
//! everywhere, and each `customers` / `orders` row goes to the shard that pgfleet itself routes
//! its key to ([`DatabaseTopology::shard_for`], PostgreSQL's hash partitioning bit for bit), so
//! a query through the proxy finds every row where it looks. The data is deterministic: every
//! sandbox of the same shard count holds the same rows.

use std::fmt::Write as _;

use pgfleet_catalog::ids::{id_function_sql, Generator};
use pgfleet_catalog::{CatalogError, DatabaseTopology, ShardKeyValue};

/// The demo tables, as created on every shard (the sharded ones are named in the generated
/// config, `super::config_file`). New orders get their id from the shard's `pgfleet.id()`
/// (installed just before, [`id_function_sql`]): unique across shards.
const SCHEMA: &str = "\
CREATE TABLE customers (id bigint PRIMARY KEY, name text, country text);
CREATE TABLE orders (id bigint DEFAULT pgfleet.id(), customer_id bigint, amount numeric(12,2), \
created_at timestamptz, PRIMARY KEY (customer_id, id));
CREATE TABLE countries (code text PRIMARY KEY, name text);
";

/// The demo tables' names, for finding out whether a shard has them already.
pub(super) const TABLES: [&str; 3] = ["customers", "orders", "countries"];

/// Reference rows (code, name), non-ASCII names and a quote on purpose.
const COUNTRIES: [(&str, &str); 10] = [
    ("AT", "Österreich"),
    ("BR", "Brasil"),
    ("CI", "Côte d'Ivoire"),
    ("DE", "Deutschland"),
    ("ES", "España"),
    ("GR", "Ελλάδα"),
    ("IN", "भारत"),
    ("JP", "日本"),
    ("SE", "Sverige"),
    ("US", "United States"),
];

const FIRST_NAMES: [&str; 20] = [
    "Ada", "Björn", "Chloé", "Dmitri", "Émilie", "Farah", "Giulia", "Hiroshi", "Ingrid", "José",
    "Kwame", "Léa", "Mateo", "Nuno", "Olga", "Priya", "Quentin", "Rosa", "Søren", "Zoë",
];

const LAST_NAMES: [&str; 15] = [
    "Almeida", "Bauer", "Çelik", "Dubois", "Eriksson", "Fischer", "García", "Haddad", "Ivanova",
    "Jensen", "Kowalski", "Müller", "Nakamura", "O'Brien", "Petrov",
];

/// Customers 1..=CUSTOMERS.
pub(super) const CUSTOMERS: i64 = 200;
/// Orders 1..=ORDERS, each of a customer in 1..=CUSTOMERS.
pub(super) const ORDERS: i64 = 1000;

struct Customer {
    id: i64,
    name: String,
    country: &'static str,
}

struct Order {
    id: i64,
    customer_id: i64,
    /// Amount in cents.
    cents: u64,
    /// `YYYY-MM-DD hh:mm:ss+00`.
    created_at: String,
}

/// A small deterministic generator (Knuth's MMIX LCG, high bits): the same rows on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

fn customers(rng: &mut Lcg) -> Vec<Customer> {
    (1..=CUSTOMERS)
        .map(|id| {
            let first = FIRST_NAMES[rng.next(FIRST_NAMES.len() as u64) as usize];
            let last = LAST_NAMES[rng.next(LAST_NAMES.len() as u64) as usize];
            let country = COUNTRIES[rng.next(COUNTRIES.len() as u64) as usize].0;
            Customer {
                id,
                name: format!("{first} {last}"),
                country,
            }
        })
        .collect()
}

fn orders(rng: &mut Lcg) -> Vec<Order> {
    (1..=ORDERS)
        .map(|id| Order {
            id,
            customer_id: 1 + rng.next(CUSTOMERS as u64) as i64,
            cents: 100 + rng.next(99_900),
            created_at: timestamp_2024(rng.next(366 * 86_400)),
        })
        .collect()
}

/// `second` seconds after 2024-01-01 00:00:00 UTC (within the leap year 2024), as text.
fn timestamp_2024(second: u64) -> String {
    const MONTH_DAYS: [u64; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut day = second / 86_400;
    let mut month = 0;
    while month < 11 && day >= MONTH_DAYS[month] {
        day -= MONTH_DAYS[month];
        month += 1;
    }
    let s = second % 86_400;
    format!(
        "2024-{:02}-{:02} {:02}:{:02}:{:02}+00",
        month + 1,
        day + 1,
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One SQL text per shard (index = shard number) that creates the demo tables and fills them
/// with that shard's rows. Each text is a single psql `-c` command, hence one transaction: a
/// shard has all of it or none. Roughly 60 bytes per row, at most about 70 KB when every row
/// lands on one shard: well within the kernel's 128 KiB limit for one argument.
pub(super) fn shard_sql(topology: &DatabaseTopology) -> Result<Vec<String>, CatalogError> {
    let shard_count = topology.shards().map_or(1, |s| s.clusters().len());
    let mut rng = Lcg(0x5eed);
    let customers = customers(&mut rng);
    let orders = orders(&mut rng);

    let mut per_shard_customers: Vec<Vec<&Customer>> = (0..shard_count).map(|_| vec![]).collect();
    for c in &customers {
        let shard = topology.shard_for("customers", &ShardKeyValue::Int(c.id))?;
        if let Some(rows) = per_shard_customers.get_mut(shard) {
            rows.push(c);
        }
    }
    let mut per_shard_orders: Vec<Vec<&Order>> = (0..shard_count).map(|_| vec![]).collect();
    for o in &orders {
        let shard = topology.shard_for("orders", &ShardKeyValue::Int(o.customer_id))?;
        if let Some(rows) = per_shard_orders.get_mut(shard) {
            rows.push(o);
        }
    }

    let countries: Vec<String> = COUNTRIES
        .iter()
        .map(|(code, name)| format!("({}, {})", literal(code), literal(name)))
        .collect();
    Ok(per_shard_customers
        .iter()
        .zip(&per_shard_orders)
        .enumerate()
        .map(|(shard, (customers, orders))| {
            // The tables belong to `app`, as if the application had created them.
            let mut sql = String::from("SET client_encoding = 'UTF8';\nSET ROLE app;\n");
            // At most 32 shards: always a generator number.
            if let Some(generator) = Generator::new(shard) {
                sql.push_str(&id_function_sql(generator));
            }
            sql.push_str(SCHEMA);
            let _ = writeln!(
                sql,
                "INSERT INTO countries (code, name) VALUES {};",
                countries.join(", ")
            );
            if !customers.is_empty() {
                let rows: Vec<String> = customers
                    .iter()
                    .map(|c| format!("({}, {}, {})", c.id, literal(&c.name), literal(c.country)))
                    .collect();
                let _ = writeln!(
                    sql,
                    "INSERT INTO customers (id, name, country) VALUES {};",
                    rows.join(", ")
                );
            }
            if !orders.is_empty() {
                let rows: Vec<String> = orders
                    .iter()
                    .map(|o| {
                        format!(
                            "({}, {}, {}.{:02}, '{}')",
                            o.id,
                            o.customer_id,
                            o.cents / 100,
                            o.cents % 100,
                            o.created_at
                        )
                    })
                    .collect();
                let _ = writeln!(
                    sql,
                    "INSERT INTO orders (id, customer_id, amount, created_at) VALUES {};",
                    rows.join(", ")
                );
            }
            sql
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use pgfleet_catalog::Catalog;
    use pgfleet_config::Config;

    fn topology(shards: usize) -> DatabaseTopology {
        let mut text = String::new();
        let names: Vec<String> = (0..shards).map(|i| format!("\"s{i}\"")).collect();
        for i in 0..shards {
            text.push_str(&format!(
                "[clusters.s{i}]\nservers = [{{ host = \"127.0.0.1\", port = {}, role = \"primary\" }}]\n",
                5000 + i
            ));
        }
        text.push_str(&format!(
            "[databases.app]\nshards = [{}]\nreference_tables = [\"countries\"]\n\
             [databases.app.sharded_tables.customers]\ncolumn = \"id\"\ntype = \"bigint\"\n\
             [databases.app.sharded_tables.orders]\ncolumn = \"customer_id\"\ntype = \"bigint\"\n\
             [users.app]\npassword = \"app\"\n",
            names.join(", ")
        ));
        let config = Config::from_toml_str(&text).unwrap();
        Catalog::from_config(&config)
            .unwrap()
            .database("app")
            .unwrap()
            .clone()
    }

    #[test]
    fn every_row_goes_to_exactly_one_shard() {
        let sql = shard_sql(&topology(3)).unwrap();
        assert_eq!(sql.len(), 3);
        let count = |needle: &str| -> usize { sql.iter().map(|s| s.matches(needle).count()).sum() };
        assert_eq!(count("INSERT INTO countries"), 3);
        // Every shard gets some customers (200 keys over 3 shards).
        assert!(sql.iter().all(|s| s.contains("INSERT INTO customers")));
        // Customer rows start with `(id, '`, order rows with `(id, customer_id, amount`.
        let customer_rows: usize = sql
            .iter()
            .filter_map(|s| s.lines().find(|l| l.starts_with("INSERT INTO customers")))
            .map(|l| l.matches("), (").count() + 1)
            .sum();
        assert_eq!(customer_rows, CUSTOMERS as usize);
        let order_rows: usize = sql
            .iter()
            .filter_map(|s| s.lines().find(|l| l.starts_with("INSERT INTO orders")))
            .map(|l| l.matches("), (").count() + 1)
            .sum();
        assert_eq!(order_rows, ORDERS as usize);
    }

    #[test]
    fn every_shard_gets_pgfleet_id_with_its_shard_number() {
        let sql = shard_sql(&topology(3)).unwrap();
        for (i, text) in sql.iter().enumerate() {
            let install = text
                .find("CREATE OR REPLACE FUNCTION pgfleet.id()")
                .unwrap();
            assert!(install < text.find("CREATE TABLE orders").unwrap());
            assert!(text.contains(&format!("this shard is generator {i}.")));
        }
        assert!(sql[0].contains("id bigint DEFAULT pgfleet.id()"));
    }

    #[test]
    fn one_shard_text_fits_in_one_argument() {
        let sql = shard_sql(&topology(1)).unwrap();
        assert_eq!(sql.len(), 1);
        assert!(sql[0].len() < 100_000, "{} bytes", sql[0].len());
    }

    #[test]
    fn data_is_deterministic_and_quoted() {
        assert_eq!(
            shard_sql(&topology(2)).unwrap(),
            shard_sql(&topology(2)).unwrap()
        );
        let all = shard_sql(&topology(2)).unwrap().concat();
        assert!(all.contains("'Côte d''Ivoire'"), "quotes are doubled");
        assert!(all.contains("'日本'"));
    }

    #[test]
    fn timestamps_cover_the_leap_year() {
        assert_eq!(timestamp_2024(0), "2024-01-01 00:00:00+00");
        assert_eq!(
            timestamp_2024(59 * 86_400 + 3_661),
            "2024-02-29 01:01:01+00"
        );
        assert_eq!(timestamp_2024(366 * 86_400 - 1), "2024-12-31 23:59:59+00");
    }
}
