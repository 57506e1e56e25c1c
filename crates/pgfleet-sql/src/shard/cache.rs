//! [`ShardRouter`]: one database topology plus a bounded LRU cache of [`ShardPlan`]s keyed by
//! the exact SQL text, so a repeated text costs one hash and a lock, and only the bind-dependent
//! step ([`ShardPlan::route`]) runs per execution.

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;
use pgfleet_catalog::{DatabaseTopology, TableLocation, ValueFormat};
use smallvec::SmallVec;

use super::error::ShardRouteError;
use super::kind::{cross_shard_kind, CrossShardKind};
use crate::merge_plan::{plan_select, MergePlanError, ShardQuery};

use super::params::{BindParams, Param, ShardSettings};
use super::plan::{plan, ShardPlan};
use super::route::ShardRoute;
use crate::cache::MAX_CACHED_TEXT;
use crate::literals::{normalize, LiteralValues, INLINE_LITERALS};

/// A cached plan, or the parse error of its text.
pub type CachedPlan = Arc<Result<ShardPlan, ShardRouteError>>;

/// Routes statements of one database. Plans depend on the topology, so a router belongs to one
/// catalog snapshot: build a new one (with an empty cache) when the config is reloaded.
/// Share it across threads.
pub struct ShardRouter {
    topology: DatabaseTopology,
    /// `None` when created with capacity 0.
    cache: Option<Mutex<LruCache<Box<str>, CachedPlan>>>,
    /// How texts run across shards, by exact text; `None` when created with capacity 0.
    cross: Option<Mutex<LruCache<Box<str>, Arc<CrossShardPlan>>>>,
}

impl ShardRouter {
    /// A router for `topology` caching up to `capacity` texts (0 disables the cache).
    pub fn new(topology: DatabaseTopology, capacity: usize) -> ShardRouter {
        ShardRouter {
            topology,
            cache: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
            cross: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
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

    /// The plan a statement text routes by: when the text has literals ([`normalize`]), the
    /// plan of the text with parameters in their place, shared by every text that differs only
    /// in literals (`… WHERE id = 42` and `… = 43` cost one parse between them), with this
    /// text's literal values; else (or when that text does not parse) the exact text's plan.
    pub fn plan_text<'a>(&self, sql: &'a str) -> TextPlan<'a> {
        // A `$` means parameters or dollar quotes, where the literal scan gives up (or, rarely, an
        // identifier with a `$`, then planned as written): a prepared statement's text skips it.
        if sql.contains('$') {
            return self.plan_exact(sql);
        }
        if let Some(n) = normalize(sql) {
            let plan = self.plan(&n.key);
            if plan.is_ok() {
                return TextPlan {
                    sql,
                    plan,
                    literals: Some(n.values),
                };
            }
        }
        self.plan_exact(sql)
    }

    /// The plan of the exact text (no sharing across literals).
    fn plan_exact<'a>(&self, sql: &'a str) -> TextPlan<'a> {
        TextPlan {
            sql,
            plan: self.plan(sql),
            literals: None,
        }
    }

    /// Where `text` goes. A plan shared across literals routes with the literals as text
    /// parameters (`params` are not used: such a text has none of its own); a route that needs
    /// the text itself (a split INSERT's per-shard texts), or that fails, is computed from the
    /// exact text instead, so the answer is always the exact text's.
    pub fn route_text(
        &self,
        text: &TextPlan<'_>,
        params: BindParams<'_>,
        settings: &ShardSettings,
    ) -> Result<ShardRoute, ShardRouteError> {
        let plan = text.plan().map_err(Clone::clone)?;
        let Some(literals) = &text.literals else {
            return plan.route(&self.topology, params, settings);
        };
        let bound: SmallVec<[Param<'_>; INLINE_LITERALS]> = literals
            .iter()
            .map(|v| Param::Value {
                format: ValueFormat::Text,
                bytes: v.as_bytes(),
            })
            .collect();
        match plan.route(&self.topology, BindParams::Bound(&bound), settings) {
            Ok(r) if !matches!(r, ShardRoute::Split(_) | ShardRoute::AtBind(_)) => Ok(r),
            _ => match self.plan(text.sql).as_ref() {
                Ok(p) => p.route(&self.topology, params, settings),
                Err(e) => Err(e.clone()),
            },
        }
    }

    /// How `sql` (one statement that needs several shards) runs across them, and for a SELECT
    /// its merge plan, cached by exact text (a repeated text, such as a prepared statement's,
    /// costs no parse).
    pub fn cross_plan(&self, sql: &str) -> Arc<CrossShardPlan> {
        let cache = match &self.cross {
            Some(cache) if sql.len() <= MAX_CACHED_TEXT => cache,
            _ => return Arc::new(self.cross_plan_uncached(sql)),
        };
        if let Some(hit) = cache.lock().get(sql) {
            return Arc::clone(hit);
        }
        let planned = Arc::new(self.cross_plan_uncached(sql));
        cache.lock().put(sql.into(), Arc::clone(&planned));
        planned
    }

    fn cross_plan_uncached(&self, sql: &str) -> CrossShardPlan {
        let kind = cross_shard_kind(sql);
        let select = (kind == CrossShardKind::Read).then(|| {
            let reference = |_: Option<&str>, table: &str| {
                matches!(
                    self.topology.table_location(table),
                    TableLocation::Reference
                )
            };
            plan_select(sql, &reference)
        });
        CrossShardPlan { kind, select }
    }

    /// [`ShardRouter::plan_text`] then [`ShardRouter::route_text`].
    pub fn route(
        &self,
        sql: &str,
        params: BindParams<'_>,
        settings: &ShardSettings,
    ) -> Result<ShardRoute, ShardRouteError> {
        self.route_text(&self.plan_text(sql), params, settings)
    }

    /// Number of cached texts.
    pub fn cache_len(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.lock().len())
    }
}

/// How one statement runs across shards ([`ShardRouter::cross_plan`]).
#[derive(Debug)]
pub struct CrossShardPlan {
    /// Its kind.
    pub kind: CrossShardKind,
    /// For [`CrossShardKind::Read`]: the per-shard SQL and merge plan, or why it cannot be merged.
    pub select: Option<Result<ShardQuery, MergePlanError>>,
}

/// The plan of one statement text ([`ShardRouter::plan_text`]).
pub struct TextPlan<'a> {
    sql: &'a str,
    plan: CachedPlan,
    /// The text's literal values when `plan` is the plan of the text with placeholders.
    literals: Option<LiteralValues<'a>>,
}

impl TextPlan<'_> {
    /// The plan, or the error of planning the text. Everything a plan says besides its route
    /// (statement count, tables named, transaction control) is the same for every literal.
    pub fn plan(&self) -> Result<&ShardPlan, &ShardRouteError> {
        self.plan.as_ref().as_ref()
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
