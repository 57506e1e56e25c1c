//! Literal-insensitive statement keys: `SELECT … WHERE id = 42` and `… id = 43` share one key
//! (`SELECT … WHERE id = $1`) and one cached analysis, with the literals kept aside as the values
//! of the parameters that replaced them. Simple-protocol clients (and pgbench `-M simple`) send
//! a new text for every key value; without this every one of them is a parse.
//!
//! A hand-written scan of PostgreSQL's lexical structure, not a parser, and deliberately
//! conservative: it replaces only unsigned integer literals and plain single-quoted strings, and
//! gives up (`None`: use the exact text) on anything whose meaning it would have to guess —
//! parameters already in the text (`$1`), dollar quoting, prefixed strings (`E'…'`, `B'…'`,
//! `X'…'`, `U&'…'`, `N'…'`), backslashes in strings (their meaning depends on
//! `standard_conforming_strings`), string continuation over a newline, unterminated quotes or
//! comments. Comments (and so `/* pgfleet: … */` hints) are kept as written. A key whose
//! placeholders do not parse (`varchar(10)` → `varchar($1)`, `SET x = 5`) is the caller's to
//! detect: plan the exact text then.

use std::borrow::Cow;

use smallvec::SmallVec;

/// Literal values kept inline by [`normalize`] (more go to the heap).
pub const INLINE_LITERALS: usize = 4;

/// A text's literal values: borrowed from the text unless a string's `''` had to be undone.
pub type LiteralValues<'a> = SmallVec<[Cow<'a, str>; INLINE_LITERALS]>;

/// A text with its literals replaced by `$1…$n` (in text order) and their values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized<'a> {
    /// The text with placeholders.
    pub key: String,
    /// Each placeholder's value as text (a string's value with `''` undone).
    pub values: LiteralValues<'a>,
}

/// Texts longer than this are not normalized (they are not cached either).
const MAX_TEXT: usize = 16 * 1024;

fn ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn ident_char(b: u8) -> bool {
    ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// The text with its literals replaced, or `None` when it has none or cannot be normalized
/// safely (see the module documentation).
pub fn normalize(sql: &str) -> Option<Normalized<'_>> {
    if sql.len() > MAX_TEXT {
        return None;
    }
    let b = sql.as_bytes();
    let mut key = String::with_capacity(sql.len() + 8);
    let mut values = LiteralValues::new();
    // The last byte that was not whitespace or part of a comment.
    let mut prev_significant = 0u8;
    // Start of the text not yet copied to `key`.
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 1;
                i += 2;
                while depth > 0 {
                    match (b.get(i), b.get(i + 1)) {
                        (Some(b'*'), Some(b'/')) => {
                            depth -= 1;
                            i += 2;
                        }
                        (Some(b'/'), Some(b'*')) => {
                            depth += 1;
                            i += 2;
                        }
                        (Some(_), _) => i += 1,
                        (None, _) => return None,
                    }
                }
                continue;
            }
            b'"' => {
                i += 1;
                loop {
                    match b.get(i) {
                        Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                        None => return None,
                    }
                }
                i += 1;
                prev_significant = b'"';
                continue;
            }
            b'$' => return None,
            b'\'' => {
                // A prefix glued to the quote (E'', B'', X'', N'', U&'') changes the meaning.
                if i > 0 && (ident_char(b[i - 1]) || b[i - 1] == b'&') {
                    return None;
                }
                let start = i;
                // Whether the value has a `''` to undo (else it is the text between the quotes).
                let mut doubled = false;
                i += 1;
                loop {
                    match b.get(i) {
                        Some(b'\'') if b.get(i + 1) == Some(&b'\'') => {
                            doubled = true;
                            i += 2;
                        }
                        Some(b'\'') => break,
                        Some(b'\\') | None => return None,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
                // 'a'
                // 'b' is one string in PostgreSQL: leave such texts alone.
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if b.get(j) == Some(&b'\'') {
                    return None;
                }
                key.push_str(&sql[copied..start]);
                // Quotes are ASCII, so these are character boundaries.
                let inner = &sql[start + 1..i - 1];
                values.push(if doubled {
                    Cow::Owned(inner.replace("''", "'"))
                } else {
                    Cow::Borrowed(inner)
                });
                placeholder(&mut key, values.len());
                copied = i;
                prev_significant = b'\'';
                continue;
            }
            _ if c.is_ascii_digit() => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let glued = b.get(i).is_some_and(|&n| n == b'.' || ident_char(n));
                let signed = matches!(prev_significant, b'-' | b'+' | b'.');
                if glued || signed {
                    // A float, `1e5`, `0x1f`, `1_000`, `-5`, `.5`: kept as written.
                    while i < b.len() && (ident_char(b[i]) || b[i] == b'.') {
                        i += 1;
                    }
                } else {
                    key.push_str(&sql[copied..start]);
                    values.push(Cow::Borrowed(&sql[start..i]));
                    placeholder(&mut key, values.len());
                    copied = i;
                }
                prev_significant = b'0';
                continue;
            }
            _ if ident_start(c) => {
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
                prev_significant = b'a';
                continue;
            }
            _ => {
                if !c.is_ascii_whitespace() {
                    prev_significant = c;
                }
                i += 1;
            }
        }
    }
    if values.is_empty() {
        return None;
    }
    key.push_str(&sql[copied..]);
    Some(Normalized { key, values })
}

/// Appends `$n` (by hand: `write!` costs more than the rest of a short text's scan).
fn placeholder(key: &mut String, n: usize) {
    key.push('$');
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    key.extend(digits[at..].iter().map(|&d| char::from(d)));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(sql: &str) -> Option<(String, Vec<&'static str>)> {
        normalize(sql).map(|n| {
            let values = n
                .values
                .iter()
                .map(|v| &*Box::leak(v.to_string().into_boxed_str()))
                .collect();
            (n.key, values)
        })
    }

    #[test]
    fn placeholders_count_past_nine() {
        let sql = format!(
            "SELECT * FROM t WHERE id IN ({})",
            (1..=12)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let n = normalize(&sql).unwrap();
        assert_eq!(
            n.key,
            "SELECT * FROM t WHERE id IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        assert_eq!(n.values.len(), 12);
        assert_eq!(n.values[11], "12");
        let mut key = String::new();
        placeholder(&mut key, 0);
        placeholder(&mut key, 100);
        placeholder(&mut key, usize::MAX);
        assert_eq!(key, format!("$0$100${}", usize::MAX));
    }

    #[test]
    fn integers_and_strings_become_parameters() {
        assert_eq!(
            key("SELECT abalance FROM pgbench_accounts WHERE aid = 4242;"),
            Some((
                "SELECT abalance FROM pgbench_accounts WHERE aid = $1;".into(),
                vec!["4242"]
            ))
        );
        assert_eq!(
            key("select * from t where name = 'it''s' and id in (1, 22) limit 10"),
            Some((
                "select * from t where name = $1 and id in ($2, $3) limit $4".into(),
                vec!["it's", "1", "22", "10"]
            ))
        );
    }

    #[test]
    fn comments_identifiers_and_signed_or_float_numbers_are_kept() {
        assert_eq!(
            key("/* pgfleet: shard=2 */ SELECT t1.x, \"a'1\" FROM t1 -- 5\nWHERE v = -5 AND w = 1.5 AND z = 1e3 AND q = 7"),
            Some((
                "/* pgfleet: shard=2 */ SELECT t1.x, \"a'1\" FROM t1 -- 5\nWHERE v = -5 AND w = 1.5 AND z = 1e3 AND q = $1".into(),
                vec!["7"]
            ))
        );
        assert_eq!(key("SELECT now()"), None);
        assert_eq!(
            key("SELECT x FROM a$b WHERE y = 2").unwrap().0,
            "SELECT x FROM a$b WHERE y = $1"
        );
    }

    #[test]
    fn gives_up_where_meaning_would_be_guessed() {
        for sql in [
            "SELECT $1 + 2",
            "SELECT $$x$$, 1",
            "SELECT E'a\\nb', 1",
            "SELECT 'a\\b', 1",
            "SELECT B'101', 1",
            "SELECT X'1f', 1",
            "SELECT U&'d\\0061t', 1",
            "SELECT N'x', 1",
            "SELECT 'a'\n'b', 1",
            "SELECT 'unterminated",
            "SELECT 1 /* unterminated",
            "SELECT \"unterminated",
        ] {
            assert_eq!(normalize(sql), None, "{sql}");
        }
    }

    #[test]
    fn nested_comments_and_multibyte_text() {
        assert_eq!(
            key("SELECT /* a /* b */ 5 */ 'é' FROM t WHERE ü = 3")
                .unwrap()
                .0,
            "SELECT /* a /* b */ 5 */ $1 FROM t WHERE ü = $2"
        );
    }
}
