//! pgfleet's configuration: the TOML file turned into a validated, immutable [`Config`].
//!
//! Module map, in the order data flows:
//! - `raw`: the file as serde sees it (leaves kept as TOML values);
//! - `load`: parse, report unknown keys, check every value and cross-reference → [`Config`];
//! - `replication`: a cluster's read-routing keys (load balancing, lag, bans, allowlist);
//! - `sharding`: a database's shards, sharded and reference tables;
//! - `placement`: placement groups (tables on other clusters);
//! - `shard_key`: shard key types and values, and their text form ([`ShardKeyValue`]);
//! - `calendar`: PostgreSQL's date/timestamp representation and ISO 8601 input;
//! - `table_pattern`: table name globs of placement groups ([`TablePattern`]);
//! - `reader`: single-value checks (counts, durations, sizes, enums) that record [`Problem`]s;
//! - [`units`]: duration and byte-size syntax;
//! - `secret`: password formats ([`Secret`]);
//! - `tenancy`: `[metadata]`, `[databases.NAME.tenancy]`, `users.NAME.tenant`, tenant names;
//! - `model`: the validated model and pool override precedence;
//! - `problem`: [`Problem`] and [`ConfigErrors`] (every problem, each with its key path);
//! - `keys`: [`KEYS`], the one list of documented keys (docs/config.md is checked against it);
//! - `diff`: [`ReloadDiff`], what a reload changes.
//!
//! No tokio, no I/O beyond [`Config::load`] reading the file.
#![warn(missing_docs)]

mod calendar;
mod diff;
mod keys;
mod load;
mod model;
mod placement;
mod problem;
mod raw;
mod reader;
mod replication;
mod secret;
mod shard_key;
mod sharding;
mod table_pattern;
mod tenancy;
pub mod units;

#[cfg(test)]
mod sharding_tests;
#[cfg(test)]
mod tenancy_tests;
#[cfg(test)]
mod tests;

pub use diff::ReloadDiff;
pub use keys::{path_matches, KeyDoc, KEYS};
pub use load::ADMIN_DATABASE;
pub use model::{
    AuthMethod, ClusterConfig, Config, Consistency, DatabaseConfig, DefaultRole, LoadBalancing,
    PoolMode, PoolOverrides, PoolSettings, PrimaryReads, ProxyConfig, QuorumTimeoutAction,
    ServerConfig, ServerRole, UserConfig, MAX_METRICS_TOP_TENANTS, MAX_NODE_ID,
};
pub use placement::PlacementGroup;
pub use problem::{ConfigErrors, Problem};
pub use secret::Secret;
pub use shard_key::{InvalidKeyValue, KeyInput, ShardKeyType, ShardKeyValue};
pub use sharding::{
    ShardList, ShardLists, ShardMethod, ShardRange, ShardedTableConfig, ShardingConfig,
};
pub use table_pattern::TablePattern;
pub use tenancy::{
    check_tenant_name, MetadataConfig, TenancyConfig, TenantModel, TenantSource, TenantSwitch,
    TENANT_NAME_MAX, TENANT_PLACEHOLDER,
};
