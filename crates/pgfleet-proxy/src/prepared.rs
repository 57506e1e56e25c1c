//! Prepared statements in transaction pooling: client statement names map to shared server-side
//! names, deduplicated by (query text, parameter types), so a statement prepared once per server
//! serves every client that prepared the same text.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// One distinct statement.
#[derive(Debug, PartialEq, Eq)]
pub struct StatementDef {
    /// Name used on every server, e.g. `pgfleet_12`.
    pub server_name: String,
    /// SQL text.
    pub query: String,
    /// Declared parameter types.
    pub param_types: Vec<u32>,
}

/// The process-wide dedup table.
#[derive(Default)]
pub struct PreparedRegistry {
    by_text: Mutex<HashMap<(String, Vec<u32>), Arc<StatementDef>>>,
    next: AtomicU64,
}

impl PreparedRegistry {
    /// The shared definition for this text and parameter types.
    pub fn intern(&self, query: &str, param_types: &[u32]) -> Arc<StatementDef> {
        let mut map = self.by_text.lock();
        if let Some(def) = map.get(&(query.to_owned(), param_types.to_vec())) {
            return def.clone();
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let def = Arc::new(StatementDef {
            server_name: format!("pgfleet_{id}"),
            query: query.to_owned(),
            param_types: param_types.to_vec(),
        });
        map.insert((query.to_owned(), param_types.to_vec()), def.clone());
        def
    }

    /// Forgets statements no client holds any more, so the table does not grow without bound. A
    /// server may still have one prepared: a later client with the same text gets a new name, which
    /// is correct, only one more Parse.
    pub fn prune(&self) {
        self.by_text.lock().retain(|_, def| Arc::strong_count(def) > 1);
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
        let a = r.intern("SELECT $1", &[23]);
        let b = r.intern("SELECT $1", &[23]);
        let c = r.intern("SELECT $1", &[25]);
        assert!(Arc::ptr_eq(&a, &b));
        assert_ne!(a.server_name, c.server_name);
        drop((a, b));
        r.prune();
        assert_eq!(r.len(), 1);
    }
}
