//! [`Analyzer`]: prefilter, then a bounded LRU cache of analyses keyed by the exact query text.

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use crate::analyze::analyze_uncached;
use crate::effect::Analysis;
use crate::prefilter::may_affect_session;

/// Texts longer than this are analyzed every time instead of cached, so the cache's memory
/// stays bounded by `capacity × MAX_CACHED_TEXT` (large literal INSERTs would evict everything).
pub const MAX_CACHED_TEXT: usize = 16 * 1024;

/// Analyzer with a bounded LRU cache keyed by the exact query text; share it across threads.
pub struct Analyzer {
    /// `None` when created with capacity 0 (no caching).
    cache: Option<Mutex<LruCache<Box<str>, Arc<Analysis>>>>,
    /// Returned for every text the prefilter rules out, so those cost no allocation.
    empty: Arc<Analysis>,
}

impl Analyzer {
    /// An analyzer caching up to `cache_capacity` texts (0 disables the cache).
    pub fn new(cache_capacity: usize) -> Analyzer {
        Analyzer {
            cache: NonZeroUsize::new(cache_capacity).map(|c| Mutex::new(LruCache::new(c))),
            empty: Arc::new(Analysis::default()),
        }
    }

    /// Prefilter first (no parse; returns a shared empty [`Analysis`] when it rules the text
    /// out, so `Transaction` effects are only reported for texts that pass it), then a cached
    /// parse. The lock is not held while parsing: two threads may parse the same new text once
    /// each; the second insert wins, both results are equal.
    pub fn analyze(&self, sql: &str) -> Arc<Analysis> {
        if !may_affect_session(sql) {
            return Arc::clone(&self.empty);
        }
        let cache = match &self.cache {
            Some(cache) if sql.len() <= MAX_CACHED_TEXT => cache,
            _ => return Arc::new(analyze_uncached(sql)),
        };
        if let Some(hit) = cache.lock().get(sql) {
            return Arc::clone(hit);
        }
        let analysis = Arc::new(analyze_uncached(sql));
        cache.lock().put(sql.into(), Arc::clone(&analysis));
        analysis
    }

    /// Number of cached texts.
    pub fn cache_len(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.lock().len())
    }
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("cache_len", &self.cache_len())
            .finish()
    }
}
