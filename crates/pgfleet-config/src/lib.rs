//! pgfleet's configuration: the TOML file turned into a validated, immutable [`Config`].
//!
//! Module map, in the order data flows:
//! - `raw`: the file as serde sees it (leaves kept as TOML values);
//! - `load`: parse, report unknown keys, check every value and cross-reference → [`Config`];
//! - `replication`: a cluster's read-routing keys (load balancing, lag, bans, allowlist);
//! - `reader`: single-value checks (counts, durations, sizes, enums) that record [`Problem`]s;
//! - [`units`]: duration and byte-size syntax;
//! - `secret`: password formats ([`Secret`]);
//! - `model`: the validated model and pool override precedence;
//! - `problem`: [`Problem`] and [`ConfigErrors`] (every problem, each with its key path);
//! - `keys`: [`KEYS`], the one list of documented keys (docs/config.md is checked against it);
//! - `diff`: [`ReloadDiff`], what a reload changes.
//!
//! No tokio, no I/O beyond [`Config::load`] reading the file.
#![warn(missing_docs)]

mod diff;
mod keys;
mod load;
mod model;
mod problem;
mod raw;
mod reader;
mod replication;
mod secret;
pub mod units;

#[cfg(test)]
mod tests;

pub use diff::ReloadDiff;
pub use keys::{path_matches, KeyDoc, KEYS};
pub use load::ADMIN_DATABASE;
pub use model::{
    AuthMethod, ClusterConfig, Config, Consistency, DatabaseConfig, DefaultRole, LoadBalancing,
    PoolMode, PoolOverrides, PoolSettings, PrimaryReads, ProxyConfig, ServerConfig, ServerRole,
    UserConfig,
};
pub use problem::{ConfigErrors, Problem};
pub use secret::Secret;
