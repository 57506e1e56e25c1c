//! Row mode: the shards return the client's rows (plus hidden ORDER BY helper columns), each
//! shard already in ORDER BY order; a k-way merge over a binary heap of the shards' current rows
//! emits the smallest, and only when every shard still running has a row buffered — so at most
//! a few rows per shard are held, and the proxy applies backpressure by not reading a shard
//! whose queue is full.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use pgfleet_sql::merge_plan::{SortColumn, SortKey};
use pgfleet_wire::rows::{data_row_values, encode_data_row_raw, FieldDescription};
use smallvec::SmallVec;

use crate::error::MergeError;
use crate::memory::{Distinct, Memory};
use crate::value::{canonical_nullable, compare_nullable, is_comparable, type_name, Format, Value};

/// Rows a shard may have buffered before [`crate::Merge::wants_rows`] says stop.
pub const SHARD_QUEUE_ROWS: usize = 16;

/// Per-row bookkeeping beyond the raw bytes, for the memory budget.
const ROW_OVERHEAD: usize = 64;

/// A row's ORDER BY values, in ORDER BY order: inline up to two keys (no allocation per row for
/// the usual ORDER BY).
type Keys = SmallVec<[Option<Value>; 2]>;

/// A row's raw values, inline up to 16 columns (collected per row, never kept).
type RawValues<'a> = SmallVec<[Option<&'a [u8]>; 16]>;

/// The values of a DataRow message (`raw`: the whole message, tag and length included).
fn raw_values(raw: &[u8]) -> Result<RawValues<'_>, MergeError> {
    Ok(data_row_values(&raw[5..])?.collect::<Result<_, _>>()?)
}

struct Queued {
    raw: Bytes,
    keys: Keys,
}

/// Whether shard `a`'s current row comes before shard `b`'s: by the ORDER BY keys, then the lower
/// shard first (so the output is deterministic). Both shards have a current row.
fn before(current: &[Option<Queued>], order: &[SortKey], a: usize, b: usize) -> bool {
    let (Some(ra), Some(rb)) = (&current[a], &current[b]) else {
        return a < b;
    };
    for (i, k) in order.iter().enumerate() {
        // Values of one column share a type, so comparison cannot fail here; a failure would
        // have been reported when the row was pushed (out-of-order check).
        match compare_nullable(
            ra.keys[i].as_ref(),
            rb.keys[i].as_ref(),
            k.descending,
            k.nulls_first,
        )
        .unwrap_or(Ordering::Equal)
        {
            Ordering::Less => return true,
            Ordering::Greater => return false,
            Ordering::Equal => {}
        }
    }
    a < b
}

/// A binary min-heap of shard numbers ordered by their current rows ([`before`]): only the
/// numbers move when it is reordered, never the rows.
#[derive(Default)]
struct ShardHeap(Vec<usize>);

impl ShardHeap {
    fn push(&mut self, shard: usize, current: &[Option<Queued>], order: &[SortKey]) {
        let h = &mut self.0;
        h.push(shard);
        let mut i = h.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            if !before(current, order, h[i], h[parent]) {
                break;
            }
            h.swap(i, parent);
            i = parent;
        }
    }

    fn pop(&mut self, current: &[Option<Queued>], order: &[SortKey]) -> Option<usize> {
        let h = &mut self.0;
        if h.is_empty() {
            return None;
        }
        let top = h.swap_remove(0);
        let mut i = 0;
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut first = i;
            if l < h.len() && before(current, order, h[l], h[first]) {
                first = l;
            }
            if r < h.len() && before(current, order, h[r], h[first]) {
                first = r;
            }
            if first == i {
                break;
            }
            h.swap(i, first);
            i = first;
        }
        Some(top)
    }
}

/// A row ready for OFFSET/LIMIT.
pub(crate) enum RowPoll {
    Row(Bytes),
    NeedInput,
    Exhausted,
}

pub(crate) struct RowMerge {
    hidden: usize,
    sort: Arc<[SortKey]>,
    distinct_wanted: bool,
    distinct: Distinct,
    /// Resolved after RowDescription.
    visible: usize,
    key_columns: Vec<usize>,
    types: Vec<(u32, Format)>,
    queues: Vec<VecDeque<Queued>>,
    last_keys: Vec<Option<Keys>>,
    /// Each shard's current row: the one it offers to the merge.
    current: Vec<Option<Queued>>,
    heap: ShardHeap,
    next_shard: usize,
}

impl RowMerge {
    pub(crate) fn new(hidden: usize, sort: &[SortKey], distinct: bool, shards: usize) -> RowMerge {
        RowMerge {
            hidden,
            sort: sort.into(),
            distinct_wanted: distinct,
            distinct: Distinct::Off,
            visible: 0,
            key_columns: Vec::new(),
            types: Vec::new(),
            queues: (0..shards).map(|_| VecDeque::new()).collect(),
            last_keys: vec![None; shards],
            current: (0..shards).map(|_| None).collect(),
            heap: ShardHeap::default(),
            next_shard: 0,
        }
    }

    /// Checks the shards' columns and returns the client's.
    pub(crate) fn describe(
        &mut self,
        fields: &[FieldDescription],
    ) -> Result<Vec<FieldDescription>, MergeError> {
        if fields.len() < self.hidden {
            return Err(MergeError::Protocol(format!(
                "a shard returned {} columns, fewer than the {} helper columns of the plan",
                fields.len(),
                self.hidden
            )));
        }
        self.visible = fields.len() - self.hidden;
        self.types = fields
            .iter()
            .map(|f| (f.type_oid, Format::from_code(f.format)))
            .collect();
        self.key_columns = Vec::new();
        for k in self.sort.iter() {
            let c = match k.column {
                SortColumn::Output(i) if i < self.visible => i,
                SortColumn::Hidden(j) if j < self.hidden => self.visible + j,
                _ => {
                    return Err(MergeError::Protocol(format!(
                        "ORDER BY column {:?} is not in the shards' result",
                        k.column
                    )))
                }
            };
            check_comparable(self.types[c].0, "ORDER BY")?;
            self.key_columns.push(c);
        }
        if self.distinct_wanted {
            for (t, _) in &self.types[..self.visible] {
                check_comparable(*t, "SELECT DISTINCT")?;
            }
            let covered = (0..self.visible).all(|c| self.key_columns.contains(&c));
            self.distinct = if covered && !self.sort.is_empty() {
                Distinct::Adjacent(None)
            } else {
                Distinct::Set(Default::default())
            };
        }
        Ok(fields[..self.visible].to_vec())
    }

    /// The ORDER BY values of a shard's row (`raw`: the whole DataRow message). Only the key
    /// columns are decoded; the others are only counted.
    fn keys_of(&self, shard: usize, raw: &[u8]) -> Result<Keys, MergeError> {
        let values = data_row_values(&raw[5..])?;
        if values.len() != self.types.len() {
            return Err(MergeError::Protocol(format!(
                "shard {shard} sent a row of {} columns, its RowDescription has {}",
                values.len(),
                self.types.len()
            )));
        }
        let mut keys: Keys = smallvec::smallvec![None; self.key_columns.len()];
        for (c, value) in values.enumerate() {
            let Some(b) = value? else { continue };
            for (k, _) in self
                .key_columns
                .iter()
                .enumerate()
                .filter(|(_, &kc)| kc == c)
            {
                keys[k] = Some(Value::decode(self.types[c].0, self.types[c].1, b)?);
            }
        }
        Ok(keys)
    }

    pub(crate) fn push(
        &mut self,
        shard: usize,
        raw: Bytes,
        memory: &mut Memory,
    ) -> Result<(), MergeError> {
        let keys = self.keys_of(shard, &raw)?;
        if let Some(prev) = &self.last_keys[shard] {
            for (i, k) in self.sort.iter().enumerate() {
                match compare_nullable(
                    prev[i].as_ref(),
                    keys[i].as_ref(),
                    k.descending,
                    k.nulls_first,
                )? {
                    Ordering::Less => break,
                    Ordering::Equal => {}
                    Ordering::Greater => return Err(MergeError::OutOfOrder { shard, key: i + 1 }),
                }
            }
        }
        if !self.sort.is_empty() {
            match &mut self.last_keys[shard] {
                Some(last) => last.clone_from(&keys),
                last => *last = Some(keys.clone()),
            }
        }
        memory.grow(raw.len() + ROW_OVERHEAD, "rows buffered from shards")?;
        let queue = &mut self.queues[shard];
        if queue.capacity() == 0 {
            // What `wants` lets a shard buffer: one allocation instead of a doubling series.
            queue.reserve(SHARD_QUEUE_ROWS);
        }
        queue.push_back(Queued { raw, keys });
        Ok(())
    }

    pub(crate) fn wants(&self, shard: usize) -> bool {
        self.queues[shard].len() + usize::from(self.current[shard].is_some()) < SHARD_QUEUE_ROWS
    }

    /// The next merged row, or why there is none yet.
    pub(crate) fn next(
        &mut self,
        done: &[bool],
        memory: &mut Memory,
    ) -> Result<RowPoll, MergeError> {
        loop {
            let raw = if self.sort.is_empty() {
                match self.next_unordered() {
                    Some(q) => q.raw,
                    None if done.iter().all(|d| *d) => return Ok(RowPoll::Exhausted),
                    None => return Ok(RowPoll::NeedInput),
                }
            } else {
                for s in 0..self.queues.len() {
                    if self.current[s].is_none() {
                        if let Some(q) = self.queues[s].pop_front() {
                            self.current[s] = Some(q);
                            self.heap.push(s, &self.current, &self.sort);
                        }
                    }
                }
                // Safe to emit only when every running shard has a current row: a shard
                // without one might still send a smaller row.
                if (0..done.len()).any(|s| !done[s] && self.current[s].is_none()) {
                    return Ok(RowPoll::NeedInput);
                }
                match self
                    .heap
                    .pop(&self.current, &self.sort)
                    .and_then(|s| self.current[s].take())
                {
                    Some(q) => q.raw,
                    None => return Ok(RowPoll::Exhausted),
                }
            };
            memory.shrink(raw.len() + ROW_OVERHEAD);
            if !matches!(self.distinct, Distinct::Off) {
                let values = raw_values(&raw)?;
                let mut key = Vec::new();
                for (c, v) in values[..self.visible].iter().enumerate() {
                    let (t, f) = self.types[c];
                    let value = v.map(|b| Value::decode(t, f, b)).transpose()?;
                    canonical_nullable(value.as_ref(), &mut key);
                }
                if !self.distinct.first_time(key, memory)? {
                    continue;
                }
            }
            return Ok(RowPoll::Row(self.strip(raw)?));
        }
    }

    fn next_unordered(&mut self) -> Option<Queued> {
        let n = self.queues.len();
        for i in 0..n {
            let s = (self.next_shard + i) % n;
            if let Some(q) = self.queues[s].pop_front() {
                self.next_shard = (s + 1) % n;
                return Some(q);
            }
        }
        None
    }

    /// The row without hidden helper columns (the shard's bytes as they are when none).
    fn strip(&self, raw: Bytes) -> Result<Bytes, MergeError> {
        if self.hidden == 0 {
            return Ok(raw);
        }
        let values = raw_values(&raw)?;
        let mut out = BytesMut::with_capacity(raw.len());
        encode_data_row_raw(&mut out, &values[..self.visible]);
        Ok(out.freeze())
    }
}

pub(crate) fn check_comparable(type_oid: u32, what: &str) -> Result<(), MergeError> {
    if is_comparable(type_oid) {
        Ok(())
    } else {
        Err(MergeError::Unsupported(format!(
            "{what} on a column of {}",
            type_name(type_oid)
        )))
    }
}
