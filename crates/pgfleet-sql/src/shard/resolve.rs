//! [`ShardPlan::route`]: a plan plus bind values and session settings → [`ShardRoute`].
//!
//! Key values become shard sets: `Any` is every shard, an atom the union of its values' shards,
//! AND intersects, OR unites. A value that no shard holds (outside every range, NULL under
//! range sharding) restricts to no shard in WHERE — no row can match — and is an error for an
//! inserted row, as PostgreSQL refuses a row that fits no partition.

use pgfleet_catalog::{parse_key, CatalogError, DatabaseTopology, ShardMap, ValueFormat};
use smallvec::SmallVec;

use super::array::{parse_binary_array, parse_text_array};
use super::error::ShardRouteError;
use super::insert::NewKey;
use super::keys::{Pred, Src};
use super::params::{BindParams, Param, ShardSettings};
use super::placement::{default_route, placement};
use super::plan::{Class, Query, ShardPlan, Stmt, Write};
use super::route::{ReferenceAccess, ShardRoute};
use super::scope::Place;
use super::shard_set::ShardSet;

/// Shards a restriction allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Set {
    All,
    Some(ShardSet),
}

impl Set {
    fn and(self, other: Set) -> Set {
        match (self, other) {
            (Set::All, s) | (s, Set::All) => s,
            (Set::Some(a), Set::Some(b)) => Set::Some(a.intersection(&b)),
        }
    }
    fn or(self, other: Set) -> Set {
        match (self, other) {
            (Set::All, _) | (_, Set::All) => Set::All,
            (Set::Some(a), b) if a.is_empty() => b,
            (Set::Some(mut a), Set::Some(b)) => {
                a.union_with(b);
                Set::Some(a)
            }
        }
    }
}

impl ShardPlan {
    /// Routes the planned text with these bind values and session settings.
    ///
    /// Order of precedence: a `shard=N` comment hint, a `shard_key=V` hint, the session's
    /// `pgfleet.shard`, its `pgfleet.shard_key` (only for statements naming a sharded table),
    /// then the analysis. A refused statement is refused unless one of those picks a shard.
    pub fn route(
        &self,
        db: &DatabaseTopology,
        params: BindParams<'_>,
        settings: &ShardSettings,
    ) -> Result<ShardRoute, ShardRouteError> {
        if let Some(shard) = self.forced_shard(db, settings)? {
            return Ok(ShardRoute::Single(shard));
        }
        for s in &self.statements {
            if let Stmt::Refused(e) = s {
                return Err(e.clone());
            }
        }
        let bound: &[Param<'_>] = match params {
            BindParams::Unknown if !self.params.is_empty() => {
                return Ok(ShardRoute::AtBind(self.params.clone()))
            }
            BindParams::Unknown => &[],
            BindParams::Bound(p) => p,
        };
        let eval = Eval { db, params: bound };
        let mut routes: SmallVec<[ShardRoute; 1]> = SmallVec::new();
        for s in &self.statements {
            match s {
                Stmt::Neutral | Stmt::Refused(_) => {}
                Stmt::Fixed(r) => routes.push(r.clone()),
                Stmt::Query(q) => routes.push(eval.query(q, &self.sql)?),
            }
        }
        let many = self.statements.len() > 1;
        if many && routes.iter().any(|r| matches!(r, ShardRoute::Split(_))) {
            return Err(ShardRouteError::Unsupported {
                what: "a multi-row INSERT whose rows go to several shards, in a text with other statements".to_string(),
                tables: tables_text(&self.sharded_tables),
            });
        }
        let mut routes = routes.into_iter();
        let Some(mut acc) = routes.next() else {
            return Ok(default_route(db));
        };
        for r in routes {
            acc = match (acc, r) {
                (a, b) if a == b => a,
                (ShardRoute::Reference(ReferenceAccess::Read), b) if on_shards(&b) => b,
                (a, ShardRoute::Reference(ReferenceAccess::Read)) if on_shards(&a) => a,
                _ => {
                    return Err(ShardRouteError::CrossShard {
                        construct: "a query text whose statements go to different places (send them separately)".to_string(),
                        tables: tables_text(&self.sharded_tables),
                    })
                }
            };
        }
        Ok(acc)
    }

    /// The shard a hint or setting picks, if any.
    fn forced_shard(
        &self,
        db: &DatabaseTopology,
        settings: &ShardSettings,
    ) -> Result<Option<usize>, ShardRouteError> {
        if let Some(n) = self.hint_shard {
            return check_shard(db, n, "hint shard").map(Some);
        }
        if let Some(key) = &self.hint_key {
            return self.key_shard(db, key, "hint shard_key").map(Some);
        }
        if let Some(text) = &settings.shard {
            let n = text
                .trim()
                .parse::<usize>()
                .map_err(|_| ShardRouteError::BadShardChoice {
                    source_name: "setting pgfleet.shard",
                    reason: format!("`{text}` is not a shard number"),
                })?;
            return check_shard(db, n, "setting pgfleet.shard").map(Some);
        }
        match &settings.shard_key {
            // A session key only steers statements on sharded tables; others route as usual.
            Some(key) if !self.sharded_tables.is_empty() => self
                .key_shard(db, key, "setting pgfleet.shard_key")
                .map(Some),
            _ => Ok(None),
        }
    }

    /// The shard of `key` for every sharded table the text names; they must agree.
    fn key_shard(
        &self,
        db: &DatabaseTopology,
        key: &str,
        source_name: &'static str,
    ) -> Result<usize, ShardRouteError> {
        if db.shards().is_none() {
            return Err(not_sharded(db, source_name));
        }
        let mut found: Option<(usize, String)> = None;
        for table in &self.sharded_tables {
            let t = db
                .sharded_table(table)
                .map_err(|e| ShardRouteError::NoShard(e.to_string()))?;
            let shard = t
                .map()
                .shard_for_wire(ValueFormat::Text, key.as_bytes())
                .map_err(|e| ShardRouteError::BadShardChoice {
                    source_name,
                    reason: e.to_string(),
                })?;
            match &found {
                Some((s, other)) if *s != shard => {
                    return Err(ShardRouteError::BadShardChoice {
                        source_name,
                        reason: format!(
                        "key `{key}` is on shard {s} for `{other}` but on shard {shard} for `{}`",
                        t.map().key()
                    ),
                    })
                }
                Some(_) => {}
                None => found = Some((shard, t.map().key().to_string())),
            }
        }
        found
            .map(|(s, _)| s)
            .ok_or_else(|| ShardRouteError::BadShardChoice {
                source_name,
                reason: "the statement names no sharded table whose shard key it could be"
                    .to_string(),
            })
    }
}

fn on_shards(r: &ShardRoute) -> bool {
    matches!(
        r,
        ShardRoute::Single(_)
            | ShardRoute::Several(_)
            | ShardRoute::All
            | ShardRoute::Reference(_)
            | ShardRoute::Split(_)
    )
}

fn not_sharded(db: &DatabaseTopology, source_name: &'static str) -> ShardRouteError {
    ShardRouteError::BadShardChoice {
        source_name,
        reason: format!("database `{}` is not sharded", db.name()),
    }
}

fn check_shard(
    db: &DatabaseTopology,
    n: usize,
    source_name: &'static str,
) -> Result<usize, ShardRouteError> {
    let count = db
        .shards()
        .map(|s| s.clusters().len())
        .ok_or_else(|| not_sharded(db, source_name))?;
    if n < count {
        Ok(n)
    } else {
        Err(ShardRouteError::BadShardChoice {
            source_name,
            reason: format!(
                "shard {n} does not exist: database `{}` has {count} shards (0 to {})",
                db.name(),
                count.saturating_sub(1)
            ),
        })
    }
}

pub(super) fn tables_text(names: &[String]) -> String {
    let mut names: Vec<&String> = names.iter().collect();
    names.sort();
    names.dedup();
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Evaluates key restrictions against the catalog and the bind values.
pub(super) struct Eval<'a> {
    db: &'a DatabaseTopology,
    params: &'a [Param<'a>],
}

impl Eval<'_> {
    pub(super) fn map(&self, table: &str) -> Result<&ShardMap, ShardRouteError> {
        self.db
            .sharded_table(table)
            .map(|t| t.map())
            .map_err(|e| ShardRouteError::NoShard(e.to_string()))
    }

    fn param(&self, n: u32) -> Result<Param<'_>, ShardRouteError> {
        let missing = ShardRouteError::MissingParameter {
            number: n,
            supplied: self.params.len(),
        };
        let i = usize::try_from(n).ok().and_then(|n| n.checked_sub(1));
        i.and_then(|i| self.params.get(i).copied()).ok_or(missing)
    }

    /// The shard of one value; `Ok(None)` when no shard holds it (an error for an inserted row).
    fn shard(
        map: &ShardMap,
        r: Result<usize, CatalogError>,
        insert: bool,
    ) -> Result<Option<usize>, ShardRouteError> {
        match r {
            Ok(s) => Ok(Some(s)),
            Err(CatalogError::NoShard { .. }) if !insert => Ok(None),
            Err(e) => Err(ShardRouteError::from_catalog(map.key(), e)),
        }
    }

    /// Shards of the values of `src` for `table`'s key. `insert`: a NULL is a NULL key (placed
    /// where PostgreSQL places it) rather than a comparison that matches nothing.
    fn src(&self, table: &str, src: &Src, insert: bool) -> Result<Set, ShardRouteError> {
        let map = self.map(table)?;
        let mut out = ShardSet::default();
        let mut add = |r: Result<usize, CatalogError>| -> Result<(), ShardRouteError> {
            out.extend(Self::shard(map, r, insert)?);
            Ok(())
        };
        let invalid = |e: pgfleet_catalog::InvalidKeyValue| ShardRouteError::InvalidKey {
            key: map.key().to_string(),
            reason: e.to_string(),
        };
        match src {
            Src::Value(v) => add(map.shard_for(v))?,
            Src::NullKey => add(map.shard_for_null())?,
            Src::Param(n) => match self.param(*n)? {
                Param::Null if insert => add(map.shard_for_null())?,
                Param::Null => {}
                Param::Value { format, bytes } => {
                    let v = parse_key(map.key_type(), format, bytes).map_err(invalid)?;
                    add(map.shard_for(&v))?;
                }
            },
            Src::ArrayParam(n) => match self.param(*n)? {
                Param::Null => {}
                Param::Value {
                    format: ValueFormat::Text,
                    bytes,
                } => {
                    let text =
                        std::str::from_utf8(bytes).map_err(|_| ShardRouteError::InvalidKey {
                            key: map.key().to_string(),
                            reason: format!("array parameter ${n} is not valid UTF-8"),
                        })?;
                    let elements =
                        parse_text_array(text).map_err(|e| ShardRouteError::InvalidKey {
                            key: map.key().to_string(),
                            reason: format!("malformed array parameter ${n}: {e}"),
                        })?;
                    for e in elements.into_iter().flatten() {
                        let v = parse_key(map.key_type(), ValueFormat::Text, e.as_bytes())
                            .map_err(invalid)?;
                        add(map.shard_for(&v))?;
                    }
                }
                Param::Value {
                    format: ValueFormat::Binary,
                    bytes,
                } => {
                    let elements =
                        parse_binary_array(bytes).map_err(|e| ShardRouteError::InvalidKey {
                            key: map.key().to_string(),
                            reason: format!("malformed binary array parameter ${n}: {e}"),
                        })?;
                    for e in elements.into_iter().flatten() {
                        let v =
                            parse_key(map.key_type(), ValueFormat::Binary, e).map_err(invalid)?;
                        add(map.shard_for(&v))?;
                    }
                }
            },
        }
        Ok(Set::Some(out))
    }

    fn pred(&self, q: &Query, p: &Pred) -> Result<Set, ShardRouteError> {
        match p {
            Pred::Any => Ok(Set::All),
            Pred::Atom(a) => {
                let table = &q.mentions[a.table].name;
                let mut set = Set::Some(ShardSet::default());
                for s in &a.srcs {
                    set = set.or(self.src(table, s, false)?);
                }
                Ok(set)
            }
            Pred::And(ps) => ps
                .iter()
                .try_fold(Set::All, |acc, p| Ok(acc.and(self.pred(q, p)?))),
            Pred::Or(ps) => ps
                .iter()
                .try_fold(Set::Some(ShardSet::default()), |acc, p| {
                    Ok(acc.or(self.pred(q, p)?))
                }),
        }
    }

    /// The one shard of an inserted or new key.
    pub(super) fn key_shard(&self, table: &str, src: &Src) -> Result<usize, ShardRouteError> {
        match self.src(table, src, true)? {
            Set::Some(s) if s.len() == 1 => Ok(s.iter().next().unwrap_or(0)),
            // `insert` makes a value without a shard an error, so exactly one shard is left.
            _ => Err(ShardRouteError::NoShard(format!(
                "{}: no single shard for the key",
                self.map(table)?.key()
            ))),
        }
    }

    fn query(&self, q: &Query, sql: &str) -> Result<ShardRoute, ShardRouteError> {
        if let Some(route) = placement(&q.mentions, self.db)? {
            return Ok(route);
        }
        let default = match default_route(self.db) {
            ShardRoute::Single(d) => d,
            _ => 0,
        };
        let sets: SmallVec<[Set; 2]> = q
            .classes
            .iter()
            .map(|c| self.pred(q, &c.pred))
            .collect::<Result<_, _>>()?;
        let names = |pick: &dyn Fn(&Place) -> bool| -> String {
            let list: Vec<String> = q
                .mentions
                .iter()
                .filter(|m| pick(&m.place))
                .map(|m| m.name.clone())
                .collect();
            tables_text(&list)
        };
        // Only an error names them: built when one is returned.
        let sharded_names = || names(&|p| *p == Place::Sharded);
        let has_default = q.mentions.iter().any(|m| m.place == Place::Default);
        let has_reference = q.mentions.iter().any(|m| m.place == Place::Reference);
        let cross = |construct: &str, tables: String| ShardRouteError::CrossShard {
            construct: construct.to_string(),
            tables,
        };
        if let Write::Insert(i) = &q.write {
            return self.insert(q, i, &sets, sql, default, has_default);
        }
        if let Write::Reference(name) = &q.write {
            if !q.classes.is_empty() || has_default {
                return Err(cross(
                    &format!("a write to reference table `{name}` that reads sharded or default-shard tables"),
                    names(&|p| matches!(p, Place::Sharded | Place::Default | Place::Reference)),
                ));
            }
            return Ok(ShardRoute::Reference(ReferenceAccess::Write));
        }
        let part = combine_classes(&q.classes, &sets).ok_or_else(|| {
            cross(
                if q.classes.iter().any(|c| c.nested) {
                    "a subquery, CTE or set operation over sharded tables that is not restricted to one shard"
                } else {
                    "a join of sharded tables that is not on equal shard keys"
                },
                sharded_names(),
            )
        })?;
        // Tables that live only on the default shard: everything must happen there.
        let part = if has_default {
            match &part {
                None => {}
                Some(Set::Some(s)) if s.iter().all(|x| x == default) => {}
                Some(_) => {
                    return Err(cross(
                        "a statement over sharded tables and tables that live only on the default shard",
                        names(&|p| matches!(p, Place::Sharded | Place::Default)),
                    ))
                }
            }
            Some(Set::Some(ShardSet::one(default)))
        } else {
            part
        };
        let route = match &q.write {
            Write::Sharded { target, new_key } => {
                if let Some(k) = new_key {
                    self.check_new_key(q, *target, k, &part)?;
                }
                set_route(part.unwrap_or(Set::All), default)
            }
            Write::Default(_) | Write::Read | Write::Insert(_) | Write::Reference(_) => {
                match part {
                    Some(set) => set_route(set, default),
                    None if has_reference => ShardRoute::Reference(ReferenceAccess::Read),
                    None => ShardRoute::Single(default),
                }
            }
        };
        if let Some(construct) = q.single_only {
            if matches!(route, ShardRoute::All | ShardRoute::Several(_)) {
                return Err(cross(construct, sharded_names()));
            }
        }
        Ok(route)
    }

    fn check_new_key(
        &self,
        q: &Query,
        target: usize,
        new_key: &NewKey,
        part: &Option<Set>,
    ) -> Result<(), ShardRouteError> {
        let table = &q.mentions[target].name;
        let column = self
            .db
            .sharded_table(table)
            .map(|t| t.column().to_string())
            .unwrap_or_default();
        let refuse = |detail: String| ShardRouteError::ShardKeyUpdate {
            table: table.clone(),
            column: column.clone(),
            detail,
        };
        match new_key {
            NewKey::Same => Ok(()),
            NewKey::Unknown => Err(refuse(
                "to a value pgfleet cannot know before the server computes it".to_string(),
            )),
            NewKey::Value(src) => {
                let to = self.key_shard(table, src)?;
                match part {
                    Some(Set::Some(s)) if s.iter().all(|x| x == to) => Ok(()),
                    Some(Set::Some(s)) => Err(refuse(format!(
                        "to a value on shard {to} for rows on shard(s) {}",
                        s.iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                    _ => Err(refuse(format!(
                        "to a value on shard {to} for rows that may be on any shard"
                    ))),
                }
            }
        }
    }
}

/// The shards of the statement's sharded tables: one class at the statement's own level
/// routes by its keys; anything more (non-co-located joins, sharded tables in subqueries) is
/// only answerable when every class is on the same single shard. `None` inside: no sharded
/// table. Outer `None`: not answerable.
fn combine_classes(classes: &[Class], sets: &[Set]) -> Option<Option<Set>> {
    match (classes, sets) {
        ([], _) => Some(None),
        ([c], [s]) if !c.nested => Some(Some(s.clone())),
        _ => {
            let mut one: Option<usize> = None;
            for s in sets {
                match s {
                    Set::All => return None,
                    Set::Some(s) if s.len() > 1 => return None,
                    Set::Some(s) => {
                        if let Some(x) = s.iter().next() {
                            if one.is_some_and(|o| o != x) {
                                return None;
                            }
                            one = Some(x);
                        }
                    }
                }
            }
            Some(Some(Set::Some(one.into_iter().collect())))
        }
    }
}

fn set_route(set: Set, default: usize) -> ShardRoute {
    match set {
        Set::All => ShardRoute::All,
        Set::Some(s) => match s.len() {
            // No row can match anywhere: one shard gives the (empty) answer.
            0 => ShardRoute::Single(default),
            1 => ShardRoute::Single(s.iter().next().unwrap_or(default)),
            _ => ShardRoute::Several(s.into_btree()),
        },
    }
}
