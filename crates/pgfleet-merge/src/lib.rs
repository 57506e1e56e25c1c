//! Runs a [`MergePlan`](pgfleet_sql::merge_plan::MergePlan) over the result streams of several
//! shards and produces exactly the messages one PostgreSQL server holding all rows would send:
//! RowDescription (helper columns removed), DataRows in ORDER BY order after LIMIT/OFFSET,
//! aggregates and groups combined, HAVING and DISTINCT applied, and `SELECT n`.
//!
//! Pure code, no I/O and no tokio: the proxy pushes messages as they arrive and pulls output,
//! and reads only from shards the merge wants rows from, so memory stays bounded (a few rows
//! per shard for ORDER BY; groups and DISTINCT keys up to `proxy.merge_memory_limit`).
//!
//! Module map:
//! - [`merge`]: [`Merge`], the push/pull state machine; [`MergeOptions`].
//! - [`output`]: [`Output`], [`Poll`], [`Limits`].
//! - `rows`: row mode — k-way merge over a heap, DISTINCT, hidden columns removed.
//! - `groups`: aggregate mode — groups in memory, HAVING, DISTINCT, sort.
//! - `aggregate`: combining partial aggregates with PostgreSQL's result types.
//! - `having`: HAVING evaluation (three-valued logic).
//! - [`value`]: decoding, comparing and canonicalizing values by type OID, text or binary.
//! - [`numeric`]: exact decimal arithmetic in PostgreSQL's numeric formats.
//! - `array`: array concatenation for `array_agg`.
//! - `memory`: the memory budget and DISTINCT bookkeeping.
//! - [`error`]: the error type, [`MergeError`], with SQLSTATEs.
#![forbid(unsafe_code)]

mod aggregate;
mod array;
pub mod error;
mod groups;
mod having;
mod memory;
pub mod merge;
pub mod numeric;
pub mod output;
mod rows;
pub mod value;

pub use error::MergeError;
pub use merge::{Merge, MergeOptions};
pub use output::{Limits, Output, Poll};
pub use rows::SHARD_QUEUE_ROWS;
