//! Finding the PostgreSQL server binaries (implemented in `pgfleet-localpg`).

pub use pgfleet_localpg::{find_pg_bin, PG_BIN_ENV};
