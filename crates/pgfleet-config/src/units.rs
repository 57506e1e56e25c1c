//! Units in config values: durations ("30s", "100ms", "5m") and byte sizes ("64MiB", "512kB").

use std::time::Duration;

/// Parses a humantime duration such as `"30s"`, `"100ms"`, `"5m"`, `"1h 30m"`; `"0s"` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration `{text}` ({e}); write e.g. \"30s\", \"100ms\" or \"5m\"")
    })
}

/// Parses a byte size: a plain number of bytes, or a number with a unit.
///
/// Units follow PostgreSQL (`shared_buffers` etc.): multiples of 1024, so `kB` = `KiB` = 1024 bytes,
/// `MB` = `MiB`, `GB` = `GiB`, `TB` = `TiB`; `B` means bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let hint = "write e.g. \"64MiB\", \"512kB\" or a number of bytes";
    if digits.is_empty() {
        return Err(format!("invalid size `{text}`; {hint}"));
    }
    let number: usize = digits
        .parse()
        .map_err(|_| format!("size `{text}` is too large"))?;
    let multiplier: usize = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" | "KiB" => 1 << 10,
        "MB" | "MiB" => 1 << 20,
        "GB" | "GiB" => 1 << 30,
        "TB" | "TiB" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}`; use B, kB, MB, GB, TB (or KiB, MiB, GiB, TiB); {hint}"
            ))
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size `{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("30s", Duration::from_secs(30)),
            ("100ms", Duration::from_millis(100)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("1h 30m", Duration::from_secs(5400)),
            ("0s", Duration::ZERO),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in ["", "30", "abc", "5 parsecs", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        let ok = [
            ("1024", 1024),
            ("0", 0),
            ("10B", 10),
            ("512kB", 512 * 1024),
            ("512KiB", 512 * 1024),
            ("64MiB", 64 << 20),
            ("64MB", 64 << 20),
            ("64 MiB", 64 << 20),
            ("1GiB", 1 << 30),
            ("2GB", 2 << 30),
        ];
        for (text, want) in ok {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "MiB",
            "12 parsecs",
            "1.5MiB",
            "-1",
            "99999999999999999999999",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
