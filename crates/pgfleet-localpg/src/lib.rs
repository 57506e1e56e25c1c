//! Local PostgreSQL clusters from the server binaries: used by the test kit (throwaway clusters)
//! and by `pgfleet sandbox` (a persistent local fleet). Synchronous (std processes and blocking
//! waits), so it works from plain threads and, via `spawn_blocking`, from async code.
//!
//! Module map:
//! - [`binaries`]: finds the server binaries (`PGFLEET_PG_BIN`, `pg_config --bindir`, newest
//!   `/usr/lib/postgresql/*/bin`) and reads their version.
//! - [`os_user`]: runs initdb/postgres/pg_basebackup/pg_ctl as the `postgres` OS user when we are
//!   root (PostgreSQL refuses to run as root), as ourselves otherwise; [`run`] for one-shot tools.
//! - [`env`](mod@env): [`PgEnv`] (binaries + OS user) with initdb, pg_basebackup replicas, promote.
//! - [`conf`]: appending postgresql.conf settings, replacing pg_hba.conf.
//! - [`postmaster`]: the [`Postmaster`], a server spawned as our direct child (so we can signal and
//!   reap it), started with a readiness wait; stopping servers left over by an earlier process.
//! - [`psql`](mod@psql): running SQL through `psql`.
//! - [`error`]: the crate's [`Error`].

pub mod binaries;
pub mod conf;
pub mod env;
pub mod error;
pub mod os_user;
pub mod postmaster;
pub mod psql;

pub use binaries::{find_pg_bin, PgBinaries, PG_BIN_ENV};
pub use env::{check_socket_path, InitDb, PgEnv, MAX_SOCKET_PATH};
pub use error::Error;
pub use os_user::{run, RunAs};
pub use postmaster::{leftover_pid, stop_leftover, Postmaster, StartFailure, StartOptions};
pub use psql::{psql, PsqlTarget};

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
