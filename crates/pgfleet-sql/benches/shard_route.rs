//! Shard routing cost: a cached plan routed with a text bind parameter (the data path: one text
//! hash, a lock, key parsing and hashing) against planning from scratch (parse + analysis).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pgfleet_catalog::Catalog;
use pgfleet_config::Config;
use pgfleet_sql::shard::{plan, BindParams, Param, ShardRouter, ShardSettings};

const CONFIG: &str = r#"
[clusters.shard0]
servers = [{ host = "127.0.0.1", port = 5440 }]
[clusters.shard1]
servers = [{ host = "127.0.0.1", port = 5441 }]
[databases.app]
shards = ["shard0", "shard1"]
reference_tables = ["countries"]
[databases.app.sharded_tables.customers]
column = "id"
type = "bigint"
[databases.app.sharded_tables.orders]
column = "customer_id"
type = "bigint"
"#;

const POINT: &str = "SELECT * FROM orders WHERE customer_id = $1 AND status = $2";
const JOIN: &str = "SELECT o.id, c.name, k.name FROM orders o JOIN customers c ON c.id = o.customer_id \
    JOIN countries k ON k.code = c.country WHERE c.id = ANY($1) AND o.created_at > now() - interval '7 days' \
    ORDER BY o.created_at DESC LIMIT 50";

fn bench(c: &mut Criterion) {
    let config = Config::from_toml_str(CONFIG).expect("bench config");
    let catalog = Catalog::from_config(&config).expect("bench catalog");
    let db = catalog.database("app").expect("database app").clone();
    let router = ShardRouter::new(db.clone(), 1000);
    let settings = ShardSettings::default();
    for (name, sql, param) in [("point", POINT, "42"), ("join", JOIN, "{1,2,3}")] {
        let params = [Param::text(param), Param::text("paid")];
        c.bench_function(&format!("shard_route_cached/{name}"), |b| {
            b.iter(|| router.route(black_box(sql), BindParams::Bound(&params), &settings))
        });
        c.bench_function(&format!("shard_plan_uncached/{name}"), |b| {
            b.iter(|| plan(black_box(sql), &db))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
