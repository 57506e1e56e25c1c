//! Walks every node of one statement with an explicit stack (no recursion: the tree depth is
//! bounded by the parser, but a hostile query must not be able to grow our call stack).

use pg_query::protobuf::{a_const::Val, FuncCall, RangeVar};
use pg_query::{NodeEnum, NodeRef};

use crate::children::push_children;
use crate::effect::PinReason;

/// Session-level advisory lock functions (`pg_advisory_xact_*` are transaction-level: no pin).
/// See PostgreSQL docs, "Advisory Lock Functions".
const SESSION_ADVISORY_LOCKS: &[&str] = &[
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
];

/// What the walk found in one statement.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// The first pin reason met in walk order.
    pub pin: Option<PinReason>,
    /// Distinct lower-cased names of session-level `set_config(literal, …, false)` calls.
    pub set_configs: Vec<String>,
}

impl Findings {
    fn pin(&mut self, reason: PinReason) {
        self.pin.get_or_insert(reason);
    }
}

/// Walks all nodes under `root`.
pub(crate) fn walk(root: NodeRef<'_>) -> Findings {
    let mut found = Findings::default();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match node {
            NodeRef::FuncCall(call) => visit_call(call, &mut found),
            NodeRef::RangeVar(rel) if is_temp_relation(rel) => found.pin(PinReason::TempObject),
            _ => {}
        }
        push_children(node, &mut stack);
    }
    found
}

/// A relation created as temporary (`relpersistence = 't'`) or named in `pg_temp`.
pub(crate) fn is_temp_relation(rel: &RangeVar) -> bool {
    rel.relpersistence == "t" || is_temp_schema(&rel.schemaname)
}

/// `pg_temp` (or the backend-specific `pg_temp_N`) as written in a qualified name.
pub(crate) fn is_temp_schema(schema: &str) -> bool {
    let s = schema.to_ascii_lowercase();
    s == "pg_temp" || s.starts_with("pg_temp_")
}

/// The last element of a (possibly schema-qualified) function name. Any schema is accepted:
/// a look-alike in another schema costs a pin, never a missed one.
fn func_name(call: &FuncCall) -> Option<&str> {
    match call.funcname.last()?.node.as_ref()? {
        NodeEnum::String(s) => Some(s.sval.as_str()),
        _ => None,
    }
}

fn visit_call(call: &FuncCall, found: &mut Findings) {
    let Some(name) = func_name(call) else { return };
    if SESSION_ADVISORY_LOCKS.contains(&name) {
        found.pin(PinReason::AdvisoryLock);
    } else if name == "set_config" {
        visit_set_config(call, found);
    }
}

/// `set_config(setting_name, new_value, is_local)`: session-level unless `is_local` is true.
fn visit_set_config(call: &FuncCall, found: &mut Findings) {
    let [name, _value, is_local] = call.args.as_slice() else {
        // Wrong arity errors on the server; nothing to remember.
        return;
    };
    match literal_bool(is_local) {
        Some(true) => return,
        Some(false) => {}
        None => {
            found.pin(PinReason::SetConfigDynamic);
            return;
        }
    }
    match literal_str(name) {
        Some(n) => {
            let n = n.to_ascii_lowercase();
            if !found.set_configs.contains(&n) {
                found.set_configs.push(n);
            }
        }
        None => found.pin(PinReason::SetConfigDynamic),
    }
}

/// A constant, looking through casts (`'x'::text`).
fn literal(node: &pg_query::Node) -> Option<&Val> {
    let mut node = node.node.as_ref()?;
    // Casts can nest ('x'::text::text); a fixed bound keeps this loop trivially finite.
    for _ in 0..8 {
        match node {
            NodeEnum::AConst(c) if !c.isnull => return c.val.as_ref(),
            NodeEnum::TypeCast(t) => node = t.arg.as_deref()?.node.as_ref()?,
            _ => return None,
        }
    }
    None
}

fn literal_str(node: &pg_query::Node) -> Option<&str> {
    match literal(node)? {
        Val::Sval(s) => Some(s.sval.as_str()),
        _ => None,
    }
}

/// Boolean literal, including the string spellings boolin accepts (PostgreSQL docs, "Boolean Type").
fn literal_bool(node: &pg_query::Node) -> Option<bool> {
    match literal(node)? {
        Val::Boolval(b) => Some(b.boolval),
        Val::Sval(s) => match s.sval.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
            "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}
