//! What the data path and the monitor share about one cluster: the current view (roles, health,
//! lag), the volatility catalog, the read policy and a round-robin counter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};
use pgfleet_config::{ClusterConfig, Config, QuorumTimeoutAction};
use tokio::sync::{watch, Notify};

use super::{ClusterView, ReadPolicy};
use crate::route::VolatileCatalog;

/// Settings of a cluster the router and the monitor read on every decision.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// How reads are placed.
    pub read_policy: ReadPolicy,
    /// Volatile functions known to be read-only.
    pub allowlist: Vec<String>,
    /// Monitor period.
    pub lag_check_interval: Duration,
    /// Longest time one monitor probe (connect + query) may take.
    pub health_check_interval: Duration,
    /// Longest wait for a primary when there is none.
    pub failover_timeout: Duration,
    /// Read-your-writes: longest wait for a replica to replay the session's last write.
    pub ryw_wait: Duration,
    /// Replicas that must replay a writing transaction's commit before COMMIT is answered.
    pub write_quorum: usize,
    /// Longest wait for the quorum.
    pub quorum_timeout: Duration,
    /// What happens when the quorum is not reached in time.
    pub quorum_timeout_action: QuorumTimeoutAction,
}

impl ClusterSettings {
    fn of(cluster: &ClusterConfig) -> ClusterSettings {
        ClusterSettings {
            read_policy: ReadPolicy::from_cluster(cluster),
            allowlist: cluster.read_volatile_allowlist.clone(),
            lag_check_interval: cluster.lag_check_interval,
            health_check_interval: cluster.health_check_interval,
            failover_timeout: cluster.failover_timeout,
            ryw_wait: cluster.ryw_wait,
            write_quorum: cluster.write_quorum,
            quorum_timeout: cluster.quorum_timeout,
            quorum_timeout_action: cluster.quorum_timeout_action,
        }
    }
}

/// One cluster's shared replication state.
pub struct ClusterState {
    /// The cluster's name in the config.
    pub name: String,
    /// Roles, health and lag of every endpoint.
    pub view: RwLock<ClusterView>,
    /// Volatile functions (from `pg_proc` on the primary).
    pub catalog: ArcSwap<VolatileCatalog>,
    /// Current settings (replaced on reload).
    pub settings: ArcSwap<ClusterSettings>,
    rr: AtomicU64,
    /// Seed of the small PRNG for weighted random balancing.
    rng: AtomicU64,
    /// Completed monitor rounds: sessions waiting for replicas to catch up watch it.
    rounds: watch::Sender<u64>,
    /// Asks the monitor for a round now instead of at its next tick.
    urgent: Notify,
}

impl ClusterState {
    fn new(name: &str, cluster: &ClusterConfig) -> ClusterState {
        ClusterState {
            name: name.to_owned(),
            view: RwLock::new(ClusterView::from_config(cluster)),
            catalog: ArcSwap::from_pointee(VolatileCatalog::default()),
            settings: ArcSwap::from_pointee(ClusterSettings::of(cluster)),
            rr: AtomicU64::new(0),
            rng: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
            rounds: watch::channel(0).0,
            urgent: Notify::new(),
        }
    }

    /// Called by the monitor after each round has updated the view.
    pub fn round_done(&self) {
        self.rounds.send_modify(|r| *r = r.wrapping_add(1));
    }

    /// Resolves when some session has asked for an early monitor round.
    pub async fn urgent_requested(&self) {
        self.urgent.notified().await;
    }

    /// Waits until `check` finds what it needs in the view, asking the monitor for rounds as
    /// fast as it runs them, or until `deadline`; returns the last answer of `check`.
    ///
    /// Read-your-writes (`ryw_wait`) and quorum writes wait here: replicas' positions change only
    /// when the monitor measures them, so each wait is a few monitor round trips, not a timer.
    pub async fn wait_for<T>(
        &self,
        deadline: Instant,
        mut check: impl FnMut(&super::ClusterView) -> Option<T>,
    ) -> Option<T> {
        let mut rounds = self.rounds.subscribe();
        loop {
            if let Some(found) = check(&self.view.read()) {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            rounds.mark_unchanged();
            self.urgent.notify_one();
            let changed = tokio::time::timeout_at(deadline.into(), rounds.changed()).await;
            if !matches!(changed, Ok(Ok(()))) {
                return check(&self.view.read());
            }
        }
    }

    /// Next round-robin position.
    pub fn next_rr(&self) -> u64 {
        self.rr.fetch_add(1, Ordering::Relaxed)
    }

    /// The round-robin position without advancing it.
    pub fn current_rr(&self) -> u64 {
        self.rr.load(Ordering::Relaxed)
    }

    /// A pseudo-random number for weighted balancing (splitmix64; quality is plenty for spreading
    /// reads, and it needs no lock).
    pub fn next_random(&self) -> u64 {
        let mut z = self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Every cluster's state, by name.
#[derive(Default)]
pub struct Clusters {
    map: Mutex<HashMap<String, Arc<ClusterState>>>,
}

impl Clusters {
    /// The state of cluster `name`, created from `config` on first use; a reload that changed the
    /// cluster's servers starts a fresh view.
    pub fn get(&self, config: &Config, name: &str) -> Option<Arc<ClusterState>> {
        let cluster = config.clusters.get(name)?;
        let mut map = self.map.lock();
        let state = map
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(ClusterState::new(name, cluster)));
        Some(state.clone())
    }

    /// Applies a reloaded config: new settings for every cluster; clusters whose servers changed
    /// get a fresh view; removed clusters are dropped.
    pub fn reconcile(&self, config: &Config) {
        let mut map = self.map.lock();
        map.retain(|name, _| config.clusters.contains_key(name));
        for (name, cluster) in &config.clusters {
            if let Some(state) = map.get(name) {
                state.settings.store(Arc::new(ClusterSettings::of(cluster)));
                let fresh = ClusterView::from_config(cluster);
                let mut view = state.view.write();
                let same = view.endpoints.len() == fresh.endpoints.len()
                    && view
                        .endpoints
                        .iter()
                        .zip(&fresh.endpoints)
                        .all(|(a, b)| a.address == b.address);
                if !same {
                    *view = fresh;
                }
            }
        }
    }

    /// Every cluster's state, by name.
    pub fn list(&self) -> Vec<Arc<ClusterState>> {
        let mut v: Vec<_> = self.map.lock().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}
