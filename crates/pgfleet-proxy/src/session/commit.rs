//! Committing the open transactions of a cross-shard request's servers: directly on one shard,
//! else with two-phase commit — PREPARE TRANSACTION everywhere, the decision row in the metadata
//! database (the commit point), COMMIT PREPARED — and rolling the prepared parts back when a step
//! before the decision fails. Shared by single cross-shard writes, COPY and transactions that
//! span shards; recovery of what a crash leaves is `fanout::recover`.

use std::time::Instant;

use pgfleet_meta::Decision;
use pgfleet_wire::backend::TxStatus;

use super::fanout::{client_error, list, server_error};
use super::Session;
use crate::fanout::legs::Leg;
use crate::fanout::twophase::{quoted, Phase, TxEntry};
use crate::ProxyError;

impl Session<'_> {
    /// Commits the open transaction of every leg: directly on one shard, else with two-phase
    /// commit and the decision log.
    pub(super) async fn commit_across(
        &mut self,
        legs: &mut [Leg],
        shards: &[usize],
    ) -> Result<(), ProxyError> {
        if legs.len() == 1 {
            let leg = &mut legs[0];
            leg.simple("COMMIT").await.map_err(ProxyError::Server)?;
            return match leg.error.take() {
                Some(e) => Err(server_error(&e)),
                None => Ok(()),
            };
        }
        let rt = self.rt.clone();
        let config = rt.config();
        let tp = &rt.twophase;
        let gid = tp.next_gid();
        tp.track(TxEntry {
            gid: gid.clone(),
            database: self.pools.key.1.clone(),
            user: self.info.user.clone(),
            shards: shards.to_vec(),
            phase: Phase::Preparing,
            since: Instant::now(),
        });
        // 1. PREPARE TRANSACTION everywhere.
        let prepare = format!("PREPARE TRANSACTION {}", quoted(&gid));
        let mut failure: Option<ProxyError> = None;
        for leg in legs.iter_mut() {
            match leg.simple(&prepare).await {
                Ok(())
                    if leg.error.is_none() && leg.tag.as_deref() == Some("PREPARE TRANSACTION") => {
                }
                Ok(()) => {
                    failure.get_or_insert(match &leg.error {
                        Some(e) => server_error(e),
                        None => client_error(
                            "40001",
                            format!(
                                "pgfleet: shard {} could not prepare its part of the transaction; \
                                 nothing was committed",
                                leg.shard
                            ),
                        ),
                    });
                }
                Err(e) => {
                    leg.broken = true;
                    failure.get_or_insert(ProxyError::Server(e));
                }
            }
        }
        tp.crash_point("prepared");
        if let Some(e) = failure {
            self.roll_back_prepared(legs, &gid).await;
            return Err(e);
        }
        // 2. The decision: the commit point.
        tp.set_phase(&gid, Phase::Deciding);
        let decision = Decision {
            gid: gid.clone(),
            node_id: i32::from(config.proxy.node_id),
            database: self.pools.key.1.clone(),
            user: self.info.user.clone(),
            shards: shards.iter().map(|s| *s as i32).collect(),
        };
        if let Err(e) = tp.record(&config, &decision).await {
            // The insert may have committed before the connection failed: ask again.
            let decided = tp
                .decisions(&config)
                .await
                .map(|all| all.iter().any(|d| d.gid == gid));
            match decided {
                Ok(false) => {
                    self.roll_back_prepared(legs, &gid).await;
                    return Err(client_error(
                        "40001",
                        format!(
                            "pgfleet: could not record the commit decision in the metadata \
                             database ({e}); the transaction was rolled back on every shard"
                        ),
                    ));
                }
                Ok(true) => {}
                Err(again) => {
                    tp.set_phase(&gid, Phase::InDoubtCommit);
                    return Err(client_error(
                        "08007",
                        format!(
                            "pgfleet: the outcome of this cross-shard transaction is unknown: the \
                             metadata database failed while recording its commit decision ({e}; \
                             then {again}); it stays prepared as {gid} on shards {} until pgfleet \
                             can read the decision (SHOW TRANSACTIONS)",
                            list(shards)
                        ),
                    ));
                }
            }
        }
        tp.crash_point("decided");
        // 3. COMMIT PREPARED everywhere.
        tp.set_phase(&gid, Phase::Committing);
        let commit = format!("COMMIT PREPARED {}", quoted(&gid));
        let mut pending = Vec::new();
        for leg in legs.iter_mut() {
            let ok = matches!(leg.simple(&commit).await, Ok(()) if leg.error.is_none());
            if !ok {
                leg.broken = leg.broken || !leg.ready;
                pending.push(leg.shard);
            }
        }
        if pending.is_empty() {
            tp.untrack(&gid);
            if let Err(e) = tp.forget(&config, &gid).await {
                tracing::warn!(gid, error = %e, "could not forget a finished commit decision; recovery will");
            }
        } else {
            tp.set_phase(&gid, Phase::InDoubtCommit);
            tracing::warn!(gid, shards = ?pending, "COMMIT PREPARED failed; recovery will finish it");
        }
        Ok(())
    }

    /// Rolls back the prepared parts of `gid` (a failure before the decision).
    async fn roll_back_prepared(&self, legs: &mut [Leg], gid: &str) {
        let tp = &self.rt.twophase;
        tp.set_phase(gid, Phase::RollingBack);
        let sql = format!("ROLLBACK PREPARED {}", quoted(gid));
        let mut left = false;
        for leg in legs.iter_mut().filter(|l| !l.broken) {
            if leg.status == TxStatus::InTransaction || leg.status == TxStatus::Failed {
                let _ = leg.simple("ROLLBACK").await;
                continue;
            }
            if leg.tag.as_deref() == Some("PREPARE TRANSACTION") {
                let done = leg.simple(&sql).await.is_ok() && leg.error.is_none();
                left |= !done;
            }
        }
        if left || legs.iter().any(|l| l.broken) {
            // A broken leg may hold a prepared part: recovery rolls it back (no decision row).
            tp.set_phase(gid, Phase::InDoubtRollback);
        } else {
            tp.untrack(gid);
        }
    }
}
