//! The tenant directory as the proxy sees it: a bounded LRU cache of directory rows, filled from
//! the metadata database on a miss (one connection, reconnected after a failure) and emptied of a
//! tenant when `NOTIFY pgfleet_tenants, '<tenant>'` says its row changed. Nothing is loaded at
//! start, so the directory may hold any number of tenants.
//!
//! Freshness: entries are only cached while the LISTEN connection is up (otherwise every lookup
//! reads the directory), and a lookup that raced with a change notification does not cache what it
//! read. A change is therefore seen by the next transaction after its NOTIFY arrives (well within a
//! second on a healthy network).

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use lru::LruCache;
use parking_lot::Mutex;
use pgfleet_meta::{MetaStore, Tenant, TenantChanges};

use crate::runtime::Runtime;

/// Directory rows cached per process (present and absent tenants alike).
pub const DIRECTORY_CACHE_ENTRIES: usize = 10_000;
/// Longest wait for the metadata database on a lookup.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before the change listener reconnects.
const RELISTEN_DELAY: Duration = Duration::from_millis(500);

/// A cached directory row (`None`: the tenant is not in the directory).
type Cached = Option<Arc<Tenant>>;

/// The proxy's view of the tenant directory.
pub struct Directory {
    cache: Mutex<LruCache<(String, String), Cached>>,
    /// Bumped on every invalidation: a lookup caches its row only if no change arrived meanwhile.
    generation: AtomicU64,
    /// The LISTEN connection is up (cached entries are trustworthy).
    listening: AtomicBool,
    listener_started: AtomicBool,
    store: tokio::sync::Mutex<Option<MetaStore>>,
    /// Directory reads (cache misses), for SHOW TENANTS.
    pub(crate) reads: AtomicU64,
}

impl Default for Directory {
    fn default() -> Self {
        Directory {
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(DIRECTORY_CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN),
            )),
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            listener_started: AtomicBool::new(false),
            store: tokio::sync::Mutex::new(None),
            reads: AtomicU64::new(0),
        }
    }
}

/// Why a lookup failed: the text for the client (no internals beyond the metadata database's
/// own message).
#[derive(Debug, Clone)]
pub struct DirectoryError(pub String);

impl Directory {
    /// The directory row of `tenant` in pgfleet database `database` (`None`: not there). A cached
    /// row costs no round trip.
    pub async fn get(
        &self,
        rt: &Arc<Runtime>,
        database: &str,
        tenant: &str,
    ) -> Result<Cached, DirectoryError> {
        self.start_listener(rt);
        let key = (database.to_owned(), tenant.to_owned());
        if self.listening.load(Ordering::Acquire) {
            if let Some(hit) = self.cache.lock().get(&key) {
                return Ok(hit.clone());
            }
        }
        let generation = self.generation.load(Ordering::Acquire);
        let row = self.read(rt, database, tenant).await?.map(Arc::new);
        if self.listening.load(Ordering::Acquire)
            && self.generation.load(Ordering::Acquire) == generation
        {
            self.cache.lock().put(key, row.clone());
        }
        Ok(row)
    }

    /// Reads one row from the metadata database, connecting first when needed.
    async fn read(
        &self,
        rt: &Runtime,
        database: &str,
        tenant: &str,
    ) -> Result<Option<Tenant>, DirectoryError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let config = rt.config();
        let work = async {
            let mut slot = self.store.lock().await;
            if slot.as_ref().is_none_or(|s| s.client().is_closed()) {
                let store = MetaStore::connect(&config, "pgfleet tenant directory")
                    .await
                    .map_err(|e| DirectoryError(e.to_string()))?;
                *slot = Some(store);
            }
            let Some(store) = slot.as_ref() else {
                return Err(DirectoryError("no metadata database connection".into()));
            };
            match store.tenant(database, tenant).await {
                Ok(row) => Ok(row),
                Err(e) => {
                    *slot = None;
                    Err(DirectoryError(e.to_string()))
                }
            }
        };
        match tokio::time::timeout(LOOKUP_TIMEOUT, work).await {
            Ok(r) => r,
            Err(_) => Err(DirectoryError(format!(
                "the metadata database did not answer within {}s",
                LOOKUP_TIMEOUT.as_secs()
            ))),
        }
    }

    /// While cached rows are trustworthy (the LISTEN connection is up), the count of changes
    /// seen so far: as long as it stays the same, no cached row changed. `None` while not
    /// listening (every lookup reads the directory).
    pub fn unchanged_since(&self) -> Option<u64> {
        let generation = self.generation.load(Ordering::Acquire);
        self.listening.load(Ordering::Acquire).then_some(generation)
    }

    /// Forgets `tenant` in every database (a NOTIFY names only the tenant).
    pub fn invalidate(&self, tenant: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let mut cache = self.cache.lock();
        let stale: Vec<(String, String)> = cache
            .iter()
            .filter(|((_, t), _)| t == tenant)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            cache.pop(&k);
        }
    }

    /// Forgets everything (the listener went away: changes may have been missed).
    fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.lock().clear();
    }

    /// Cached rows, most recently used first (SHOW TENANTS).
    pub fn cached(&self) -> Vec<Arc<Tenant>> {
        self.cache
            .lock()
            .iter()
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    /// Starts the LISTEN task once per process; it lives as long as the runtime.
    fn start_listener(&self, rt: &Arc<Runtime>) {
        if self.listener_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(rt);
        tokio::spawn(listen(weak));
    }
}

/// Keeps a LISTEN connection on the tenant channel open and invalidates changed tenants.
async fn listen(rt: Weak<Runtime>) {
    loop {
        let Some(runtime) = rt.upgrade() else { return };
        if runtime.is_shutting_down() {
            return;
        }
        let config = runtime.config();
        let directory = &runtime.tenancy.directory;
        let changes = match listener(&config).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "tenant directory: cannot listen for changes; not caching tenants");
                drop(runtime);
                tokio::time::sleep(RELISTEN_DELAY * 4).await;
                continue;
            }
        };
        directory.clear();
        directory.listening.store(true, Ordering::Release);
        drop(runtime);
        let mut changes = changes;
        while let Some(name) = changes.next().await {
            let Some(runtime) = rt.upgrade() else { return };
            runtime.tenancy.directory.invalidate(&name);
        }
        let Some(runtime) = rt.upgrade() else { return };
        runtime
            .tenancy
            .directory
            .listening
            .store(false, Ordering::Release);
        runtime.tenancy.directory.clear();
        tracing::warn!("tenant directory: change listener lost its connection; reconnecting");
        drop(runtime);
        tokio::time::sleep(RELISTEN_DELAY).await;
    }
}

async fn listener(config: &pgfleet_config::Config) -> Result<TenantChanges, String> {
    let meta = config
        .metadata
        .as_ref()
        .ok_or_else(|| "no [metadata] in the config".to_owned())?;
    let cluster = config
        .clusters
        .get(&meta.cluster)
        .ok_or_else(|| format!("metadata cluster `{}` is not defined", meta.cluster))?;
    let login = MetaStore::login(meta, "pgfleet tenant changes");
    let (client, endpoint) = pgfleet_meta::find_primary(&meta.cluster, cluster, &login)
        .await
        .map_err(|e| e.to_string())?;
    drop(client);
    TenantChanges::listen(&endpoint, &login)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_change_count_is_offered_only_while_listening_and_moves_with_every_change() {
        let d = Directory::default();
        // No listener: cached rows are not trusted, so nothing may be taken as unchanged.
        assert_eq!(d.unchanged_since(), None);
        d.listening.store(true, Ordering::Release);
        let before = d.unchanged_since().expect("listening");
        assert_eq!(d.unchanged_since(), Some(before));
        // A notification for any tenant, even one this process never cached, is a change.
        d.invalidate("someone-else");
        let after = d.unchanged_since().expect("listening");
        assert_ne!(after, before);
        // The listener going away: every count seen before is stale.
        d.listening.store(false, Ordering::Release);
        d.clear();
        assert_eq!(d.unchanged_since(), None);
        d.listening.store(true, Ordering::Release);
        assert!(!matches!(d.unchanged_since(), Some(g) if g == after || g == before));
    }
}
