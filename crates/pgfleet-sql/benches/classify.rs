//! Read/write classification cost: a cache hit of `Analyzer::classify` for a repeated query
//! (issue 3 target: under 2 µs) against the uncached parse.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pgfleet_sql::{classify_uncached, Analyzer};

const SHORT: &str = "SELECT * FROM users WHERE id = $1 AND tenant_id = 42";
const JOIN: &str = "/* pgfleet: consistency=bounded */ SELECT o.id, o.total, c.name, \
    sum(i.qty * i.price) AS amount FROM orders o JOIN customers c ON c.id = o.customer_id \
    JOIN order_items i ON i.order_id = o.id WHERE o.created_at > now() - interval '7 days' \
    AND c.region = $1 AND o.status IN ('paid', 'shipped') GROUP BY o.id, o.total, c.name \
    HAVING sum(i.qty) > 2 ORDER BY amount DESC LIMIT 50";

fn bench(c: &mut Criterion) {
    let analyzer = Analyzer::new(10_000);
    for (name, sql) in [("short", SHORT), ("join", JOIN)] {
        analyzer.classify(sql);
        c.bench_function(&format!("classify_cached_hit/{name}"), |b| {
            b.iter(|| analyzer.classify(black_box(sql)))
        });
        c.bench_function(&format!("classify_uncached/{name}"), |b| {
            b.iter(|| classify_uncached(black_box(sql)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
