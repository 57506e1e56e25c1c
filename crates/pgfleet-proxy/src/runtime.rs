//! Explicit shared state of one pgfleet process: the config snapshot, pools, registries, counters,
//! and the pause/shutdown switches. No globals: everything reaches the data path through here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use pgfleet_config::Config;
use pgfleet_sql::Analyzer;
use tokio::sync::watch;

use crate::client::VerifierCache;
use crate::clients::ClientRegistry;
use crate::console::Console;
use crate::fanout::twophase::TwoPhase;
use crate::pools::Pools;
use crate::prepared::PreparedRegistry;
use crate::replication::Clusters;
use crate::sharding::{routers_for, RouterMemo, ShardRouters};
use crate::stats::Stats;

/// Everything the data path shares.
pub struct Runtime {
    config: ArcSwap<Config>,
    config_path: Option<PathBuf>,
    pub(crate) pools: Pools,
    pub(crate) analyzer: Analyzer,
    /// Shard routers of sharded and placed databases, rebuilt (with empty caches) on reload.
    routers: ArcSwap<ShardRouters>,
    pub(crate) prepared: PreparedRegistry,
    pub(crate) clients: ClientRegistry,
    pub(crate) verifiers: VerifierCache,
    clusters: Clusters,
    stats: Stats,
    paused: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
    /// Mirrors of the two switches for the per-transaction fast path: a plain load, no lock and
    /// no shared read-modify-write.
    paused_now: AtomicBool,
    shutting_down_now: AtomicBool,
    pub(crate) console: Option<Arc<dyn Console>>,
    /// Two-phase commit coordinator of cross-shard writes (names, decision log, SHOW TRANSACTIONS).
    pub twophase: TwoPhase,
    /// Multi-tenancy: the tenant directory cache, statement guards, per-tenant caps and counters.
    pub tenancy: crate::tenancy::Tenancy,
}

impl Runtime {
    /// A runtime for `config`; `config_path` is re-read by RELOAD; `console` serves the admin
    /// database.
    pub fn new(
        config: Config,
        config_path: Option<PathBuf>,
        console: Option<Arc<dyn Console>>,
    ) -> Arc<Runtime> {
        let analyzer = Analyzer::new(config.proxy.analysis_cache_size);
        let node_id = config.proxy.node_id;
        let routers = ArcSwap::from_pointee(routers_for(&config));
        Arc::new(Runtime {
            routers,
            config: ArcSwap::from_pointee(config),
            config_path,
            pools: Pools::default(),
            analyzer,
            prepared: PreparedRegistry::default(),
            clients: ClientRegistry::default(),
            verifiers: VerifierCache::default(),
            clusters: Clusters::default(),
            stats: Stats::default(),
            paused: watch::channel(false).0,
            shutdown: watch::channel(false).0,
            paused_now: AtomicBool::new(false),
            shutting_down_now: AtomicBool::new(false),
            twophase: TwoPhase::new(node_id),
            tenancy: crate::tenancy::Tenancy::default(),
            console,
        })
    }

    /// The current configuration snapshot.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Whether `config` is still the configuration in force (no reload since it was read). No
    /// reference count moves, where [`Runtime::config`] writes a cache line every thread shares.
    pub fn config_is(&self, config: &Arc<Config>) -> bool {
        Arc::ptr_eq(&self.config.load(), config)
    }

    /// Where the configuration was read from, if from a file.
    pub fn config_path(&self) -> Option<&PathBuf> {
        self.config_path.as_ref()
    }

    /// Swaps in a new configuration: pools whose settings changed get the new sizes and timeouts at
    /// once, pools whose server or credentials changed are closed (their busy connections finish
    /// their transaction first) and re-created on next use. Clients stay connected.
    pub fn apply_config(&self, new: Config) {
        // The new config first: a pool created from here on is built from it. (One created from
        // a snapshot taken before, by a session that was logging in, is reconciled by the
        // maintenance task within a second.)
        let new = Arc::new(new);
        self.routers.store(Arc::new(routers_for(&new)));
        self.config.store(new.clone());
        self.pools.reconcile(&new);
        self.clusters.reconcile(&new);
    }

    /// The shard router of `database`, if it has shards or placement groups.
    pub fn shard_router(&self, database: &str) -> Option<Arc<pgfleet_sql::shard::ShardRouter>> {
        self.routers.load().get(database).cloned()
    }

    /// As [`Runtime::shard_router`], answered from `memo` while the routers were not rebuilt
    /// since it was filled: a pointer comparison instead of a lookup by name on every request.
    pub fn shard_router_memo(
        &self,
        database: &str,
        memo: &mut RouterMemo,
    ) -> Option<Arc<pgfleet_sql::shard::ShardRouter>> {
        let routers = self.routers.load();
        if let Some((from, router)) = memo.as_ref() {
            if Arc::ptr_eq(from, &routers) {
                return router.clone();
            }
        }
        let router = routers.get(database).cloned();
        *memo = Some((Arc::clone(&routers), router.clone()));
        router
    }

    /// Replication state per cluster (SHOW REPLICATION, the router, the monitor).
    pub fn clusters(&self) -> &Clusters {
        &self.clusters
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Pools, for the admin console.
    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    /// Connected clients, for the admin console.
    pub fn clients(&self) -> &ClientRegistry {
        &self.clients
    }

    /// PAUSE: new transactions wait at checkout until [`Runtime::resume`].
    pub fn pause(&self) {
        self.paused_now.store(true, Ordering::SeqCst);
        self.paused.send_replace(true);
    }

    /// RESUME.
    pub fn resume(&self) {
        self.paused_now.store(false, Ordering::SeqCst);
        self.paused.send_replace(false);
    }

    /// Whether PAUSE is in effect.
    pub fn is_paused(&self) -> bool {
        self.paused_now.load(Ordering::Acquire)
    }

    /// Waits while paused.
    pub(crate) async fn wait_unpaused(&self) {
        if !self.is_paused() {
            return;
        }
        let mut rx = self.paused.subscribe();
        let _ = rx.wait_for(|p| !*p).await;
    }

    /// Starts a graceful shutdown: the listener stops, idle clients are told and disconnected,
    /// clients in a transaction finish it first.
    pub fn shutdown(&self) {
        self.shutting_down_now.store(true, Ordering::SeqCst);
        self.shutdown.send_replace(true);
        for client in self.clients.list() {
            // Every notifier future the session holds (its idle wait's, kept for the whole
            // session, and the one of its current stretch with a server), then a permit for one
            // it creates later.
            client.kick.notify_waiters();
            client.kick.notify_one();
        }
    }

    /// Whether shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down_now.load(Ordering::Acquire)
    }

    /// Resolves when shutdown starts.
    pub async fn shutdown_started(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}
