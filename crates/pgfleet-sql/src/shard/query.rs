//! One query or DML statement: its table mentions, the classes of sharded tables joined on
//! equal shard keys (co-located: their matching rows share a shard), each class's key
//! restriction, and what the statement writes.

use pg_query::protobuf::SelectStmt;
use pg_query::{Node, NodeEnum, NodeRef};

use pgfleet_catalog::{DatabaseTopology, ShardKeyType, TableLocation};

use super::error::ShardRouteError;
use super::insert::{new_key, plan_insert};
use super::keys::{conjuncts, key_equality, pred, Columns, Pred};
use super::placement::place_of;
use super::plan::{Class, Mention, Query, Write};
use super::scope::{collect, Place, TableRef, Tables};

/// Column references of one scope, resolved against its table mentions.
struct ScopeColumns<'t> {
    db: &'t DatabaseTopology,
    refs: &'t [TableRef],
    scope: usize,
    outer_joins: bool,
}

impl Columns for ScopeColumns<'_> {
    fn key_of(&self, fields: &[Node]) -> Option<(usize, ShardKeyType, String)> {
        let names: Option<Vec<&str>> = fields
            .iter()
            .map(|f| match f.node.as_ref() {
                Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
                _ => None,
            })
            .collect();
        let names = names?;
        let (qualifier, col) = match names.as_slice() {
            [col] => (None, *col),
            [t, col] => (Some((None, *t)), *col),
            [s, t, col] | [_, s, t, col] => (Some((Some(*s), *t)), *col),
            _ => return None,
        };
        let in_scope = self
            .refs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.scope == self.scope);
        let found: Vec<usize> = match qualifier {
            // An unqualified name: the one sharded table of the level whose key it is
            // (two candidates would be ambiguous for the server too).
            None => in_scope
                .filter(|(_, r)| {
                    r.place == Place::Sharded
                        && self
                            .db
                            .sharded_table(&r.name)
                            .is_ok_and(|t| t.column() == col)
                })
                .map(|(i, _)| i)
                .collect(),
            Some((schema, table)) => in_scope
                .filter(|(_, r)| r.answers_to(schema, table))
                .map(|(i, _)| i)
                .collect(),
        };
        let [i] = found.as_slice() else {
            return None;
        };
        let t = self.db.sharded_table(&self.refs[*i].name).ok()?;
        (t.column() == col).then(|| (*i, t.map().key_type(), t.map().key().to_string()))
    }

    fn null_test_restricts(&self) -> bool {
        !self.outer_joins
    }
}

/// Union-find over table mentions.
struct Classes(Vec<usize>);

impl Classes {
    fn root(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        self.0[ra.max(rb)] = ra.min(rb);
    }
}

/// Whether equal keys of sharded tables `a` and `b` are on the same shard: same shard function
/// and keys of one family (integers of any width hash and compare alike, as do text and varchar).
fn co_located(db: &DatabaseTopology, a: &str, b: &str) -> bool {
    let (Ok(a), Ok(b)) = (db.sharded_table(a), db.sharded_table(b)) else {
        return false;
    };
    let family = |t: ShardKeyType| match t {
        ShardKeyType::BigInt | ShardKeyType::Integer | ShardKeyType::SmallInt => 0,
        ShardKeyType::Text | ShardKeyType::Varchar => 1,
        ShardKeyType::Uuid => 2,
        ShardKeyType::Date => 3,
        ShardKeyType::Timestamp => 4,
        ShardKeyType::TimestampTz => 5,
    };
    a.map().function() == b.map().function()
        && family(a.map().key_type()) == family(b.map().key_type())
}

/// Analyzes a SELECT, INSERT, UPDATE, DELETE or MERGE.
pub(crate) fn query(
    sql: &str,
    root: NodeRef<'_>,
    db: &DatabaseTopology,
) -> Result<Query, ShardRouteError> {
    let insert_target = match root {
        NodeRef::InsertStmt(i) => i.relation.as_ref(),
        _ => None,
    };
    let skip: Vec<i32> = insert_target.iter().map(|r| r.location).collect();
    let tables = collect(db, root, &skip);
    let Tables { scopes, refs } = &tables;
    let mut mentions: Vec<Mention> = refs
        .iter()
        .map(|r| Mention {
            name: r.name.clone(),
            place: r.place.clone(),
        })
        .collect();
    if let Some(t) = insert_target {
        mentions.push(Mention {
            name: t.relname.clone(),
            place: place_of(db, &t.relname),
        });
    }
    let sharded = |i: usize| refs.get(i).is_some_and(|r| r.place == Place::Sharded);
    let mut classes = Classes((0..refs.len()).collect());
    let mut preds = Vec::with_capacity(scopes.len());
    for (id, scope) in scopes.iter().enumerate() {
        let cols = ScopeColumns {
            db,
            refs,
            scope: id,
            outer_joins: scope.has_outer_join,
        };
        let quals = scope
            .where_clause
            .into_iter()
            .chain(scope.joins.iter().filter_map(|j| j.quals));
        for q in quals {
            for c in conjuncts(q) {
                if let Some((a, b)) = key_equality(c, &cols) {
                    if co_located(db, &refs[a].name, &refs[b].name) {
                        classes.union(a, b);
                    }
                }
            }
        }
        for j in &scope.joins {
            for col in &j.using {
                let side = |locs: &[i32]| -> Option<usize> {
                    let found: Vec<usize> = refs
                        .iter()
                        .enumerate()
                        .filter(|(i, r)| {
                            sharded(*i)
                                && r.scope == id
                                && locs.contains(&r.location)
                                && db.sharded_table(&r.name).is_ok_and(|t| t.column() == col)
                        })
                        .map(|(i, _)| i)
                        .collect();
                    match found.as_slice() {
                        [one] => Some(*one),
                        _ => None,
                    }
                };
                if let (Some(a), Some(b)) = (side(&j.left), side(&j.right)) {
                    if co_located(db, &refs[a].name, &refs[b].name) {
                        classes.union(a, b);
                    }
                }
            }
        }
        let mut parts = Vec::new();
        if let Some(w) = scope.where_clause {
            parts.push(pred(w, &cols)?);
        }
        for j in scope.joins.iter().filter(|j| j.all_inner) {
            if let Some(q) = j.quals {
                parts.push(pred(q, &cols)?);
            }
        }
        preds.push(Pred::And(parts));
    }
    let mut out: Vec<Class> = Vec::new();
    let mut class_of_root: Vec<(usize, usize)> = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        if r.place != Place::Sharded {
            continue;
        }
        let root_id = classes.root(i);
        match class_of_root.iter().find(|(root, _)| *root == root_id) {
            Some((_, c)) => out[*c].members.push(i),
            None => {
                class_of_root.push((root_id, out.len()));
                out.push(Class {
                    members: vec![i],
                    pred: Pred::Any,
                    nested: r.scope != 0,
                });
            }
        }
    }
    for c in &mut out {
        let scope = refs[c.members[0]].scope;
        let members = c.members.clone();
        c.pred = preds[scope].project(&|t| members.contains(&t));
    }
    let write = write_of(sql, root, db, refs)?;
    Ok(Query {
        mentions,
        classes: out,
        write,
        single_only: None,
    })
}

fn write_of(
    sql: &str,
    root: NodeRef<'_>,
    db: &DatabaseTopology,
    refs: &[TableRef],
) -> Result<Write, ShardRouteError> {
    let (target, set_list) = match root {
        NodeRef::InsertStmt(i) => (i.relation.as_ref(), None),
        NodeRef::UpdateStmt(u) => (u.relation.as_ref(), Some(&u.target_list)),
        NodeRef::DeleteStmt(d) => (d.relation.as_ref(), None),
        NodeRef::MergeStmt(m) => (m.relation.as_ref(), None),
        _ => (None, None),
    };
    let Some(target) = target else {
        return Ok(Write::Read);
    };
    match db.table_location(&target.relname) {
        TableLocation::Reference => Ok(Write::Reference(target.relname.clone())),
        TableLocation::DefaultShard(_) => Ok(Write::Default(target.relname.clone())),
        TableLocation::Placed(_) | TableLocation::Home(_) => Ok(Write::Read),
        TableLocation::Sharded(t) => match root {
            NodeRef::InsertStmt(i) => {
                let select_key = |select: &SelectStmt, fields: &[Node]| {
                    // Resolve the column in the scope the INSERT's SELECT opened.
                    let scope = refs
                        .iter()
                        .map(|r| r.scope)
                        .find(|s| scope_is(refs, *s, select))?;
                    ScopeColumns {
                        db,
                        refs,
                        scope,
                        outer_joins: true,
                    }
                    .key_of(fields)
                    .map(|(i, _, _)| i)
                };
                plan_insert(sql, i, t, &select_key).map(Write::Insert)
            }
            NodeRef::MergeStmt(_) => Err(ShardRouteError::Unsupported {
                what: "MERGE".to_string(),
                tables: format!("sharded table `{}`", t.name()),
            }),
            _ => {
                let target_ix = refs
                    .iter()
                    .position(|r| r.location == target.location && r.scope == 0)
                    .ok_or_else(|| ShardRouteError::Parse("update target not found".into()))?;
                let cols = ScopeColumns {
                    db,
                    refs,
                    scope: 0,
                    outer_joins: false,
                };
                let new_key = match set_list {
                    Some(list) => new_key(
                        list,
                        t.column(),
                        t.map().key_type(),
                        t.map().key(),
                        &|fields| cols.key_of(fields).is_some_and(|(i, _, _)| i == target_ix),
                    )?,
                    None => None,
                };
                Ok(Write::Sharded {
                    target: target_ix,
                    new_key,
                })
            }
        },
    }
}

/// Whether scope `scope` is the one `select` opened: its FROM list names the scope's tables
/// (table locations are unique byte offsets in the text).
fn scope_is(refs: &[TableRef], scope: usize, select: &SelectStmt) -> bool {
    let from_locations: Vec<i32> = select
        .from_clause
        .iter()
        .flat_map(|n| {
            let mut out = Vec::new();
            let mut stack = vec![n];
            while let Some(n) = stack.pop() {
                match n.node.as_ref() {
                    Some(NodeEnum::RangeVar(r)) => out.push(r.location),
                    Some(NodeEnum::JoinExpr(j)) => {
                        stack.extend(j.larg.as_deref());
                        stack.extend(j.rarg.as_deref());
                    }
                    _ => {}
                }
            }
            out
        })
        .collect();
    refs.iter()
        .any(|r| r.scope == scope && from_locations.contains(&r.location))
}
