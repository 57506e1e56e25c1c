//! Statements that need several shards, outside a transaction block: a SELECT is planned,
//! sent to every shard it needs and merged (`fanout::read`); a write runs on every shard in one
//! two-phase-commit transaction; a statement that cannot run in a transaction block runs shard
//! by shard. The decisions are pure (`pgfleet_sql`, `fanout::request`, `fanout::tags`); this
//! module checks out the shards' servers and carries them out.

use std::sync::Arc;

use bytes::BytesMut;
use pgfleet_merge::{Limits, Merge, MergeOptions};
use pgfleet_sql::merge_plan::ShardQuery;
use pgfleet_sql::shard::{
    BindParams, CrossShardKind, InsertSplit, ReferenceAccess, ShardRoute, ShardRouter,
};
use pgfleet_wire::backend::{encode_command_complete, encode_empty, encode_error, TxStatus};
use pgfleet_wire::frontend::{
    encode_bind, encode_execute, encode_named, encode_parse, encode_query, encode_sync, BindParam,
    Target,
};
use pgfleet_wire::tag::backend as b;
use pgfleet_wire::tag::frontend as t;
use pgfleet_wire::Frame;

use super::shard_params::{
    borrowed_param, int_param, mapped_params, owned_param, shard_param_types, shard_result_formats,
};
use super::shards::settings_of;
use super::Session;
use crate::execute::request::UnnamedStatement;
use crate::fanout::legs::{error_message, Leg};
use crate::fanout::read::merged_read;
use crate::fanout::request::{self, Extended, Kind, Request};
use crate::fanout::tags::{combine, combine_replicated};
use crate::pools::DatabasePools;
use crate::sharding::router_params;
use crate::stats::Stats;
use crate::ProxyError;

/// Which shards run what.
enum Targets {
    /// The same statement on these shards, each holding its own rows.
    Same(Vec<usize>),
    /// The same statement on every shard, each holding a copy of the same rows (a reference
    /// table write): one shard's answer stands for all, and the copies must agree.
    Replicated(Vec<usize>),
    /// A multi-row INSERT split by shard.
    Split(InsertSplit),
}

impl Targets {
    fn shards(&self) -> Vec<usize> {
        match self {
            Targets::Same(s) | Targets::Replicated(s) => s.clone(),
            Targets::Split(split) => split.parts.iter().map(|p| p.shard).collect(),
        }
    }

    fn replicated(&self) -> bool {
        matches!(self, Targets::Replicated(_))
    }
}

/// What one shard runs: text, and for the extended protocol the original parameter numbers
/// (1-based) its `$1…$k` stand for (`None`: all, in order).
struct ShardStatement {
    sql: String,
    params: Option<Vec<u32>>,
}

pub(super) fn client_error(code: &'static str, message: String) -> ProxyError {
    ProxyError::Client { code, message }
}

impl Session<'_> {
    /// A whole request of one statement that needs several shards, outside a transaction block:
    /// run it across them and answer the client. False when the request is not such a request
    /// (it then takes the ordinary path, which refuses what it cannot run).
    pub(super) async fn run_across_shards(&mut self, first: &Frame) -> Result<bool, ProxyError> {
        if self.shard.is_none()
            || self.tx != TxStatus::Idle
            || self.pinned.is_some()
            || self.session_mode()
        {
            return Ok(false);
        }
        let router = self.router()?;
        // Fast path: a Query or a Bind that runs on one cluster (the usual request) is judged
        // alone, without copying the rest of the request; its route is remembered for the
        // steps that follow. What fails here (a statement that needs several shards, or one
        // that cannot be routed) is judged on the whole request below.
        if matches!(first.tag(), t::QUERY | t::BIND) {
            match self.first_want(&router, first) {
                Ok(Some(_)) => return Ok(false),
                Ok(None) if first.tag() == t::BIND => return Ok(false),
                _ => {}
            }
        }
        let (rest, offset) = match first.tag() {
            t::QUERY => (Vec::new(), 0),
            t::PARSE | t::BIND => match self.client.peek_until(|tag| tag == t::SYNC)? {
                Some(found) => found,
                None => return Ok(false),
            },
            _ => return Ok(false),
        };
        let mut frames = Vec::with_capacity(rest.len() + 1);
        frames.push(first.clone());
        frames.extend(rest);
        let lookup = |name: &str| self.statement_text(name);
        let Some(req) = request::read(&frames, &lookup)? else {
            return Ok(false);
        };
        let Some(targets) = self.cross_targets(&router, &req)? else {
            return Ok(false);
        };
        self.client.skip(offset);
        self.info.count_request();
        Stats::add(&self.rt.stats().cross_shard, 1);
        if let Kind::Extended(e) = &req.kind {
            self.remember_parse(&req.sql, e);
        }
        let mut out = BytesMut::new();
        if let Err(e) = self.cross_shard(&router, &req, targets, &mut out).await {
            if matches!(e, ProxyError::ClientIo(_)) {
                return Err(e);
            }
            tracing::debug!(client = self.info.id, error = %e, "cross-shard request failed");
            e.encode_for_client(&mut out);
        }
        pgfleet_wire::backend::encode_ready_for_query(&mut out, TxStatus::Idle);
        self.client.write_all(&out).await?;
        Ok(true)
    }

    /// The text and declared parameter types of the client's statement `name` (`""`: the
    /// unnamed one).
    pub(super) fn statement_text(&self, name: &str) -> Option<(String, Vec<u32>)> {
        if name.is_empty() {
            self.unnamed
                .as_ref()
                .map(|u| (u.query().to_owned(), u.param_types().to_vec()))
        } else {
            self.statements
                .get(name)
                .map(|d| (d.query.clone(), d.param_types.clone()))
        }
    }

    /// The shards a request needs when it needs more than one; `None` otherwise.
    fn cross_targets(
        &self,
        router: &ShardRouter,
        req: &Request,
    ) -> Result<Option<Targets>, ProxyError> {
        let planned = router.plan_text(&req.sql);
        let Ok(plan) = planned.plan() else {
            return Ok(None);
        };
        if plan.statement_count() != 1 {
            return Ok(None);
        }
        let settings = settings_of(&self.params);
        let route = match &req.kind {
            Kind::Simple => router.route_text(&planned, BindParams::Bound(&[]), &settings),
            Kind::Extended(e) => {
                let values = e.params()?;
                let params = router_params(&values);
                router.route_text(&planned, BindParams::Bound(&params), &settings)
            }
        };
        let shard_count = router.topology().shards().map_or(0, |s| s.clusters().len());
        Ok(match route {
            Ok(ShardRoute::Several(s)) => Some(Targets::Same(s.into_iter().collect())),
            Ok(ShardRoute::All) => Some(Targets::Same((0..shard_count).collect())),
            Ok(ShardRoute::Reference(ReferenceAccess::Write)) => {
                Some(Targets::Replicated((0..shard_count).collect()))
            }
            Ok(ShardRoute::Split(split)) => Some(Targets::Split(split)),
            _ => None,
        })
    }

    /// A Parse in a request run across shards defines a statement for later Binds.
    fn remember_parse(&mut self, sql: &str, e: &Extended) {
        let Some(name) = &e.parse else { return };
        if name.is_empty() {
            self.unnamed = Some(Arc::new(UnnamedStatement::new(
                self.rt,
                sql,
                &e.param_types,
            )));
        } else {
            let def =
                self.rt
                    .prepared
                    .intern(sql, &e.param_types, self.params.desired().search_path());
            self.statements.insert(name.clone(), def);
        }
    }

    /// Runs the request; its answer (but ReadyForQuery) goes to the client or into `out`.
    async fn cross_shard(
        &mut self,
        router: &ShardRouter,
        req: &Request,
        targets: Targets,
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        let shards = targets.shards();
        let cross = router.cross_plan(&req.sql);
        match &cross.kind {
            CrossShardKind::Read => {
                let q = match &cross.select {
                    Some(Ok(q)) => q,
                    Some(Err(e)) => {
                        return Err(client_error(e.sqlstate(), format!("pgfleet: {e}")))
                    }
                    None => {
                        return Err(client_error(
                            "XX000",
                            "pgfleet: internal error: a cross-shard read without a merge plan"
                                .to_owned(),
                        ))
                    }
                };
                self.merged_select(router, req, q, &shards, out).await
            }
            CrossShardKind::Write => {
                self.check_cross_shard_write(&shards)?;
                let statements = per_shard_statements(req, &targets);
                self.write_across(router, req, statements, targets.replicated(), out)
                    .await
            }
            CrossShardKind::OutsideTransaction(what) => {
                self.check_cross_shard_write(&shards)?;
                let statements = per_shard_statements(req, &targets);
                self.shard_by_shard(router, req, what, statements, out)
                    .await
            }
            CrossShardKind::Copy => match &req.kind {
                Kind::Simple => self.copy_across(router, &req.sql, &shards, out).await,
                Kind::Extended(_) => Err(client_error(
                    "0A000",
                    format!(
                        "pgfleet: COPY across shards (shards {}) runs in the simple protocol only",
                        list(&shards)
                    ),
                )),
            },
            CrossShardKind::Explain => {
                let split: Option<Vec<(usize, String)>> = match &targets {
                    Targets::Split(s) => {
                        Some(s.parts.iter().map(|p| (p.shard, p.sql.clone())).collect())
                    }
                    _ => None,
                };
                self.explain_across(router, req, &shards, split.as_deref(), out)
                    .await
            }
            CrossShardKind::Unsupported(what) => Err(client_error(
                "0A000",
                format!(
                    "pgfleet: {what} cannot run across shards (it needs shards {})",
                    list(&shards)
                ),
            )),
        }
    }

    /// Refuses a write on several shards when the user may not, or when there is no decision
    /// log for its two-phase commit.
    pub(super) fn check_cross_shard_write(&self, shards: &[usize]) -> Result<(), ProxyError> {
        let config = self.rt.config();
        if config
            .users
            .get(&self.info.user)
            .is_some_and(|u| !u.cross_shard_writes)
        {
            return Err(client_error(
                "42501",
                format!(
                    "pgfleet: user `{}` may not write on several shards at once (this statement \
                     needs shards {}; users.{}.cross_shard_writes = false)",
                    self.info.user,
                    list(shards),
                    self.info.user
                ),
            ));
        }
        if config.metadata.is_none() && shards.len() > 1 {
            return Err(client_error(
                "0A000",
                format!(
                    "pgfleet: this statement writes on shards {}, which needs two-phase commit, \
                     and two-phase commit needs the metadata database for its decision log: add \
                     a [metadata] table to the config (docs/config.md)",
                    list(shards)
                ),
            ));
        }
        Ok(())
    }

    /// The pools of `shard`'s cluster (cached for the session).
    fn shard_pools(
        &mut self,
        router: &ShardRouter,
        shard: usize,
    ) -> Result<Arc<DatabasePools>, ProxyError> {
        let cluster = router
            .topology()
            .shard_cluster(shard)
            .ok_or_else(|| {
                client_error(
                    "22023",
                    format!(
                        "pgfleet: database `{}` has no shard {shard}",
                        self.pools.key.1
                    ),
                )
            })?
            .to_owned();
        self.pools_on(&cluster)
    }

    /// Checks out one server per shard, in shard order (so two sessions never wait on each
    /// other's shards), on the primary or, for reads, where the session's consistency allows.
    pub(super) async fn legs(
        &mut self,
        router: &ShardRouter,
        shards: &[usize],
        read: bool,
    ) -> Result<Vec<Leg>, ProxyError> {
        let mut sorted = shards.to_vec();
        sorted.sort_unstable();
        let mut legs = Vec::with_capacity(sorted.len());
        self.info.set_state(crate::clients::ClientState::Waiting);
        for shard in sorted {
            let pools = self.shard_pools(router, shard)?;
            let endpoint = self.endpoint_on(&pools, read).await?;
            let guard = match super::checkout(self.rt, pools.endpoint(endpoint)).await {
                Ok(g) => g,
                Err(e) => {
                    self.info.set_state(crate::clients::ClientState::Idle);
                    for leg in legs {
                        Leg::finish(leg);
                    }
                    return Err(e);
                }
            };
            guard.info.set_active(self.client_id);
            let mut leg = Leg::new(shard, legs.len(), guard);
            let server = leg.server();
            if let Some(sync) = self.params.sync(&server.params, &server.startup_params) {
                let mut pre = BytesMut::new();
                let calls = sync.encode(&mut pre);
                server.params = sync.after;
                leg.preamble += calls;
                leg.pre = pre;
            }
            legs.push(leg);
        }
        self.info.set_state(crate::clients::ClientState::Active);
        self.info.count_transactions(legs.len() as u64);
        Ok(legs)
    }

    /// A SELECT on several shards, merged.
    async fn merged_select(
        &mut self,
        router: &ShardRouter,
        req: &Request,
        q: &ShardQuery,
        shards: &[usize],
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        let (params, describe, result_formats) = match &req.kind {
            Kind::Simple => (Vec::new(), true, Vec::new()),
            Kind::Extended(e) => (
                e.params()?.iter().map(owned_param).collect::<Vec<_>>(),
                e.describe,
                shard_result_formats(q, &e.result_formats()?)?,
            ),
        };
        let limits = Limits::resolve(&q.plan, |n| {
            params
                .get(n as usize - 1)
                .and_then(|p| p.as_ref().and_then(|(binary, v)| int_param(*binary, v)))
        })
        .map_err(|e| client_error(e.sqlstate(), format!("pgfleet: {e}")))?;
        let mut legs = self.legs(router, shards, true).await?;
        let types = match &req.kind {
            Kind::Extended(e) => shard_param_types(&e.param_types, params.len(), &q.unused_params),
            Kind::Simple => Vec::new(),
        };
        let bind_params: Vec<BindParam<'_>> = params.iter().map(borrowed_param).collect();
        let mut sent = Ok(());
        for leg in legs.iter_mut() {
            let mut msg = std::mem::take(&mut leg.pre);
            match &req.kind {
                Kind::Simple => encode_query(&mut msg, &q.sql),
                Kind::Extended(_) => {
                    encode_parse(&mut msg, "", &q.sql, &types);
                    encode_bind(&mut msg, "", "", &bind_params, &result_formats);
                    encode_named(&mut msg, t::DESCRIBE, Target::Portal, "");
                    encode_execute(&mut msg, "", 0);
                    encode_sync(&mut msg);
                }
            }
            leg.server().unnamed = 0;
            if let Err(e) = leg.server().write_all(&msg).await {
                leg.broken = true;
                sent = Err(ProxyError::Server(e));
                break;
            }
        }
        if let Err(e) = sent {
            finish_legs(legs);
            return Err(e);
        }
        let mut merge = Merge::new(
            &q.plan,
            legs.len(),
            MergeOptions {
                memory_limit: self.rt.config().proxy.merge_memory_limit,
                emit_row_description: describe,
                limits,
            },
        );
        if let Kind::Extended(e) = &req.kind {
            if e.parse.is_some() {
                encode_empty(out, b::PARSE_COMPLETE);
            }
            encode_empty(out, b::BIND_COMPLETE);
        }
        let result = merged_read(&mut legs, &mut merge, &mut self.client, out).await;
        finish_legs(legs);
        self.info.set_state(crate::clients::ClientState::Idle);
        result
    }

    /// A write on several shards in one two-phase-commit transaction.
    async fn write_across(
        &mut self,
        router: &ShardRouter,
        req: &Request,
        statements: Vec<(usize, ShardStatement)>,
        replicated: bool,
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        let shards: Vec<usize> = statements.iter().map(|(s, _)| *s).collect();
        let mut legs = self.legs(router, &shards, false).await?;
        for leg in legs.iter_mut() {
            encode_query(&mut leg.pre, "BEGIN");
            leg.preamble += 1;
        }
        let answer = self
            .run_on_legs(req, &statements, replicated, &mut legs, out)
            .await;
        let result = match answer {
            Ok(tag)
                if legs
                    .iter()
                    .all(|l| l.error.is_none() && l.preamble_error.is_none()) =>
            {
                self.commit_across(&mut legs, &shards).await.map(|()| tag)
            }
            Ok(_) | Err(_) => {
                let error = legs
                    .iter()
                    .find_map(|l| l.preamble_error.clone().or_else(|| l.error.clone()));
                rollback_all(&mut legs).await;
                match (answer, error) {
                    (Err(e), _) => Err(e),
                    (Ok(_), Some(frame)) => {
                        out.clear();
                        out.extend_from_slice(frame.raw());
                        finish_legs(legs);
                        self.info.set_state(crate::clients::ClientState::Idle);
                        return Ok(());
                    }
                    (Ok(_), None) => Err(client_error(
                        "XX000",
                        "pgfleet: cross-shard write failed".into(),
                    )),
                }
            }
        };
        finish_legs(legs);
        self.info.set_state(crate::clients::ClientState::Idle);
        match result {
            Ok(tag) => {
                encode_command_complete(out, &tag);
                Ok(())
            }
            Err(e) => {
                out.clear();
                Err(e)
            }
        }
    }

    /// Sends each leg its statement and reads the answers: RowDescription/NoData of the first
    /// shard, every shard's rows into `out`, and the combined CommandComplete tag (not yet
    /// written). A server error stays in its leg.
    async fn run_on_legs(
        &mut self,
        req: &Request,
        statements: &[(usize, ShardStatement)],
        replicated: bool,
        legs: &mut [Leg],
        out: &mut BytesMut,
    ) -> Result<String, ProxyError> {
        let (params, types, describe, result_formats) = match &req.kind {
            Kind::Simple => (Vec::new(), Vec::new(), true, Vec::new()),
            Kind::Extended(e) => (
                e.params()?.iter().map(owned_param).collect::<Vec<_>>(),
                e.param_types.clone(),
                e.describe,
                e.result_formats()?,
            ),
        };
        for leg in legs.iter_mut() {
            let Some((_, st)) = statements.iter().find(|(s, _)| *s == leg.shard) else {
                continue;
            };
            let mut msg = std::mem::take(&mut leg.pre);
            match &req.kind {
                Kind::Simple => encode_query(&mut msg, &st.sql),
                Kind::Extended(_) => {
                    let (p, ty) = mapped_params(&params, &types, st.params.as_deref());
                    encode_parse(&mut msg, "", &st.sql, &ty);
                    encode_bind(&mut msg, "", "", &p, &result_formats);
                    encode_named(&mut msg, t::DESCRIBE, Target::Portal, "");
                    encode_execute(&mut msg, "", 0);
                    encode_sync(&mut msg);
                }
            }
            leg.server().unnamed = 0;
            leg.server().write_all(&msg).await.map_err(|e| {
                leg.broken = true;
                ProxyError::Server(e)
            })?;
        }
        if let Kind::Extended(e) = &req.kind {
            if e.parse.is_some() {
                encode_empty(out, b::PARSE_COMPLETE);
            }
            encode_empty(out, b::BIND_COMPLETE);
        }
        let limit = self.rt.config().proxy.merge_memory_limit;
        let mut described = false;
        for leg in legs.iter_mut() {
            let mut too_big = false;
            let r = leg
                .read_to_ready(|leg, frame| match frame.tag() {
                    b::ROW_DESCRIPTION | b::NO_DATA if describe && !described => {
                        described = true;
                        out.extend_from_slice(frame.raw());
                    }
                    b::DATA_ROW if leg.error.is_none() && (!replicated || leg.slot == 0) => {
                        if out.len() + frame.raw().len() > limit {
                            too_big = true;
                        } else {
                            out.extend_from_slice(frame.raw());
                        }
                    }
                    b::NOTICE_RESPONSE => out.extend_from_slice(frame.raw()),
                    _ => {}
                })
                .await;
            if let Err(e) = r {
                leg.broken = true;
                return Err(ProxyError::Server(e));
            }
            if too_big {
                return Err(client_error(
                    "53200",
                    format!(
                        "pgfleet: the rows this cross-shard write returns exceed \
                         proxy.merge_memory_limit ({limit} bytes)"
                    ),
                ));
            }
        }
        if legs
            .iter()
            .any(|l| l.error.is_some() || l.preamble_error.is_some())
        {
            return Ok(String::new());
        }
        let tags = legs.iter().filter_map(|l| l.tag.as_deref());
        let tag = if replicated {
            combine_replicated(tags)
        } else {
            combine(tags)
        };
        tag.ok_or_else(|| {
            client_error(
                "XX000",
                format!(
                    "pgfleet: the shards answered differently ({}); nothing was committed",
                    legs.iter()
                        .map(|l| l.tag.clone().unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// A statement PostgreSQL runs only outside a transaction block, shard by shard; the first
    /// failure stops it, and the error says which shards have it.
    async fn shard_by_shard(
        &mut self,
        router: &ShardRouter,
        req: &Request,
        what: &str,
        statements: Vec<(usize, ShardStatement)>,
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        let mut done: Vec<usize> = Vec::new();
        let mut tags = Vec::new();
        let all: Vec<usize> = statements.iter().map(|(s, _)| *s).collect();
        for (shard, st) in statements {
            let mut legs = self.legs(router, &[shard], false).await?;
            let one = [(shard, st)];
            let mut scratch = BytesMut::new();
            let r = self
                .run_on_legs(req, &one, false, &mut legs, &mut scratch)
                .await;
            let error = legs
                .first()
                .and_then(|l| l.error.clone().or(l.preamble_error.clone()));
            let tag = legs.first().and_then(|l| l.tag.clone());
            finish_legs(legs);
            r?;
            if let Some(frame) = error {
                let fields = pgfleet_wire::backend::decode_error_frame(&frame)?;
                let code = fields.code().unwrap_or("XX000").to_owned();
                out.clear();
                encode_error(
                    out,
                    "ERROR",
                    &code,
                    &format!(
                        "pgfleet: {what} failed on shard {shard}: {}; it completed on shards [{}] \
                         and did not run on the rest of [{}]",
                        error_message(&frame),
                        list(&done),
                        list(&all)
                    ),
                );
                self.info.set_state(crate::clients::ClientState::Idle);
                return Ok(());
            }
            if let Some(tag) = tag {
                tags.push(tag);
            }
            // The client sees one answer: the first shard's ParseComplete, BindComplete and
            // NoData (the statements return no rows); later shards' are dropped.
            if done.is_empty() {
                out.extend_from_slice(&scratch[..]);
            }
            done.push(shard);
        }
        self.info.set_state(crate::clients::ClientState::Idle);
        let tag = combine(tags.iter().map(String::as_str)).unwrap_or_default();
        encode_command_complete(out, &tag);
        Ok(())
    }
}

/// Each shard's text (and parameter mapping) for the request.
fn per_shard_statements(req: &Request, targets: &Targets) -> Vec<(usize, ShardStatement)> {
    match targets {
        Targets::Same(shards) | Targets::Replicated(shards) => shards
            .iter()
            .map(|s| {
                (
                    *s,
                    ShardStatement {
                        sql: req.sql.clone(),
                        params: None,
                    },
                )
            })
            .collect(),
        Targets::Split(split) => split
            .parts
            .iter()
            .map(|p| {
                (
                    p.shard,
                    ShardStatement {
                        sql: p.sql.clone(),
                        params: Some(p.params.clone()),
                    },
                )
            })
            .collect(),
    }
}

/// The client sees a server's error as the server sent it.
pub(super) fn server_error(frame: &Frame) -> ProxyError {
    ProxyError::Reported(frame.raw().clone())
}

/// Rolls back the open transaction of every leg that has one.
pub(super) async fn rollback_all(legs: &mut [Leg]) {
    for leg in legs.iter_mut().filter(|l| !l.broken) {
        if !leg.ready {
            leg.broken = true;
            continue;
        }
        if leg.status != TxStatus::Idle && leg.simple("ROLLBACK").await.is_err() {
            leg.broken = true;
        }
    }
}

pub(super) fn finish_legs(legs: Vec<Leg>) {
    for leg in legs {
        leg.finish();
    }
}

pub(super) fn list(shards: &[usize]) -> String {
    shards
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
