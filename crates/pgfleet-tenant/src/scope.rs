//! Which database a command manages, where a new tenant goes and where a tenant lives (pure).
//!
//! Placement of a new tenant on a sharded database: `--shard N` pins it; otherwise, under the row
//! model, a sharded table keyed by the tenant column decides (the tenant's rows must live where
//! that table's key sends them); otherwise the tenant name's PostgreSQL-compatible hash as
//! `text` modulo the shard count (`PARTITION BY HASH` agreement, see `pgfleet_catalog::hash`),
//! the same shard a hash-sharded `text` key equal to the tenant name would pick.

use std::fmt;

use pgfleet_catalog::hash::hash_partition;
use pgfleet_catalog::{parse_key, ShardKeyValue, ShardMap, ValueFormat};
use pgfleet_config::{Config, DatabaseConfig, TenancyConfig, TenantModel};

use crate::TenantError;

/// A database with tenancy, as a command sees it.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'c> {
    /// The pgfleet database (a key of `Config::databases`).
    pub name: &'c str,
    /// Its config.
    pub db: &'c DatabaseConfig,
    /// Its `[databases.NAME.tenancy]`.
    pub tenancy: &'c TenancyConfig,
}

/// The database a command manages: the one asked for, else the config's only database with
/// tenancy.
pub fn choose_database(config: &Config, asked: Option<&str>) -> Result<String, TenantError> {
    if let Some(name) = asked {
        return Ok(name.to_string());
    }
    let with_tenancy: Vec<&str> = config
        .databases
        .iter()
        .filter(|(_, d)| d.tenancy.is_some())
        .map(|(n, _)| n.as_str())
        .collect();
    match with_tenancy.as_slice() {
        [only] => Ok((*only).to_string()),
        [] => Err(TenantError::Scope(
            "no database in the config has a [databases.NAME.tenancy] table; pgfleet tenant manages the tenants of such a database (see docs/config.md)".to_string(),
        )),
        many => Err(TenantError::Scope(format!(
            "several databases have tenancy ({}); choose one with --database",
            many.join(", ")
        ))),
    }
}

/// The scope of `database`: it must be in the config and have tenancy.
pub fn scope<'c>(config: &'c Config, database: &str) -> Result<Scope<'c>, TenantError> {
    let Some((name, db)) = config.databases.get_key_value(database) else {
        let names: Vec<&str> = config.databases.keys().map(String::as_str).collect();
        return Err(TenantError::Scope(format!(
            "database `{database}` is not in the config (databases: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    };
    let Some(tenancy) = &db.tenancy else {
        return Err(TenantError::Scope(format!(
            "database `{database}` has no [databases.{database}.tenancy] table; add one to give it tenants (see docs/config.md)"
        )));
    };
    Ok(Scope {
        name: name.as_str(),
        db,
        tenancy,
    })
}

/// Where data of a database lives: a cluster, one shard, or a placement group's cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// An unsharded database's cluster.
    Cluster(String),
    /// Shard `index` of a sharded database, on `cluster`.
    Shard {
        /// The shard number.
        index: u32,
        /// Its cluster.
        cluster: String,
    },
    /// A placement group (`[databases.NAME.placement.GROUP]`): tables on another cluster.
    Group {
        /// The group's name.
        name: String,
        /// Its cluster.
        cluster: String,
    },
}

impl Place {
    /// The cluster.
    pub fn cluster(&self) -> &str {
        match self {
            Place::Cluster(c)
            | Place::Shard { cluster: c, .. }
            | Place::Group { cluster: c, .. } => c,
        }
    }

    /// The shard, for a shard of a sharded database.
    pub fn shard(&self) -> Option<u32> {
        match self {
            Place::Shard { index, .. } => Some(*index),
            Place::Cluster(_) | Place::Group { .. } => None,
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Cluster(c) => write!(f, "cluster {c}"),
            Place::Shard { index, cluster } => write!(f, "shard {index} (cluster {cluster})"),
            Place::Group { name, cluster } => {
                write!(f, "placement group {name} (cluster {cluster})")
            }
        }
    }
}

/// The shard a new tenant goes to: `None` for an unsharded database, else `pinned` (checked)
/// or the placement rule in the module docs.
pub fn choose_shard(
    scope: &Scope<'_>,
    tenant: &str,
    pinned: Option<u32>,
) -> Result<Option<i32>, TenantError> {
    let database = scope.name;
    let Some(sharding) = &scope.db.sharding else {
        return match pinned {
            None => Ok(None),
            Some(s) => Err(TenantError::Placement(format!(
                "database `{database}` is not sharded; --shard {s} does not apply"
            ))),
        };
    };
    let count = sharding.shards.len();
    let index = match pinned {
        Some(s) => usize::try_from(s)
            .ok()
            .filter(|s| *s < count)
            .ok_or_else(|| {
                TenantError::Placement(format!(
                    "database `{database}` has {count} shard(s) (0 to {}); there is no shard {s}",
                    count.saturating_sub(1)
                ))
            })?,
        None => {
            let keyed = (scope.tenancy.model == TenantModel::Row)
                .then(|| {
                    sharding
                        .sharded_tables
                        .iter()
                        .find(|(_, t)| t.column == scope.tenancy.tenant_column)
                })
                .flatten();
            match keyed {
                Some((table, t)) => {
                    let cannot = |reason: String| {
                        TenantError::Placement(format!(
                            "tenant `{tenant}` cannot be placed by sharded table `{table}` (key column `{}`, type {}): {reason}; give the shard with --shard",
                            t.column,
                            t.key_type.as_str()
                        ))
                    };
                    let map = ShardMap::from_config(format!("{table}.{}", t.column), t, count)
                        .map_err(|e| cannot(e.to_string()))?;
                    let value = parse_key(t.key_type, ValueFormat::Text, tenant.as_bytes())
                        .map_err(|e| cannot(e.to_string()))?;
                    map.shard_for(&value).map_err(|e| cannot(e.to_string()))?
                }
                None => {
                    let value = ShardKeyValue::Text(tenant.to_string());
                    // The remainder is below `count`, a usize.
                    hash_partition(Some(&value), count as u64) as usize
                }
            }
        }
    };
    i32::try_from(index)
        .map(Some)
        .map_err(|_| TenantError::Placement(format!("shard {index} is out of range")))
}

/// Where a tenant lives given its directory shard: its database's cluster, or its shard's.
pub fn tenant_place(
    scope: &Scope<'_>,
    tenant: &str,
    shard: Option<i32>,
) -> Result<Place, TenantError> {
    let database = scope.name;
    match (&scope.db.sharding, shard) {
        (None, None) => Ok(Place::Cluster(scope.db.cluster.clone())),
        (None, Some(s)) => Err(TenantError::Placement(format!(
            "tenant `{tenant}` is placed on shard {s} in the tenant directory, but database `{database}` has no shards in the config"
        ))),
        (Some(_), None) => Err(TenantError::Placement(format!(
            "tenant `{tenant}` has no shard in the tenant directory, but database `{database}` is sharded"
        ))),
        (Some(sharding), Some(s)) => {
            let found = usize::try_from(s)
                .ok()
                .and_then(|i| sharding.shards.get(i).map(|c| (i, c)));
            match found {
                Some((i, cluster)) => Ok(Place::Shard {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    cluster: cluster.clone(),
                }),
                None => Err(TenantError::Placement(format!(
                    "tenant `{tenant}` is placed on shard {s}, but database `{database}` has {} shard(s)",
                    sharding.shards.len()
                ))),
            }
        }
    }
}

/// Every place that holds tables of the database: its cluster or each shard, then each
/// placement group on a cluster not listed yet.
pub fn data_places(scope: &Scope<'_>) -> Vec<Place> {
    let mut places: Vec<Place> = match &scope.db.sharding {
        None => vec![Place::Cluster(scope.db.cluster.clone())],
        Some(sharding) => sharding
            .shards
            .iter()
            .enumerate()
            .map(|(i, cluster)| Place::Shard {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                cluster: cluster.clone(),
            })
            .collect(),
    };
    for (name, group) in &scope.db.placement {
        if !places.iter().any(|p| p.cluster() == group.cluster) {
            places.push(Place::Group {
                name: name.clone(),
                cluster: group.cluster.clone(),
            });
        }
    }
    places
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(text: &str) -> Config {
        let base = r#"
[clusters.main]
servers = [{ host = "127.0.0.1" }]
[clusters.s0]
servers = [{ host = "127.0.0.1", port = 6000 }]
[clusters.s1]
servers = [{ host = "127.0.0.1", port = 6001 }]
[clusters.s2]
servers = [{ host = "127.0.0.1", port = 6002 }]
"#;
        match Config::from_toml_str(&format!("{base}{text}")) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    const SHARDED_SCHEMA: &str = r#"
[databases.app]
shards = ["s0", "s1", "s2"]
[databases.app.tenancy]
model = "schema"
"#;

    #[test]
    fn the_database_defaults_to_the_only_one_with_tenancy() {
        let c = config(
            "[databases.plain]\ncluster = \"main\"\n[databases.app]\ncluster = \"main\"\n[databases.app.tenancy]\nmodel = \"schema\"\n",
        );
        assert_eq!(choose_database(&c, None).unwrap(), "app");
        assert_eq!(choose_database(&c, Some("x")).unwrap(), "x");
        let none = config("[databases.plain]\ncluster = \"main\"\n");
        let e = choose_database(&none, None).unwrap_err().to_string();
        assert!(
            e.contains("no database in the config has a [databases.NAME.tenancy]"),
            "{e}"
        );
        let two = config(
            "[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"row\"\n[databases.b]\ncluster = \"main\"\n[databases.b.tenancy]\nmodel = \"schema\"\n",
        );
        let e = choose_database(&two, None).unwrap_err().to_string();
        assert_eq!(
            e,
            "several databases have tenancy (a, b); choose one with --database"
        );
    }

    #[test]
    fn a_scope_needs_a_known_database_with_tenancy() {
        let c = config("[databases.plain]\ncluster = \"main\"\n");
        let e = scope(&c, "nope").unwrap_err().to_string();
        assert_eq!(e, "database `nope` is not in the config (databases: plain)");
        let e = scope(&c, "plain").unwrap_err().to_string();
        assert!(
            e.contains("database `plain` has no [databases.plain.tenancy] table"),
            "{e}"
        );
    }

    #[test]
    fn unsharded_databases_take_no_shard() {
        let c = config(
            "[databases.app]\ncluster = \"main\"\n[databases.app.tenancy]\nmodel = \"schema\"\n",
        );
        let s = scope(&c, "app").unwrap();
        assert_eq!(choose_shard(&s, "acme", None).unwrap(), None);
        let e = choose_shard(&s, "acme", Some(1)).unwrap_err().to_string();
        assert_eq!(e, "database `app` is not sharded; --shard 1 does not apply");
        assert_eq!(
            tenant_place(&s, "acme", None).unwrap(),
            Place::Cluster("main".into())
        );
        assert!(tenant_place(&s, "acme", Some(0)).is_err());
    }

    #[test]
    fn sharded_databases_hash_the_tenant_name_or_take_the_pinned_shard() {
        let c = config(SHARDED_SCHEMA);
        let s = scope(&c, "app").unwrap();
        // The text hash PostgreSQL computes for 'tenant_42' (see pgfleet_catalog::hash tests).
        let expected = hash_partition(Some(&ShardKeyValue::Text("tenant_42".into())), 3);
        assert_eq!(
            choose_shard(&s, "tenant_42", None).unwrap(),
            Some(expected as i32)
        );
        // Spread: 300 names land on every shard.
        let mut seen = [0usize; 3];
        for i in 0..300 {
            let shard = choose_shard(&s, &format!("t{i}"), None).unwrap().unwrap();
            seen[shard as usize] += 1;
        }
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
        assert_eq!(choose_shard(&s, "acme", Some(2)).unwrap(), Some(2));
        let e = choose_shard(&s, "acme", Some(3)).unwrap_err().to_string();
        assert_eq!(
            e,
            "database `app` has 3 shard(s) (0 to 2); there is no shard 3"
        );
        assert_eq!(
            tenant_place(&s, "acme", Some(1)).unwrap(),
            Place::Shard {
                index: 1,
                cluster: "s1".into()
            }
        );
        let e = tenant_place(&s, "acme", Some(7)).unwrap_err().to_string();
        assert!(
            e.contains("placed on shard 7, but database `app` has 3 shard(s)"),
            "{e}"
        );
        let e = tenant_place(&s, "acme", None).unwrap_err().to_string();
        assert!(e.contains("has no shard in the tenant directory"), "{e}");
    }

    #[test]
    fn row_model_follows_a_table_sharded_by_the_tenant_column() {
        let c = config(
            r#"
[databases.app]
shards = ["s0", "s1", "s2"]
[databases.app.tenancy]
model = "row"
[databases.app.sharded_tables.orders]
column = "tenant_id"
type = "text"
method = "list"
lists = [{ shard = 2, values = ["acme"] }]
default_shard = 1
"#,
        );
        let s = scope(&c, "app").unwrap();
        assert_eq!(choose_shard(&s, "acme", None).unwrap(), Some(2));
        assert_eq!(choose_shard(&s, "globex", None).unwrap(), Some(1));

        let uuid_keyed = config(
            r#"
[databases.app]
shards = ["s0", "s1"]
[databases.app.tenancy]
model = "row"
[databases.app.sharded_tables.orders]
column = "tenant_id"
type = "uuid"
"#,
        );
        let s = scope(&uuid_keyed, "app").unwrap();
        let e = choose_shard(&s, "acme", None).unwrap_err().to_string();
        assert!(
            e.starts_with("tenant `acme` cannot be placed by sharded table `orders` (key column `tenant_id`, type uuid)")
                && e.ends_with("give the shard with --shard"),
            "{e}"
        );
        assert_eq!(choose_shard(&s, "acme", Some(1)).unwrap(), Some(1));
    }

    #[test]
    fn data_places_are_every_shard_and_every_other_placement_cluster() {
        let c = config(
            r#"
[databases.app]
shards = ["s0", "s1"]
[databases.app.placement.audit]
cluster = "s2"
tables = ["audit_*"]
[databases.app.tenancy]
model = "row"
"#,
        );
        let s = scope(&c, "app").unwrap();
        let places = data_places(&s);
        assert_eq!(
            places,
            vec![
                Place::Shard {
                    index: 0,
                    cluster: "s0".into()
                },
                Place::Shard {
                    index: 1,
                    cluster: "s1".into()
                },
                Place::Group {
                    name: "audit".into(),
                    cluster: "s2".into()
                },
            ]
        );
        assert_eq!(places[2].to_string(), "placement group audit (cluster s2)");
        assert_eq!(places[1].to_string(), "shard 1 (cluster s1)");
    }
}
