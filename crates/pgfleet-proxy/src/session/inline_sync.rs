//! Whether a client's request may carry a settings sync inside it (see
//! [`super::params::sync_server`]). The sync's `set_config` calls then share the request's implicit
//! transaction, which is only safe when nothing in the request can open or end a transaction
//! (a `BEGIN` would make the calls part of a transaction a later `ROLLBACK` undoes) or refuse to
//! run in one (`VACUUM`, `CREATE DATABASE`, …): every statement must be a plannable query. The
//! whole request, up to its Sync, must already be in hand to know that. No I/O.

use std::collections::HashMap;
use std::sync::Arc;

use pgfleet_wire::tag::frontend as t;
use pgfleet_wire::Frame;

use crate::execute::request::UnnamedStatement;
use crate::prepared::StatementDef;

/// First keywords of the statements a request carrying a sync may hold: queries PostgreSQL plans
/// and executes (no utility statement, no transaction control).
const PLANNABLE: &[&str] = &[
    "select", "insert", "update", "delete", "with", "values", "table", "merge",
];

/// Whether `sql` is one plannable query: its first keyword (after blanks and comments) is one
/// of [`PLANNABLE`]. Conservative: anything else (a parenthesised query too) is not.
pub(crate) fn plannable(sql: &str) -> bool {
    let b = sql.as_bytes();
    let mut i = 0;
    loop {
        match b.get(i..i + 2) {
            _ if b.get(i).is_some_and(u8::is_ascii_whitespace) => i += 1,
            Some(b"--") => {
                while b.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            Some(b"/*") => {
                // Block comments nest in PostgreSQL.
                let mut depth = 0usize;
                loop {
                    match b.get(i..i + 2) {
                        Some(b"/*") => {
                            depth += 1;
                            i += 2;
                        }
                        Some(b"*/") => {
                            depth -= 1;
                            i += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        Some(_) => i += 1,
                        None => return false,
                    }
                }
            }
            _ => break,
        }
    }
    let start = i;
    while b.get(i).is_some_and(u8::is_ascii_alphabetic) {
        i += 1;
    }
    if b.get(i)
        .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$')
    {
        return false;
    }
    let word = &sql[start..i];
    PLANNABLE.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// Whether a simple Query's text is one plannable query: no `;` but trailing ones (a `;` inside a
/// literal or comment counts too: conservative).
pub(crate) fn single_plannable(sql: &str) -> bool {
    let body = sql.trim_end_matches(|c: char| c.is_ascii_whitespace() || c == ';');
    !body.contains(';') && plannable(body)
}

/// The two leading C strings of a Parse (name, query), Bind (portal, statement) or Describe /
/// Close (kind byte first) body.
fn cstr(body: &[u8]) -> Option<(&str, &[u8])> {
    let end = body.iter().position(|&c| c == 0)?;
    Some((std::str::from_utf8(&body[..end]).ok()?, &body[end + 1..]))
}

/// What a request's statements are, as far as it has arrived.
pub(crate) struct RequestCheck<'a> {
    statements: &'a HashMap<String, Arc<StatementDef>>,
    /// The session's unnamed statement before this request.
    unnamed: Option<&'a UnnamedStatement>,
    /// A `Parse ""` of this request was seen (and checked).
    parsed_unnamed: bool,
    /// Named statements this request parses (each checked), in order.
    parsed: Vec<&'a str>,
    /// A Bind of this request made the unnamed portal: pgfleet's own Bind ahead of the request
    /// uses it too, so a Describe or Execute of it without one would find pgfleet's portal.
    bound_unnamed_portal: bool,
}

impl<'a> RequestCheck<'a> {
    pub(crate) fn new(
        statements: &'a HashMap<String, Arc<StatementDef>>,
        unnamed: Option<&'a UnnamedStatement>,
    ) -> RequestCheck<'a> {
        RequestCheck {
            statements,
            unnamed,
            parsed_unnamed: false,
            parsed: Vec::new(),
            bound_unnamed_portal: false,
        }
    }

    fn statement_plannable(&self, name: &str) -> bool {
        if name.is_empty() {
            self.parsed_unnamed || self.unnamed.is_some_and(|u| plannable(u.query()))
        } else {
            self.parsed.contains(&name)
                || self
                    .statements
                    .get(name)
                    .is_some_and(|def| plannable(&def.query))
        }
    }

    /// Whether one message (tag, body) may be part of a request carrying a sync.
    pub(crate) fn allows(&mut self, tag: u8, body: &'a [u8]) -> bool {
        match tag {
            t::PARSE => match cstr(body).and_then(|(name, rest)| Some((name, cstr(rest)?.0))) {
                Some((name, query)) if plannable(query) => {
                    if name.is_empty() {
                        self.parsed_unnamed = true;
                    } else {
                        self.parsed.push(name);
                    }
                    true
                }
                _ => false,
            },
            t::BIND => match cstr(body).and_then(|(portal, rest)| Some((portal, cstr(rest)?.0))) {
                Some((portal, statement)) if self.statement_plannable(statement) => {
                    self.bound_unnamed_portal |= portal.is_empty();
                    true
                }
                _ => false,
            },
            t::DESCRIBE | t::CLOSE => match body.split_first() {
                Some((b'S', rest)) => {
                    tag == t::CLOSE || cstr(rest).is_some_and(|(n, _)| self.statement_plannable(n))
                }
                Some((b'P', rest)) => self.portal_ok(rest),
                _ => false,
            },
            t::EXECUTE => self.portal_ok(body),
            t::SYNC => true,
            _ => false,
        }
    }

    /// A portal a Describe, Close or Execute may name: a named one (pgfleet's Bind leaves those
    /// alone), or the unnamed one once this request bound it.
    fn portal_ok(&self, body: &[u8]) -> bool {
        cstr(body).is_some_and(|(portal, _)| !portal.is_empty() || self.bound_unnamed_portal)
    }
}

/// Whether the request that starts with `first` may carry a settings sync: a simple Query of one
/// plannable query, or an extended-protocol request that holds only Parse/Bind/Describe/Execute/
/// Close of plannable queries and is complete up to its Sync in `rest` (the client's buffered
/// bytes after `first`).
pub(crate) fn request_may_carry_sync<'a>(
    first: &'a Frame,
    rest: &'a [u8],
    mut check: RequestCheck<'a>,
) -> bool {
    if first.tag() == t::QUERY {
        return pgfleet_wire::frontend::decode_query(first).is_ok_and(single_plannable);
    }
    if !matches!(first.tag(), t::PARSE | t::BIND | t::DESCRIBE)
        || !check.allows(first.tag(), first.body())
    {
        return false;
    }
    let mut offset = 0;
    loop {
        let Ok(Some((tag, total))) = pgfleet_wire::frame::peek_header(&rest[offset..], usize::MAX)
        else {
            return false;
        };
        let Some(message) = rest.get(offset..offset + total) else {
            return false;
        };
        if !check.allows(tag, &message[5..]) {
            return false;
        }
        if tag == t::SYNC {
            return true;
        }
        offset += total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use pgfleet_wire::frontend::{
        encode_execute, encode_named, encode_parse, encode_query, encode_sync, Target,
    };

    #[test]
    fn plannable_queries_only() {
        for sql in [
            "SELECT 1",
            "  select v from t",
            "-- note\n/* a /* nested */ comment */ UPDATE t SET v = 1",
            "WITH x AS (SELECT 1) DELETE FROM t",
            "insert into t values (1)",
            "VALUES (1)",
            "TABLE t",
        ] {
            assert!(plannable(sql), "{sql}");
        }
        for sql in [
            "BEGIN",
            "begin; select 1",
            "COMMIT",
            "START TRANSACTION",
            "SAVEPOINT a",
            "VACUUM t",
            "CALL p()",
            "DO $$ BEGIN END $$",
            "SET search_path = x",
            "(SELECT 1)",
            "selectx",
            "select_1",
            "/* unterminated SELECT 1",
            "",
            "EXPLAIN SELECT 1",
            "COPY t FROM STDIN",
        ] {
            assert!(!plannable(sql), "{sql}");
        }
    }

    fn frame(f: impl FnOnce(&mut BytesMut)) -> (Frame, usize) {
        let mut b = BytesMut::new();
        f(&mut b);
        let n = b.len();
        (Frame::from_raw(b.freeze()), n)
    }

    fn bind(out: &mut BytesMut, statement: &str) {
        pgfleet_wire::frontend::encode_bind(out, "", statement, &[], &[]);
    }

    #[test]
    fn whole_requests_of_plannable_statements_only() {
        let mut statements = HashMap::new();
        let registry = crate::prepared::PreparedRegistry::default();
        statements.insert("s".to_owned(), registry.intern("SELECT 1", &[], None));
        statements.insert("b".to_owned(), registry.intern("BEGIN", &[], None));
        let check = || RequestCheck::new(&statements, None);

        let (first, _) = frame(|o| bind(o, "s"));
        let mut rest = BytesMut::new();
        encode_execute(&mut rest, "", 0);
        encode_sync(&mut rest);
        assert!(request_may_carry_sync(&first, &rest, check()));
        assert!(
            !request_may_carry_sync(&first, &rest[..rest.len() - 1], check()),
            "a request not complete up to its Sync"
        );

        let (begin, _) = frame(|o| bind(o, "b"));
        assert!(!request_may_carry_sync(&begin, &rest, check()), "BEGIN");
        let (unknown, _) = frame(|o| bind(o, "nope"));
        assert!(!request_may_carry_sync(&unknown, &rest, check()));

        // A later statement of the request counts too.
        let mut tail = BytesMut::new();
        encode_execute(&mut tail, "", 0);
        bind(&mut tail, "b");
        encode_execute(&mut tail, "", 0);
        encode_sync(&mut tail);
        assert!(!request_may_carry_sync(&first, &tail, check()));

        // An unnamed statement parsed in the request; a simple Query never joins one.
        let (parse, _) = frame(|o| encode_parse(o, "", "SELECT $1", &[]));
        let mut rest = BytesMut::new();
        bind(&mut rest, "");
        encode_execute(&mut rest, "", 0);
        encode_sync(&mut rest);
        assert!(request_may_carry_sync(&parse, &rest, check()));
        let (parse_begin, _) = frame(|o| encode_parse(o, "", "BEGIN", &[]));
        assert!(!request_may_carry_sync(&parse_begin, &rest, check()));
        assert!(
            !request_may_carry_sync(&first, &rest, check()),
            "Bind of an unnamed statement the session does not have"
        );
        // A named statement parsed and described in the same request (a driver's prepare).
        let (parse_named, _) = frame(|o| encode_parse(o, "s0", "SELECT $1", &[]));
        let mut rest = BytesMut::new();
        encode_named(&mut rest, t::DESCRIBE, Target::Statement, "s0");
        encode_sync(&mut rest);
        assert!(request_may_carry_sync(&parse_named, &rest, check()));
        // The unnamed portal only once the request bound it: pgfleet's own Bind makes one too.
        let (describe_portal, _) = frame(|o| encode_named(o, t::DESCRIBE, Target::Portal, ""));
        let mut rest = BytesMut::new();
        encode_sync(&mut rest);
        assert!(!request_may_carry_sync(&describe_portal, &rest, check()));
        let mut rest = BytesMut::new();
        encode_execute(&mut rest, "", 0);
        encode_sync(&mut rest);
        let (bind_named_portal, _) =
            frame(|o| pgfleet_wire::frontend::encode_bind(o, "p", "s", &[], &[]));
        assert!(!request_may_carry_sync(&bind_named_portal, &rest, check()));
        // A simple Query of one plannable statement.
        for (sql, carries) in [
            ("SELECT 1", true),
            ("select v from t where id = 5 ;\n", true),
            ("SELECT 1; BEGIN", false),
            ("SELECT ';'", false),
            ("BEGIN", false),
            ("VACUUM", false),
        ] {
            let (query, _) = frame(|o| encode_query(o, sql));
            assert_eq!(
                request_may_carry_sync(&query, &[], check()),
                carries,
                "{sql}"
            );
        }
    }
}
