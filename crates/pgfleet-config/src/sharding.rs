//! A sharded database's layout: `shards`, `default_shard`, `reference_tables` and
//! `[databases.NAME.sharded_tables.TABLE]`. Raw serde shapes, the validated model, and the
//! checks, each problem reported at its key path. Placement groups are in `placement`.
//!
//! Rules that keep routing unambiguous (docs/sharding.md):
//! - range bounds are half-open `[from, to)`, may be open at either end, and must neither overlap
//!   nor leave gaps between them; a value below the first or above the last range has no shard
//!   and is a routing error at run time;
//! - a list value belongs to one shard;
//! - a table is sharded, a reference table, in one placement group, or none of these (then it
//!   lives on the default shard), never two of them.

use std::collections::{BTreeMap, HashMap};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::load::{check_cluster_name, render_path};
use crate::model::ClusterConfig;
use crate::reader::Reader;
use crate::shard_key::{ShardKeyType, ShardKeyValue};
use crate::table_pattern::check_table_name;

type Leaf = Option<toml::Value>;

/// `[databases.NAME.sharded_tables.TABLE]` as serde sees it.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawShardedTable {
    pub column: Leaf,
    pub method: Leaf,
    #[serde(rename = "type")]
    pub key_type: Leaf,
    /// Items become [`RawRange`]s, each checked at its own path.
    pub ranges: Leaf,
    /// Items become [`RawList`]s, each checked at its own path.
    pub lists: Leaf,
    pub default_shard: Leaf,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRange {
    shard: Leaf,
    from: Leaf,
    to: Leaf,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawList {
    shard: Leaf,
    values: Leaf,
}

/// The sharding keys of one `[databases.NAME]` table, borrowed from its raw form.
pub(crate) struct RawSharding<'a> {
    pub shards: &'a Leaf,
    pub default_shard: &'a Leaf,
    pub reference_tables: &'a Leaf,
    pub sharded_tables: &'a BTreeMap<String, RawShardedTable>,
}

/// A sharded database's layout (`shards` and the keys that go with it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardingConfig {
    /// Cluster names (keys of `Config::clusters`) in shard order: shard `i` is `shards[i]`.
    /// Never empty; no cluster twice.
    pub shards: Vec<String>,
    /// The shard that holds tables that are neither sharded, reference, nor placed; default 0.
    pub default_shard: usize,
    /// Tables with a full copy on every shard.
    pub reference_tables: Vec<String>,
    /// Sharded tables by table name.
    pub sharded_tables: BTreeMap<String, ShardedTableConfig>,
}

/// One sharded table: which column decides the shard, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardedTableConfig {
    /// The shard key column.
    pub column: String,
    /// The column's SQL type; decides how values are parsed, compared and hashed.
    pub key_type: ShardKeyType,
    /// How a key value picks its shard.
    pub method: ShardMethod,
}

/// How a key value picks its shard (`method`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardMethod {
    /// `"hash"` (default): PostgreSQL's `PARTITION BY HASH` assignment with modulus = shard count.
    Hash,
    /// `"range"`: the shard of the range that contains the value. Sorted by `from` (open start
    /// first), contiguous, non-overlapping.
    Range(Vec<ShardRange>),
    /// `"list"`: the shard that lists the value, else the default, else no shard.
    List(ShardLists),
}

impl ShardMethod {
    /// The config spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            ShardMethod::Hash => "hash",
            ShardMethod::Range(_) => "range",
            ShardMethod::List(_) => "list",
        }
    }
}

/// One range `[from, to)` of a range-sharded table; `None` is an open end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardRange {
    /// Shard index (into [`ShardingConfig::shards`]).
    pub shard: usize,
    /// Smallest value in the range; `None` = no lower bound.
    pub from: Option<ShardKeyValue>,
    /// First value after the range; `None` = no upper bound.
    pub to: Option<ShardKeyValue>,
}

/// The lists of a list-sharded table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardLists {
    /// Each shard's values, in file order; no value appears twice.
    pub lists: Vec<ShardList>,
    /// Shard for values no list names; `None` = such values have no shard (a routing error).
    pub default_shard: Option<usize>,
}

/// The values of one shard of a list-sharded table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardList {
    /// Shard index (into [`ShardingConfig::shards`]).
    pub shard: usize,
    /// The values; never empty.
    pub values: Vec<ShardKeyValue>,
}

/// Reads a database's sharding keys; `None` when it has no `shards` (any other sharding key is
/// then reported as needing `shards`).
pub(crate) fn read_sharding(
    r: &mut Reader,
    prefix: &str,
    raw: &RawSharding<'_>,
    clusters: &BTreeMap<String, ClusterConfig>,
) -> Option<ShardingConfig> {
    let p = |key: &str| format!("{prefix}.{key}");
    if raw.shards.is_none() {
        let present = [
            ("default_shard", raw.default_shard.is_some()),
            ("reference_tables", raw.reference_tables.is_some()),
            ("sharded_tables", !raw.sharded_tables.is_empty()),
        ];
        for (key, _) in present.iter().filter(|(_, set)| *set) {
            r.report(
                p(key),
                "only a sharded database has this key; list its shards in `shards` instead of `cluster`",
            );
        }
        return None;
    }
    let mut shards = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let listed = r.string_list(&p("shards"), raw.shards).unwrap_or_default();
    for (path, name) in listed {
        // An undefined cluster keeps its position, so later shard numbers still mean what the
        // operator meant.
        if check_cluster_name(r, &path, &name, clusters) {
            if let Some(first) = seen.get(&name) {
                r.report(
                    &path,
                    format!("cluster `{name}` is already shard {first}; each shard needs a cluster of its own"),
                );
            } else {
                seen.insert(name.clone(), shards.len());
            }
        }
        shards.push(name);
    }
    if shards.is_empty() && matches!(raw.shards, Some(toml::Value::Array(_))) {
        r.report(
            p("shards"),
            "a sharded database needs at least one shard; write e.g. shards = [\"shard0\", \"shard1\"]",
        );
    }
    let count = shards.len();
    let default_shard = read_shard_index(r, &p("default_shard"), raw.default_shard, count);
    let mut reference_tables: Vec<String> = Vec::new();
    let listed = r
        .string_list(&p("reference_tables"), raw.reference_tables)
        .unwrap_or_default();
    for (i, (path, name)) in listed.iter().enumerate() {
        if !check_table_name(r, path, name, false) {
            continue;
        }
        if raw.sharded_tables.contains_key(name) {
            r.report(
                path,
                format!("`{name}` is also a sharded table (sharded_tables.{name}); a table is either sharded or a reference table"),
            );
        } else if let Some(j) = listed[..i].iter().position(|(_, n)| n == name) {
            r.report(
                path,
                format!("`{name}` is already listed at reference_tables.{j}"),
            );
        } else {
            reference_tables.push(name.clone());
        }
    }
    let mut sharded_tables = BTreeMap::new();
    for (name, table) in raw.sharded_tables {
        let path = p(&format!("sharded_tables.{name}"));
        check_table_name(r, &path, name, false);
        if let Some(t) = read_sharded_table(r, &path, table, count) {
            sharded_tables.insert(name.clone(), t);
        }
    }
    Some(ShardingConfig {
        shards,
        default_shard: default_shard.unwrap_or(0),
        reference_tables,
        sharded_tables,
    })
}

fn read_sharded_table(
    r: &mut Reader,
    path: &str,
    raw: &RawShardedTable,
    shard_count: usize,
) -> Option<ShardedTableConfig> {
    let p = |key: &str| format!("{path}.{key}");
    let column = match r.string(&p("column"), &raw.column) {
        Some(c) if c.trim().is_empty() => {
            r.report(p("column"), "column must not be empty");
            None
        }
        Some(c) => Some(c),
        None => {
            if raw.column.is_none() {
                r.report(
                    p("column"),
                    "missing required key `column` (the shard key column)",
                );
            }
            None
        }
    };
    let key_type = r.choice(&p("type"), &raw.key_type, ShardKeyType::CHOICES);
    if raw.key_type.is_none() {
        r.report(
            p("type"),
            "missing required key `type` (the shard key column's SQL type, e.g. \"bigint\"): values hash differently per type",
        );
    }
    let method = match &raw.method {
        None => Some("hash"),
        Some(_) => r.choice(
            &p("method"),
            &raw.method,
            &[("hash", "hash"), ("range", "range"), ("list", "list")],
        ),
    };
    for (key, present, wanted) in [
        ("ranges", raw.ranges.is_some(), "range"),
        ("lists", raw.lists.is_some(), "list"),
        ("default_shard", raw.default_shard.is_some(), "list"),
    ] {
        match method {
            Some(method) if present && method != wanted => r.report(
                p(key),
                format!("only for method = \"{wanted}\" (this table uses \"{method}\")"),
            ),
            _ => {}
        }
    }
    let key_type = key_type?;
    let method = match method? {
        "hash" => ShardMethod::Hash,
        "range" if !key_type.rangeable() => {
            r.report(
                p("method"),
                format!("range sharding does not support {key_type} keys; use hash or list"),
            );
            return None;
        }
        "range" => ShardMethod::Range(read_ranges(
            r,
            &p("ranges"),
            &raw.ranges,
            key_type,
            shard_count,
        )?),
        "list" => {
            let default_shard =
                read_shard_index(r, &p("default_shard"), &raw.default_shard, shard_count);
            ShardMethod::List(ShardLists {
                lists: read_lists(r, &p("lists"), &raw.lists, key_type, shard_count)?,
                default_shard,
            })
        }
        _ => return None,
    };
    Some(ShardedTableConfig {
        column: column?,
        key_type,
        method,
    })
}

fn read_ranges(
    r: &mut Reader,
    path: &str,
    value: &Leaf,
    key_type: ShardKeyType,
    shard_count: usize,
) -> Option<Vec<ShardRange>> {
    let example = "{ shard = 0, from = \"0\", to = \"1000\" }";
    let before = r.problems.len();
    let Some(items) = table_items::<RawRange>(r, path, value, example) else {
        r.report(
            path,
            format!("method \"range\" needs ranges, e.g. ranges = [{example}]"),
        );
        return None;
    };
    // (index in the file, range)
    let mut ranges: Vec<(usize, ShardRange)> = Vec::new();
    for (i, raw) in items {
        let item_path = format!("{path}.{i}");
        let shard = read_required_shard(r, &item_path, &raw.shard, shard_count);
        let from = key_value(r, &format!("{item_path}.from"), &raw.from, key_type);
        let to = key_value(r, &format!("{item_path}.to"), &raw.to, key_type);
        if let (Some(f), Some(t)) = (&from, &to) {
            if t <= f {
                r.report(
                    format!("{item_path}.to"),
                    format!("empty range: `to` ({t}) must be greater than `from` ({f}); ranges are [from, to)"),
                );
            }
        }
        if let Some(shard) = shard {
            ranges.push((i, ShardRange { shard, from, to }));
        }
    }
    if r.problems.len() > before {
        return None;
    }
    // Open start (None) sorts first, as Option's order has it.
    ranges.sort_by(|(_, a), (_, b)| a.from.cmp(&b.from));
    for pair in ranges.windows(2) {
        let ((a_index, a), (b_index, b)) = (&pair[0], &pair[1]);
        let at = format!("{path}.{b_index}.from");
        match (&a.to, &b.from) {
            (Some(end), Some(start)) if start > end => r.report(
                at,
                format!("gap: no shard for values from {end} up to {start} (ranges.{a_index} ends at {end}); make the ranges contiguous"),
            ),
            (Some(end), Some(start)) if start == end => {}
            _ => r.report(
                at,
                format!("overlaps ranges.{a_index} {}; each value must belong to one range", show_range(a)),
            ),
        }
    }
    (r.problems.len() == before).then(|| ranges.into_iter().map(|(_, range)| range).collect())
}

fn show_range(range: &ShardRange) -> String {
    let show = |v: &Option<ShardKeyValue>| {
        v.as_ref()
            .map_or("unbounded".to_string(), |v| v.to_string())
    };
    format!("[{}, {})", show(&range.from), show(&range.to))
}

fn read_lists(
    r: &mut Reader,
    path: &str,
    value: &Leaf,
    key_type: ShardKeyType,
    shard_count: usize,
) -> Option<Vec<ShardList>> {
    let example = "{ shard = 0, values = [\"eu\", \"uk\"] }";
    let before = r.problems.len();
    let Some(items) = table_items::<RawList>(r, path, value, example) else {
        r.report(
            path,
            format!("method \"list\" needs lists, e.g. lists = [{example}]"),
        );
        return None;
    };
    let mut lists = Vec::new();
    let mut first_seen: HashMap<ShardKeyValue, String> = HashMap::new();
    for (li, raw) in items {
        let item_path = format!("{path}.{li}");
        let shard = read_required_shard(r, &item_path, &raw.shard, shard_count);
        let values_path = format!("{item_path}.values");
        let mut values = Vec::new();
        match &raw.values {
            None => r.report(&values_path, "missing required key `values`"),
            Some(toml::Value::Array(items)) if items.is_empty() => {
                r.report(&values_path, "a list needs at least one value")
            }
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let value_path = format!("{values_path}.{i}");
                    let Some(v) = key_value(r, &value_path, &Some(item.clone()), key_type) else {
                        continue;
                    };
                    if let Some(earlier) = first_seen.get(&v) {
                        r.report(
                            &value_path,
                            format!("value `{v}` is already listed at {earlier}; a value belongs to one shard"),
                        );
                    } else {
                        first_seen.insert(v.clone(), format!("lists.{li}.values.{i}"));
                        values.push(v);
                    }
                }
            }
            Some(other) => r.report(
                &values_path,
                format!("expected an array of values, found {}", other.type_str()),
            ),
        }
        if let Some(shard) = shard {
            lists.push(ShardList { shard, values });
        }
    }
    (r.problems.len() == before).then_some(lists)
}

/// A range bound or list value: a string in the type's text form, an integer for integer types,
/// or a TOML date/date-time for date and timestamp types.
fn key_value(
    r: &mut Reader,
    path: &str,
    value: &Leaf,
    key_type: ShardKeyType,
) -> Option<ShardKeyValue> {
    let text = match value.as_ref()? {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) if key_type.integer_bounds().is_some() => i.to_string(),
        toml::Value::Datetime(d)
            if matches!(
                key_type,
                ShardKeyType::Date | ShardKeyType::Timestamp | ShardKeyType::TimestampTz
            ) =>
        {
            d.to_string()
        }
        other => {
            r.report(
                path,
                format!(
                    "expected a {key_type} value as a string such as \"1000\", found {}",
                    other.type_str()
                ),
            );
            return None;
        }
    };
    ShardKeyValue::parse_text(key_type, &text)
        .map_err(|e| r.report(path, e.to_string()))
        .ok()
}

fn read_required_shard(
    r: &mut Reader,
    item_path: &str,
    value: &Leaf,
    count: usize,
) -> Option<usize> {
    let path = format!("{item_path}.shard");
    if value.is_none() {
        r.report(
            &path,
            "missing required key `shard` (a shard number, from 0)",
        );
        return None;
    }
    read_shard_index(r, &path, value, count)
}

/// A shard number below `count`.
fn read_shard_index(r: &mut Reader, path: &str, value: &Leaf, count: usize) -> Option<usize> {
    let index = r.usize(path, value, 0)?;
    if index >= count {
        let have = match count {
            0 => "no shards".to_string(),
            1 => "1 shard (0)".to_string(),
            n => format!("{n} shards (0-{})", n - 1),
        };
        r.report(
            path,
            format!("shard {index} does not exist; the database has {have}"),
        );
        return None;
    }
    Some(index)
}

/// Items of an array of inline tables, each deserialized at its own path with unknown keys
/// reported; `None` when the key is absent.
fn table_items<T: DeserializeOwned>(
    r: &mut Reader,
    path: &str,
    value: &Leaf,
    example: &str,
) -> Option<Vec<(usize, T)>> {
    let items = match value.as_ref()? {
        toml::Value::Array(items) => items,
        other => {
            r.report(
                path,
                format!(
                    "expected an array of tables such as [{example}], found {}",
                    other.type_str()
                ),
            );
            return Some(Vec::new());
        }
    };
    if items.is_empty() {
        r.report(path, format!("needs at least one entry such as {example}"));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}.{i}");
        let mut unknown = Vec::new();
        match serde_ignored::deserialize(item.clone(), |p| unknown.push(render_path(&p))) {
            Ok(parsed) => out.push((i, parsed)),
            Err(_) => r.report(
                &item_path,
                format!(
                    "expected a table such as {example}, found {}",
                    item.type_str()
                ),
            ),
        }
        for key in unknown {
            r.unknown_key(format!("{item_path}.{key}"));
        }
    }
    Some(out)
}
