//! Connections to the fleet's primaries: one slot per server with a semaphore of `--jobs`
//! permits (the bound on concurrent work per server) and a short list of idle connections,
//! reused per server database so that visiting 10,000 tenant schemas costs no new logins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pgfleet_config::Config;
use pgfleet_meta::{connect, find_primary, Endpoint, Login};
use tokio::sync::Semaphore;
use tokio_postgres::Client;

/// One server's permits and idle connections.
pub(crate) struct ServerSlot {
    pub endpoint: Endpoint,
    pub permits: Arc<Semaphore>,
    idle: Mutex<Vec<(String, Client)>>,
    keep: usize,
}

impl ServerSlot {
    fn new(endpoint: Endpoint, jobs: usize) -> ServerSlot {
        ServerSlot {
            endpoint,
            permits: Arc::new(Semaphore::new(jobs.max(1))),
            idle: Mutex::new(Vec::new()),
            keep: jobs.max(1),
        }
    }

    /// An idle connection to `database`, or a new one.
    pub async fn checkout(
        &self,
        login: &Login,
        database: &str,
    ) -> Result<Client, pgfleet_meta::MetaError> {
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.iter()
                .position(|(db, c)| db == database && !c.is_closed())
                .map(|i| idle.swap_remove(i).1)
        };
        match reused {
            Some(c) => Ok(c),
            None => connect(&self.endpoint, &login.for_database(database)).await,
        }
    }

    /// Returns a healthy connection; the oldest idle one is closed when more than `jobs` wait.
    pub fn checkin(&self, database: &str, client: Client) {
        if client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.push((database.to_string(), client));
        if idle.len() > self.keep {
            idle.remove(0);
        }
    }
}

/// The slots of a run: cluster name → slot of its primary (clusters sharing a primary share it).
pub(crate) struct Servers {
    by_cluster: HashMap<String, Result<Arc<ServerSlot>, String>>,
}

impl Servers {
    /// Finds the primary of every cluster in `clusters` (each with a login to `database` of that
    /// cluster); a cluster without a reachable primary keeps its error for its targets.
    pub async fn resolve(
        config: &Config,
        clusters: &[(String, String)],
        login: &Login,
        jobs: usize,
    ) -> Servers {
        let mut by_endpoint: HashMap<Endpoint, Arc<ServerSlot>> = HashMap::new();
        let mut by_cluster = HashMap::new();
        for (cluster, database) in clusters {
            if by_cluster.contains_key(cluster) {
                continue;
            }
            let result = match config.clusters.get(cluster) {
                None => Err(format!("cluster `{cluster}` is not defined in the config")),
                Some(c) => match find_primary(cluster, c, &login.for_database(database)).await {
                    Ok((client, endpoint)) => {
                        let slot = by_endpoint
                            .entry(endpoint.clone())
                            .or_insert_with(|| Arc::new(ServerSlot::new(endpoint, jobs)))
                            .clone();
                        slot.checkin(database, client);
                        Ok(slot)
                    }
                    Err(e) => Err(e.to_string()),
                },
            };
            by_cluster.insert(cluster.clone(), result);
        }
        Servers { by_cluster }
    }

    /// The slot of a cluster's primary, or why there is none.
    pub fn slot(&self, cluster: &str) -> Result<Arc<ServerSlot>, String> {
        self.by_cluster
            .get(cluster)
            .cloned()
            .unwrap_or_else(|| Err(format!("cluster `{cluster}` was not resolved")))
    }
}
