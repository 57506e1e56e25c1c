//! Replication routing. The decisions are pure (no tokio, no I/O): which endpoint takes writes, which
//! serves a read, and what pgfleet knows about each endpoint. The I/O monitor fills a
//! [`ClusterView`] from health checks (`pg_is_in_recovery()`), lag checks
//! (`pg_last_wal_replay_lsn()`, `pg_current_wal_lsn()`) and pool statistics; the data path asks
//! [`ClusterView::primary`] for writes and [`pick_reader`] for reads.
//!
//! - [`lsn`]: [`Lsn`], WAL positions in PostgreSQL's `X/Y` text form;
//! - [`topology`]: [`EndpointState`] (roles, health and bans, replay position and lag, load) and
//!   [`ClusterView`] (primary detection, split brain);
//! - [`select`]: [`ReadPolicy`] and [`pick_reader`] (lag limits, consistency levels,
//!   `primary_reads`, load balancing), with [`NoReader`] explaining a refusal;
//! - [`state`]: [`state::ClusterState`], what the data path and the monitor share per cluster;
//! - [`monitor`]: the I/O part, one task per cluster probing every endpoint.

pub mod lsn;
pub mod monitor;
pub mod select;
pub mod state;
pub mod topology;

pub use lsn::{Lsn, LsnParseError};
pub use select::{
    check_replica, pick_reader, NoReader, PrimaryNotUsed, ReadPolicy, SkipReason, Skipped,
};
pub use state::{ClusterSettings, ClusterState, Clusters};
pub use topology::{
    endpoint_address, BanPolicy, ClusterView, EndpointState, Health, ObservedRole, PrimaryError,
};
