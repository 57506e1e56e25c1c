//! A cheap check that runs on every query before the parser.
//!
//! Every statement the analyzer reports as having a session effect either *starts* with one of
//! [`LEADERS`] (SET, RESET, DISCARD, …) or contains one of [`ANYWHERE`] (a function such as
//! `set_config`/`pg_advisory_lock`, `TEMP`, `WITH HOLD`) somewhere, so `false` is a proof of "no
//! effect" and the parse is skipped. Statement starts are found conservatively: the text start and
//! the position after *every* `;` (even one inside a string), so a real statement start is never
//! missed; false positives only cost a parse. This keeps `UPDATE … SET …` with fresh literals (every
//! simple-protocol write) away from the parser.

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

/// For each needle of [`ANYWHERE`], the position of its anchor: the byte the scan stops at,
/// chosen to be uncommon in SQL texts (`f`, `v`, `m`, `h`, `&`), where the first letters of
/// `set_config`, `advisory` and `temp` are in almost every identifier. Every occurrence of a
/// needle holds its anchor, so finding every anchor finds every needle. No two needles share an
/// anchor: [`BYTE_CLASS`] maps an anchor byte to its needle.
const ANCHOR: [usize; 5] = [7, 2, 2, 0, 1];

/// What a byte may be: 0 nothing, 1 a `;` (a statement may follow), `2 + k` the anchor of needle
/// `k` of [`ANYWHERE`] (either letter case).
static BYTE_CLASS: [u8; 256] = byte_classes();

const fn byte_classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    t[b';' as usize] = 1;
    let mut k = 0;
    while k < ANYWHERE.len() {
        let needle = ANYWHERE[k].as_bytes();
        // Needles are lowercase.
        let mut j = 0;
        while j < needle.len() {
            assert!(needle[j] == needle[j].to_ascii_lowercase());
            j += 1;
        }
        let anchor = needle[ANCHOR[k]];
        // Needles must not share an anchor (checked when the table is built).
        assert!(t[anchor as usize] == 0);
        t[anchor as usize] = 2 + k as u8;
        t[anchor.to_ascii_uppercase() as usize] = 2 + k as u8;
        k += 1;
    }
    t
}

/// Fast, allocation-free check: `false` means the text certainly contains no statement with a
/// session effect (see the module docs). One pass over the bytes, eight at a time, stopping only at
/// candidate bytes: it runs on every simple query. Takes text or bytes in any client encoding:
/// every needle and leader is ASCII, and in every encoding PostgreSQL allows, an ASCII character is
/// its one byte (a later byte of a multibyte character may look like a letter, which can only add
/// candidates, never hide one).
pub fn may_affect_session(sql: impl AsRef<[u8]>) -> bool {
    let b = sql.as_ref();
    if leader_at(b, 0) {
        return true;
    }
    // Jump from candidate byte to candidate byte: most texts hold few candidates.
    let mut i = 0;
    while let Some(next) = next_candidate(b, i) {
        if hit_at(b, next) {
            return true;
        }
        i = next + 1;
    }
    false
}

/// The position of the first byte at or after `i` that [`BYTE_CLASS`] marks. Eight bytes at a
/// time: a word that holds none of them is passed over with a few arithmetic operations (see
/// [`word_may_hold_candidate`]), and only a word that may hold one is looked at byte by byte.
fn next_candidate(b: &[u8], mut i: usize) -> Option<usize> {
    while let Some(w) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(w.try_into().expect("eight bytes"));
        if word_may_hold_candidate(x) {
            if let Some(k) = w.iter().position(|&c| BYTE_CLASS[c as usize] != 0) {
                return Some(i + k);
            }
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| BYTE_CLASS[c as usize] != 0)
        .map(|k| i + k)
}

/// Whether the byte at `i`, one [`BYTE_CLASS`] marks, is a `;` before a leader or the anchor of a
/// needle of [`ANYWHERE`].
fn hit_at(b: &[u8], i: usize) -> bool {
    match BYTE_CLASS[b[i] as usize] {
        0 => false,
        1 => leader_at(b, i + 1),
        k => {
            let k = (k - 2) as usize;
            let needle = ANYWHERE[k].as_bytes();
            let Some(start) = i.checked_sub(ANCHOR[k]) else {
                return false;
            };
            // The anchor's neighbour first: it rules out nearly every anchor (`FROM`, `WHERE`)
            // before the whole needle is compared.
            let (at, letter) = NEIGHBOUR[k];
            b.get(start + at)
                .is_some_and(|&c| c.eq_ignore_ascii_case(&letter))
                && b.get(start..start + needle.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(needle))
        }
    }
}

/// For each needle of [`ANYWHERE`], a byte next to its anchor and its position in the needle.
const NEIGHBOUR: [(usize, u8); ANYWHERE.len()] = {
    let mut t = [(0, 0); ANYWHERE.len()];
    let mut k = 0;
    while k < ANYWHERE.len() {
        let at = if ANCHOR[k] > 0 { ANCHOR[k] - 1 } else { 1 };
        t[k] = (at, ANYWHERE[k].as_bytes()[at]);
        k += 1;
    }
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;

/// Non-zero when one of the eight bytes of `x` equals `byte` (exact for the word as a whole).
const fn has_byte(x: u64, byte: u8) -> u64 {
    let v = x ^ (ONES * byte as u64);
    v.wrapping_sub(ONES) & !v & (ONES * 0x80)
}

/// Whether the eight bytes of `x` may hold a byte [`BYTE_CLASS`] marks (a superset: `false` is
/// certain). Setting bits 4 and 5 of every byte folds `f F v V` onto 0x76, `m M` onto 0x7d (with
/// `] }`) and `h H` onto 0x78 (with `x X`); `&` and `;` are compared as they are. A compile-time
/// check below proves that every marked byte is caught.
const fn word_may_hold_candidate(x: u64) -> bool {
    let folded = x | (ONES * 0x30);
    // `|`, not `||`: no branch per test.
    has_byte(folded, 0x76)
        | has_byte(folded, 0x7d)
        | has_byte(folded, 0x78)
        | has_byte(x, b'&')
        | has_byte(x, b';')
        != 0
}

/// Every byte [`BYTE_CLASS`] marks, at every position of a word, passes
/// [`word_may_hold_candidate`] (a change of [`ANYWHERE`] or [`ANCHOR`] that breaks this does not
/// compile).
const _: () = {
    let mut c = 0;
    while c < 256 {
        if BYTE_CLASS[c] != 0 {
            let mut pos = 0;
            while pos < 8 {
                // The other bytes are spaces, as in a statement.
                let word = (ONES * b' ' as u64) & !(0xff << (8 * pos)) | ((c as u64) << (8 * pos));
                assert!(word_may_hold_candidate(word));
                pos += 1;
            }
        }
        c += 1;
    }
};

/// Words a transaction-control statement (BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK,
/// ABORT) starts with.
pub const TRANSACTION_LEADERS: &[&str] = &["begin", "start", "commit", "end", "rollback", "abort"];

/// Fast check: `false` means the text is certainly not one transaction-control statement (its
/// first word, after whitespace and comments, is another word). A text that starts with no
/// word (a `;`, a quote, …) may be one.
pub fn may_control_transaction(sql: &str) -> bool {
    let word = first_word_at(sql.as_bytes(), 0);
    word.is_empty() || is_one_of(word, &TRANSACTION_WORDS)
}

/// Whether the first word at or after `i` (skipping whitespace and comments) is a leader.
fn leader_at(b: &[u8], i: usize) -> bool {
    is_one_of(first_word_at(b, i), &LEADER_WORDS)
}

/// Whether `word` is one of the (lowercase) `words`, in any letter case.
fn is_one_of(word: &[u8], words: &Words) -> bool {
    // Most words (SELECT, UPDATE, a text's final empty word) have no entry of their length and
    // first letter: one table lookup, no comparisons.
    let Some(&first) = word.first() else {
        return false;
    };
    words
        .keys
        .get(word.len())
        .is_some_and(|&letters| letters & (1 << (first & 0x1f)) != 0)
        && words
            .list
            .iter()
            .any(|w| w.as_bytes().eq_ignore_ascii_case(word))
}

/// A list of lowercase words with, for each length up to [`Words::MAX_LEN`], the set of their
/// first letters (bit `letter & 0x1f`, the same for both letter cases).
struct Words {
    list: &'static [&'static str],
    keys: [u32; Words::MAX_LEN + 1],
}

impl Words {
    const MAX_LEN: usize = 15;

    const fn new(list: &'static [&'static str]) -> Words {
        let mut keys = [0u32; Words::MAX_LEN + 1];
        let mut k = 0;
        while k < list.len() {
            let w = list[k].as_bytes();
            assert!(!w.is_empty() && w.len() <= Words::MAX_LEN);
            keys[w.len()] |= 1 << (w[0] & 0x1f);
            k += 1;
        }
        Words { list, keys }
    }
}

static LEADER_WORDS: Words = Words::new(LEADERS);
static TRANSACTION_WORDS: Words = Words::new(TRANSACTION_LEADERS);

/// The first word at or after `i`, skipping whitespace, `(` and comments (empty when something
/// else comes first).
fn first_word_at(b: &[u8], mut i: usize) -> &[u8] {
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
    let rest = &b[i..];
    let len = rest
        .iter()
        .position(|&c| !WORD_BYTE[c as usize])
        .unwrap_or(rest.len());
    &rest[..len]
}

/// The bytes of an unquoted word: ASCII letters and digits, `_`, and every non-ASCII byte.
static WORD_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
        c += 1;
    }
    t
};

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
        assert!(may_affect_session("SELECT * FROM U&\"d\\0061ta\""));
        assert!(may_affect_session(
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1"
        ));
        assert!(!may_affect_session("SELECT tem, hol, advisor, set_confi"));
        assert!(!may_affect_session(""));
        assert!(!may_affect_session(";"));
    }

    #[test]
    fn transaction_control_is_found_by_its_first_word() {
        for sql in [
            "BEGIN",
            "  start transaction read only",
            "/* pgfleet: shard=1 */ commit",
            "-- x\nEnd",
            "rollback and chain",
            "ABORT;",
            "; begin",
            "'x'",
        ] {
            assert!(may_control_transaction(sql), "{sql}");
        }
        for sql in [
            "SELECT 1",
            "begins",
            "UPDATE t SET x = 1",
            "savepoint a",
            "/* begin */ select",
        ] {
            assert!(!may_control_transaction(sql), "{sql}");
        }
    }

    /// The needle scan against the obvious definition: any needle, case-insensitive, anywhere.
    fn reference(sql: &str) -> bool {
        let lower = sql.to_ascii_lowercase();
        let b = sql.as_bytes();
        ANYWHERE.iter().any(|n| lower.contains(n))
            || leader_at(b, 0)
            || b.iter()
                .enumerate()
                .any(|(i, &c)| c == b';' && leader_at(b, i + 1))
    }

    proptest::proptest! {
        /// One statement behind any whitespace, comments and empty statements: whenever the
        /// grammar calls it transaction control, the first-word check says it may be.
        #[test]
        fn never_misses_transaction_control(
            prefix in proptest::collection::vec(
                proptest::sample::select(vec![" ", "\t", "\n", ";", "/* c */", "/* a /* b */ */", "-- c\n"]),
                0..5,
            ),
            statement in proptest::sample::select(vec![
                "BEGIN", "begin work", "START TRANSACTION READ ONLY", "COMMIT", "end", "commit and chain",
                "ROLLBACK", "abort", "rollback and no chain", "SELECT 1", "SAVEPOINT a", "ROLLBACK TO a",
            ]),
            suffix in proptest::sample::select(vec!["", ";", " ; ", " -- x"]),
        ) {
            let sql = format!("{}{statement}{suffix}", prefix.concat());
            let control = crate::classify_uncached(&sql).tx;
            if matches!(control, crate::TxControl::Begin { .. } | crate::TxControl::Commit | crate::TxControl::Rollback) {
                proptest::prop_assert!(may_control_transaction(&sql), "{:?}", sql);
            }
        }

        /// The length-and-first-letter table never rules out a word of a list, in any letter
        /// case, and never admits another word.
        #[test]
        fn word_lists_match_in_any_case(
            base in proptest::sample::select(
                LEADERS.iter().chain(TRANSACTION_LEADERS).copied()
                    .chain(["", "select", "sets", "rese", "_et", "@nd", "{egin", "ends", "x"])
                    .collect::<Vec<_>>(),
            ),
            flips in proptest::prelude::any::<u16>(),
        ) {
            let word: String = base
                .chars()
                .enumerate()
                .map(|(i, c)| if flips & (1 << i) != 0 { c.to_ascii_uppercase() } else { c })
                .collect();
            for (words, list) in [(&LEADER_WORDS, LEADERS), (&TRANSACTION_WORDS, TRANSACTION_LEADERS)] {
                let expected = list.iter().any(|w| w.eq_ignore_ascii_case(&word));
                proptest::prop_assert_eq!(is_one_of(word.as_bytes(), words), expected, "{:?}", word);
            }
        }

        #[test]
        fn agrees_with_the_reference(pieces in proptest::collection::vec(
            proptest::sample::select(vec![
                "set_config", "SET_Config", "set_confi", "Temp", "tem", "HOLD", "hol", "u&", "U&",
                "u", "advisory", "ADVISOR", "a", "t", "h", "s", ";", " ", "set", "Reset", "x",
                "é", "/*", "*/", "--", "\n", "(", "'", "f", "V", "m", "H", "&", "config", "_con",
                "ad", "vis", "te", "mp", "ho", "ld", "old", "]", "}", "X", "abcdefg",
                "0123456789abcdef",
            ]),
            0..16,
        )) {
            let sql: String = pieces.concat();
            proptest::prop_assert_eq!(may_affect_session(&sql), reference(&sql), "{:?}", sql);
        }
    }
}
