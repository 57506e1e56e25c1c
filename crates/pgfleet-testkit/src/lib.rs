//! Test-only kit: real PostgreSQL clusters started from the local server binaries, and pgfleet
//! itself in-process in front of them.
//!
//! Finding the binaries, the `postgres` OS user when root, initdb, running the postmaster as our
//! child, pg_basebackup and psql live in `pgfleet-localpg` (shared with `pgfleet sandbox`); this
//! crate adds what only tests want: a cached template, free ports, unique directories, cleanup on
//! drop.
//!
//! Module map:
//! - [`binaries`]: re-exports [`find_pg_bin`] (`PGFLEET_PG_BIN`, `pg_config --bindir`, newest
//!   `/usr/lib/postgresql/*/bin`).
//! - `template`: one initdb'd data directory per PostgreSQL version, built once under a
//!   cross-process file lock; every cluster is a copy of it.
//! - `port`: free TCP ports on 127.0.0.1.
//! - [`options`]: per-cluster settings and pg_hba.conf lines.
//! - [`cluster`]: the public [`Cluster`] handle (start, psql, replica, stop/kill/promote, drop).
//! - [`error`]: the [`Error`] type (from `pgfleet-localpg`).
//! - [`proxy`]: [`TestProxy`], pgfleet itself in-process on port 0, and [`try_connect`].
//! - [`shared`]: [`SharedCluster`], one cluster for the tests of a binary that run at once.
//!
//! Everything is synchronous (std processes and blocking waits), so it works from `#[test]` and from
//! inside a `#[tokio::test]` runtime alike.
//!
//! Environment: `PGFLEET_PG_BIN` (binaries directory), `PGFLEET_TESTKIT_DIR` (base directory, default
//! `/dev/shm/pgfleet-testkit` when /dev/shm exists, else `/tmp/pgfleet-testkit`; keep it short, unix
//! socket paths are limited to 107 bytes),
//! `PGFLEET_TESTKIT_KEEP` (set it to keep cluster directories after drop, for debugging).

pub mod binaries;
pub mod cluster;
pub mod error;
pub mod options;
mod port;
pub mod proxy;
pub mod shared;
mod template;

pub use binaries::find_pg_bin;
pub use cluster::Cluster;
pub use error::Error;
pub use options::ClusterOptions;
pub use proxy::{try_connect, TestProxy};
pub use shared::SharedCluster;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
