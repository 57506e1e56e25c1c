//! Multi-tenancy on the data path (see docs/tenancy.md, "Through the proxy"):
//!
//! - [`identify`]: which tenant a session names (user name suffix, startup parameter, `SET
//!   pgfleet.tenant`, per-user binding), and the user it authenticates as. Pure.
//! - [`directory`]: the tenant directory through a bounded LRU cache, invalidated by LISTEN.
//! - [`context`]: what a tenant's transactions run under (forced settings) and what its
//!   statements may not do ([`pgfleet_sql::tenant_guard::TenantRules`]). Pure.
//! - this module: [`Tenancy`], the per-process state (directory, statement guards per database,
//!   per-tenant connection caps and statistics).
//!
//! The session carries it out in `session/tenant.rs`.

pub mod context;
pub mod directory;
pub mod identify;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;
use pgfleet_config::{TenancyConfig, TenantModel, TENANT_PLACEHOLDER};
use pgfleet_sql::tenant_guard::TenantGuard;
use tokio::sync::Semaphore;

/// Texts whose tenant facts are cached per database.
const GUARD_CACHE_ENTRIES: usize = 4096;
/// Tenants with statistics kept per process (least recently active dropped first).
pub const STATS_ENTRIES: usize = 1000;

/// Per-process tenancy state, in the [`crate::Runtime`].
pub struct Tenancy {
    /// The tenant directory cache.
    pub directory: directory::Directory,
    guards: Mutex<HashMap<String, Arc<TenantGuard>>>,
    /// Per (database, tenant): the cap on server connections held at once.
    limits: Mutex<HashMap<(String, String), Arc<Semaphore>>>,
    stats: Mutex<LruCache<(String, String), Arc<TenantStats>>>,
}

impl Default for Tenancy {
    fn default() -> Self {
        Tenancy {
            directory: directory::Directory::default(),
            guards: Mutex::new(HashMap::new()),
            limits: Mutex::new(HashMap::new()),
            stats: Mutex::new(LruCache::new(
                NonZeroUsize::new(STATS_ENTRIES).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

/// Counters of one tenant (SHOW TENANTS).
#[derive(Debug, Default)]
pub struct TenantStats {
    /// Transactions (server checkouts) of the tenant's sessions.
    pub transactions: AtomicU64,
    /// Simple queries and Executes.
    pub statements: AtomicU64,
    /// Statements pgfleet refused and transactions it could not start for the tenant.
    pub errors: AtomicU64,
    /// Microseconds the tenant's sessions held a server.
    pub server_micros: AtomicU64,
}

/// One row of SHOW TENANTS.
#[derive(Clone, Debug)]
pub struct TenantStatsRow {
    /// pgfleet database.
    pub database: String,
    /// Tenant.
    pub tenant: String,
    /// See [`TenantStats`].
    pub transactions: u64,
    /// See [`TenantStats`].
    pub statements: u64,
    /// See [`TenantStats`].
    pub errors: u64,
    /// See [`TenantStats`].
    pub server_micros: u64,
    /// Server connections held right now (when the database caps them).
    pub connections: usize,
    /// The directory state as cached (`None`: not cached).
    pub state: Option<&'static str>,
}

impl Tenancy {
    /// The statement guard of a database, rebuilt when its schema template changed.
    pub fn guard(&self, database: &str, t: &TenancyConfig) -> Arc<TenantGuard> {
        let pattern = match t.model {
            TenantModel::Schema => t
                .schema_template
                .split_once(TENANT_PLACEHOLDER)
                .map(|(a, b)| (a.to_owned(), b.to_owned())),
            TenantModel::Row | TenantModel::Database => None,
        };
        let mut guards = self.guards.lock();
        if let Some(g) = guards.get(database) {
            if g.pattern() == pattern.as_ref() {
                return g.clone();
            }
        }
        let g = Arc::new(TenantGuard::new(pattern, GUARD_CACHE_ENTRIES));
        guards.insert(database.to_owned(), g.clone());
        g
    }

    /// The connection cap semaphore of a tenant (`max` permits); one per tenant while anyone
    /// uses it.
    pub(crate) fn limit(&self, database: &str, tenant: &str, max: usize) -> Arc<Semaphore> {
        let mut limits = self.limits.lock();
        // Drop caps nobody holds (bounded by the tenants with sessions right now).
        if limits.len() > 1024 {
            limits.retain(|_, s| Arc::strong_count(s) > 1);
        }
        let key = (database.to_owned(), tenant.to_owned());
        let sem = limits
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(max)));
        // A reload changed the cap: a fresh semaphore (holders of the old one finish normally).
        if sem.available_permits() > max || Arc::strong_count(sem) == 1 {
            *sem = Arc::new(Semaphore::new(max));
        }
        sem.clone()
    }

    /// The counters of a tenant.
    pub fn stats(&self, database: &str, tenant: &str) -> Arc<TenantStats> {
        let key = (database.to_owned(), tenant.to_owned());
        let mut stats = self.stats.lock();
        if let Some(s) = stats.get(&key) {
            return s.clone();
        }
        let s = Arc::new(TenantStats::default());
        stats.put(key, s.clone());
        s
    }

    /// The counters of every tenant with statistics (at most [`STATS_ENTRIES`]), busiest (most
    /// statements) first, without the directory state: what the Prometheus metrics read.
    /// `max` gives a database's connection cap.
    pub fn counters(&self, max: &dyn Fn(&str) -> usize) -> Vec<TenantStatsRow> {
        let limits = self.limits.lock();
        let mut rows: Vec<TenantStatsRow> = self
            .stats
            .lock()
            .iter()
            .map(|((db, tenant), s)| {
                let key = (db.clone(), tenant.clone());
                let cap = max(db);
                TenantStatsRow {
                    database: db.clone(),
                    tenant: tenant.clone(),
                    transactions: s.transactions.load(Ordering::Relaxed),
                    statements: s.statements.load(Ordering::Relaxed),
                    errors: s.errors.load(Ordering::Relaxed),
                    server_micros: s.server_micros.load(Ordering::Relaxed),
                    connections: limits
                        .get(&key)
                        .map_or(0, |sem| cap.saturating_sub(sem.available_permits())),
                    state: None,
                }
            })
            .collect();
        drop(limits);
        rows.sort_by(|a, b| {
            b.statements
                .cmp(&a.statements)
                .then_with(|| a.database.cmp(&b.database))
                .then_with(|| a.tenant.cmp(&b.tenant))
        });
        rows
    }

    /// SHOW TENANTS: [`Tenancy::counters`] with each tenant's directory state as cached.
    pub fn show(&self, max: &dyn Fn(&str) -> usize) -> Vec<TenantStatsRow> {
        let cached = self.directory.cached();
        let states: HashMap<(&str, &str), &'static str> = cached
            .iter()
            .map(|t| ((t.database.as_str(), t.name.as_str()), t.state.as_str()))
            .collect();
        let mut rows = self.counters(max);
        for r in &mut rows {
            r.state = states
                .get(&(r.database.as_str(), r.tenant.as_str()))
                .copied();
        }
        rows
    }
}
