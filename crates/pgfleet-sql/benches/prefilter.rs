//! The cost of the session-effect prefilter, which runs on every simple-protocol query before
//! anything else looks at its text (texts with fresh literals never hit the analyzer's cache).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pgfleet_sql::may_affect_session;

const TEXTS: &[(&str, &str)] = &[
    // pgbench -S -M simple
    (
        "select",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 4711;",
    ),
    // pgbench -N -M simple, its first update
    (
        "update",
        "UPDATE pgbench_accounts SET abalance = abalance + -2406 WHERE aid = 881044;",
    ),
    (
        "join",
        "/* app */ SELECT o.id, o.total, c.name, sum(i.qty * i.price) AS amount FROM orders o \
         JOIN customers c ON c.id = o.customer_id JOIN order_items i ON i.order_id = o.id \
         WHERE o.created_at > now() - interval '7 days' AND c.region = 'north' \
         GROUP BY o.id, o.total, c.name HAVING sum(i.qty) > 2 ORDER BY amount DESC LIMIT 50",
    ),
];

fn bench(c: &mut Criterion) {
    for (name, sql) in TEXTS {
        assert!(!may_affect_session(sql), "{name}");
        c.bench_function(&format!("may_affect_session/{name}"), |b| {
            b.iter(|| may_affect_session(black_box(sql)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
