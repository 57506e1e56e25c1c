//! [`Catalog`]: per database, where its tables live — one cluster, or shards (sharded tables,
//! reference tables, the default shard) — plus placement groups on other clusters.

use std::collections::{BTreeMap, BTreeSet};

use pgfleet_config::{Config, ShardKeyValue, TablePattern};

use crate::key::ValueFormat;
use crate::{CatalogError, ShardMap};

/// The topology of every configured database, built once per config snapshot. Immutable.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Catalog {
    databases: BTreeMap<String, DatabaseTopology>,
}

impl Catalog {
    /// The catalog of a validated config. Fails only on a config assembled by hand that
    /// validation would have refused (e.g. a shard map whose ranges overlap).
    pub fn from_config(config: &Config) -> Result<Catalog, CatalogError> {
        let mut databases = BTreeMap::new();
        for (name, db) in &config.databases {
            let layout = match &db.sharding {
                None => Layout::Single {
                    cluster: db.cluster.clone(),
                },
                Some(s) => {
                    let mut sharded_tables = BTreeMap::new();
                    for (table, t) in &s.sharded_tables {
                        let key = format!("{table}.{}", t.column);
                        let map = ShardMap::from_config(key, t, s.shards.len())?;
                        sharded_tables.insert(
                            table.clone(),
                            ShardedTable {
                                name: table.clone(),
                                column: t.column.clone(),
                                map,
                            },
                        );
                    }
                    Layout::Sharded(Shards {
                        clusters: s.shards.clone(),
                        default_shard: s.default_shard,
                        reference_tables: s.reference_tables.iter().cloned().collect(),
                        sharded_tables,
                    })
                }
            };
            let placement = db
                .placement
                .iter()
                .map(|(group, p)| PlacementGroup {
                    name: group.clone(),
                    cluster: p.cluster.clone(),
                    tables: p.tables.clone(),
                })
                .collect();
            databases.insert(
                name.clone(),
                DatabaseTopology {
                    name: name.clone(),
                    server_database: db.server_database.clone(),
                    layout,
                    placement,
                },
            );
        }
        Ok(Catalog { databases })
    }

    /// The topology of database `name` (the name clients connect to).
    pub fn database(&self, name: &str) -> Result<&DatabaseTopology, CatalogError> {
        self.databases
            .get(name)
            .ok_or_else(|| CatalogError::UnknownDatabase(name.to_string()))
    }

    /// Every database, by name.
    pub fn databases(&self) -> impl Iterator<Item = &DatabaseTopology> {
        self.databases.values()
    }
}

/// One database's layout and placement groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseTopology {
    name: String,
    server_database: String,
    layout: Layout,
    placement: Vec<PlacementGroup>,
}

/// Where a database's data lives, apart from its placement groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One cluster holds every table that is not placed elsewhere.
    Single {
        /// The cluster's name.
        cluster: String,
    },
    /// The database is sharded.
    Sharded(Shards),
}

/// A sharded database's shards and tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shards {
    clusters: Vec<String>,
    default_shard: usize,
    reference_tables: BTreeSet<String>,
    sharded_tables: BTreeMap<String, ShardedTable>,
}

impl Shards {
    /// Cluster names in shard order: shard `i` is `clusters()[i]`.
    pub fn clusters(&self) -> &[String] {
        &self.clusters
    }

    /// The shard holding tables that are neither sharded, reference, nor placed.
    pub fn default_shard(&self) -> usize {
        self.default_shard
    }

    /// Reference tables (a full copy on every shard).
    pub fn reference_tables(&self) -> &BTreeSet<String> {
        &self.reference_tables
    }

    /// Sharded tables by name.
    pub fn sharded_tables(&self) -> &BTreeMap<String, ShardedTable> {
        &self.sharded_tables
    }
}

/// A sharded table: its shard key column and shard map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardedTable {
    name: String,
    column: String,
    map: ShardMap,
}

impl ShardedTable {
    /// The table name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shard key column.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// The shard map.
    pub fn map(&self) -> &ShardMap {
        &self.map
    }
}

/// A group of tables on its own cluster (vertical partitioning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementGroup {
    name: String,
    cluster: String,
    tables: Vec<TablePattern>,
}

impl PlacementGroup {
    /// The group's name in the config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cluster that holds the group's tables.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Table names and globs.
    pub fn tables(&self) -> &[TablePattern] {
        &self.tables
    }

    /// True when `table` is one of the group's tables.
    pub fn contains(&self, table: &str) -> bool {
        self.tables.iter().any(|p| p.matches(table))
    }
}

/// Where one table of a database lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableLocation<'a> {
    /// A sharded table: each row on the shard its key picks.
    Sharded(&'a ShardedTable),
    /// A reference table: a full copy on every shard.
    Reference,
    /// A table of a sharded database that is not sharded, reference, nor placed: on this shard.
    DefaultShard(usize),
    /// A table in a placement group: on that group's cluster.
    Placed(&'a PlacementGroup),
    /// A table of a single-cluster database that is not placed: on the database's cluster.
    Home(&'a str),
}

impl DatabaseTopology {
    /// The name clients connect to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database name on every server (shards and placement clusters alike).
    pub fn server_database(&self) -> &str {
        &self.server_database
    }

    /// One cluster or shards.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The shards, when the database is sharded.
    pub fn shards(&self) -> Option<&Shards> {
        match &self.layout {
            Layout::Sharded(s) => Some(s),
            Layout::Single { .. } => None,
        }
    }

    /// The placement groups, in name order.
    pub fn placement(&self) -> &[PlacementGroup] {
        &self.placement
    }

    /// The cluster of shard `shard`, when the database is sharded and the shard exists.
    pub fn shard_cluster(&self, shard: usize) -> Option<&str> {
        self.shards()?.clusters.get(shard).map(String::as_str)
    }

    /// Where `table` (its name as PostgreSQL stores it, without schema) lives. Sharded and
    /// reference tables are matched by exact name, then placement groups (config validation
    /// guarantees at most one match, and no overlap with sharded or reference tables), then the
    /// default shard or the database's own cluster.
    pub fn table_location(&self, table: &str) -> TableLocation<'_> {
        if let Layout::Sharded(s) = &self.layout {
            if let Some(t) = s.sharded_tables.get(table) {
                return TableLocation::Sharded(t);
            }
            if s.reference_tables.contains(table) {
                return TableLocation::Reference;
            }
        }
        if let Some(group) = self.placement.iter().find(|g| g.contains(table)) {
            return TableLocation::Placed(group);
        }
        match &self.layout {
            Layout::Sharded(s) => TableLocation::DefaultShard(s.default_shard),
            Layout::Single { cluster } => TableLocation::Home(cluster),
        }
    }

    /// The sharded table `table`, or [`CatalogError::NotShardedTable`].
    pub fn sharded_table(&self, table: &str) -> Result<&ShardedTable, CatalogError> {
        self.shards()
            .and_then(|s| s.sharded_tables.get(table))
            .ok_or_else(|| CatalogError::NotShardedTable {
                database: self.name.clone(),
                table: table.to_string(),
            })
    }

    /// The shard of the row of sharded table `table` whose key is `value`.
    pub fn shard_for(&self, table: &str, value: &ShardKeyValue) -> Result<usize, CatalogError> {
        self.sharded_table(table)?.map.shard_for(value)
    }

    /// [`DatabaseTopology::shard_for`] with the key as it comes in a Bind message or SQL literal.
    pub fn shard_for_wire(
        &self,
        table: &str,
        format: ValueFormat,
        bytes: &[u8],
    ) -> Result<usize, CatalogError> {
        self.sharded_table(table)?.map.shard_for_wire(format, bytes)
    }
}
