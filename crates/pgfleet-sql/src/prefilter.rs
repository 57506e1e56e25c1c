//! A cheap check that runs on every query before the parser.
//!
//! Every statement the analyzer reports as having a session effect either *starts* with one of
//! [`LEADERS`] (SET, RESET, DISCARD, …) or contains one of [`ANYWHERE`] (a function such as
//! `set_config`/`pg_advisory_lock`, `TEMP`, `WITH HOLD`) somewhere, so `false` is a proof of "no
//! effect" and the parse is skipped. Statement starts are found conservatively: the text start and
//! the position after *every* `;` (even one inside a string), so a real statement start is never
//! missed; false positives only cost a parse. This keeps `UPDATE … SET …` with fresh literals (every
//! simple-protocol write) away from the parser.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// Words that give a statement a session effect only as its first keyword.
pub const LEADERS: &[&str] = &[
    "set",        // SET, SET SESSION AUTHORIZATION/CHARACTERISTICS, SET ROLE …
    "reset",      // RESET name / ALL / SESSION AUTHORIZATION
    "discard",    // DISCARD ALL
    "deallocate", // DEALLOCATE
    "listen",     // LISTEN
    "load",       // LOAD
    "prepare",    // SQL PREPARE (and PREPARE TRANSACTION)
    "declare",    // DECLARE … WITH HOLD
    "do",         // DO blocks (heuristic in the analyzer)
];

/// Needles that matter wherever they appear (case-insensitive):
/// - `set_config`, `advisory` (pg_advisory_lock and friends): function calls in any statement;
/// - `temp`: TEMP/TEMPORARY objects, `SELECT … INTO TEMP`, `pg_temp`;
/// - `hold`: `WITH HOLD`;
/// - `u&`: a Unicode-escaped identifier (`U&"pg_advisory\006cock"`) can spell any name.
pub const ANYWHERE: &[&str] = &["set_config", "advisory", "temp", "hold", "u&"];

/// Built once; immutable afterwards (a constant, not configuration).
static AUTOMATON: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::DFA))
        .build(ANYWHERE)
        .ok()
});

/// Fast, allocation-free check: `false` means the text certainly contains no statement with a
/// session effect (see the module docs).
pub fn may_affect_session(sql: &str) -> bool {
    let anywhere = match AUTOMATON.as_ref() {
        Some(ac) => ac.is_match(sql),
        // Building a fixed automaton cannot fail in practice; if it did, never skip the parser.
        None => true,
    };
    if anywhere {
        return true;
    }
    let b = sql.as_bytes();
    leader_at(b, 0)
        || b.iter()
            .enumerate()
            .any(|(i, &c)| c == b';' && leader_at(b, i + 1))
}

/// Whether the first word at or after `i` (skipping whitespace and comments) is a leader.
fn leader_at(b: &[u8], mut i: usize) -> bool {
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'(') {
            i += 1;
        }
        if b[i..].starts_with(b"--") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            // Comments nest in PostgreSQL.
            let mut depth = 0usize;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else {
            break;
        }
    }
    let start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
        i += 1;
    }
    let word = &b[start..i];
    !word.is_empty()
        && LEADERS
            .iter()
            .any(|l| l.as_bytes().eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaders_count_only_at_statement_starts() {
        assert!(may_affect_session("SET x = 1"));
        assert!(may_affect_session(
            "  /* a /* nested */ comment */ -- line\n reset all"
        ));
        assert!(may_affect_session("SELECT 1; LISTEN x"));
        assert!(may_affect_session("SELECT ';'; discard all"));
        assert!(!may_affect_session(
            "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 2;"
        ));
        assert!(!may_affect_session("SELECT offset_x FROM dataset"));
        assert!(!may_affect_session("SELECT settings FROM t; SELECT 1"));
        assert!(may_affect_session(
            "select pg_catalog.set_config('a', 'b', false)"
        ));
        assert!(may_affect_session("CREATE TEMPORARY TABLE t(x int)"));
        assert!(may_affect_session("SELECT pg_advisory_lock(1)"));
    }
}
