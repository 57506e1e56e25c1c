//! Shard key types and values, and the text form of a value (what an SQL literal, a bind
//! parameter in text format, or a range bound / list value in the config file gives).
//!
//! The config validates range bounds and list values with these, so they live here; the catalog
//! (`pgfleet-catalog`) re-exports them and adds binary-format decoding and the shard functions.
//!
//! Text input follows PostgreSQL 15's input functions for the forms it reads (`int8in`,
//! `uuid_in`, the ISO forms of `date_in` / `timestamp_in`); anything else is an error naming the
//! value and type, never a guess.

use std::fmt;

use crate::calendar::{self, DateTime};

/// The SQL type of a shard key column (`databases.NAME.sharded_tables.TABLE.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShardKeyType {
    /// `bigint` (int8).
    BigInt,
    /// `integer` (int4).
    Integer,
    /// `smallint` (int2).
    SmallInt,
    /// `text`.
    Text,
    /// `varchar` (character varying; hashes and compares like text).
    Varchar,
    /// `uuid`.
    Uuid,
    /// `date`.
    Date,
    /// `timestamp` (without time zone).
    Timestamp,
    /// `timestamptz` (with time zone; stored as UTC).
    TimestampTz,
}

impl ShardKeyType {
    /// Every type with its config spelling.
    pub const CHOICES: &'static [(&'static str, ShardKeyType)] = &[
        ("bigint", ShardKeyType::BigInt),
        ("integer", ShardKeyType::Integer),
        ("smallint", ShardKeyType::SmallInt),
        ("text", ShardKeyType::Text),
        ("varchar", ShardKeyType::Varchar),
        ("uuid", ShardKeyType::Uuid),
        ("date", ShardKeyType::Date),
        ("timestamp", ShardKeyType::Timestamp),
        ("timestamptz", ShardKeyType::TimestampTz),
    ];

    /// The config spelling (also the SQL type name).
    pub fn as_str(self) -> &'static str {
        match self {
            ShardKeyType::BigInt => "bigint",
            ShardKeyType::Integer => "integer",
            ShardKeyType::SmallInt => "smallint",
            ShardKeyType::Text => "text",
            ShardKeyType::Varchar => "varchar",
            ShardKeyType::Uuid => "uuid",
            ShardKeyType::Date => "date",
            ShardKeyType::Timestamp => "timestamp",
            ShardKeyType::TimestampTz => "timestamptz",
        }
    }

    /// Whether `method = "range"` supports this type: integers, dates/timestamps and text
    /// (ordered bytewise, i.e. `COLLATE "C"`). uuid ranges are not offered.
    pub fn rangeable(self) -> bool {
        self != ShardKeyType::Uuid
    }

    /// The inclusive value range of an integer type; `None` for other types.
    pub fn integer_bounds(self) -> Option<(i64, i64)> {
        match self {
            ShardKeyType::BigInt => Some((i64::MIN, i64::MAX)),
            ShardKeyType::Integer => Some((i32::MIN.into(), i32::MAX.into())),
            ShardKeyType::SmallInt => Some((i16::MIN.into(), i16::MAX.into())),
            _ => None,
        }
    }
}

impl fmt::Display for ShardKeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One shard key value, in PostgreSQL's own representation of its type so that equality, order
/// and hashing agree with the server.
///
/// Values of different variants are never compared with each other: a shard map holds values of
/// its table's key type only.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShardKeyValue {
    /// `smallint`, `integer`, `bigint`: the value (range-checked for its type). Equal values of
    /// different integer widths are equal, as in PostgreSQL's cross-type hash opclass.
    Int(i64),
    /// `text`, `varchar`: the UTF-8 bytes; order is bytewise (`COLLATE "C"`).
    Text(String),
    /// `uuid`: the 16 bytes in network order.
    Uuid([u8; 16]),
    /// `date`: days since 2000-01-01; `i32::MAX` / `i32::MIN` are `infinity` / `-infinity`.
    Date(i32),
    /// `timestamp`: microseconds since 2000-01-01 00:00:00; `i64::MAX` / `i64::MIN` are
    /// `infinity` / `-infinity`.
    Timestamp(i64),
    /// `timestamptz`: microseconds since 2000-01-01 00:00:00 UTC; infinities as for timestamp.
    TimestampTz(i64),
}

/// A value that is not a valid shard key of its type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {key_type} value {input}: {reason}")]
pub struct InvalidKeyValue {
    /// The type the value was read as.
    pub key_type: ShardKeyType,
    /// The value as it came in.
    pub input: KeyInput,
    /// What is wrong, lower-case.
    pub reason: String,
}

/// How an invalid value came in, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyInput {
    /// Text form; long values are cut to 64 characters followed by `…`.
    Text(String),
    /// Binary format, with its length in bytes.
    Binary(usize),
}

impl KeyInput {
    /// Text input, cut to 64 characters so that an error never carries a huge value.
    pub fn text(value: &str) -> KeyInput {
        const SHOWN: usize = 64;
        match value.char_indices().nth(SHOWN) {
            Some((cut, _)) => KeyInput::Text(format!("{}…", &value[..cut])),
            None => KeyInput::Text(value.to_string()),
        }
    }
}

impl fmt::Display for KeyInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyInput::Text(text) => write!(f, "`{text}`"),
            KeyInput::Binary(len) => write!(f, "in binary format ({len} bytes)"),
        }
    }
}

impl InvalidKeyValue {
    /// An error for text input `value`.
    pub fn text(key_type: ShardKeyType, value: &str, reason: impl Into<String>) -> Self {
        InvalidKeyValue {
            key_type,
            input: KeyInput::text(value),
            reason: reason.into(),
        }
    }
}

impl ShardKeyValue {
    /// Parses the text form of a value of type `key_type`, as PostgreSQL 15's input function would.
    ///
    /// - integers: optional white space, sign, decimal digits (no `_` separators or hex: those
    ///   arrived in PostgreSQL 16), range-checked for the type;
    /// - text/varchar: taken as is (the shard functions assume UTF-8 server and client encoding);
    /// - uuid: 32 hex digits, a `-` allowed after any group of four, optionally in `{}`;
    /// - date/timestamp/timestamptz: ISO 8601 (`2024-03-05`, `2024-03-05 13:14:15.5+02`, `T`
    ///   allowed), `infinity`, `-infinity`, `epoch`; a time zone in a `date` or `timestamp` value is
    ///   ignored as PostgreSQL ignores it; a `timestamptz` value needs an explicit UTC offset (`Z`,
    ///   `+02`, `-05:30`), because without one its meaning depends on the session's `TimeZone`.
    pub fn parse_text(
        key_type: ShardKeyType,
        text: &str,
    ) -> Result<ShardKeyValue, InvalidKeyValue> {
        let invalid = |reason: String| InvalidKeyValue::text(key_type, text, reason);
        match key_type {
            ShardKeyType::BigInt | ShardKeyType::Integer | ShardKeyType::SmallInt => {
                parse_integer(key_type, text)
                    .map(ShardKeyValue::Int)
                    .map_err(invalid)
            }
            ShardKeyType::Text | ShardKeyType::Varchar => {
                if text.contains('\0') {
                    Err(invalid("text cannot contain a zero byte".to_string()))
                } else {
                    Ok(ShardKeyValue::Text(text.to_string()))
                }
            }
            ShardKeyType::Uuid => parse_uuid(text).map(ShardKeyValue::Uuid).map_err(invalid),
            ShardKeyType::Date => {
                parse_date(calendar::parse_datetime(text).map_err(invalid)?).map_err(invalid)
            }
            ShardKeyType::Timestamp | ShardKeyType::TimestampTz => {
                let parsed = calendar::parse_datetime(text).map_err(invalid)?;
                parse_timestamp(key_type, parsed).map_err(invalid)
            }
        }
    }

    /// Whether this value has the representation of `key_type` (integer widths are checked
    /// against the type's range).
    pub fn is_of_type(&self, key_type: ShardKeyType) -> bool {
        match self {
            ShardKeyValue::Int(v) => key_type
                .integer_bounds()
                .is_some_and(|(lo, hi)| (lo..=hi).contains(v)),
            ShardKeyValue::Text(_) => {
                matches!(key_type, ShardKeyType::Text | ShardKeyType::Varchar)
            }
            ShardKeyValue::Uuid(_) => key_type == ShardKeyType::Uuid,
            ShardKeyValue::Date(_) => key_type == ShardKeyType::Date,
            ShardKeyValue::Timestamp(_) => key_type == ShardKeyType::Timestamp,
            ShardKeyValue::TimestampTz(_) => key_type == ShardKeyType::TimestampTz,
        }
    }
}

/// PostgreSQL's text output of the value (`DateStyle = ISO`, timestamptz in UTC as `+00`).
impl fmt::Display for ShardKeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardKeyValue::Int(v) => write!(f, "{v}"),
            ShardKeyValue::Text(t) => f.write_str(t),
            ShardKeyValue::Uuid(b) => {
                for (i, byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            ShardKeyValue::Date(calendar::DATE_INFINITY) => f.write_str("infinity"),
            ShardKeyValue::Date(calendar::DATE_MINUS_INFINITY) => f.write_str("-infinity"),
            ShardKeyValue::Date(d) => f.write_str(&calendar::format_date(i64::from(*d))),
            ShardKeyValue::Timestamp(t) | ShardKeyValue::TimestampTz(t)
                if *t == calendar::TIMESTAMP_INFINITY =>
            {
                f.write_str("infinity")
            }
            ShardKeyValue::Timestamp(t) | ShardKeyValue::TimestampTz(t)
                if *t == calendar::TIMESTAMP_MINUS_INFINITY =>
            {
                f.write_str("-infinity")
            }
            ShardKeyValue::Timestamp(t) => f.write_str(&calendar::format_timestamp(*t, "")),
            ShardKeyValue::TimestampTz(t) => f.write_str(&calendar::format_timestamp(*t, "+00")),
        }
    }
}

/// `int8in` / `int4in` / `int2in` of PostgreSQL 15: white space, optional sign, digits, white
/// space.
fn parse_integer(key_type: ShardKeyType, text: &str) -> Result<i64, String> {
    let trimmed = text.trim_matches(calendar::is_pg_space);
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not an integer".to_string());
    }
    let (lo, hi) = key_type.integer_bounds().unwrap_or((i64::MIN, i64::MAX));
    // Up to 18 digits fit an i64 whatever they are (the usual key, parsed cheaply); i128 holds
    // any 38-digit number, so only longer inputs fail to parse: out of range too.
    let value = if digits.len() <= 18 {
        trimmed.parse::<i64>().ok()
    } else {
        trimmed
            .parse::<i128>()
            .ok()
            .and_then(|v| i64::try_from(v).ok())
    };
    match value {
        Some(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(format!("out of range for type {key_type}")),
    }
}

/// `uuid_in`: optional `{`, 16 hex byte pairs with an optional `-` after every second pair
/// (except the last), matching `}`, nothing else (no white space).
fn parse_uuid(text: &str) -> Result<[u8; 16], String> {
    const BAD: &str = "expected 32 hex digits such as a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
    let bytes = text.as_bytes();
    let braces = bytes.first() == Some(&b'{');
    let mut pos = usize::from(braces);
    let mut out = [0u8; 16];
    for (i, slot) in out.iter_mut().enumerate() {
        let pair = bytes.get(pos..pos + 2).ok_or(BAD)?;
        let hex = std::str::from_utf8(pair).map_err(|_| BAD)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BAD.to_string());
        }
        *slot = u8::from_str_radix(hex, 16).map_err(|_| BAD)?;
        pos += 2;
        if bytes.get(pos) == Some(&b'-') && i % 2 == 1 && i < 15 {
            pos += 1;
        }
    }
    if braces {
        if bytes.get(pos) != Some(&b'}') {
            return Err(BAD.to_string());
        }
        pos += 1;
    }
    if pos != bytes.len() {
        return Err(BAD.to_string());
    }
    Ok(out)
}

fn parse_date(parsed: DateTime) -> Result<ShardKeyValue, String> {
    match parsed {
        DateTime::Infinity { negative: false } => Ok(ShardKeyValue::Date(calendar::DATE_INFINITY)),
        DateTime::Infinity { negative: true } => {
            Ok(ShardKeyValue::Date(calendar::DATE_MINUS_INFINITY))
        }
        // date_in ignores the time of day and any time zone.
        DateTime::Finite { days, .. } => {
            if (calendar::DATE_MIN..calendar::DATE_END).contains(&days) {
                // In i32 range: DATE_MIN and DATE_END are.
                Ok(ShardKeyValue::Date(days as i32))
            } else {
                Err("date out of range".to_string())
            }
        }
    }
}

fn parse_timestamp(key_type: ShardKeyType, parsed: DateTime) -> Result<ShardKeyValue, String> {
    let wrap = |micros| match key_type {
        ShardKeyType::TimestampTz => ShardKeyValue::TimestampTz(micros),
        _ => ShardKeyValue::Timestamp(micros),
    };
    match parsed {
        DateTime::Infinity { negative: false } => Ok(wrap(calendar::TIMESTAMP_INFINITY)),
        DateTime::Infinity { negative: true } => Ok(wrap(calendar::TIMESTAMP_MINUS_INFINITY)),
        DateTime::Finite { days, time, offset } => {
            let local = calendar::to_micros(days, time).ok_or("timestamp out of range")?;
            let micros = match (key_type, offset) {
                (ShardKeyType::TimestampTz, Some(offset)) => local - offset * 1_000_000,
                (ShardKeyType::TimestampTz, None) => {
                    return Err("a timestamptz shard key needs an explicit UTC offset (e.g. +00 or Z): without one its value depends on the session's TimeZone".to_string())
                }
                // timestamp_in ignores a time zone in the literal.
                _ => local,
            };
            if (calendar::TIMESTAMP_MIN..calendar::TIMESTAMP_END).contains(&micros) {
                Ok(wrap(micros))
            } else {
                Err("timestamp out of range".to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: ShardKeyType, text: &str) -> Result<ShardKeyValue, String> {
        ShardKeyValue::parse_text(t, text).map_err(|e| e.to_string())
    }

    #[test]
    fn integers_like_int8in() {
        use ShardKeyType::*;
        assert_eq!(parse(BigInt, " +42\n"), Ok(ShardKeyValue::Int(42)));
        assert_eq!(parse(BigInt, "-0"), Ok(ShardKeyValue::Int(0)));
        assert_eq!(
            parse(BigInt, "-9223372036854775808"),
            Ok(ShardKeyValue::Int(i64::MIN))
        );
        assert_eq!(parse(SmallInt, "-32768"), Ok(ShardKeyValue::Int(-32768)));
        assert_eq!(
            parse(BigInt, "12a"),
            Err("invalid bigint value `12a`: not an integer".to_string())
        );
        assert_eq!(
            parse(SmallInt, "32768"),
            Err("invalid smallint value `32768`: out of range for type smallint".to_string())
        );
        assert_eq!(
            parse(Integer, "2147483648"),
            Err("invalid integer value `2147483648`: out of range for type integer".to_string())
        );
        for bad in ["", " ", "+", "1 2", "1_000", "0x10", "1.0", "1e3", "٣"] {
            assert!(parse(BigInt, bad).is_err(), "{bad:?}");
        }
        assert!(parse(BigInt, &"9".repeat(60)).is_err());
    }

    #[test]
    fn uuids_like_uuid_in() {
        let want = ShardKeyValue::Uuid([
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11,
        ]);
        for text in [
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
        ] {
            assert_eq!(
                parse(ShardKeyType::Uuid, text).as_ref(),
                Ok(&want),
                "{text}"
            );
        }
        for bad in [
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
            "a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
        ] {
            assert!(parse(ShardKeyType::Uuid, bad).is_err(), "{bad}");
        }
        assert_eq!(want.to_string(), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    }

    #[test]
    fn dates_and_timestamps() {
        use ShardKeyType::*;
        assert_eq!(parse(Date, "2000-01-02"), Ok(ShardKeyValue::Date(1)));
        assert_eq!(
            parse(Date, "2000-01-02 23:59:59+05"),
            Ok(ShardKeyValue::Date(1)),
            "date_in ignores time and zone"
        );
        assert_eq!(
            parse(Timestamp, "2000-01-01 00:00:01+05"),
            Ok(ShardKeyValue::Timestamp(1_000_000)),
            "timestamp_in ignores the zone"
        );
        assert_eq!(
            parse(TimestampTz, "2000-01-01 02:00:00+02"),
            Ok(ShardKeyValue::TimestampTz(0))
        );
        assert!(parse(TimestampTz, "2000-01-01 02:00:00")
            .is_err_and(|e| e.contains("explicit UTC offset")));
        assert_eq!(
            parse(TimestampTz, "infinity"),
            Ok(ShardKeyValue::TimestampTz(i64::MAX))
        );
        assert_eq!(parse(Date, "-infinity"), Ok(ShardKeyValue::Date(i32::MIN)));
        assert!(parse(Timestamp, "294277-01-01").is_err());
        assert!(parse(Timestamp, "294276-12-31 23:59:59.999999").is_ok());
        assert!(parse(Date, "5874898-01-01").is_err());
        assert!(parse(Date, "5874897-12-31").is_ok());
        assert!(parse(Date, "4714-11-23 BC").is_err());
        assert!(parse(Date, "4714-11-24 BC").is_ok());
        for text in [
            "2024-03-05 13:14:15.25",
            "0044-03-15 12:00:00 BC",
            "infinity",
        ] {
            let v = parse(Timestamp, text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(v.to_string(), text);
        }
        let v = parse(TimestampTz, "2024-03-05 13:14:15-01").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.to_string(), "2024-03-05 14:14:15+00");
    }

    #[test]
    fn long_values_are_cut_in_errors() {
        let long = "x".repeat(1000);
        let message = parse(ShardKeyType::BigInt, &long).unwrap_err();
        assert!(message.len() < 150, "{message}");
        assert!(message.contains("…"), "{message}");
    }

    #[test]
    fn types_know_their_methods_and_values() {
        for (name, t) in ShardKeyType::CHOICES {
            assert_eq!(t.as_str(), *name);
        }
        assert!(ShardKeyValue::Int(40_000).is_of_type(ShardKeyType::Integer));
        assert!(!ShardKeyValue::Int(40_000).is_of_type(ShardKeyType::SmallInt));
        assert!(ShardKeyValue::Text("a".into()).is_of_type(ShardKeyType::Varchar));
        assert!(!ShardKeyValue::Date(0).is_of_type(ShardKeyType::Timestamp));
        assert!(ShardKeyType::Date.rangeable());
        assert!(!ShardKeyType::Uuid.rangeable());
    }
}
