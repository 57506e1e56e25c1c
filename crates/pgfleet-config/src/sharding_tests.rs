//! Sharding and placement keys: a full sharded database, then bad layouts (table-driven, exact
//! problem paths) and the wording of the problems that matter most.

use crate::{
    Config, ConfigErrors, ShardKeyType, ShardKeyValue, ShardList, ShardMethod, ShardRange,
    TablePattern,
};

const CLUSTERS: &str = r#"
[clusters.shard0]
servers = [{ host = "10.0.0.1" }]
[clusters.shard1]
servers = [{ host = "10.0.0.2" }]
[clusters.shard2]
servers = [{ host = "10.0.0.3" }]
[clusters.auditdb]
servers = [{ host = "10.0.0.9" }]
[clusters.main]
servers = [{ host = "10.0.0.10" }]
"#;

const SHOP: &str = r#"
[databases.shop]
shards = ["shard0", "shard1", "shard2"]
default_shard = 1
reference_tables = ["countries", "currencies"]
[databases.shop.sharded_tables.orders]
column = "customer_id"
type = "bigint"
[databases.shop.sharded_tables.events]
column = "day"
type = "date"
method = "range"
ranges = [
    { shard = 2, from = "2025-01-01" },
    { shard = 0, to = "2024-01-01" },
    { shard = 1, from = "2024-01-01", to = 2025-01-01 },
]
[databases.shop.sharded_tables.accounts]
column = "region"
type = "text"
method = "list"
lists = [{ shard = 0, values = ["eu", "uk"] }, { shard = 1, values = ["us"] }]
default_shard = 2
[databases.shop.placement]
audit = { cluster = "auditdb", tables = ["audit_*", "login_history"] }
"#;

fn load(text: &str) -> Config {
    match Config::from_toml_str(text) {
        Ok(c) => c,
        Err(e) => panic!("unexpected problems:\n{e}"),
    }
}

fn errors(text: &str) -> ConfigErrors {
    match Config::from_toml_str(text) {
        Ok(c) => panic!("expected problems, got {c:?}"),
        Err(e) => e,
    }
}

fn date(text: &str) -> ShardKeyValue {
    match ShardKeyValue::parse_text(ShardKeyType::Date, text) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn sharded_database_loads() {
    let c = load(&format!("{CLUSTERS}{SHOP}"));
    let shop = &c.databases["shop"];
    assert_eq!(shop.cluster, "", "a sharded database has no single cluster");
    let s = shop.sharding.as_ref().expect("sharded");
    assert_eq!(s.shards, ["shard0", "shard1", "shard2"]);
    assert_eq!(s.default_shard, 1);
    assert_eq!(s.reference_tables, ["countries", "currencies"]);
    let orders = &s.sharded_tables["orders"];
    assert_eq!(
        (orders.column.as_str(), orders.key_type, &orders.method),
        ("customer_id", ShardKeyType::BigInt, &ShardMethod::Hash)
    );
    let events = &s.sharded_tables["events"];
    assert_eq!(
        events.method,
        ShardMethod::Range(vec![
            ShardRange {
                shard: 0,
                from: None,
                to: Some(date("2024-01-01"))
            },
            ShardRange {
                shard: 1,
                from: Some(date("2024-01-01")),
                to: Some(date("2025-01-01"))
            },
            ShardRange {
                shard: 2,
                from: Some(date("2025-01-01")),
                to: None
            },
        ]),
        "sorted by from, open start first; a TOML date works as a bound"
    );
    let ShardMethod::List(lists) = &s.sharded_tables["accounts"].method else {
        panic!("list expected");
    };
    assert_eq!(lists.default_shard, Some(2));
    assert_eq!(
        lists.lists[0],
        ShardList {
            shard: 0,
            values: vec![
                ShardKeyValue::Text("eu".into()),
                ShardKeyValue::Text("uk".into())
            ]
        }
    );
    let audit = &shop.placement["audit"];
    assert_eq!(audit.cluster, "auditdb");
    assert_eq!(
        audit.tables,
        [
            TablePattern::new("audit_*"),
            TablePattern::new("login_history")
        ]
    );
}

#[test]
fn unsharded_databases_are_unchanged_and_may_place_tables() {
    let c = load(&format!(
        "{CLUSTERS}[databases.app]\ncluster = \"main\"\n[databases.app.placement.audit]\ncluster = \"auditdb\"\ntables = [\"audit_*\"]\n[databases.plain]\ncluster = \"main\"\n"
    ));
    assert_eq!(c.databases["app"].cluster, "main");
    assert!(c.databases["app"].sharding.is_none());
    assert_eq!(c.databases["app"].placement["audit"].cluster, "auditdb");
    assert!(c.databases["plain"].placement.is_empty());
}

#[test]
fn integer_bounds_may_be_toml_integers() {
    let c = load(&format!(
        "{CLUSTERS}[databases.d]\nshards = [\"shard0\", \"shard1\"]\n[databases.d.sharded_tables.t]\ncolumn = \"id\"\ntype = \"smallint\"\nmethod = \"range\"\nranges = [{{ shard = 0, to = 100 }}, {{ shard = 1, from = \"100\" }}]\n"
    ));
    let t = &c.databases["d"]
        .sharding
        .as_ref()
        .expect("sharded")
        .sharded_tables["t"];
    assert_eq!(
        t.method,
        ShardMethod::Range(vec![
            ShardRange {
                shard: 0,
                from: None,
                to: Some(ShardKeyValue::Int(100))
            },
            ShardRange {
                shard: 1,
                from: Some(ShardKeyValue::Int(100)),
                to: None
            },
        ])
    );
}

#[test]
fn bad_layouts_report_every_problem_with_its_path() {
    let db = "[databases.d]\nshards = [\"shard0\", \"shard1\"]\n";
    let t = "[databases.d.sharded_tables.t]\ncolumn = \"k\"\n";
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("cluster and shards", "[databases.d]\ncluster = \"main\"\nshards = [\"shard0\"]".into(), vec!["databases.d.cluster"]),
        ("neither cluster nor shards", "[databases.d]\nserver_database = \"x\"".into(), vec!["databases.d.cluster"]),
        ("unknown shard cluster", "[databases.d]\nshards = [\"shard0\", \"shard9\", \"nope\"]".into(), vec!["databases.d.shards.1", "databases.d.shards.2"]),
        ("same cluster twice", "[databases.d]\nshards = [\"shard0\", \"shard1\", \"shard0\"]".into(), vec!["databases.d.shards.2"]),
        ("no shards", "[databases.d]\nshards = []".into(), vec!["databases.d.shards"]),
        ("shards not an array", "[databases.d]\nshards = \"shard0\"".into(), vec!["databases.d.shards"]),
        ("default shard out of range", format!("{db}default_shard = 2"), vec!["databases.d.default_shard"]),
        ("sharding keys without shards", "[databases.d]\ncluster = \"main\"\ndefault_shard = 0\nreference_tables = [\"x\"]\n[databases.d.sharded_tables.t]\ncolumn = \"k\"\ntype = \"bigint\"".into(),
            vec!["databases.d.default_shard", "databases.d.reference_tables", "databases.d.sharded_tables"]),
        ("sharded and reference", format!("{db}reference_tables = [\"t\", \"c\", \"c\"]\n{t}type = \"bigint\""), vec!["databases.d.reference_tables.0", "databases.d.reference_tables.2"]),
        ("bad table names", format!("{db}reference_tables = [\"public.c\", \"\", \"a*\"]"), vec!["databases.d.reference_tables.0", "databases.d.reference_tables.1", "databases.d.reference_tables.2"]),
        ("missing column and type", format!("{db}[databases.d.sharded_tables.t]\nmethod = \"hash\""), vec!["databases.d.sharded_tables.t.column", "databases.d.sharded_tables.t.type"]),
        ("bad type and method", format!("{db}{t}type = \"numeric\"\nmethod = \"modulo\""), vec!["databases.d.sharded_tables.t.type", "databases.d.sharded_tables.t.method"]),
        ("range on a uuid", format!("{db}{t}type = \"uuid\"\nmethod = \"range\"\nranges = [{{ shard = 0 }}]"), vec!["databases.d.sharded_tables.t.method"]),
        ("keys of another method", format!("{db}{t}type = \"bigint\"\nranges = []\nlists = []\ndefault_shard = 0"),
            vec!["databases.d.sharded_tables.t.ranges", "databases.d.sharded_tables.t.lists", "databases.d.sharded_tables.t.default_shard"]),
        ("range without ranges", format!("{db}{t}type = \"bigint\"\nmethod = \"range\""), vec!["databases.d.sharded_tables.t.ranges"]),
        ("empty ranges", format!("{db}{t}type = \"bigint\"\nmethod = \"range\"\nranges = []"), vec!["databases.d.sharded_tables.t.ranges"]),
        ("bad range items", format!("{db}{t}type = \"integer\"\nmethod = \"range\"\nranges = [{{ from = \"0\" }}, {{ shard = 5, from = \"x\", to = \"3000000000\" }}, 7, {{ shard = 0, form = \"1\" }}, {{ shard = 1, from = 5, to = 5 }}, {{ shard = 1, from = true }}]"),
            vec!["databases.d.sharded_tables.t.ranges.2", "databases.d.sharded_tables.t.ranges.3.form", "databases.d.sharded_tables.t.ranges.0.shard",
                 "databases.d.sharded_tables.t.ranges.1.shard", "databases.d.sharded_tables.t.ranges.1.from", "databases.d.sharded_tables.t.ranges.1.to",
                 "databases.d.sharded_tables.t.ranges.4.to", "databases.d.sharded_tables.t.ranges.5.from"]),
        ("overlap", format!("{db}{t}type = \"bigint\"\nmethod = \"range\"\nranges = [{{ shard = 0, from = 0, to = 100 }}, {{ shard = 1, from = 50, to = 200 }}]"),
            vec!["databases.d.sharded_tables.t.ranges.1.from"]),
        ("two open starts", format!("{db}{t}type = \"bigint\"\nmethod = \"range\"\nranges = [{{ shard = 0, to = 100 }}, {{ shard = 1, to = 200 }}]"),
            vec!["databases.d.sharded_tables.t.ranges.1.from"]),
        ("open end before another", format!("{db}{t}type = \"bigint\"\nmethod = \"range\"\nranges = [{{ shard = 0, from = 0 }}, {{ shard = 1, from = 100, to = 200 }}]"),
            vec!["databases.d.sharded_tables.t.ranges.1.from"]),
        ("gap", format!("{db}{t}type = \"text\"\nmethod = \"range\"\nranges = [{{ shard = 1, from = \"n\" }}, {{ shard = 0, to = \"m\" }}]"),
            vec!["databases.d.sharded_tables.t.ranges.0.from"]),
        ("list without lists", format!("{db}{t}type = \"text\"\nmethod = \"list\""), vec!["databases.d.sharded_tables.t.lists"]),
        ("bad lists", format!("{db}{t}type = \"bigint\"\nmethod = \"list\"\ndefault_shard = 3\nlists = [{{ shard = 0, values = [1, \"2\", \"+1\"] }}, {{ shard = 1, values = [\"02\", \"x\"] }}, {{ shard = 1, values = [] }}, {{ shard = 1 }}, {{ values = [9] }}]"),
            vec!["databases.d.sharded_tables.t.default_shard", "databases.d.sharded_tables.t.lists.0.values.2", "databases.d.sharded_tables.t.lists.1.values.0", "databases.d.sharded_tables.t.lists.1.values.1",
                 "databases.d.sharded_tables.t.lists.2.values", "databases.d.sharded_tables.t.lists.3.values", "databases.d.sharded_tables.t.lists.4.shard"]),
        ("timestamptz bound without offset", format!("{db}{t}type = \"timestamptz\"\nmethod = \"range\"\nranges = [{{ shard = 0, to = \"2024-01-01 00:00\" }}, {{ shard = 1, from = \"2024-01-01 00:00+00\" }}]"),
            vec!["databases.d.sharded_tables.t.ranges.0.to"]),
        ("unknown sharded table key", format!("{db}{t}type = \"bigint\"\ncolum = \"x\""), vec!["databases.d.sharded_tables.t.colum"]),
        ("placement problems", format!("{db}{t}type = \"bigint\"\n[databases.d.placement.a]\ncluster = \"nope\"\ntables = [\"t*\", \"x.y\"]\n[databases.d.placement.b]\ntables = []\n[databases.d.placement.c]\ncluster = \"auditdb\"\ntables = [\"*_log\"]\n[databases.d.placement.e]\ncluster = \"auditdb\"\ntables = [\"audit_*\"]\ncolor = 1"),
            vec!["databases.d.placement.e.color", "databases.d.placement.a.cluster", "databases.d.placement.a.tables.0", "databases.d.placement.a.tables.1",
                 "databases.d.placement.b.cluster", "databases.d.placement.b.tables", "databases.d.placement.c.tables.0", "databases.d.placement.e.tables.0"]),
    ];
    for (name, text, want) in &cases {
        let got = errors(&format!("{CLUSTERS}{text}"));
        assert_eq!(got.paths(), *want, "case `{name}`:\n{got}");
    }
}

#[test]
fn messages_name_the_values() {
    let text = errors(&format!(
        "{CLUSTERS}[databases.d]\nshards = [\"shard0\", \"shard1\", \"shard0\", \"shrad1\"]\ndefault_shard = 7\nreference_tables = [\"t\"]\n[databases.d.sharded_tables.t]\ncolumn = \"k\"\ntype = \"bigint\"\nmethod = \"range\"\nranges = [{{ shard = 0, from = 0, to = 100 }}, {{ shard = 1, from = 150, to = 300 }}, {{ shard = 1, from = \"12a\" }}]\n[databases.d.sharded_tables.l]\ncolumn = \"k\"\ntype = \"text\"\nmethod = \"list\"\nlists = [{{ shard = 0, values = [\"eu\"] }}, {{ shard = 1, values = [\"us\", \"eu\"] }}]\n[databases.d.sharded_tables.r]\ncolumn = \"k\"\ntype = \"integer\"\nmethod = \"range\"\nranges = [{{ shard = 0, to = 100 }}, {{ shard = 1, from = 100, to = 200 }}, {{ shard = 0, from = 150 }}]\n"
    ))
    .to_string();
    for want in [
        "databases.d.shards.2: cluster `shard0` is already shard 0; each shard needs a cluster of its own",
        "databases.d.shards.3: cluster `shrad1` is not defined; did you mean `shard1`?",
        "databases.d.default_shard: shard 7 does not exist; the database has 4 shards (0-3)",
        "databases.d.reference_tables.0: `t` is also a sharded table (sharded_tables.t)",
        "databases.d.sharded_tables.t.ranges.2.from: invalid bigint value `12a`: not an integer",
        "databases.d.sharded_tables.l.lists.1.values.1: value `eu` is already listed at lists.0.values.0; a value belongs to one shard",
        "databases.d.sharded_tables.r.ranges.2.from: overlaps ranges.1 [100, 200); each value must belong to one range",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    let gap = errors(&format!(
        "{CLUSTERS}[databases.d]\nshards = [\"shard0\", \"shard1\"]\n[databases.d.sharded_tables.t]\ncolumn = \"k\"\ntype = \"date\"\nmethod = \"range\"\nranges = [{{ shard = 0, to = \"2024-01-01\" }}, {{ shard = 1, from = \"2024-02-01\" }}]\n"
    ))
    .to_string();
    assert!(
        gap.contains("databases.d.sharded_tables.t.ranges.1.from: gap: no shard for values from 2024-01-01 up to 2024-02-01 (ranges.0 ends at 2024-01-01)"),
        "{gap}"
    );
    let placed = errors(&format!(
        "{CLUSTERS}[databases.d]\nshards = [\"shard0\"]\nreference_tables = [\"audit_countries\"]\n[databases.d.placement.a]\ncluster = \"auditdb\"\ntables = [\"audit_*\"]\n[databases.d.placement.b]\ncluster = \"main\"\ntables = [\"*_log\"]\n"
    ))
    .to_string();
    for want in [
        "databases.d.placement.a.tables.0: `audit_*` matches `audit_countries`, which is a reference table",
        "databases.d.placement.b.tables.0: `*_log` and `audit_*` (databases.d.placement.a.tables.0) can match the same table",
    ] {
        assert!(placed.contains(want), "missing `{want}` in:\n{placed}");
    }
}

#[test]
fn a_sharding_change_is_a_database_change() {
    let old = load(&format!("{CLUSTERS}{SHOP}"));
    let new = load(&format!("{CLUSTERS}{SHOP}").replace("default_shard = 1", "default_shard = 0"));
    assert_eq!(old.diff(&new).databases_changed, ["shop"]);
    assert!(old.diff(&old).is_empty());
}
