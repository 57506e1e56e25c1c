//! Shard key values from the wire: a bind parameter (or a literal pgfleet extracted from SQL) comes
//! as bytes in text or binary format (protocol docs, "Message Formats": Bind; each type's binary
//! format is its `typsend` output).

use pgfleet_config::{InvalidKeyValue, KeyInput, ShardKeyType, ShardKeyValue};

/// The format code of a value (0 = text, 1 = binary in the protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueFormat {
    /// The type's text form, as in an SQL literal.
    Text,
    /// The type's binary send format.
    Binary,
}

/// Reads a shard key value of `key_type` from its wire bytes.
///
/// Text format must be UTF-8 (pgfleet assumes `client_encoding` = server encoding = UTF8 for text
/// shard keys). Binary formats: int2/int4/int8 big-endian — for any integer key type a 2-, 4- or
/// 8-byte integer is accepted and range-checked, since a client may bind a narrower or wider
/// integer than the column; text/varchar the raw bytes (UTF-8); uuid 16 bytes; date an int4 of
/// days since 2000-01-01; timestamp/timestamptz an int8 of microseconds since 2000-01-01
/// (UTC for timestamptz).
pub fn parse_key(
    key_type: ShardKeyType,
    format: ValueFormat,
    bytes: &[u8],
) -> Result<ShardKeyValue, InvalidKeyValue> {
    match format {
        ValueFormat::Text => match std::str::from_utf8(bytes) {
            Ok(text) => ShardKeyValue::parse_text(key_type, text),
            Err(_) => Err(InvalidKeyValue {
                key_type,
                input: KeyInput::text(&String::from_utf8_lossy(bytes)),
                reason: "not valid UTF-8".to_string(),
            }),
        },
        ValueFormat::Binary => decode_binary(key_type, bytes).map_err(|reason| InvalidKeyValue {
            key_type,
            input: KeyInput::Binary(bytes.len()),
            reason,
        }),
    }
}

fn decode_binary(key_type: ShardKeyType, bytes: &[u8]) -> Result<ShardKeyValue, String> {
    let value = match key_type {
        ShardKeyType::BigInt | ShardKeyType::Integer | ShardKeyType::SmallInt => {
            let v = match bytes.len() {
                2 => i64::from(i16::from_be_bytes(fixed(bytes)?)),
                4 => i64::from(i32::from_be_bytes(fixed(bytes)?)),
                8 => i64::from_be_bytes(fixed(bytes)?),
                n => return Err(format!("expected a 2, 4 or 8 byte integer, got {n} bytes")),
            };
            ShardKeyValue::Int(v)
        }
        ShardKeyType::Text | ShardKeyType::Varchar => match std::str::from_utf8(bytes) {
            Ok(_) if bytes.contains(&0) => return Err("text cannot contain a zero byte".into()),
            Ok(text) => ShardKeyValue::Text(text.to_string()),
            Err(_) => return Err("not valid UTF-8".to_string()),
        },
        ShardKeyType::Uuid => ShardKeyValue::Uuid(fixed(bytes)?),
        ShardKeyType::Date => ShardKeyValue::Date(i32::from_be_bytes(fixed(bytes)?)),
        ShardKeyType::Timestamp => ShardKeyValue::Timestamp(i64::from_be_bytes(fixed(bytes)?)),
        ShardKeyType::TimestampTz => ShardKeyValue::TimestampTz(i64::from_be_bytes(fixed(bytes)?)),
    };
    if value.is_of_type(key_type) {
        Ok(value)
    } else {
        Err(format!("{value} is out of range for type {key_type}"))
    }
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: ShardKeyType, s: &str) -> Result<ShardKeyValue, String> {
        parse_key(t, ValueFormat::Text, s.as_bytes()).map_err(|e| e.to_string())
    }

    fn binary(t: ShardKeyType, b: &[u8]) -> Result<ShardKeyValue, String> {
        parse_key(t, ValueFormat::Binary, b).map_err(|e| e.to_string())
    }

    #[test]
    fn integers_in_every_width() {
        use ShardKeyType::*;
        assert_eq!(
            binary(BigInt, &42i64.to_be_bytes()),
            Ok(ShardKeyValue::Int(42))
        );
        assert_eq!(
            binary(BigInt, &(-2i32).to_be_bytes()),
            Ok(ShardKeyValue::Int(-2))
        );
        assert_eq!(
            binary(SmallInt, &7i16.to_be_bytes()),
            Ok(ShardKeyValue::Int(7))
        );
        assert_eq!(
            binary(SmallInt, &7i64.to_be_bytes()),
            Ok(ShardKeyValue::Int(7))
        );
        assert_eq!(
            binary(SmallInt, &70_000i32.to_be_bytes()),
            Err("invalid smallint value in binary format (4 bytes): 70000 is out of range for type smallint".into())
        );
        assert_eq!(
            binary(Integer, &[0, 0, 1]),
            Err("invalid integer value in binary format (3 bytes): expected a 2, 4 or 8 byte integer, got 3 bytes".into())
        );
        assert_eq!(text(BigInt, "-17"), Ok(ShardKeyValue::Int(-17)));
        assert_eq!(
            text(BigInt, "seventeen"),
            Err("invalid bigint value `seventeen`: not an integer".into())
        );
    }

    #[test]
    fn text_uuid_and_times() {
        use ShardKeyType::*;
        assert_eq!(
            binary(Text, "été".as_bytes()),
            Ok(ShardKeyValue::Text("été".into()))
        );
        assert!(binary(Varchar, &[0xff, 0xfe]).is_err_and(|e| e.contains("UTF-8")));
        assert!(text(Text, "a\0b").is_err());
        assert!(parse_key(Text, ValueFormat::Text, &[b'a', 0xff]).is_err());
        let uuid = [7u8; 16];
        assert_eq!(binary(Uuid, &uuid), Ok(ShardKeyValue::Uuid(uuid)));
        assert!(binary(Uuid, &uuid[..15]).is_err_and(|e| e.contains("expected 16 bytes, got 15")));
        assert_eq!(binary(Date, &1i32.to_be_bytes()), text(Date, "2000-01-02"));
        assert_eq!(
            binary(Timestamp, &1_000_000i64.to_be_bytes()),
            text(Timestamp, "2000-01-01 00:00:01")
        );
        assert_eq!(
            binary(TimestampTz, &0i64.to_be_bytes()),
            text(TimestampTz, "2000-01-01 01:00:00+01")
        );
        assert!(binary(Timestamp, &0i32.to_be_bytes()).is_err());
    }
}
