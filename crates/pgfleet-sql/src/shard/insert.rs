//! INSERT into a sharded table: the shard key of each VALUES row (or of an INSERT … SELECT), and
//! the per-shard texts of a multi-row INSERT whose rows belong to several shards.
//!
//! The per-shard text is cut from the original text with the positions the real lexer gives
//! (pg_query's scanner): every byte outside the VALUES rows is kept, so comments, the column
//! list, `ON CONFLICT` and `RETURNING` reach every shard exactly as written.

use pg_query::protobuf::{InsertStmt, OnConflictAction, SelectStmt, SetOperation, Token};
use pg_query::{Node, NodeEnum, NodeRef};

use pgfleet_catalog::ShardedTable;

use super::error::ShardRouteError;
use super::keys::{column, scalar_srcs, Src};
use crate::children::push_children;

/// The key of the row(s) an `UPDATE … SET key = …` or `ON CONFLICT DO UPDATE SET key = …`
/// writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NewKey {
    /// The row's own key (`key = key`, `key = EXCLUDED.key`): the row stays where it is.
    Same,
    /// A constant or parameter.
    Value(Src),
    /// Anything else: the new shard cannot be known before the server computes it.
    Unknown,
}

/// Where an INSERT's rows come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rows {
    /// `VALUES` rows: the key of each row, and the text positions for splitting (`None` for a
    /// single row; `Err` when the text could not be cut, which only matters if a split is needed).
    Values {
        keys: Vec<Src>,
        spans: Option<Result<RowSpans, String>>,
    },
    /// `INSERT … SELECT` selecting a constant or parameter as the key.
    SelectConstant(Src),
    /// `INSERT … SELECT` selecting the key column of this sharded table mention.
    SelectKeyOf(usize),
    /// Anything else: the rows' shards cannot be known (refused unless a hint picks a shard).
    Unknown(String),
}

/// An INSERT into a sharded table, as far as routing needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InsertPlan {
    /// The table.
    pub table: String,
    /// Its shard key column.
    pub column: String,
    /// The rows.
    pub rows: Rows,
    /// `ON CONFLICT DO UPDATE SET key = …`, if the key column is set.
    pub conflict_key: Option<NewKey>,
}

/// Text positions of a VALUES list: the byte range of each row's `( … )`, and every parameter
/// reference of the statement (for renumbering).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RowSpans {
    rows: Vec<(usize, usize)>,
    /// (byte offset of `$`, length of `$n`, n), sorted by offset.
    params: Vec<(usize, usize, u32)>,
}

/// Reads an INSERT into sharded table `table`; `select_key` finds the sharded table mention a
/// column reference of the INSERT's SELECT names.
pub(crate) fn plan_insert(
    sql: &str,
    stmt: &InsertStmt,
    table: &ShardedTable,
    select_key: &dyn Fn(&SelectStmt, &[Node]) -> Option<usize>,
) -> Result<InsertPlan, ShardRouteError> {
    let name = table.name().to_string();
    let col = table.column().to_string();
    let key_type = table.map().key_type();
    let key_name = table.map().key().to_string();
    let refuse = |reason: String| ShardRouteError::InsertKey {
        table: name.clone(),
        reason,
    };
    if stmt.cols.is_empty() {
        return Err(refuse(format!(
            "name the columns: the shard key column `{col}` must be in the column list"
        )));
    }
    let position = stmt.cols.iter().position(|c| {
        matches!(c.node.as_ref(), Some(NodeEnum::ResTarget(r)) if r.name == col && r.indirection.is_empty())
    });
    let Some(k) = position else {
        return Err(refuse(format!(
            "the column list does not name the shard key column `{col}`"
        )));
    };
    let select = match stmt.select_stmt.as_deref().and_then(|n| n.node.as_ref()) {
        Some(NodeEnum::SelectStmt(s)) => s,
        _ => {
            return Err(refuse(format!(
                "DEFAULT VALUES gives no value for the shard key column `{col}`"
            )))
        }
    };
    let plain = select.op == SetOperation::SetopNone as i32 || select.op == 0;
    let rows = if !select.values_lists.is_empty() && plain {
        let mut keys = Vec::with_capacity(select.values_lists.len());
        for (i, row) in select.values_lists.iter().enumerate() {
            let items: &[Node] = match row.node.as_ref() {
                Some(NodeEnum::List(l)) => &l.items,
                _ => &[],
            };
            let Some(item) = items.get(k) else {
                return Err(refuse(format!(
                    "row {} has no value for the shard key column `{col}`",
                    i + 1
                )));
            };
            if matches!(item.node.as_ref(), Some(NodeEnum::SetToDefault(_))) {
                return Err(refuse(format!(
                    "row {} gives DEFAULT for the shard key column `{col}`; give the key value",
                    i + 1
                )));
            }
            match scalar_srcs(item, key_type, &key_name, true)? {
                Some(mut srcs) if srcs.len() == 1 => keys.push(srcs.remove(0)),
                _ => {
                    return Err(refuse(format!(
                        "row {}: the shard key column `{col}` must be given as a constant or a bind parameter",
                        i + 1
                    )))
                }
            }
        }
        let spans = (keys.len() > 1).then(|| row_spans(sql, stmt, keys.len()));
        Rows::Values { keys, spans }
    } else if plain {
        select_rows(select, k, &col, key_type, &key_name, select_key)?
    } else {
        Rows::Unknown("the rows come from a set operation".to_string())
    };
    let conflict_key = match stmt.on_conflict_clause.as_deref() {
        Some(c) if c.action == OnConflictAction::OnconflictUpdate as i32 => {
            // `EXCLUDED.key`, `key`, `t.key`: the inserted row's key or the conflicting row's
            // own, equal on the unique index, so the row stays on its shard.
            new_key(&c.target_list, &col, key_type, &key_name, &|_| true)?
        }
        _ => None,
    };
    Ok(InsertPlan {
        table: name,
        column: col,
        rows,
        conflict_key,
    })
}

fn select_rows(
    select: &SelectStmt,
    k: usize,
    col: &str,
    key_type: pgfleet_catalog::ShardKeyType,
    key_name: &str,
    select_key: &dyn Fn(&SelectStmt, &[Node]) -> Option<usize>,
) -> Result<Rows, ShardRouteError> {
    let targets: Vec<&Node> = select
        .target_list
        .iter()
        .filter_map(|t| match t.node.as_ref() {
            Some(NodeEnum::ResTarget(r)) => r.val.as_deref(),
            _ => None,
        })
        .collect();
    // `*` expands to columns we do not know: positions after it cannot be matched.
    let star_before = targets.iter().take(k + 1).any(|t| {
        column(t).is_some_and(|f| {
            f.iter()
                .any(|n| matches!(n.node.as_ref(), Some(NodeEnum::AStar(_))))
        })
    });
    let Some(target) = targets.get(k).filter(|_| !star_before) else {
        return Ok(Rows::Unknown(format!(
            "the SELECT does not list the value for `{col}` explicitly"
        )));
    };
    if let Some(mut srcs) = scalar_srcs(target, key_type, key_name, true)? {
        if srcs.len() == 1 {
            return Ok(Rows::SelectConstant(srcs.remove(0)));
        }
    }
    if let Some(mention) = column(target).and_then(|f| select_key(select, f)) {
        return Ok(Rows::SelectKeyOf(mention));
    }
    Ok(Rows::Unknown(format!(
        "the SELECT computes `{col}` from an expression"
    )))
}

/// The new key a SET list gives column `col`, if it sets it. `same` says whether a column
/// reference (its fields) is the row's own key.
pub(crate) fn new_key(
    targets: &[Node],
    col: &str,
    key_type: pgfleet_catalog::ShardKeyType,
    key_name: &str,
    same: &dyn Fn(&[Node]) -> bool,
) -> Result<Option<NewKey>, ShardRouteError> {
    for t in targets {
        let Some(NodeEnum::ResTarget(r)) = t.node.as_ref() else {
            continue;
        };
        if r.name != col {
            continue;
        }
        let Some(val) = r.val.as_deref() else {
            return Ok(Some(NewKey::Unknown));
        };
        // `SET (a, key) = (1, 2)`: the key's element of the row, when it is a plain row.
        let val = match val.node.as_ref() {
            Some(NodeEnum::MultiAssignRef(m)) => {
                let element = match m.source.as_deref().and_then(|s| s.node.as_ref()) {
                    Some(NodeEnum::RowExpr(row)) => usize::try_from(m.colno - 1)
                        .ok()
                        .and_then(|i| row.args.get(i)),
                    _ => None,
                };
                match element {
                    Some(e) => e,
                    None => return Ok(Some(NewKey::Unknown)),
                }
            }
            _ => val,
        };
        if let Some(fields) = column(val) {
            let names_key = matches!(fields.last().and_then(string), Some(c) if c == col);
            return Ok(Some(if names_key && same(fields) {
                NewKey::Same
            } else {
                NewKey::Unknown
            }));
        }
        return Ok(Some(match scalar_srcs(val, key_type, key_name, true)? {
            Some(mut srcs) if srcs.len() == 1 => NewKey::Value(srcs.remove(0)),
            _ => NewKey::Unknown,
        }));
    }
    Ok(None)
}

fn string(n: &Node) -> Option<&str> {
    match n.node.as_ref()? {
        NodeEnum::String(s) => Some(s.sval.as_str()),
        _ => None,
    }
}

/// Finds the `( … )` of each VALUES row with the lexer: the first `VALUES` keyword after the
/// target table outside any parentheses (a column may itself be named `values`), then `count`
/// parenthesised groups separated by commas.
fn row_spans(sql: &str, stmt: &InsertStmt, count: usize) -> Result<RowSpans, String> {
    let tokens = pg_query::scan_tokens(sql).map_err(|e| e.to_string())?;
    let after = stmt
        .relation
        .as_ref()
        .and_then(|r| usize::try_from(r.location).ok())
        .ok_or("the INSERT has no target location")?;
    let pos = |t: &pg_query::protobuf::ScanToken| {
        (
            usize::try_from(t.start).unwrap_or(0),
            usize::try_from(t.end).unwrap_or(0),
        )
    };
    let mut depth = 0i32;
    let mut values_at = None;
    for (i, t) in tokens.iter().enumerate() {
        let (start, _) = pos(t);
        if start < after {
            continue;
        }
        if t.token == Token::Ascii40 as i32 {
            depth += 1;
        } else if t.token == Token::Ascii41 as i32 {
            depth -= 1;
        } else if t.token == Token::Values as i32 && depth == 0 {
            values_at = Some(i);
            break;
        }
    }
    let first = values_at.ok_or("no VALUES keyword at the top level of the INSERT")? + 1;
    let mut rows = Vec::with_capacity(count);
    let mut i = first;
    while rows.len() < count {
        let open = tokens.get(i).ok_or("the VALUES list ends early")?;
        if open.token != Token::Ascii40 as i32 {
            return Err("a VALUES row does not start with `(`".to_string());
        }
        let mut depth = 0i32;
        let mut close = None;
        for (j, t) in tokens.iter().enumerate().skip(i) {
            if t.token == Token::Ascii40 as i32 {
                depth += 1;
            } else if t.token == Token::Ascii41 as i32 {
                depth -= 1;
                if depth == 0 {
                    close = Some(j);
                    break;
                }
            }
        }
        let close = close.ok_or("a VALUES row is not closed")?;
        rows.push((pos(open).0, pos(&tokens[close]).1));
        i = close + 1;
        if rows.len() < count {
            match tokens.get(i) {
                Some(t) if t.token == Token::Ascii44 as i32 => i += 1,
                _ => return Err("VALUES rows are not separated by commas".to_string()),
            }
        }
    }
    let mut params = Vec::new();
    let mut stack = vec![NodeRef::InsertStmt(stmt)];
    let mut children = Vec::new();
    while let Some(node) = stack.pop() {
        if let NodeRef::ParamRef(p) = node {
            let (Ok(at), Ok(n)) = (usize::try_from(p.location), u32::try_from(p.number)) else {
                continue;
            };
            let digits = sql.get(at + 1..).map_or(0, |rest| {
                rest.bytes().take_while(u8::is_ascii_digit).count()
            });
            if sql.as_bytes().get(at) != Some(&b'$') || digits == 0 {
                return Err(format!("parameter ${n} is not where the parser put it"));
            }
            params.push((at, 1 + digits, n));
        }
        push_children(node, &mut children);
        stack.append(&mut children);
    }
    params.sort_unstable();
    Ok(RowSpans { rows, params })
}

impl RowSpans {
    /// The statement with only the rows `keep` (indices, ascending), joined by `, `, and its
    /// parameters renumbered from `$1` in the order of their original numbers; with the
    /// original number of each new parameter.
    pub(crate) fn rewrite(&self, sql: &str, keep: &[usize]) -> (String, Vec<u32>) {
        let (Some(first), Some(last)) = (self.rows.first(), self.rows.last()) else {
            return (sql.to_string(), Vec::new());
        };
        let mut pieces: Vec<(usize, usize)> = vec![(0, first.0)];
        for (n, i) in keep.iter().enumerate() {
            if n > 0 {
                pieces.push((usize::MAX, usize::MAX));
            }
            pieces.push(self.rows[*i]);
        }
        pieces.push((last.1, sql.len()));
        let inside = |at: usize| pieces.iter().any(|(s, e)| *s <= at && at < *e);
        let mut used: Vec<u32> = self
            .params
            .iter()
            .filter(|(at, _, _)| inside(*at))
            .map(|(_, _, n)| *n)
            .collect();
        used.sort_unstable();
        used.dedup();
        let mut out = String::with_capacity(sql.len());
        for (start, end) in pieces {
            if start == usize::MAX {
                out.push_str(", ");
                continue;
            }
            let mut at = start;
            for (p, len, n) in self
                .params
                .iter()
                .filter(|(p, _, _)| start <= *p && *p < end)
            {
                out.push_str(&sql[at..*p]);
                let new = used
                    .iter()
                    .position(|u| u == n)
                    .map_or(*n as usize, |i| i + 1);
                out.push('$');
                out.push_str(&new.to_string());
                at = p + len;
            }
            out.push_str(&sql[at..end]);
        }
        (out, used)
    }
}
