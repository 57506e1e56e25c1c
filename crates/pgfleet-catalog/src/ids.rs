//! Globally unique ids for sharded tables (docs/sharding.md, "Globally unique ids"): the SQL
//! that installs `pgfleet.id()` on a shard, and the id layout in Rust (pure, for tests and
//! tools).
//!
//! A sequence cannot be shared across shards, so every shard generates its own ids with its own
//! generator number baked into its function. Layout of an id (a positive `bigint` until 2094):
//!
//! ```text
//!  63 | 62 ........................ 22 | 21 ......... 12 | 11 ........ 0
//!   0 | milliseconds since 2025-01-01  | generator       | sequence
//!     | UTC (41 bits)                  | (10 bits)       | (12 bits)
//! ```
//!
//! The low 53 bits without the generator — `milliseconds << 12 | sequence` — are the value of
//! the shard's sequence `pgfleet.id_seq`. Every change of that sequence happens under one
//! session-level advisory lock ([`ADVISORY_LOCK_KEY`], held for microseconds, released before
//! the function returns, also on errors and cancels): take the next value; when its millisecond
//! is behind the clock, move the sequence to the clock (`setval`). So the values only grow —
//! ids are unique on the shard always, whatever the clock does — and the generator number makes
//! them unique across the shards of a database. Without the lock a `setval` racing a `nextval`
//! could move the sequence backwards and hand out a value twice; the lock is what makes
//! uniqueness unconditional, and it caps one shard at tens of thousands of ids per second
//! (docs/sharding.md, "Cost").
//!
//! More than 4,096 ids in one millisecond: the sequence runs into the next millisecond, ahead
//! of the clock; the call then sleeps (still holding the lock) until the clock reaches it, so an
//! id never carries a time later than the moment it was returned. A sequence more than
//! [`MAX_WAIT_MS`] ahead means the server's clock stepped backwards: ids keep counting on from
//! the sequence without waiting (unique and increasing; their times run ahead until the clock
//! catches up).

use std::fmt::Write as _;

/// 2025-01-01 00:00:00 UTC in milliseconds since 1970-01-01 UTC: millisecond 0 of an id.
pub const EPOCH_UNIX_MS: i64 = 1_735_689_600_000;
/// Bits for the milliseconds since [`EPOCH_UNIX_MS`] (about 69.7 years: until 2094-09).
pub const TIMESTAMP_BITS: u32 = 41;
/// Bits for the generator number (the shard number): 0 to 1023.
pub const GENERATOR_BITS: u32 = 10;
/// Bits for the sequence within a millisecond: 0 to 4095.
pub const SEQUENCE_BITS: u32 = 12;
/// The highest generator number.
pub const MAX_GENERATOR: u16 = (1 << GENERATOR_BITS) - 1;
/// The highest sequence number within a millisecond.
pub const MAX_SEQUENCE: u16 = (1 << SEQUENCE_BITS) - 1;
/// The highest millisecond an id can hold.
pub const MAX_MILLIS: u64 = (1 << TIMESTAMP_BITS) - 1;
/// The session-level advisory lock (one bigint key, per database) that serialises changes of
/// `pgfleet.id_seq`: ASCII `pgfleeti`. An application must not use this key for its own locks.
pub const ADVISORY_LOCK_KEY: i64 = 0x7067_666c_6565_7469;
/// How far (milliseconds) the sequence may be ahead of the clock for `pgfleet.id()` to wait for
/// the clock: a burst of more than 4,096 ids in a millisecond puts it 1 ms ahead; more than this
/// means the clock stepped backwards, which is not waited out.
pub const MAX_WAIT_MS: i64 = 10;

/// A generator number: the shard number a shard's `pgfleet.id()` puts in its ids, 0 to
/// [`MAX_GENERATOR`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generator(u16);

impl Generator {
    /// The generator for shard `shard`; `None` beyond [`MAX_GENERATOR`] (an id has 10 bits
    /// for it, so a database with more than 1,024 shards cannot use `pgfleet.id()`).
    pub fn new(shard: usize) -> Option<Generator> {
        u16::try_from(shard)
            .ok()
            .filter(|n| *n <= MAX_GENERATOR)
            .map(Generator)
    }

    /// The number.
    pub fn get(self) -> u16 {
        self.0
    }
}

/// The SQL that installs the id functions on one shard, for its database (one text, several
/// statements; idempotent: run it again to change nothing, or to change the generator):
///
/// - schema `pgfleet` and sequence `pgfleet.id_seq` (`milliseconds << 12 | sequence`), created
///   when missing, never reset;
/// - `pgfleet.id() → bigint`: the next id (VOLATILE, `SECURITY DEFINER` so that any role that
///   may use schema `pgfleet` can call it without rights on the sequence: only the function's
///   owner, the installer, can move it);
/// - `pgfleet.id_parts(bigint) → (ts timestamptz, generator int, seq int)`: an id taken apart;
/// - `pgfleet.id_generator() → int`: the generator number baked into this shard's `id()`.
///
/// Names inside the functions are schema-qualified and `search_path` is pinned, so neither the
/// caller's `search_path` nor objects it can create change what they do.
pub fn id_function_sql(generator: Generator) -> String {
    let g = generator.get();
    let max_value = (1_i64 << (TIMESTAMP_BITS + SEQUENCE_BITS)) - 1;
    let mut sql = String::new();
    let _ = write!(
        sql,
        "\
-- pgfleet.id(): globally unique ids for sharded tables; this shard is generator {g}.
CREATE SCHEMA IF NOT EXISTS pgfleet;
CREATE SEQUENCE IF NOT EXISTS pgfleet.id_seq AS bigint MINVALUE 0 MAXVALUE {max_value} START WITH 0 NO CYCLE;
CREATE OR REPLACE FUNCTION pgfleet.id_generator() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $pgfleet$ SELECT {g} $pgfleet$;
CREATE OR REPLACE FUNCTION pgfleet.id() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $pgfleet$
DECLARE
    now_ms bigint;
    v bigint;
BEGIN
    BEGIN
        PERFORM pg_catalog.pg_advisory_lock({lock});
        now_ms := pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) * 1000)::bigint - {epoch};
        v := pg_catalog.nextval('pgfleet.id_seq'::pg_catalog.regclass);
        IF v >> {seq_bits} < now_ms THEN
            v := pg_catalog.setval('pgfleet.id_seq'::pg_catalog.regclass, now_ms << {seq_bits});
        ELSIF v >> {seq_bits} > now_ms AND v >> {seq_bits} <= now_ms + {max_wait} THEN
            PERFORM pg_catalog.pg_sleep(((v >> {seq_bits}) - now_ms) / 1000.0);
        END IF;
        PERFORM pg_catalog.pg_advisory_unlock({lock});
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_catalog.pg_advisory_unlock({lock});
        RAISE;
    END;
    RETURN ((v >> {seq_bits}) << {time_shift}) | ({g} << {seq_bits}) | (v & {max_seq});
END
$pgfleet$;
CREATE OR REPLACE FUNCTION pgfleet.id_parts(id bigint, OUT ts timestamptz, OUT generator integer, OUT seq integer)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $pgfleet$ SELECT timestamptz '2025-01-01 00:00:00+00' + (id >> {time_shift}) * interval '1 millisecond', ((id >> {seq_bits}) & {max_generator})::integer, (id & {max_seq})::integer $pgfleet$;
COMMENT ON FUNCTION pgfleet.id() IS 'pgfleet: the next globally unique id of this sharded database (generator {g}); docs/sharding.md, Globally unique ids';
",
        lock = ADVISORY_LOCK_KEY,
        epoch = EPOCH_UNIX_MS,
        seq_bits = SEQUENCE_BITS,
        time_shift = GENERATOR_BITS + SEQUENCE_BITS,
        max_seq = MAX_SEQUENCE,
        max_generator = MAX_GENERATOR,
        max_wait = MAX_WAIT_MS,
    );
    sql
}

/// An id taken apart (what `pgfleet.id_parts` returns in SQL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdParts {
    /// Milliseconds since [`EPOCH_UNIX_MS`] (2025-01-01 UTC), 0 to [`MAX_MILLIS`].
    pub millis: u64,
    /// The generator (shard) number that made the id, 0 to [`MAX_GENERATOR`].
    pub generator: u16,
    /// The sequence number within the millisecond, 0 to [`MAX_SEQUENCE`].
    pub seq: u16,
}

impl IdParts {
    /// The parts of `id`; `None` for a negative number, which no generator makes.
    pub fn decode(id: i64) -> Option<IdParts> {
        let bits = u64::try_from(id).ok()?;
        Some(IdParts {
            millis: bits >> (GENERATOR_BITS + SEQUENCE_BITS),
            // Masked to 10 and 12 bits: the casts cannot truncate.
            generator: ((bits >> SEQUENCE_BITS) & u64::from(MAX_GENERATOR)) as u16,
            seq: (bits & u64::from(MAX_SEQUENCE)) as u16,
        })
    }

    /// The id with these parts; `None` when a part is out of its range.
    pub fn encode(&self) -> Option<i64> {
        if self.millis > MAX_MILLIS || self.generator > MAX_GENERATOR || self.seq > MAX_SEQUENCE {
            return None;
        }
        let bits = self.millis << (GENERATOR_BITS + SEQUENCE_BITS)
            | u64::from(self.generator) << SEQUENCE_BITS
            | u64::from(self.seq);
        i64::try_from(bits).ok()
    }

    /// The id's time in milliseconds since 1970-01-01 UTC.
    pub fn unix_millis(&self) -> i64 {
        // At most 2^41 - 1 + EPOCH_UNIX_MS: far below i64::MAX.
        EPOCH_UNIX_MS + self.millis as i64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_layout_fills_63_bits() {
        assert_eq!(TIMESTAMP_BITS + GENERATOR_BITS + SEQUENCE_BITS, 63);
        let max = IdParts {
            millis: MAX_MILLIS,
            generator: MAX_GENERATOR,
            seq: MAX_SEQUENCE,
        };
        assert_eq!(max.encode(), Some(i64::MAX));
        let zero = IdParts {
            millis: 0,
            generator: 0,
            seq: 0,
        };
        assert_eq!(zero.encode(), Some(0));
        assert_eq!(IdParts::decode(0), Some(zero));
        assert_eq!(IdParts::decode(i64::MAX), Some(max));
    }

    #[test]
    fn each_part_has_its_bits() {
        let id = IdParts {
            millis: 1,
            generator: 0,
            seq: 0,
        };
        assert_eq!(id.encode(), Some(1 << 22));
        let id = IdParts {
            millis: 0,
            generator: 1,
            seq: 0,
        };
        assert_eq!(id.encode(), Some(1 << 12));
        let id = IdParts {
            millis: 0,
            generator: 0,
            seq: 1,
        };
        assert_eq!(id.encode(), Some(1));
        // A known value: 2025-06-01 12:00:00.123 UTC, shard 5, sequence 77.
        let ms = 1_748_779_200_123 - EPOCH_UNIX_MS;
        let id = IdParts {
            millis: ms as u64,
            generator: 5,
            seq: 77,
        };
        let encoded = id.encode().unwrap();
        assert_eq!(encoded, (ms << 22) | (5 << 12) | 77);
        assert_eq!(
            IdParts::decode(encoded).unwrap().unix_millis(),
            1_748_779_200_123
        );
    }

    #[test]
    fn out_of_range_parts_and_negative_ids_are_refused() {
        let mut p = IdParts {
            millis: MAX_MILLIS + 1,
            generator: 0,
            seq: 0,
        };
        assert_eq!(p.encode(), None);
        p.millis = 0;
        p.generator = MAX_GENERATOR + 1;
        assert_eq!(p.encode(), None);
        p.generator = 0;
        p.seq = MAX_SEQUENCE + 1;
        assert_eq!(p.encode(), None);
        assert_eq!(IdParts::decode(-1), None);
        assert_eq!(IdParts::decode(i64::MIN), None);
    }

    #[test]
    fn generators_are_shard_numbers_up_to_1023() {
        assert_eq!(Generator::new(0).map(Generator::get), Some(0));
        assert_eq!(Generator::new(1023).map(Generator::get), Some(1023));
        assert_eq!(Generator::new(1024), None);
        assert_eq!(Generator::new(70_000), None);
    }

    #[test]
    fn the_epoch_is_2025_01_01_utc() {
        // 55 years of 365 days plus the 14 leap days of 1972..=2024.
        assert_eq!(EPOCH_UNIX_MS, (55 * 365 + 14) * 86_400_000);
    }

    #[test]
    fn the_sql_bakes_in_the_generator_and_the_layout() {
        let sql = id_function_sql(Generator::new(7).unwrap());
        assert!(sql.contains("this shard is generator 7."));
        assert!(sql.contains("AS $pgfleet$ SELECT 7 $pgfleet$"));
        assert!(sql.contains("| (7 << 12) | (v & 4095)"));
        assert!(sql.contains("((v >> 12) << 22)"));
        assert!(sql.contains(" - 1735689600000;"));
        assert!(sql.contains("MAXVALUE 9007199254740991 "), "2^53 - 1");
        assert!(sql.contains(&format!("pg_advisory_lock({ADVISORY_LOCK_KEY})")));
        assert_eq!(
            sql.matches(&format!("pg_advisory_unlock({ADVISORY_LOCK_KEY})"))
                .count(),
            2,
            "unlocked on success and on every error"
        );
        assert!(sql.contains("EXCEPTION WHEN OTHERS OR query_canceled THEN"));
        // Idempotent statements only.
        for line in sql.lines().filter(|l| l.starts_with("CREATE")) {
            assert!(
                line.starts_with("CREATE SCHEMA IF NOT EXISTS")
                    || line.starts_with("CREATE SEQUENCE IF NOT EXISTS")
                    || line.starts_with("CREATE OR REPLACE FUNCTION"),
                "{line}"
            );
        }
        assert_ne!(sql, id_function_sql(Generator::new(8).unwrap()));
    }

    #[test]
    fn the_lock_key_spells_pgfleeti() {
        assert_eq!(&ADVISORY_LOCK_KEY.to_be_bytes(), b"pgfleeti");
    }

    proptest! {
        #[test]
        fn encode_and_decode_round_trip(
            millis in 0..=MAX_MILLIS,
            generator in 0..=MAX_GENERATOR,
            seq in 0..=MAX_SEQUENCE,
        ) {
            let parts = IdParts { millis, generator, seq };
            let id = parts.encode().unwrap();
            prop_assert!(id >= 0);
            prop_assert_eq!(IdParts::decode(id), Some(parts));
        }

        #[test]
        fn decode_and_encode_round_trip(id in 0..=i64::MAX) {
            let parts = IdParts::decode(id).unwrap();
            prop_assert_eq!(parts.encode(), Some(id));
        }

        #[test]
        fn ids_order_by_time_then_generator_then_sequence(
            a in (0..=MAX_MILLIS, 0..=MAX_GENERATOR, 0..=MAX_SEQUENCE),
            b in (0..=MAX_MILLIS, 0..=MAX_GENERATOR, 0..=MAX_SEQUENCE),
        ) {
            let pa = IdParts { millis: a.0, generator: a.1, seq: a.2 };
            let pb = IdParts { millis: b.0, generator: b.1, seq: b.2 };
            // The derived order compares the fields in declaration order.
            prop_assert_eq!(pa.cmp(&pb), pa.encode().unwrap().cmp(&pb.encode().unwrap()));
        }
    }
}
