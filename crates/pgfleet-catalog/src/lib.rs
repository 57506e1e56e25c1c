//! pgfleet's catalog: where each database's tables live, and which shard a shard key value
//! belongs to. Pure data and functions, built from a validated [`pgfleet_config::Config`]; no
//! tokio, no I/O.
//!
//! Module map:
//! - [`topology`]: [`Catalog`] → [`DatabaseTopology`] (one cluster or [`Shards`]), placement
//!   groups, [`TableLocation`] of a table, `shard_for(table, value)`;
//! - [`shard_map`]: [`ShardMap`] / [`ShardFunction`] — hash, range, list;
//! - [`hash`]: PostgreSQL's hash-partitioning hash functions, bit for bit;
//! - [`key`]: shard key values from wire bytes (text or binary format), [`parse_key`];
//! - [`ids`]: the layout of `pgfleet.id()` (globally unique 64-bit ids) and its SQL per shard;
//! - `error`: [`CatalogError`].
//!
//! Key types and values ([`ShardKeyType`], [`ShardKeyValue`], text parsing) are defined in
//! `pgfleet-config`, which needs them to validate range bounds and list values, and re-exported
//! here.
//!
//! Routing by SQL is `pgfleet-sql`'s (`shard`), merging `pgfleet-merge`'s, execution the proxy's.
#![warn(missing_docs)]

mod error;
pub mod hash;
pub mod ids;
pub mod key;
pub mod shard_map;
pub mod topology;

pub use error::CatalogError;
pub use key::{parse_key, ValueFormat};
pub use pgfleet_config::{InvalidKeyValue, KeyInput, ShardKeyType, ShardKeyValue, ShardRange};
pub use shard_map::{ListMap, RangeMap, ShardFunction, ShardMap};
pub use topology::{
    Catalog, DatabaseTopology, Layout, PlacementGroup, ShardedTable, Shards, TableLocation,
};
