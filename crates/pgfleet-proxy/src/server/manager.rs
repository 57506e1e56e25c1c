//! The pool manager for server connections.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use pgfleet_pool::Manager;

use super::ServerInfo;

use super::conn::ServerConn;
use super::login::login;
use super::ServerError;

/// Where and as whom a pool's connections log in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTarget {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Database name on the server.
    pub database: String,
    /// User name on the server.
    pub user: String,
    /// Password for the server, when it asks for one.
    pub password: Option<String>,
    /// Client-facing user of the pool (for SHOW SERVERS).
    pub pool_user: String,
    /// Client-facing database of the pool.
    pub pool_database: String,
    /// Per-connection prepared statement cache size.
    pub prepared_capacity: usize,
}

/// Opens server connections for one pool.
pub struct ServerManager {
    /// Login target.
    pub target: ServerTarget,
    /// Where new connections are registered for SHOW SERVERS.
    pub registry: Arc<ServerRegistry>,
}

/// Every open server connection of the process (weak references: a closed connection disappears).
#[derive(Default)]
pub struct ServerRegistry {
    servers: Mutex<Vec<Weak<ServerInfo>>>,
}

impl ServerRegistry {
    fn add(&self, info: &Arc<ServerInfo>) {
        let mut v = self.servers.lock();
        v.retain(|w| w.strong_count() > 0);
        v.push(Arc::downgrade(info));
    }

    /// Open server connections.
    pub fn list(&self) -> Vec<Arc<ServerInfo>> {
        let mut v = self.servers.lock();
        v.retain(|w| w.strong_count() > 0);
        v.iter().filter_map(Weak::upgrade).collect()
    }
}

impl Manager for ServerManager {
    type Conn = ServerConn;
    type Error = ServerError;

    async fn connect(&self) -> Result<ServerConn, ServerError> {
        let conn = login(&self.target, self.target.prepared_capacity).await?;
        self.registry.add(&conn.info);
        Ok(conn)
    }

    fn is_usable(&self, conn: &mut ServerConn) -> bool {
        conn.is_idle_and_open()
    }
}
