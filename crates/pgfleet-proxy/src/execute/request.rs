//! Translating client messages for the server that runs them. In transaction pooling a client's
//! named prepared statements live under shared server-side names (`pgfleet_N`), prepared on each
//! server the first time that server needs them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::BytesMut;
use pgfleet_sql::{PinReason, SessionEffect};
use pgfleet_wire::backend::{
    encode_command_complete, encode_empty, encode_error, encode_ready_for_query, TxStatus,
};
use pgfleet_wire::frontend::{
    decode_bind, decode_named, decode_parse, decode_query_bytes, encode_bind_renamed, encode_named,
    encode_parse, query_text, Target,
};
use pgfleet_wire::tag::{backend as b, frontend as t};
use pgfleet_wire::{Frame, WireError};

use super::exchange::{Exchange, Expect};
use crate::prepared::StatementDef;
use crate::runtime::Runtime;
use crate::server::ServerConn;
use crate::settings::Settings;
use crate::stats::Stats;
use crate::ProxyError;

/// Session changes the current request made that must be confirmed once its transaction ends.
#[derive(Debug, Default)]
pub(crate) struct PendingEffects {
    /// Settings to read back from the server.
    pub(crate) readback: BTreeSet<String>,
    /// Settings RESET (back to the client's startup value).
    pub(crate) resets: BTreeSet<String>,
    /// RESET ALL or DISCARD ALL ran.
    pub(crate) reset_all: bool,
    /// DISCARD ALL or DEALLOCATE ALL ran: the server dropped every prepared statement.
    pub(crate) statements_dropped: bool,
}

impl PendingEffects {
    pub(crate) fn is_empty(&self) -> bool {
        self.readback.is_empty()
            && self.resets.is_empty()
            && !self.reset_all
            && !self.statements_dropped
    }
}

/// What the caller does after a client message was translated.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Keep going.
    Continue,
    /// A request end (Sync, Query, FunctionCall) went to the server.
    RequestSent,
    /// pgfleet answered a whole request itself.
    Answered,
    /// The client said goodbye.
    Terminate,
}

/// Mutable session state a translation may touch.
pub(crate) struct RequestCtx<'a> {
    pub(crate) rt: &'a Runtime,
    pub(crate) statements: &'a mut HashMap<String, Arc<StatementDef>>,
    pub(crate) effects: &'a mut PendingEffects,
    pub(crate) pinned: &'a mut Option<PinReason>,
    pub(crate) tx: TxStatus,
    /// The session's wanted settings; their search_path is part of a prepared statement's
    /// identity (looked up only when a statement is prepared, not for every request).
    pub(crate) settings: &'a Settings,
    /// The client's unnamed statement (its last `Parse ""`), re-sent to a server that lacks it.
    pub(crate) unnamed: &'a mut Option<Arc<UnnamedStatement>>,
}

/// A client's unnamed prepared statement. PostgreSQL keeps it until the next `Parse ""` or simple
/// Query on that connection; in transaction pooling the next transaction may run elsewhere.
#[derive(Debug)]
pub(crate) struct UnnamedStatement {
    /// Identifies this statement on a server's unnamed slot ([`ServerConn::unnamed`]); never 0.
    pub(crate) id: u64,
    query: String,
    param_types: Vec<u32>,
}

impl UnnamedStatement {
    /// A new unnamed statement of this client.
    pub(crate) fn new(rt: &Runtime, query: &str, param_types: &[u32]) -> UnnamedStatement {
        UnnamedStatement {
            id: rt.prepared.next_unnamed_id(),
            query: query.to_owned(),
            param_types: param_types.to_vec(),
        }
    }

    /// Its SQL text.
    pub(crate) fn query(&self) -> &str {
        &self.query
    }

    /// Its declared parameter types.
    pub(crate) fn param_types(&self) -> &[u32] {
        &self.param_types
    }
}

fn synthetic(f: impl FnOnce(&mut BytesMut)) -> Expect {
    let mut b = BytesMut::new();
    f(&mut b);
    Expect::Synthetic(b.freeze())
}

/// Prepares `def` on `server` (ParseComplete forwarded to the client or not), first closing the
/// least recently used statement when the server's cache is full.
pub(crate) fn prepare_statement(
    server: &mut ServerConn,
    def: &Arc<StatementDef>,
    forward: bool,
    x: &mut Exchange,
    out: &mut BytesMut,
) {
    if server.prepared.len() >= server.prepared.cap().get() {
        if let Some((old, ())) = server.prepared.pop_lru() {
            encode_named(out, t::CLOSE, Target::Statement, &old);
            x.push(Expect::Close {
                forward: false,
                evicted: Some(old),
            });
        }
    }
    encode_parse(out, &def.server_name, &def.query, &def.param_types);
    server.prepared.put(def.server_name.clone(), ());
    x.push(Expect::Parse {
        forward,
        def: Some(def.clone()),
    });
}

/// Error pgfleet raises for a client message, then ignores the rest up to Sync like PostgreSQL.
fn client_error(x: &mut Exchange, code: &str, message: &str) {
    x.push(synthetic(|o| encode_error(o, "ERROR", code, message)));
    x.skip_until_sync = true;
}

impl RequestCtx<'_> {
    /// Translates one client message into bytes for `server` (appended to `to_server`) and expected
    /// answers (pushed on `x`).
    pub(crate) fn translate(
        &mut self,
        frame: &Frame,
        server: &mut ServerConn,
        x: &mut Exchange,
        to_server: &mut BytesMut,
    ) -> Result<Step, ProxyError> {
        let tag = frame.tag();
        if x.skip_until_sync && tag != t::SYNC && tag != t::TERMINATE {
            return Ok(Step::Continue);
        }
        match tag {
            t::QUERY => {
                // Bytes in the client's encoding: a text that cannot change the session is
                // forwarded as it is, UTF-8 or not.
                let sql = decode_query_bytes(frame)?;
                if let Some(answer) = self.observe(sql, true)? {
                    x.push(answer);
                    return Ok(Step::Answered);
                }
                to_server.extend_from_slice(frame.raw());
                // A simple Query replaces the server's unnamed statement.
                server.unnamed = 0;
                x.push(Expect::Query(super::exchange::Origin::Client));
                Ok(Step::RequestSent)
            }
            t::PARSE => {
                let parse = decode_parse(frame)?;
                self.observe(parse.query.as_bytes(), false)?;
                if parse.name.is_empty() {
                    let same = self.unnamed.as_ref().is_some_and(|u| {
                        u.query == parse.query && u.param_types == parse.param_types
                    });
                    if !same {
                        *self.unnamed = Some(Arc::new(UnnamedStatement {
                            id: self.rt.prepared.next_unnamed_id(),
                            query: parse.query.to_owned(),
                            param_types: parse.param_types.clone(),
                        }));
                    }
                    server.unnamed = self.unnamed.as_ref().map_or(0, |u| u.id);
                    to_server.extend_from_slice(frame.raw());
                    x.push(Expect::Parse {
                        forward: true,
                        def: None,
                    });
                    return Ok(Step::Continue);
                }
                if self.statements.contains_key(parse.name) {
                    client_error(
                        x,
                        "42P05",
                        &format!("prepared statement \"{}\" already exists", parse.name),
                    );
                    return Ok(Step::Continue);
                }
                let def = self.rt.prepared.intern(
                    parse.query,
                    &parse.param_types,
                    self.settings.search_path(),
                );
                self.statements.insert(parse.name.to_owned(), def.clone());
                if server.prepared.get(&def.server_name).is_some() {
                    x.push(synthetic(|o| encode_empty(o, b::PARSE_COMPLETE)));
                } else {
                    prepare_statement(server, &def, true, x, to_server);
                }
                Ok(Step::Continue)
            }
            t::BIND => {
                let bind = decode_bind(frame)?;
                if bind.statement.is_empty() {
                    if !self.ensure_unnamed(server, x, to_server) {
                        return Ok(Step::Continue);
                    }
                    to_server.extend_from_slice(frame.raw());
                } else {
                    let Some(def) = self.statements.get(bind.statement).cloned() else {
                        client_error(
                            x,
                            "26000",
                            &format!("prepared statement \"{}\" does not exist", bind.statement),
                        );
                        return Ok(Step::Continue);
                    };
                    self.ensure_prepared(server, &def, x, to_server);
                    encode_bind_renamed(to_server, &bind, &def.server_name);
                }
                x.push(Expect::Bind);
                Ok(Step::Continue)
            }
            t::DESCRIBE => {
                let named = decode_named(frame)?;
                if named.target == Target::Statement && !named.name.is_empty() {
                    let Some(def) = self.statements.get(named.name).cloned() else {
                        client_error(
                            x,
                            "26000",
                            &format!("prepared statement \"{}\" does not exist", named.name),
                        );
                        return Ok(Step::Continue);
                    };
                    self.ensure_prepared(server, &def, x, to_server);
                    encode_named(to_server, t::DESCRIBE, Target::Statement, &def.server_name);
                } else {
                    if named.target == Target::Statement
                        && !self.ensure_unnamed(server, x, to_server)
                    {
                        return Ok(Step::Continue);
                    }
                    to_server.extend_from_slice(frame.raw());
                }
                x.push(Expect::Describe);
                Ok(Step::Continue)
            }
            t::CLOSE => {
                let named = decode_named(frame)?;
                if named.target == Target::Statement && !named.name.is_empty() {
                    // The server-side statement is shared; only this client's name goes away.
                    // Closing a name that does not exist is not an error in PostgreSQL either.
                    self.statements.remove(named.name);
                    x.push(synthetic(|o| encode_empty(o, b::CLOSE_COMPLETE)));
                } else {
                    to_server.extend_from_slice(frame.raw());
                    x.push(Expect::Close {
                        forward: true,
                        evicted: None,
                    });
                }
                Ok(Step::Continue)
            }
            t::EXECUTE => {
                to_server.extend_from_slice(frame.raw());
                x.push(Expect::Execute);
                Ok(Step::Continue)
            }
            t::SYNC => {
                to_server.extend_from_slice(frame.raw());
                if x.copy_in {
                    // Ignored by the server during copy-in mode: no ReadyForQuery will follow.
                    return Ok(Step::Continue);
                }
                x.skip_until_sync = false;
                x.push(Expect::Sync);
                Ok(Step::RequestSent)
            }
            t::COPY_DONE | t::COPY_FAIL => {
                to_server.extend_from_slice(frame.raw());
                x.client_copy_ended();
                Ok(Step::Continue)
            }
            t::FUNCTION_CALL => {
                to_server.extend_from_slice(frame.raw());
                x.push(Expect::Query(super::exchange::Origin::Client));
                Ok(Step::RequestSent)
            }
            t::FLUSH | t::COPY_DATA => {
                to_server.extend_from_slice(frame.raw());
                Ok(Step::Continue)
            }
            t::TERMINATE => Ok(Step::Terminate),
            other => Err(ProxyError::Client {
                code: "08P01",
                message: format!(
                    "invalid frontend message type '{}'",
                    char::from(other).escape_default()
                ),
            }),
        }
    }

    /// Makes the server's unnamed statement the client's own before a Bind or Describe of it: a
    /// server may hold another client's (or none). Without one of its own the client gets
    /// PostgreSQL's error, never someone else's statement. False when the message must be dropped.
    fn ensure_unnamed(
        &mut self,
        server: &mut ServerConn,
        x: &mut Exchange,
        out: &mut BytesMut,
    ) -> bool {
        let Some(u) = self.unnamed.as_ref() else {
            client_error(x, "26000", "unnamed prepared statement does not exist");
            return false;
        };
        if server.unnamed != u.id {
            encode_parse(out, "", &u.query, &u.param_types);
            x.push(Expect::Parse {
                forward: false,
                def: None,
            });
            server.unnamed = u.id;
            Stats::add(&self.rt.stats().reprepares, 1);
        }
        true
    }

    /// Prepares `def` on `server` if it lacks it (answer swallowed).
    fn ensure_prepared(
        &mut self,
        server: &mut ServerConn,
        def: &Arc<StatementDef>,
        x: &mut Exchange,
        out: &mut BytesMut,
    ) {
        if server.prepared.get(&def.server_name).is_none() {
            Stats::add(&self.rt.stats().reprepares, 1);
            prepare_statement(server, def, false, x, out);
        }
    }

    /// Notes the session effects of SQL text (bytes in the client's encoding). For a simple Query
    /// that is exactly one DEALLOCATE of a protocol-level statement (or DEALLOCATE ALL while not
    /// pinned), returns pgfleet's own answer. A text that may change the session must be UTF-8,
    /// because pgfleet analyses it and replays settings as UTF-8 strings.
    fn observe(&mut self, sql: &[u8], simple: bool) -> Result<Option<Expect>, WireError> {
        // Most texts: no effect, and no shared reference count touched to say so.
        if !pgfleet_sql::may_affect_session(sql) {
            return Ok(None);
        }
        let analysis = self.rt.analyzer.analyze(query_text(sql)?);
        if !analysis.changes_session() {
            return Ok(None);
        }
        if let Some(reason) = analysis.pin_reason() {
            if self.pinned.is_none() {
                *self.pinned = Some(reason);
                self.rt.stats().pinned(reason);
            }
        }
        if simple && analysis.effects.len() == 1 {
            if let SessionEffect::Deallocate { name } = &analysis.effects[0] {
                let answer = match name {
                    Some(n) if self.statements.remove(n).is_some() => true,
                    None if self.pinned.is_none() => {
                        self.statements.clear();
                        true
                    }
                    _ => false,
                };
                if answer {
                    let tx = self.tx;
                    return Ok(Some(synthetic(|o| {
                        encode_command_complete(o, "DEALLOCATE");
                        encode_ready_for_query(o, tx);
                    })));
                }
            }
        }
        for effect in &analysis.effects {
            match effect {
                SessionEffect::Set { name } | SessionEffect::SetConfig { name } => {
                    self.effects.readback.insert(name.clone());
                }
                SessionEffect::Reset { name } => {
                    self.effects.readback.insert(name.clone());
                    self.effects.resets.insert(name.clone());
                }
                SessionEffect::ResetAll => self.effects.reset_all = true,
                SessionEffect::DiscardAll => {
                    self.effects.reset_all = true;
                    self.effects.statements_dropped = true;
                }
                SessionEffect::Deallocate { name: None } => self.effects.statements_dropped = true,
                SessionEffect::Deallocate { name: Some(_) }
                | SessionEffect::None
                | SessionEffect::Pin(_)
                | SessionEffect::Transaction(_) => {}
            }
        }
        Ok(None)
    }
}
