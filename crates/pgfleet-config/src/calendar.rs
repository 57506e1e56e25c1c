//! Dates and timestamps as PostgreSQL stores them, for shard keys: a date is an `i32` count of
//! days since 2000-01-01, a timestamp an `i64` count of microseconds since 2000-01-01 00:00:00
//! (UTC for `timestamptz`), both on the proleptic Gregorian calendar (PostgreSQL docs, "Date/Time
//! Types" and appendix B.6 "History of Units"). `infinity` / `-infinity` are the extreme values of
//! each type, exactly as PostgreSQL represents them, so plain integer comparison orders them.
//!
//! Only the ISO 8601 input forms are read (what drivers and `DateStyle = ISO` output produce);
//! anything else is an error, never a guess.

/// Days from 1970-01-01 (Unix) to 2000-01-01 (PostgreSQL's epoch).
const UNIX_TO_PG_DAYS: i64 = 10_957;
const USECS_PER_DAY: i64 = 86_400_000_000;
const USECS_PER_SEC: i64 = 1_000_000;

/// First valid date: 4714-11-24 BC (Julian day 0), as days since 2000-01-01.
pub(crate) const DATE_MIN: i64 = -2_451_545;
/// One past the last valid date (PostgreSQL's `DATE_END_JULIAN` - `POSTGRES_EPOCH_JDATE`).
pub(crate) const DATE_END: i64 = 2_147_483_494 - 2_451_545;
/// First valid timestamp, 4714-11-24 00:00:00 BC (`MIN_TIMESTAMP`).
pub(crate) const TIMESTAMP_MIN: i64 = -211_813_488_000_000_000;
/// One past the last valid timestamp, 294277-01-01 00:00:00 (`END_TIMESTAMP`).
pub(crate) const TIMESTAMP_END: i64 = 9_223_371_331_200_000_000;

/// `date` `infinity` (`DATEVAL_NOEND`) and `-infinity` (`DATEVAL_NOBEGIN`).
pub(crate) const DATE_INFINITY: i32 = i32::MAX;
pub(crate) const DATE_MINUS_INFINITY: i32 = i32::MIN;
/// `timestamp[tz]` `infinity` (`DT_NOEND`) and `-infinity` (`DT_NOBEGIN`).
pub(crate) const TIMESTAMP_INFINITY: i64 = i64::MAX;
pub(crate) const TIMESTAMP_MINUS_INFINITY: i64 = i64::MIN;

/// Days since 2000-01-01 of a proleptic Gregorian date; `year` is astronomical (1 BC = 0).
/// (Howard Hinnant's `days_from_civil`.)
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 - UNIX_TO_PG_DAYS
}

/// The (astronomical year, month, day) of a day count since 2000-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + UNIX_TO_PG_DAYS + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A date/time literal split into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DateTime {
    /// `infinity` or `-infinity`.
    Infinity { negative: bool },
    /// A point in time.
    Finite {
        /// Days since 2000-01-01.
        days: i64,
        /// Microseconds since midnight (up to 24:00:00, which PostgreSQL accepts).
        time: i64,
        /// Explicit UTC offset in seconds east of Greenwich, when the literal has one.
        offset: Option<i64>,
    },
}

/// Parses `YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][ ][zone][ BC|AD]`, `infinity`, `-infinity`,
/// `epoch`. `zone` is `Z`, `UTC`, `GMT` or `±HH[[:]MM[[:]SS]]`. Leading and trailing white space
/// is ignored, as PostgreSQL does.
pub(crate) fn parse_datetime(text: &str) -> Result<DateTime, String> {
    let trimmed = text.trim_matches(is_pg_space);
    match trimmed.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => return Ok(DateTime::Infinity { negative: false }),
        "-infinity" => return Ok(DateTime::Infinity { negative: true }),
        "epoch" => {
            return Ok(DateTime::Finite {
                days: days_from_civil(1970, 1, 1),
                time: 0,
                offset: Some(0),
            })
        }
        "now" | "today" | "tomorrow" | "yesterday" | "allballs" => {
            return Err(format!(
                "`{trimmed}` depends on the current time or date; write the value itself"
            ))
        }
        _ => {}
    }
    let (body, bc) = split_era(trimmed);
    let mut s = Scanner::new(body);
    let year = s.number(1, 7).ok_or("expected a date as YYYY-MM-DD")?;
    s.expect('-').ok_or("expected a date as YYYY-MM-DD")?;
    let month = s.number(1, 2).ok_or("expected a date as YYYY-MM-DD")?;
    s.expect('-').ok_or("expected a date as YYYY-MM-DD")?;
    let day = s.number(1, 2).ok_or("expected a date as YYYY-MM-DD")?;
    if year == 0 {
        return Err("year 0 does not exist (1 BC is followed by 1 AD)".to_string());
    }
    let year = if bc { 1 - year } else { year };
    let (month, day) = (month as u32, day as u32);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err("date out of range (no such day)".to_string());
    }
    let days = days_from_civil(year, month, day);
    let mut time = 0;
    if s.eat('T') || s.eat('t') || (s.peek_is_space() && s.after_spaces_is_digit()) {
        s.skip_spaces();
        time = parse_time(&mut s)?;
    }
    s.skip_spaces();
    let offset = if s.done() {
        None
    } else {
        Some(parse_zone(&mut s)?)
    };
    s.skip_spaces();
    if !s.done() {
        return Err(format!("unexpected `{}`", s.rest()));
    }
    Ok(DateTime::Finite { days, time, offset })
}

/// A trailing `BC` / `AD` era marker, as PostgreSQL writes BC dates (`0044-03-15 BC`).
fn split_era(text: &str) -> (&str, bool) {
    let lower = text.to_ascii_lowercase();
    for (era, bc) in [("bc", true), ("ad", false)] {
        if lower.ends_with(era) {
            let body = &text[..text.len() - 2];
            if body.ends_with(is_pg_space) {
                return (body.trim_end_matches(is_pg_space), bc);
            }
        }
    }
    (text, false)
}

/// `HH:MM[:SS[.ffffff]]` → microseconds since midnight.
fn parse_time(s: &mut Scanner<'_>) -> Result<i64, String> {
    const BAD: &str = "expected a time as HH:MM[:SS[.ffffff]]";
    let hour = s.number(1, 2).ok_or(BAD)?;
    s.expect(':').ok_or(BAD)?;
    let minute = s.number(2, 2).ok_or(BAD)?;
    let mut second = 0;
    let mut micros = 0;
    if s.eat(':') {
        second = s.number(2, 2).ok_or(BAD)?;
        if s.eat('.') {
            let digits = s.digits();
            if digits.is_empty() {
                return Err(BAD.to_string());
            }
            if digits.len() > 6 {
                return Err(
                    "more than 6 fractional digits of a second (PostgreSQL would round; write microseconds)"
                        .to_string(),
                );
            }
            let scale = 10_i64.pow(6 - digits.len() as u32);
            micros = digits.parse::<i64>().map_err(|_| BAD.to_string())? * scale;
        }
    }
    // PostgreSQL accepts 24:00:00 (end of day) and a leap second 60, both rolling over.
    let valid = (hour < 24 || (hour == 24 && minute == 0 && second == 0 && micros == 0))
        && minute < 60
        && second <= 60;
    if !valid {
        return Err("time out of range".to_string());
    }
    Ok((hour * 3600 + minute * 60 + second) * USECS_PER_SEC + micros)
}

/// `Z`, `UTC`, `GMT` or `±HH[[:]MM[[:]SS]]` → seconds east of Greenwich.
fn parse_zone(s: &mut Scanner<'_>) -> Result<i64, String> {
    const BAD: &str =
        "expected a UTC offset such as +02, -05:30 or Z (named time zones are not supported)";
    let rest = s.rest().to_ascii_lowercase();
    for name in ["z", "utc", "gmt"] {
        if rest == name
            || rest
                .strip_prefix(name)
                .is_some_and(|r| r.starts_with(is_pg_space))
        {
            s.advance(name.len());
            return Ok(0);
        }
    }
    let sign = if s.eat('+') {
        1
    } else if s.eat('-') {
        -1
    } else {
        return Err(BAD.to_string());
    };
    let run = s.digits();
    let part =
        |range: std::ops::Range<usize>| run[range].parse::<i64>().map_err(|_| BAD.to_string());
    let (hours, mut minutes, mut seconds) = match run.len() {
        1 | 2 => (part(0..run.len())?, 0, 0),
        4 => (part(0..2)?, part(2..4)?, 0),
        6 => (part(0..2)?, part(2..4)?, part(4..6)?),
        _ => return Err(BAD.to_string()),
    };
    if run.len() <= 2 && s.eat(':') {
        minutes = s.number(2, 2).ok_or(BAD)?;
        if s.eat(':') {
            seconds = s.number(2, 2).ok_or(BAD)?;
        }
    }
    if hours > 15 || minutes > 59 || seconds > 59 {
        return Err("UTC offset out of range (at most ±15:59:59)".to_string());
    }
    Ok(sign * (hours * 3600 + minutes * 60 + seconds))
}

/// White space as PostgreSQL's `isspace` sees it (the C locale set).
pub(crate) fn is_pg_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// A `YYYY-MM-DD` text for days since 2000-01-01, with ` BC` before year 1, as PostgreSQL's
/// `DateStyle = ISO` output writes it.
pub(crate) fn format_date(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    if year <= 0 {
        format!("{:04}-{month:02}-{day:02} BC", 1 - year)
    } else {
        format!("{year:04}-{month:02}-{day:02}")
    }
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` (trailing zeros of the fraction dropped) for microseconds since
/// 2000-01-01, with `zone` (e.g. `+00`) before the era, as PostgreSQL's ISO output does.
pub(crate) fn format_timestamp(micros: i64, zone: &str) -> String {
    let days = micros.div_euclid(USECS_PER_DAY);
    let time = micros.rem_euclid(USECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let secs = time / USECS_PER_SEC;
    let frac = time % USECS_PER_SEC;
    let mut text = format!(
        "{:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        if year <= 0 { 1 - year } else { year },
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        let digits = format!("{frac:06}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    text.push_str(zone);
    if year <= 0 {
        text.push_str(" BC");
    }
    text
}

/// Microseconds since 2000-01-01 of a finite date and time.
pub(crate) fn to_micros(days: i64, time: i64) -> Option<i64> {
    days.checked_mul(USECS_PER_DAY)?.checked_add(time)
}

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn done(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.text.len());
    }

    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Option<()> {
        self.eat(c).then_some(())
    }

    fn peek_is_space(&self) -> bool {
        self.rest().starts_with(is_pg_space)
    }

    fn after_spaces_is_digit(&self) -> bool {
        self.rest()
            .trim_start_matches(is_pg_space)
            .starts_with(|c: char| c.is_ascii_digit())
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches(is_pg_space).len();
    }

    fn digits(&mut self) -> &'a str {
        let rest = self.rest();
        let n = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        self.pos += n;
        &rest[..n]
    }

    /// Between `min` and `max` ASCII digits as a number.
    fn number(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.pos;
        let digits = self.digits();
        if digits.len() < min || digits.len() > max {
            self.pos = start;
            return None;
        }
        digits.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_days() {
        assert_eq!(days_from_civil(2000, 1, 1), 0);
        assert_eq!(days_from_civil(1970, 1, 1), -10_957);
        assert_eq!(days_from_civil(2024, 2, 29), 8825);
        assert_eq!(days_from_civil(-4713, 11, 24), DATE_MIN);
        assert_eq!(civil_from_days(8825), (2024, 2, 29));
        assert_eq!(civil_from_days(DATE_MIN), (-4713, 11, 24));
        // 294277-01-01 in microseconds is END_TIMESTAMP.
        assert_eq!(
            to_micros(days_from_civil(294_277, 1, 1), 0),
            Some(TIMESTAMP_END)
        );
        assert_eq!(
            to_micros(days_from_civil(-4713, 11, 24), 0),
            Some(TIMESTAMP_MIN)
        );
    }

    #[test]
    fn round_trips_every_day_over_a_wide_span() {
        for days in (DATE_MIN..DATE_MIN + 800_000).chain(-400_000..400_000) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn parses_iso_forms() {
        let finite = |days, time, offset| DateTime::Finite { days, time, offset };
        let day = days_from_civil(2024, 3, 5);
        let cases: &[(&str, DateTime)] = &[
            ("2024-03-05", finite(day, 0, None)),
            (" 2024-3-5 ", finite(day, 0, None)),
            ("2024-03-05 13:14", finite(day, 47_640_000_000, None)),
            ("2024-03-05T13:14:15", finite(day, 47_655_000_000, None)),
            ("2024-03-05 13:14:15.5", finite(day, 47_655_500_000, None)),
            (
                "2024-03-05 13:14:15.000001Z",
                finite(day, 47_655_000_001, Some(0)),
            ),
            (
                "2024-03-05 13:14:15+02",
                finite(day, 47_655_000_000, Some(7200)),
            ),
            (
                "2024-03-05 13:14:15 -05:30",
                finite(day, 47_655_000_000, Some(-19_800)),
            ),
            (
                "2024-03-05 13:14:15+0530",
                finite(day, 47_655_000_000, Some(19_800)),
            ),
            (
                "2024-03-05 13:14:15+05:30:10",
                finite(day, 47_655_000_000, Some(19_810)),
            ),
            (
                "2024-03-05 13:14:15 UTC",
                finite(day, 47_655_000_000, Some(0)),
            ),
            ("2024-03-05 24:00:00", finite(day, USECS_PER_DAY, None)),
            (
                "0044-03-15 BC",
                finite(days_from_civil(-43, 3, 15), 0, None),
            ),
            (
                "0044-03-15 12:00:00+00 BC",
                finite(days_from_civil(-43, 3, 15), 43_200_000_000, Some(0)),
            ),
            ("Infinity", DateTime::Infinity { negative: false }),
            ("-infinity", DateTime::Infinity { negative: true }),
            ("epoch", finite(-10_957, 0, Some(0))),
        ];
        for (text, want) in cases {
            assert_eq!(parse_datetime(text).as_ref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_read_exactly() {
        for text in [
            "",
            "2024",
            "2024-02-30",
            "2023-02-29",
            "0000-01-01",
            "2024-13-01",
            "2024-01-01 25:00",
            "2024-01-01 24:00:01",
            "2024-01-01 12:60",
            "2024-01-01 12:00:00.1234567",
            "2024-01-01 12:00:00 Europe/Paris",
            "2024-01-01 12:00:00+16",
            "2024-01-01x",
            "Jan 1 2024",
            "now",
            "today",
        ] {
            assert!(parse_datetime(text).is_err(), "{text} parsed");
        }
    }

    #[test]
    fn formats_like_postgres() {
        assert_eq!(format_date(0), "2000-01-01");
        assert_eq!(format_date(days_from_civil(-43, 3, 15)), "0044-03-15 BC");
        assert_eq!(format_timestamp(1, ""), "2000-01-01 00:00:00.000001");
        assert_eq!(format_timestamp(-1, "+00"), "1999-12-31 23:59:59.999999+00");
        assert_eq!(format_timestamp(1_500_000, ""), "2000-01-01 00:00:01.5");
    }
}
