//! `pgfleet migrate`: versioned schema migrations applied across every target of a pgfleet
//! database — its shared target(s) and every tenant schema or tenant database — with checksums,
//! per-target advisory locks, resume, dry runs and a linter for unsafe DDL. See docs/migrate.md.
//!
//! Module map, in the order a run uses them:
//! - [`source`]: migration files on disk (`V0001__name.sql`, `.down.sql`, folders, headers);
//! - [`script`]: each script parsed with the PostgreSQL grammar (statements, which cannot run in
//!   a transaction);
//! - [`checksum`]: SHA-256 over normalized text;
//! - [`lint`]: rules for unsafe DDL on the parse trees;
//! - [`target`]: targets from the config and the tenant directory (pure);
//! - [`plan`]: what runs on one target given its history (pure);
//! - [`exec`]: visiting targets with bounded concurrency per server; locks, transactions, retries;
//! - [`fleet`]: one database's fleet, the fleet ledger, [`bring_tenant_to_current`];
//! - [`report`]: compact status and plan summaries for thousands of targets (pure);
//! - `error`: [`MigrateError`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checksum;
mod error;
pub mod exec;
pub mod fleet;
pub mod lint;
pub mod plan;
pub mod report;
pub mod script;
pub mod source;
pub mod target;

pub use error::MigrateError;
pub use exec::{Event, EventSink, Outcome, RunOptions, TargetResult};
pub use fleet::{bring_tenant_to_current, Fleet, FleetReport, Selection};
pub use plan::Command;
pub use source::{Migration, MigrationSet, TargetKind};
pub use target::Target;
