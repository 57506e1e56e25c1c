//! [`ShardRouter`]: one database topology plus a bounded LRU cache of [`ShardPlan`]s keyed by
//! the exact SQL text, so a repeated text costs one hash and a lock, and only the bind-dependent
//! step ([`ShardPlan::route`]) runs per execution.

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;
use pgfleet_catalog::DatabaseTopology;

use super::error::ShardRouteError;
use super::params::{BindParams, ShardSettings};
use super::plan::{plan, ShardPlan};
use super::route::ShardRoute;
use crate::cache::MAX_CACHED_TEXT;

/// A cached plan, or the parse error of its text.
pub type CachedPlan = Arc<Result<ShardPlan, ShardRouteError>>;

/// Routes statements of one database. Plans depend on the topology, so a router belongs to one
/// catalog snapshot: build a new one (with an empty cache) when the config is reloaded.
/// Share it across threads.
pub struct ShardRouter {
    topology: DatabaseTopology,
    /// `None` when created with capacity 0.
    cache: Option<Mutex<LruCache<Box<str>, CachedPlan>>>,
}

impl ShardRouter {
    /// A router for `topology` caching up to `capacity` texts (0 disables the cache).
    pub fn new(topology: DatabaseTopology, capacity: usize) -> ShardRouter {
        ShardRouter {
            topology,
            cache: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
        }
    }

    /// The topology this router routes for.
    pub fn topology(&self) -> &DatabaseTopology {
        &self.topology
    }

    /// The plan of `sql`, cached by exact text (texts over `MAX_CACHED_TEXT` bytes are planned
    /// every time). The lock is not held while parsing.
    pub fn plan(&self, sql: &str) -> CachedPlan {
        let cache = match &self.cache {
            Some(cache) if sql.len() <= MAX_CACHED_TEXT => cache,
            _ => return Arc::new(plan(sql, &self.topology)),
        };
        if let Some(hit) = cache.lock().get(sql) {
            return Arc::clone(hit);
        }
        let planned = Arc::new(plan(sql, &self.topology));
        cache.lock().put(sql.into(), Arc::clone(&planned));
        planned
    }

    /// [`ShardRouter::plan`] then [`ShardPlan::route`].
    pub fn route(
        &self,
        sql: &str,
        params: BindParams<'_>,
        settings: &ShardSettings,
    ) -> Result<ShardRoute, ShardRouteError> {
        match self.plan(sql).as_ref() {
            Ok(p) => p.route(&self.topology, params, settings),
            Err(e) => Err(e.clone()),
        }
    }

    /// Number of cached texts.
    pub fn cache_len(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.lock().len())
    }
}

impl std::fmt::Debug for ShardRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardRouter")
            .field("database", &self.topology.name())
            .field("cache_len", &self.cache_len())
            .finish()
    }
}
