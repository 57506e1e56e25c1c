//! [`ShardRoute`]: where one SQL text goes in a sharded or placed database, and [`InsertSplit`],
//! the per-shard texts of a multi-row INSERT whose rows belong to several shards.

use std::collections::BTreeSet;

/// Where a statement runs. Shard numbers index `Shards::clusters()` of the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardRoute {
    /// Exactly this shard: the key picks it, the statement touches only tables on the default
    /// shard, a hint or setting names it, or the key restriction is contradictory (no row can
    /// match anywhere, so one shard answers — the default shard).
    Single(usize),
    /// Exactly these shards (two or more, sorted): each holds rows the statement may touch.
    /// May list every shard when the key values happen to cover them all.
    Several(BTreeSet<usize>),
    /// Every shard: the statement does not restrict its sharded table by the shard key, or it is
    /// DDL on a sharded or reference table.
    All,
    /// Reference tables only (and no sharded or default-shard table).
    Reference(ReferenceAccess),
    /// Every table the statement names is in placement groups on this cluster.
    Placed(String),
    /// A database without shards, and no placed table: the database's own cluster.
    Home,
    /// A multi-row `INSERT … VALUES` whose rows belong to two or more shards: each shard gets
    /// its own text with only its rows.
    Split(InsertSplit),
    /// The shard depends on bind parameters whose values are not known yet (a Parse without
    /// Bind): route again when the Bind arrives. The parameter numbers (`$n`), sorted.
    AtBind(Vec<u32>),
}

/// How a statement uses reference tables (a full copy on every shard).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferenceAccess {
    /// A read: any one shard answers (pick by load or the default shard).
    Read,
    /// A write: every shard must apply it (in one two-phase-commit transaction).
    Write,
}

/// The rows of one `INSERT … VALUES` split by shard, with the text each shard runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsertSplit {
    /// One part per shard, sorted by shard, each with at least one row.
    pub parts: Vec<InsertPart>,
}

impl InsertSplit {
    /// The shards of the parts, in order.
    pub fn shards(&self) -> BTreeSet<usize> {
        self.parts.iter().map(|p| p.shard).collect()
    }
}

/// What one shard runs for a split INSERT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsertPart {
    /// The shard.
    pub shard: usize,
    /// Indices (0-based, in text order) of the VALUES rows that belong to this shard.
    pub rows: Vec<usize>,
    /// The statement text with only those rows: every byte outside the VALUES rows is kept
    /// (column list, `ON CONFLICT`, `RETURNING`, comments), rows are joined by `, `, and bind
    /// parameters are renumbered `$1…$k` in the order of their original numbers.
    pub sql: String,
    /// For each new parameter `$i` (index `i - 1`), the original parameter number it stands for:
    /// the Bind (and Parse parameter types) for this shard carry exactly these, in this order.
    /// Empty when the statement has no parameters.
    pub params: Vec<u32>,
}
