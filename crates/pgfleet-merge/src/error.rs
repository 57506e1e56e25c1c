//! Errors of the cross-shard merge, each with the SQLSTATE the client sees.

/// Why a merge cannot go on. The proxy sends the client an ErrorResponse with
/// [`MergeError::sqlstate`] and the message, and drops the shards' remaining rows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// A result pgfleet cannot merge correctly (a column type it cannot compare or sum exactly).
    #[error("{0} is not supported in a query that reads several shards")]
    Unsupported(String),
    /// Grouping, DISTINCT or buffered rows need more memory than allowed.
    #[error("the cross-shard merge needs more than {limit} bytes of memory for {what}; raise proxy.merge_memory_limit or narrow the query")]
    MemoryLimit {
        /// The configured limit in bytes (`proxy.merge_memory_limit`).
        limit: usize,
        /// What was buffering ("GROUP BY groups", "DISTINCT rows", …).
        what: &'static str,
    },
    /// A value from a shard that does not decode as its announced type.
    #[error("{0}")]
    BadValue(String),
    /// Shards disagree or break the protocol (different columns, rows before RowDescription…).
    #[error("{0}")]
    Protocol(String),
    /// A shard's rows are not in the ORDER BY order the merge expects (e.g. a non-"C" collation).
    #[error("shard {shard} returned rows out of ORDER BY order for key {key}: the merge compares text bytewise (COLLATE \"C\"); the shard's collation orders differently")]
    OutOfOrder {
        /// The shard.
        shard: usize,
        /// 1-based ORDER BY key.
        key: usize,
    },
    /// An int8 sum or count beyond bigint.
    #[error("bigint out of range")]
    Overflow,
    /// A negative LIMIT or OFFSET parameter.
    #[error("{0} must not be negative")]
    NegativeLimit(&'static str),
}

impl MergeError {
    /// The SQLSTATE the client sees.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            MergeError::Unsupported(_) | MergeError::OutOfOrder { .. } => "0A000",
            MergeError::MemoryLimit { .. } => "53200",
            MergeError::BadValue(_) | MergeError::Protocol(_) => "XX000",
            MergeError::Overflow => "22003",
            MergeError::NegativeLimit("LIMIT") => "2201W",
            MergeError::NegativeLimit(_) => "2201X",
        }
    }
}

impl From<pgfleet_wire::WireError> for MergeError {
    fn from(e: pgfleet_wire::WireError) -> MergeError {
        MergeError::Protocol(format!("malformed message from a shard: {e}"))
    }
}
