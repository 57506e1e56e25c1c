//! Exact `numeric` arithmetic for merging: parse and print the text form, decode and encode the
//! binary form (base-10000 digits, `numeric_send` in PostgreSQL's numeric.c), compare, add, and
//! divide by a row count the way `numeric_div` does for `avg()`.

use std::cmp::Ordering;

/// `NUMERIC_MIN_SIG_DIGITS` in numeric.c: significant digits a division result gets at least.
const MIN_SIG_DIGITS: i64 = 16;
/// `NUMERIC_MAX_DISPLAY_SCALE`.
const MAX_DISPLAY_SCALE: i64 = 1000;
/// Sign words of the binary format.
const SIGN_POS: u16 = 0x0000;
const SIGN_NEG: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_PINF: u16 = 0xD000;
const SIGN_NINF: u16 = 0xF000;

/// A numeric value: exact decimal, NaN or ±Infinity (PostgreSQL 14+).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Numeric {
    /// `NaN` (sorts above every other value and equals itself, as in PostgreSQL).
    NaN,
    /// `Infinity`.
    PosInf,
    /// `-Infinity`.
    NegInf,
    /// `±mantissa × 10^-scale`.
    Finite {
        /// Negative (never set for zero).
        neg: bool,
        /// Decimal digits of the mantissa, most significant first, no leading zeros (empty: 0).
        digits: Vec<u8>,
        /// Digits after the decimal point (the display scale, `dscale`).
        scale: u32,
    },
}

/// A malformed numeric value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadNumeric(pub String);

impl Numeric {
    fn finite(neg: bool, mut digits: Vec<u8>, scale: u32) -> Numeric {
        let lead = digits.iter().take_while(|d| **d == 0).count();
        digits.drain(..lead);
        Numeric::Finite {
            neg: neg && !digits.is_empty(),
            digits,
            scale,
        }
    }

    /// An integer.
    pub fn from_i64(v: i64) -> Numeric {
        let digits = v
            .unsigned_abs()
            .to_string()
            .bytes()
            .map(|b| b - b'0')
            .collect();
        Numeric::finite(v < 0, digits, 0)
    }

    /// Parses `numeric_out` text (also accepts a leading `+` and plain integers).
    pub fn parse(text: &str) -> Result<Numeric, BadNumeric> {
        let t = text.trim();
        match t {
            "NaN" => return Ok(Numeric::NaN),
            "Infinity" | "+Infinity" => return Ok(Numeric::PosInf),
            "-Infinity" => return Ok(Numeric::NegInf),
            _ => {}
        }
        let (neg, body) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(BadNumeric(format!("invalid numeric value `{text}`")));
        }
        let digits = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
        Ok(Numeric::finite(neg, digits, frac.len() as u32))
    }

    /// The text form `numeric_out` prints (all `scale` digits after the point).
    pub fn to_text(&self) -> String {
        let (neg, digits, scale) = match self {
            Numeric::NaN => return "NaN".into(),
            Numeric::PosInf => return "Infinity".into(),
            Numeric::NegInf => return "-Infinity".into(),
            Numeric::Finite { neg, digits, scale } => (*neg, digits, *scale as usize),
        };
        let mut s = String::with_capacity(digits.len() + scale + 3);
        if neg {
            s.push('-');
        }
        let padded: Vec<u8> = if digits.len() <= scale {
            std::iter::repeat_n(0, scale + 1 - digits.len())
                .chain(digits.iter().copied())
                .collect()
        } else {
            digits.clone()
        };
        let int_len = padded.len() - scale;
        for (i, d) in padded.iter().enumerate() {
            if i == int_len {
                s.push('.');
            }
            s.push(char::from(b'0' + d));
        }
        s
    }

    /// Decodes `numeric_send` output.
    pub fn decode_binary(b: &[u8]) -> Result<Numeric, BadNumeric> {
        let bad = || BadNumeric("invalid binary numeric value".into());
        if b.len() < 8 {
            return Err(bad());
        }
        let ndigits = i16::from_be_bytes([b[0], b[1]]);
        let weight = i64::from(i16::from_be_bytes([b[2], b[3]]));
        let sign = u16::from_be_bytes([b[4], b[5]]);
        let dscale = i16::from_be_bytes([b[6], b[7]]);
        match sign {
            SIGN_NAN => return Ok(Numeric::NaN),
            SIGN_PINF => return Ok(Numeric::PosInf),
            SIGN_NINF => return Ok(Numeric::NegInf),
            SIGN_POS | SIGN_NEG => {}
            _ => return Err(bad()),
        }
        if ndigits < 0 || dscale < 0 || b.len() != 8 + 2 * ndigits as usize {
            return Err(bad());
        }
        let groups: Vec<u16> = b[8..]
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        if groups.iter().any(|g| *g >= 10000) {
            return Err(bad());
        }
        let scale = dscale as i64;
        // Decimal digit at position q (10^q) for q from the highest group down to -scale.
        let top = if groups.is_empty() { 0 } else { 4 * weight + 3 };
        let mut digits = Vec::new();
        let mut q = top.max(0);
        while q >= -scale {
            let gi = weight - q.div_euclid(4);
            let d = if gi >= 0 && (gi as usize) < groups.len() {
                let g = groups[gi as usize];
                (g / 10u16.pow(q.rem_euclid(4) as u32) % 10) as u8
            } else {
                0
            };
            digits.push(d);
            q -= 1;
        }
        Ok(Numeric::finite(sign == SIGN_NEG, digits, scale as u32))
    }

    /// Encodes as `numeric_send` does (trailing and leading zero groups stripped).
    pub fn encode_binary(&self, out: &mut Vec<u8>) {
        let (neg, digits, scale) = match self {
            Numeric::NaN => return header(out, 0, 0, SIGN_NAN, 0),
            Numeric::PosInf => return header(out, 0, 0, SIGN_PINF, 0),
            Numeric::NegInf => return header(out, 0, 0, SIGN_NINF, 0),
            Numeric::Finite { neg, digits, scale } => (*neg, digits, *scale as i64),
        };
        let len = digits.len() as i64;
        // digits[k] sits at decimal position p = len - scale - 1 - k.
        let msd = len - scale - 1;
        let digit_at = |q: i64| -> u16 {
            let k = msd - q;
            if k >= 0 && k < len {
                u16::from(digits[k as usize])
            } else {
                0
            }
        };
        if digits.is_empty() {
            return header(out, 0, 0, SIGN_POS, scale as i16);
        }
        let weight = msd.div_euclid(4);
        let low = (-scale).div_euclid(4);
        let mut groups: Vec<u16> = (low..=weight)
            .rev()
            .map(|w| {
                (0..4)
                    .rev()
                    .fold(0, |acc, i| acc * 10 + digit_at(4 * w + i))
            })
            .collect();
        while groups.last() == Some(&0) {
            groups.pop();
        }
        let mut weight = weight;
        while groups.first() == Some(&0) {
            groups.remove(0);
            weight -= 1;
        }
        header(
            out,
            groups.len() as i16,
            weight as i16,
            if neg { SIGN_NEG } else { SIGN_POS },
            scale as i16,
        );
        for g in groups {
            out.extend_from_slice(&g.to_be_bytes());
        }
    }

    /// Exact sum; result scale is the larger scale (as `add_var`).
    pub fn add(&self, other: &Numeric) -> Numeric {
        use Numeric::*;
        match (self, other) {
            (NaN, _) | (_, NaN) | (PosInf, NegInf) | (NegInf, PosInf) => NaN,
            (PosInf, _) | (_, PosInf) => PosInf,
            (NegInf, _) | (_, NegInf) => NegInf,
            (
                Finite {
                    neg: an,
                    digits: ad,
                    scale: as_,
                },
                Finite {
                    neg: bn,
                    digits: bd,
                    scale: bs,
                },
            ) => {
                let scale = (*as_).max(*bs);
                let a = aligned(ad, *as_, scale);
                let b = aligned(bd, *bs, scale);
                if an == bn {
                    Numeric::finite(*an, add_mag(&a, &b), scale)
                } else {
                    match cmp_mag(&a, &b) {
                        Ordering::Less => Numeric::finite(*bn, sub_mag(&b, &a), scale),
                        _ => Numeric::finite(*an, sub_mag(&a, &b), scale),
                    }
                }
            }
        }
    }

    /// `numeric_div(self, count)` for a positive count, with `select_div_scale`'s result scale
    /// and round-half-away-from-zero: what `avg()` returns from its sum and count.
    pub fn div_count(&self, count: i64) -> Numeric {
        let (neg, digits, scale) = match self {
            Numeric::Finite { neg, digits, scale } => (*neg, digits, *scale as i64),
            other => return other.clone(),
        };
        let n = u128::from(count.unsigned_abs().max(1));
        let divisor = Numeric::from_i64(count);
        let (w1, f1) = self.weight_and_first_group();
        let (w2, f2) = divisor.weight_and_first_group();
        let mut qweight = w1 - w2;
        if f1 <= f2 {
            qweight -= 1;
        }
        let rscale = (MIN_SIG_DIGITS - qweight * 4)
            .max(scale)
            .clamp(0, MAX_DISPLAY_SCALE);
        let extra = (rscale - scale).max(0) as usize;
        let mut quotient = Vec::with_capacity(digits.len() + extra);
        let mut rem: u128 = 0;
        for d in digits.iter().copied().chain(std::iter::repeat_n(0, extra)) {
            rem = rem * 10 + u128::from(d);
            quotient.push((rem / n) as u8);
            rem %= n;
        }
        if 2 * rem >= n {
            quotient = add_mag(&quotient, &[1]);
        }
        Numeric::finite(neg, quotient, rscale as u32)
    }

    /// Base-10000 weight and first nonzero base-10000 digit (0, 0 for zero), as
    /// `select_div_scale` reads them.
    fn weight_and_first_group(&self) -> (i64, u32) {
        let Numeric::Finite { digits, scale, .. } = self else {
            return (0, 0);
        };
        if digits.is_empty() {
            return (0, 0);
        }
        let len = digits.len() as i64;
        let msd = len - *scale as i64 - 1;
        let w = msd.div_euclid(4);
        let first = (0..4).rev().fold(0u32, |acc, i| {
            let q = 4 * w + i;
            let k = msd - q;
            let d = if k >= 0 && k < len {
                u32::from(digits[k as usize])
            } else {
                0
            };
            acc * 10 + d
        });
        (w, first)
    }

    /// The same value with trailing fractional zeros removed (for grouping: 1.0 = 1.00).
    pub fn normalized(&self) -> Numeric {
        match self {
            Numeric::Finite { neg, digits, scale } => {
                let mut d = digits.clone();
                let mut s = *scale;
                while s > 0 && d.last() == Some(&0) {
                    d.pop();
                    s -= 1;
                }
                if d.is_empty() {
                    s = 0;
                }
                Numeric::finite(*neg, d, s)
            }
            other => other.clone(),
        }
    }
}

impl Ord for Numeric {
    /// PostgreSQL's order: -Infinity < finite values < Infinity < NaN.
    fn cmp(&self, other: &Numeric) -> Ordering {
        fn rank(n: &Numeric) -> u8 {
            match n {
                Numeric::NegInf => 0,
                Numeric::Finite { .. } => 1,
                Numeric::PosInf => 2,
                Numeric::NaN => 3,
            }
        }
        match (self, other) {
            (
                Numeric::Finite {
                    neg: an,
                    digits: ad,
                    scale: as_,
                },
                Numeric::Finite {
                    neg: bn,
                    digits: bd,
                    scale: bs,
                },
            ) => {
                let sign = |neg: bool, d: &[u8]| -> i8 {
                    if d.is_empty() {
                        0
                    } else if neg {
                        -1
                    } else {
                        1
                    }
                };
                let (sa, sb) = (sign(*an, ad), sign(*bn, bd));
                if sa != sb || sa == 0 {
                    return sa.cmp(&sb);
                }
                let mag = cmp_scaled(ad, *as_, bd, *bs);
                if sa < 0 {
                    mag.reverse()
                } else {
                    mag
                }
            }
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

impl PartialOrd for Numeric {
    fn partial_cmp(&self, other: &Numeric) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn header(out: &mut Vec<u8>, ndigits: i16, weight: i16, sign: u16, dscale: i16) {
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
}

/// Compares |a × 10^-sa| with |b × 10^-sb| (digits without leading zeros, nonzero).
fn cmp_scaled(a: &[u8], sa: u32, b: &[u8], sb: u32) -> Ordering {
    let ea = a.len() as i64 - i64::from(sa);
    let eb = b.len() as i64 - i64::from(sb);
    if ea != eb {
        return ea.cmp(&eb);
    }
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        if x != y {
            return x.cmp(&y);
        }
    }
    Ordering::Equal
}

fn aligned(d: &[u8], scale: u32, to: u32) -> Vec<u8> {
    let mut v = d.to_vec();
    v.extend(std::iter::repeat_n(0, (to - scale) as usize));
    v
}

fn cmp_mag(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip(a);
    let b = strip(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip(d: &[u8]) -> &[u8] {
    let lead = d.iter().take_while(|x| **x == 0).count();
    &d[lead..]
}

fn add_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let (mut i, mut j, mut carry) = (a.len(), b.len(), 0u8);
    while i > 0 || j > 0 || carry > 0 {
        let x = if i > 0 { a[i - 1] } else { 0 };
        let y = if j > 0 { b[j - 1] } else { 0 };
        let s = x + y + carry;
        out.push(s % 10);
        carry = s / 10;
        i = i.saturating_sub(1);
        j = j.saturating_sub(1);
    }
    out.reverse();
    out
}

/// a - b for |a| >= |b|.
fn sub_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let (mut i, mut j, mut borrow) = (a.len(), b.len(), 0i8);
    while i > 0 {
        let x = a[i - 1] as i8;
        let y = if j > 0 { b[j - 1] as i8 } else { 0 };
        let mut d = x - y - borrow;
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        out.push(d as u8);
        i -= 1;
        j = j.saturating_sub(1);
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Numeric {
        Numeric::parse(s).unwrap()
    }

    #[test]
    fn text_round_trip_keeps_scale() {
        for s in [
            "0",
            "0.00",
            "-1.50",
            "123456789012345678901234567890.000001",
            "0.0001",
            "NaN",
            "-Infinity",
        ] {
            assert_eq!(n(s).to_text(), s);
        }
        assert_eq!(n("-0.00").to_text(), "0.00");
        assert!(Numeric::parse("1e5").is_err());
        assert!(Numeric::parse(".").is_err());
    }

    #[test]
    fn binary_round_trip_matches_postgres_layout() {
        // 12345.678 → ndigits 3, weight 1, dscale 3, digits [1, 2345, 6780]
        let mut out = Vec::new();
        n("12345.678").encode_binary(&mut out);
        assert_eq!(
            out,
            vec![0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]
        );
        assert_eq!(Numeric::decode_binary(&out).unwrap().to_text(), "12345.678");
        for s in [
            "0",
            "0.000",
            "-0.0001",
            "10000",
            "100000000.5",
            "NaN",
            "Infinity",
            "-7",
        ] {
            let mut b = Vec::new();
            n(s).encode_binary(&mut b);
            assert_eq!(Numeric::decode_binary(&b).unwrap().to_text(), s, "{s}");
        }
    }

    #[test]
    fn add_and_compare_exactly() {
        assert_eq!(n("10.50").add(&n("2.5")).to_text(), "13.00");
        assert_eq!(n("-10.50").add(&n("2.5")).to_text(), "-8.00");
        assert_eq!(n("0.1").add(&n("-0.1")).to_text(), "0.0");
        assert_eq!(n("Infinity").add(&n("-Infinity")), Numeric::NaN);
        assert!(n("1.0") == n("1.0"));
        assert_eq!(n("1.0").cmp(&n("1.00")), Ordering::Equal);
        assert!(n("-2") < n("-1.5"));
        assert!(n("0.09") < n("0.1"));
        assert!(n("99") < n("100"));
        assert!(n("Infinity") < n("NaN"));
        assert!(n("-Infinity") < n("-99999"));
    }

    #[test]
    fn avg_division_matches_postgres() {
        // Values checked with PostgreSQL 15: avg(x) over the listed inputs.
        assert_eq!(n("3").div_count(2).to_text(), "1.5000000000000000"); // avg(1,2)
        assert_eq!(n("1").div_count(1).to_text(), "1.00000000000000000000"); // avg(1)
        assert_eq!(n("4").div_count(2).to_text(), "2.0000000000000000"); // avg(1,3)
        assert_eq!(n("10").div_count(3).to_text(), "3.3333333333333333"); // avg(1,2,7)
        assert_eq!(n("2").div_count(3).to_text(), "0.66666666666666666667"); // avg(0,0,2)
        assert_eq!(n("-2").div_count(3).to_text(), "-0.66666666666666666667");
        assert_eq!(n("12.50").div_count(2).to_text(), "6.2500000000000000"); // avg(10.00,2.50)
    }
}
