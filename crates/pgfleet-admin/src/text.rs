//! How times and durations are rendered in admin tables: UTC timestamps in RFC 3339 form and
//! durations in the config file's own syntax, so a SHOW CONFIG value can be pasted back into it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2024-05-01T12:34:56Z` (UTC, whole seconds); times before 1970 show as the epoch.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, restricted to non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A duration as the config file writes it: `"0s"`, `"500ms"`, `"30s"`, `"5m"`, `"1h"`; the
/// largest unit that divides it exactly.
pub fn duration_text(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    match (d.subsec_nanos(), d.subsec_micros() % 1000) {
        (0, _) => {}
        (_, 0) => return format!("{}ms", d.as_millis()),
        _ => return format!("{}us", d.as_micros()),
    }
    let secs = d.as_secs();
    // A tuple match rather than `x % n == 0` keeps this readable and within MSRV 1.85
    // (`is_multiple_of` is newer).
    match (secs % 3600, secs % 60) {
        (0, _) => format!("{}h", secs / 3600),
        (_, 0) => format!("{}m", secs / 60),
        _ => format!("{secs}s"),
    }
}

/// Time left on a ban in seconds with one decimal, rounded up so a running ban never reads
/// `0.0s`: `0.1s`, `4.2s`, `60.0s`.
pub fn ban_left_text(d: Duration) -> String {
    let tenths = d.as_nanos().div_ceil(100_000_000);
    format!("{}.{}s", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (1_714_566_896, "2024-05-01T12:34:56Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
        ];
        for (secs, want) in cases {
            assert_eq!(
                rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs)),
                want,
                "{secs}"
            );
        }
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn ban_time_left() {
        let cases = [
            (Duration::from_nanos(1), "0.1s"),
            (Duration::from_millis(100), "0.1s"),
            (Duration::from_millis(4_150), "4.2s"),
            (Duration::from_millis(4_200), "4.2s"),
            (Duration::from_secs(60), "60.0s"),
            (Duration::from_secs(125), "125.0s"),
        ];
        for (d, want) in cases {
            assert_eq!(ban_left_text(d), want, "{d:?}");
        }
    }

    #[test]
    fn durations_round_trip_through_the_config_syntax() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(250), "250us"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(5400), "90m"),
        ];
        for (d, want) in cases {
            assert_eq!(duration_text(d), want);
            assert_eq!(pgfleet_config::units::parse_duration(want), Ok(d), "{want}");
        }
    }
}
