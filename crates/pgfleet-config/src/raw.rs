//! The file as serde sees it. Leaves stay `toml::Value` so that each one is checked (and its
//! problem reported with its key path) by `load`, instead of serde stopping at the first bad value.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::placement::RawPlacement;
use crate::sharding::RawShardedTable;

use crate::tenancy::{RawMetadata, RawTenancy};

type Leaf = Option<toml::Value>;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawConfig {
    pub proxy: RawProxy,
    pub pool: RawPool,
    pub clusters: BTreeMap<String, RawCluster>,
    pub databases: BTreeMap<String, RawDatabase>,
    pub users: BTreeMap<String, RawUser>,
    pub metadata: Option<RawMetadata>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawProxy {
    pub listen: Leaf,
    pub max_client_connections: Leaf,
    pub max_message_size: Leaf,
    pub shutdown_timeout: Leaf,
    pub analysis_cache_size: Leaf,
    pub metrics_listen: Leaf,
    pub metrics_top_tenants: Leaf,
    pub merge_memory_limit: Leaf,
    pub node_id: Leaf,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawPool {
    pub pool_mode: Leaf,
    pub pool_size: Leaf,
    pub min_idle: Leaf,
    pub connect_timeout: Leaf,
    pub checkout_timeout: Leaf,
    pub idle_timeout: Leaf,
    pub server_lifetime: Leaf,
    pub prepared_statements_cache: Leaf,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawCluster {
    /// Kept as a value so that a non-array (e.g. `[clusters.main.servers]` written as a table)
    /// is reported at its path instead of failing the whole file; items become [`RawServer`]s.
    pub servers: Leaf,
    pub load_balancing: Leaf,
    pub primary_reads: Leaf,
    pub max_lag_bytes: Leaf,
    pub max_lag_time: Leaf,
    pub health_check_interval: Leaf,
    pub lag_check_interval: Leaf,
    pub ban_time: Leaf,
    pub max_ban_time: Leaf,
    pub failover_timeout: Leaf,
    pub read_volatile_allowlist: Leaf,
    pub ryw_wait: Leaf,
    pub write_quorum: Leaf,
    pub quorum_timeout: Leaf,
    pub quorum_timeout_action: Leaf,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawServer {
    pub host: Leaf,
    pub port: Leaf,
    pub role: Leaf,
    pub weight: Leaf,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawDatabase {
    pub cluster: Leaf,
    pub server_database: Leaf,
    pub pool: RawPool,
    pub tenancy: Option<RawTenancy>,
    pub shards: Leaf,
    pub default_shard: Leaf,
    pub reference_tables: Leaf,
    pub sharded_tables: BTreeMap<String, RawShardedTable>,
    pub placement: BTreeMap<String, RawPlacement>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawUser {
    pub password: Leaf,
    pub auth_method: Leaf,
    pub server_user: Leaf,
    pub server_password: Leaf,
    pub admin: Leaf,
    pub default_role: Leaf,
    pub default_consistency: Leaf,
    pub cross_shard_writes: Leaf,
    pub pool: RawPool,
    pub tenant: Leaf,
}
