//! Pools per (user, database), created on first use from the config snapshot and reconciled on
//! reload.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use pgfleet_config::{Config, PoolMode, PoolSettings, Secret, ServerRole};
use pgfleet_pool::{Pool, Settings};

/// Gauges and counters of one pool (re-exported for the admin console).
pub use pgfleet_pool::PoolStats;

use crate::server::{ServerManager, ServerRegistry, ServerTarget};
use crate::ProxyError;

/// (client-facing user, client-facing database).
pub type PoolKey = (String, String);

/// One pool and what clients of it need to know.
pub struct PoolEntry {
    /// (user, database).
    pub key: PoolKey,
    /// The connections.
    pub pool: Pool<ServerManager>,
    settings: Mutex<PoolSettings>,
    /// ParameterStatus values of this pool's servers, learned from the first connection; sent to
    /// clients at login.
    pub(crate) server_params: Mutex<Option<Vec<(String, String)>>>,
}

impl PoolEntry {
    /// Current effective settings.
    pub fn settings(&self) -> PoolSettings {
        self.settings.lock().clone()
    }

    /// Transaction or session pooling.
    pub fn mode(&self) -> PoolMode {
        self.settings.lock().pool_mode
    }

    /// Gauges and counters.
    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// The server this pool connects to.
    pub fn target(&self) -> &ServerTarget {
        &self.pool.manager().target
    }
}

/// All pools of the process.
#[derive(Default)]
pub struct Pools {
    map: RwLock<HashMap<PoolKey, Arc<PoolEntry>>>,
    /// Open server connections (SHOW SERVERS).
    pub servers: Arc<ServerRegistry>,
}

fn pool_settings(s: &PoolSettings) -> Settings {
    Settings {
        size: s.pool_size,
        min_idle: s.min_idle,
        checkout_timeout: s.checkout_timeout,
        connect_timeout: s.connect_timeout,
        idle_timeout: s.idle_timeout,
        lifetime: s.server_lifetime,
    }
}

/// Where (user, database)'s connections go according to `config`: the cluster's primary (read/write
/// splitting over replicas is the replication feature's job).
pub fn target_for(config: &Config, user: &str, database: &str) -> Option<ServerTarget> {
    let db = config.databases.get(database)?;
    let u = config.users.get(user)?;
    let cluster = config.clusters.get(&db.cluster)?;
    let server = cluster
        .servers
        .iter()
        .find(|s| s.role == ServerRole::Primary)
        .or_else(|| cluster.servers.iter().find(|s| s.role == ServerRole::Auto))
        .or_else(|| cluster.servers.first())?;
    let password = u.server_password.clone().or_else(|| match &u.password {
        Some(Secret::Plain(p)) => Some(p.clone()),
        _ => None,
    });
    let settings = config.pool_settings(user, database);
    Some(ServerTarget {
        host: server.host.clone(),
        port: server.port,
        database: db.server_database.clone(),
        user: u.server_user.clone(),
        password,
        pool_user: user.to_owned(),
        pool_database: database.to_owned(),
        prepared_capacity: settings.prepared_statements_cache,
    })
}

impl Pools {
    /// The pool for (user, database), created on first use.
    pub fn get(
        &self,
        config: &Config,
        user: &str,
        database: &str,
    ) -> Result<Arc<PoolEntry>, ProxyError> {
        let key = (user.to_owned(), database.to_owned());
        if let Some(e) = self.map.read().get(&key) {
            return Ok(e.clone());
        }
        let target = target_for(config, user, database).ok_or_else(|| ProxyError::Client {
            code: "3D000",
            message: format!("no pool for user `{user}` and database `{database}` in the config"),
        })?;
        let settings = config.pool_settings(user, database);
        let mut map = self.map.write();
        let entry = map
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(PoolEntry {
                    key,
                    pool: Pool::new(
                        ServerManager {
                            target,
                            registry: self.servers.clone(),
                        },
                        pool_settings(&settings),
                    ),
                    settings: Mutex::new(settings),
                    server_params: Mutex::new(None),
                })
            })
            .clone();
        Ok(entry)
    }

    /// Every pool.
    pub fn list(&self) -> Vec<Arc<PoolEntry>> {
        let mut v: Vec<_> = self.map.read().values().cloned().collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// Applies a new config: changed sizes/timeouts in place; a changed target (server, database,
    /// credentials) or a removed user/database closes the pool, to be re-created on next use.
    pub fn reconcile(&self, config: &Config) {
        let mut map = self.map.write();
        map.retain(
            |(user, database), entry| match target_for(config, user, database) {
                Some(t) if t == entry.pool.manager().target => {
                    let s = config.pool_settings(user, database);
                    entry.pool.set_settings(pool_settings(&s));
                    *entry.settings.lock() = s;
                    true
                }
                _ => {
                    entry.pool.close();
                    false
                }
            },
        );
    }

    /// Runs pool maintenance (idle timeouts, lifetimes, min_idle) once over every pool.
    pub async fn maintain(&self) {
        for entry in self.list() {
            entry.pool.maintain().await;
        }
    }

    /// Closes every pool (shutdown).
    pub fn close_all(&self) {
        for entry in self.map.read().values() {
            entry.pool.close();
        }
    }
}
