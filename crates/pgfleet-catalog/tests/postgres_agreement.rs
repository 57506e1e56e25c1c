//! Agreement with a real PostgreSQL server, for thousands of generated values of every key type:
//!
//! - the shard `hash_partition` computes is the partition a real `PARTITION BY HASH (k)` table with
//!   N partitions (N in 2, 3, 4, 7) stores the row in;
//! - the extended hash equals the server's own function (`hashint8extended`, `hashtextextended`,
//!   `uuid_hash_extended`, …) with `HASH_PARTITION_SEED`;
//! - the text form pgfleet parses (varied spellings: white space, signs, leading zeros, uuid
//!   braces and hyphens, ISO dates with `T`, offsets, BC) is the value the server stores: its
//!   binary send format (`int8send`, `date_send`, …) decodes to the same value, and pgfleet's
//!   Display matches the server's text output (`DateStyle = ISO`, `TimeZone = UTC`).
//!
//! Values come from a seeded SplitMix64 generator (the seed is below), so a failure reproduces.

use pgfleet_catalog::hash::{extended_hash, hash_partition, HASH_PARTITION_SEED};
use pgfleet_catalog::{parse_key, ShardKeyType, ShardKeyValue, ValueFormat};
use pgfleet_testkit::Cluster;

const SEED: u64 = 0x05EE_D0FF_1EE7;
const VALUES_PER_TYPE: usize = 3000;
const MODULI: [u64; 4] = [2, 3, 4, 7];
/// Rows per INSERT statement (psql takes the SQL as one argument, limited to 128 KiB).
const BATCH: usize = 400;

/// SplitMix64: tiny, seedable, good enough to spread test values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One key type under test: its SQL name, the server's extended hash of `v.k` with seed `SEED`
/// (where a function is callable by name) and send function.
struct Case {
    key_type: ShardKeyType,
    sql_type: &'static str,
    hash_sql: Option<&'static str>,
    send_fn: &'static str,
}

fn integer_literal(rng: &mut Rng, bits: u32) -> String {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = if bits == 64 {
        i64::MIN
    } else {
        -(1i64 << (bits - 1))
    };
    let v: i64 = match rng.below(10) {
        0 => *rng.pick(&[0, 1, -1, max, min, max - 1, min + 1]),
        1..=4 => rng.below(2001) as i64 - 1000,
        _ => {
            let raw = rng.next() as i64;
            if bits == 64 {
                raw
            } else {
                raw.rem_euclid(max - min + 1) + min
            }
        }
    };
    let digits = v.unsigned_abs().to_string();
    let zeros = if rng.chance(15) { "00" } else { "" };
    let sign = match (v < 0, rng.chance(15)) {
        (true, _) => "-",
        (false, true) => "+",
        (false, false) => "",
    };
    let pad = |rng: &mut Rng| *rng.pick(&["", "", "", " ", "  ", "\t"]);
    format!("{}{sign}{zeros}{digits}{}", pad(rng), pad(rng))
}

fn text_literal(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "a", "b", "z", "A", "0", "9", " ", "_", "-", "'", "\\", "|", "\n", "\t", "é", "ß", "Ω",
        "日本", "🦀", "tenant_", "42", "%", "\"",
    ];
    let len = if rng.chance(5) { 0 } else { rng.below(24) };
    (0..len).map(|_| *rng.pick(PIECES)).collect()
}

fn uuid_literal(rng: &mut Rng) -> String {
    let bytes: Vec<u8> = (0..16).map(|_| rng.below(256) as u8).collect();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hex = if rng.chance(30) {
        hex.to_uppercase()
    } else {
        hex
    };
    let body = match rng.below(3) {
        0 => format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        ),
        1 => hex.clone(),
        _ => (0..8)
            .map(|i| &hex[i * 4..i * 4 + 4])
            .collect::<Vec<_>>()
            .join("-"),
    };
    if rng.chance(20) {
        format!("{{{body}}}")
    } else {
        body
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (literal date part, era suffix) for a random valid date.
fn date_parts(rng: &mut Rng) -> (String, &'static str) {
    let (year, bc) = match rng.below(20) {
        0 => (rng.below(4713) as i64 + 1, true),
        1 => (rng.below(280_000) as i64 + 10_000, false),
        2..=4 => (rng.below(9999) as i64 + 1, false),
        _ => (rng.below(200) as i64 + 1900, false),
    };
    let astronomical = if bc { 1 - year } else { year };
    let month = rng.below(12) as i64 + 1;
    let day = rng.below(days_in_month(astronomical, month) as u64) as i64 + 1;
    let text = if rng.chance(20) {
        format!("{year:04}-{month}-{day}")
    } else {
        format!("{year:04}-{month:02}-{day:02}")
    };
    (text, if bc { " BC" } else { "" })
}

fn time_part(rng: &mut Rng) -> String {
    let (h, m, s) = (rng.below(24), rng.below(60), rng.below(60));
    match rng.below(4) {
        0 => format!("{h:02}:{m:02}"),
        1 => format!("{h:02}:{m:02}:{s:02}"),
        _ => {
            let digits = rng.below(6) as usize + 1;
            let frac: String = (0..digits)
                .map(|_| char::from(b'0' + rng.below(10) as u8))
                .collect();
            format!("{h:02}:{m:02}:{s:02}.{frac}")
        }
    }
}

fn zone(rng: &mut Rng) -> String {
    let h = rng.below(14);
    let m = *rng.pick(&[0, 15, 30, 45]);
    let sign = if rng.chance(50) { "+" } else { "-" };
    match rng.below(6) {
        0 => "Z".to_string(),
        1 => " UTC".to_string(),
        2 => format!("{sign}{h:02}"),
        3 => format!("{sign}{h:02}:{m:02}"),
        4 => format!("{sign}{h:02}{m:02}"),
        _ => format!(" {sign}{h:02}:{m:02}"),
    }
}

fn date_literal(rng: &mut Rng) -> String {
    if rng.chance(2) {
        return rng.pick(&["infinity", "-infinity", "epoch"]).to_string();
    }
    let (date, era) = date_parts(rng);
    if rng.chance(15) {
        format!("{date} {}{era}", time_part(rng))
    } else {
        format!("{date}{era}")
    }
}

fn timestamp_literal(rng: &mut Rng, with_zone: bool) -> String {
    if rng.chance(2) {
        return rng.pick(&["infinity", "-infinity", "epoch"]).to_string();
    }
    let (date, era) = date_parts(rng);
    let sep = if rng.chance(30) { "T" } else { " " };
    let time = if rng.chance(5) && !with_zone {
        String::new()
    } else {
        format!("{sep}{}", time_part(rng))
    };
    let zone = if with_zone || rng.chance(10) {
        zone(rng)
    } else {
        String::new()
    };
    if time.is_empty() {
        format!("{date}{era}")
    } else {
        format!("{date}{time}{zone}{era}")
    }
}

fn literal(rng: &mut Rng, key_type: ShardKeyType) -> String {
    match key_type {
        ShardKeyType::BigInt => integer_literal(rng, 64),
        ShardKeyType::Integer => integer_literal(rng, 32),
        ShardKeyType::SmallInt => integer_literal(rng, 16),
        ShardKeyType::Text | ShardKeyType::Varchar => text_literal(rng),
        ShardKeyType::Uuid => uuid_literal(rng),
        ShardKeyType::Date => date_literal(rng),
        ShardKeyType::Timestamp => timestamp_literal(rng, false),
        ShardKeyType::TimestampTz => timestamp_literal(rng, true),
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex from encode()"))
        .collect()
}

/// Every session: ISO output, UTC, so the server's text output is comparable.
const SESSION: &str = "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC';";

fn check(case: Case, salt: u64) {
    let pg = Cluster::start().expect("start PostgreSQL");
    let mut rng = Rng(SEED ^ salt);
    let literals: Vec<String> = (0..VALUES_PER_TYPE)
        .map(|_| literal(&mut rng, case.key_type))
        .collect();
    let ours: Vec<ShardKeyValue> = literals
        .iter()
        .map(|l| {
            ShardKeyValue::parse_text(case.key_type, l)
                .unwrap_or_else(|e| panic!("pgfleet refused `{l}`: {e}"))
        })
        .collect();

    let ty = case.sql_type;
    let mut setup = format!("CREATE TABLE vals (i int PRIMARY KEY, k {ty});");
    for n in MODULI {
        setup.push_str(&format!(
            "CREATE TABLE h{n} (i int, k {ty}) PARTITION BY HASH (k);"
        ));
        for r in 0..n {
            setup.push_str(&format!(
                "CREATE TABLE h{n}_{r} PARTITION OF h{n} FOR VALUES WITH (MODULUS {n}, REMAINDER {r});"
            ));
        }
    }
    pg.psql(&setup).expect("create tables");
    for (b, chunk) in literals.chunks(BATCH).enumerate() {
        let rows: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(j, l)| format!("({}, {})", b * BATCH + j, quote(l)))
            .collect();
        let sql = format!("{SESSION} INSERT INTO vals VALUES {};", rows.join(","));
        if let Err(e) = pg.psql(&sql) {
            // Find the literal the server refused, for a useful message.
            for (j, l) in chunk.iter().enumerate() {
                let one = format!("{SESSION} SELECT {}::{ty};", quote(l));
                if let Err(e) = pg.psql(&one) {
                    panic!(
                        "PostgreSQL refused `{l}` (value {}), pgfleet accepted it: {e}",
                        b * BATCH + j
                    );
                }
            }
            panic!("insert failed: {e}");
        }
    }
    let mut fill = String::new();
    for n in MODULI {
        fill.push_str(&format!("INSERT INTO h{n} SELECT i, k FROM vals;"));
    }
    pg.psql(&fill).expect("fill partitioned tables");

    let hash = case
        .hash_sql
        .map(|f| f.replace("SEED", &(HASH_PARTITION_SEED as i64).to_string()))
        .unwrap_or_else(|| "''".to_string());
    let partitions: Vec<String> = MODULI
        .iter()
        .map(|n| format!("(SELECT tableoid::regclass::text FROM h{n} WHERE h{n}.i = v.i)"))
        .collect();
    let query = format!(
        "{SESSION} SELECT v.i, {hash}, encode({send}(v.k), 'hex'), encode(convert_to(v.k::text, 'UTF8'), 'hex'), {parts} FROM vals v ORDER BY v.i;",
        send = case.send_fn,
        parts = partitions.join(", ")
    );
    let out = pg.psql(&query).expect("query");
    // psql prints the SET commands' tags ("SET") before the rows.
    let lines: Vec<&str> = out.lines().filter(|l| *l != "SET").collect();
    assert_eq!(lines.len(), VALUES_PER_TYPE, "one row per value");
    let mut checked_hashes = 0;
    for line in lines {
        let cols: Vec<&str> = line.split('|').collect();
        let i: usize = cols[0].parse().expect("row number");
        let (literal, value) = (&literals[i], &ours[i]);
        let what = format!("{ty} literal `{literal}` (value {i}, parsed as {value:?})");

        if let Some(server_hash) = cols[1]
            .parse::<i64>()
            .ok()
            .filter(|_| case.hash_sql.is_some())
        {
            assert_eq!(
                extended_hash(value, HASH_PARTITION_SEED) as i64,
                server_hash,
                "hash of {what}"
            );
            checked_hashes += 1;
        }
        let binary = parse_key(case.key_type, ValueFormat::Binary, &unhex(cols[2]))
            .unwrap_or_else(|e| panic!("binary form of {what}: {e}"));
        assert_eq!(&binary, value, "binary form of {what}");
        let server_text = String::from_utf8(unhex(cols[3])).expect("UTF-8 text output");
        assert_eq!(value.to_string(), server_text, "text output of {what}");
        let reparsed = ShardKeyValue::parse_text(case.key_type, &server_text)
            .unwrap_or_else(|e| panic!("server text `{server_text}` of {what}: {e}"));
        assert_eq!(&reparsed, value, "server text `{server_text}` of {what}");
        for (n, partition) in MODULI.iter().zip(&cols[4..]) {
            let remainder: u64 = partition
                .rsplit('_')
                .next()
                .and_then(|r| r.parse().ok())
                .unwrap_or_else(|| panic!("partition name `{partition}`"));
            assert_eq!(
                hash_partition(Some(value), *n),
                remainder,
                "modulus {n}: {what}"
            );
        }
    }
    if case.hash_sql.is_some() {
        assert_eq!(checked_hashes, VALUES_PER_TYPE);
    }
}

#[test]
fn bigint() {
    check(
        Case {
            key_type: ShardKeyType::BigInt,
            sql_type: "bigint",
            hash_sql: Some("hashint8extended(v.k, SEED)"),
            send_fn: "int8send",
        },
        1,
    );
}

#[test]
fn integer() {
    check(
        Case {
            key_type: ShardKeyType::Integer,
            sql_type: "integer",
            hash_sql: Some("hashint4extended(v.k, SEED)"),
            send_fn: "int4send",
        },
        2,
    );
}

#[test]
fn smallint() {
    check(
        Case {
            key_type: ShardKeyType::SmallInt,
            sql_type: "smallint",
            hash_sql: Some("hashint2extended(v.k, SEED)"),
            send_fn: "int2send",
        },
        3,
    );
}

#[test]
fn text() {
    check(
        Case {
            key_type: ShardKeyType::Text,
            sql_type: "text",
            hash_sql: Some("hashtextextended(v.k, SEED)"),
            send_fn: "textsend",
        },
        4,
    );
}

#[test]
fn varchar() {
    check(
        Case {
            key_type: ShardKeyType::Varchar,
            sql_type: "varchar",
            hash_sql: Some("hashtextextended(v.k, SEED)"),
            send_fn: "varcharsend",
        },
        5,
    );
}

#[test]
fn uuid() {
    check(
        Case {
            key_type: ShardKeyType::Uuid,
            sql_type: "uuid",
            hash_sql: Some("uuid_hash_extended(v.k, SEED)"),
            send_fn: "uuid_send",
        },
        6,
    );
}

#[test]
fn date() {
    check(
        Case {
            key_type: ShardKeyType::Date,
            sql_type: "date",
            hash_sql: None,
            send_fn: "date_send",
        },
        7,
    );
}

#[test]
fn timestamp() {
    check(
        Case {
            key_type: ShardKeyType::Timestamp,
            sql_type: "timestamp",
            hash_sql: Some("timestamp_hash_extended(v.k, SEED)"),
            send_fn: "timestamp_send",
        },
        8,
    );
}

#[test]
fn timestamptz() {
    check(
        Case {
            key_type: ShardKeyType::TimestampTz,
            sql_type: "timestamptz",
            hash_sql: Some("timestamp_hash_extended(v.k::timestamp, SEED)"),
            send_fn: "timestamptz_send",
        },
        9,
    );
}
