//! One authenticated client session: waits for requests, checks out a server for each transaction
//! (or for the whole session), keeps the client's settings and prepared statements consistent on
//! whichever server it lands on, and leaves every server clean for the next client.

mod checkout;
mod cleanup;
mod commit;
mod copy;
mod explain;
mod fanout;
mod inline_sync;
mod multishard;
mod params;
mod pump;
mod quorum;
mod replay;
mod routing;
mod shard_params;
mod shards;
mod tenant;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use pgfleet_config::PoolMode;
use pgfleet_pool::Guard;
use pgfleet_sql::PinReason;
use pgfleet_wire::backend::{encode_error, encode_ready_for_query, TxStatus};
use pgfleet_wire::tag::frontend as t;
use pgfleet_wire::Frame;

pub(crate) use checkout::checkout;
use checkout::{checkout_error, checkout_preferring};
pub use params::{dollar_quote, parse_options, readback_sql, SessionParams};

use crate::client::ClientConn;
use crate::clients::{ClientInfo, ClientState};
use crate::execute::exchange::Exchange;
use crate::execute::request::{PendingEffects, UnnamedStatement};
use crate::outline::outlined;
use crate::pools::{DatabasePools, PoolEntry};
use crate::prepared::StatementDef;
use crate::replication::Lsn;
use crate::route::RoleOverride;
use crate::runtime::Runtime;
use crate::server::{ServerConn, ServerManager};
use crate::stats::Stats;
use crate::ProxyError;
use pgfleet_config::Consistency;

/// What a client is told when pgfleet shuts down under it.
pub(crate) const SHUTDOWN_MESSAGE: &str =
    "pgfleet: terminating connection because pgfleet is shutting down";

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
    /// The replica serving a read failed before anything reached the client: send it again.
    ReplayRead,
    /// A transaction's next statement (in `first`) needs another shard: continue the
    /// transaction there too.
    SwitchShard,
    /// The client ends a transaction that spans shards (its COMMIT/ROLLBACK is in `first`).
    EndTransaction,
}

/// A client session.
pub(crate) struct Session<'a> {
    rt: &'a Arc<Runtime>,
    client: ClientConn,
    info: Arc<ClientInfo>,
    /// `info.id`, kept here: the session's own state is in cache when a transaction starts, the
    /// rest of its `ClientInfo` not.
    client_id: u64,
    /// The pools of the client's (user, database), one per endpoint.
    pools: Arc<DatabasePools>,
    /// The pool of the endpoint the current (or last) transaction uses.
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
    /// The client's unnamed statement (its last `Parse ""`).
    unnamed: Option<Arc<UnnamedStatement>>,
    /// The user's `default_role` (a `SET pgfleet.role` overrides it).
    default_role: RoleOverride,
    /// The user's `default_consistency` (a `SET pgfleet.consistency` overrides it).
    default_consistency: Consistency,
    /// The WAL position after this session's last write (read-your-writes).
    last_write_lsn: Option<Lsn>,
    /// The current transaction runs on the primary for a read-your-writes session: learn the WAL
    /// position when it ends.
    needs_commit_lsn: bool,
    /// Replicas that must replay the current transaction's commit before the client hears of it
    /// (quorum writes); 0 = none.
    quorum: usize,
    /// The held server is its cluster's primary and the cluster has replicas: in a session that
    /// keeps its server (session pooling, pinned), every transaction's commit is followed for
    /// read-your-writes and quorums, not only the first.
    follow_commits: bool,
    /// The read in flight on a replica, to send again elsewhere if that replica fails first.
    replay: Option<replay::ReadReplay>,
    /// Times the current read was replayed.
    replays: u8,
    /// Sharded or placed database: where requests go, the deferred BEGIN. `None` for a database
    /// on one cluster, whose requests never look at tables.
    shard: Option<Box<shards::ShardSession>>,
    /// The shard state while the session's tenant lives in a database of its own (`database`
    /// tenancy model), to come back to without a tenant.
    shard_aside: Option<Box<shards::ShardSession>>,
    /// Database with tenancy: the session's tenant, its context and limits.
    tenant: Option<Box<tenant::TenantSession>>,
    /// Output buffers, kept across transactions so the hot path does not allocate.
    to_server: BytesMut,
    to_client: BytesMut,
    /// The session's place in a pool's wait queue, kept from one checkout to the next (see
    /// [`pgfleet_pool::Pool::get_timed`]).
    checkout_waiter: pgfleet_pool::Waiter<ServerConn>,
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        rt: &'a Arc<Runtime>,
        client: ClientConn,
        info: Arc<ClientInfo>,
        pools: Arc<DatabasePools>,
        params: SessionParams,
    ) -> Session<'a> {
        let default_role =
            rt.config()
                .users
                .get(&info.user)
                .map_or(RoleOverride::Auto, |u| match u.default_role {
                    pgfleet_config::DefaultRole::Auto => RoleOverride::Auto,
                    pgfleet_config::DefaultRole::Primary => RoleOverride::Primary,
                    pgfleet_config::DefaultRole::Replica => RoleOverride::Replica,
                });
        let default_consistency = rt
            .config()
            .users
            .get(&info.user)
            .map_or(Consistency::Eventual, |u| u.default_consistency);
        let shard = rt
            .shard_router(&pools.key.1)
            .map(|_| Box::new(shards::ShardSession::new(pools.clone())));
        let tenant = tenant::TenantSession::new(rt, &info.user, &pools.key.1, &params);
        Session {
            rt,
            shard,
            shard_aside: None,
            tenant,
            client,
            client_id: info.id,
            info,
            entry: pools.endpoint(pools.configured_primary).clone(),
            pools,
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
            unnamed: None,
            default_role,
            default_consistency,
            last_write_lsn: None,
            needs_commit_lsn: false,
            quorum: 0,
            follow_commits: false,
            replay: None,
            replays: 0,
            to_server: BytesMut::new(),
            to_client: BytesMut::new(),
            checkout_waiter: pgfleet_pool::Waiter::new(),
        }
    }

    fn session_mode(&self) -> bool {
        self.pools.mode() == PoolMode::Session
    }

    /// After [`Self::serve`] returned `served`: tells the client why, if it should hear it, and
    /// cleans up its server connection, if any. (The caller awaits the two in turn, so the
    /// session's future is not nested one level deeper for every transaction.)
    pub(crate) async fn finish(&mut self, served: Result<(), ProxyError>) {
        if let Err(e) = served {
            tracing::debug!(client = self.info.id, error = %e, "session ended with error");
            if !matches!(e, ProxyError::ClientIo(_)) {
                self.client.fatal(e.sqlstate(), &e.client_message()).await;
            }
        }
        self.finish_server().await;
        self.info
            .record_io(self.client.consumed, self.client.written);
    }

    /// Serves the client until it leaves; [`Self::finish`] follows.
    pub(crate) async fn serve(&mut self) -> Result<(), ProxyError> {
        // Registered once for the whole session, not at every wait for a request: each
        // registration takes the notifier's lock, and so does each removal.
        let info = self.info.clone();
        let kicked = info.kick.notified();
        tokio::pin!(kicked);
        loop {
            if self.server.is_none() {
                if self.rt.is_shutting_down() && !self.client.next_frame_ready() {
                    outlined(self.client.fatal("57P01", SHUTDOWN_MESSAGE)).await;
                    return Ok(());
                }
                let frame = if let Some(f) = self.client.next_frame()? {
                    f
                } else {
                    // Idle: SHOW STATS sees every byte so far (pgfleet's own answers too).
                    self.info
                        .record_io(self.client.consumed, self.client.written);
                    // The request first: a kick only matters when no request is there. One
                    // poll function, not `select!`: no read future kept in this future's state.
                    let client = &mut self.client;
                    let read = std::future::poll_fn(|cx| match client.poll_read_frame(cx) {
                        Poll::Ready(r) => Poll::Ready(Some(r)),
                        Poll::Pending => kicked.as_mut().poll(cx).map(|()| None),
                    })
                    .await;
                    match read {
                        Some(f) => match f? {
                            Some(f) => f,
                            None => return Ok(()),
                        },
                        None => {
                            outlined(self.client.fatal("57P01", SHUTDOWN_MESSAGE)).await;
                            return Ok(());
                        }
                    }
                };
                if frame.tag() == t::TERMINATE {
                    return Ok(());
                }
                // COPY data after a COPY ended (e.g. the rest of a client's rows after an error):
                // PostgreSQL drops such messages, and so does pgfleet.
                if matches!(frame.tag(), t::COPY_DATA | t::COPY_DONE | t::COPY_FAIL) {
                    continue;
                }
                if self.orphan_until_sync {
                    if frame.tag() == t::SYNC {
                        self.orphan_until_sync = false;
                        outlined(self.send_ready()).await?;
                    }
                    continue;
                }
                // (Guarded here, not only inside: a session without tenancy builds no future.)
                if self.tenant.is_some() {
                    if let Err(e) = outlined(self.tenant_request(&frame)).await {
                        self.local_transaction_failed();
                        outlined(self.fail_request(&frame, &e)).await?;
                        continue;
                    }
                }
                if frame.tag() == t::PARSE && self.answer_prepare_locally(&frame).await? {
                    continue;
                }
                if self.shard.is_some() && outlined(self.answer_transaction_locally(&frame)).await?
                {
                    continue;
                }
                if self.shard.is_some() && outlined(self.run_across_shards(&frame)).await? {
                    continue;
                }
                let reserved = if self.tenant.is_some() {
                    outlined(self.tenant_reserve()).await
                } else {
                    Ok(())
                };
                let acquired = match reserved {
                    // One endpoint and no shards: nothing to route, no commit to follow, no read
                    // to replay (what `route_and_acquire` decides there), without its future.
                    Ok(()) if self.shard.is_none() && self.pools.endpoints.len() <= 1 => self
                        .acquire(self.pools.configured_primary)
                        .await
                        .map(|()| self.routed_to_primary_only()),
                    Ok(()) => outlined(self.route_and_acquire(&frame)).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = acquired {
                    if let Some(sh) = self.shard.as_deref_mut() {
                        sh.forget_want();
                    }
                    self.tenant_released();
                    self.local_transaction_failed();
                    outlined(self.fail_request(&frame, &e)).await?;
                    continue;
                }
                self.first = Some(frame);
            }
            let end = self.pump(kicked.as_mut()).await?;
            let replay = self.replay.take();
            if !matches!(end, PumpEnd::ReplayRead) {
                self.replays = 0;
            }
            match end {
                PumpEnd::Release => {
                    let handed_over = self.release();
                    self.restore_local_status();
                    self.shard_transaction_over();
                    self.answer_after_release(handed_over).await?;
                }
                PumpEnd::SwitchShard => outlined(self.switch_shard()).await?,
                PumpEnd::EndTransaction => outlined(self.end_multi_shard()).await?,
                PumpEnd::ServerLost => self.drop_broken_server(),
                PumpEnd::ServerLostBeforeSync => {
                    self.drop_broken_server();
                    self.orphan_until_sync = true;
                }
                PumpEnd::ClientGone => return Ok(()),
                PumpEnd::ReplayRead => {
                    self.drop_broken_server();
                    if let Some(replay) = replay {
                        tracing::warn!(
                            client = self.info.id,
                            endpoint = replay.endpoint,
                            "replica failed before answering a read; sending it to another server"
                        );
                        Stats::add(&self.rt.stats().read_retries, 1);
                        self.endpoint_failed(replay.endpoint);
                        self.replays += 1;
                        replay.restore(&mut self.client);
                    }
                }
            }
        }
    }

    /// Checks out a server and brings it in line with the session's settings (pipelined ahead of
    /// the client's request, answer swallowed).
    async fn acquire(&mut self, endpoint: usize) -> Result<(), ProxyError> {
        self.info.set_state(ClientState::Waiting);
        // Usually the same pool as last time: no reference count to move.
        if !Arc::ptr_eq(&self.entry, self.pools.endpoint(endpoint)) {
            self.entry = self.pools.endpoint(endpoint).clone();
        }
        // A tenant session prefers a server already in its tenant's context: nothing to sync.
        let forced = self.tenant.as_deref().map_or(&[][..], |t| t.forced());
        let in_context = |server: &ServerConn| {
            forced
                .iter()
                .all(|(name, value)| server.params.get(name) == Some(value))
        };
        let prefer: Option<pgfleet_pool::Prefer<'_, ServerConn>> =
            (!forced.is_empty()).then_some(&in_context);
        // Straight to the pool when neither PAUSE nor shutdown is in effect: one future less
        // per transaction, and its state is one more cache line a session touches.
        let checked_out = if self.rt.is_paused() || self.rt.is_shutting_down() {
            outlined(checkout_preferring(
                self.rt,
                &self.entry,
                prefer,
                Some(&mut self.checkout_waiter),
            ))
            .await
        } else {
            (self.entry.pool)
                .get_timed(prefer, &mut self.checkout_waiter)
                .await
                .map_err(|e| checkout_error(self.rt, &self.entry, e))
        };
        let result = match checked_out {
            Err(ProxyError::ShuttingDown) if !self.rt.is_shutting_down() => {
                // The pools were replaced by a reload: use the new ones.
                self.reload_pools(endpoint)?;
                outlined(checkout(self.rt, &self.entry)).await
            }
            other => other,
        };
        let mut guard = match result {
            Ok(g) => g,
            Err(e) => {
                self.info.set_state(ClientState::Idle);
                return Err(e);
            }
        };
        let server: &mut ServerConn = &mut guard;
        server.info.set_active(self.client_id);
        self.info.attach(server.info.id, server.cancel.clone());
        self.info.count_transactions(1);
        self.exchange.reset();
        self.server = Some(guard);
        Ok(())
    }

    /// Takes the session's pools from the runtime again after a reload replaced them, and the
    /// entry of `endpoint` in them.
    #[cold]
    #[inline(never)]
    fn reload_pools(&mut self, endpoint: usize) -> Result<(), ProxyError> {
        let config = self.rt.config();
        self.pools = if self.shard.is_some() || self.pools.tenant_database.is_some() {
            self.rt.pools.in_database(
                &config,
                self.rt.clusters(),
                &self.pools.key.0,
                &self.pools.key.1,
                &self.pools.cluster,
                self.pools.tenant_database.as_deref(),
            )?
        } else {
            self.rt.pools.get(
                &config,
                self.rt.clusters(),
                &self.pools.key.0,
                &self.pools.key.1,
            )?
        };
        self.pools_replaced();
        self.entry = self.pools.endpoint(endpoint).clone();
        Ok(())
    }

    /// Routes the transaction `first` opens and checks out a server there. An endpoint that
    /// refuses the connection is banned and the request routed again (nothing has run yet): a read
    /// goes to another replica, a write waits for a new primary up to `failover_timeout`.
    async fn route_and_acquire(&mut self, first: &Frame) -> Result<(), ProxyError> {
        if self.shard.is_some() {
            self.enter_place(first)?;
        }
        let mut attempts = 0;
        loop {
            let routed = match self.fixed_route() {
                Some(fixed) => fixed,
                None => self.route(first).await?,
            };
            // A transaction that may write, on the primary of a replicated cluster: learn its
            // commit position when it ends (read-your-writes), and hold its COMMIT for the quorum.
            let follow = routed.target == pgfleet_sql::Target::Primary
                && routed.writes
                && self.pools.endpoints.len() > 1;
            let (quorum, consistency) = match (follow, routed.lenient) {
                (false, _) => (0, None),
                (true, false) => (self.write_quorum()?, Some(self.consistency()?)),
                (true, true) => (self.write_quorum().unwrap_or(0), self.consistency().ok()),
            };
            let ryw = consistency == Some(Consistency::ReadYourWrites);
            let endpoint = routed.endpoint;
            match self.acquire(endpoint).await {
                Err(ProxyError::Server(e))
                    if e.endpoint_unreachable()
                        && self.pools.endpoints.len() > 1
                        && attempts < 3 =>
                {
                    tracing::warn!(client = self.info.id, error = %e, "endpoint refused a connection; routing again");
                    self.endpoint_failed(endpoint);
                    attempts += 1;
                }
                Ok(()) => {
                    self.follow_commits = routed.target == pgfleet_sql::Target::Primary
                        && self.pools.endpoints.len() > 1;
                    self.quorum = quorum;
                    self.needs_commit_lsn = ryw || quorum > 0;
                    self.replay = if routed.target == pgfleet_sql::Target::Replica {
                        self.replay_point(first, endpoint)?
                    } else {
                        None
                    };
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The transaction just checked out on the only endpoint of a database on one cluster: what
    /// [`Self::route_and_acquire`] sets there (its `follow` needs several endpoints, a replay a
    /// replica).
    fn routed_to_primary_only(&mut self) {
        self.follow_commits = false;
        self.quorum = 0;
        self.needs_commit_lsn = false;
        self.replay = None;
    }

    /// What it takes to send the read `first` opens again if its replica fails first: only
    /// outside a transaction, in transaction pooling, a bounded number of times.
    fn replay_point(
        &self,
        first: &Frame,
        endpoint: usize,
    ) -> Result<Option<replay::ReadReplay>, ProxyError> {
        if self.tx != TxStatus::Idle
            || self.pinned.is_some()
            || self.session_mode()
            || self.replays >= replay::MAX_REPLAYS
        {
            return Ok(None);
        }
        let rest = if first.tag() == t::QUERY {
            Vec::new()
        } else {
            match self
                .client
                .peek_until(|tag| matches!(tag, t::SYNC | t::QUERY | t::FUNCTION_CALL))?
            {
                Some((rest, _)) => rest,
                None => return Ok(None),
            }
        };
        Ok(replay::ReadReplay::new(
            first,
            &rest,
            &self.client,
            endpoint,
        ))
    }

    /// A request that only prepares statements already accepted by a server (same text, types and
    /// search_path), outside a transaction, is acknowledged without a server. Besides saving a
    /// checkout, this keeps clients that prepare synchronously while holding other connections'
    /// transactions open (pgbench -M prepared) from waiting on a full pool.
    async fn answer_prepare_locally(&mut self, first: &Frame) -> Result<bool, ProxyError> {
        if self.tx != TxStatus::Idle && !self.begun_locally() {
            return Ok(false);
        }
        // The rest of the request must be Parses, then its Sync, all buffered already.
        let Some((rest, offset)) = self.client.peek_until(|tag| tag != t::PARSE)? else {
            return Ok(false);
        };
        if rest.last().map(Frame::tag) != Some(t::SYNC) {
            return Ok(false);
        }
        let mut frames = vec![first.clone()];
        frames.extend(rest);
        let search_path = self.params.desired().search_path();
        let mut defs = Vec::new();
        for f in &frames[..frames.len() - 1] {
            let parse = pgfleet_wire::frontend::decode_parse(f)?;
            if parse.name.is_empty()
                || self.statements.contains_key(parse.name)
                || self.rt.analyzer.analyze(parse.query).changes_session()
                || !self.tenant_allows(f)
            {
                return Ok(false);
            }
            match self
                .rt
                .prepared
                .validated(parse.query, &parse.param_types, search_path)
            {
                Some(def) => defs.push((parse.name.to_owned(), def)),
                None => return Ok(false),
            }
        }
        self.client.skip(offset);
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

    /// Closes a server connection that broke.
    fn drop_broken_server(&mut self) {
        // The other shards of its transaction cannot commit without it.
        self.discard_parked();
        self.tenant_released();
        if let Some(guard) = self.server.take() {
            guard.discard();
        }
        self.server_broken = false;
        self.info.detach();
    }

    /// Returns the server to the pool: true when it went straight to a waiting session.
    fn release(&mut self) -> bool {
        self.tenant_released();
        let handed_over = match self.server.take() {
            Some(guard) => {
                guard.info.set_idle();
                guard.release()
            }
            None => false,
        };
        self.info.detach();
        handed_over
    }

    /// Sends the client the end of the transaction whose server was just released (the pump
    /// leaves it in `to_client`). When the server went to a waiting session, that session runs
    /// first: its request reaches the server sooner, and the answers of the sessions that ran
    /// meanwhile reach their clients together, so the clients wake less often
    /// (docs/benchmarks.md). Without a waiter the answer goes at once: a yield would only add
    /// latency.
    async fn answer_after_release(&mut self, handed_over: bool) -> Result<(), ProxyError> {
        if handed_over && !self.to_client.is_empty() {
            tokio::task::yield_now().await;
        }
        pump::flush_client(&mut self.client, &mut self.to_client).await
    }
}
