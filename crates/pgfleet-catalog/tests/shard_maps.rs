//! Shard maps and the catalog through the public API: property tests of range and list maps
//! against a naive model, wire parsing in both formats, and a whole config's topology.

use pgfleet_catalog::{
    parse_key, Catalog, CatalogError, Layout, ShardKeyType, ShardKeyValue, ShardMap, ShardRange,
    TableLocation, ValueFormat,
};
use pgfleet_config::Config;
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

/// Ranges from sorted cut points: consecutive cuts bound a range; `open_start` / `open_end` add
/// the unbounded ends; ranges whose index is in `gaps` are left out (the map allows gaps).
fn ranges_from_cuts(
    cuts: &[i64],
    shards: &[usize],
    open_start: bool,
    open_end: bool,
    gaps: &[usize],
) -> Vec<ShardRange> {
    let mut bounds: Vec<(Option<i64>, Option<i64>)> = Vec::new();
    if open_start {
        bounds.push((None, cuts.first().copied()));
    }
    bounds.extend(cuts.windows(2).map(|w| (Some(w[0]), Some(w[1]))));
    if open_end {
        bounds.push((cuts.last().copied(), None));
    }
    bounds
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !gaps.contains(i))
        .map(|(i, (from, to))| ShardRange {
            shard: shards[i % shards.len()],
            from: from.map(ShardKeyValue::Int),
            to: to.map(ShardKeyValue::Int),
        })
        .collect()
}

/// The obvious model: scan every range.
fn naive_range(ranges: &[ShardRange], v: &ShardKeyValue) -> Option<usize> {
    ranges
        .iter()
        .find(|r| r.from.as_ref().is_none_or(|f| f <= v) && r.to.as_ref().is_none_or(|t| v < t))
        .map(|r| r.shard)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn range_map_agrees_with_a_scan(
        cuts in btree_set(-1000i64..1000, 1..8),
        shards in vec(0usize..4, 1..10),
        open_start in any::<bool>(),
        open_end in any::<bool>(),
        gaps in vec(0usize..10, 0..3),
        probes in vec(-1100i64..1100, 1..64),
        shuffle in any::<u64>(),
    ) {
        let cuts: Vec<i64> = cuts.into_iter().collect();
        let mut ranges = ranges_from_cuts(&cuts, &shards, open_start, open_end, &gaps);
        prop_assume!(!ranges.is_empty());
        // Input order must not matter.
        let turn = (shuffle as usize) % ranges.len();
        ranges.rotate_left(turn);
        let map = ShardMap::range("t.k", ShardKeyType::BigInt, 4, ranges.clone()).unwrap();
        for p in probes.into_iter().chain(cuts.iter().copied()) {
            let v = ShardKeyValue::Int(p);
            match (map.shard_for(&v), naive_range(&ranges, &v)) {
                (Ok(got), Some(want)) => prop_assert_eq!(got, want, "value {}", p),
                (Err(CatalogError::NoShard { .. }), None) => {}
                (got, want) => prop_assert!(false, "value {p}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn overlapping_ranges_are_refused(a in -100i64..100, b in -100i64..100, len_a in 1i64..50, len_b in 1i64..50) {
        let range = |shard, from: i64, len: i64| ShardRange {
            shard,
            from: Some(ShardKeyValue::Int(from)),
            to: Some(ShardKeyValue::Int(from + len)),
        };
        let overlap = a < b + len_b && b < a + len_a;
        let built = ShardMap::range("t.k", ShardKeyType::Integer, 2, vec![range(0, a, len_a), range(1, b, len_b)]);
        prop_assert_eq!(built.is_err(), overlap);
    }

    #[test]
    fn text_ranges_compare_bytewise(cuts in btree_set("[a-zA-Zé0-9]{0,4}", 2..6), probes in vec("[a-zA-Zé0-9]{0,5}", 1..32)) {
        let cuts: Vec<String> = cuts.into_iter().collect();
        let ranges: Vec<ShardRange> = cuts
            .windows(2)
            .enumerate()
            .map(|(i, w)| ShardRange {
                shard: i % 3,
                from: Some(ShardKeyValue::Text(w[0].clone())),
                to: Some(ShardKeyValue::Text(w[1].clone())),
            })
            .collect();
        let map = ShardMap::range("t.k", ShardKeyType::Text, 3, ranges.clone()).unwrap();
        for p in probes {
            let v = ShardKeyValue::Text(p.clone());
            let want = cuts.windows(2).position(|w| w[0].as_bytes() <= p.as_bytes() && p.as_bytes() < w[1].as_bytes());
            prop_assert_eq!(map.shard_for(&v).ok(), want.map(|i| i % 3), "value {:?}", p);
        }
    }

    #[test]
    fn list_map_agrees_with_a_lookup(
        listed in btree_map(-50i64..50, 0usize..3, 0..20),
        default_shard in proptest::option::of(0usize..3),
        probes in vec(-60i64..60, 1..64),
    ) {
        let mut lists: Vec<(usize, Vec<ShardKeyValue>)> = (0..3).map(|s| (s, Vec::new())).collect();
        for (v, s) in &listed {
            lists[*s].1.push(ShardKeyValue::Int(*v));
        }
        let map = ShardMap::list("t.k", ShardKeyType::SmallInt, 3, &lists, default_shard).unwrap();
        for p in probes {
            let want = listed.get(&p).copied().or(default_shard);
            prop_assert_eq!(map.shard_for(&ShardKeyValue::Int(p)).ok(), want, "value {}", p);
        }
        prop_assert_eq!(map.shard_for_null().ok(), default_shard);
    }

    #[test]
    fn hash_is_in_range_and_width_independent(v in any::<i16>(), n in 1usize..16) {
        let narrow = ShardMap::hash("t.k", ShardKeyType::SmallInt, n).unwrap();
        let wide = ShardMap::hash("t.k", ShardKeyType::BigInt, n).unwrap();
        let value = ShardKeyValue::Int(v.into());
        let shard = narrow.shard_for(&value).unwrap();
        prop_assert!(shard < n);
        prop_assert_eq!(wide.shard_for(&value).unwrap(), shard);
        prop_assert_eq!(
            wide.shard_for_wire(ValueFormat::Binary, &v.to_be_bytes()).unwrap(),
            shard,
            "a binary int2 bound to an int8 key"
        );
    }

    #[test]
    fn text_and_binary_forms_agree(v in any::<i64>(), days in -2_451_545i32..2_145_031_949, micros in -211_813_488_000_000_000i64..9_223_371_331_200_000_000) {
        let both = |t: ShardKeyType, text: String, binary: &[u8]| {
            let a = parse_key(t, ValueFormat::Text, text.as_bytes());
            let b = parse_key(t, ValueFormat::Binary, binary);
            (a, b)
        };
        let (a, b) = both(ShardKeyType::BigInt, v.to_string(), &v.to_be_bytes());
        prop_assert_eq!(a.unwrap(), b.unwrap());
        // Display is PostgreSQL's text output; reading it back gives the same value.
        let date = ShardKeyValue::Date(days);
        let (a, b) = both(ShardKeyType::Date, date.to_string(), &days.to_be_bytes());
        prop_assert_eq!(a.unwrap(), b.unwrap());
        let ts = ShardKeyValue::TimestampTz(micros);
        let (a, b) = both(ShardKeyType::TimestampTz, ts.to_string(), &micros.to_be_bytes());
        prop_assert_eq!(a.unwrap(), b.unwrap());
        let ts = ShardKeyValue::Timestamp(micros);
        let (a, b) = both(ShardKeyType::Timestamp, ts.to_string(), &micros.to_be_bytes());
        prop_assert_eq!(a.unwrap(), b.unwrap());
    }
}

#[test]
fn range_errors_say_where_the_value_fell() {
    let int = |v| Some(ShardKeyValue::Int(v));
    let map = ShardMap::range(
        "events.id",
        ShardKeyType::BigInt,
        2,
        vec![
            ShardRange {
                shard: 0,
                from: int(0),
                to: int(100),
            },
            ShardRange {
                shard: 1,
                from: int(200),
                to: int(300),
            },
        ],
    )
    .unwrap();
    let message = |v: i64| {
        map.shard_for(&ShardKeyValue::Int(v))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        message(-1),
        "events.id: no shard for value `-1`: below the first range [0, 100)"
    );
    assert_eq!(
        message(150),
        "events.id: no shard for value `150`: between ranges [0, 100) and [200, 300)"
    );
    assert_eq!(
        message(300),
        "events.id: no shard for value `300`: at or above the end of the last range [200, 300)"
    );
    assert_eq!(
        map.shard_for(&ShardKeyValue::Int(100))
            .unwrap_err()
            .to_string(),
        message(100)
    );
    assert_eq!(map.shard_for(&ShardKeyValue::Int(99)).unwrap(), 0);
    assert_eq!(map.shard_for(&ShardKeyValue::Int(200)).unwrap(), 1);
    assert_eq!(
        map.shard_for_null().unwrap_err().to_string(),
        "events.id: no shard for value `NULL`: range sharding has no shard for NULL"
    );
    assert_eq!(
        map.shard_for(&ShardKeyValue::Text("x".into())).unwrap_err(),
        CatalogError::WrongKeyType {
            key: "events.id".into(),
            expected: ShardKeyType::BigInt,
            found: "text"
        }
    );
    assert_eq!(
        map.shard_for_wire(ValueFormat::Text, b"12a")
            .unwrap_err()
            .to_string(),
        "invalid bigint value `12a`: not an integer"
    );
}

#[test]
fn bad_maps_are_refused() {
    let v = |i| ShardKeyValue::Int(i);
    assert!(ShardMap::hash("t.k", ShardKeyType::BigInt, 0).is_err());
    assert!(ShardMap::range("t.k", ShardKeyType::Uuid, 2, vec![]).is_err());
    let empty = ShardRange {
        shard: 0,
        from: Some(v(5)),
        to: Some(v(5)),
    };
    assert!(ShardMap::range("t.k", ShardKeyType::BigInt, 2, vec![empty]).is_err());
    let too_far = ShardRange {
        shard: 2,
        from: None,
        to: None,
    };
    assert!(ShardMap::range("t.k", ShardKeyType::BigInt, 2, vec![too_far]).is_err());
    let wrong_type = ShardRange {
        shard: 0,
        from: Some(ShardKeyValue::Date(0)),
        to: None,
    };
    assert!(ShardMap::range("t.k", ShardKeyType::BigInt, 2, vec![wrong_type]).is_err());
    let twice = [(0, vec![v(1)]), (1, vec![v(1)])];
    assert_eq!(
        ShardMap::list("t.k", ShardKeyType::BigInt, 2, &twice, None)
            .unwrap_err()
            .to_string(),
        "invalid shard map for t.k: value 1 is listed for shards 0 and 1"
    );
    assert!(ShardMap::list("t.k", ShardKeyType::BigInt, 2, &[], Some(2)).is_err());
    let small = ShardMap::hash("t.k", ShardKeyType::SmallInt, 2).unwrap();
    assert_eq!(
        small.shard_for(&v(40_000)).unwrap_err().to_string(),
        "invalid smallint value `40000`: out of range for type smallint"
    );
}

const CONFIG: &str = r#"
[clusters.s0]
servers = [{ host = "10.0.0.1" }]
[clusters.s1]
servers = [{ host = "10.0.0.2" }]
[clusters.s2]
servers = [{ host = "10.0.0.3" }]
[clusters.audit]
servers = [{ host = "10.0.0.9" }]
[clusters.main]
servers = [{ host = "10.0.0.10" }]

[databases.shop]
shards = ["s0", "s1", "s2"]
default_shard = 2
server_database = "shop_prod"
reference_tables = ["countries"]
[databases.shop.sharded_tables.orders]
column = "customer_id"
type = "bigint"
[databases.shop.sharded_tables.accounts]
column = "region"
type = "text"
method = "list"
lists = [{ shard = 0, values = ["eu"] }, { shard = 1, values = ["us"] }]
[databases.shop.placement]
audit = { cluster = "audit", tables = ["audit_*"] }

[databases.app]
cluster = "main"
[databases.app.placement.logs]
cluster = "audit"
tables = ["*_log"]
"#;

#[test]
fn catalog_from_config() {
    let config = Config::from_toml_str(CONFIG).unwrap();
    let catalog = Catalog::from_config(&config).unwrap();
    let shop = catalog.database("shop").unwrap();
    assert_eq!(shop.server_database(), "shop_prod");
    let shards = shop.shards().unwrap();
    assert_eq!(shards.clusters(), ["s0", "s1", "s2"]);
    assert_eq!(shop.shard_cluster(1), Some("s1"));
    assert_eq!(shop.shard_cluster(3), None);

    let TableLocation::Sharded(orders) = shop.table_location("orders") else {
        panic!("orders is sharded");
    };
    assert_eq!((orders.name(), orders.column()), ("orders", "customer_id"));
    assert_eq!(orders.map().key(), "orders.customer_id");
    assert_eq!(shop.table_location("countries"), TableLocation::Reference);
    assert_eq!(
        shop.table_location("products"),
        TableLocation::DefaultShard(2)
    );
    assert_eq!(
        shop.table_location("Orders"),
        TableLocation::DefaultShard(2),
        "exact names"
    );
    let TableLocation::Placed(group) = shop.table_location("audit_log") else {
        panic!("audit_log is placed");
    };
    assert_eq!((group.name(), group.cluster()), ("audit", "audit"));

    // FIELD-NOTES: bigint 42 → remainder 0 of 7, 2 of 4; here modulus 3.
    let expected = pgfleet_catalog::hash::hash_partition(Some(&ShardKeyValue::Int(42)), 3) as usize;
    assert_eq!(
        shop.shard_for("orders", &ShardKeyValue::Int(42)).unwrap(),
        expected
    );
    assert_eq!(
        shop.shard_for_wire("orders", ValueFormat::Text, b"42")
            .unwrap(),
        expected
    );
    assert_eq!(
        shop.shard_for_wire("orders", ValueFormat::Binary, &42i64.to_be_bytes())
            .unwrap(),
        expected
    );
    assert_eq!(
        shop.shard_for("accounts", &ShardKeyValue::Text("us".into()))
            .unwrap(),
        1
    );
    assert_eq!(
        shop.shard_for("accounts", &ShardKeyValue::Text("br".into())).unwrap_err().to_string(),
        "accounts.region: no shard for value `br`: no list names it and the table has no default_shard"
    );
    let long = "x".repeat(10_000);
    let message = shop
        .shard_for("accounts", &ShardKeyValue::Text(long))
        .unwrap_err()
        .to_string();
    assert!(message.len() < 200 && message.contains("x…`"), "{message}");
    assert_eq!(
        shop.shard_for("countries", &ShardKeyValue::Int(1))
            .unwrap_err()
            .to_string(),
        "table `countries` is not a sharded table of database `shop`"
    );

    let app = catalog.database("app").unwrap();
    assert_eq!(
        app.layout(),
        &Layout::Single {
            cluster: "main".into()
        }
    );
    assert_eq!(app.table_location("users"), TableLocation::Home("main"));
    assert!(
        matches!(app.table_location("access_log"), TableLocation::Placed(g) if g.cluster() == "audit")
    );
    assert!(app.shard_for("users", &ShardKeyValue::Int(1)).is_err());
    assert_eq!(
        catalog.database("nope").unwrap_err().to_string(),
        "database `nope` is not in the config"
    );
    assert_eq!(catalog.databases().count(), 2);
}

#[test]
fn shipped_examples_build_catalogs() {
    for name in ["full.toml", "sharded.toml", "minimal.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name);
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        Catalog::from_config(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
