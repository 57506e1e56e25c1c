//! Routing an INSERT into a sharded table: each row's shard, the tables it reads, `ON CONFLICT
//! DO UPDATE` of the key, and — when the rows belong to several shards — the per-shard texts.

use std::collections::BTreeSet;

use super::error::ShardRouteError;
use super::insert::{InsertPlan, NewKey, Rows};
use super::plan::Query;
use super::resolve::{tables_text, Eval, Set};
use super::route::{InsertPart, InsertSplit, ShardRoute};
use super::scope::Place;

impl Eval<'_> {
    pub(super) fn insert(
        &self,
        q: &Query,
        i: &InsertPlan,
        sets: &[Set],
        sql: &str,
        default: usize,
        has_default: bool,
    ) -> Result<ShardRoute, ShardRouteError> {
        let refuse = |reason: String| ShardRouteError::InsertKey {
            table: i.table.clone(),
            reason,
        };
        let mut row_shards = Vec::new();
        match &i.rows {
            Rows::Values { keys, .. } => {
                for k in keys {
                    row_shards.push(self.key_shard(&i.table, k)?);
                }
            }
            Rows::SelectConstant(src) => row_shards.push(self.key_shard(&i.table, src)?),
            Rows::SelectKeyOf(mention) => {
                let class = q.classes.iter().position(|c| c.members.contains(mention));
                let set = class.and_then(|c| sets.get(c));
                match set {
                    Some(Set::Some(s)) if s.len() == 1 => row_shards.extend(s.iter()),
                    // The SELECT matches no row anywhere: nothing is inserted.
                    Some(Set::Some(s)) if s.is_empty() => row_shards.push(default),
                    _ => {
                        return Err(refuse(format!(
                            "INSERT … SELECT must read rows of one shard: restrict `{}` in the SELECT to values of one shard",
                            self.map(&q.mentions[*mention].name)?.key()
                        )))
                    }
                }
            }
            Rows::Unknown(reason) => {
                return Err(refuse(format!(
                    "INSERT … SELECT: {reason}, so the rows' shards cannot be known"
                )))
            }
        }
        let distinct: BTreeSet<usize> = row_shards.iter().copied().collect();
        // Tables the INSERT reads (subqueries, the SELECT) must be answerable where it runs.
        let single = (distinct.len() == 1).then(|| distinct.iter().next().copied().unwrap_or(0));
        for set in sets {
            let fits = match (set, single) {
                (Set::Some(s), Some(t)) => s.iter().all(|x| x == t),
                (Set::Some(s), None) => s.is_empty(),
                (Set::All, _) => false,
            };
            if !fits {
                return Err(ShardRouteError::CrossShard {
                    construct: format!(
                        "an INSERT into `{}` that reads sharded tables on other shards than its rows",
                        i.table
                    ),
                    tables: tables_text(
                        &q.mentions
                            .iter()
                            .filter(|m| m.place == Place::Sharded)
                            .map(|m| m.name.clone())
                            .collect::<Vec<_>>(),
                    ),
                });
            }
        }
        if has_default && single != Some(default) {
            return Err(ShardRouteError::CrossShard {
                construct: format!(
                    "an INSERT into `{}` whose rows are not on the default shard, reading tables that live only there",
                    i.table
                ),
                tables: tables_text(
                    &q.mentions
                        .iter()
                        .filter(|m| matches!(m.place, Place::Default | Place::Sharded))
                        .map(|m| m.name.clone())
                        .collect::<Vec<_>>(),
                ),
            });
        }
        match &i.conflict_key {
            None | Some(NewKey::Same) => {}
            Some(NewKey::Unknown) => {
                return Err(ShardRouteError::ShardKeyUpdate {
                    table: i.table.clone(),
                    column: i.column.clone(),
                    detail: "in ON CONFLICT DO UPDATE to a value pgfleet cannot know".to_string(),
                })
            }
            Some(NewKey::Value(src)) => {
                let to = self.key_shard(&i.table, src)?;
                if distinct.iter().any(|s| *s != to) {
                    return Err(ShardRouteError::ShardKeyUpdate {
                        table: i.table.clone(),
                        column: i.column.clone(),
                        detail: format!(
                            "in ON CONFLICT DO UPDATE to a value on shard {to} for rows inserted on other shards"
                        ),
                    });
                }
            }
        }
        if let Some(t) = single {
            return Ok(ShardRoute::Single(t));
        }
        let Rows::Values {
            spans: Some(spans), ..
        } = &i.rows
        else {
            return Err(refuse("its rows belong to several shards".to_string()));
        };
        let spans = spans.as_ref().map_err(|e| ShardRouteError::Unsupported {
            what: format!("splitting the rows of this INSERT form by shard ({e})"),
            tables: format!("sharded table `{}`", i.table),
        })?;
        let parts = distinct
            .iter()
            .map(|shard| {
                let rows: Vec<usize> = row_shards
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| *s == shard)
                    .map(|(r, _)| r)
                    .collect();
                let (sql, params) = spans.rewrite(sql, &rows);
                InsertPart {
                    shard: *shard,
                    rows,
                    sql,
                    params,
                }
            })
            .collect();
        Ok(ShardRoute::Split(InsertSplit { parts }))
    }
}
