//! Pools per (user, database), created on first use from the config snapshot and reconciled on
//! reload. A tenant of a database with the `database` tenancy model gets pools of its own (same
//! user and settings, the tenant's server database).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use pgfleet_config::{Config, PoolMode, PoolSettings, Secret, ServerRole};
use pgfleet_pool::{Pool, Settings};

/// Gauges and counters of one pool (re-exported for the admin console).
pub use pgfleet_pool::PoolStats;

use crate::replication::{ClusterState, Clusters};
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

/// Where one [`DatabasePools`] connects: (user, database), the cluster, and the server database
/// when it is not the database's own (a tenant's database).
type PlaceKey = (PoolKey, String, Option<String>);

/// All pools of the process.
#[derive(Default)]
pub struct Pools {
    /// By ((user, database), cluster, tenant server database).
    map: RwLock<HashMap<PlaceKey, Arc<DatabasePools>>>,
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

/// The cluster a database's sessions start on: its `cluster`, or for a sharded database its
/// default shard's cluster (pgfleet learns server parameters there at login, and statements that
/// name no table run there).
pub fn home_cluster<'a>(config: &'a Config, database: &str) -> Option<&'a str> {
    let db = config.databases.get(database)?;
    match &db.sharding {
        Some(s) => s.shards.get(s.default_shard).map(String::as_str),
        None => Some(db.cluster.as_str()),
    }
}

/// Whether `cluster` serves `database`: its own cluster, one of its shards, or the cluster of one
/// of its placement groups.
pub fn serves(config: &Config, database: &str, cluster: &str) -> bool {
    let Some(db) = config.databases.get(database) else {
        return false;
    };
    db.cluster == cluster
        || db
            .sharding
            .as_ref()
            .is_some_and(|s| s.shards.iter().any(|c| c == cluster))
        || db.placement.values().any(|p| p.cluster == cluster)
}

/// Where (user, database)'s connections go according to `config`: one target per server of the
/// database's home cluster ([`home_cluster`]), in the cluster's order (index = endpoint number).
pub fn targets_for(config: &Config, user: &str, database: &str) -> Option<Vec<ServerTarget>> {
    targets_on(config, user, database, home_cluster(config, database)?)
}

/// As [`targets_for`], on `cluster` (a shard or placement cluster of the database).
pub fn targets_on(
    config: &Config,
    user: &str,
    database: &str,
    cluster: &str,
) -> Option<Vec<ServerTarget>> {
    targets_in(config, user, database, cluster, None)
}

/// As [`targets_on`], connecting to `server_database` instead of the database's own
/// `server_database` when given (a tenant's database in the `database` tenancy model).
pub fn targets_in(
    config: &Config,
    user: &str,
    database: &str,
    cluster: &str,
    server_database: Option<&str>,
) -> Option<Vec<ServerTarget>> {
    let db = config.databases.get(database)?;
    let u = config.users.get(user)?;
    if !serves(config, database, cluster) {
        return None;
    }
    let cluster = config.clusters.get(cluster)?;
    let password = u.server_password.clone().or_else(|| match &u.password {
        Some(Secret::Plain(p)) => Some(p.clone()),
        _ => None,
    });
    let settings = config.pool_settings(user, database);
    Some(
        cluster
            .servers
            .iter()
            .map(|server| ServerTarget {
                host: server.host.clone(),
                port: server.port,
                database: server_database.map_or_else(|| db.server_database.clone(), str::to_owned),
                user: u.server_user.clone(),
                password: password.clone(),
                pool_user: user.to_owned(),
                pool_database: database.to_owned(),
                prepared_capacity: settings.prepared_statements_cache,
            })
            .collect(),
    )
}

/// The configured primary of a cluster: the server with role "primary", else the first "auto" one,
/// else the first. (Observed roles from the replication monitor take precedence once known.)
pub fn configured_primary(config: &Config, cluster: &str) -> usize {
    let Some(cluster) = config.clusters.get(cluster) else {
        return 0;
    };
    cluster
        .servers
        .iter()
        .position(|s| s.role == ServerRole::Primary)
        .or_else(|| {
            cluster
                .servers
                .iter()
                .position(|s| s.role == ServerRole::Auto)
        })
        .unwrap_or(0)
}

/// The pools of one (user, database) on one cluster: one per endpoint of the cluster. A sharded
/// database has one of these per shard (and per placement cluster) it has used.
pub struct DatabasePools {
    /// (user, database).
    pub key: PoolKey,
    /// The cluster's name.
    pub cluster: String,
    /// The tenant database these pools connect to, when not the database's own.
    pub tenant_database: Option<String>,
    /// One pool per server of the cluster, in the cluster's order.
    pub endpoints: Vec<Arc<PoolEntry>>,
    /// Index of the configured primary.
    pub configured_primary: usize,
    /// The cluster's replication state (roles, health, lag) shared with the monitor.
    pub state: Option<Arc<ClusterState>>,
}

impl DatabasePools {
    /// The pool of endpoint `i` (the configured primary when out of range).
    pub fn endpoint(&self, i: usize) -> &Arc<PoolEntry> {
        // Invariant: a cluster has at least one server (config validation), so index
        // `configured_primary` exists.
        self.endpoints
            .get(i)
            .unwrap_or(&self.endpoints[self.configured_primary])
    }

    /// Transaction or session pooling (the same for every endpoint).
    pub fn mode(&self) -> PoolMode {
        self.endpoint(self.configured_primary).mode()
    }
}

impl Pools {
    /// The pools for (user, database) on its home cluster ([`home_cluster`]), created on first
    /// use.
    pub fn get(
        &self,
        config: &Config,
        clusters: &Clusters,
        user: &str,
        database: &str,
    ) -> Result<Arc<DatabasePools>, ProxyError> {
        let cluster = home_cluster(config, database).unwrap_or_default();
        self.on_cluster(config, clusters, user, database, cluster)
    }

    /// The pools for (user, database) on `cluster` (its home, a shard or a placement cluster),
    /// created on first use.
    pub fn on_cluster(
        &self,
        config: &Config,
        clusters: &Clusters,
        user: &str,
        database: &str,
        cluster: &str,
    ) -> Result<Arc<DatabasePools>, ProxyError> {
        self.in_database(config, clusters, user, database, cluster, None)
    }

    /// The pools for (user, database) on `cluster` connecting to `tenant_database` (`None`: the
    /// database's own server database), created on first use.
    pub fn in_database(
        &self,
        config: &Config,
        clusters: &Clusters,
        user: &str,
        database: &str,
        cluster: &str,
        tenant_database: Option<&str>,
    ) -> Result<Arc<DatabasePools>, ProxyError> {
        let key = (
            (user.to_owned(), database.to_owned()),
            cluster.to_owned(),
            tenant_database.map(str::to_owned),
        );
        if let Some(e) = self.map.read().get(&key) {
            return Ok(e.clone());
        }
        let targets = targets_in(config, user, database, cluster, tenant_database)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ProxyError::Client {
                code: "3D000",
                message: format!(
                    "no pool for user `{user}` and database `{database}` on cluster `{cluster}` in the config"
                ),
            })?;
        let settings = config.pool_settings(user, database);
        let mut map = self.map.write();
        let entry = map
            .entry(key.clone())
            .or_insert_with(|| {
                let endpoints = targets
                    .into_iter()
                    .map(|target| {
                        Arc::new(PoolEntry {
                            key: key.0.clone(),
                            pool: Pool::new(
                                ServerManager {
                                    target,
                                    registry: self.servers.clone(),
                                },
                                pool_settings(&settings),
                            ),
                            settings: Mutex::new(settings.clone()),
                            server_params: Mutex::new(None),
                        })
                    })
                    .collect();
                Arc::new(DatabasePools {
                    key: key.0.clone(),
                    cluster: cluster.to_owned(),
                    tenant_database: key.2.clone(),
                    endpoints,
                    configured_primary: configured_primary(config, cluster),
                    state: clusters.get(config, cluster),
                })
            })
            .clone();
        Ok(entry)
    }

    /// Every pool of every endpoint, sorted by (user, database), then endpoint order.
    pub fn list(&self) -> Vec<Arc<PoolEntry>> {
        let mut dbs: Vec<_> = self.map.read().values().cloned().collect();
        dbs.sort_by(|a, b| {
            (&a.key, &a.cluster, &a.tenant_database).cmp(&(&b.key, &b.cluster, &b.tenant_database))
        });
        dbs.iter()
            .flat_map(|d| d.endpoints.iter().cloned())
            .collect()
    }

    /// Applies a new config: changed sizes/timeouts in place; a changed target (servers, database,
    /// credentials) or a removed user/database closes the pools, to be re-created on next use.
    pub fn reconcile(&self, config: &Config) {
        let mut map = self.map.write();
        map.retain(|((user, database), cluster, tenant_db), db| {
            let same = targets_in(config, user, database, cluster, tenant_db.as_deref())
                .is_some_and(|targets| {
                    targets.len() == db.endpoints.len()
                        && targets
                            .iter()
                            .zip(&db.endpoints)
                            .all(|(t, e)| *t == e.pool.manager().target)
                        && configured_primary(config, cluster) == db.configured_primary
                });
            if same {
                let s = config.pool_settings(user, database);
                for e in &db.endpoints {
                    e.pool.set_settings(pool_settings(&s));
                    *e.settings.lock() = s.clone();
                }
            } else {
                for e in &db.endpoints {
                    e.pool.close();
                }
            }
            same
        });
    }

    /// Runs pool maintenance (idle timeouts, lifetimes, min_idle) once over every pool, then
    /// forgets tenant-database pools that no session uses and that have no connection left (so
    /// the map stays bounded by the tenants active within an `idle_timeout`).
    pub async fn maintain(&self) {
        for entry in self.list() {
            entry.pool.maintain().await;
        }
        self.map.write().retain(|(_, _, tenant_db), db| {
            tenant_db.is_none()
                || Arc::strong_count(db) > 1
                || db.endpoints.iter().any(|e| {
                    let s = e.stats();
                    s.open > 0 || s.waiting > 0 || Arc::strong_count(e) > 1
                })
        });
    }

    /// Checked-out connections per endpoint of `cluster`, summed over every (user, database).
    pub fn busy_by_endpoint(&self, cluster: &str, endpoints: usize) -> Vec<usize> {
        let mut busy = vec![0; endpoints];
        for db in self.map.read().values().filter(|d| d.cluster == cluster) {
            for (i, e) in db.endpoints.iter().enumerate().take(endpoints) {
                busy[i] += e.stats().busy;
            }
        }
        busy
    }

    /// Closes every pool (shutdown).
    pub fn close_all(&self) {
        for entry in self.list() {
            entry.pool.close();
        }
    }
}
