//! [`Analyzer`]: prefilter, then a bounded LRU cache of analyses keyed by the exact query text;
//! and a second bounded LRU cache of read/write classifications (every query needs one, so it
//! has no prefilter and its own cache: session analyses must not evict routing decisions).

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use crate::analyze::analyze_uncached;
use crate::classify::{classify_uncached, Classification, WriteReason};
use crate::effect::Analysis;
use crate::literals::normalize;
use crate::prefilter::may_affect_session;

/// Texts longer than this are analyzed every time instead of cached, so the cache's memory
/// stays bounded by `capacity × MAX_CACHED_TEXT` (large literal INSERTs would evict everything).
pub const MAX_CACHED_TEXT: usize = 16 * 1024;

/// Analyzer with a bounded LRU cache keyed by the exact query text; share it across threads.
pub struct Analyzer {
    /// `None` when created with capacity 0 (no caching).
    cache: Option<Mutex<LruCache<Box<str>, Arc<Analysis>>>>,
    /// Classifications by exact text; `None` when created with capacity 0.
    classes: Option<Mutex<LruCache<Box<str>, Arc<Classification>>>>,
    /// Returned for every text the prefilter rules out, so those cost no allocation.
    empty: Arc<Analysis>,
}

impl Analyzer {
    /// An analyzer caching up to `cache_capacity` texts in each of its two caches (session
    /// analyses and classifications; 0 disables both).
    pub fn new(cache_capacity: usize) -> Analyzer {
        Analyzer {
            cache: NonZeroUsize::new(cache_capacity).map(|c| Mutex::new(LruCache::new(c))),
            classes: NonZeroUsize::new(cache_capacity).map(|c| Mutex::new(LruCache::new(c))),
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

    /// The read/write classification of `sql`, cached by exact text. A hit costs one hash of
    /// the text, a short lock and an `Arc` clone; the lock is not held while parsing (two
    /// threads may classify the same new text once each; both results are equal).
    ///
    /// Texts that differ only in literals share one entry ([`crate::literals`]): the
    /// classification is decided on the grammar, never on a literal's value. When the text with
    /// placeholders does not parse (`SET x = 5`), the exact text is classified.
    pub fn classify(&self, sql: &str) -> Arc<Classification> {
        let cache = match &self.classes {
            Some(cache) if sql.len() <= MAX_CACHED_TEXT => cache,
            _ => return Arc::new(classify_uncached(sql)),
        };
        let normalized = normalize(sql);
        let key = normalized.as_ref().map_or(sql, |n| n.key.as_str());
        let cached = cache.lock().get(key).cloned();
        let class = match cached {
            Some(hit) => hit,
            None => {
                let class = Arc::new(classify_uncached(key));
                cache.lock().put(key.into(), Arc::clone(&class));
                class
            }
        };
        if normalized.is_some() && matches!(class.reason, Some(WriteReason::ParseError)) {
            return Arc::new(classify_uncached(sql));
        }
        class
    }

    /// Number of cached classifications.
    pub fn classify_cache_len(&self) -> usize {
        self.classes.as_ref().map_or(0, |c| c.lock().len())
    }
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("cache_len", &self.cache_len())
            .field("classify_cache_len", &self.classify_cache_len())
            .finish()
    }
}
