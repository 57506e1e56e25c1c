//! [`CatalogError`]: everything a catalog lookup or construction can refuse.

use pgfleet_config::{InvalidKeyValue, ShardKeyType};

/// Why a catalog lookup or construction failed. Messages are lower-case and name the key
/// (`table.column`), value and reason; values come from the client itself, never from secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// A value is not valid for its shard key type (bad literal, wrong binary length, …).
    #[error(transparent)]
    InvalidKey(#[from] InvalidKeyValue),
    /// A value of another type was passed for a shard key.
    #[error("{key}: a {found} value cannot be a {expected} shard key")]
    WrongKeyType {
        /// `table.column` of the shard key.
        key: String,
        /// The key's type.
        expected: ShardKeyType,
        /// What was passed, e.g. "text".
        found: &'static str,
    },
    /// A valid value that maps to no shard (outside every range, in no list without a default,
    /// NULL under range sharding). A routing error: the statement must be refused.
    #[error("{key}: no shard for value `{value}`: {reason}")]
    NoShard {
        /// `table.column` of the shard key.
        key: String,
        /// The value, as PostgreSQL would print it (`NULL` for null).
        value: String,
        /// Why, e.g. "below the first range [0, 1000)".
        reason: String,
    },
    /// The database is not in the config.
    #[error("database `{0}` is not in the config")]
    UnknownDatabase(String),
    /// A shard was asked for a table that is not sharded.
    #[error("table `{table}` is not a sharded table of database `{database}`")]
    NotShardedTable {
        /// The database.
        database: String,
        /// The table.
        table: String,
    },
    /// A shard map that cannot work (only from hand-built input: validated configs are fine).
    #[error("invalid shard map for {key}: {reason}")]
    InvalidShardMap {
        /// `table.column` of the shard key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}
