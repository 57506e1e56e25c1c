//! Placement groups (`[databases.NAME.placement.GROUP]`): vertical partitioning, tables that
//! live on another cluster. For sharded and single-cluster databases alike.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::load::check_cluster_name;
use crate::model::ClusterConfig;
use crate::reader::Reader;
use crate::sharding::ShardingConfig;
use crate::table_pattern::{check_table_name, TablePattern};

type Leaf = Option<toml::Value>;

/// `[databases.NAME.placement.GROUP]` as serde sees it.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawPlacement {
    pub cluster: Leaf,
    pub tables: Leaf,
}

/// A placement group: tables that live on their own cluster (vertical partitioning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementGroup {
    /// The cluster that holds these tables.
    pub cluster: String,
    /// Table names or `*` globs; never empty. No table matches two groups.
    pub tables: Vec<TablePattern>,
}

/// Reads the placement groups; patterns may not claim a sharded or reference table, and no table
/// may match two groups.
pub(crate) fn read_placement(
    r: &mut Reader,
    prefix: &str,
    raw: &BTreeMap<String, RawPlacement>,
    clusters: &BTreeMap<String, ClusterConfig>,
    sharding: Option<&ShardingConfig>,
) -> BTreeMap<String, PlacementGroup> {
    let mut groups = BTreeMap::new();
    // (path, group, pattern) of every pattern read so far, to find overlaps between groups.
    let mut claimed: Vec<(String, String, TablePattern)> = Vec::new();
    for (group, placement) in raw {
        let path = format!("{prefix}.placement.{group}");
        let cluster_path = format!("{path}.cluster");
        let cluster = match r.string(&cluster_path, &placement.cluster) {
            Some(c) => {
                check_cluster_name(r, &cluster_path, &c, clusters);
                c
            }
            None => {
                if placement.cluster.is_none() {
                    r.report(&cluster_path, "missing required key `cluster`");
                }
                String::new()
            }
        };
        let tables_path = format!("{path}.tables");
        let listed = r.string_list(&tables_path, &placement.tables);
        match &listed {
            None if placement.tables.is_none() => {
                r.report(
                    &tables_path,
                    "missing required key `tables`; write e.g. tables = [\"audit_*\"]",
                );
            }
            Some(items) if items.is_empty() => {
                r.report(
                    &tables_path,
                    "a placement group needs at least one table name or pattern",
                );
            }
            _ => {}
        }
        let mut tables = Vec::new();
        for (item_path, text) in listed.unwrap_or_default() {
            if !check_table_name(r, &item_path, &text, true) {
                continue;
            }
            let pattern = TablePattern::new(text);
            if let Some(sharding) = sharding {
                let clash = sharding
                    .sharded_tables
                    .keys()
                    .map(|t| (t, "sharded"))
                    .chain(sharding.reference_tables.iter().map(|t| (t, "reference")))
                    .find(|(t, _)| pattern.matches(t));
                if let Some((table, kind)) = clash {
                    r.report(
                        &item_path,
                        format!("`{pattern}` matches `{table}`, which is a {kind} table; a table is in a placement group or {kind}, not both"),
                    );
                }
            }
            if let Some((other_path, _, other)) = claimed
                .iter()
                .find(|(_, g, other)| g != group && pattern.overlaps(other))
            {
                r.report(
                    &item_path,
                    format!("`{pattern}` and `{other}` ({other_path}) can match the same table; a table belongs to one placement group"),
                );
            }
            claimed.push((item_path, group.clone(), pattern.clone()));
            tables.push(pattern);
        }
        groups.insert(group.clone(), PlacementGroup { cluster, tables });
    }
    groups
}
