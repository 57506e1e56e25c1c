//! Vertical partitioning and where a statement goes when it names no sharded table: placement
//! groups put tables on their own cluster; a statement is routed by the tables it names, and one
//! that mixes clusters is refused.

use pgfleet_catalog::{DatabaseTopology, Layout, TableLocation};

use super::error::ShardRouteError;
use super::plan::Mention;
use super::route::ShardRoute;
use super::scope::Place;

/// Where a statement naming no table of the database goes.
pub(crate) fn default_route(db: &DatabaseTopology) -> ShardRoute {
    match db.layout() {
        Layout::Sharded(s) => ShardRoute::Single(s.default_shard()),
        Layout::Single { .. } => ShardRoute::Home,
    }
}

/// Where table `name` lives.
pub(crate) fn place_of(db: &DatabaseTopology, name: &str) -> Place {
    match db.table_location(name) {
        TableLocation::Sharded(_) => Place::Sharded,
        TableLocation::Reference => Place::Reference,
        TableLocation::DefaultShard(_) => Place::Default,
        TableLocation::Placed(g) => Place::Placed(g.cluster().to_string()),
        TableLocation::Home(_) => Place::Home,
    }
}

/// The route when placement decides (a placed table, or an unsharded database); `None` when the
/// statement runs on shards. Tables on different clusters in one statement are refused.
pub(crate) fn placement<'m>(
    mentions: &'m [Mention],
    db: &'m DatabaseTopology,
) -> Result<Option<ShardRoute>, ShardRouteError> {
    let home = match db.layout() {
        Layout::Single { cluster } => Some(cluster.as_str()),
        Layout::Sharded(_) => None,
    };
    let cluster_of = |m: &'m Mention| -> Option<&'m str> {
        match &m.place {
            Place::Placed(c) => Some(c.as_str()),
            Place::Home => home,
            _ => None,
        }
    };
    let any_placed = mentions.iter().any(|m| matches!(m.place, Place::Placed(_)));
    if home.is_none() && !any_placed {
        return Ok(None);
    }
    let mut clusters: Vec<Option<&str>> = mentions.iter().map(cluster_of).collect();
    clusters.sort_unstable();
    clusters.dedup();
    match clusters.as_slice() {
        [] => Ok(Some(ShardRoute::Home)),
        [Some(c)] if Some(*c) == home => Ok(Some(ShardRoute::Home)),
        [Some(c)] => Ok(Some(ShardRoute::Placed((*c).to_string()))),
        _ => {
            let mut listed: Vec<String> = mentions
                .iter()
                .map(|m| {
                    let place = match &m.place {
                        Place::Placed(c) => format!("cluster `{c}`"),
                        Place::Home => format!("cluster `{}`", home.unwrap_or("?")),
                        Place::Sharded => "sharded".to_string(),
                        Place::Reference => "reference table on every shard".to_string(),
                        Place::Default => "default shard".to_string(),
                    };
                    format!("`{}` ({place})", m.name)
                })
                .collect();
            listed.sort();
            listed.dedup();
            Err(ShardRouteError::PlacementMix {
                tables: listed.join(", "),
            })
        }
    }
}
