//! PostgreSQL's hash partitioning, bit for bit: the extended (64-bit, seeded) hash functions of the
//! key types and the row hash that `PARTITION BY HASH` reduces modulo the partition count.
//!
//! Ported from PostgreSQL's `src/common/hashfn.c` (Bob Jenkins' lookup3 `hash_bytes_extended`,
//! `hash_bytes_uint32_extended`), `src/backend/access/hash/hashfunc.c` (`hashint8extended`,
//! `hashtextextended`), `src/backend/utils/adt/uuid.c` (`uuid_hash_extended`) and
//! `src/backend/partitioning/partbounds.c` (`compute_partition_hash_value`,
//! `HASH_PARTITION_SEED`); PostgreSQL License. Docs: "Table Partitioning" (hash partitioning)
//! and `satisfies_hash_partition`.
//!
//! The byte-wise path of lookup3 is the little-endian one: PostgreSQL's own hashes differ on
//! big-endian servers, so shard assignments match servers on little-endian machines (x86-64,
//! ARM64), which is every platform PostgreSQL is commonly run on today.

use crate::ShardKeyValue;

/// The seed PostgreSQL passes to every key column's extended hash function when computing a
/// row's hash-partition hash (`HASH_PARTITION_SEED` in partbounds.c).
pub const HASH_PARTITION_SEED: u64 = 0x7A5B_2236_7996_DCFD;

/// `hash_combine64` from common/hashfn.h: folds one column's hash into the row hash.
pub fn hash_combine64(a: u64, b: u64) -> u64 {
    a ^ b
        .wrapping_add(0x49a0_f4dd_15e5_a8e3)
        .wrapping_add(a << 54)
        .wrapping_add(a >> 7)
}

/// The row hash of a one-column partition key (`compute_partition_hash_value`): 0 combined with
/// the column's extended hash; a NULL key contributes nothing, leaving 0.
pub fn row_hash(value: Option<&ShardKeyValue>) -> u64 {
    match value {
        Some(v) => hash_combine64(0, extended_hash(v, HASH_PARTITION_SEED)),
        None => 0,
    }
}

/// The partition (remainder) `PARTITION BY HASH` with `modulus` equal partitions puts `value` in:
/// the row hash as an unsigned number modulo `modulus`. `modulus` must be at least 1.
pub fn hash_partition(value: Option<&ShardKeyValue>, modulus: u64) -> u64 {
    row_hash(value) % modulus.max(1)
}

/// The value's extended hash with `seed`, as its type's hash opclass computes it: integers of
/// every width through `hashint8extended` (equal values hash alike across int2/int4/int8), text
/// and uuid through `hash_bytes_extended` over their bytes. Dates and timestamps use the integer
/// hashes of their representation (`hashint4extended` / `hashint8extended`), which is what
/// PostgreSQL's `date_hash_extended` / `timestamp_hash_extended` do.
pub fn extended_hash(value: &ShardKeyValue, seed: u64) -> u64 {
    match value {
        ShardKeyValue::Int(v) | ShardKeyValue::Timestamp(v) | ShardKeyValue::TimestampTz(v) => {
            hashint8extended(*v, seed)
        }
        ShardKeyValue::Date(v) => hash_uint32_extended(*v as u32, seed),
        ShardKeyValue::Text(t) => hash_bytes_extended(t.as_bytes(), seed),
        ShardKeyValue::Uuid(b) => hash_bytes_extended(b, seed),
    }
}

/// `hashint8extended`: an int8 that fits in int4 hashes like that int4 (its high half is folded
/// into the low half so that the cross-type opclass stays consistent).
pub fn hashint8extended(value: i64, seed: u64) -> u64 {
    let lohalf = value as u32;
    let hihalf = (value >> 32) as u32;
    let folded = lohalf ^ if value >= 0 { hihalf } else { !hihalf };
    hash_uint32_extended(folded, seed)
}

/// `hash_bytes_uint32_extended`: lookup3 over one 32-bit word.
pub fn hash_uint32_extended(k: u32, seed: u64) -> u64 {
    let init = 0x9e37_79b9_u32.wrapping_add(4).wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (init, init, init);
    if seed != 0 {
        a = a.wrapping_add((seed >> 32) as u32);
        b = b.wrapping_add(seed as u32);
        mix(&mut a, &mut b, &mut c);
    }
    a = a.wrapping_add(k);
    finish(&mut a, &mut b, &mut c);
    (u64::from(b) << 32) | u64::from(c)
}

/// `hash_bytes_extended`: lookup3 over a byte string (little-endian word order).
pub fn hash_bytes_extended(key: &[u8], seed: u64) -> u64 {
    // PostgreSQL adds the length as a uint32; keys longer than 4 GiB cannot reach here (a text
    // value is at most 1 GB), so the truncation is the same as the server's.
    let init = 0x9e37_79b9_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (init, init, init);
    if seed != 0 {
        a = a.wrapping_add((seed >> 32) as u32);
        b = b.wrapping_add(seed as u32);
        mix(&mut a, &mut b, &mut c);
    }
    let mut chunks = key.chunks_exact(12);
    for chunk in &mut chunks {
        a = a.wrapping_add(word(&chunk[0..4]));
        b = b.wrapping_add(word(&chunk[4..8]));
        c = c.wrapping_add(word(&chunk[8..12]));
        mix(&mut a, &mut b, &mut c);
    }
    let tail = chunks.remainder();
    // The last 0-11 bytes: bytes 0-3 go to a, 4-7 to b, 8-10 to c shifted up one byte (the
    // lowest byte of c is reserved for the length in lookup3's layout).
    for (i, byte) in tail.iter().enumerate() {
        let byte = u32::from(*byte);
        match i {
            0..=3 => a = a.wrapping_add(byte << (8 * i)),
            4..=7 => b = b.wrapping_add(byte << (8 * (i - 4))),
            _ => c = c.wrapping_add(byte << (8 * (i - 7))),
        }
    }
    finish(&mut a, &mut b, &mut c);
    (u64::from(b) << 32) | u64::from(c)
}

/// A little-endian 32-bit word from exactly four bytes.
fn word(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .rev()
        .fold(0u32, |acc, byte| (acc << 8) | u32::from(*byte))
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

/// lookup3's `final`.
fn finish(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ShardKeyType;

    fn value(t: ShardKeyType, text: &str) -> ShardKeyValue {
        ShardKeyValue::parse_text(t, text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// FIELD-NOTES vectors, measured on PostgreSQL 15.18: (type, value, extended hash as signed
    /// int8, remainder for modulus 4, remainder for modulus 7 where measured).
    #[test]
    fn matches_postgres_vectors() {
        use ShardKeyType::*;
        let vectors: &[(ShardKeyType, &str, i64, u64, Option<u64>)] = &[
            (BigInt, "0", -4403592609991167795, 0, Some(4)),
            (BigInt, "1", 5968994663651403477, 0, Some(5)),
            (BigInt, "2", -6784076462669891433, 2, Some(6)),
            (BigInt, "42", 7363975540656877951, 2, Some(0)),
            (BigInt, "-1", -5017072347659237694, 1, Some(0)),
            (BigInt, "-7", -7298374200968567817, 2, Some(3)),
            (
                BigInt,
                "9223372036854775807",
                4938542303000433043,
                2,
                Some(3),
            ),
            (
                BigInt,
                "-9223372036854775808",
                -6050265599104649060,
                3,
                Some(0),
            ),
            (Text, "", -5700645584453517373, 2, None),
            (Text, "a", -6705225459120232837, 2, None),
            (Text, "tenant_42", -8480716907072871799, 0, None),
            (
                Uuid,
                "00000000-0000-0000-0000-000000000000",
                -5281082146396728638,
                1,
                None,
            ),
            (
                Uuid,
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                424513190990560493,
                0,
                None,
            ),
        ];
        for (t, text, hash, mod4, mod7) in vectors {
            let v = value(*t, text);
            assert_eq!(
                extended_hash(&v, HASH_PARTITION_SEED) as i64,
                *hash,
                "{t} {text}"
            );
            assert_eq!(hash_partition(Some(&v), 4), *mod4, "{t} {text} mod 4");
            if let Some(mod7) = mod7 {
                assert_eq!(hash_partition(Some(&v), 7), *mod7, "{t} {text} mod 7");
            }
        }
    }

    #[test]
    fn integer_widths_hash_alike() {
        use ShardKeyType::*;
        for text in ["0", "1", "-1", "32767", "-32768"] {
            let h = |t| extended_hash(&value(t, text), HASH_PARTITION_SEED);
            assert_eq!(h(SmallInt), h(BigInt));
            assert_eq!(h(Integer), h(BigInt));
        }
        // hashint4extended(v) is hash_uint32_extended(v as u32): the fold is a no-op in int4 range.
        for v in [0i64, 1, -1, i64::from(i32::MAX), i64::from(i32::MIN)] {
            assert_eq!(
                hashint8extended(v, 7),
                hash_uint32_extended(v as i32 as u32, 7)
            );
        }
        assert_ne!(
            hashint8extended(1 << 32, HASH_PARTITION_SEED),
            hashint8extended(0, HASH_PARTITION_SEED),
            "the high half takes part"
        );
    }

    #[test]
    fn null_goes_to_remainder_zero() {
        assert_eq!(row_hash(None), 0);
        assert_eq!(hash_partition(None, 7), 0);
    }

    #[test]
    fn every_tail_length_is_hashed_differently() {
        // Lengths 0..=25 cover the 12-byte loop and every tail case; changing any byte changes
        // the hash (a dropped byte in a tail branch would not).
        let data: Vec<u8> = (1..=25).collect();
        for len in 0..=data.len() {
            let base = hash_bytes_extended(&data[..len], HASH_PARTITION_SEED);
            for i in 0..len {
                let mut changed = data[..len].to_vec();
                changed[i] ^= 0x80;
                assert_ne!(
                    hash_bytes_extended(&changed, HASH_PARTITION_SEED),
                    base,
                    "len {len} byte {i}"
                );
            }
        }
    }
}
