//! The busy phase of a session: moving messages both ways while it holds a server, confirming
//! session changes when their transaction ends, and deciding when the server can go back.

use bytes::{Buf, BytesMut};
use pgfleet_config::PoolMode;
use pgfleet_wire::backend::TxStatus;
use pgfleet_wire::frame::peek_header;
use pgfleet_wire::frontend::encode_query;

use super::cleanup::lose_server;
use super::params::{readback_sql, SessionParams};
use super::{PumpEnd, Session};
use crate::execute::exchange::{Event, Expect, Origin};
use crate::execute::request::{PendingEffects, RequestCtx, Step};
use crate::server::ServerConn;
use crate::stats::Stats;
use crate::ProxyError;

/// Most client bytes buffered while a request is in flight before pgfleet stops reading.
const CLIENT_READ_AHEAD: usize = 256 * 1024;

impl Session<'_> {
    /// Moves messages both ways while a server is held.
    pub(super) async fn pump(&mut self) -> Result<PumpEnd, ProxyError> {
        let Session {
            rt,
            client,
            server,
            exchange: x,
            effects,
            pinned,
            tx,
            statements,
            params,
            first,
            info,
            server_broken,
            to_server,
            to_client,
            unnamed,
            needs_commit_lsn,
            last_write_lsn,
            ..
        } = self;
        let Some(guard) = server.as_mut() else {
            return Ok(PumpEnd::Release);
        };
        let server: &mut ServerConn = guard;
        let session_mode = self.entry.mode() == PoolMode::Session;
        // Keep small buffers for the next transaction; give back ones a big COPY or result grew.
        for buf in [&mut *to_server, &mut *to_client] {
            if buf.capacity() > 64 * 1024 {
                *buf = BytesMut::new();
            }
            buf.clear();
        }
        let mut synced = false;
        // Whether a request end went out in this stretch: once its transaction is over, the next
        // request must be routed (and checked out) anew, not slipped onto this server.
        let mut sent_request = false;
        loop {
            // 1. Client messages the server may take now.
            let mut gone = false;
            let transaction_over = |x: &crate::execute::exchange::Exchange,
                                    tx: TxStatus,
                                    pinned: bool,
                                    effects: &PendingEffects| {
                !session_mode
                    && !pinned
                    && tx == TxStatus::Idle
                    && x.is_idle()
                    && effects.is_empty()
            };
            // Once a transaction has ended here, the next request waits for pgfleet's own follow-up
            // work (settings read-back, commit LSN) and is then routed and checked out anew.
            let boundary = sent_request
                && !session_mode
                && pinned.is_none()
                && *tx == TxStatus::Idle
                && x.no_client_request_open();
            while x.accepts_client_messages() && !boundary {
                let frame = match first.take() {
                    Some(f) => f,
                    None => match client.next_frame()? {
                        Some(f) => f,
                        None => break,
                    },
                };
                if !synced {
                    synced = true;
                    if let Some((sql, after)) =
                        params.sync_sql(&server.params, &server.startup_params)
                    {
                        encode_query(to_server, &sql);
                        server.unnamed = 0;
                        x.push(Expect::Query(Origin::SettingsSync));
                        server.params = after;
                        Stats::add(&rt.stats().settings_replays, 1);
                    }
                }
                x.soften_fatal = !session_mode && pinned.is_none() && *tx == TxStatus::Idle;
                let search_path = params.desired().get("search_path").map(String::as_str);
                let mut ctx = RequestCtx {
                    rt,
                    statements,
                    effects,
                    pinned,
                    tx: *tx,
                    search_path,
                    unnamed,
                };
                match ctx.translate(&frame, server, x, to_server)? {
                    Step::Continue => {}
                    Step::Answered => sent_request = true,
                    Step::RequestSent => {
                        sent_request = true;
                        Stats::add(&rt.stats().requests, 1);
                        Stats::add(&info.requests, 1);
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
            if *tx == TxStatus::Idle && x.is_idle() && !effects.is_empty() {
                let mut names: Vec<String> = effects.readback.iter().cloned().collect();
                if effects.reset_all {
                    names.extend(params.all_names(&server.params));
                }
                names.sort();
                names.dedup();
                if effects.statements_dropped {
                    server.prepared.clear();
                    statements.clear();
                }
                if names.is_empty() {
                    apply_effects(effects, params, !x.error_in_request);
                } else {
                    encode_query(to_server, &readback_sql(&names));
                    server.unnamed = 0;
                    x.push(Expect::Query(Origin::Readback));
                }
            }
            // 3. Read-your-writes: learn where the primary's WAL stands once the transaction is over.
            if *needs_commit_lsn && *tx == TxStatus::Idle && x.is_idle() && sent_request {
                *needs_commit_lsn = false;
                // The insert position, not pg_current_wal_lsn(): with synchronous_commit = off the
                // commit record may not be written yet, and only the insert position bounds it.
                encode_query(
                    to_server,
                    "SELECT 'lsn', pg_catalog.pg_current_wal_insert_lsn()::text",
                );
                server.unnamed = 0;
                x.push(Expect::Query(Origin::CommitLsn));
            }
            x.drain_synthetic(to_client);
            if !to_server.is_empty() {
                if let Err(e) = server.write_all(to_server).await {
                    *server_broken = true;
                    return lose_server(rt, client, x, e, *tx, pinned.is_some() || session_mode)
                        .await;
                }
                to_server.clear();
            }
            if !to_client.is_empty() {
                let n = to_client.len() as u64;
                client.write_all(to_client).await?;
                Stats::add(&rt.stats().bytes_out, n);
                to_client.clear();
            }
            if gone {
                return Ok(PumpEnd::ClientGone);
            }
            if first.is_none() && transaction_over(x, *tx, pinned.is_some(), effects) {
                return Ok(PumpEnd::Release);
            }
            let at_boundary = sent_request
                && !session_mode
                && pinned.is_none()
                && *tx == TxStatus::Idle
                && x.no_client_request_open();
            if client.next_frame_ready() && x.accepts_client_messages() && !at_boundary {
                continue;
            }
            // 3. Wait for either side.
            let read_client = client.rbuf.len() < CLIENT_READ_AHEAD || x.accepts_client_messages();
            let idle_session = x.is_idle() && *tx == TxStatus::Idle;
            tokio::select! {
                r = server.fill() => {
                    if let Err(e) = r {
                        *server_broken = true;
                    return lose_server(rt, client, x, e, *tx, pinned.is_some() || session_mode).await;
                    }
                }
                r = client.fill(), if read_client => {
                    if !r? {
                        return Ok(PumpEnd::ClientGone);
                    }
                    continue;
                }
                _ = info.kick.notified(), if idle_session => {
                    client.fatal("57P01", super::SHUTDOWN_MESSAGE).await;
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
                        *server_broken = true;
                        return lose_server(rt, client, x, e, *tx, true).await;
                    }
                };
                let event = x
                    .on_server_message(&server.rbuf[..total], &mut server.prepared, to_client)
                    .map_err(|source| crate::server::ServerError::Protocol {
                        addr: server.info.addr.clone(),
                        source,
                    })?;
                server.rbuf.advance(total);
                if std::mem::take(&mut x.unnamed_unknown) {
                    server.unnamed = 0;
                }
                match event {
                    Event::Nothing => {}
                    Event::ClientReady(status) => *tx = status,
                    Event::InternalReady(Origin::Readback, failed) => {
                        for (name, value) in std::mem::take(&mut x.captured) {
                            match &value {
                                Some(v) => server.params.insert(name.clone(), v.clone()),
                                None => server.params.remove(&name),
                            };
                            params.learned(&name, value);
                        }
                        apply_effects(effects, params, !failed && !x.error_in_request);
                        x.error_in_request = false;
                    }
                    Event::InternalReady(Origin::CommitLsn, false) => {
                        let lsn = std::mem::take(&mut x.captured)
                            .into_iter()
                            .find_map(|(_, v)| {
                                v.and_then(|v| crate::replication::Lsn::parse(&v).ok())
                            });
                        if let Some(lsn) = lsn {
                            *last_write_lsn = Some(lsn);
                            // Visible to the client as `SHOW pgfleet.last_write_lsn` (a causal-read
                            // token for `SET pgfleet.after_lsn` on another connection).
                            params.learned("pgfleet.last_write_lsn", Some(lsn.to_string()));
                        }
                    }
                    Event::InternalReady(_, _) => x.captured.clear(),
                }
                if matches!(event, Event::ClientReady(TxStatus::Idle)) && effects.is_empty() {
                    x.error_in_request = false;
                }
            }
        }
    }
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
