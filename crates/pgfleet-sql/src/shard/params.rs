//! What the caller knows besides the SQL text: bind parameter values ([`BindParams`]) and the
//! session's `pgfleet.shard` / `pgfleet.shard_key` settings ([`ShardSettings`]).

use pgfleet_catalog::ValueFormat;

/// One bind parameter as the Bind message carries it (protocol docs, "Message Formats": Bind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param<'a> {
    /// Length -1: SQL NULL.
    Null,
    /// The value's bytes in text or binary format. The router reads them as the shard key's
    /// configured type (integer keys accept 2-, 4- and 8-byte binary integers), whatever type
    /// the client declared.
    Value {
        /// Format code of this parameter.
        format: ValueFormat,
        /// The bytes.
        bytes: &'a [u8],
    },
}

impl<'a> Param<'a> {
    /// A text-format value.
    pub fn text(value: &'a str) -> Param<'a> {
        Param::Value {
            format: ValueFormat::Text,
            bytes: value.as_bytes(),
        }
    }

    /// A binary-format value.
    pub fn binary(bytes: &'a [u8]) -> Param<'a> {
        Param::Value {
            format: ValueFormat::Binary,
            bytes,
        }
    }
}

/// The bind parameters of one execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BindParams<'a> {
    /// Not known yet (a Parse before its Bind): a route that depends on a parameter comes back
    /// as [`crate::shard::ShardRoute::AtBind`].
    #[default]
    Unknown,
    /// The Bind's parameters; `$n` is element `n - 1`. A simple Query has none: `Bound(&[])`.
    Bound(&'a [Param<'a>]),
}

/// The session's sharding settings as the client set them (`SET pgfleet.shard = 2`,
/// `SET pgfleet.shard_key = '42'`), raw text; `None` when not set. A comment hint in the
/// statement wins over these.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ShardSettings {
    /// `pgfleet.shard`: a shard number.
    pub shard: Option<String>,
    /// `pgfleet.shard_key`: a key value in text form.
    pub shard_key: Option<String>,
}
