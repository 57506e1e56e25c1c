//! WAL positions (`pg_lsn`): PostgreSQL writes them as two hexadecimal numbers, the high and low
//! 32 bits of a 64-bit byte position, e.g. `0/16B3748` (see "pg_lsn Type" in the PostgreSQL docs).

use std::fmt;
use std::str::FromStr;

/// A position in the write-ahead log, in bytes from its start. Ordered: a larger LSN is later.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

/// Text that is not an LSN in PostgreSQL's `X/Y` form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid LSN `{text}`; expected two hexadecimal numbers separated by `/`, e.g. \"0/16B3748\""
)]
pub struct LsnParseError {
    /// The rejected text.
    pub text: String,
}

impl Lsn {
    /// The start of the WAL (`0/0`), which PostgreSQL also uses for "invalid".
    pub const ZERO: Lsn = Lsn(0);

    /// Parses `X/Y` as `pg_lsn_in` does: each half 1–8 hex digits, either case.
    pub fn parse(text: &str) -> Result<Lsn, LsnParseError> {
        let error = || LsnParseError {
            text: text.to_string(),
        };
        let (high, low) = text.trim().split_once('/').ok_or_else(error)?;
        let half = |part: &str| {
            if part.is_empty() || part.len() > 8 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(part, 16).ok()
        };
        let high = half(high).ok_or_else(error)?;
        let low = half(low).ok_or_else(error)?;
        Ok(Lsn((u64::from(high) << 32) | u64::from(low)))
    }

    /// Bytes of WAL from `earlier` to `self`; 0 when `earlier` is not before `self` (a replica
    /// can briefly report a replay position past the primary's last sampled WAL position).
    pub fn bytes_since(self, earlier: Lsn) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl FromStr for Lsn {
    type Err = LsnParseError;

    fn from_str(text: &str) -> Result<Lsn, LsnParseError> {
        Lsn::parse(text)
    }
}

/// PostgreSQL's own spelling (`%X/%X`, upper-case, no padding), so a token round-trips through
/// `SHOW pgfleet.last_write_lsn` and `SET pgfleet.after_lsn` and compares equal to server output.
impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// A byte count for messages, in PostgreSQL's units (1 kB = 1024 bytes): `512 bytes`, `64 MB`,
/// `1.5 GB`.
pub fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{:.1} {}", value, UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_postgres_text() {
        let cases = [
            ("0/0", 0),
            ("0/16B3748", 0x16B_3748),
            ("0/16b3748", 0x16B_3748),
            ("1/0", 1 << 32),
            ("16/B374D848", (0x16 << 32) | 0xB374_D848),
            ("FFFFFFFF/FFFFFFFF", u64::MAX),
        ];
        for (text, want) in cases {
            assert_eq!(Lsn::parse(text), Ok(Lsn(want)), "{text}");
            assert_eq!(Lsn(want).to_string(), text.to_uppercase(), "{text}");
            assert_eq!(text.parse::<Lsn>(), Ok(Lsn(want)));
        }
        assert_eq!(Lsn::parse(" 0/10 "), Ok(Lsn(16)), "surrounding blanks");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "/",
            "0/",
            "/0",
            "0",
            "0/0/0",
            "g/0",
            "0/x1",
            "123456789/0",
            "0/123456789",
            "-1/0",
            "+1/0",
            "0 /1",
        ] {
            let err = Lsn::parse(bad).err();
            assert!(err.is_some(), "{bad:?} parsed");
            let message = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains("e.g. \"0/16B3748\""), "{message}");
        }
    }

    #[test]
    fn orders_and_subtracts() {
        let a = Lsn(0x1_0000_0000);
        let b = Lsn::parse("0/FFFFFFFF").unwrap_or_default();
        assert!(b < a && Lsn::ZERO < b);
        assert_eq!(a.bytes_since(b), 1);
        assert_eq!(b.bytes_since(a), 0, "never negative");
        assert_eq!(a.bytes_since(a), 0);
        let mut sorted = vec![a, Lsn::ZERO, b];
        sorted.sort();
        assert_eq!(sorted, vec![Lsn::ZERO, b, a]);
    }

    #[test]
    fn byte_counts_read_well() {
        let cases = [
            (0, "0 bytes"),
            (1023, "1023 bytes"),
            (1024, "1 kB"),
            (1536, "1.5 kB"),
            (16 << 20, "16 MB"),
            (64 << 20, "64 MB"),
            (3 << 30, "3 GB"),
            (u64::MAX, "16777216 TB"),
        ];
        for (bytes, want) in cases {
            assert_eq!(bytes_text(bytes), want, "{bytes}");
        }
    }
}
