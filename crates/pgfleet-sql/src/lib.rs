//! SQL analysis on the real PostgreSQL grammar (pg_query): which statements change session state,
//! and which may run on a replica (read/write splitting).
//!
//! In transaction pooling a client's statements run on whichever server is free, so the proxy must
//! know, per SQL text, what a statement does to the *session*: remember and replay settings, pin
//! the client to its server when the state cannot be replayed, and follow SQL-level `DEALLOCATE`.
//!
//! Module map (in the order a query flows through them):
//! - [`prefilter`]: allocation-free keyword check that lets most queries skip the parser.
//! - [`analyze`]: parse with pg_query and classify each top-level statement.
//! - `walk` (+ generated `children`): explicit-stack walk over every node of a statement.
//! - [`effect`]: the result types ([`SessionEffect`], [`PinReason`], [`TransactionOp`], [`Analysis`]).
//! - [`cache`]: the [`Analyzer`], prefilter + bounded LRU cache of analyses keyed by exact text,
//!   and a second bounded LRU cache of classifications ([`Analyzer::classify`]).
//! - [`classify`]: read/write classification ([`Classification`], [`Target`], [`WriteReason`],
//!   [`TxControl`]): may a replica serve this text, or must the primary?
//! - `read_walk`: explicit-stack walk of a read statement for hidden writes (FOR UPDATE, modifying
//!   CTEs, SELECT INTO, nextval/setval, advisory locks) and its function calls.
//! - [`hint`]: `/* pgfleet: role=… consistency=… shard=… */` comment hints ([`Hints`]).
//! - [`shard`]: routing by shard key in sharded databases ([`shard::ShardRouter`],
//!   [`shard::shard_route`] → [`shard::ShardRoute`]).
//! - [`tenant_guard`]: what a text could do to a tenant context ([`tenant_guard::TenantFacts`]) and
//!   whether a tenant session may run it ([`tenant_guard::TenantRules`]), cached by text.
//! - [`merge_plan`]: cross-shard SELECT planning ([`merge_plan::plan_select`] → per-shard SQL +
//!   [`merge_plan::MergePlan`]).
#![forbid(unsafe_code)]

pub mod analyze;
pub mod cache;
#[allow(clippy::all)]
mod children;
pub mod classify;
pub mod effect;
pub mod hint;
pub mod literals;
pub mod merge_plan;
pub mod own_names;
pub mod prefilter;
mod read_walk;
pub mod shard;
pub mod tenant_guard;
mod walk;

pub use analyze::analyze_uncached;
pub use cache::Analyzer;
pub use classify::{classify_uncached, Classification, Target, TxControl, WriteReason};
pub use effect::{Analysis, PinReason, SessionEffect, TransactionOp};
pub use hint::{parse_hints, Hints};
pub use prefilter::{may_affect_session, may_control_transaction};
