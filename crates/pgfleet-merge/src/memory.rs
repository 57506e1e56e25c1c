//! The merge's memory budget (`proxy.merge_memory_limit`): rows buffered per shard, GROUP BY
//! groups and DISTINCT keys are counted against it, and the merge fails with SQLSTATE 53200
//! instead of growing past it.

use crate::error::MergeError;

/// Bytes held by one merge, against its limit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Memory {
    pub used: usize,
    pub limit: usize,
}

impl Memory {
    /// Accounts for `n` more bytes held for `what`.
    pub(crate) fn grow(&mut self, n: usize, what: &'static str) -> Result<(), MergeError> {
        self.used = self.used.saturating_add(n);
        if self.used > self.limit {
            return Err(MergeError::MemoryLimit {
                limit: self.limit,
                what,
            });
        }
        Ok(())
    }

    /// Releases `n` bytes.
    pub(crate) fn shrink(&mut self, n: usize) {
        self.used = self.used.saturating_sub(n);
    }
}

/// Duplicate removal for DISTINCT: either only the previous row (when the ORDER BY covers every
/// column, equal rows arrive next to each other) or a set of every row seen.
#[derive(Debug)]
pub(crate) enum Distinct {
    Off,
    Adjacent(Option<Vec<u8>>),
    Set(std::collections::HashSet<Vec<u8>>),
}

impl Distinct {
    /// Whether a row with canonical `key` is new (and remembers it).
    pub(crate) fn first_time(
        &mut self,
        key: Vec<u8>,
        memory: &mut Memory,
    ) -> Result<bool, MergeError> {
        match self {
            Distinct::Off => Ok(true),
            Distinct::Adjacent(prev) => {
                if prev.as_ref() == Some(&key) {
                    return Ok(false);
                }
                *prev = Some(key);
                Ok(true)
            }
            Distinct::Set(seen) => {
                if seen.contains(&key) {
                    return Ok(false);
                }
                // Key bytes plus the set's own overhead per entry, roughly.
                memory.grow(key.len() + 48, "DISTINCT rows")?;
                seen.insert(key);
                Ok(true)
            }
        }
    }
}
