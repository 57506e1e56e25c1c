//! Walks a read statement (SELECT/VALUES/TABLE, also inside EXPLAIN, COPY and DECLARE) with an
//! explicit stack, looking for what makes it need the primary and collecting its function calls.

use pg_query::protobuf::FuncCall;
use pg_query::{NodeEnum, NodeRef};

use crate::children::push_children;
use crate::classify::WriteReason;

/// What the walk found in one statement.
#[derive(Debug, Default)]
pub(crate) struct ReadFindings {
    /// The first reason met in walk order to send the statement to the primary.
    pub write: Option<WriteReason>,
    /// Every function call: (position in the text, lower-cased qualified name).
    pub calls: Vec<(i32, String)>,
}

/// Walks all nodes under `root` (no recursion: a hostile query cannot grow our call stack).
pub(crate) fn walk_read(root: NodeRef<'_>, found: &mut ReadFindings) {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        let reason = match node {
            NodeRef::SelectStmt(s) if !s.locking_clause.is_empty() => {
                Some(WriteReason::LockingRead)
            }
            NodeRef::SelectStmt(s) if s.into_clause.is_some() => Some(WriteReason::SelectInto),
            // Only a WITH clause can hold these inside a read (PostgreSQL docs, "Data-Modifying
            // Statements in WITH"); COPY (DELETE … RETURNING) TO is classified before the walk.
            NodeRef::InsertStmt(_)
            | NodeRef::UpdateStmt(_)
            | NodeRef::DeleteStmt(_)
            | NodeRef::MergeStmt(_) => Some(WriteReason::ModifyingCte),
            NodeRef::FuncCall(call) => visit_call(call, found),
            _ => None,
        };
        if let Some(r) = reason {
            found.write.get_or_insert(r);
        }
        push_children(node, &mut stack);
    }
}

/// Records the call; returns a reason when the function writes or takes a lock.
fn visit_call(call: &FuncCall, found: &mut ReadFindings) -> Option<WriteReason> {
    let mut name = String::new();
    let mut last = "";
    for part in &call.funcname {
        let Some(NodeEnum::String(s)) = part.node.as_ref() else {
            continue;
        };
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&s.sval.to_ascii_lowercase());
        last = s.sval.as_str();
    }
    if name.is_empty() {
        return None;
    }
    let last = last.to_ascii_lowercase();
    let reason = if last == "nextval" || last == "setval" {
        // Any schema: a look-alike elsewhere costs a primary read, never a write on a replica.
        Some(WriteReason::SequenceFunction(name.clone()))
    } else if last.starts_with("pg_advisory_") || last.starts_with("pg_try_advisory_") {
        // Lock and unlock alike: an advisory lock taken on a replica protects nothing.
        Some(WriteReason::AdvisoryLock(name.clone()))
    } else {
        None
    };
    found.calls.push((call.location, name));
    reason
}
