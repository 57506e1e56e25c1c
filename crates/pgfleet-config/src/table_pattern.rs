//! Table name patterns of placement groups (`tables = ["audit_*"]`): `*` matches any run of
//! characters (also none); every other character matches itself, case-sensitively, against the
//! table name as PostgreSQL stores it (unquoted identifiers folded to lower case).

use std::fmt;

use crate::reader::Reader;

/// A table name or a glob on table names with `*` wildcards.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TablePattern(String);

impl TablePattern {
    /// The pattern as written.
    pub fn new(pattern: impl Into<String>) -> Self {
        TablePattern(pattern.into())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the pattern has no `*`, i.e. names one table.
    pub fn is_literal(&self) -> bool {
        !self.0.contains('*')
    }

    /// True when `table` matches the pattern.
    pub fn matches(&self, table: &str) -> bool {
        let p: Vec<char> = self.0.chars().collect();
        let t: Vec<char> = table.chars().collect();
        // Classic greedy wildcard match with backtracking to the last star: O(|p| * |t|) worst case.
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && p[pi] == '*' {
                star = Some((pi, ti));
                pi += 1;
            } else if pi < p.len() && p[pi] == t[ti] {
                pi += 1;
                ti += 1;
            } else if let Some((sp, st)) = star {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|c| *c == '*')
    }

    /// True when some table name matches both patterns (so a table could be claimed twice).
    pub fn overlaps(&self, other: &TablePattern) -> bool {
        let p: Vec<char> = self.0.chars().collect();
        let q: Vec<char> = other.0.chars().collect();
        // reachable[i][j]: some string prefix is matched by p[..i] and q[..j] at once. Moves: a star
        // ends (advance past it), both literals consume the same character, or a star consumes the
        // other pattern's literal character. A character eaten by two stars at once can be
        // dropped from the common string, so it needs no move.
        let mut reachable = vec![vec![false; q.len() + 1]; p.len() + 1];
        reachable[0][0] = true;
        for i in 0..=p.len() {
            for j in 0..=q.len() {
                if !reachable[i][j] {
                    continue;
                }
                let (pc, qc) = (p.get(i), q.get(j));
                if pc == Some(&'*') {
                    reachable[i + 1][j] = true;
                }
                if qc == Some(&'*') {
                    reachable[i][j + 1] = true;
                }
                match (pc, qc) {
                    (Some('*'), Some(c)) if *c != '*' => reachable[i][j + 1] = true,
                    (Some(c), Some('*')) if *c != '*' => reachable[i + 1][j] = true,
                    (Some(a), Some(b)) if a == b && *a != '*' => reachable[i + 1][j + 1] = true,
                    _ => {}
                }
            }
        }
        reachable[p.len()][q.len()]
    }
}

impl fmt::Display for TablePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A table name as PostgreSQL stores it (no schema), or with `glob`, a pattern with `*`.
pub(crate) fn check_table_name(r: &mut Reader, path: &str, name: &str, glob: bool) -> bool {
    let problem = if name.trim().is_empty() {
        Some("table name must not be empty".to_string())
    } else if name.contains('.') {
        Some(format!("`{name}`: write the table name without a schema; tables are matched by name in every schema"))
    } else if !glob && name.contains('*') {
        Some(format!(
            "`{name}`: patterns with `*` are only for placement groups"
        ))
    } else {
        None
    };
    match problem {
        Some(message) => {
            r.report(path, message);
            false
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> TablePattern {
        TablePattern::new(s)
    }

    #[test]
    fn matching() {
        assert!(pat("audit_*").matches("audit_log"));
        assert!(pat("audit_*").matches("audit_"));
        assert!(!pat("audit_*").matches("audit"));
        assert!(!pat("audit_*").matches("my_audit_log"));
        assert!(pat("*_log").matches("audit_log"));
        assert!(pat("a*b*c").matches("aXXbYYc"));
        assert!(pat("a*b*c").matches("abc"));
        assert!(!pat("a*b*c").matches("acb"));
        assert!(pat("*").matches(""));
        assert!(pat("orders").matches("orders"));
        assert!(!pat("orders").matches("Orders"));
        assert!(pat("é*").matches("événements"));
    }

    #[test]
    fn overlap() {
        let cases = [
            ("audit_*", "*_log", true),
            ("audit_*", "audit_log", true),
            ("audit_*", "billing_*", false),
            ("a*", "*b", true),
            ("a*c", "ab*", true),
            ("a*c", "*b", false),
            ("x", "x", true),
            ("x", "y", false),
            ("*", "anything", true),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("ab*", "a*b", true),
        ];
        for (a, b, want) in cases {
            assert_eq!(pat(a).overlaps(&pat(b)), want, "{a} vs {b}");
            assert_eq!(pat(b).overlaps(&pat(a)), want, "{b} vs {a}");
        }
    }

    /// Brute force over short strings: `overlaps` is true exactly when a common match exists.
    #[test]
    fn overlap_agrees_with_brute_force() {
        let patterns = [
            "", "a", "b", "*", "a*", "*a", "a*b", "b*a", "*a*", "ab", "a**b", "*b*a*",
        ];
        let mut strings = vec![String::new()];
        for len in 1..=5 {
            let mut next = Vec::new();
            for s in strings.iter().filter(|s| s.len() == len - 1) {
                next.push(format!("{s}a"));
                next.push(format!("{s}b"));
            }
            strings.extend(next);
        }
        for a in patterns {
            for b in patterns {
                let brute = strings
                    .iter()
                    .any(|s| pat(a).matches(s) && pat(b).matches(s));
                assert_eq!(pat(a).overlaps(&pat(b)), brute, "{a:?} vs {b:?}");
            }
        }
    }
}
