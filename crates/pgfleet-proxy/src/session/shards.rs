//! A session of a sharded (or placed) database: which cluster a request runs on, keeping a
//! transaction on one cluster, deferring a lone `BEGIN` until a statement picks the shard, and
//! refusing statements for another cluster the way PostgreSQL refuses a failing statement.
//!
//! The decisions are `crate::sharding`'s; this module only finds the statement texts, bind
//! values and settings of client messages and carries the decisions out.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use pgfleet_sql::shard::{BindParams, ShardRouter, ShardSettings, TextPlan};
use pgfleet_sql::TxControl;
use pgfleet_wire::backend::{
    encode_command_complete, encode_error, encode_ready_for_query, TxStatus,
};
use pgfleet_wire::frontend::{decode_bind, decode_parse, decode_query, encode_parse, encode_query};
use pgfleet_wire::tag::frontend as t;
use pgfleet_wire::Frame;

use super::params::SessionParams;
use super::Session;
use crate::execute::exchange::{Exchange, Expect, Origin};
use crate::execute::request::UnnamedStatement;
use crate::pools::DatabasePools;
use crate::prepared::StatementDef;
use crate::server::ServerConn;
use crate::sharding::{
    place_conflict, route_error, router_params, want_of, Holder, Place, RouterMemo, Want,
};
use crate::ProxyError;

/// A statement that fails to parse on every PostgreSQL version: sent in place of a refused client
/// statement so the server aborts the transaction exactly as if the statement had failed there
/// (later statements get 25P02, ROLLBACK and ROLLBACK TO SAVEPOINT work as usual). Its error is
/// replaced by pgfleet's.
const FAILING_STATEMENT: &str = "pgfleet: statement refused by the proxy";

/// A transaction pgfleet acknowledged without a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LocalTx {
    /// None: the transaction status comes from the server.
    None,
    /// The client's `BEGIN …` (text kept) was answered locally; it is sent ahead of the first
    /// statement that picks a cluster.
    Begun(String),
    /// As `Begun`, and a statement failed before any server took part: the client saw the error
    /// and `'E'`.
    Failed(String),
}

/// The sharding state of one session.
pub(crate) struct ShardSession {
    /// Pools of the clusters this session used, by cluster name (a handful at most).
    pools: Vec<Arc<DatabasePools>>,
    /// Where the held (or last) server is.
    pub(super) held: Option<Place>,
    /// A transaction opened without a server.
    pub(super) local: LocalTx,
    /// The current request only prepares statements that fit anywhere: it runs outside the
    /// locally begun transaction, which stays deferred.
    pass_through: bool,
    /// The `BEGIN` text of the transaction in progress, to open it on another shard it reaches.
    pub(super) begin: Option<String>,
    /// Servers of other shards the transaction in progress wrote or read on, each still in the
    /// transaction (see `session/multishard.rs`).
    pub(super) parked: Vec<Parked>,
    /// The transaction in progress used savepoints: it cannot span shards.
    pub(super) savepoints: bool,
    /// A refusal for the next client message (a switch to another shard that failed).
    pub(super) pending_refusal: Option<ProxyError>,
    /// What the request's first message needs, computed once per request: the cross-shard
    /// check, the choice of cluster and the check before sending all ask (`Session::first_want`).
    want_memo: Option<(Frame, Want)>,
    /// The database's router (`Session::router`).
    pub(super) router: RouterMemo,
}

/// A server of a transaction that spans shards, set aside while the session works on another.
pub(crate) struct Parked {
    pub(super) place: Place,
    pub(super) guard: pgfleet_pool::Guard<crate::server::ServerManager>,
    pub(super) pools: Arc<DatabasePools>,
    pub(super) entry: Arc<crate::pools::PoolEntry>,
}

/// Why a client message cannot run on the held server.
pub(super) struct Refusal {
    pub(super) error: ProxyError,
    /// The other cluster it needs, when that is the reason.
    pub(super) wanted: Option<Place>,
}

impl ShardSession {
    pub(super) fn new(home: Arc<DatabasePools>) -> ShardSession {
        ShardSession {
            pools: vec![home],
            held: None,
            local: LocalTx::None,
            pass_through: false,
            begin: None,
            parked: Vec::new(),
            savepoints: false,
            pending_refusal: None,
            want_memo: None,
            router: None,
        }
    }

    /// The want computed for this very message, if any (see `want_memo`).
    fn remembered_want(&self, frame: &Frame) -> Option<Want> {
        match &self.want_memo {
            Some((f, want)) if f.is_same_message(frame) => Some(want.clone()),
            _ => None,
        }
    }

    /// As [`ShardSession::remembered_want`], used up: the message is being sent.
    fn take_remembered_want(&mut self, frame: &Frame) -> Option<Want> {
        self.want_memo
            .take_if(|(f, _)| f.is_same_message(frame))
            .map(|(_, want)| want)
    }

    /// Forgets the remembered want (the request went on without it, or used it up).
    pub(super) fn forget_want(&mut self) {
        self.want_memo = None;
    }

    /// Whether the transaction in progress holds servers on more than one shard.
    pub(super) fn spans(&self) -> bool {
        !self.parked.is_empty()
    }

    /// The transaction ended: forget its BEGIN and savepoints.
    pub(super) fn transaction_ended(&mut self) {
        self.begin = None;
        self.savepoints = false;
    }

    /// Before the client's first message reaches a new server: the deferred `BEGIN` (and for a
    /// transaction that already failed, a statement that fails it again on the server), answers
    /// swallowed.
    pub(super) fn open_on(
        &mut self,
        server: &mut ServerConn,
        x: &mut Exchange,
        out: &mut BytesMut,
    ) {
        if self.pass_through {
            x.report_status = Some(TxStatus::InTransaction);
            return;
        }
        match std::mem::replace(&mut self.local, LocalTx::None) {
            LocalTx::None => {}
            LocalTx::Begun(begin) => {
                encode_query(out, &begin);
                server.unnamed = 0;
                x.push(Expect::Query(Origin::DeferredBegin));
                self.begin = Some(begin);
            }
            LocalTx::Failed(begin) => {
                encode_query(out, &begin);
                x.push(Expect::Query(Origin::DeferredBegin));
                encode_query(out, FAILING_STATEMENT);
                x.push(Expect::Query(Origin::AbortTx));
                server.unnamed = 0;
            }
        }
    }

    /// Checks one client message against the cluster of the held server. `Ok(Some(r))`: refuse the
    /// message with `r.error` (see [`refuse`]) — or, when `r.wanted` names another shard, move
    /// the transaction there too (`session/multishard.rs`).
    pub(super) fn check(
        &mut self,
        router: &ShardRouter,
        frame: &Frame,
        statements: &HashMap<String, Arc<StatementDef>>,
        unnamed: &Option<Arc<UnnamedStatement>>,
        params: &SessionParams,
        holder: Holder,
    ) -> Result<Option<Refusal>, ProxyError> {
        let lookup = |name: &str| query_of(statements, unnamed, name);
        if holder == Holder::Transaction {
            if let Some(text) = statement_text(frame)? {
                if is_savepoint_command(text) {
                    if self.spans() {
                        return Ok(Some(Refusal {
                            error: ProxyError::Client {
                                code: "0A000",
                                message: "pgfleet: savepoints are not supported in a transaction that spans shards".into(),
                            },
                            wanted: None,
                        }));
                    }
                    self.savepoints = true;
                }
                if self.spans()
                    && frame.tag() == t::QUERY
                    && router
                        .plan_text(text)
                        .plan()
                        .is_ok_and(|p| p.statement_count() > 1)
                {
                    return Ok(Some(Refusal {
                        error: ProxyError::Client {
                            code: "0A000",
                            message: "pgfleet: in a transaction that spans shards, send one statement per query".into(),
                        },
                        wanted: None,
                    }));
                }
            }
        }
        let computed = match self.take_remembered_want(frame) {
            Some(w) => Ok(Some(w)),
            None => message_want(router, frame, &lookup, params),
        };
        let want = match computed {
            Ok(Some(w)) => w,
            Ok(None) => return Ok(None),
            Err(e) => {
                return Ok(Some(Refusal {
                    error: e,
                    wanted: None,
                }))
            }
        };
        match (want, &self.held) {
            (Want::Exactly(place), Some(held)) if !place.same_cluster(held, router.topology()) => {
                Ok(Some(Refusal {
                    error: place_conflict(held, &place, holder),
                    wanted: Some(place),
                }))
            }
            _ => Ok(None),
        }
    }
}

/// The SQL text of a Query or Parse message.
fn statement_text(frame: &Frame) -> Result<Option<&str>, ProxyError> {
    Ok(match frame.tag() {
        t::QUERY => Some(decode_query(frame)?),
        t::PARSE => Some(decode_parse(frame)?.query),
        _ => None,
    })
}

/// `SAVEPOINT`, `RELEASE [SAVEPOINT]`, `ROLLBACK [WORK|TRANSACTION] TO [SAVEPOINT]`.
fn is_savepoint_command(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .take(3)
        .map(str::to_ascii_lowercase)
        .collect();
    match words.as_slice() {
        [first, ..] if first == "savepoint" || first == "release" => true,
        [r, to, ..] if r == "rollback" && to == "to" => true,
        [r, w, to] if r == "rollback" && (w == "work" || w == "transaction") && to == "to" => true,
        _ => false,
    }
}

/// The session's `pgfleet.shard` / `pgfleet.shard_key` (an empty value counts as unset).
pub(super) fn settings_of(params: &SessionParams) -> ShardSettings {
    let get = |name: &str| {
        params
            .desired()
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    };
    ShardSettings {
        shard: get("pgfleet.shard"),
        shard_key: get("pgfleet.shard_key"),
    }
}

/// The text of the client's statement `name` (`""`: the unnamed one).
fn query_of<'a>(
    statements: &'a HashMap<String, Arc<StatementDef>>,
    unnamed: &'a Option<Arc<UnnamedStatement>>,
    name: &str,
) -> Option<&'a str> {
    if name.is_empty() {
        unnamed.as_ref().map(|u| u.query())
    } else {
        statements.get(name).map(|d| d.query.as_str())
    }
}

/// What one client message needs: `Ok(None)` for messages that run no statement text (Describe,
/// Execute, Sync, …) or bind a statement that does not exist (the translation reports that).
fn message_want<'a>(
    router: &ShardRouter,
    frame: &Frame,
    lookup: &dyn Fn(&str) -> Option<&'a str>,
    params: &SessionParams,
) -> Result<Option<Want>, ProxyError> {
    if !matches!(frame.tag(), t::QUERY | t::PARSE | t::BIND) {
        return Ok(None);
    }
    let settings = &settings_of(params);
    match frame.tag() {
        t::QUERY => {
            let sql = decode_query(frame)?;
            text_want(
                router,
                router.plan_text(sql),
                BindParams::Bound(&[]),
                settings,
                false,
            )
            .map(Some)
        }
        t::PARSE => {
            let sql = decode_parse(frame)?.query;
            text_want(
                router,
                router.plan_text(sql),
                BindParams::Unknown,
                settings,
                true,
            )
            .map(Some)
        }
        t::BIND => {
            let bind = decode_bind(frame)?;
            let Some(text) = lookup(bind.statement) else {
                return Ok(None);
            };
            let values = bind.parameters()?;
            let params = router_params(&values);
            let planned = router.plan_text(text);
            text_want(router, planned, BindParams::Bound(&params), settings, false).map(Some)
        }
        _ => Ok(None),
    }
}

/// What a statement text needs. `parse_only`: a Parse, which runs nothing yet — a route over
/// several shards is judged at its Bind.
fn text_want(
    router: &ShardRouter,
    planned: TextPlan<'_>,
    params: BindParams<'_>,
    settings: &ShardSettings,
    parse_only: bool,
) -> Result<Want, ProxyError> {
    let plan = planned.plan().map_err(|e| route_error(e.clone()))?;
    if plan.names_no_table() && settings.shard.is_none() {
        return Ok(Want::Any);
    }
    let route = router
        .route_text(&planned, params, settings)
        .map_err(route_error)?;
    match want_of(route, router.topology()) {
        Err(_) if parse_only => Ok(Want::Any),
        other => other,
    }
}

/// Sends `FAILING_STATEMENT` in place of the refused client message `frame`, so the server
/// fails the request (and aborts its transaction) while the client sees `e`.
pub(super) fn refuse(
    e: &ProxyError,
    frame: &Frame,
    server: &mut ServerConn,
    x: &mut Exchange,
    out: &mut BytesMut,
) {
    let mut ours = BytesMut::new();
    encode_error(&mut ours, "ERROR", e.sqlstate(), &e.client_message());
    server.unnamed = 0;
    if frame.tag() == t::QUERY {
        encode_query(out, FAILING_STATEMENT);
        x.push(Expect::Fail(ours.freeze()));
        x.push(Expect::Query(Origin::Client));
    } else {
        encode_parse(out, "", FAILING_STATEMENT, &[]);
        x.push(Expect::Fail(ours.freeze()));
        // Like PostgreSQL after an error: ignore the client's messages up to its Sync.
        x.skip_until_sync = true;
    }
}

impl Session<'_> {
    /// The router of this session's database; an error once a reload took its shards away.
    pub(super) fn router(&mut self) -> Result<Arc<ShardRouter>, ProxyError> {
        let database = &self.pools.key.1;
        match self.shard.as_deref_mut() {
            Some(sh) => self.rt.shard_router_memo(database, &mut sh.router),
            None => self.rt.shard_router(database),
        }
        .ok_or_else(|| ProxyError::Client {
            code: "08006",
            message: format!(
                "pgfleet: database `{}` is no longer sharded in the config; reconnect",
                self.pools.key.1
            ),
        })
    }

    /// Outside a transaction on a server: answers a lone `BEGIN` locally (sent later, ahead of the
    /// statement that picks the shard), and `COMMIT`/`ROLLBACK` of such a transaction before any
    /// statement ran. True when answered.
    pub(super) async fn answer_transaction_locally(
        &mut self,
        frame: &Frame,
    ) -> Result<bool, ProxyError> {
        if self.shard.is_none() || frame.tag() != t::QUERY {
            return Ok(false);
        }
        let sql = decode_query(frame)?;
        // Most texts start with another word: no plan to look up.
        if !pgfleet_sql::may_control_transaction(sql) {
            return Ok(false);
        }
        let router = self.router()?;
        let Some(shard) = self.shard.as_deref() else {
            return Ok(false);
        };
        let planned = router.plan_text(sql);
        let single_neutral =
            matches!(planned.plan(), Ok(p) if p.statement_count() == 1 && p.is_neutral());
        if !single_neutral {
            return Ok(false);
        }
        let control = self.rt.analyzer.classify(sql).tx;
        let chain = and_chain(sql);
        let (tag, next) = match (&control, &shard.local) {
            (TxControl::Begin { .. }, LocalTx::None) if self.tx == TxStatus::Idle => {
                ("BEGIN", LocalTx::Begun(sql.to_owned()))
            }
            (TxControl::Commit, LocalTx::Begun(begin)) => ("COMMIT", chained(chain, begin)),
            (TxControl::Rollback, LocalTx::Begun(begin) | LocalTx::Failed(begin))
            | (TxControl::Commit, LocalTx::Failed(begin)) => ("ROLLBACK", chained(chain, begin)),
            _ => return Ok(false),
        };
        self.tx = match next {
            LocalTx::None => TxStatus::Idle,
            _ => TxStatus::InTransaction,
        };
        if let Some(shard) = self.shard.as_deref_mut() {
            shard.local = next;
        }
        let mut out = BytesMut::new();
        encode_command_complete(&mut out, tag);
        encode_ready_for_query(&mut out, self.tx);
        self.client.write_all(&out).await?;
        Ok(true)
    }

    /// Routes the request `first` opens to its cluster and makes that cluster's pools the ones
    /// the session checks out from. Nothing is sent; an error refuses the request.
    pub(super) fn enter_place(&mut self, first: &Frame) -> Result<(), ProxyError> {
        let router = self.router()?;
        let (place, pass_through) = match self.shard.as_deref().map(|s| &s.local) {
            // Only ROLLBACK will succeed: any cluster can say so.
            Some(LocalTx::Failed(_)) => (Place::default_of(router.topology()), false),
            Some(LocalTx::Begun(_)) => self.opening_place(&router, first)?,
            _ => (self.opening_place(&router, first)?.0, false),
        };
        let cluster = place
            .cluster(router.topology())
            .ok_or_else(|| ProxyError::Client {
                code: "22023",
                message: format!("pgfleet: database `{}` has no {place}", self.pools.key.1),
            })?;
        if self.shard.is_none() {
            return Ok(());
        }
        let pools = self.pools_on(cluster)?;
        let Some(shard) = self.shard.as_deref_mut() else {
            return Ok(());
        };
        shard.held = Some(place);
        shard.pass_through = pass_through;
        self.pools = pools;
        Ok(())
    }

    /// The session's pools on `cluster` (created on first use, then kept for the session).
    pub(super) fn pools_on(&mut self, cluster: &str) -> Result<Arc<DatabasePools>, ProxyError> {
        let Some(shard) = self.shard.as_deref_mut() else {
            return Ok(self.pools.clone());
        };
        if let Some(p) = shard.pools.iter().find(|p| p.cluster == cluster) {
            return Ok(p.clone());
        }
        let config = self.rt.config();
        let (user, database) = (&self.pools.key.0, &self.pools.key.1);
        let p = self
            .rt
            .pools
            .on_cluster(&config, self.rt.clusters(), user, database, cluster)?;
        shard.pools.push(p.clone());
        Ok(p)
    }

    /// After a server went back: a request that ran outside the locally begun transaction
    /// leaves the client in it.
    pub(super) fn restore_local_status(&mut self) {
        if let Some(LocalTx::Begun(_)) = self.shard.as_deref().map(|s| &s.local) {
            self.tx = TxStatus::InTransaction;
        }
    }

    /// Whether the client's transaction was begun locally and no statement ran yet.
    pub(super) fn begun_locally(&self) -> bool {
        matches!(
            self.shard.as_deref().map(|s| &s.local),
            Some(LocalTx::Begun(_))
        )
    }

    /// After a reload replaced the pools of the current cluster: remember the new ones.
    pub(super) fn pools_replaced(&mut self) {
        let pools = self.pools.clone();
        if let Some(shard) = self.shard.as_deref_mut() {
            shard.pools.retain(|p| p.cluster != pools.cluster);
            shard.pools.push(pools);
        }
    }

    /// The cluster of the request `first` opens: the first statement (in the buffered part of
    /// the request) that needs a particular cluster decides; one that cannot be routed refuses
    /// the request. A request of statements that fit anywhere goes to the default shard; the
    /// flag says whether it is whole and only prepares or describes (Parse, Describe, Close).
    pub(super) fn opening_place(
        &mut self,
        router: &ShardRouter,
        first: &Frame,
    ) -> Result<(Place, bool), ProxyError> {
        let end = |tag| matches!(tag, t::SYNC | t::QUERY | t::FUNCTION_CALL);
        // The first message decides when it needs a cluster (a Query, or a Bind of a prepared
        // statement: the usual request), without copying the rest of the request.
        let first_want = self.first_want(router, first)?;
        if let Some(Want::Exactly(place)) = first_want {
            return Ok((place, false));
        }
        let (rest, whole) = if end(first.tag()) {
            (Vec::new(), true)
        } else {
            match self.client.peek_until(end)? {
                Some((r, _)) => (r, true),
                None => (Vec::new(), false),
            }
        };
        let prepares_only = whole
            && std::iter::once(first).chain(rest.iter()).all(|f| {
                matches!(
                    f.tag(),
                    t::PARSE | t::DESCRIBE | t::CLOSE | t::SYNC | t::FLUSH
                )
            });
        // Statements this request parses before binding them: not in the session's tables yet.
        let mut parsed: Vec<(String, String)> = Vec::new();
        if first.tag() == t::PARSE {
            let parse = decode_parse(first)?;
            parsed.push((parse.name.to_owned(), parse.query.to_owned()));
        }
        for frame in rest.iter() {
            let lookup = |name: &str| -> Option<&str> {
                if let Some((_, text)) = parsed.iter().rev().find(|(n, _)| n == name) {
                    return Some(text);
                }
                query_of(&self.statements, &self.unnamed, name)
            };
            let want = message_want(router, frame, &lookup, &self.params)?;
            if frame.tag() == t::PARSE {
                let parse = decode_parse(frame)?;
                parsed.push((parse.name.to_owned(), parse.query.to_owned()));
            }
            if let Some(Want::Exactly(place)) = want {
                return Ok((place, false));
            }
        }
        Ok((Place::default_of(router.topology()), prepares_only))
    }

    /// What the request's first message needs ([`message_want`]), computed once per request and
    /// remembered for the later steps that ask again (`run_across_shards`, `opening_place`,
    /// `ShardSession::check`).
    pub(super) fn first_want(
        &mut self,
        router: &ShardRouter,
        first: &Frame,
    ) -> Result<Option<Want>, ProxyError> {
        if let Some(w) = self.shard.as_deref().and_then(|s| s.remembered_want(first)) {
            return Ok(Some(w));
        }
        let lookup = |name: &str| query_of(&self.statements, &self.unnamed, name);
        let want = message_want(router, first, &lookup, &self.params)?;
        if let (Some(w), Some(shard)) = (&want, self.shard.as_deref_mut()) {
            shard.want_memo = Some((first.clone(), w.clone()));
        }
        Ok(want)
    }

    /// The deferred `BEGIN`, for the read/write classification of the transaction it opens.
    pub(super) fn deferred_begin(&self) -> Option<&str> {
        match self.shard.as_deref().map(|s| &s.local) {
            Some(LocalTx::Begun(b) | LocalTx::Failed(b)) => Some(b),
            _ => None,
        }
    }

    /// A request failed before reaching a server inside a locally begun transaction: like
    /// PostgreSQL, the transaction is now failed.
    pub(super) fn local_transaction_failed(&mut self) {
        if let Some(shard) = self.shard.as_deref_mut() {
            if let LocalTx::Begun(b) = &shard.local {
                shard.local = LocalTx::Failed(b.clone());
                self.tx = TxStatus::Failed;
            }
        }
    }
}

/// The transaction after a local COMMIT/ROLLBACK: `AND CHAIN` starts the next one at once, with
/// the same characteristics.
fn chained(chain: bool, begin: &str) -> LocalTx {
    if chain {
        LocalTx::Begun(begin.to_owned())
    } else {
        LocalTx::None
    }
}

/// `COMMIT AND CHAIN` / `ROLLBACK AND CHAIN` (not `AND NO CHAIN`).
pub(super) fn and_chain(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    matches!(words.as_slice(), [.., a, c] if a == "and" && c == "chain")
}

/// The wire form of pgfleet's own ErrorResponse (for tests of [`refuse`]).
#[cfg(test)]
fn error_bytes(e: &ProxyError) -> bytes::Bytes {
    let mut b = BytesMut::new();
    encode_error(&mut b, "ERROR", e.sqlstate(), &e.client_message());
    b.freeze()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lru::LruCache;
    use pgfleet_wire::backend::encode_ready_for_query as rfq;
    use pgfleet_wire::tag::backend as b;
    use std::num::NonZeroUsize;

    #[test]
    fn savepoint_commands_are_recognised() {
        assert!(is_savepoint_command("SAVEPOINT a"));
        assert!(is_savepoint_command("release savepoint a;"));
        assert!(is_savepoint_command("ROLLBACK TO a"));
        assert!(is_savepoint_command("rollback work to savepoint a"));
        assert!(!is_savepoint_command("ROLLBACK"));
        assert!(!is_savepoint_command("SELECT 1"));
    }

    #[test]
    fn chain_is_read_from_the_last_words() {
        assert!(and_chain("COMMIT AND CHAIN"));
        assert!(and_chain("rollback and chain;"));
        assert!(!and_chain("COMMIT AND NO CHAIN"));
        assert!(!and_chain("COMMIT"));
    }

    /// The server's syntax error for the failing statement never reaches the client: pgfleet's
    /// error does, then the server's ReadyForQuery with the aborted transaction.
    #[test]
    fn a_refused_query_shows_pgfleets_error_and_the_servers_status() {
        let e = place_conflict(&Place::Shard(0), &Place::Shard(2), Holder::Transaction);
        let mut x = Exchange::default();
        x.push(Expect::Fail(error_bytes(&e)));
        x.push(Expect::Query(Origin::Client));
        let mut server = BytesMut::new();
        encode_error(
            &mut server,
            "ERROR",
            "42601",
            "syntax error at or near \"pgfleet\"",
        );
        let split = server.len();
        rfq(&mut server, TxStatus::Failed);
        let mut prepared = LruCache::new(NonZeroUsize::new(4).unwrap());
        let mut out = BytesMut::new();
        x.on_server_message(&server[..split], &mut prepared, &mut out)
            .unwrap();
        let ev = x
            .on_server_message(&server[split..], &mut prepared, &mut out)
            .unwrap();
        assert_eq!(
            ev,
            crate::execute::exchange::Event::ClientReady(TxStatus::Failed)
        );
        assert_eq!(out[0], b::ERROR_RESPONSE);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("0A000") && text.contains("cannot touch shard 2"),
            "{text}"
        );
        assert!(!text.contains("42601"));
        assert!(x.is_idle());
    }
}
