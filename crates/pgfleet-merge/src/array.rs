//! Concatenating `array_agg` partial results: text form (`{a,b}` + `{c}` → `{a,b,c}`, the
//! outer braces hold the first dimension) and binary form (`array_send`: ndim, flags, element
//! type, per-dimension length and lower bound, then the elements).

use crate::error::MergeError;

fn bad(why: &str) -> MergeError {
    MergeError::BadValue(format!("invalid array from a shard: {why}"))
}

/// Appends partial array `next` to `acc` (both in the same format).
pub fn concat(acc: &mut Vec<u8>, next: &[u8], binary: bool) -> Result<(), MergeError> {
    if binary {
        concat_binary(acc, next)
    } else {
        concat_text(acc, next)
    }
}

fn concat_text(acc: &mut Vec<u8>, next: &[u8]) -> Result<(), MergeError> {
    // array_agg results start at lower bound 1, so there is no `[l:u]=` prefix; refuse one
    // rather than mis-merge it.
    let inner = |a: &[u8]| -> Result<(), MergeError> {
        if a.len() < 2 || a[0] != b'{' || a[a.len() - 1] != b'}' {
            return Err(bad("expected {…}"));
        }
        Ok(())
    };
    inner(acc)?;
    inner(next)?;
    if next.len() == 2 {
        return Ok(());
    }
    acc.pop();
    if acc.len() > 1 {
        acc.push(b',');
    }
    acc.extend_from_slice(&next[1..]);
    Ok(())
}

fn i32_at(b: &[u8], at: usize) -> Result<i32, MergeError> {
    b.get(at..at + 4)
        .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| bad("truncated"))
}

fn concat_binary(acc: &mut Vec<u8>, next: &[u8]) -> Result<(), MergeError> {
    let ndim = i32_at(acc, 0)?;
    if ndim != i32_at(next, 0)? || !(1..=6).contains(&ndim) {
        return Err(bad("arrays of different or unsupported dimensions"));
    }
    if acc.get(8..12) != next.get(8..12) {
        return Err(bad("arrays of different element types"));
    }
    let header = 12 + 8 * ndim as usize;
    if next.len() < header || acc.len() < header {
        return Err(bad("truncated"));
    }
    // Dimensions after the first must agree (array_agg of arrays needs equal shapes).
    for d in 1..ndim as usize {
        if i32_at(acc, 12 + 8 * d)? != i32_at(next, 12 + 8 * d)? {
            return Err(bad("arrays of different shapes"));
        }
    }
    let flags = i32_at(acc, 4)? | i32_at(next, 4)?;
    let len = i32_at(acc, 12)?
        .checked_add(i32_at(next, 12)?)
        .ok_or_else(|| bad("too many elements"))?;
    acc[4..8].copy_from_slice(&flags.to_be_bytes());
    acc[12..16].copy_from_slice(&len.to_be_bytes());
    acc.extend_from_slice(&next[header..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_arrays_concatenate() {
        let mut a = b"{1,2}".to_vec();
        concat(&mut a, b"{3}", false).unwrap();
        assert_eq!(a, b"{1,2,3}");
        let mut m = b"{{1,2}}".to_vec();
        concat(&mut m, b"{{3,4}}", false).unwrap();
        assert_eq!(m, b"{{1,2},{3,4}}");
        assert!(concat(&mut b"[0:1]={1,2}".to_vec(), b"{3}", false).is_err());
    }

    fn int4_array(values: &[Option<i32>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&i32::from(values.iter().any(|v| v.is_none())).to_be_bytes());
        b.extend_from_slice(&23u32.to_be_bytes());
        b.extend_from_slice(&(values.len() as i32).to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        for v in values {
            match v {
                Some(x) => {
                    b.extend_from_slice(&4i32.to_be_bytes());
                    b.extend_from_slice(&x.to_be_bytes());
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        b
    }

    #[test]
    fn binary_arrays_concatenate() {
        let mut a = int4_array(&[Some(1), Some(2)]);
        concat(&mut a, &int4_array(&[None]), true).unwrap();
        assert_eq!(a, int4_array(&[Some(1), Some(2), None]));
    }
}
