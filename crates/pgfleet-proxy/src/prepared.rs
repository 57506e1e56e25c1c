//! Prepared statements in transaction pooling: client statement names map to shared server-side
//! names, deduplicated by (query text, parameter types), so a statement prepared once per server
//! serves every client that prepared the same text.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use lru::LruCache;

use parking_lot::Mutex;
use pgfleet_sql::own_names::SERVER_STATEMENT_PREFIX;

use crate::auth::md5::{hex, md5_hex};

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
pub struct PreparedRegistry {
    by_text: Mutex<HashMap<Key, Arc<StatementDef>>>,
    next: AtomicU64,
    next_unnamed: AtomicU64,
    set_config: Mutex<LruCache<String, Arc<StatementDef>>>,
    /// A random secret of this process, the third parameter of every set_config Bind.
    sync_token: String,
    /// [`SET_CONFIG_SQL_START`] plus the check of `sync_token` by its MD5.
    set_config_sql: String,
}

/// Start of pgfleet's own statement for a settings sync inside a client's request (the rest is
/// [`PreparedRegistry::set_config_sql`]): the function is schema-qualified and the argument types
/// are fixed, so it means the same under any search_path.
pub const SET_CONFIG_SQL_START: &str = "SELECT pg_catalog.set_config($1, $2, false) WHERE ";

/// How many `set_config` statements (one per search_path) the registry holds.
pub const SET_CONFIG_STATEMENTS: usize = 4096;

/// Key of the login-default search_path: a NUL byte, which no real search_path holds.
const DEFAULT_SEARCH_PATH: &str = "\0";

/// OID of type `text`.
const TEXT_OID: u32 = 25;

impl Default for PreparedRegistry {
    fn default() -> PreparedRegistry {
        let mut secret = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut secret);
        let token = hex(&secret);
        PreparedRegistry {
            by_text: Mutex::default(),
            next: AtomicU64::default(),
            next_unnamed: AtomicU64::default(),
            set_config: Mutex::new(LruCache::new(
                NonZeroUsize::new(SET_CONFIG_STATEMENTS).unwrap_or(NonZeroUsize::MIN),
            )),
            set_config_sql: format!(
                "{SET_CONFIG_SQL_START}pg_catalog.md5($3) = '{}'",
                md5_hex(token.as_bytes())
            ),
            sync_token: token,
        }
    }
}

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
            server_name: format!("{SERVER_STATEMENT_PREFIX}{id}"),
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

    /// The text of pgfleet's `set_config` statement. Its server-side name can be seen and run by
    /// any client through SQL (`pg_prepared_statements`, `EXECUTE pgfleet_3('app.current_tenant',
    /// …)`), which would change a setting behind pgfleet's back (another tenant's context): the
    /// statement sets nothing unless its third parameter is this process's secret
    /// ([`PreparedRegistry::sync_token`]), of which the text shows only the MD5.
    pub fn set_config_sql(&self) -> &str {
        &self.set_config_sql
    }

    /// The secret pgfleet binds as the third parameter of its `set_config` statement.
    pub fn sync_token(&self) -> &str {
        &self.sync_token
    }

    /// pgfleet's `set_config` statement ([`PreparedRegistry::set_config_sql`]) to bind while a
    /// server's search_path is `search_path` (`None`: its login default). PostgreSQL analyses a prepared statement
    /// again when it is bound under another search_path than last time; one statement per
    /// search_path keeps a schema-per-tenant sync from paying that on every transaction. The most
    /// recently used [`SET_CONFIG_STATEMENTS`] are held here, so pruning does not rename them.
    pub fn set_config_statement(&self, search_path: Option<&str>) -> Arc<StatementDef> {
        let key = search_path.unwrap_or(DEFAULT_SEARCH_PATH);
        let mut held = self.set_config.lock();
        if let Some(def) = held.get(key) {
            return def.clone();
        }
        let def = self.intern(&self.set_config_sql, &[TEXT_OID; 3], search_path);
        held.put(key.to_owned(), def.clone());
        def
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

    #[test]
    fn one_set_config_statement_per_search_path_survives_pruning() {
        let r = PreparedRegistry::default();
        let a = r.set_config_statement(Some("tenant_a"));
        let b = r.set_config_statement(Some("tenant_b"));
        let d = r.set_config_statement(None);
        let e = r.set_config_statement(Some(""));
        assert!(a.query.starts_with(SET_CONFIG_SQL_START));
        assert_eq!(a.param_types, vec![TEXT_OID; 3]);
        assert!(
            !a.query.contains(r.sync_token()),
            "the secret is not in the text"
        );
        let names: std::collections::BTreeSet<_> = [&a, &b, &d, &e]
            .iter()
            .map(|d| d.server_name.clone())
            .collect();
        assert_eq!(names.len(), 4);
        let a_name = a.server_name.clone();
        drop((a, b, d, e));
        r.prune();
        assert_eq!(r.len(), 4, "held by the registry");
        assert_eq!(
            r.set_config_statement(Some("tenant_a")).server_name,
            a_name,
            "not renamed by pruning"
        );
    }
}
