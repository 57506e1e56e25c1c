//! Two-phase commit for writes on several shards: transaction names, the decision log in the
//! metadata database (a row there is the commit point), the transactions in flight for
//! SHOW TRANSACTIONS, and recovery of in-doubt transactions after a crash.
//!
//! The protocol (docs/sharding.md, "Cross-shard writes"): every shard runs the statement inside
//! `BEGIN` and `PREPARE TRANSACTION 'gid'`; then the decision to commit is inserted into
//! `pgfleet.commit_decisions`; then every shard gets `COMMIT PREPARED 'gid'` and the row is
//! deleted. A failure before the decision rolls every prepared part back. Recovery commits the
//! prepared transactions of this instance that have a decision row and rolls back the others.
//! It only touches names of this instance (`proxy.node_id`) from an earlier start: a name with
//! the current start's stamp belongs to a commit still running.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use pgfleet_config::Config;
use pgfleet_meta::Decision;
use pgfleet_sql::own_names::TWO_PHASE_GID_PREFIX;

/// What a cross-shard write is doing, for SHOW TRANSACTIONS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Running the statement and PREPARE TRANSACTION on every shard.
    Preparing,
    /// Prepared everywhere; recording the decision.
    Deciding,
    /// Decided to commit; COMMIT PREPARED on every shard.
    Committing,
    /// Rolling back the prepared parts.
    RollingBack,
    /// Found prepared after a restart, decision row present: to be committed.
    InDoubtCommit,
    /// Found prepared after a restart, no decision row: to be rolled back.
    InDoubtRollback,
}

impl Phase {
    /// The name SHOW TRANSACTIONS prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Preparing => "preparing",
            Phase::Deciding => "deciding",
            Phase::Committing => "committing",
            Phase::RollingBack => "rolling back",
            Phase::InDoubtCommit => "in doubt: commit",
            Phase::InDoubtRollback => "in doubt: roll back",
        }
    }
}

/// One two-phase transaction pgfleet knows about.
#[derive(Clone, Debug)]
pub struct TxEntry {
    /// Its name on the shards.
    pub gid: String,
    /// pgfleet database.
    pub database: String,
    /// User whose login runs it.
    pub user: String,
    /// Shards taking part.
    pub shards: Vec<usize>,
    /// Where it stands.
    pub phase: Phase,
    /// When pgfleet first saw it.
    pub since: Instant,
}

/// The coordinator state of one pgfleet process.
pub struct TwoPhase {
    node_id: u16,
    /// Milliseconds since the epoch at start: distinguishes this start's names from earlier ones.
    stamp: u64,
    seq: AtomicU64,
    /// The decision log connection, opened on first use.
    meta: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
    active: Mutex<BTreeMap<String, TxEntry>>,
    /// Test hook: `PGFLEET_CRASH_AT=prepared|decided` aborts the process at that point of a
    /// commit (read once at start), for the crash-recovery tests.
    crash_at: Option<String>,
}

impl TwoPhase {
    /// The coordinator of instance `node_id`.
    pub fn new(node_id: u16) -> TwoPhase {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        TwoPhase {
            node_id,
            stamp,
            seq: AtomicU64::new(0),
            meta: tokio::sync::Mutex::new(None),
            active: Mutex::new(BTreeMap::new()),
            crash_at: std::env::var("PGFLEET_CRASH_AT").ok(),
        }
    }

    /// A new transaction name: `pgfleet_<node>_<start stamp>_<sequence>`.
    pub fn next_gid(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{TWO_PHASE_GID_PREFIX}{}_{}_{n}", self.node_id, self.stamp)
    }

    /// The prefix of this instance's names (any start).
    pub fn node_prefix(&self) -> String {
        format!("{TWO_PHASE_GID_PREFIX}{}_", self.node_id)
    }

    /// Whether `gid` was named by an earlier start of this instance (so no commit of this
    /// process is running it).
    pub fn is_orphan(&self, gid: &str) -> bool {
        match gid.strip_prefix(&self.node_prefix()) {
            Some(rest) => rest
                .split('_')
                .next()
                .is_some_and(|stamp| stamp != self.stamp.to_string()),
            None => false,
        }
    }

    /// Aborts the process here when the crash hook names this point.
    pub fn crash_point(&self, point: &str) {
        if self.crash_at.as_deref() == Some(point) {
            eprintln!("pgfleet: PGFLEET_CRASH_AT={point}: aborting");
            std::process::abort();
        }
    }

    /// Registers or updates a transaction for SHOW TRANSACTIONS.
    pub fn track(&self, entry: TxEntry) {
        self.active.lock().insert(entry.gid.clone(), entry);
    }

    /// Moves a tracked transaction to `phase`.
    pub fn set_phase(&self, gid: &str, phase: Phase) {
        if let Some(e) = self.active.lock().get_mut(gid) {
            e.phase = phase;
        }
    }

    /// Whether a commit of this process is working on `gid` right now.
    pub fn is_live(&self, gid: &str) -> bool {
        self.active.lock().get(gid).is_some_and(|e| {
            matches!(
                e.phase,
                Phase::Preparing | Phase::Deciding | Phase::Committing | Phase::RollingBack
            )
        })
    }

    /// Whether `gid` is tracked at all (live, or left in doubt by a failed last step).
    pub fn is_tracked(&self, gid: &str) -> bool {
        self.active.lock().contains_key(gid)
    }

    /// Forgets a finished transaction.
    pub fn untrack(&self, gid: &str) {
        self.active.lock().remove(gid);
    }

    /// The transactions in flight or in doubt, by name.
    pub fn list(&self) -> Vec<TxEntry> {
        self.active.lock().values().cloned().collect()
    }

    /// Runs `f` on the decision-log connection, connecting (and bringing the `pgfleet` schema up
    /// to date) when there is none; a failed call drops the connection so the next one
    /// reconnects. Errors are texts for the client or the log.
    async fn with_meta<T>(
        &self,
        config: &Config,
        f: impl for<'c> FnOnce(
            &'c tokio_postgres::Client,
        )
            -> futures::future::BoxFuture<'c, Result<T, pgfleet_meta::MetaError>>,
    ) -> Result<T, String> {
        let mut slot = self.meta.lock().await;
        if slot.as_ref().is_none_or(|c| c.is_closed()) {
            let store = pgfleet_meta::MetaStore::connect(config, "pgfleet two-phase commit")
                .await
                .map_err(|e| e.to_string())?;
            *slot = Some(store.into_client());
        }
        let Some(client) = slot.as_ref() else {
            return Err("no metadata database connection".to_owned());
        };
        match f(client).await {
            Ok(v) => Ok(v),
            Err(e) => {
                *slot = None;
                Err(e.to_string())
            }
        }
    }

    /// Records the decision to commit (the commit point).
    pub async fn record(&self, config: &Config, d: &Decision) -> Result<(), String> {
        let d = d.clone();
        self.with_meta(config, move |c| {
            Box::pin(async move { pgfleet_meta::decisions::record_commit(c, &d).await })
        })
        .await
    }

    /// Deletes a decision whose prepared transactions are all committed.
    pub async fn forget(&self, config: &Config, gid: &str) -> Result<(), String> {
        let gid = gid.to_owned();
        self.with_meta(config, move |c| {
            Box::pin(async move { pgfleet_meta::decisions::forget_decision(c, &gid).await })
        })
        .await
    }

    /// Every decision still in the log.
    pub async fn decisions(&self, config: &Config) -> Result<Vec<Decision>, String> {
        self.with_meta(config, |c| Box::pin(pgfleet_meta::decisions::decisions(c)))
            .await
    }
}

/// Quotes a transaction name for `PREPARE TRANSACTION` / `COMMIT PREPARED` (names pgfleet made
/// contain only letters, digits and `_`; quoting keeps any other name safe anyway).
pub fn quoted(gid: &str) -> String {
    format!("'{}'", gid.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_node_and_start_and_orphans_are_earlier_starts() {
        let tp = TwoPhase::new(7);
        let a = tp.next_gid();
        let b = tp.next_gid();
        assert_ne!(a, b);
        assert!(a.starts_with("pgfleet_7_"), "{a}");
        assert!(!tp.is_orphan(&a), "a name of this start is live");
        assert!(tp.is_orphan("pgfleet_7_1_3"));
        assert!(!tp.is_orphan("pgfleet_8_1_3"), "another instance's name");
        assert!(!tp.is_orphan("other"));
        assert_eq!(quoted("a'b"), "'a''b'");
    }
}
