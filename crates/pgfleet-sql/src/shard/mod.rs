//! Routing by shard key (issue 4 §2): which shard(s), placement cluster or reference copy a SQL
//! text goes to in a sharded database, decided on the real PostgreSQL grammar and the catalog,
//! as pure functions. The proxy carries the result out.
//!
//! Two steps, so the expensive one is cached by text: [`plan`] (parse, tables, co-location,
//! key restrictions, hints — independent of bind values) and [`ShardPlan::route`] (plug in bind
//! parameters and the session's `pgfleet.shard` / `pgfleet.shard_key`). [`shard_route`] does
//! both; [`ShardRouter`] caches plans for one topology. The rules are in docs/sharding.md,
//! "Routing".
//!
//! Module map:
//! - `shard_set`: [`shard_set::ShardSet`], the shards a restriction allows (a bit mask below 64);
//! - `scope`: table mentions grouped by query level (subqueries, CTEs, set-operation branches),
//!   with aliases, joins and CTE name visibility;
//! - `keys`: key restrictions from WHERE/ON (`=`, `IN`, `= ANY`, `IS NULL`, AND/OR) as
//!   `Pred` trees over literals and parameters;
//! - `insert`: keys of INSERT rows, `ON CONFLICT`, `SET key = …`, and per-shard INSERT texts;
//! - `plan`: [`ShardPlan`] — one analysis per statement of the text, hints, parameters;
//! - `query`: one query/DML statement — mentions, classes of co-located sharded tables, writes;
//! - `utility`: DDL, COPY and other utility statements;
//! - `placement`: placement groups (vertical partitioning) and the default route;
//! - `resolve`: [`ShardPlan::route`] — shard sets, combination, refusals;
//! - `shard_set`: the shards a restriction allows (a bit mask for shards below 64);
//! - `split`: routing INSERT rows, and the per-shard texts of a split INSERT;
//! - `copy`: [`copy_spec`], a COPY statement's table, columns and data format options;
//! - `explain`: [`explain_parts`], an EXPLAIN's options and statement, re-wrapped per shard;
//! - `kind`: [`cross_shard_kind`], how a statement runs on several shards (merge, 2PC, …);
//! - `array`: text and binary array values for `= ANY(…)`;
//! - [`params`], [`route`](mod@route), [`error`](mod@error), [`cache`](mod@cache): the API types.

mod array;
pub mod cache;
mod copy;
pub mod error;
mod explain;
mod insert;
mod keys;
mod kind;
pub mod params;
mod placement;
mod plan;
mod query;
mod resolve;
pub mod route;
mod scope;
mod shard_set;
mod split;
mod utility;

pub use cache::{CachedPlan, CrossShardPlan, ShardRouter, TextPlan};
pub use copy::{copy_spec, CopyFormat, CopySpec};
pub use error::ShardRouteError;
pub use explain::{explain_parts, Explain};
pub use kind::{cross_shard_kind, CrossShardKind};
pub use params::{BindParams, Param, ShardSettings};
pub use plan::{plan, ShardPlan};
pub use route::{InsertPart, InsertSplit, ReferenceAccess, ShardRoute};

use pgfleet_catalog::DatabaseTopology;

/// Routes `sql` for database `db` with these bind values and session settings (no cache: use
/// [`ShardRouter`] on the data path).
pub fn shard_route(
    sql: &str,
    db: &DatabaseTopology,
    params: BindParams<'_>,
    settings: &ShardSettings,
) -> Result<ShardRoute, ShardRouteError> {
    plan(sql, db)?.route(db, params, settings)
}
