//! Array values for `key = ANY(…)`: PostgreSQL's text array literal (`'{1,2,NULL}'`, what
//! `array_in` reads) and the binary array format (`array_send`). `= ANY` compares with every
//! element of every dimension, so both readers flatten.

/// The elements of a text array literal, in order; `None` is SQL NULL.
///
/// Follows `array_in` (PostgreSQL docs, "Arrays", "Array Value Input"): optional dimension
/// decoration `[1:2]=`, `{…}` nested to any depth, elements separated by `,`, double-quoted
/// elements with `\` escapes, unquoted elements trimmed of white space with `\` escapes, and an
/// unquoted `NULL` (any case) as the null value.
pub(crate) fn parse_text_array(text: &str) -> Result<Vec<Option<String>>, String> {
    let mut rest = text.trim_start();
    if rest.starts_with('[') {
        let eq = rest
            .find('=')
            .ok_or_else(|| "array dimensions without `=`".to_string())?;
        rest = rest[eq + 1..].trim_start();
    }
    let chars: Vec<char> = rest.chars().collect();
    if chars.first() != Some(&'{') {
        return Err("array value must start with \"{\" or dimension information".to_string());
    }
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    // After `{` or `,` an element (or a nested `{`) is expected; after an element, `,` or `}`.
    let mut expect_element = true;
    let mut closed_at = None;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' if expect_element => {
                depth += 1;
                i += 1;
            }
            '}' => {
                if depth == 0 {
                    return Err("unbalanced `}`".to_string());
                }
                // `{}` (empty) is fine; `{1,}` is not.
                if expect_element && chars[i - 1] != '{' {
                    return Err("missing element before `}`".to_string());
                }
                depth -= 1;
                expect_element = false;
                i += 1;
                if depth == 0 {
                    closed_at = Some(i);
                    break;
                }
            }
            ',' if !expect_element => {
                expect_element = true;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '"' if expect_element => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated quoted element".to_string()),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            let escaped = chars
                                .get(i + 1)
                                .ok_or_else(|| "unterminated quoted element".to_string())?;
                            value.push(*escaped);
                            i += 2;
                        }
                        Some(ch) => {
                            value.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Some(value));
                expect_element = false;
            }
            _ if expect_element => {
                let mut value = String::new();
                let mut quoted_any = false;
                while let Some(&ch) = chars.get(i) {
                    match ch {
                        ',' | '}' | '{' | '"' => break,
                        '\\' => {
                            let escaped = chars
                                .get(i + 1)
                                .ok_or_else(|| "unterminated escape".to_string())?;
                            value.push(*escaped);
                            quoted_any = true;
                            i += 2;
                        }
                        _ => {
                            value.push(ch);
                            i += 1;
                        }
                    }
                }
                let trimmed = value.trim();
                if !quoted_any && trimmed.eq_ignore_ascii_case("null") {
                    out.push(None);
                } else {
                    out.push(Some(trimmed.to_string()));
                }
                expect_element = false;
            }
            other => return Err(format!("unexpected character `{other}`")),
        }
    }
    match closed_at {
        Some(end) if chars[end..].iter().all(|c| c.is_whitespace()) => Ok(out),
        Some(_) => Err("junk after closing `}`".to_string()),
        None => Err("unterminated array".to_string()),
    }
}

/// The elements of a binary-format array (`array_send`: ndim, has-null flag, element type oid,
/// (size, lower bound) per dimension, then length-prefixed elements, -1 for NULL).
pub(crate) fn parse_binary_array(bytes: &[u8]) -> Result<Vec<Option<&[u8]>>, String> {
    let mut r = Reader { bytes, at: 0 };
    let ndim = r.int()?;
    let _has_null = r.int()?;
    let _element_type = r.int()?;
    if !(0..=6).contains(&ndim) {
        return Err(format!("binary array with {ndim} dimensions"));
    }
    let mut count: usize = if ndim == 0 { 0 } else { 1 };
    for _ in 0..ndim {
        let size = r.int()?;
        let _lower_bound = r.int()?;
        let size = usize::try_from(size).map_err(|_| "negative array dimension".to_string())?;
        // Every element takes at least 4 bytes: a larger count cannot be real.
        count = count
            .checked_mul(size)
            .filter(|c| *c <= bytes.len() / 4)
            .ok_or_else(|| "binary array dimensions larger than the value".to_string())?;
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = r.int()?;
        if len < 0 {
            out.push(None);
            continue;
        }
        out.push(Some(r.take(len as usize)?));
    }
    if r.at != bytes.len() {
        return Err("junk after the last binary array element".to_string());
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(len).filter(|e| *e <= self.bytes.len());
        let part = end
            .map(|e| &self.bytes[self.at..e])
            .ok_or_else(|| "binary array ends early".to_string())?;
        self.at += len;
        Ok(part)
    }

    fn int(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|e| e.map(str::to_string)).collect()
    }

    #[test]
    fn text_arrays() {
        assert_eq!(
            parse_text_array("{1,2,3}"),
            Ok(s(&[Some("1"), Some("2"), Some("3")]))
        );
        assert_eq!(
            parse_text_array(" { 1 , NULL,null } "),
            Ok(s(&[Some("1"), None, None]))
        );
        assert_eq!(parse_text_array("{}"), Ok(vec![]));
        assert_eq!(
            parse_text_array(r#"{"a b","NULL","x\"y",c\,d}"#),
            Ok(s(&[Some("a b"), Some("NULL"), Some("x\"y"), Some("c,d")]))
        );
        assert_eq!(
            parse_text_array("[0:1][1:1]={{1},{2}}"),
            Ok(s(&[Some("1"), Some("2")]))
        );
        for bad in ["1,2", "{1,2", "{1,}", "{1}}", "{1} x", "{\"a}", ""] {
            assert!(parse_text_array(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn binary_arrays() {
        let mut b = Vec::new();
        for v in [1i32, 1, 20, 3, 1] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&8i32.to_be_bytes());
        b.extend_from_slice(&7i64.to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&4i32.to_be_bytes());
        b.extend_from_slice(&9i32.to_be_bytes());
        let seven = 7i64.to_be_bytes();
        let nine = 9i32.to_be_bytes();
        assert_eq!(
            parse_binary_array(&b),
            Ok(vec![Some(&seven[..]), None, Some(&nine[..])])
        );
        assert!(parse_binary_array(&b[..b.len() - 1]).is_err());
        let mut empty = Vec::new();
        for v in [0i32, 0, 20] {
            empty.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(parse_binary_array(&empty), Ok(vec![]));
        let mut huge = Vec::new();
        for v in [1i32, 0, 20, i32::MAX, 1] {
            huge.extend_from_slice(&v.to_be_bytes());
        }
        assert!(parse_binary_array(&huge).is_err());
    }
}
