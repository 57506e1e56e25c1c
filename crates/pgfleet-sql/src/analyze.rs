//! Parse one SQL text with pg_query and classify each top-level statement.
//!
//! Semantics follow the PostgreSQL docs: SET (sql-set.html), RESET, DISCARD, DEALLOCATE, LISTEN,
//! DECLARE, LOAD, set_config ("Configuration Settings Functions"), advisory locks.

use pg_query::protobuf::{
    DeallocateStmt, DiscardMode, DoStmt, TransactionStmt, TransactionStmtKind, VariableSetKind,
    VariableSetStmt,
};
use pg_query::{Node, NodeEnum};

use crate::effect::{Analysis, PinReason, SessionEffect, TransactionOp};
use crate::prefilter::may_affect_session;
use crate::walk::{is_temp_relation, is_temp_schema, walk};

/// `CURSOR_OPT_HOLD` from PostgreSQL's parsenodes.h: `DECLARE … WITH HOLD`.
const CURSOR_OPT_HOLD: i32 = 0x0020;

/// Parses `sql` and returns one effect per top-level statement (no prefilter, no cache).
pub fn analyze_uncached(sql: &str) -> Analysis {
    // pg_query refuses trees nested deeper than its decoder limit (~25 sub-selects): that is an
    // error here, never a crash (FIELD-NOTES, "Deep nesting").
    match pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        Ok(parsed) => Analysis {
            effects: parsed
                .protobuf
                .stmts
                .iter()
                .map(
                    |raw| match raw.stmt.as_deref().and_then(|n| n.node.as_ref()) {
                        Some(stmt) => classify(stmt),
                        None => SessionEffect::None,
                    },
                )
                .collect(),
            parse_error: None,
        },
        Err(e) => Analysis {
            effects: Vec::new(),
            parse_error: Some(e.to_string()),
        },
    }
}

/// The session effect of one top-level statement.
fn classify(stmt: &NodeEnum) -> SessionEffect {
    match stmt {
        NodeEnum::VariableSetStmt(s) => variable_set(s),
        NodeEnum::DiscardStmt(d) => {
            // DISCARD PLANS/SEQUENCES/TEMP only drop state; nothing to remember or pin.
            if d.target == DiscardMode::DiscardAll as i32 {
                SessionEffect::DiscardAll
            } else {
                SessionEffect::None
            }
        }
        NodeEnum::DeallocateStmt(d) => deallocate(d),
        NodeEnum::ListenStmt(_) => SessionEffect::Pin(PinReason::Listen),
        NodeEnum::LoadStmt(_) => SessionEffect::Pin(PinReason::Load),
        NodeEnum::PrepareStmt(_) => SessionEffect::Pin(PinReason::SqlPrepare),
        NodeEnum::DeclareCursorStmt(d) if d.options & CURSOR_OPT_HOLD != 0 => {
            SessionEffect::Pin(PinReason::WithHoldCursor)
        }
        NodeEnum::TransactionStmt(t) => transaction(t),
        NodeEnum::DoStmt(d) => do_block(d),
        // Bodies of functions and rules do not run now: only the name can make them temporary.
        NodeEnum::CreateFunctionStmt(f) => temp_if(names_temp(&f.funcname)),
        NodeEnum::RuleStmt(r) => temp_if(r.relation.as_ref().is_some_and(is_temp_relation)),
        NodeEnum::DefineStmt(d) => temp_if(names_temp(&d.defnames)),
        NodeEnum::CreateDomainStmt(d) => temp_if(names_temp(&d.domainname)),
        NodeEnum::CreateEnumStmt(e) => temp_if(names_temp(&e.type_name)),
        NodeEnum::CreateRangeStmt(r) => temp_if(names_temp(&r.type_name)),
        // A view's query does not run now, but a view over a temp relation is itself temporary.
        NodeEnum::ViewStmt(_) => {
            let found = walk(stmt.to_ref());
            temp_if(found.pin == Some(PinReason::TempObject))
        }
        _ => {
            let found = walk(stmt.to_ref());
            if let Some(reason) = found.pin {
                return SessionEffect::Pin(reason);
            }
            match found.set_configs.as_slice() {
                [] => SessionEffect::None,
                [name] => SessionEffect::SetConfig { name: name.clone() },
                // One effect per statement cannot name two settings: keep the server instead.
                _ => SessionEffect::Pin(PinReason::SetConfigDynamic),
            }
        }
    }
}

fn temp_if(temp: bool) -> SessionEffect {
    if temp {
        SessionEffect::Pin(PinReason::TempObject)
    } else {
        SessionEffect::None
    }
}

/// A qualified name list (`pg_temp.f`) whose schema is the temporary schema.
fn names_temp(names: &[Node]) -> bool {
    names.len() > 1
        && matches!(names[0].node.as_ref(), Some(NodeEnum::String(s)) if is_temp_schema(&s.sval))
}

fn variable_set(s: &VariableSetStmt) -> SessionEffect {
    // SET LOCAL lasts until the end of the transaction, which the client keeps on one server.
    if s.is_local {
        return SessionEffect::None;
    }
    let name = s.name.to_ascii_lowercase();
    if name == "session_authorization" {
        return SessionEffect::Pin(PinReason::SessionAuthorization);
    }
    match VariableSetKind::try_from(s.kind) {
        Ok(VariableSetKind::VarSetValue | VariableSetKind::VarSetCurrent) => {
            SessionEffect::Set { name }
        }
        Ok(VariableSetKind::VarSetDefault | VariableSetKind::VarReset) => {
            SessionEffect::Reset { name }
        }
        Ok(VariableSetKind::VarResetAll) => SessionEffect::ResetAll,
        Ok(VariableSetKind::VarSetMulti) => set_multi(&name, &s.args),
        Ok(VariableSetKind::Undefined) | Err(_) => SessionEffect::None,
    }
}

/// `SET TRANSACTION …` (this transaction only) or `SET SESSION CHARACTERISTICS AS TRANSACTION …`,
/// which sets `default_transaction_isolation` / `_read_only` / `_deferrable`.
fn set_multi(name: &str, args: &[Node]) -> SessionEffect {
    if name != "session characteristics" {
        return SessionEffect::None;
    }
    match args {
        [arg] => match arg.node.as_ref() {
            Some(NodeEnum::DefElem(d)) => SessionEffect::Set {
                name: format!("default_{}", d.defname.to_ascii_lowercase()),
            },
            _ => SessionEffect::Pin(PinReason::SetConfigDynamic),
        },
        _ => SessionEffect::Pin(PinReason::SetConfigDynamic),
    }
}

fn deallocate(d: &DeallocateStmt) -> SessionEffect {
    SessionEffect::Deallocate {
        // The parser already folded an unquoted name to lower case, as the server does.
        name: if d.isall { None } else { Some(d.name.clone()) },
    }
}

fn transaction(t: &TransactionStmt) -> SessionEffect {
    let op = match TransactionStmtKind::try_from(t.kind) {
        Ok(TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart) => {
            TransactionOp::Begin
        }
        Ok(TransactionStmtKind::TransStmtCommit) => TransactionOp::Commit,
        Ok(TransactionStmtKind::TransStmtRollback) => TransactionOp::Rollback,
        Ok(TransactionStmtKind::TransStmtSavepoint) => TransactionOp::Savepoint,
        Ok(TransactionStmtKind::TransStmtRelease) => TransactionOp::Release,
        Ok(TransactionStmtKind::TransStmtRollbackTo) => TransactionOp::RollbackTo,
        Ok(TransactionStmtKind::TransStmtPrepare) => TransactionOp::Prepare,
        Ok(TransactionStmtKind::TransStmtCommitPrepared) => TransactionOp::CommitPrepared,
        Ok(TransactionStmtKind::TransStmtRollbackPrepared) => TransactionOp::RollbackPrepared,
        Ok(TransactionStmtKind::Undefined) | Err(_) => return SessionEffect::None,
    };
    SessionEffect::Transaction(op)
}

/// A `DO` block runs procedural code we do not parse: pin when its body mentions anything the
/// prefilter looks for (a heuristic; dynamic SQL inside can still escape it).
fn do_block(d: &DoStmt) -> SessionEffect {
    let body = d.args.iter().find_map(|a| match a.node.as_ref() {
        Some(NodeEnum::DefElem(e)) if e.defname == "as" => match e.arg.as_deref()?.node.as_ref()? {
            NodeEnum::String(s) => Some(s.sval.as_str()),
            _ => None,
        },
        _ => None,
    });
    let Some(body) = body else {
        return SessionEffect::None;
    };
    if !may_affect_session(body) {
        return SessionEffect::None;
    }
    let lower = body.to_ascii_lowercase();
    let reason = [
        // "advisory_lock" does not occur in the _xact_ variants nor in the unlock functions.
        ("advisory_lock", PinReason::AdvisoryLock),
        ("listen", PinReason::Listen),
        ("temp", PinReason::TempObject),
        ("hold", PinReason::WithHoldCursor),
        ("authorization", PinReason::SessionAuthorization),
        ("load", PinReason::Load),
    ]
    .iter()
    .find(|(needle, _)| lower.contains(needle))
    .map_or(PinReason::SetConfigDynamic, |(_, r)| *r);
    SessionEffect::Pin(reason)
}
