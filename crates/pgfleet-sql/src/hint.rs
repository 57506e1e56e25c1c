//! Routing hints in SQL comments: `/* pgfleet: role=primary consistency=strong */`, and for
//! sharded databases `/* pgfleet: shard=2 */` or `/* pgfleet: shard_key=42 */`.
//!
//! Comments are found with pg_query's scanner (the real lexer: a `/*` inside a string literal or
//! a dollar-quoted body is not a comment). Keys and values are case-insensitive, except the value
//! of `shard_key` (a text key is case-sensitive; surrounding single quotes are removed); pairs are
//! separated by spaces or commas; the first value of a key wins.

use pg_query::protobuf::Token;

use crate::classify::Target;

/// Consistency levels a hint may ask for (issue 3, item 8).
pub const CONSISTENCY_LEVELS: &[&str] = &["strong", "eventual", "bounded", "read_your_writes"];

/// Hints read from `pgfleet:` comments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hints {
    /// `role=primary` / `role=replica`.
    pub role: Option<Target>,
    /// `consistency=strong|eventual|bounded|read_your_writes` (lower-cased).
    pub consistency: Option<String>,
    /// `shard=N`: run the statement on shard `N` (checked against the shard count by the router).
    pub shard: Option<usize>,
    /// `shard_key=VALUE`: run the statement on the shard of this key value, as text (one word;
    /// `'…'` quotes removed, case kept).
    pub shard_key: Option<String>,
    /// Problems with hint comments (unknown keys, bad values, repeats), for a log line or NOTICE.
    pub errors: Vec<String>,
}

/// The marker that starts a hint comment.
const MARKER: &str = "pgfleet:";

/// Reads every `pgfleet:` comment in `sql`.
pub fn parse_hints(sql: &str) -> Hints {
    let mut hints = Hints::default();
    // Most texts carry no hint: skip the scanner unless the marker's word appears at all.
    if !contains_ignore_case(sql.as_bytes(), b"pgfleet") {
        return hints;
    }
    let tokens = match pg_query::scan_tokens(sql) {
        Ok(t) => t,
        Err(e) => {
            hints.errors.push(format!(
                "hint comments not read, the text does not scan: {e}"
            ));
            return hints;
        }
    };
    for t in tokens {
        let (Ok(start), Ok(end)) = (usize::try_from(t.start), usize::try_from(t.end)) else {
            continue;
        };
        let Some(text) = sql.get(start..end) else {
            continue;
        };
        let body = if t.token == Token::CComment as i32 {
            text.strip_prefix("/*")
                .and_then(|b| b.strip_suffix("*/"))
                .unwrap_or(text)
        } else if t.token == Token::SqlComment as i32 {
            text.strip_prefix("--").unwrap_or(text)
        } else {
            continue;
        };
        let body = body.trim();
        if body.len() >= MARKER.len() && body[..MARKER.len()].eq_ignore_ascii_case(MARKER) {
            read_pairs(&body[MARKER.len()..], &mut hints);
        }
    }
    hints
}

/// `key=value` pairs; spaces around `=` are allowed.
fn read_pairs(body: &str, hints: &mut Hints) {
    let spaced = body.replace('=', " = ");
    let words: Vec<&str> = spaced
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut i = 0;
    while i < words.len() {
        match words.get(i..i + 3) {
            Some([key, "=", value]) if *key != "=" && *value != "=" => {
                apply(&key.to_ascii_lowercase(), value, hints);
                i += 3;
            }
            _ => {
                hints
                    .errors
                    .push(format!("hint `{}` is not of the form key=value", words[i]));
                i += 1;
            }
        }
    }
}

/// `value` as written: only `shard_key` keeps its case.
fn apply(key: &str, written: &str, hints: &mut Hints) {
    let lower = written.to_ascii_lowercase();
    let value = lower.as_str();
    match key {
        "role" => {
            let role = match value {
                "primary" => Target::Primary,
                "replica" => Target::Replica,
                _ => {
                    hints.errors.push(format!(
                        "hint role=`{value}` is not valid (expected primary or replica)"
                    ));
                    return;
                }
            };
            if hints.role.is_some() {
                hints
                    .errors
                    .push("hint `role` given twice, the first one counts".into());
            } else {
                hints.role = Some(role);
            }
        }
        "consistency" => {
            if !CONSISTENCY_LEVELS.contains(&value) {
                hints.errors.push(format!(
                    "hint consistency=`{value}` is not valid (expected {})",
                    CONSISTENCY_LEVELS.join(", ")
                ));
            } else if hints.consistency.is_some() {
                hints
                    .errors
                    .push("hint `consistency` given twice, the first one counts".into());
            } else {
                hints.consistency = Some(value.to_owned());
            }
        }
        "shard" => match value.parse::<usize>() {
            Err(_) => hints.errors.push(format!(
                "hint shard=`{value}` is not valid (expected a shard number)"
            )),
            Ok(_) if hints.shard.is_some() => hints
                .errors
                .push("hint `shard` given twice, the first one counts".into()),
            Ok(n) => hints.shard = Some(n),
        },
        "shard_key" => {
            let unquoted = written
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(written);
            if hints.shard_key.is_some() {
                hints
                    .errors
                    .push("hint `shard_key` given twice, the first one counts".into());
            } else {
                hints.shard_key = Some(unquoted.to_owned());
            }
        }
        _ => hints
            .errors
            .push(format!("unknown hint key `{key}` (ignored)")),
    }
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hints_only_from_comments() {
        let h = parse_hints("/* pgfleet: role=primary */ SELECT 1");
        assert_eq!(h.role, Some(Target::Primary));
        let h = parse_hints("SELECT 1 -- PGFLEET: Role = Replica, consistency=bounded");
        assert_eq!(h.role, Some(Target::Replica));
        assert_eq!(h.consistency.as_deref(), Some("bounded"));
        assert!(h.errors.is_empty());
        let h = parse_hints("SELECT '/* pgfleet: role=primary */'");
        assert_eq!(h, Hints::default());
        let h = parse_hints("SELECT $$ /* pgfleet: role=primary */ $$");
        assert_eq!(h, Hints::default());
        let h = parse_hints("/* pgfleet: role=leader shard=3 consistency=soon */ SELECT 1");
        assert_eq!(h.role, None);
        assert_eq!(h.shard, Some(3));
        assert_eq!(h.errors.len(), 2, "{:?}", h.errors);
        let h = parse_hints("/* pgfleet: shard=x shard_key=AbC shard_key=2 color=red */ SELECT 1");
        assert_eq!(h.shard, None);
        assert_eq!(h.shard_key.as_deref(), Some("AbC"));
        assert_eq!(h.errors.len(), 3, "{:?}", h.errors);
        let h = parse_hints("SELECT 1 -- pgfleet: shard_key='Tenant_42', shard=0");
        assert_eq!(h.shard_key.as_deref(), Some("Tenant_42"));
        assert_eq!(h.shard, Some(0));
        let h = parse_hints("/* outer /* pgfleet: role=primary */ */ SELECT 1");
        assert_eq!(h.role, None);
        let h = parse_hints("/* pgfleet: role=replica */ /* pgfleet: role=primary */ SELECT 1");
        assert_eq!(h.role, Some(Target::Replica));
        assert_eq!(h.errors.len(), 1);
    }
}
