//! Transactions that span shards. Inside `BEGIN … COMMIT`, a request whose statement needs
//! another shard moves the transaction there too: the server of the current shard is set aside
//! (parked, its transaction open), a server of the other shard is checked out and the
//! transaction's `BEGIN` sent ahead of the statement. `COMMIT` then commits every shard in one
//! two-phase commit (the same protocol and decision log as single cross-shard writes,
//! `session/fanout.rs`); `ROLLBACK`, or `COMMIT` of a failed transaction, rolls every shard
//! back. Savepoints and multi-statement queries are refused once a transaction spans shards.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use pgfleet_sql::TxControl;
use pgfleet_wire::backend::{encode_command_complete, encode_empty, TxStatus};
use pgfleet_wire::frontend::{decode_bind, decode_parse, decode_query};
use pgfleet_wire::tag::backend as b;
use pgfleet_wire::tag::frontend as t;
use pgfleet_wire::Frame;

use super::shards::{and_chain, LocalTx, Parked};
use super::Session;
use crate::execute::request::UnnamedStatement;
use crate::fanout::legs::Leg;
use crate::fanout::request::{self, Kind};
use crate::prepared::StatementDef;
use crate::runtime::Runtime;
use crate::sharding::Place;
use crate::ProxyError;

/// Whether `frame` opens a request whose one statement is `COMMIT`/`END`/`ROLLBACK`/`ABORT`.
pub(super) fn ends_transaction(
    rt: &Runtime,
    frame: &Frame,
    statements: &HashMap<String, Arc<StatementDef>>,
    unnamed: &Option<Arc<UnnamedStatement>>,
) -> Result<bool, ProxyError> {
    let text = match frame.tag() {
        t::QUERY => decode_query(frame)?.to_owned(),
        t::PARSE => decode_parse(frame)?.query.to_owned(),
        t::BIND => {
            let bind = decode_bind(frame)?;
            let found = if bind.statement.is_empty() {
                unnamed.as_ref().map(|u| u.query().to_owned())
            } else {
                statements.get(bind.statement).map(|d| d.query.clone())
            };
            match found {
                Some(q) => q,
                None => return Ok(false),
            }
        }
        _ => return Ok(false),
    };
    Ok(matches!(
        rt.analyzer.classify(&text).tx,
        TxControl::Commit | TxControl::Rollback
    ))
}

impl Session<'_> {
    /// The transaction ended on its one server: forget what it carried.
    pub(super) fn shard_transaction_over(&mut self) {
        if let Some(sh) = self.shard.as_deref_mut() {
            sh.forget_want();
        }
        if self.tx != TxStatus::Idle {
            return;
        }
        self.discard_parked();
        if let Some(sh) = self.shard.as_deref_mut() {
            sh.transaction_ended();
        }
    }

    /// Closes the parked servers of a transaction that cannot finish (their transactions roll
    /// back when their connections close).
    pub(super) fn discard_parked(&mut self) {
        if let Some(sh) = self.shard.as_deref_mut() {
            for p in sh.parked.drain(..) {
                tracing::warn!(client = self.info.id, place = %p.place, "closing a server of an unfinished transaction that spans shards");
                p.guard.discard();
            }
        }
    }

    /// Continues the transaction on the shard the next statement (in `self.first`) needs.
    pub(super) async fn switch_shard(&mut self) -> Result<(), ProxyError> {
        let Some(frame) = self.first.clone() else {
            return Ok(());
        };
        let router = self.router()?;
        let place = match self.opening_place(&router, &frame) {
            Ok((place, _)) => place,
            Err(e) => {
                self.refuse_next(e);
                return Ok(());
            }
        };
        let held = self.shard.as_deref().and_then(|s| s.held.clone());
        // Only between shards: recovery looks for in-doubt transactions on shards, not on
        // placement clusters.
        let (Place::Shard(target), Some(held @ Place::Shard(_))) = (place.clone(), held) else {
            // Not a shard this transaction can move to: refuse the statement instead.
            let e = crate::sharding::place_conflict(
                &self
                    .shard
                    .as_deref()
                    .and_then(|s| s.held.clone())
                    .unwrap_or(Place::Shard(0)),
                &place,
                crate::sharding::Holder::Transaction,
            );
            self.refuse_next(e);
            return Ok(());
        };
        if held == place {
            let e = crate::sharding::place_conflict(
                &held,
                &place,
                crate::sharding::Holder::Transaction,
            );
            self.refuse_next(e);
            return Ok(());
        }
        let parked_places: Vec<Place> = self
            .shard
            .as_deref()
            .map(|s| s.parked.iter().map(|p| p.place.clone()).collect())
            .unwrap_or_default();
        let shards: Vec<usize> = parked_places
            .iter()
            .chain(std::iter::once(&held))
            .chain(std::iter::once(&place))
            .filter_map(|p| match p {
                Place::Shard(n) => Some(*n),
                Place::Cluster(_) => None,
            })
            .collect();
        if let Err(e) = self.may_span(&held, &place, &shards) {
            self.refuse_next(e);
            return Ok(());
        }
        // Set the current server aside.
        let Some(guard) = self.server.take() else {
            return Ok(());
        };
        let current = Parked {
            place: held,
            guard,
            pools: self.pools.clone(),
            entry: self.entry.clone(),
        };
        let Some(sh) = self.shard.as_deref_mut() else {
            return Ok(());
        };
        sh.parked.push(current);
        // The commit is pgfleet's two-phase commit: no per-server commit follow-up.
        self.needs_commit_lsn = false;
        self.quorum = 0;
        // Back to a shard it already used: its server is waiting.
        if let Some(i) = sh.parked.iter().position(|p| p.place == place) {
            let p = sh.parked.remove(i);
            sh.held = Some(p.place);
            self.pools = p.pools;
            self.entry = p.entry;
            self.info.attach(p.guard.info.id, p.guard.cancel.clone());
            self.exchange.reset();
            self.server = Some(p.guard);
            return Ok(());
        }
        let begin = sh.begin.clone().unwrap_or_else(|| "BEGIN".to_owned());
        let pools = match self.shard_pools_for(&router, target) {
            Ok(p) => p,
            Err(e) => return self.unpark_and_refuse(e),
        };
        self.pools = pools.clone();
        let endpoint = match self.endpoint_on(&pools, false).await {
            Ok(i) => i,
            Err(e) => return self.unpark_and_refuse(e),
        };
        if let Err(e) = self.acquire(endpoint).await {
            return self.unpark_and_refuse(e);
        }
        if let Some(sh) = self.shard.as_deref_mut() {
            sh.held = Some(place);
            // `open_on` sends it ahead of the statement, answer swallowed.
            sh.local = LocalTx::Begun(begin);
        }
        tracing::debug!(
            client = self.info.id,
            shard = target,
            "transaction continues on another shard"
        );
        Ok(())
    }

    /// Whether this session's transaction may go on to another shard: the user may write
    /// across shards and there is a decision log for the two-phase commit.
    fn may_span(&self, held: &Place, next: &Place, shards: &[usize]) -> Result<(), ProxyError> {
        let config = self.rt.config();
        let forbidden = config
            .users
            .get(&self.info.user)
            .is_some_and(|u| !u.cross_shard_writes);
        let why = if forbidden {
            format!(
                "user `{}` may not run transactions on several shards (users.{}.cross_shard_writes = false)",
                self.info.user, self.info.user
            )
        } else if config.metadata.is_none() {
            "a transaction on several shards commits with two-phase commit, which needs the \
             metadata database for its decision log ([metadata] in the config)"
                .to_owned()
        } else {
            return Ok(());
        };
        Err(ProxyError::Client {
            code: if forbidden { "42501" } else { "0A000" },
            message: format!(
                "pgfleet: transaction on {held} cannot continue on {next} (shards {}): {why}",
                shards
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    fn shard_pools_for(
        &mut self,
        router: &pgfleet_sql::shard::ShardRouter,
        shard: usize,
    ) -> Result<Arc<crate::pools::DatabasePools>, ProxyError> {
        let cluster = router
            .topology()
            .shard_cluster(shard)
            .ok_or_else(|| ProxyError::Client {
                code: "22023",
                message: format!("pgfleet: no shard {shard}"),
            })?
            .to_owned();
        self.pools_on(&cluster)
    }

    /// The switch failed before the statement ran: the last parked server becomes current again
    /// and the statement fails there (the transaction is then failed, as in PostgreSQL).
    fn unpark_and_refuse(&mut self, e: ProxyError) -> Result<(), ProxyError> {
        if let Some(sh) = self.shard.as_deref_mut() {
            if let Some(p) = sh.parked.pop() {
                sh.held = Some(p.place);
                self.pools = p.pools;
                self.entry = p.entry;
                self.exchange.reset();
                self.server = Some(p.guard);
            }
        }
        self.refuse_next(e);
        Ok(())
    }

    fn refuse_next(&mut self, e: ProxyError) {
        if let Some(sh) = self.shard.as_deref_mut() {
            sh.pending_refusal = Some(e);
        }
    }

    /// COMMIT or ROLLBACK (in `self.first`) of a transaction that spans shards.
    pub(super) async fn end_multi_shard(&mut self) -> Result<(), ProxyError> {
        let Some(first) = self.first.take() else {
            return Ok(());
        };
        // The whole request (an extended-protocol COMMIT comes with its Sync).
        let (rest, offset) = if first.tag() == t::QUERY {
            (Vec::new(), 0)
        } else {
            loop {
                if let Some(found) = self.client.peek_until(|tag| tag == t::SYNC)? {
                    break found;
                }
                if !self.client.fill().await? {
                    return Err(ProxyError::ClientIo(
                        std::io::ErrorKind::UnexpectedEof.into(),
                    ));
                }
            }
        };
        let mut frames = vec![first];
        frames.extend(rest);
        let lookup = |name: &str| self.statement_text(name);
        let req = request::read(&frames, &lookup)?;
        self.client.skip(offset);
        let (sql, kind) = match req {
            Some(r) => (r.sql, Some(r.kind)),
            None => match frames[0].tag() {
                t::QUERY => (decode_query(&frames[0])?.to_owned(), None),
                _ => (String::new(), None),
            },
        };
        // A request that prepares COMMIT/ROLLBACK without running it (or runs it in another
        // shape): refused, and — as after any error in a transaction — the transaction is failed:
        // every shard rolls back now, and the client must ROLLBACK.
        let unusual = kind.is_none() && frames[0].tag() != t::QUERY;
        let commit = !unusual
            && matches!(self.rt.analyzer.classify(&sql).tx, TxControl::Commit)
            && self.tx == TxStatus::InTransaction;
        let chain = and_chain(&sql);
        // Every server of the transaction.
        let mut legs = Vec::new();
        let mut shards = Vec::new();
        if let Some(sh) = self.shard.as_deref_mut() {
            let held = sh.held.clone();
            let parked: Vec<Parked> = sh.parked.drain(..).collect();
            let current = self.server.take().map(|g| (held, g));
            for (place, guard) in parked
                .into_iter()
                .map(|p| (Some(p.place), p.guard))
                .chain(current)
            {
                let shard = match place {
                    Some(Place::Shard(n)) => n,
                    _ => usize::MAX,
                };
                let mut leg = Leg::new(shard, legs.len(), guard);
                leg.ready = true;
                leg.status = TxStatus::InTransaction;
                // A session pinned during the transaction (temporary table, LISTEN, …) must not
                // hand its servers' session state to other clients: close them afterwards.
                leg.broken = self.pinned.is_some();
                shards.push(shard);
                legs.push(leg);
            }
        }
        self.info.detach();
        let begin = self
            .shard
            .as_deref()
            .and_then(|s| s.begin.clone())
            .unwrap_or_else(|| "BEGIN".to_owned());
        let mut out = BytesMut::new();
        if let Some(Kind::Extended(e)) = &kind {
            if e.parse.is_some() {
                encode_empty(&mut out, b::PARSE_COMPLETE);
            }
            encode_empty(&mut out, b::BIND_COMPLETE);
        }
        let result = if commit {
            self.commit_across(&mut legs, &shards)
                .await
                .map(|()| "COMMIT")
        } else {
            super::fanout::rollback_all(&mut legs).await;
            if unusual {
                Err(ProxyError::Client {
                    code: "0A000",
                    message:
                        "pgfleet: in a transaction that spans shards, send COMMIT or ROLLBACK \
                              as a statement to run (simple Query, or Parse/Bind/Execute/Sync); \
                              the transaction is rolled back"
                            .into(),
                })
            } else {
                Ok("ROLLBACK")
            }
        };
        if result.is_err() {
            super::fanout::rollback_all(&mut legs).await;
        }
        super::fanout::finish_legs(legs);
        self.info.set_state(crate::clients::ClientState::Idle);
        self.exchange.reset();
        if let Some(sh) = self.shard.as_deref_mut() {
            sh.held = None;
            sh.transaction_ended();
        }
        self.tx = TxStatus::Idle;
        match result {
            Ok(tag) => {
                encode_command_complete(&mut out, tag);
                if chain {
                    if let Some(sh) = self.shard.as_deref_mut() {
                        sh.local = LocalTx::Begun(begin);
                    }
                    self.tx = TxStatus::InTransaction;
                }
            }
            Err(e) => {
                e.encode_for_client(&mut out);
                if unusual {
                    // Like PostgreSQL after an error: the client's transaction is failed until
                    // it says ROLLBACK (answered without a server).
                    if let Some(sh) = self.shard.as_deref_mut() {
                        sh.local = LocalTx::Failed(begin.clone());
                    }
                    self.tx = TxStatus::Failed;
                }
            }
        }
        pgfleet_wire::backend::encode_ready_for_query(&mut out, self.tx);
        self.client.write_all(&out).await
    }
}
