//! [`ShardRouteError`]: why a statement cannot be routed by shard key. Every variant knows the
//! SQLSTATE the client sees; messages are lower-case and name the tables, columns and values.

use pgfleet_catalog::CatalogError;

/// Why a statement of a sharded (or placed) database cannot be routed. The proxy refuses the
/// statement with [`ShardRouteError::sqlstate`] and the message; nothing was sent anywhere.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardRouteError {
    /// The text does not parse (or nests too deeply for the parser). SQLSTATE 42601.
    #[error("cannot route a statement that does not parse: {0}")]
    Parse(String),
    /// A shard key literal, parameter or array is not a valid value of the key's type
    /// (the server would refuse it too). SQLSTATE 22P02.
    #[error("shard key {key}: {reason}")]
    InvalidKey {
        /// `table.column` of the shard key.
        key: String,
        /// The catalog's message, naming the type and value.
        reason: String,
    },
    /// An inserted row (or a `shard_key` hint, or the new key of an UPDATE) has a key value
    /// that belongs to no shard (outside every range, unlisted without a default). SQLSTATE
    /// 23514, as PostgreSQL reports a row that fits no partition.
    #[error("{0}")]
    NoShard(String),
    /// The statement needs data from several shards in a way the shards cannot answer
    /// separately (issue 4 §4). SQLSTATE 0A000.
    #[error("{construct} cannot be answered correctly across shards (tables {tables}); restrict every sharded table to the same shard by its shard key, or send it to one shard with /* pgfleet: shard=N */")]
    CrossShard {
        /// What is wrong, e.g. "a join of sharded tables not on their shard keys".
        construct: String,
        /// The tables involved, as `a`, `b`.
        tables: String,
    },
    /// Tables of a placement group mixed with tables that live elsewhere. SQLSTATE 0A000.
    #[error("a statement cannot mix tables that live on different clusters: {tables}")]
    PlacementMix {
        /// Each table with where it lives, e.g. "`audit_log` (cluster `audit`), `orders` (shards)".
        tables: String,
    },
    /// An INSERT into a sharded table whose rows' shard cannot be known. SQLSTATE 0A000.
    #[error("insert into sharded table `{table}`: {reason}")]
    InsertKey {
        /// The sharded table.
        table: String,
        /// What is missing, naming the key column.
        reason: String,
    },
    /// An UPDATE (or `ON CONFLICT DO UPDATE`) that could move a row to another shard.
    /// SQLSTATE 0A000.
    #[error("update of shard key `{table}.{column}` {detail}: moving a row between shards is refused; delete the row and insert it again instead")]
    ShardKeyUpdate {
        /// The sharded table.
        table: String,
        /// Its shard key column.
        column: String,
        /// Why, e.g. "to a value on shard 2 for rows on shard 0".
        detail: String,
    },
    /// A shard number from a hint or `pgfleet.shard` that does not exist, or a setting value
    /// that is not a number. SQLSTATE 22023.
    #[error("{source_name}: {reason}")]
    BadShardChoice {
        /// `hint shard`, `hint shard_key`, `setting pgfleet.shard`, `setting pgfleet.shard_key`.
        source_name: &'static str,
        /// What is wrong, with the value and the shard count.
        reason: String,
    },
    /// A Bind message supplied fewer parameters than the statement uses. SQLSTATE 08P01, as
    /// PostgreSQL reports it.
    #[error("bind message supplies {supplied} parameters, but the statement uses parameter ${number} as a shard key")]
    MissingParameter {
        /// The parameter number (`$n`).
        number: u32,
        /// How many the Bind supplied.
        supplied: usize,
    },
    /// A construct pgfleet does not route on a sharded database. SQLSTATE 0A000.
    #[error("{what} is not supported on {tables}")]
    Unsupported {
        /// The construct, e.g. "MERGE".
        what: String,
        /// Where, e.g. "sharded table `orders`".
        tables: String,
    },
    /// `COMMIT PREPARED`, `ROLLBACK PREPARED` or `PREPARE TRANSACTION` of one of pgfleet's
    /// two-phase-commit names. SQLSTATE 42501.
    #[error("transaction '{0}' is one of pgfleet's two-phase commits: only pgfleet commits or rolls it back, following its decision log (SHOW TRANSACTIONS on the admin console lists the unfinished ones)")]
    OwnTransaction(String),
}

impl ShardRouteError {
    /// The SQLSTATE the client sees for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ShardRouteError::Parse(_) => "42601",
            ShardRouteError::InvalidKey { .. } => "22P02",
            ShardRouteError::NoShard(_) => "23514",
            ShardRouteError::CrossShard { .. }
            | ShardRouteError::PlacementMix { .. }
            | ShardRouteError::InsertKey { .. }
            | ShardRouteError::ShardKeyUpdate { .. }
            | ShardRouteError::Unsupported { .. } => "0A000",
            ShardRouteError::BadShardChoice { .. } => "22023",
            ShardRouteError::MissingParameter { .. } => "08P01",
            ShardRouteError::OwnTransaction(_) => "42501",
        }
    }

    /// A catalog error met while computing a shard for `key` (`table.column`).
    pub(crate) fn from_catalog(key: &str, e: CatalogError) -> ShardRouteError {
        match e {
            CatalogError::InvalidKey(e) => ShardRouteError::InvalidKey {
                key: key.to_string(),
                reason: e.to_string(),
            },
            CatalogError::WrongKeyType { .. } => ShardRouteError::InvalidKey {
                key: key.to_string(),
                reason: e.to_string(),
            },
            other => ShardRouteError::NoShard(other.to_string()),
        }
    }
}
