//! One authenticated client session: waits for requests, checks out a server for each transaction
//! (or for the whole session), keeps the client's settings and prepared statements consistent on
//! whichever server it lands on, and leaves every server clean for the next client.

mod checkout;
mod params;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use pgfleet_config::PoolMode;
use pgfleet_pool::Guard;
use pgfleet_sql::PinReason;
use pgfleet_wire::backend::{encode_error, encode_ready_for_query, TxStatus};
use pgfleet_wire::frame::peek_header;
use pgfleet_wire::frontend::encode_query;
use pgfleet_wire::tag::frontend as t;
use pgfleet_wire::Frame;

pub(crate) use checkout::checkout;
pub use params::{dollar_quote, parse_options, readback_sql, SessionParams};

use crate::client::ClientConn;
use crate::clients::{CancelTarget, ClientInfo, ClientState};
use crate::execute::exchange::{Event, Exchange, Expect, Origin};
use crate::execute::request::{PendingEffects, RequestCtx, Step};
use crate::pools::PoolEntry;
use crate::prepared::StatementDef;
use crate::runtime::Runtime;
use crate::server::{ServerConn, ServerManager};
use crate::stats::Stats;
use crate::ProxyError;

/// Most client bytes buffered while a request is in flight before pgfleet stops reading.
const CLIENT_READ_AHEAD: usize = 256 * 1024;
/// Longest wait for a server to roll back or reset before it is discarded instead.
const RESET_TIMEOUT: Duration = Duration::from_secs(5);

/// How a stretch of server use ended.
enum PumpEnd {
    /// The transaction ended; give the server back.
    Release,
    /// The server connection broke; the client carries on without it.
    ServerLost,
    /// As `ServerLost`, and the client's request has not reached its Sync yet.
    ServerLostBeforeSync,
    /// The client left (Terminate, EOF, or an error that closes it).
    ClientGone,
}

/// A client session.
pub(crate) struct Session<'a> {
    rt: &'a Arc<Runtime>,
    client: ClientConn,
    info: Arc<ClientInfo>,
    entry: Arc<PoolEntry>,
    params: SessionParams,
    statements: HashMap<String, Arc<StatementDef>>,
    server: Option<Guard<ServerManager>>,
    exchange: Exchange,
    effects: PendingEffects,
    pinned: Option<PinReason>,
    tx: TxStatus,
    /// A client message that arrived while no server was held; it opens the next request.
    first: Option<Frame>,
    /// After losing a server mid-request: discard client messages up to Sync, then answer it.
    orphan_until_sync: bool,
    /// The held server connection broke and must not go back to the pool.
    server_broken: bool,
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        rt: &'a Arc<Runtime>,
        client: ClientConn,
        info: Arc<ClientInfo>,
        entry: Arc<PoolEntry>,
        params: SessionParams,
    ) -> Session<'a> {
        Session {
            rt,
            client,
            info,
            entry,
            params,
            statements: HashMap::new(),
            server: None,
            exchange: Exchange::default(),
            effects: PendingEffects::default(),
            pinned: None,
            tx: TxStatus::Idle,
            first: None,
            orphan_until_sync: false,
            server_broken: false,
        }
    }

    fn session_mode(&self) -> bool {
        self.entry.mode() == PoolMode::Session
    }

    /// Serves the client until it leaves, then cleans up its server connection, if any.
    pub(crate) async fn run(&mut self) {
        if let Err(e) = self.serve().await {
            tracing::debug!(client = self.info.id, error = %e, "session ended with error");
            if !matches!(e, ProxyError::ClientIo(_)) {
                self.client.fatal(e.sqlstate(), &e.client_message()).await;
            }
        }
        self.finish_server().await;
    }

    async fn serve(&mut self) -> Result<(), ProxyError> {
        loop {
            if self.server.is_none() {
                let frame = if let Some(f) = self.client.next_frame()? {
                    f
                } else {
                    tokio::select! {
                        f = self.client.read_frame() => match f? {
                            Some(f) => f,
                            None => return Ok(()),
                        },
                        _ = self.rt.shutdown_started() => {
                            self.client.fatal("57P01", "pgfleet: terminating connection because pgfleet is shutting down").await;
                            return Ok(());
                        }
                    }
                };
                if frame.tag() == t::TERMINATE {
                    return Ok(());
                }
                if self.orphan_until_sync {
                    if frame.tag() == t::SYNC {
                        self.orphan_until_sync = false;
                        self.send_ready().await?;
                    }
                    continue;
                }
                if frame.tag() == t::PARSE && self.answer_prepare_locally(&frame).await? {
                    continue;
                }
                if let Err(e) = self.acquire().await {
                    self.fail_request(&frame, &e).await?;
                    continue;
                }
                self.first = Some(frame);
            }
            match self.pump().await? {
                PumpEnd::Release => self.release(),
                PumpEnd::ServerLost => self.drop_broken_server(),
                PumpEnd::ServerLostBeforeSync => {
                    self.drop_broken_server();
                    self.orphan_until_sync = true;
                }
                PumpEnd::ClientGone => return Ok(()),
            }
        }
    }

    /// Checks out a server and brings it in line with the session's settings (pipelined ahead of
    /// the client's request, answer swallowed).
    async fn acquire(&mut self) -> Result<(), ProxyError> {
        self.info.set_state(ClientState::Waiting);
        let mut guard = match checkout(self.rt, &self.entry).await {
            Err(ProxyError::Server(e))
                if matches!(e, crate::server::ServerError::Connect { .. }) =>
            {
                self.info.set_state(ClientState::Idle);
                return Err(ProxyError::Server(e));
            }
            Err(e) if e.sqlstate() == "57P01" && !self.rt.is_shutting_down() => {
                // The pool was replaced by a reload: use the new one.
                let config = self.rt.config();
                self.entry = self
                    .rt
                    .pools
                    .get(&config, &self.entry.key.0, &self.entry.key.1)?;
                checkout(self.rt, &self.entry).await?
            }
            other => other?,
        };
        let server: &mut ServerConn = &mut guard;
        server.info.set_active(self.info.id);
        self.info.attach(
            server.info.id,
            CancelTarget {
                host: self.entry.target().host.clone(),
                port: self.entry.target().port,
                key: server.key,
            },
        );
        Stats::add(&self.rt.stats().transactions, 1);
        self.exchange = Exchange::default();
        self.server = Some(guard);
        Ok(())
    }

    /// A request that only prepares statements already accepted by a server (same text, types and
    /// search_path), outside a transaction, is acknowledged without a server. Besides saving a
    /// checkout, this keeps clients that prepare synchronously while holding other connections'
    /// transactions open (pgbench -M prepared) from waiting on a full pool.
    async fn answer_prepare_locally(&mut self, first: &Frame) -> Result<bool, ProxyError> {
        if self.tx != TxStatus::Idle {
            return Ok(false);
        }
        let mut frames = vec![first.clone()];
        let mut offset = 0;
        loop {
            let rest = &self.client.rbuf[offset..];
            match peek_header(rest, self.client.max_message)? {
                Some((tag, total)) if rest.len() >= total => {
                    frames.push(Frame::from_raw(bytes::Bytes::copy_from_slice(
                        &rest[..total],
                    )));
                    offset += total;
                    match tag {
                        t::SYNC => break,
                        t::PARSE => {}
                        _ => return Ok(false),
                    }
                }
                _ => return Ok(false),
            }
        }
        let search_path = self.params.desired().get("search_path").cloned();
        let mut defs = Vec::new();
        for f in &frames[..frames.len() - 1] {
            let parse = pgfleet_wire::frontend::decode_parse(f)?;
            if parse.name.is_empty()
                || self.statements.contains_key(parse.name)
                || self.rt.analyzer.analyze(parse.query).changes_session()
            {
                return Ok(false);
            }
            match self.rt.prepared.validated(
                parse.query,
                &parse.param_types,
                search_path.as_deref(),
            ) {
                Some(def) => defs.push((parse.name.to_owned(), def)),
                None => return Ok(false),
            }
        }
        self.client.rbuf.advance(offset);
        let mut out = BytesMut::new();
        for (name, def) in defs {
            self.statements.insert(name, def);
            pgfleet_wire::backend::encode_empty(
                &mut out,
                pgfleet_wire::tag::backend::PARSE_COMPLETE,
            );
        }
        encode_ready_for_query(&mut out, self.tx);
        self.client.write_all(&out).await?;
        Ok(true)
    }

    /// Answers a request that could not get a server: an error, then ReadyForQuery once the
    /// request's end (Sync/Query) has arrived.
    async fn fail_request(&mut self, frame: &Frame, e: &ProxyError) -> Result<(), ProxyError> {
        tracing::debug!(client = self.info.id, error = %e, "no server for request");
        let mut out = BytesMut::new();
        encode_error(&mut out, "ERROR", e.sqlstate(), &e.client_message());
        self.client.write_all(&out).await?;
        match frame.tag() {
            t::QUERY | t::SYNC | t::FUNCTION_CALL => self.send_ready().await,
            _ => {
                self.orphan_until_sync = true;
                Ok(())
            }
        }
    }

    async fn send_ready(&mut self) -> Result<(), ProxyError> {
        let mut out = BytesMut::new();
        encode_ready_for_query(&mut out, self.tx);
        self.client.write_all(&out).await
    }

    /// Moves messages both ways while a server is held.
    async fn pump(&mut self) -> Result<PumpEnd, ProxyError> {
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
            ..
        } = self;
        let Some(guard) = server.as_mut() else {
            return Ok(PumpEnd::Release);
        };
        let server: &mut ServerConn = guard;
        let session_mode = self.entry.mode() == PoolMode::Session;
        let mut to_server = BytesMut::new();
        let mut to_client = BytesMut::new();
        let mut synced = false;
        loop {
            // 1. Client messages the server may take now.
            let mut gone = false;
            while x.accepts_client_messages() {
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
                        encode_query(&mut to_server, &sql);
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
                };
                match ctx.translate(&frame, server, x, &mut to_server)? {
                    Step::Continue | Step::Answered => {}
                    Step::RequestSent => {
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
                    apply_effects(effects, params, server, !x.error_in_request);
                } else {
                    encode_query(&mut to_server, &readback_sql(&names));
                    x.push(Expect::Query(Origin::Readback));
                }
            }
            x.drain_synthetic(&mut to_client);
            if !to_server.is_empty() {
                if let Err(e) = server.write_all(&to_server).await {
                    *server_broken = true;
                    return lose_server(rt, client, x, e, *tx, pinned.is_some() || session_mode)
                        .await;
                }
                to_server.clear();
            }
            if !to_client.is_empty() {
                let n = to_client.len() as u64;
                client.write_all(&to_client).await?;
                Stats::add(&rt.stats().bytes_out, n);
                to_client.clear();
            }
            if gone {
                return Ok(PumpEnd::ClientGone);
            }
            let release = !session_mode
                && pinned.is_none()
                && *tx == TxStatus::Idle
                && x.is_idle()
                && effects.is_empty()
                && first.is_none();
            if release {
                return Ok(PumpEnd::Release);
            }
            if client.next_frame_ready() && x.accepts_client_messages() {
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
                _ = rt.shutdown_started(), if idle_session => {
                    client.fatal("57P01", "pgfleet: terminating connection because pgfleet is shutting down").await;
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
                    .on_server_message(&server.rbuf[..total], &mut server.prepared, &mut to_client)
                    .map_err(|source| crate::server::ServerError::Protocol {
                        addr: server.info.addr.clone(),
                        source,
                    })?;
                server.rbuf.advance(total);
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
                        apply_effects(effects, params, server, !failed && !x.error_in_request);
                        x.error_in_request = false;
                    }
                    Event::InternalReady(_, _) => {}
                }
                if matches!(event, Event::ClientReady(TxStatus::Idle)) && effects.is_empty() {
                    x.error_in_request = false;
                }
            }
        }
    }

    /// Closes a server connection that broke.
    fn drop_broken_server(&mut self) {
        if let Some(guard) = self.server.take() {
            guard.discard();
        }
        self.server_broken = false;
        self.info.detach();
    }

    /// Returns the server to the pool.
    fn release(&mut self) {
        if let Some(guard) = self.server.take() {
            guard.info.set_idle();
            drop(guard);
        }
        self.info.detach();
    }

    /// The client is gone: leave its server clean for the next client, or close it.
    async fn finish_server(&mut self) {
        let Some(mut guard) = self.server.take() else {
            return;
        };
        self.info.detach();
        let needs_discard_all = self.pinned.is_some() || self.session_mode();
        if self.server_broken
            || !self.exchange.is_idle()
            || !self
                .client_gone_cleanly(&mut guard, needs_discard_all)
                .await
        {
            guard.discard();
            return;
        }
        guard.info.set_idle();
    }

    async fn client_gone_cleanly(&mut self, server: &mut ServerConn, discard_all: bool) -> bool {
        let mut sql = Vec::new();
        if self.tx != TxStatus::Idle {
            sql.push("ROLLBACK");
        }
        if discard_all {
            sql.push("DISCARD ALL");
        }
        if sql.is_empty() {
            return true;
        }
        let ok = tokio::time::timeout(RESET_TIMEOUT, run_internal(server, &sql))
            .await
            .unwrap_or(false);
        if ok && discard_all {
            server.params.clear();
            server.prepared.clear();
        }
        ok
    }
}

/// Applies RESET effects to the wanted settings once confirmed; clears the pending set.
fn apply_effects(
    effects: &mut PendingEffects,
    params: &mut SessionParams,
    server: &mut ServerConn,
    succeeded: bool,
) {
    if succeeded {
        if effects.reset_all {
            params.reset_all();
        }
        for name in &effects.resets {
            params.reset(name);
        }
    }
    let _ = server;
    *effects = PendingEffects::default();
}

/// Runs pgfleet's own statements (one Query each) and waits for every ReadyForQuery.
async fn run_internal(server: &mut ServerConn, statements: &[&str]) -> bool {
    let mut out = BytesMut::new();
    for s in statements {
        encode_query(&mut out, s);
    }
    if server.write_all(&out).await.is_err() {
        return false;
    }
    let mut remaining = statements.len();
    let mut ok = true;
    while remaining > 0 {
        match server.read_frame().await {
            Ok(f) if f.tag() == pgfleet_wire::tag::backend::READY_FOR_QUERY => {
                remaining -= 1;
                ok &= f.body() == b"I";
            }
            Ok(f) if f.tag() == pgfleet_wire::tag::backend::ERROR_RESPONSE => ok = false,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    ok
}

/// The server connection broke while in use. A client outside any transaction keeps its session
/// (it gets an error for the request in flight); one inside a transaction or pinned to that server
/// loses what only that server had, so it is disconnected like a direct client would be.
async fn lose_server(
    rt: &Runtime,
    client: &mut ClientConn,
    x: &mut Exchange,
    e: crate::server::ServerError,
    tx: TxStatus,
    session_bound: bool,
) -> Result<PumpEnd, ProxyError> {
    Stats::add(&rt.stats().server_losses, 1);
    tracing::warn!(error = %e, "server connection lost");
    let error_sent = x.error_in_request;
    let request_in_flight = x.client_pending > 0;
    x.abandon();
    if session_bound || tx != TxStatus::Idle {
        let msg = format!(
            "pgfleet: {}; the session's transaction or session state was lost",
            e.client_message()
        );
        client.fatal("08006", &msg).await;
        return Ok(PumpEnd::ClientGone);
    }
    let mut out = BytesMut::new();
    if !error_sent {
        encode_error(
            &mut out,
            "ERROR",
            "08006",
            &format!(
                "pgfleet: {}; the statement may or may not have completed",
                e.client_message()
            ),
        );
    }
    if request_in_flight {
        encode_ready_for_query(&mut out, TxStatus::Idle);
    }
    client.write_all(&out).await?;
    if !request_in_flight && !error_sent {
        // The request's Sync has not arrived yet: answer it when it does.
        return Ok(PumpEnd::ServerLostBeforeSync);
    }
    Ok(PumpEnd::ServerLost)
}
