//! Prepared statements in transaction pooling: client statement names map to shared server-side
//! names, deduplicated by (query text, parameter types), so a statement prepared once per server
//! serves every client that prepared the same text.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

/// One distinct statement.
#[derive(Debug)]
pub struct StatementDef {
    /// Name used on every server, e.g. `pgfleet_12`.
    pub server_name: String,
    /// SQL text.
    pub query: String,
    /// Declared parameter types.
    pub param_types: Vec<u32>,
    /// A server accepted this Parse at least once (so a later client's Parse of the same text can be
    /// acknowledged without a server).
    pub validated: AtomicBool,
}

/// Dedup key: the text, the declared types, and the search_path in effect, because PostgreSQL
/// resolves a prepared statement's names with the search_path of the moment it was prepared: two
/// clients with different search_paths must never share one server-side statement.
type Key = (String, Vec<u32>, Option<String>);

/// The process-wide dedup table.
#[derive(Default)]
pub struct PreparedRegistry {
    by_text: Mutex<HashMap<Key, Arc<StatementDef>>>,
    next: AtomicU64,
    next_unnamed: AtomicU64,
    set_config: OnceLock<Arc<StatementDef>>,
}

/// pgfleet's own statement for a settings sync inside a client's request: the function is
/// schema-qualified and the argument types are fixed, so it means the same under any search_path.
pub const SET_CONFIG_SQL: &str = "SELECT pg_catalog.set_config($1, $2, false)";

/// OID of type `text`.
const TEXT_OID: u32 = 25;

impl PreparedRegistry {
    /// The shared definition for this text, parameter types and search_path.
    pub fn intern(
        &self,
        query: &str,
        param_types: &[u32],
        search_path: Option<&str>,
    ) -> Arc<StatementDef> {
        let key = (
            query.to_owned(),
            param_types.to_vec(),
            search_path.map(str::to_owned),
        );
        let mut map = self.by_text.lock();
        if let Some(def) = map.get(&key) {
            return def.clone();
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let def = Arc::new(StatementDef {
            server_name: format!("pgfleet_{id}"),
            query: query.to_owned(),
            param_types: param_types.to_vec(),
            validated: AtomicBool::new(false),
        });
        map.insert(key, def.clone());
        def
    }

    /// The definition for this text, types and search_path, if one exists and a server accepted it.
    pub fn validated(
        &self,
        query: &str,
        param_types: &[u32],
        search_path: Option<&str>,
    ) -> Option<Arc<StatementDef>> {
        let key = (
            query.to_owned(),
            param_types.to_vec(),
            search_path.map(str::to_owned),
        );
        self.by_text
            .lock()
            .get(&key)
            .filter(|d| d.validated.load(Ordering::Relaxed))
            .cloned()
    }

    /// pgfleet's `set_config` statement ([`SET_CONFIG_SQL`]). Held here for good, so pruning
    /// never gives it a new name.
    pub fn set_config_statement(&self) -> Arc<StatementDef> {
        self.set_config
            .get_or_init(|| self.intern(SET_CONFIG_SQL, &[TEXT_OID, TEXT_OID], None))
            .clone()
    }

    /// A fresh id for a client's unnamed statement (never 0).
    pub fn next_unnamed_id(&self) -> u64 {
        self.next_unnamed.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Forgets statements no client holds any more, so the table does not grow without bound. A
    /// server may still have one prepared: a later client with the same text gets a new name, which
    /// is correct, only one more Parse.
    pub fn prune(&self) {
        self.by_text
            .lock()
            .retain(|_, def| Arc::strong_count(def) > 1);
    }

    /// Distinct statements known.
    pub fn len(&self) -> usize {
        self.by_text.lock().len()
    }

    /// Whether no statement is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedups_by_text_and_types() {
        let r = PreparedRegistry::default();
        let a = r.intern("SELECT $1", &[23], None);
        let b = r.intern("SELECT $1", &[23], None);
        let c = r.intern("SELECT $1", &[25], None);
        let d = r.intern("SELECT $1", &[23], Some("tenant_a"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_ne!(a.server_name, c.server_name);
        assert_ne!(
            a.server_name, d.server_name,
            "search_path is part of the identity"
        );
        drop((a, b));
        r.prune();
        assert_eq!(r.len(), 2);
    }
}
