//! Why a SELECT cannot be planned across shards.

/// A SELECT that pgfleet cannot answer correctly over several shards, or that PostgreSQL itself
/// would reject for a reason the planner has to know about.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MergePlanError {
    /// The text does not parse (pg_query's message).
    #[error("syntax error: {0}")]
    Parse(String),
    /// A construct whose cross-shard answer would differ from one server's (SQLSTATE 0A000).
    #[error("{construct} is not supported in a query that reads several shards{}", tables_suffix(.tables))]
    Unsupported {
        /// The construct, e.g. "window function `row_number()`".
        construct: String,
        /// The tables the statement reads, for the message.
        tables: Vec<String>,
    },
    /// An error PostgreSQL raises as well, reported before any shard is asked.
    #[error("{message}")]
    Invalid {
        /// SQLSTATE PostgreSQL uses for it.
        sqlstate: &'static str,
        /// PostgreSQL's message.
        message: String,
    },
}

fn tables_suffix(tables: &[String]) -> String {
    if tables.is_empty() {
        String::new()
    } else {
        format!(" (tables: {})", tables.join(", "))
    }
}

impl MergePlanError {
    /// The SQLSTATE the client sees.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            MergePlanError::Parse(_) => "42601",
            MergePlanError::Unsupported { .. } => "0A000",
            MergePlanError::Invalid { sqlstate, .. } => sqlstate,
        }
    }
}
