//! What one server connection is doing, for SHOW SERVERS.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::SystemTime;

/// Lifecycle of a server connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// In the pool.
    Idle,
    /// Checked out by a client.
    Active,
}

impl ServerState {
    /// Name shown in SHOW SERVERS.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Idle => "idle",
            ServerState::Active => "active",
        }
    }
}

/// Shared, lock-free view of one server connection.
#[derive(Debug)]
pub struct ServerInfo {
    /// Unique id within this pgfleet process.
    pub id: u64,
    /// host:port.
    pub addr: String,
    /// (user, database) of the pool.
    pub pool: (String, String),
    /// Backend process id.
    pub pid: i32,
    /// When it was opened.
    pub connected_at: SystemTime,
    state: AtomicU8,
    client: AtomicU64,
    /// Requests (Sync or Query) it served.
    pub requests: AtomicU64,
}

impl ServerInfo {
    pub(crate) fn new(id: u64, addr: String, pool: (String, String), pid: i32) -> ServerInfo {
        ServerInfo {
            id,
            addr,
            pool,
            pid,
            connected_at: SystemTime::now(),
            state: AtomicU8::new(0),
            client: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerState {
        match self.state.load(Ordering::Relaxed) {
            0 => ServerState::Idle,
            _ => ServerState::Active,
        }
    }

    /// The client id holding it (0 when idle).
    pub fn client(&self) -> u64 {
        self.client.load(Ordering::Relaxed)
    }

    pub(crate) fn set_active(&self, client: u64) {
        self.client.store(client, Ordering::Relaxed);
        self.state.store(1, Ordering::Relaxed);
    }

    pub(crate) fn set_idle(&self) {
        self.client.store(0, Ordering::Relaxed);
        self.state.store(0, Ordering::Relaxed);
    }
}
