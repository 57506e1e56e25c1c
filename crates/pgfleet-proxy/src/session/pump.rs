//! The busy phase of a session: moving messages both ways while it holds a server, confirming
//! session changes when their transaction ends, and deciding when the server can go back.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use bytes::{Buf, BytesMut};
use pgfleet_config::PoolMode;
use pgfleet_wire::backend::TxStatus;
use pgfleet_wire::frame::peek_header;
use pgfleet_wire::frontend::encode_query;
use tokio::sync::futures::Notified;

use super::cleanup::lose_server;
use super::params::{readback_sql, SessionParams};
use super::replay::ReadReplay;
use super::shards::refuse;
use super::{PumpEnd, Session};
use crate::client::ClientConn;
use crate::execute::exchange::{Event, Expect, Origin};
use crate::execute::request::{PendingEffects, RequestCtx, Step};
use crate::outline::outlined;
use crate::server::ServerConn;
use crate::sharding::Holder;
use crate::stats::Stats;
use crate::ProxyError;

/// Most client bytes buffered while a request is in flight before pgfleet stops reading.
const CLIENT_READ_AHEAD: usize = 256 * 1024;

impl Session<'_> {
    /// Moves messages both ways while a server is held. `kicked` is the session's shutdown notice,
    /// registered once by [`Session::serve`] (each registration takes the notifier's lock).
    pub(super) async fn pump(
        &mut self,
        mut kicked: Pin<&mut Notified<'_>>,
    ) -> Result<PumpEnd, ProxyError> {
        // The session's fields are used in place (`self.client`, ...), not bound to locals: what
        // lives across an await is stored in this future, and each pointer kept there is written
        // at every call, one more cache line per transaction.
        let rt = self.rt;
        let Some(guard) = self.server.as_mut() else {
            // (Not reached: `serve` checks out before it pumps.) Nothing of an earlier stretch
            // may go out as this one's answer.
            self.to_client.clear();
            return Ok(PumpEnd::Release);
        };
        let server: &mut ServerConn = guard;
        let session_mode = self.entry.mode() == PoolMode::Session;
        // Sharded databases: every statement is checked against the server's cluster.
        let router = match self.shard.as_deref_mut() {
            Some(sh) => rt.shard_router_memo(&self.pools.key.1, &mut sh.router),
            None => None,
        };
        // Keep small buffers for the next transaction; give back ones a big COPY or result grew.
        for buf in [&mut self.to_server, &mut self.to_client] {
            if buf.capacity() > 64 * 1024 {
                *buf = BytesMut::new();
            }
            buf.clear();
        }
        let mut synced = false;
        // Whether a request end went out in this stretch: once its transaction is over, the next
        // request must be routed (and checked out) anew, not slipped onto this server.
        let mut sent_request = false;
        // The client's answer to a writing transaction waits in `to_client` until its commit
        // position is known and, with a write quorum, replayed by enough replicas.
        let mut holding = false;
        // Whether the request being sent began outside a transaction (set at its first message).
        let mut request_opens_transaction: Option<bool> = None;
        loop {
            // 1. Client messages the server may take now.
            let mut gone = false;
            // A message waits for the server's answers before the session moves to another
            // shard or ends a transaction on several: stop taking client messages until then.
            let mut hold = false;
            let boundary = request_boundary(
                sent_request,
                session_mode || self.pinned.is_some(),
                self.tx,
                &self.exchange,
                self.tenant.is_some(),
                &self.effects,
            );
            while self.exchange.accepts_client_messages() && !boundary {
                // A message kept in `first` already passed the tenant guard (in `serve` before
                // the checkout, or here before the session moved on with it), under the rules
                // still in force: no context is entered before it.
                let (frame, guarded) = match self.first.take() {
                    Some(f) => (f, true),
                    None => match self.client.next_frame()? {
                        Some(f) => (f, false),
                        None => break,
                    },
                };
                // Tenant sessions: every statement passes the guard; a session that keeps its
                // server enters its tenant again at each transaction (a SET pgfleet.tenant, a
                // suspension, RESET ALL undoing the context).
                if let Some(ts) = self.tenant.as_deref_mut() {
                    let opens = sent_request
                        && self.tx == TxStatus::Idle
                        && self.exchange.no_client_request_open();
                    let mut checked = Ok(false);
                    if opens {
                        checked = outlined(ts.enter(
                            rt,
                            &mut self.params,
                            &mut self.statements,
                            &mut self.unnamed,
                            true,
                        ))
                        .await;
                        let sync = (matches!(checked, Ok(true)) && synced)
                            .then(|| self.params.sync(&server.params, &server.startup_params))
                            .flatten();
                        if let Some(sync) = sync {
                            outlined(super::params::sync_server(
                                &rt.prepared,
                                &self.info,
                                sync,
                                server,
                                &mut self.exchange,
                                &mut self.to_server,
                                || false,
                            ))
                            .await;
                        }
                    }
                    if checked.is_ok()
                        && !self.exchange.skip_until_sync
                        && self.tx != TxStatus::Failed
                    {
                        checked = if guarded && !opens {
                            ts.count_statement(&frame);
                            Ok(false)
                        } else {
                            ts.check(&frame, true).map(|()| false)
                        };
                    }
                    if let Err(e) = checked {
                        tracing::debug!(client = self.info.id, error = %e, "statement refused for the tenant");
                        refuse(&e, &frame, server, &mut self.exchange, &mut self.to_server);
                        if frame.tag() == pgfleet_wire::tag::frontend::QUERY {
                            sent_request = true;
                            self.info.count_request();
                        }
                        continue;
                    }
                }
                if !synced {
                    synced = true;
                    // The sync may go inside a request that opens no transaction on a server
                    // with nothing outstanding (sharded sessions keep their own order of things).
                    let may_carry = self.shard.is_none()
                        && self.tx == TxStatus::Idle
                        && self.exchange.is_idle()
                        && self.effects.is_empty();
                    let statements_now: &std::collections::HashMap<_, _> = &self.statements;
                    let unnamed_now = self.unnamed.as_deref();
                    let carried = || {
                        may_carry
                            && super::inline_sync::request_may_carry_sync(
                                &frame,
                                &self.client.rbuf,
                                super::inline_sync::RequestCheck::new(statements_now, unnamed_now),
                            )
                    };
                    if let Some(sync) = self.params.sync(&server.params, &server.startup_params) {
                        outlined(super::params::sync_server(
                            &rt.prepared,
                            &self.info,
                            sync,
                            server,
                            &mut self.exchange,
                            &mut self.to_server,
                            carried,
                        ))
                        .await;
                        Stats::add(&rt.stats().settings_replays, 1);
                    }
                    if let Some(sh) = self.shard.as_deref_mut() {
                        sh.open_on(server, &mut self.exchange, &mut self.to_server);
                    }
                }
                if let (Some(sh), Some(router)) = (self.shard.as_deref_mut(), router.as_deref()) {
                    // A switch to another shard that failed: its statement fails here.
                    if let Some(e) = sh.pending_refusal.take() {
                        refuse(&e, &frame, server, &mut self.exchange, &mut self.to_server);
                        if frame.tag() == pgfleet_wire::tag::frontend::QUERY {
                            sent_request = true;
                        }
                        continue;
                    }
                    // A transaction on several shards ends with pgfleet's two-phase commit.
                    if sh.spans()
                        && self.tx != TxStatus::Idle
                        && self.exchange.no_client_request_open()
                        && super::multishard::ends_transaction(
                            rt,
                            &frame,
                            &self.statements,
                            &self.unnamed,
                        )?
                    {
                        self.first = Some(frame);
                        if self.exchange.is_idle() && self.to_server.is_empty() {
                            // Answers already in hand go to the client first.
                            outlined(flush_client(&mut self.client, &mut self.to_client)).await?;
                            return Ok(PumpEnd::EndTransaction);
                        }
                        hold = true;
                        break;
                    }
                    // COMMIT/ROLLBACK bound in the middle of a request would end the transaction on
                    // one shard only.
                    if sh.spans()
                        && !self.exchange.no_client_request_open()
                        && frame.tag() == pgfleet_wire::tag::frontend::BIND
                        && super::multishard::ends_transaction(
                            rt,
                            &frame,
                            &self.statements,
                            &self.unnamed,
                        )?
                    {
                        let e = ProxyError::Client {
                            code: "0A000",
                            message: "pgfleet: a transaction that spans shards ends with a COMMIT or ROLLBACK request of its own".into(),
                        };
                        refuse(&e, &frame, server, &mut self.exchange, &mut self.to_server);
                        continue;
                    }
                    // In a failed transaction the server itself refuses all but ROLLBACK.
                    if !self.exchange.skip_until_sync && self.tx != TxStatus::Failed {
                        let holder = if self.tx != TxStatus::Idle {
                            Holder::Transaction
                        } else if sent_request {
                            Holder::Session
                        } else {
                            Holder::Request
                        };
                        let refused = sh.check(
                            router,
                            &frame,
                            &self.statements,
                            &self.unnamed,
                            &self.params,
                            holder,
                        )?;
                        // A statement for another shard at the start of a request inside a
                        // transaction: the transaction continues there too.
                        if let Some(super::shards::Refusal {
                            wanted: Some(crate::sharding::Place::Shard(_)),
                            ..
                        }) = &refused
                        {
                            if holder == Holder::Transaction
                                && self.tx == TxStatus::InTransaction
                                && !session_mode
                                && self.pinned.is_none()
                                && !sh.savepoints
                                && self.exchange.no_client_request_open()
                            {
                                self.first = Some(frame);
                                if self.exchange.is_idle() && self.to_server.is_empty() {
                                    outlined(flush_client(&mut self.client, &mut self.to_client))
                                        .await?;
                                    return Ok(PumpEnd::SwitchShard);
                                }
                                hold = true;
                                break;
                            }
                        }
                        if let Some(super::shards::Refusal { error: e, .. }) = refused {
                            tracing::debug!(client = self.info.id, error = %e, "statement refused");
                            refuse(&e, &frame, server, &mut self.exchange, &mut self.to_server);
                            if frame.tag() == pgfleet_wire::tag::frontend::QUERY {
                                sent_request = true;
                                self.info.count_request();
                            }
                            continue;
                        }
                    }
                }
                self.exchange.soften_fatal =
                    !session_mode && self.pinned.is_none() && self.tx == TxStatus::Idle;
                let mut ctx = RequestCtx {
                    rt,
                    statements: &mut self.statements,
                    effects: &mut self.effects,
                    pinned: &mut self.pinned,
                    tx: self.tx,
                    settings: self.params.desired(),
                    unnamed: &mut self.unnamed,
                };
                // A session that keeps its server runs later transactions without being routed
                // again: decide at each request that opens one whether its commit is followed.
                if request_opens_transaction.is_none() {
                    request_opens_transaction =
                        Some(self.tx == TxStatus::Idle && self.exchange.no_client_request_open());
                }
                match ctx.translate(&frame, server, &mut self.exchange, &mut self.to_server)? {
                    Step::Continue => {}
                    Step::Answered => {
                        request_opens_transaction = None;
                        sent_request = true;
                    }
                    Step::RequestSent => {
                        if request_opens_transaction.take() == Some(true)
                            && self.follow_commits
                            && !self.needs_commit_lsn
                            && (session_mode || self.pinned.is_some())
                        {
                            let q = super::routing::session_write_quorum(
                                &self.params,
                                self.pools.state.as_deref(),
                            )
                            .unwrap_or(0);
                            let ryw = super::routing::session_consistency(
                                &self.params,
                                self.default_consistency,
                            )
                            .is_ok_and(|c| c == pgfleet_config::Consistency::ReadYourWrites);
                            self.quorum = q;
                            self.needs_commit_lsn = q > 0 || ryw;
                        }
                        sent_request = true;
                        self.info.count_request();
                        server
                            .info
                            .requests
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Step::Terminate => {
                        gone = true;
                        break;
                    }
                }
            }
            // 2. Confirm session changes once their transaction is over.
            if self.tx == TxStatus::Idle && self.exchange.is_idle() && !self.effects.is_empty() {
                let mut names: Vec<String> = self.effects.readback.iter().cloned().collect();
                if self.effects.reset_all {
                    names.extend(self.params.all_names(&server.params));
                }
                names.sort();
                names.dedup();
                if self.effects.statements_dropped {
                    if !self.exchange.error_in_request {
                        server.prepared.clear();
                        self.statements.clear();
                    } else if self.pinned.is_none() {
                        // The request failed, so whether its DISCARD ALL / DEALLOCATE ALL ran is
                        // unknown (DISCARD ALL in a multi-statement string fails; a DEALLOCATE
                        // ALL before a later error is not rolled back). The server's statements
                        // go for certain; the client's stay (prepared again where used).
                        encode_query(&mut self.to_server, "DEALLOCATE ALL");
                        self.exchange.push(Expect::Query(Origin::SettingsSync));
                        server.prepared.clear();
                    }
                }
                if names.is_empty() {
                    apply_effects(
                        &mut self.effects,
                        &mut self.params,
                        !self.exchange.error_in_request,
                    );
                } else {
                    encode_query(&mut self.to_server, &readback_sql(&names));
                    server.unnamed = 0;
                    self.exchange.push(Expect::Query(Origin::Readback));
                }
            }
            // 3. Read-your-writes: learn where the primary's WAL stands once the transaction is over.
            if self.needs_commit_lsn
                && self.tx == TxStatus::Idle
                && self.exchange.is_idle()
                && sent_request
            {
                self.needs_commit_lsn = false;
                // The insert position, not pg_current_wal_lsn(): with synchronous_commit = off the
                // commit record may not be written yet, and only the insert position bounds it.
                encode_query(&mut self.to_server, super::quorum::COMMIT_LSN_SQL);
                server.unnamed = 0;
                self.exchange.push(Expect::Query(Origin::CommitLsn));
                holding = self.quorum > 0;
            }
            self.exchange.drain_synthetic(&mut self.to_client);
            if !self.to_server.is_empty() {
                // The socket usually takes it all at once: no future then.
                let written = match server.write_now(&self.to_server) {
                    Ok(n) if n == self.to_server.len() => Ok(()),
                    Ok(n) => outlined(server.write_rest(&self.to_server[n..])).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    return outlined(self.server_failed(e, session_mode)).await;
                }
                self.to_server.clear();
            }
            // The transaction is over: the server goes back first and the answer follows (in
            // `serve`, see `PumpEnd::Release`). (An answer held for a quorum has its commit
            // position query still outstanding, so the transaction is not over while `holding`.)
            if !gone
                && !holding
                && self.first.is_none()
                && !session_mode
                && self.pinned.is_none()
                && self.tx == TxStatus::Idle
                && self.exchange.is_idle()
                && self.effects.is_empty()
            {
                return Ok(PumpEnd::Release);
            }
            if !self.to_client.is_empty() && !holding {
                let n = self.client.write_now(&self.to_client)?;
                if n < self.to_client.len() {
                    outlined(self.client.write_rest(&self.to_client[n..])).await?;
                }
                self.to_client.clear();
            }
            if gone {
                return Ok(PumpEnd::ClientGone);
            }
            let at_boundary = request_boundary(
                sent_request,
                session_mode || self.pinned.is_some(),
                self.tx,
                &self.exchange,
                self.tenant.is_some(),
                &self.effects,
            );
            if self.client.next_frame_ready()
                && self.exchange.accepts_client_messages()
                && !at_boundary
                && !hold
            {
                continue;
            }
            // The held message waited only for pgfleet's own answers (drained above): go on.
            if hold && self.first.is_some() && self.exchange.is_idle() {
                continue;
            }
            // 3. Wait for either side.
            let read_client = self.client.rbuf.len() < CLIENT_READ_AHEAD
                || self.exchange.accepts_client_messages();
            let idle_session = self.exchange.is_idle() && self.tx == TxStatus::Idle;
            if idle_session {
                // A session that keeps its server goes idle here (as `serve` does without one):
                // SHOW STATS sees every byte so far.
                self.info
                    .record_io(self.client.consumed, self.client.written);
            }
            // The server's answers first: while they stream, the client's next messages wait in
            // its socket, as PostgreSQL's would. One poll function over both sockets: no read
            // future per socket kept in this future's state.
            let client = &mut self.client;
            let woke = std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = server.poll_fill(cx) {
                    return Poll::Ready(Woke::Server(r));
                }
                if read_client {
                    if let Poll::Ready(r) = client.poll_fill(cx) {
                        return Poll::Ready(Woke::Client(r));
                    }
                }
                if idle_session && kicked.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Woke::Kicked);
                }
                Poll::Pending
            })
            .await;
            match woke {
                Woke::Server(Ok(())) => {}
                Woke::Server(Err(e)) => return outlined(self.server_failed(e, session_mode)).await,
                Woke::Client(r) => {
                    if !r? {
                        return Ok(PumpEnd::ClientGone);
                    }
                    continue;
                }
                Woke::Kicked => {
                    outlined(self.client.fatal("57P01", super::SHUTDOWN_MESSAGE)).await;
                    return Ok(PumpEnd::ClientGone);
                }
            }
            // 4. Route every complete server message.
            loop {
                let total = match peek_header(&server.rbuf, crate::server::MAX_SERVER_MESSAGE) {
                    Ok(Some((_, total))) if server.rbuf.len() >= total => total,
                    Ok(_) => break,
                    Err(source) => {
                        let e = crate::server::ServerError::Protocol {
                            addr: server.info.addr.clone(),
                            source,
                        };
                        self.server_broken = true;
                        return outlined(lose_server(
                            rt,
                            &mut self.client,
                            &mut self.exchange,
                            e,
                            self.tx,
                            true,
                        ))
                        .await;
                    }
                };
                let event = self
                    .exchange
                    .on_server_message(
                        &server.rbuf[..total],
                        &mut server.prepared,
                        &mut self.to_client,
                    )
                    .map_err(|source| crate::server::ServerError::Protocol {
                        addr: server.info.addr.clone(),
                        source,
                    })?;
                server.rbuf.advance(total);
                if self.exchange.saw_fatal && replayable(&self.replay, &self.client, self.tx) {
                    // The replica is going away (shutdown, crash, termination): its FATAL error
                    // stays unsent and the read goes elsewhere.
                    self.server_broken = true;
                    return Ok(PumpEnd::ReplayRead);
                }
                if std::mem::take(&mut self.exchange.unnamed_unknown) {
                    server.unnamed = 0;
                }
                if std::mem::take(&mut self.exchange.sync_needed) {
                    pgfleet_wire::frontend::encode_sync(&mut self.to_server);
                }
                match event {
                    Event::Nothing => {}
                    Event::ClientReady(status) => {
                        self.tx = status;
                        if let Some(before) = self.exchange.uncertain_settings(status) {
                            super::params::forget_changed(&mut server.params, before);
                        }
                    }
                    Event::InternalReady(Origin::Readback, failed) => {
                        for (name, value) in std::mem::take(&mut self.exchange.captured) {
                            match &value {
                                Some(v) => server.params.insert(name.clone(), v.clone()),
                                None => server.params.remove(&name),
                            };
                            self.params.learned(&name, value);
                        }
                        apply_effects(
                            &mut self.effects,
                            &mut self.params,
                            !failed && !self.exchange.error_in_request,
                        );
                        self.exchange.error_in_request = false;
                    }
                    Event::InternalReady(Origin::CommitLsn, failed) => {
                        let lsn = std::mem::take(&mut self.exchange.captured)
                            .into_iter()
                            .find_map(|(_, v)| {
                                v.and_then(|v| crate::replication::Lsn::parse(&v).ok())
                            })
                            .filter(|_| !failed);
                        if let Some(lsn) = lsn {
                            self.last_write_lsn = Some(lsn);
                            // Visible to the client as `SHOW pgfleet.last_write_lsn` (a causal-read
                            // token for `SET pgfleet.after_lsn` on another connection).
                            self.params
                                .learned("pgfleet.last_write_lsn", Some(lsn.to_string()));
                        }
                        if std::mem::take(&mut holding) {
                            let needed = std::mem::take(&mut self.quorum);
                            if let Some(state) = self.pools.state.as_ref() {
                                if !outlined(super::quorum::await_quorum(
                                    state,
                                    lsn,
                                    needed,
                                    &mut self.to_client,
                                ))
                                .await
                                {
                                    Stats::add(&rt.stats().quorum_timeouts, 1);
                                }
                            }
                        }
                    }
                    Event::InternalReady(Origin::SettingsSync, failed) => {
                        if failed {
                            // Which call failed is unknown: every setting is set again next time.
                            super::params::forget_changed(&mut server.params, Default::default());
                        }
                        if !self.exchange.settings_calls_pending() {
                            self.info.settings_calls_done();
                        }
                    }
                    Event::InternalReady(_, _) => self.exchange.captured.clear(),
                }
                if matches!(event, Event::ClientReady(TxStatus::Idle)) && self.effects.is_empty() {
                    self.exchange.error_in_request = false;
                }
            }
        }
    }
}

impl Session<'_> {
    /// The held server failed mid-stretch: a read that can still go elsewhere is replayed,
    /// anything else loses the server.
    async fn server_failed(
        &mut self,
        e: crate::server::ServerError,
        session_mode: bool,
    ) -> Result<PumpEnd, ProxyError> {
        self.server_broken = true;
        if replayable(&self.replay, &self.client, self.tx) {
            return Ok(PumpEnd::ReplayRead);
        }
        lose_server(
            self.rt,
            &mut self.client,
            &mut self.exchange,
            e,
            self.tx,
            self.pinned.is_some() || session_mode,
        )
        .await
    }
}

/// What ended a wait of the pump.
enum Woke {
    /// The server's socket was read (or failed).
    Server(Result<(), crate::server::ServerError>),
    /// The client's socket was read: false at EOF.
    Client(Result<bool, ProxyError>),
    /// The session is told to end (shutdown) while idle.
    Kicked,
}

/// Writes what is waiting for the client (before the session leaves the pump mid-loop, or after
/// it released the server).
pub(super) async fn flush_client(
    client: &mut ClientConn,
    to_client: &mut BytesMut,
) -> Result<(), ProxyError> {
    if !to_client.is_empty() {
        client.write_all(to_client).await?;
        to_client.clear();
    }
    Ok(())
}

/// Whether the read in flight can still be sent to another server: nothing of it reached the
/// client and no transaction has started.
fn replayable(replay: &Option<ReadReplay>, client: &ClientConn, tx: TxStatus) -> bool {
    tx == TxStatus::Idle && replay.as_ref().is_some_and(|r| r.applies(client))
}

/// Whether the session stops taking client messages on this server for now: once a transaction
/// has ended here, the next request waits for pgfleet's own follow-up work (settings read-back,
/// commit LSN) and is then routed and checked out anew (unless the session keeps its server:
/// `keeps_server`, session pooling or pinned). A tenant session that keeps its server enters its
/// tenant again at the next request: only once the settings the last one changed have been read
/// back ([`tenant_wait`]).
fn request_boundary(
    sent_request: bool,
    keeps_server: bool,
    tx: TxStatus,
    x: &crate::execute::exchange::Exchange,
    tenant: bool,
    effects: &PendingEffects,
) -> bool {
    sent_request && !keeps_server && tx == TxStatus::Idle && x.no_client_request_open()
        || tenant_wait(tenant, sent_request, tx, x, effects)
}

/// Whether a tenant session must wait for pgfleet's own follow-up work (settings read-back)
/// before it takes the next request: entering its tenant again needs the settings that request's
/// predecessor changed (`SET pgfleet.tenant`).
fn tenant_wait(
    tenant: bool,
    sent_request: bool,
    tx: TxStatus,
    x: &crate::execute::exchange::Exchange,
    effects: &PendingEffects,
) -> bool {
    tenant
        && sent_request
        && tx == TxStatus::Idle
        && x.no_client_request_open()
        && !(x.is_idle() && effects.is_empty())
}

/// Applies RESET effects to the wanted settings once confirmed; clears the pending set.
fn apply_effects(effects: &mut PendingEffects, params: &mut SessionParams, succeeded: bool) {
    if succeeded {
        if effects.reset_all {
            params.reset_all();
        }
        for name in &effects.resets {
            params.reset(name);
        }
    }
    *effects = PendingEffects::default();
}
