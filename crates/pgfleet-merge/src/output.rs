//! What the merge hands back to the proxy, and the per-execution limits it needs.

use bytes::Bytes;
use pgfleet_sql::merge_plan::{LimitValue, MergePlan};

use crate::error::MergeError;

/// One encoded message for the client, ready to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// The RowDescription one server would send (helper columns removed, avg typed numeric).
    RowDescription(Bytes),
    /// One merged row.
    DataRow(Bytes),
    /// `SELECT n` with the number of rows sent.
    CommandComplete(Bytes),
}

impl Output {
    /// The message bytes (tag, length, body).
    pub fn bytes(&self) -> &Bytes {
        match self {
            Output::RowDescription(b) | Output::DataRow(b) | Output::CommandComplete(b) => b,
        }
    }
}

/// The result of asking the merge for output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Poll {
    /// A message to send to the client.
    Ready(Output),
    /// Nothing can be sent safely until more rows arrive: feed the shards for which
    /// [`crate::Merge::wants_rows`] is true (or their CommandComplete).
    NeedInput,
    /// CommandComplete was sent; nothing more will come. Rows still arriving are ignored (once a
    /// LIMIT is reached the proxy may stop reading them).
    Finished,
}

/// LIMIT and OFFSET of one execution, with bind parameters resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Limits {
    /// Rows to send at most (None: all).
    pub limit: Option<u64>,
    /// Rows to skip first.
    pub offset: u64,
}

impl Limits {
    /// Resolves the plan's LIMIT/OFFSET; `param(n)` gives bind parameter `$n` as an integer
    /// (None for NULL: no limit, or offset 0, as in PostgreSQL).
    pub fn resolve(
        plan: &MergePlan,
        param: impl Fn(u32) -> Option<i64>,
    ) -> Result<Limits, MergeError> {
        let value =
            |v: Option<LimitValue>, what: &'static str| -> Result<Option<u64>, MergeError> {
                match v {
                    None => Ok(None),
                    Some(LimitValue::Const(c)) => Ok(Some(c)),
                    Some(LimitValue::Param(n)) => match param(n) {
                        None => Ok(None),
                        Some(x) if x < 0 => Err(MergeError::NegativeLimit(what)),
                        Some(x) => Ok(Some(x as u64)),
                    },
                }
            };
        Ok(Limits {
            limit: value(plan.limit, "LIMIT")?,
            offset: value(plan.offset, "OFFSET")?.unwrap_or(0),
        })
    }
}
