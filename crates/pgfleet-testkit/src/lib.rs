//! Test-only kit: real PostgreSQL clusters started from the local server binaries.
//!
//! Module map:
//! - [`binaries`]: finds the server binaries (`PGFLEET_PG_BIN`, `pg_config --bindir`, newest
//!   `/usr/lib/postgresql/*/bin`) and reads their version.
//! - `os_user`: runs initdb/postgres/pg_basebackup/pg_ctl as the `postgres` OS user when we are root
//!   (PostgreSQL refuses to run as root), as ourselves otherwise.
//! - `template`: one initdb'd data directory per PostgreSQL version, built once under a
//!   cross-process file lock; every cluster is a copy of it.
//! - `port`: free TCP ports on 127.0.0.1.
//! - `server`: spawns `postgres` as our direct child, waits until it accepts connections, stops it.
//! - [`options`]: per-cluster settings and pg_hba.conf lines.
//! - [`cluster`]: the public [`Cluster`] handle (start, psql, replica, stop/kill/promote, drop).
//! - [`error`]: the crate's [`Error`].
//!
//! Everything is synchronous (std processes and blocking waits), so it works from `#[test]` and from
//! inside a `#[tokio::test]` runtime alike.
//!
//! Environment: `PGFLEET_PG_BIN` (binaries directory), `PGFLEET_TESTKIT_DIR` (base directory, default
//! `/tmp/pgfleet-testkit`; keep it short, unix socket paths are limited to 107 bytes),
//! `PGFLEET_TESTKIT_KEEP` (set it to keep cluster directories after drop, for debugging).

pub mod binaries;
pub mod cluster;
pub mod error;
pub mod options;
mod os_user;
mod port;
mod server;
mod template;

pub use binaries::find_pg_bin;
pub use cluster::Cluster;
pub use error::Error;
pub use options::ClusterOptions;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
