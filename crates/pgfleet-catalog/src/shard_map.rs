//! [`ShardMap`]: how one sharded table's key values pick their shard — hash (PostgreSQL's
//! `PARTITION BY HASH`), range (half-open `[from, to)`), or list (with an optional default).

use std::collections::HashMap;
use std::fmt;

use pgfleet_config::{
    InvalidKeyValue, KeyInput, ShardKeyType, ShardKeyValue, ShardMethod, ShardRange,
    ShardedTableConfig,
};

use crate::hash::hash_partition;
use crate::key::{parse_key, ValueFormat};
use crate::CatalogError;

/// The function from a shard key value to a shard number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardFunction {
    /// `hash_partition(value, shard_count)`: the remainder PostgreSQL's hash partitioning gives.
    Hash,
    /// The range containing the value.
    Range(RangeMap),
    /// The shard listing the value, else the default.
    List(ListMap),
}

/// Ranges sorted by `from` (an open start first), pairwise disjoint. Gaps between ranges are
/// allowed here (values in them have no shard); the config refuses them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeMap {
    ranges: Vec<ShardRange>,
}

impl RangeMap {
    /// The ranges, sorted by `from`.
    pub fn ranges(&self) -> &[ShardRange] {
        &self.ranges
    }

    /// The range containing `value`, by binary search over the sorted starts.
    fn find(&self, value: &ShardKeyValue) -> Result<&ShardRange, String> {
        // Starts are sorted, so "starts at or before value" holds for a prefix of the ranges.
        let after = self
            .ranges
            .partition_point(|r| r.from.as_ref().is_none_or(|from| from <= value));
        let Some(candidate) = after.checked_sub(1).map(|i| &self.ranges[i]) else {
            return Err(match self.ranges.first() {
                Some(first) => format!("below the first range {}", RangeText(first)),
                None => "the table has no ranges".to_string(),
            });
        };
        match &candidate.to {
            Some(to) if value >= to => Err(match self.ranges.get(after) {
                Some(next) => format!(
                    "between ranges {} and {}",
                    RangeText(candidate),
                    RangeText(next)
                ),
                None => format!(
                    "at or above the end of the last range {}",
                    RangeText(candidate)
                ),
            }),
            _ => Ok(candidate),
        }
    }
}

/// Values by shard, and the shard for values not listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListMap {
    shards: HashMap<ShardKeyValue, usize>,
    default_shard: Option<usize>,
}

impl ListMap {
    /// The shard for values no list names, if any.
    pub fn default_shard(&self) -> Option<usize> {
        self.default_shard
    }
}

/// How one table's shard key values map to shards: the key's type, the number of shards, and the
/// function. Immutable once built; every lookup is a pure function of the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardMap {
    key: String,
    key_type: ShardKeyType,
    shard_count: usize,
    function: ShardFunction,
}

impl ShardMap {
    /// A hash map over `shard_count` shards. `key` (`table.column`) names the key in errors.
    pub fn hash(
        key: impl Into<String>,
        key_type: ShardKeyType,
        shard_count: usize,
    ) -> Result<ShardMap, CatalogError> {
        ShardMap::bare(key, key_type, shard_count, ShardFunction::Hash)
    }

    /// A range map. `ranges` may come in any order; they must be disjoint, non-empty, of the
    /// key's type, and name existing shards.
    pub fn range(
        key: impl Into<String>,
        key_type: ShardKeyType,
        shard_count: usize,
        mut ranges: Vec<ShardRange>,
    ) -> Result<ShardMap, CatalogError> {
        let map = ShardMap::bare(key, key_type, shard_count, ShardFunction::Hash)?;
        if !key_type.rangeable() {
            return Err(map.invalid(format!("range sharding does not support {key_type} keys")));
        }
        for r in &ranges {
            map.check_shard(r.shard)?;
            for bound in r.from.iter().chain(&r.to) {
                map.check_type(bound)
                    .map_err(|_| map.invalid(format!("bound {bound} is not a {key_type}")))?;
            }
            if let (Some(from), Some(to)) = (&r.from, &r.to) {
                if to <= from {
                    return Err(map.invalid(format!("empty range {}", RangeText(r))));
                }
            }
        }
        ranges.sort_by(|a, b| a.from.cmp(&b.from));
        for pair in ranges.windows(2) {
            let disjoint =
                matches!((&pair[0].to, &pair[1].from), (Some(end), Some(start)) if end <= start);
            if !disjoint {
                return Err(map.invalid(format!(
                    "ranges {} and {} overlap",
                    RangeText(&pair[0]),
                    RangeText(&pair[1])
                )));
            }
        }
        Ok(ShardMap {
            function: ShardFunction::Range(RangeMap { ranges }),
            ..map
        })
    }

    /// A list map: `lists` are (shard, values) pairs; a value may appear once.
    pub fn list(
        key: impl Into<String>,
        key_type: ShardKeyType,
        shard_count: usize,
        lists: &[(usize, Vec<ShardKeyValue>)],
        default_shard: Option<usize>,
    ) -> Result<ShardMap, CatalogError> {
        let map = ShardMap::bare(key, key_type, shard_count, ShardFunction::Hash)?;
        if let Some(d) = default_shard {
            map.check_shard(d)?;
        }
        let mut shards = HashMap::new();
        for (shard, values) in lists {
            map.check_shard(*shard)?;
            for v in values {
                map.check_type(v)
                    .map_err(|_| map.invalid(format!("value {v} is not a {key_type}")))?;
                if let Some(other) = shards.insert(v.clone(), *shard) {
                    return Err(map.invalid(format!(
                        "value {v} is listed for shards {other} and {shard}"
                    )));
                }
            }
        }
        Ok(ShardMap {
            function: ShardFunction::List(ListMap {
                shards,
                default_shard,
            }),
            ..map
        })
    }

    /// The map a validated sharded table config describes.
    pub fn from_config(
        key: impl Into<String>,
        table: &ShardedTableConfig,
        shard_count: usize,
    ) -> Result<ShardMap, CatalogError> {
        match &table.method {
            ShardMethod::Hash => ShardMap::hash(key, table.key_type, shard_count),
            ShardMethod::Range(ranges) => {
                ShardMap::range(key, table.key_type, shard_count, ranges.clone())
            }
            ShardMethod::List(lists) => {
                let pairs: Vec<(usize, Vec<ShardKeyValue>)> = lists
                    .lists
                    .iter()
                    .map(|l| (l.shard, l.values.clone()))
                    .collect();
                ShardMap::list(
                    key,
                    table.key_type,
                    shard_count,
                    &pairs,
                    lists.default_shard,
                )
            }
        }
    }

    fn bare(
        key: impl Into<String>,
        key_type: ShardKeyType,
        shard_count: usize,
        function: ShardFunction,
    ) -> Result<ShardMap, CatalogError> {
        let map = ShardMap {
            key: key.into(),
            key_type,
            shard_count,
            function,
        };
        if shard_count == 0 {
            return Err(map.invalid("no shards".to_string()));
        }
        Ok(map)
    }

    /// `table.column` of the key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The shard key's SQL type.
    pub fn key_type(&self) -> ShardKeyType {
        self.key_type
    }

    /// Number of shards; every result is below it.
    pub fn shard_count(&self) -> usize {
        self.shard_count
    }

    /// The function.
    pub fn function(&self) -> &ShardFunction {
        &self.function
    }

    /// The shard of `value`, which must be of the key's type.
    pub fn shard_for(&self, value: &ShardKeyValue) -> Result<usize, CatalogError> {
        self.check_type(value)?;
        match &self.function {
            ShardFunction::Hash => {
                // The remainder is below shard_count, which is a usize.
                Ok(hash_partition(Some(value), self.shard_count as u64) as usize)
            }
            ShardFunction::Range(ranges) => ranges
                .find(value)
                .map(|r| r.shard)
                .map_err(|reason| self.no_shard(value.to_string(), reason)),
            ShardFunction::List(lists) => lists
                .shards
                .get(value)
                .copied()
                .or(lists.default_shard)
                .ok_or_else(|| {
                    self.no_shard(
                        value.to_string(),
                        "no list names it and the table has no default_shard".to_string(),
                    )
                }),
        }
    }

    /// The shard of a NULL key, as PostgreSQL's partitioning would place a NULL: hash puts it in
    /// remainder 0 (a NULL contributes nothing to the row hash); a list default shard takes it;
    /// range has no shard for it (PostgreSQL allows NULL only in a default range partition).
    pub fn shard_for_null(&self) -> Result<usize, CatalogError> {
        match &self.function {
            ShardFunction::Hash => Ok(0),
            ShardFunction::Range(_) => Err(self.no_shard(
                "NULL".to_string(),
                "range sharding has no shard for NULL".to_string(),
            )),
            ShardFunction::List(lists) => lists.default_shard.ok_or_else(|| {
                self.no_shard(
                    "NULL".to_string(),
                    "no list holds NULL and the table has no default_shard".to_string(),
                )
            }),
        }
    }

    /// The shard of a value as it comes in a Bind message or SQL literal.
    pub fn shard_for_wire(&self, format: ValueFormat, bytes: &[u8]) -> Result<usize, CatalogError> {
        self.shard_for(&parse_key(self.key_type, format, bytes)?)
    }

    fn check_type(&self, value: &ShardKeyValue) -> Result<(), CatalogError> {
        if value.is_of_type(self.key_type) {
            return Ok(());
        }
        let found = match value {
            ShardKeyValue::Int(_) if self.key_type.integer_bounds().is_some() => {
                return Err(CatalogError::InvalidKey(InvalidKeyValue::text(
                    self.key_type,
                    &value.to_string(),
                    format!("out of range for type {}", self.key_type),
                )))
            }
            ShardKeyValue::Int(_) => "integer",
            ShardKeyValue::Text(_) => "text",
            ShardKeyValue::Uuid(_) => "uuid",
            ShardKeyValue::Date(_) => "date",
            ShardKeyValue::Timestamp(_) => "timestamp",
            ShardKeyValue::TimestampTz(_) => "timestamptz",
        };
        Err(CatalogError::WrongKeyType {
            key: self.key.clone(),
            expected: self.key_type,
            found,
        })
    }

    fn check_shard(&self, shard: usize) -> Result<(), CatalogError> {
        if shard < self.shard_count {
            Ok(())
        } else {
            Err(self.invalid(format!(
                "shard {shard} does not exist (there are {} shards)",
                self.shard_count
            )))
        }
    }

    fn invalid(&self, reason: String) -> CatalogError {
        CatalogError::InvalidShardMap {
            key: self.key.clone(),
            reason,
        }
    }

    fn no_shard(&self, value: String, reason: String) -> CatalogError {
        // Cut long values as key parse errors do, so an error never carries a huge value.
        let value = match KeyInput::text(&value) {
            KeyInput::Text(shown) => shown,
            KeyInput::Binary(_) => value,
        };
        CatalogError::NoShard {
            key: self.key.clone(),
            value,
            reason,
        }
    }
}

/// `[from, to)` with open ends written as `unbounded`.
struct RangeText<'a>(&'a ShardRange);

impl fmt::Display for RangeText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = |v: &Option<ShardKeyValue>| {
            v.as_ref()
                .map_or("unbounded".to_string(), |v| v.to_string())
        };
        write!(f, "[{}, {})", end(&self.0.from), end(&self.0.to))
    }
}
