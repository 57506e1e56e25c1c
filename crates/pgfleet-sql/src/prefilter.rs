//! A cheap keyword check that runs on every query before the parser.
//!
//! Every statement the analyzer reports as having a session effect must contain one of these
//! needles (case-insensitively) in its text, so `false` is a proof of "no effect" and the parse
//! is skipped. False positives (`offset`, `dataset`, `payload`, `UNLISTEN`) only cost a parse,
//! and parses are cached.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// Needles, each tied to what the analyzer detects:
/// - `set`: SET, RESET, set_config, SET SESSION AUTHORIZATION/CHARACTERISTICS;
/// - `discard`, `deallocate`, `listen`, `load`, `prepare` (SQL PREPARE), `hold` (WITH HOLD);
/// - `advisory`: pg_advisory_lock and friends; `temp`: TEMP/TEMPORARY and `pg_temp`;
/// - `authorization`: SESSION AUTHORIZATION;
/// - `u&`: a Unicode-escaped identifier (`U&"pg_advisory\006cock"`) can spell any name.
const NEEDLES: &[&str] = &[
    "set",
    "discard",
    "deallocate",
    "listen",
    "load",
    "prepare",
    "hold",
    "advisory",
    "temp",
    "authorization",
    "u&",
];

/// Built once; immutable afterwards (a constant, not configuration).
static AUTOMATON: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::DFA))
        .build(NEEDLES)
        .ok()
});

/// Fast, allocation-free check: `false` means the text certainly contains no statement with a
/// session effect (see the module docs for the needles).
pub fn may_affect_session(sql: &str) -> bool {
    match AUTOMATON.as_ref() {
        Some(ac) => ac.is_match(sql),
        // Building a fixed automaton cannot fail in practice; if it did, never skip the parser.
        None => true,
    }
}
