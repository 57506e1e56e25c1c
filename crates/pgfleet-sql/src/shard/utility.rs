//! Statements other than queries and DML: DDL goes to every shard when it names a sharded or
//! reference table, to a placement group's cluster when it names only placed tables, else to
//! the default shard; `COPY`, `SELECT … INTO` and `CREATE TABLE … AS` follow their tables.

use pg_query::protobuf::ObjectType;
use pg_query::{NodeEnum, NodeRef};

use pgfleet_catalog::{DatabaseTopology, TableLocation};

use super::error::ShardRouteError;
use super::placement::{default_route, place_of, placement};
use super::plan::{Mention, Stmt};
use super::query::query;
use super::route::{ReferenceAccess, ShardRoute};
use super::scope::{collect, Place};

/// `SELECT … INTO t` and `CREATE TABLE t AS …` make a table from a query's rows: fine on one
/// place, refused over sharded tables (each shard would make its own partial table).
pub(crate) fn derived_table(
    sql: &str,
    root: NodeRef<'_>,
    db: &DatabaseTopology,
    what: &str,
) -> Result<Stmt, ShardRouteError> {
    let q = query(sql, root, db)?;
    if let Some(m) = q.mentions.iter().find(|m| m.place == Place::Sharded) {
        return Err(ShardRouteError::Unsupported {
            what: what.to_string(),
            tables: format!("sharded table `{}`", m.name),
        });
    }
    Ok(Stmt::Query(q))
}

pub(crate) fn copy(
    c: &pg_query::protobuf::CopyStmt,
    db: &DatabaseTopology,
) -> Result<Stmt, ShardRouteError> {
    let Some(rel) = c.relation.as_ref() else {
        return Ok(Stmt::Fixed(default_route(db)));
    };
    Ok(Stmt::Fixed(match db.table_location(&rel.relname) {
        // Rows are split by their key as they stream (the proxy's COPY path).
        TableLocation::Sharded(_) => ShardRoute::All,
        TableLocation::Reference if c.is_from => ShardRoute::Reference(ReferenceAccess::Write),
        TableLocation::Reference => ShardRoute::Reference(ReferenceAccess::Read),
        TableLocation::DefaultShard(n) => ShardRoute::Single(n),
        TableLocation::Placed(g) => ShardRoute::Placed(g.cluster().to_string()),
        TableLocation::Home(_) => ShardRoute::Home,
    }))
}

/// DDL and other utility statements: every shard when they name a sharded or reference table,
/// the group's cluster when they name only placed tables, else the default shard.
pub(crate) fn utility(stmt: &NodeEnum, db: &DatabaseTopology) -> Result<Stmt, ShardRouteError> {
    let names: Vec<String> = match stmt {
        // Only the table being created: tables its constraints reference are not changed.
        NodeEnum::CreateStmt(c) => c
            .relation
            .iter()
            .map(|r| r.relname.clone())
            .chain(
                c.inh_relations
                    .iter()
                    .filter_map(|n| match n.node.as_ref() {
                        Some(NodeEnum::RangeVar(r)) => Some(r.relname.clone()),
                        _ => None,
                    }),
            )
            .collect(),
        NodeEnum::DropStmt(d) if dropped_relations(d.remove_type) => d
            .objects
            .iter()
            .filter_map(|o| match o.node.as_ref() {
                Some(NodeEnum::List(l)) => l.items.last().and_then(|n| match n.node.as_ref() {
                    Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                    _ => None,
                }),
                _ => None,
            })
            .collect(),
        _ => collect(db, stmt.to_ref(), &[])
            .refs
            .into_iter()
            .map(|r| r.name)
            .collect(),
    };
    let mentions: Vec<Mention> = names
        .into_iter()
        .map(|name| Mention {
            place: place_of(db, &name),
            name,
        })
        .collect();
    if let Some(route) = placement(&mentions, db)? {
        return Ok(Stmt::Fixed(route));
    }
    let on_shards = mentions
        .iter()
        .any(|m| matches!(m.place, Place::Sharded | Place::Reference));
    Ok(Stmt::Fixed(if on_shards {
        ShardRoute::All
    } else {
        default_route(db)
    }))
}

fn dropped_relations(remove_type: i32) -> bool {
    [
        ObjectType::ObjectTable,
        ObjectType::ObjectForeignTable,
        ObjectType::ObjectView,
        ObjectType::ObjectMatview,
    ]
    .iter()
    .any(|t| *t as i32 == remove_type)
}
