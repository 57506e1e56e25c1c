//! The query shapes of each category (see `PER_CATEGORY` in `queries.rs`).

use rand::seq::SliceRandom;
use rand::Rng;

use super::{
    qual, written, Gen, Select, BY_CUSTOMER, COUNTRIES, CUSTOMERS, EVENTS, ORDERS, SHARDED,
};
use crate::sql::{Query, Sql, Val};

impl Gen<'_> {
    pub(super) fn point(&mut self) -> Query {
        let spec = self.pick(&SHARDED);
        let (from, a) = self.from(spec);
        let k = self.key_value(spec);
        let mut s = Select::new(&from);
        s.single_shard = true;
        let keq = self.key_eq(spec, a, k);
        s.and(keq);
        if self.chance(0.5) {
            let c = self.conditions(spec, a, false);
            s.and(c);
        }
        match self.below(4) {
            0 => {
                for _ in 0..self.rng.gen_range(1..=4) {
                    let (i, bag) = self.aggregate_item(spec, a);
                    s.item(i, bag);
                }
            }
            1 => {
                let g = qual(a, self.pick(spec.group));
                s.item(g.clone(), None);
                let (i, bag) = self.aggregate_item(spec, a);
                s.item(i, bag);
                s.group = Some(g.clone());
                if self.chance(0.5) {
                    s.order = Some(format!("1{}", self.direction()));
                }
            }
            _ => {
                s.items = self.columns(spec, a);
                if self.chance(0.6) {
                    let tail = Self::tail(spec, a);
                    s.order = Some(self.total_order(spec, a, 2, &tail));
                    if self.chance(0.6) {
                        s.limit = Some(self.limit());
                    }
                }
            }
        }
        s.build()
    }

    pub(super) fn reference(&mut self) -> Query {
        let spec = &COUNTRIES;
        let (from, a) = self.from(spec);
        let mut s = Select::new(&from);
        s.single_shard = true;
        if self.chance(0.6) {
            let c = self.conditions(spec, a, true);
            s.and(c);
        }
        match self.below(4) {
            0 => {
                for _ in 0..self.rng.gen_range(1..=3) {
                    let (i, bag) = self.aggregate_item(spec, a);
                    s.item(i, bag);
                }
            }
            1 => {
                let g = format!("length({})", qual(a, "name"));
                s.item(g.clone(), None);
                s.item("count(*)".into(), None);
                s.item(format!("string_agg({}, '|')", qual(a, "code")), Some("|"));
                s.group = Some(g);
                s.order = Some("1 DESC".into());
            }
            _ => {
                s.items = self.columns(spec, a);
                if self.chance(0.7) {
                    let tail = Self::tail(spec, a);
                    s.order = Some(self.total_order(spec, a, 1, &tail));
                    if self.chance(0.5) {
                        s.limit = Some(self.limit());
                    }
                }
            }
        }
        s.build()
    }

    pub(super) fn filter(&mut self) -> Query {
        let spec = self.pick(&SHARDED);
        let (from, a) = self.from(spec);
        let mut s = Select::new(&from);
        s.items = self.columns(spec, a);
        let c = self.conditions(spec, a, false);
        s.and(c);
        if self.chance(0.4) {
            let tail = Self::tail(spec, a);
            s.order = Some(self.total_order(spec, a, 1, &tail));
        }
        s.build()
    }

    pub(super) fn in_list(&mut self) -> Query {
        let spec = self.pick(&SHARDED);
        let (from, a) = self.from(spec);
        let mut s = Select::new(&from);
        let inl = self.key_in(spec, a);
        s.and(inl);
        if self.chance(0.3) {
            let c = self.conditions(spec, a, false);
            s.and(c);
        }
        if self.chance(0.25) {
            for _ in 0..self.rng.gen_range(1..=3) {
                let (i, bag) = self.aggregate_item(spec, a);
                s.item(i, bag);
            }
        } else {
            s.items = self.columns(spec, a);
            if self.chance(0.6) {
                let tail = Self::tail(spec, a);
                s.order = Some(self.total_order(spec, a, 2, &tail));
                if self.chance(0.5) {
                    s.limit = Some(self.limit());
                }
            }
        }
        s.build()
    }

    pub(super) fn order_limit(&mut self) -> Query {
        let spec = self.pick(&SHARDED);
        let (from, a) = self.from(spec);
        let mut s = Select::new(&from);
        s.items = self.columns(spec, a);
        if self.chance(0.4) {
            let c = self.conditions(spec, a, false);
            s.and(c);
        }
        let tail = Self::tail(spec, a);
        s.order = Some(self.total_order(spec, a, 3, &tail));
        s.limit = Some(self.limit());
        s.build()
    }

    pub(super) fn aggregate(&mut self) -> Query {
        let spec = self.pick(&SHARDED);
        let (from, a) = self.from(spec);
        let mut s = Select::new(&from);
        for _ in 0..self.rng.gen_range(1..=5) {
            let (i, bag) = self.aggregate_item(spec, a);
            s.item(i, bag);
        }
        if self.chance(0.5) {
            let c = self.conditions(spec, a, false);
            s.and(c);
        }
        let mut q = s.build();
        q.ordered = true; // one row
        q
    }

    pub(super) fn group_by(&mut self) -> Query {
        let spec = self.pick(&SHARDED);
        let (from, a) = self.from(spec);
        let mut s = Select::new(&from);
        let mut groups: Vec<&str> = spec.group.to_vec();
        groups.shuffle(self.rng);
        let ng = if self.chance(0.3) { 2 } else { 1 }.min(groups.len());
        let groups: Vec<String> = groups[..ng].iter().map(|g| qual(a, g)).collect();
        for g in &groups {
            s.item(g.clone(), None);
        }
        for _ in 0..self.rng.gen_range(1..=3) {
            let (i, bag) = self.aggregate_item(spec, a);
            s.item(i, bag);
        }
        s.group = Some(if self.chance(0.3) {
            (1..=ng)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            groups.join(", ")
        });
        if self.chance(0.3) {
            let c = self.conditions(spec, a, false);
            s.and(c);
        }
        if self.chance(0.4) {
            s.having = Some(self.having(spec, a));
        }
        if self.chance(0.7) {
            // The group keys are unique per row: ordering by all of them is total.
            let mut keys = Vec::new();
            // An aggregate first (not one whose element order is free: it would decide the
            // order of groups).
            if self.chance(0.3) && !s.bags.iter().any(|(i, _)| *i == ng) {
                keys.push(format!("{}{}", ng + 1, self.direction()));
            }
            for (i, g) in groups.iter().enumerate() {
                let k = if self.chance(0.5) {
                    (i + 1).to_string()
                } else {
                    g.clone()
                };
                keys.push(format!("{k}{}", self.direction()));
            }
            s.order = Some(keys.join(", "));
            if self.chance(0.4) {
                s.limit = Some(self.limit());
            }
        }
        s.build()
    }

    pub(super) fn distinct(&mut self) -> Query {
        let spec = self.pick(&SHARDED);
        let (from, a) = self.from(spec);
        let mut s = Select::new(&from);
        s.distinct = true;
        let mut cols: Vec<&str> = spec.group.to_vec();
        cols.shuffle(self.rng);
        let n = self.rng.gen_range(1..=2.min(cols.len()));
        let cols: Vec<String> = cols[..n].iter().map(|c| qual(a, c)).collect();
        s.items = cols.clone();
        if self.chance(0.4) {
            let c = self.conditions(spec, a, false);
            s.and(c);
        }
        if self.chance(0.6) {
            // Every selected column: a total order of distinct rows.
            let keys: Vec<String> = cols
                .iter()
                .map(|c| format!("{c}{}", self.direction()))
                .collect();
            s.order = Some(keys.join(", "));
            if self.chance(0.5) {
                s.limit = Some(self.limit());
            }
        }
        s.build()
    }

    /// Picks two co-located tables and the join: customers–orders, customers–events or
    /// orders–events, on the shard keys.
    pub(super) fn colocated_join(&mut self) -> Query {
        let (l, r) = match self.below(3) {
            0 => (&CUSTOMERS, &ORDERS),
            1 => (&CUSTOMERS, &EVENTS),
            _ => (&ORDERS, &EVENTS),
        };
        let (lk, rk) = (
            qual(l.alias, l.key.expect("sharded")),
            qual(r.alias, r.key.expect("sharded")),
        );
        let left_join = l.table == "customers" && self.chance(0.3);
        let comma = !left_join && self.chance(0.3);
        let from = match (left_join, comma) {
            (true, _) => format!(
                "{} {} LEFT JOIN {} {} ON {rk} = {lk}",
                l.table, l.alias, r.table, r.alias
            ),
            (false, true) => format!("{} {}, {} {}", l.table, l.alias, r.table, r.alias),
            _ => format!(
                "{} {} JOIN {} {} ON {lk} = {rk}",
                l.table, l.alias, r.table, r.alias
            ),
        };
        let mut s = Select::new(&from);
        if comma {
            s.and(Sql::new(&format!("{rk} = {lk}")));
        }
        let point = self.chance(0.3);
        if point {
            let k = self.key_value(l);
            let on = if self.chance(0.5) { l } else { r };
            let keq = self.key_eq(on, on.alias, k);
            s.and(keq);
            s.single_shard = true;
        } else if self.chance(0.3) {
            let inl = self.key_in(l, l.alias);
            s.and(inl);
        }
        // Conditions on the right side of a LEFT JOIN would make it an inner join: only left.
        for spec in [l, r] {
            if self.chance(0.4) && !(left_join && spec.table == r.table) {
                let c = self.predicate(spec, spec.alias, false);
                s.and(c);
            }
        }
        // Unrestricted orders × events is large: aggregate it.
        let big = l.table == "orders" && !point;
        if big || self.chance(0.35) {
            let grouped = self.chance(0.5);
            if grouped {
                let g = qual(l.alias, self.pick(l.group));
                s.item(g.clone(), None);
                s.group = Some(g.clone());
                if self.chance(0.3) {
                    s.having = Some(self.having(r, r.alias));
                }
                s.order = Some(format!("{g}{}", self.direction()));
                if self.chance(0.3) {
                    s.limit = Some(self.limit());
                }
            }
            for _ in 0..self.rng.gen_range(1..=3) {
                let spec = if self.chance(0.5) { l } else { r };
                let (i, bag) = self.aggregate_item(spec, spec.alias);
                s.item(i, bag);
            }
            let mut q = s.build();
            // Without GROUP BY: one row.
            q.ordered |= !grouped;
            return q;
        }
        let mut items = self.columns(l, l.alias);
        items.extend(self.columns(r, r.alias));
        s.items = items;
        if self.chance(0.6) {
            // Left's unique key then right's: unique per joined row (NULLs of a LEFT JOIN
            // appear once per left row).
            let mut tail = Self::tail(l, l.alias);
            tail.extend(Self::tail(r, r.alias));
            let lead_spec = if self.chance(0.5) { l } else { r };
            s.order = Some(self.total_order(lead_spec, lead_spec.alias, 2, &tail));
            if self.chance(0.6) {
                s.limit = Some(self.limit());
            }
        }
        s.build()
    }

    pub(super) fn reference_join(&mut self) -> Query {
        let spec = self.pick(&BY_CUSTOMER);
        let k = &COUNTRIES;
        let from = match (spec.table, self.below(2)) {
            ("customers", 0) => "customers c JOIN countries k ON k.code = c.country".to_owned(),
            ("customers", _) => {
                "customers c LEFT JOIN countries k ON c.country = k.code".to_owned()
            }
            (t, 0) => format!(
                "{t} {a} JOIN customers c ON c.id = {a}.customer_id JOIN countries k ON k.code = c.country",
                a = spec.alias
            ),
            (t, _) => format!(
                "{t} {a} JOIN customers c ON c.id = {a}.customer_id LEFT JOIN countries k ON k.code = c.country",
                a = spec.alias
            ),
        };
        let mut s = Select::new(&from);
        if self.chance(0.25) {
            let v = self.key_value(&CUSTOMERS);
            let keq = self.key_eq(&CUSTOMERS, "c", v);
            s.and(keq);
            s.single_shard = true;
        }
        if self.chance(0.5) {
            let c = self.predicate(spec, spec.alias, false);
            s.and(c);
        }
        if self.chance(0.3) {
            let c = self.predicate(k, "k", false);
            s.and(c);
        }
        if self.chance(0.2) {
            s.and(Sql::new(
                "c.country IN (SELECT code FROM countries WHERE name >= 'M')",
            ));
        }
        if self.chance(0.4) {
            s.item("k.name".into(), None);
            s.group = Some("k.name".into());
            for _ in 0..self.rng.gen_range(1..=3) {
                let (i, bag) = self.aggregate_item(spec, spec.alias);
                s.item(i, bag);
            }
            if self.chance(0.7) {
                s.order = Some(format!("k.name{}", self.direction()));
            }
            return s.build();
        }
        let mut items = self.columns(spec, spec.alias);
        items.push(qual("k", self.pick(&["name", "code"])));
        s.items = items;
        if self.chance(0.6) {
            let tail = Self::tail(spec, spec.alias);
            s.order = Some(self.total_order(spec, spec.alias, 1, &tail));
            if self.chance(0.5) {
                s.limit = Some(self.limit());
            }
        }
        s.build()
    }

    pub(super) fn non_colocated(&mut self) -> Query {
        let k = self.key_value(&ORDERS);
        let mut s = Sql::default();
        let (ordered, single) = match self.below(7) {
            0 => {
                s.push("SELECT o.customer_id, o.id, p.name, p.price FROM orders o JOIN products p ON p.id = o.product_id ORDER BY o.customer_id, o.id LIMIT 20");
                (true, false)
            }
            1 => {
                s.push(
                    "SELECT count(*), sum(o.amount) FROM customers c JOIN orders o ON o.id = c.id",
                );
                (true, false)
            }
            2 => {
                s.push("SELECT * FROM (SELECT customer_id, sum(amount) AS s FROM orders GROUP BY customer_id) t WHERE s > 1000 ORDER BY customer_id");
                (true, false)
            }
            3 => {
                s.push("SELECT c.id, c.name FROM customers c WHERE c.id IN (SELECT customer_id FROM orders WHERE amount > 4000) ORDER BY c.id");
                (true, false)
            }
            4 => {
                s.push(
                    "SELECT count(*) FROM customers c CROSS JOIN products p WHERE p.price > 900",
                );
                (true, false)
            }
            5 => {
                s.push("WITH big AS (SELECT customer_id FROM orders WHERE qty > 15) SELECT count(*) FROM big JOIN customers c ON c.id = big.customer_id");
                (true, false)
            }
            _ => {
                // One customer's orders, but products of every shard.
                s.push("SELECT o.id, p.name FROM orders o JOIN products p ON p.id = o.product_id WHERE o.customer_id = ")
                    .val(Val::I8(k))
                    .push(" ORDER BY o.id");
                (true, false)
            }
        };
        written(s, ordered, single)
    }

    pub(super) fn unsupported(&mut self) -> Query {
        // Half of them restricted to one customer: one shard answers those today.
        let point = self.chance(0.5);
        let k = self.key_value(&ORDERS);
        let mut w = Sql::default();
        if point {
            w.push(" WHERE customer_id = ").val(Val::I8(k));
        }
        let mut s = Sql::default();
        let ordered = match self.below(9) {
            0 => {
                s.push("SELECT count(DISTINCT status), count(DISTINCT qty) FROM orders")
                    .append(&w);
                true
            }
            1 => {
                s.push("SELECT customer_id, id, row_number() OVER (PARTITION BY customer_id ORDER BY id DESC) FROM orders")
                    .append(&w)
                    .push(" ORDER BY customer_id, id LIMIT 50");
                true
            }
            2 => {
                s.push("SELECT DISTINCT ON (customer_id) customer_id, id, amount FROM orders")
                    .append(&w)
                    .push(" ORDER BY customer_id, id DESC");
                true
            }
            3 => {
                s.push("SELECT customer_id, string_agg(kind, ',' ORDER BY kind) FROM events")
                    .append(&w)
                    .push(" GROUP BY customer_id ORDER BY customer_id");
                true
            }
            4 => {
                s.push("SELECT sum(qty) + 1, coalesce(max(amount), 0) FROM orders")
                    .append(&w);
                true
            }
            5 => {
                s.push("SELECT status FROM orders")
                    .append(&w)
                    .push(" UNION SELECT kind FROM events")
                    .append(&w);
                false
            }
            6 => {
                s.push("SELECT count(*) FILTER (WHERE flag), count(*) FILTER (WHERE NOT flag) FROM events")
                    .append(&w);
                true
            }
            7 => {
                s.push("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY qty) FROM orders")
                    .append(&w);
                true
            }
            _ => {
                s.push("SELECT customer_id, id, amount FROM orders")
                    .append(&w)
                    .push(" ORDER BY customer_id, id FOR UPDATE");
                true
            }
        };
        written(s, ordered, point)
    }
}
