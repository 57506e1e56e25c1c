//! The expected-response queue of one server connection in use: for every message sent to the
//! server (the client's, or one pgfleet injected) what the server will answer, whether the client
//! gets that answer, and answers pgfleet gives itself in the right place of the stream
//! (PostgreSQL docs 55.2.3 "Extended Query": after an error the server skips to the next Sync).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use lru::LruCache;
use pgfleet_wire::backend::{decode_ready_for_query, ErrorFields, TxStatus};
use pgfleet_wire::tag::backend as b;
use pgfleet_wire::WireError;

use crate::prepared::StatementDef;
use crate::settings::Settings;

/// Who sent a simple Query that the server is answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The client: forward everything.
    Client,
    /// pgfleet, to replay the client's settings: swallow.
    SettingsSync,
    /// pgfleet, to read settings back after the client changed them: capture the rows.
    Readback,
    /// pgfleet, to learn the WAL position after a session's write (read-your-writes): capture.
    CommitLsn,
    /// pgfleet, sending the client's `BEGIN` it acknowledged itself (sharded databases defer it
    /// until a statement picks the shard): swallow the answer, but show an error to the client.
    DeferredBegin,
    /// pgfleet, putting a transaction it re-opened into the failed state the client already saw:
    /// the server's error is expected and swallowed.
    AbortTx,
}

/// One expected answer.
#[derive(Debug)]
pub(crate) enum Expect {
    /// ParseComplete. `def`: a named statement, added to the server's statement cache when sent;
    /// removed again if the server skips or fails it.
    Parse {
        forward: bool,
        def: Option<Arc<StatementDef>>,
    },
    /// BindComplete.
    Bind,
    /// Optional ParameterDescription, then RowDescription or NoData.
    Describe,
    /// Rows and CommandComplete, EmptyQueryResponse or PortalSuspended (or a COPY).
    Execute,
    /// BindComplete of pgfleet's own `set_config` statement, bound ahead of the client's request
    /// (a settings sync inside it): swallowed. If the server fails the Bind, the statement is
    /// taken out of the server's cache (it was deallocated behind pgfleet's back).
    SettingsBind(Arc<StatementDef>),
    /// That statement's row and CommandComplete: swallowed.
    SettingsExecute,
    /// CloseComplete. `evicted`: a statement pgfleet closed to make room; if the server skips the
    /// Close it is still prepared.
    Close {
        forward: bool,
        evicted: Option<String>,
    },
    /// The client's Sync: ReadyForQuery.
    Sync,
    /// A simple Query or FunctionCall: everything up to ReadyForQuery.
    Query(Origin),
    /// A message pgfleet answers itself, sent when it reaches the head of the queue.
    Synthetic(Bytes),
    /// pgfleet sent a statement that fails on purpose, to refuse a client statement the way
    /// PostgreSQL would (the transaction, if any, is aborted): the server's ErrorResponse is
    /// replaced by these bytes (pgfleet's own ErrorResponse).
    Fail(Bytes),
}

impl Expect {
    fn ends_request(&self) -> bool {
        matches!(self, Expect::Sync | Expect::Query(_))
    }
}

/// What a server message meant for the session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// Nothing to act on.
    Nothing,
    /// The client's request finished with this transaction status.
    ClientReady(TxStatus),
    /// One of pgfleet's own queries finished (`failed`: it got an error).
    InternalReady(Origin, bool),
}

/// The queue plus the modes that change how messages flow.
#[derive(Default)]
pub(crate) struct Exchange {
    queue: VecDeque<Expect>,
    /// Client Syncs/Queries sent and not yet answered with ReadyForQuery.
    pub(crate) client_pending: usize,
    /// The server sent CopyInResponse: the client's CopyData flows until the copy ends.
    pub(crate) copy_in: bool,
    /// The server sent CopyOutResponse and has not finished.
    pub(crate) copy_out: bool,
    /// pgfleet answered a client message with an error: drop client messages up to Sync.
    pub(crate) skip_until_sync: bool,
    /// Turn a server's FATAL into ERROR (the client's session survives losing this server).
    pub(crate) soften_fatal: bool,
    /// An ErrorResponse reached the client since the last ReadyForQuery.
    pub(crate) error_in_request: bool,
    /// The server sent a FATAL error: it is closing the connection (shutdown, crash recovery,
    /// termination). A read that can be replayed elsewhere is, instead of showing the error.
    pub(crate) saw_fatal: bool,
    /// Rows of a read-back query: (name, value or NULL).
    pub(crate) captured: Vec<(String, Option<String>)>,
    /// An error may have skipped a `Parse ""`: the server's unnamed statement is unknown.
    pub(crate) unnamed_unknown: bool,
    /// Tell the client this transaction status instead of the server's (a request that only
    /// prepares runs outside the transaction pgfleet opened locally for the client).
    pub(crate) report_status: Option<TxStatus>,
    /// A settings sync runs inside the client's request (its `set_config` calls share the
    /// request's implicit transaction): the server's settings before it, to be told apart from
    /// the new ones when the request ends (see [`Exchange::uncertain_settings`]).
    pub(crate) settings_before: Option<Settings>,
    /// The server skips messages up to a Sync that no one else will send: send one.
    pub(crate) sync_needed: bool,
    internal_failed: bool,
}

impl Exchange {
    /// Back to the state of a fresh server checkout, keeping allocated capacity.
    pub(crate) fn reset(&mut self) {
        self.queue.clear();
        self.client_pending = 0;
        self.copy_in = false;
        self.copy_out = false;
        self.skip_until_sync = false;
        self.soften_fatal = false;
        self.error_in_request = false;
        self.saw_fatal = false;
        self.captured.clear();
        self.internal_failed = false;
        self.unnamed_unknown = false;
        self.report_status = None;
        self.settings_before = None;
        self.sync_needed = false;
    }

    /// Queues an expected answer.
    pub(crate) fn push(&mut self, e: Expect) {
        if matches!(e, Expect::Sync | Expect::Query(Origin::Client)) {
            self.client_pending += 1;
        }
        self.queue.push_back(e);
    }

    /// Nothing is outstanding on the server.
    pub(crate) fn is_idle(&self) -> bool {
        self.queue.is_empty() && !self.copy_in && !self.copy_out
    }

    /// The client sent CopyDone or CopyFail: its COPY data has ended, and a Sync after it counts again.
    pub(crate) fn client_copy_ended(&mut self) {
        self.copy_in = false;
    }

    /// No client request is in flight: every Sync/Query answered and no COPY running (during
    /// copy-in `client_pending` can be 0 while the COPY's Execute still runs).
    pub(crate) fn no_client_request_open(&self) -> bool {
        self.client_pending == 0 && !self.copy_in && !self.copy_out
    }

    /// Whether the next client message may be sent now: no client request is in flight (so a
    /// transaction boundary is known before more is sent), or the server waits for COPY data.
    pub(crate) fn accepts_client_messages(&self) -> bool {
        self.client_pending == 0 || self.copy_in
    }

    /// Sends every synthetic answer that has reached the head of the queue. Inlined: the session
    /// loop asks several times per transaction, and the answer is nearly always "none".
    #[inline]
    pub(crate) fn drain_synthetic(&mut self, out: &mut BytesMut) {
        if matches!(self.queue.front(), Some(Expect::Synthetic(_))) {
            self.drain_synthetic_slow(out);
        }
    }

    fn drain_synthetic_slow(&mut self, out: &mut BytesMut) {
        while let Some(Expect::Synthetic(_)) = self.queue.front() {
            if let Some(Expect::Synthetic(bytes)) = self.queue.pop_front() {
                out.extend_from_slice(&bytes);
            }
        }
    }

    fn head_forwards(&self) -> bool {
        match self.queue.front() {
            Some(Expect::Parse { forward, .. }) | Some(Expect::Close { forward, .. }) => *forward,
            Some(Expect::Query(origin)) => *origin == Origin::Client,
            Some(Expect::SettingsBind(_) | Expect::SettingsExecute) => false,
            _ => true,
        }
    }

    /// Handles one complete server message (`raw` = tag + length + body). Forwarded bytes go to
    /// `out`; the server's statement cache is kept in step with what really got prepared.
    pub(crate) fn on_server_message(
        &mut self,
        raw: &[u8],
        prepared: &mut LruCache<String, ()>,
        out: &mut BytesMut,
    ) -> Result<Event, WireError> {
        let tag = raw[0];
        let body = &raw[5..];
        let mut event = Event::Nothing;
        match tag {
            // Asynchronous messages may arrive at any time (55.2.7).
            b::NOTICE_RESPONSE | b::PARAMETER_STATUS | b::NOTIFICATION_RESPONSE => {
                if self.head_forwards() {
                    out.extend_from_slice(raw);
                }
            }
            b::PARSE_COMPLETE => {
                if let Some(Expect::Parse { forward, def }) = self.queue.front() {
                    if *forward {
                        out.extend_from_slice(raw);
                    }
                    if let Some(def) = def {
                        def.validated.store(true, Ordering::Relaxed);
                    }
                    self.queue.pop_front();
                } else {
                    out.extend_from_slice(raw);
                }
            }
            b::CLOSE_COMPLETE => {
                if let Some(Expect::Close { forward, .. }) = self.queue.front() {
                    if *forward {
                        out.extend_from_slice(raw);
                    }
                    self.queue.pop_front();
                } else {
                    out.extend_from_slice(raw);
                }
            }
            b::BIND_COMPLETE if matches!(self.queue.front(), Some(Expect::SettingsBind(_))) => {
                self.queue.pop_front();
            }
            b::BIND_COMPLETE | b::NO_DATA | b::PORTAL_SUSPENDED => {
                out.extend_from_slice(raw);
                if matches!(
                    self.queue.front(),
                    Some(Expect::Bind | Expect::Describe | Expect::Execute)
                ) {
                    self.queue.pop_front();
                }
            }
            b::PARAMETER_DESCRIPTION => out.extend_from_slice(raw),
            b::ROW_DESCRIPTION => {
                if self.head_forwards() {
                    out.extend_from_slice(raw);
                }
                if matches!(self.queue.front(), Some(Expect::Describe)) {
                    self.queue.pop_front();
                }
            }
            b::DATA_ROW => match self.queue.front() {
                Some(Expect::Query(Origin::Readback | Origin::CommitLsn)) => self.capture(body)?,
                _ if self.head_forwards() => out.extend_from_slice(raw),
                _ => {}
            },
            b::COMMAND_COMPLETE | b::EMPTY_QUERY_RESPONSE => {
                self.copy_in = false;
                self.copy_out = false;
                if self.head_forwards() {
                    out.extend_from_slice(raw);
                }
                if matches!(
                    self.queue.front(),
                    Some(Expect::Execute | Expect::SettingsExecute)
                ) {
                    self.queue.pop_front();
                }
            }
            b::COPY_IN_RESPONSE | b::COPY_BOTH_RESPONSE => {
                self.copy_in = true;
                // The server ignores Sync and Flush while in copy-in mode (PostgreSQL docs 55.2.6), so a
                // Sync the client sent right after its Execute gets no ReadyForQuery: forget it.
                let before = self.queue.len();
                let mut seen_execute = false;
                self.queue.retain(|e| {
                    if !seen_execute {
                        seen_execute = matches!(e, Expect::Execute | Expect::Query(_));
                        return true;
                    }
                    !matches!(e, Expect::Sync)
                });
                self.client_pending -= before - self.queue.len();
                out.extend_from_slice(raw);
            }
            b::COPY_OUT_RESPONSE => {
                self.copy_out = true;
                out.extend_from_slice(raw);
            }
            b::COPY_DONE => {
                self.copy_out = false;
                out.extend_from_slice(raw);
            }
            b::ERROR_RESPONSE => {
                self.unnamed_unknown = true;
                self.copy_in = false;
                self.copy_out = false;
                let internal =
                    !self.head_forwards() && matches!(self.queue.front(), Some(Expect::Query(_)));
                if let Some(Expect::Fail(ours)) = self.queue.front() {
                    out.extend_from_slice(ours);
                    self.error_in_request = true;
                    self.queue.pop_front();
                } else if matches!(self.queue.front(), Some(Expect::Query(Origin::AbortTx))) {
                    self.internal_failed = true;
                } else if matches!(
                    self.queue.front(),
                    Some(Expect::Query(Origin::DeferredBegin))
                ) {
                    // The client was told BEGIN succeeded; the server says otherwise: show it.
                    self.internal_failed = true;
                    self.error_in_request = true;
                    self.forward_error(raw, body, out)?;
                } else if let Some(Expect::SettingsBind(def)) = self.queue.front() {
                    // pgfleet's own statement failed: the server skips the client's request (up to
                    // its Sync, see below for a simple Query), and the client sees why. A missing
                    // statement is prepared again next time.
                    prepared.pop(&def.server_name);
                    self.error_in_request = true;
                    self.forward_error(raw, body, out)?;
                } else if internal {
                    self.internal_failed = true;
                    tracing::warn!(error = ?ErrorFields::decode(body).ok(), "internal query failed on server");
                } else {
                    self.error_in_request = true;
                    self.forward_error(raw, body, out)?;
                }
                // In the extended protocol the server now skips everything up to Sync.
                if !matches!(self.queue.front(), Some(Expect::Query(_))) {
                    while let Some(head) = self.queue.front() {
                        if head.ends_request() {
                            break;
                        }
                        match self.queue.pop_front() {
                            Some(Expect::Parse { def: Some(def), .. }) => {
                                prepared.pop(&def.server_name);
                            }
                            Some(Expect::Close {
                                evicted: Some(n), ..
                            }) => {
                                prepared.put(n, ());
                            }
                            _ => {}
                        }
                    }
                    // A simple Query right behind the failed extended-protocol messages (a request
                    // that carries a settings sync): the server ignores it until a Sync, which
                    // pgfleet must send; its ReadyForQuery then ends the client's Query.
                    if matches!(self.queue.front(), Some(Expect::Query(_))) {
                        self.sync_needed = true;
                    }
                }
            }
            b::READY_FOR_QUERY => {
                let status = decode_ready_for_query(body)?;
                match self.queue.pop_front() {
                    Some(Expect::Query(origin)) if origin != Origin::Client => {
                        event =
                            Event::InternalReady(origin, std::mem::take(&mut self.internal_failed));
                    }
                    Some(_) | None => {
                        match self.report_status {
                            Some(reported) => {
                                pgfleet_wire::backend::encode_ready_for_query(out, reported)
                            }
                            None => out.extend_from_slice(raw),
                        }
                        self.client_pending = self.client_pending.saturating_sub(1);
                        self.skip_until_sync = false;
                        event = Event::ClientReady(status);
                    }
                }
            }
            _ => {
                if self.head_forwards() {
                    out.extend_from_slice(raw);
                }
            }
        }
        self.drain_synthetic(out);
        Ok(event)
    }

    fn forward_error(
        &mut self,
        raw: &[u8],
        body: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), WireError> {
        let mut fields = ErrorFields::decode(body)?;
        if fields.severity() == Some("FATAL") {
            self.saw_fatal = true;
            if self.soften_fatal {
                fields.set_severity("ERROR");
                fields.encode(out, b::ERROR_RESPONSE);
                return Ok(());
            }
        }
        out.extend_from_slice(raw);
        Ok(())
    }

    fn capture(&mut self, body: &[u8]) -> Result<(), WireError> {
        let mut cols = Vec::with_capacity(2);
        let mut rest = body.get(2..).ok_or(WireError::Truncated("DataRow"))?;
        for _ in 0..2 {
            let len_bytes = rest.get(..4).ok_or(WireError::Truncated("DataRow"))?;
            let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
            rest = &rest[4..];
            if len < 0 {
                cols.push(None);
            } else {
                let v = rest
                    .get(..len as usize)
                    .ok_or(WireError::Truncated("DataRow"))?;
                cols.push(Some(String::from_utf8_lossy(v).into_owned()));
                rest = &rest[len as usize..];
            }
        }
        if let [Some(name), value] = &cols[..] {
            self.captured.push((name.clone(), value.clone()));
        }
        Ok(())
    }

    /// FunctionCalls of a settings sync are still unanswered.
    pub(crate) fn settings_calls_pending(&self) -> bool {
        self.queue
            .iter()
            .any(|e| matches!(e, Expect::Query(Origin::SettingsSync)))
    }

    /// At the end of a client request that carried a settings sync: the server's settings from
    /// before the sync when the sync's outcome is uncertain. The sync shared the request's
    /// implicit transaction, so it took effect only if that transaction committed: the request
    /// ended idle without an error. Otherwise (`Some`) the caller assumes nothing about the
    /// server's values of these settings or of the new ones.
    pub(crate) fn uncertain_settings(&mut self, status: TxStatus) -> Option<Settings> {
        let before = self.settings_before.take()?;
        (status != TxStatus::Idle || self.error_in_request).then_some(before)
    }

    /// Forgets everything outstanding (the server connection is gone). Returns whether a client
    /// request was in flight.
    pub(crate) fn abandon(&mut self) -> bool {
        let pending = self.client_pending > 0 || self.copy_in || self.copy_out;
        self.queue.clear();
        self.client_pending = 0;
        self.copy_in = false;
        self.copy_out = false;
        pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgfleet_wire::backend::{
        encode_command_complete, encode_empty, encode_error, encode_ready_for_query,
    };
    use std::num::NonZeroUsize;

    fn msgs(f: impl FnOnce(&mut BytesMut)) -> Vec<Vec<u8>> {
        let mut b = BytesMut::new();
        f(&mut b);
        let mut out = Vec::new();
        while !b.is_empty() {
            let len = i32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize + 1;
            out.push(b.split_to(len).to_vec());
        }
        out
    }

    fn cache() -> LruCache<String, ()> {
        LruCache::new(NonZeroUsize::new(10).unwrap())
    }

    #[test]
    fn injected_parse_is_swallowed_and_synthetic_close_is_ordered() {
        let mut x = Exchange::default();
        let mut prepared = cache();
        let reg = crate::prepared::PreparedRegistry::default();
        let def = reg.intern("SELECT 1", &[], None);
        prepared.put(def.server_name.clone(), ());
        x.push(Expect::Parse {
            forward: false,
            def: Some(def.clone()),
        });
        x.push(Expect::Bind);
        x.push(Expect::Execute);
        x.push(Expect::Synthetic(Bytes::from_static(b"3\0\0\0\x04")));
        x.push(Expect::Sync);
        let server = msgs(|b| {
            encode_empty(b, b::PARSE_COMPLETE);
            encode_empty(b, b::BIND_COMPLETE);
            encode_command_complete(b, "SELECT 0");
            encode_ready_for_query(b, TxStatus::Idle);
        });
        let mut out = BytesMut::new();
        let mut events = Vec::new();
        for m in &server {
            events.push(x.on_server_message(m, &mut prepared, &mut out).unwrap());
        }
        let tags: Vec<u8> = msgs(|b| b.extend_from_slice(&out))
            .iter()
            .map(|m| m[0])
            .collect();
        assert_eq!(tags, vec![b'2', b'C', b'3', b'Z']);
        assert_eq!(events.last(), Some(&Event::ClientReady(TxStatus::Idle)));
        assert!(x.is_idle());
        assert!(def.validated.load(Ordering::Relaxed));
    }

    #[test]
    fn error_skips_to_sync_and_uncaches_skipped_parses() {
        let mut x = Exchange::default();
        let mut prepared = cache();
        let reg = crate::prepared::PreparedRegistry::default();
        let def = reg.intern("SELECT 2", &[], None);
        prepared.put(def.server_name.clone(), ());
        x.push(Expect::Bind);
        x.push(Expect::Parse {
            forward: true,
            def: Some(def.clone()),
        });
        x.push(Expect::Synthetic(Bytes::from_static(b"3\0\0\0\x04")));
        x.push(Expect::Sync);
        let server = msgs(|b| {
            encode_error(b, "ERROR", "42P01", "relation does not exist");
            encode_ready_for_query(b, TxStatus::Idle);
        });
        let mut out = BytesMut::new();
        for m in &server {
            x.on_server_message(m, &mut prepared, &mut out).unwrap();
        }
        let tags: Vec<u8> = msgs(|b| b.extend_from_slice(&out))
            .iter()
            .map(|m| m[0])
            .collect();
        assert_eq!(tags, vec![b'E', b'Z']);
        assert!(!prepared.contains(&def.server_name));
        assert!(!def.validated.load(Ordering::Relaxed));
        assert!(x.error_in_request);
    }

    /// Runs `server` through a queue of a settings sync inside a request (one call) and the
    /// client's Bind/Execute/Sync; returns the tags the client got.
    fn sync_in_request(
        server: &[Vec<u8>],
        x: &mut Exchange,
        prepared: &mut LruCache<String, ()>,
    ) -> Vec<u8> {
        let reg = crate::prepared::PreparedRegistry::default();
        let def = reg.set_config_statement(None);
        prepared.put(def.server_name.clone(), ());
        x.settings_before = Some(Settings::default());
        x.push(Expect::SettingsBind(def));
        x.push(Expect::SettingsExecute);
        x.push(Expect::Bind);
        x.push(Expect::Execute);
        x.push(Expect::Sync);
        let mut out = BytesMut::new();
        for m in server {
            x.on_server_message(m, prepared, &mut out).unwrap();
        }
        msgs(|b| b.extend_from_slice(&out))
            .iter()
            .map(|m| m[0])
            .collect()
    }

    /// The server's answer to one Bind/Execute of the set_config statement.
    fn set_config_answer(b: &mut BytesMut) {
        encode_empty(b, b::BIND_COMPLETE);
        pgfleet_wire::backend::encode_data_row(b, &[Some("acme")]);
        encode_command_complete(b, "SELECT 1");
    }

    #[test]
    fn settings_sync_inside_a_request_is_swallowed() {
        let mut x = Exchange::default();
        let mut prepared = cache();
        let server = msgs(|b| {
            set_config_answer(b);
            encode_empty(b, b::BIND_COMPLETE);
            pgfleet_wire::backend::encode_data_row(b, &[Some("mine")]);
            encode_command_complete(b, "SELECT 1");
            encode_ready_for_query(b, TxStatus::Idle);
        });
        assert_eq!(
            sync_in_request(&server, &mut x, &mut prepared),
            vec![b'2', b'D', b'C', b'Z']
        );
        assert!(x.is_idle());
        assert_eq!(x.uncertain_settings(TxStatus::Idle), None, "committed");
    }

    #[test]
    fn failed_settings_statement_fails_the_request_and_is_prepared_again() {
        let mut x = Exchange::default();
        let mut prepared = cache();
        let server = msgs(|b| {
            encode_error(b, "ERROR", "26000", "prepared statement does not exist");
            encode_ready_for_query(b, TxStatus::Idle);
        });
        assert_eq!(
            sync_in_request(&server, &mut x, &mut prepared),
            vec![b'E', b'Z']
        );
        assert!(x.is_idle());
        assert!(
            prepared.is_empty(),
            "the statement is prepared again next time"
        );
        assert_eq!(
            x.uncertain_settings(TxStatus::Idle),
            Some(Settings::default())
        );
    }

    #[test]
    fn failed_settings_statement_ahead_of_a_simple_query_asks_for_a_sync() {
        let mut x = Exchange::default();
        let mut prepared = cache();
        let reg = crate::prepared::PreparedRegistry::default();
        x.settings_before = Some(Settings::default());
        x.push(Expect::SettingsBind(reg.set_config_statement(None)));
        x.push(Expect::SettingsExecute);
        x.push(Expect::Query(Origin::Client));
        let mut out = BytesMut::new();
        let error = msgs(|b| encode_error(b, "ERROR", "57014", "canceling statement"));
        x.on_server_message(&error[0], &mut prepared, &mut out)
            .unwrap();
        assert!(x.sync_needed, "the server ignores the Query until a Sync");
        // The ReadyForQuery that answers pgfleet's Sync ends the client's Query.
        let ready = msgs(|b| encode_ready_for_query(b, TxStatus::Idle));
        let event = x
            .on_server_message(&ready[0], &mut prepared, &mut out)
            .unwrap();
        assert_eq!(event, Event::ClientReady(TxStatus::Idle));
        let tags: Vec<u8> = msgs(|b| b.extend_from_slice(&out))
            .iter()
            .map(|m| m[0])
            .collect();
        assert_eq!(tags, vec![b'E', b'Z']);
        assert!(x.is_idle());
        assert_eq!(
            x.uncertain_settings(TxStatus::Idle),
            Some(Settings::default())
        );
    }

    #[test]
    fn client_error_after_a_settings_sync_makes_it_uncertain() {
        let mut x = Exchange::default();
        let mut prepared = cache();
        let server = msgs(|b| {
            set_config_answer(b);
            encode_empty(b, b::BIND_COMPLETE);
            encode_error(b, "ERROR", "22012", "division by zero");
            encode_ready_for_query(b, TxStatus::Idle);
        });
        assert_eq!(
            sync_in_request(&server, &mut x, &mut prepared),
            vec![b'2', b'E', b'Z']
        );
        assert_eq!(prepared.len(), 1);
        assert_eq!(
            x.uncertain_settings(TxStatus::Idle),
            Some(Settings::default())
        );
        assert_eq!(
            x.uncertain_settings(TxStatus::Idle),
            None,
            "asked once per sync"
        );
    }

    #[test]
    fn internal_query_is_swallowed_and_readback_captured() {
        let mut x = Exchange::default();
        let mut prepared = cache();
        x.push(Expect::Query(Origin::Readback));
        let server = msgs(|b| {
            pgfleet_wire::backend::encode_text_row_description(b, &["n", "v"]);
            pgfleet_wire::backend::encode_data_row(b, &[Some("work_mem"), Some("8MB")]);
            pgfleet_wire::backend::encode_data_row(b, &[Some("x.y"), None]);
            encode_command_complete(b, "SELECT 2");
            encode_ready_for_query(b, TxStatus::Idle);
        });
        let mut out = BytesMut::new();
        let mut last = Event::Nothing;
        for m in &server {
            last = x.on_server_message(m, &mut prepared, &mut out).unwrap();
        }
        assert!(out.is_empty());
        assert_eq!(last, Event::InternalReady(Origin::Readback, false));
        assert_eq!(
            x.captured,
            vec![
                ("work_mem".into(), Some("8MB".into())),
                ("x.y".into(), None)
            ]
        );
    }

    #[test]
    fn fatal_is_softened_when_asked() {
        let mut x = Exchange {
            soften_fatal: true,
            ..Exchange::default()
        };
        x.push(Expect::Query(Origin::Client));
        let server = msgs(|b| encode_error(b, "FATAL", "57P01", "terminating connection"));
        let mut out = BytesMut::new();
        x.on_server_message(&server[0], &mut cache(), &mut out)
            .unwrap();
        let f = ErrorFields::decode(&out[5..]).unwrap();
        assert_eq!(f.severity(), Some("ERROR"));
        assert!(x.abandon());
    }
}
