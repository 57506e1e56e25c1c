//! Sharded (and placed) databases on the data path, the pure part: one [`ShardRouter`] per
//! database built from the config snapshot, and what a [`ShardRoute`] means for one session —
//! which cluster ([`Place`]) a statement needs, or why pgfleet refuses it. The session carries
//! these decisions out (`session/shards.rs`).
//!
//! Inside a transaction (or a request of several statements, a pinned session, session pooling)
//! only single-cluster routes run: a statement that needs several shards (`Several`, `All`, a
//! reference-table write, a split INSERT) is refused there with 0A000, and a transaction stays
//! on the cluster of its first statement that names a table. Alone, outside a transaction, such
//! a statement runs across shards (`fanout`, driven by `session/fanout.rs`).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use pgfleet_catalog::{Catalog, DatabaseTopology, Layout, ValueFormat};
use pgfleet_config::Config;
use pgfleet_sql::shard::{Param, ReferenceAccess, ShardRoute, ShardRouteError, ShardRouter};
use pgfleet_wire::frontend::{BindParam, INLINE_BIND_PARAMS};
use smallvec::SmallVec;

use crate::ProxyError;

/// The routers of every database that has shards or placement groups, by database name. Plain
/// single-cluster databases have none: their sessions never analyse statements for placement.
pub type ShardRouters = HashMap<String, Arc<ShardRouter>>;

/// A session's copy of its database's router and the set of routers it came from
/// ([`crate::runtime::Runtime::shard_router_memo`]): valid until a reload rebuilds the routers.
pub type RouterMemo = Option<(Arc<ShardRouters>, Option<Arc<ShardRouter>>)>;

/// Routers for `config` (each with an empty plan cache of `proxy.analysis_cache_size` texts).
pub fn routers_for(config: &Config) -> ShardRouters {
    let catalog = match Catalog::from_config(config) {
        Ok(c) => c,
        Err(e) => {
            // Validation refuses such configs; a hand-built one leaves sharded databases unrouted
            // (their statements are refused), never routed by a guess.
            tracing::error!(error = %e, "cannot build the shard catalog");
            return ShardRouters::new();
        }
    };
    catalog
        .databases()
        .filter(|db| db.shards().is_some() || !db.placement().is_empty())
        .map(|db| {
            (
                db.name().to_owned(),
                Arc::new(ShardRouter::new(
                    db.clone(),
                    config.proxy.analysis_cache_size,
                )),
            )
        })
        .collect()
}

/// A cluster a statement of a sharded or placed database runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// Shard `n` of a sharded database.
    Shard(usize),
    /// A placement group's cluster, or the database's own cluster (not sharded).
    Cluster(String),
}

impl Place {
    /// Where statements that name no table go: the default shard, or the database's cluster.
    pub fn default_of(db: &DatabaseTopology) -> Place {
        match db.layout() {
            Layout::Sharded(s) => Place::Shard(s.default_shard()),
            Layout::Single { cluster } => Place::Cluster(cluster.clone()),
        }
    }

    /// The cluster's name in the config (`None` for a shard number the topology lacks).
    pub fn cluster<'a>(&'a self, db: &'a DatabaseTopology) -> Option<&'a str> {
        match self {
            Place::Shard(n) => db.shard_cluster(*n),
            Place::Cluster(c) => Some(c),
        }
    }

    /// Whether both places are the same cluster (a placement group may live on a shard's
    /// cluster).
    pub fn same_cluster(&self, other: &Place, db: &DatabaseTopology) -> bool {
        self == other || (self.cluster(db).is_some() && self.cluster(db) == other.cluster(db))
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Shard(n) => write!(f, "shard {n}"),
            Place::Cluster(c) => write!(f, "cluster `{c}`"),
        }
    }
}

/// What one statement needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    /// Any cluster of the database will do: transaction control and settings, reads of
    /// reference tables only, a Parse whose route waits for its Bind.
    Any,
    /// This cluster.
    Exactly(Place),
}

/// What a route means for a single-cluster execution; `Err` when the statement needs several
/// shards (such statements run only alone, outside transactions: `session/fanout.rs`).
pub fn want_of(route: ShardRoute, db: &DatabaseTopology) -> Result<Want, ProxyError> {
    let all =
        || -> BTreeSet<usize> { (0..db.shards().map_or(0, |s| s.clusters().len())).collect() };
    match route {
        ShardRoute::Single(n) => Ok(Want::Exactly(Place::Shard(n))),
        ShardRoute::Reference(ReferenceAccess::Read) | ShardRoute::AtBind(_) => Ok(Want::Any),
        ShardRoute::Placed(cluster) => Ok(Want::Exactly(Place::Cluster(cluster))),
        ShardRoute::Home => Ok(Want::Exactly(Place::default_of(db))),
        ShardRoute::Several(shards) => Err(cross_shard_unavailable("this statement", &shards)),
        ShardRoute::All => Err(cross_shard_unavailable("this statement", &all())),
        ShardRoute::Reference(ReferenceAccess::Write) => Err(cross_shard_unavailable(
            "a write to a reference table",
            &all(),
        )),
        ShardRoute::Split(split) => Err(cross_shard_unavailable(
            "a multi-row INSERT whose rows belong to different shards",
            &split.shards(),
        )),
    }
}

/// A router error as the client sees it (nothing was sent anywhere).
pub fn route_error(e: ShardRouteError) -> ProxyError {
    ProxyError::Client {
        code: e.sqlstate(),
        message: format!("pgfleet: {e}"),
    }
}

/// 0A000 for a statement that needs several shards, naming them.
pub fn cross_shard_unavailable(what: &str, shards: &BTreeSet<usize>) -> ProxyError {
    let list: Vec<String> = shards.iter().map(usize::to_string).collect();
    ProxyError::Client {
        code: "0A000",
        message: format!(
            "pgfleet: {what} needs shards {}: pgfleet runs a statement across shards only alone \
             in its request and outside a transaction block, pinned session or session pooling; \
             run it on its own, restrict it to one shard by its shard key, or pick one with \
             /* pgfleet: shard=N */ or SET pgfleet.shard",
            list.join(", ")
        ),
    }
}

/// Why a session's statements are bound to the cluster of the server it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// The client's transaction runs there.
    Transaction,
    /// An earlier statement of the same request (one implicit transaction) runs there.
    Request,
    /// The session keeps its server (session pooling, or pinned by LISTEN, temp tables, …).
    Session,
}

/// 0A000 for a statement whose cluster differs from the one the session's server is on.
pub fn place_conflict(held: &Place, wanted: &Place, holder: Holder) -> ProxyError {
    let message = match holder {
        Holder::Transaction => format!(
            "pgfleet: transaction on {held} cannot touch {wanted}: pgfleet does not coordinate \
             cross-shard transactions yet"
        ),
        Holder::Request => format!(
            "pgfleet: request on {held} cannot touch {wanted}: the statements of one request (up \
             to Sync) run in one transaction, and pgfleet does not coordinate cross-shard \
             transactions yet"
        ),
        Holder::Session => format!(
            "pgfleet: this session holds a server on {held} (session pooling or a pinned \
             session) and cannot run a statement for {wanted}"
        ),
    };
    ProxyError::Client {
        code: "0A000",
        message,
    }
}

/// Bind parameters as the router reads them.
pub fn router_params<'a>(params: &[BindParam<'a>]) -> SmallVec<[Param<'a>; INLINE_BIND_PARAMS]> {
    params
        .iter()
        .map(|p| match p.value {
            None => Param::Null,
            Some(bytes) => Param::Value {
                format: if p.binary {
                    ValueFormat::Binary
                } else {
                    ValueFormat::Text
                },
                bytes,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> Config {
        let text = r#"
[clusters.s0]
servers = [{ host = "127.0.0.1", port = 5440 }]
[clusters.s1]
servers = [{ host = "127.0.0.1", port = 5441 }]
[clusters.audit]
servers = [{ host = "127.0.0.1", port = 5443 }]
[clusters.plain]
servers = [{ host = "127.0.0.1", port = 5444 }]
[databases.app]
shards = ["s0", "s1"]
reference_tables = ["countries"]
[databases.app.sharded_tables.items]
column = "id"
type = "bigint"
[databases.app.placement]
audit = { cluster = "audit", tables = ["audit_*"] }
[databases.plain]
cluster = "plain"
[users.app]
password = "app"
"#;
        Config::from_toml_str(text).unwrap()
    }

    fn want(sql: &str) -> Result<Want, String> {
        let routers = routers_for(&config());
        let r = routers.get("app").unwrap();
        let route = r
            .route(
                sql,
                pgfleet_sql::shard::BindParams::Bound(&[]),
                &Default::default(),
            )
            .map_err(|e| route_error(e).client_message())?;
        want_of(route, r.topology()).map_err(|e| e.client_message())
    }

    #[test]
    fn only_sharded_or_placed_databases_get_a_router() {
        let routers = routers_for(&config());
        assert!(routers.contains_key("app"));
        assert!(!routers.contains_key("plain"));
    }

    #[test]
    fn routes_become_places_or_refusals() {
        assert_eq!(want("SELECT * FROM countries"), Ok(Want::Any));
        assert_eq!(want("BEGIN"), Ok(Want::Exactly(Place::Shard(0))));
        assert_eq!(
            want("SELECT * FROM audit_log"),
            Ok(Want::Exactly(Place::Cluster("audit".into())))
        );
        assert_eq!(
            want("SELECT * FROM notes"),
            Ok(Want::Exactly(Place::Shard(0)))
        );
        let all = want("SELECT * FROM items").unwrap_err();
        assert!(all.contains("needs shards 0, 1"), "{all}");
        assert!(all.contains("outside a transaction block"), "{all}");
        let split = want("INSERT INTO items(id) VALUES (1), (2), (3), (4), (5)").unwrap_err();
        assert!(split.contains("multi-row INSERT"), "{split}");
        let bad = want("SELECT * FROM items WHERE id = 'x1'").unwrap_err();
        assert!(bad.contains("x1"), "{bad}");
    }

    #[test]
    fn conflicts_name_both_places() {
        let e = place_conflict(&Place::Shard(0), &Place::Shard(2), Holder::Transaction);
        assert_eq!(e.sqlstate(), "0A000");
        assert_eq!(
            e.client_message(),
            "pgfleet: transaction on shard 0 cannot touch shard 2: pgfleet does not coordinate cross-shard transactions yet"
        );
    }
}
