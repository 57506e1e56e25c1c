//! [`ShardSet`]: the shards a key restriction allows. Routing runs on every execution of a
//! statement, so the usual case (fewer than 64 shards) is a bit mask and allocates nothing.

use std::collections::BTreeSet;

/// Shards below this are bits of [`ShardSet::low`].
const LOW: usize = u64::BITS as usize;

/// A set of shard numbers: a bit each for shards 0–63, a `BTreeSet` for any beyond.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ShardSet {
    low: u64,
    high: BTreeSet<usize>,
}

impl ShardSet {
    /// The set of one shard.
    pub(super) fn one(shard: usize) -> ShardSet {
        let mut s = ShardSet::default();
        s.insert(shard);
        s
    }

    pub(super) fn insert(&mut self, shard: usize) {
        if shard < LOW {
            self.low |= 1 << shard;
        } else {
            self.high.insert(shard);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.low.count_ones() as usize + self.high.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.low == 0 && self.high.is_empty()
    }

    /// The shards in ascending order.
    pub(super) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        Bits(self.low).chain(self.high.iter().copied())
    }

    /// The shards in both.
    pub(super) fn intersection(&self, other: &ShardSet) -> ShardSet {
        ShardSet {
            low: self.low & other.low,
            high: self.high.intersection(&other.high).copied().collect(),
        }
    }

    /// Adds the shards of `other`.
    pub(super) fn union_with(&mut self, other: ShardSet) {
        self.low |= other.low;
        self.high.extend(other.high);
    }

    pub(super) fn into_btree(self) -> BTreeSet<usize> {
        self.iter().collect()
    }
}

impl Extend<usize> for ShardSet {
    fn extend<I: IntoIterator<Item = usize>>(&mut self, iter: I) {
        for shard in iter {
            self.insert(shard);
        }
    }
}

impl FromIterator<usize> for ShardSet {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> ShardSet {
        let mut s = ShardSet::default();
        s.extend(iter);
        s
    }
}

/// The set bits of a mask, lowest first.
struct Bits(u64);

impl Iterator for Bits {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::btree_set;

    fn of(s: &BTreeSet<usize>) -> ShardSet {
        s.iter().copied().collect()
    }

    proptest::proptest! {
        /// Every operation agrees with `BTreeSet`, on both sides of the 64-shard boundary.
        #[test]
        fn behaves_as_a_btree_set(a in btree_set(0usize..130, 0..12), b in btree_set(0usize..130, 0..12)) {
            let (x, y) = (of(&a), of(&b));
            proptest::prop_assert_eq!(x.len(), a.len());
            proptest::prop_assert_eq!(x.is_empty(), a.is_empty());
            proptest::prop_assert_eq!(x.iter().collect::<Vec<_>>(), a.iter().copied().collect::<Vec<_>>());
            proptest::prop_assert_eq!(x.clone().into_btree(), a.clone());
            let both: BTreeSet<usize> = a.intersection(&b).copied().collect();
            proptest::prop_assert_eq!(x.intersection(&y), of(&both));
            let mut union = x.clone();
            union.union_with(y.clone());
            let either: BTreeSet<usize> = a.union(&b).copied().collect();
            proptest::prop_assert_eq!(union, of(&either));
        }
    }

    #[test]
    fn one_shard_is_one_element() {
        for n in [0, 1, 63, 64, 200] {
            let s = ShardSet::one(n);
            assert_eq!(s.len(), 1);
            assert_eq!(s.iter().collect::<Vec<_>>(), vec![n]);
        }
    }
}
