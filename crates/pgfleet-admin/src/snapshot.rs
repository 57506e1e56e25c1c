//! Plain copies of what the runtime exposes, taken once per SHOW so the table builders in
//! [`crate::show`] are pure functions (and testable without sockets).

use std::time::{Instant, SystemTime};

use pgfleet_proxy::clients::ClientInfo;
use pgfleet_proxy::pools::{PoolEntry, PoolStats};
use pgfleet_proxy::replication::{ClusterState, ClusterView};
use pgfleet_proxy::server::ServerInfo;
use std::sync::atomic::Ordering;

/// One pool, for SHOW POOLS.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PoolSnapshot {
    /// Client-facing user.
    pub user: String,
    /// Client-facing database.
    pub database: String,
    /// `transaction` or `session`.
    pub pool_mode: String,
    /// Most server connections.
    pub pool_size: usize,
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Database name on the server.
    pub server_database: String,
    /// The pool's gauges and counters.
    pub stats: PoolStats,
}

impl PoolSnapshot {
    /// Copies one pool's settings, target and counters.
    pub fn of(entry: &PoolEntry) -> PoolSnapshot {
        let stats = entry.stats();
        let target = entry.target();
        PoolSnapshot {
            user: entry.key.0.clone(),
            database: entry.key.1.clone(),
            pool_mode: entry.mode().as_str().to_owned(),
            pool_size: stats.size,
            host: target.host.clone(),
            port: target.port,
            server_database: target.database.clone(),
            stats,
        }
    }
}

/// One connected client, for SHOW CLIENTS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSnapshot {
    /// Id within the process.
    pub id: u64,
    /// User it logged in as.
    pub user: String,
    /// Database it connected to.
    pub database: String,
    /// Peer `ip:port`.
    pub addr: String,
    /// application_name from its startup packet.
    pub application_name: String,
    /// `idle`, `waiting` or `active`.
    pub state: &'static str,
    /// Server connection it holds; 0 = none.
    pub server_id: u64,
    /// When it connected.
    pub connected_at: SystemTime,
    /// Requests sent.
    pub requests: u64,
}

impl ClientSnapshot {
    /// Copies one client's registry entry.
    pub fn of(info: &ClientInfo) -> ClientSnapshot {
        ClientSnapshot {
            id: info.id,
            user: info.user.clone(),
            database: info.database.clone(),
            addr: info.addr.to_string(),
            application_name: info.application_name.clone(),
            state: info.state().as_str(),
            server_id: info.server(),
            connected_at: info.connected_at,
            requests: info.requests(),
        }
    }
}

/// One open server connection, for SHOW SERVERS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSnapshot {
    /// Id within the process.
    pub id: u64,
    /// Client-facing user of its pool.
    pub user: String,
    /// Client-facing database of its pool.
    pub database: String,
    /// Server `host:port`.
    pub addr: String,
    /// Backend process id.
    pub pid: i32,
    /// `idle` or `active`.
    pub state: &'static str,
    /// Client holding it; 0 = none.
    pub client_id: u64,
    /// When it was opened.
    pub connected_at: SystemTime,
    /// Requests it served.
    pub requests: u64,
}

impl ServerSnapshot {
    /// Copies one server connection's shared view.
    pub fn of(info: &ServerInfo) -> ServerSnapshot {
        ServerSnapshot {
            id: info.id,
            user: info.pool.0.clone(),
            database: info.pool.1.clone(),
            addr: info.addr.clone(),
            pid: info.pid,
            state: info.state().as_str(),
            client_id: info.client(),
            connected_at: info.connected_at,
            requests: info.requests.load(Ordering::Relaxed),
        }
    }
}

/// One cluster's replication view, for SHOW REPLICATION.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSnapshot {
    /// The cluster's name in the config.
    pub name: String,
    /// Roles, health, replay positions and load of its endpoints, as the monitor last saw them.
    pub view: ClusterView,
}

impl ClusterSnapshot {
    /// Copies one cluster's view. The read lock is held only for the clone: the monitor and the
    /// data path write this view, and building the table must not make them wait.
    pub fn of(state: &ClusterState) -> ClusterSnapshot {
        let view = state.view.read().clone();
        ClusterSnapshot {
            name: state.name.clone(),
            view,
        }
    }
}

/// Every cluster's replication view and the instant it was taken (ban times and the write
/// target are judged at that instant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationSnapshot {
    /// Clusters in any order; SHOW REPLICATION sorts them by name.
    pub clusters: Vec<ClusterSnapshot>,
    /// When the snapshot was taken.
    pub now: Instant,
}

/// Every pool of the runtime, for SHOW POOLS and the metrics.
pub fn pools_of(rt: &pgfleet_proxy::Runtime) -> Vec<PoolSnapshot> {
    rt.pools()
        .list()
        .iter()
        .map(|p| PoolSnapshot::of(p))
        .collect()
}

/// Every cluster's replication view now, for SHOW REPLICATION and the metrics.
pub fn replication_of(rt: &pgfleet_proxy::Runtime) -> ReplicationSnapshot {
    ReplicationSnapshot {
        clusters: rt
            .clusters()
            .list()
            .iter()
            .map(|c| ClusterSnapshot::of(c))
            .collect(),
        now: Instant::now(),
    }
}
