//! Names pgfleet gives its own objects on the servers. Clients share those servers, so these
//! names are refused from clients where running, replacing or finishing them would reach
//! another session's work (`tenant_guard`, `shard::plan`).

/// Start of the names of the server-side prepared statements pgfleet makes for its clients and
/// itself (`pgfleet_1`, …). They are shared by every session that uses a server connection, so a
/// tenant must not run, replace or drop them by name from SQL.
pub const SERVER_STATEMENT_PREFIX: &str = "pgfleet_";

/// Start of the names of pgfleet's two-phase-commit transactions on the servers
/// (`pgfleet_<node>_<start>_<n>`): only pgfleet commits or rolls them back, following its
/// decision log.
pub const TWO_PHASE_GID_PREFIX: &str = "pgfleet_";
