//! Finishing the two-phase transactions this instance left prepared (an earlier start that
//! crashed, or a commit whose last step failed): commit
//! those with a decision row, roll back the others, then forget the finished decisions. Runs
//! shortly after start and then periodically (cheap: one query per shard and user).

use std::collections::BTreeSet;
use std::time::Instant;

use pgfleet_catalog::Catalog;

use super::twophase::{quoted, Phase, TxEntry};
use crate::runtime::Runtime;
use crate::session::checkout;
use crate::ProxyError;

/// What one recovery pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Prepared transactions committed.
    pub committed: usize,
    /// Prepared transactions rolled back.
    pub rolled_back: usize,
}

/// One recovery pass over every shard of every sharded database, for every configured user.
/// Without a metadata database there is nothing to recover (cross-shard writes need it).
pub async fn recover(rt: &Runtime) -> Result<Recovered, String> {
    let config = rt.config();
    if config.metadata.is_none() {
        return Ok(Recovered::default());
    }
    let tp = &rt.twophase;
    let decided: BTreeSet<String> = tp
        .decisions(&config)
        .await?
        .into_iter()
        .map(|d| d.gid)
        .collect();
    let catalog = Catalog::from_config(&config).map_err(|e| e.to_string())?;
    let mut done = Recovered::default();
    let mut still_prepared = BTreeSet::new();
    // A decision is forgotten only when every shard was looked at in this pass.
    let mut complete = true;
    let pattern = format!("{}%", tp.node_prefix().replace('_', "\\_"));
    for db in catalog.databases() {
        let Some(shards) = db.shards() else { continue };
        for (user, u) in &config.users {
            if u.admin {
                continue;
            }
            for (shard, cluster) in shards.clusters().iter().enumerate() {
                let Ok(pools) =
                    rt.pools
                        .on_cluster(&config, rt.clusters(), user, db.name(), cluster)
                else {
                    continue;
                };
                let primary = pools
                    .state
                    .as_ref()
                    .and_then(|s| s.view.read().primary(Instant::now()).ok())
                    .unwrap_or(pools.configured_primary);
                let mut guard = match checkout(rt, pools.endpoint(primary)).await {
                    Ok(g) => g,
                    Err(ProxyError::ShuttingDown) => return Ok(done),
                    Err(e) => {
                        tracing::warn!(database = db.name(), user, shard, error = %e, "two-phase recovery cannot reach a shard");
                        complete = false;
                        continue;
                    }
                };
                let sql = format!(
                    "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() \
                     AND owner = current_user AND gid LIKE '{pattern}' ORDER BY gid"
                );
                let rows = match guard.simple_query(&sql).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(shard, error = %e, "two-phase recovery: listing prepared transactions failed");
                        guard.discard();
                        complete = false;
                        continue;
                    }
                };
                for gid in rows
                    .into_iter()
                    .filter_map(|r| r.into_iter().next().flatten())
                {
                    let commit = decided.contains(&gid);
                    // A commit of this process may still be working on it.
                    let ours_now = !tp.is_orphan(&gid);
                    if tp.is_live(&gid) || (ours_now && !commit && !tp.is_tracked(&gid)) {
                        still_prepared.insert(gid);
                        continue;
                    }
                    tp.track(TxEntry {
                        gid: gid.clone(),
                        database: db.name().to_owned(),
                        user: user.clone(),
                        shards: vec![shard],
                        phase: if commit {
                            Phase::InDoubtCommit
                        } else {
                            Phase::InDoubtRollback
                        },
                        since: Instant::now(),
                    });
                    let verb = if commit { "COMMIT" } else { "ROLLBACK" };
                    match guard
                        .simple_query(&format!("{verb} PREPARED {}", quoted(&gid)))
                        .await
                    {
                        Ok(_) => {
                            tp.untrack(&gid);
                            tracing::warn!(
                                gid,
                                shard,
                                action = verb,
                                "finished an in-doubt transaction"
                            );
                            if commit {
                                done.committed += 1;
                            } else {
                                done.rolled_back += 1;
                            }
                        }
                        Err(e) => {
                            still_prepared.insert(gid.clone());
                            tracing::warn!(gid, shard, error = %e, "could not finish an in-doubt transaction; will retry");
                        }
                    }
                }
            }
        }
    }
    for gid in decided {
        if complete && !tp.is_live(&gid) && !still_prepared.contains(&gid) {
            if let Err(e) = tp.forget(&config, &gid).await {
                tracing::warn!(gid, error = %e, "could not forget a finished decision");
            }
        }
    }
    Ok(done)
}
