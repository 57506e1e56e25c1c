//! Connected clients: what SHOW CLIENTS lists, and the cancel keys pgfleet handed out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Where a cancel request for a client must go right now: the server connection running its query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelTarget {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// The backend's BackendKeyData.
    pub key: (i32, i32),
}

/// What a client is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Waiting for the client's next request.
    Idle,
    /// Waiting for a server connection.
    Waiting,
    /// A server connection is running its request or transaction.
    Active,
}

impl ClientState {
    /// Name in SHOW CLIENTS.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientState::Idle => "idle",
            ClientState::Waiting => "waiting",
            ClientState::Active => "active",
        }
    }
}

/// A client's traffic, for SHOW STATS. Each session counts its own (in its [`ClientInfo`], a
/// cache line only that session writes); the totals add up the connected clients and those gone
/// ([`ClientRegistry::traffic`]). A process-wide counter would be one cache line every transaction
/// on every worker thread writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Requests (Query or Sync) forwarded.
    pub requests: u64,
    /// Transactions (server checkouts in transaction mode; one per shard of a cross-shard one).
    pub transactions: u64,
    /// Bytes received from the client (messages taken in).
    pub bytes_in: u64,
    /// Bytes sent to the client.
    pub bytes_out: u64,
}

impl Traffic {
    fn add(&mut self, other: Traffic) {
        self.requests += other.requests;
        self.transactions += other.transactions;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
    }
}

/// One connected client.
#[derive(Debug)]
pub struct ClientInfo {
    /// What its session writes at every transaction, first and in one cache line of its own.
    live: Live,
    /// Unique id within the process.
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// User it logged in as.
    pub user: String,
    /// Database it connected to.
    pub database: String,
    /// application_name from its startup packet.
    pub application_name: String,
    /// When it connected.
    pub connected_at: SystemTime,
    /// Cancel key pgfleet gave it (pid, secret).
    pub cancel_key: (i32, i32),
    /// Held while a cancel request is forwarded, and taken to start a FunctionCall settings sync:
    /// a cancel never lands on one (see [`ClientInfo::start_settings_calls`]).
    cancel_gate: tokio::sync::Mutex<()>,
    /// Woken when the session must end at its next idle moment (shutdown). Per client, so an idle
    /// session waits on its own notifier instead of a process-wide one.
    pub(crate) kick: Notify,
}

/// The part of a [`ClientInfo`] its session writes at every transaction (state, server, cancel
/// target, traffic counters). One aligned cache line: with hundreds of sessions, each one's state
/// is cold by the time it runs again, and every line it touches is one more miss for PostgreSQL
/// and pgbench on the same cores too (docs/benchmarks.md).
#[derive(Debug)]
#[repr(C, align(64))]
struct Live {
    server: AtomicU64,
    requests: AtomicU64,
    transactions: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    cancel_target: Mutex<Option<Arc<CancelTarget>>>,
    state: AtomicU8,
    /// A settings sync of FunctionCalls runs on its server ahead of the client's statements.
    settings_in_flight: AtomicBool,
}

impl ClientInfo {
    /// Current state.
    pub fn state(&self) -> ClientState {
        match self.live.state.load(Ordering::Relaxed) {
            0 => ClientState::Idle,
            1 => ClientState::Waiting,
            _ => ClientState::Active,
        }
    }

    pub(crate) fn set_state(&self, s: ClientState) {
        let v = match s {
            ClientState::Idle => 0,
            ClientState::Waiting => 1,
            ClientState::Active => 2,
        };
        self.live.state.store(v, Ordering::Relaxed);
    }

    /// Its traffic so far.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            requests: self.live.requests.load(Ordering::Relaxed),
            transactions: self.live.transactions.load(Ordering::Relaxed),
            bytes_in: self.live.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.live.bytes_out.load(Ordering::Relaxed),
        }
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.live.requests.load(Ordering::Relaxed)
    }

    pub(crate) fn count_request(&self) {
        self.live.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_transactions(&self, n: u64) {
        self.live.transactions.fetch_add(n, Ordering::Relaxed);
    }

    /// Publishes the client connection's byte counts (its own running totals).
    pub(crate) fn record_io(&self, bytes_in: u64, bytes_out: u64) {
        self.live.bytes_in.store(bytes_in, Ordering::Relaxed);
        self.live.bytes_out.store(bytes_out, Ordering::Relaxed);
    }

    /// Id of the server connection it holds (0 = none).
    pub fn server(&self) -> u64 {
        self.live.server.load(Ordering::Relaxed)
    }

    pub(crate) fn attach(&self, server_id: u64, target: Arc<CancelTarget>) {
        self.live.server.store(server_id, Ordering::Relaxed);
        *self.live.cancel_target.lock() = Some(target);
        self.set_state(ClientState::Active);
    }

    pub(crate) fn detach(&self) {
        self.settings_calls_done();
        self.live.server.store(0, Ordering::Relaxed);
        *self.live.cancel_target.lock() = None;
        self.set_state(ClientState::Idle);
    }

    pub(crate) fn cancel_target(&self) -> Option<Arc<CancelTarget>> {
        self.live.cancel_target.lock().clone()
    }

    /// Before FunctionCalls of a settings sync go to the client's server, pipelined ahead of its
    /// statements. Each call is a transaction of its own: a cancel that landed on one would fail
    /// it, and the statements behind it would still run, with the server's previous settings
    /// (another tenant's context). So a cancel being forwarded is let through first, and later
    /// ones wait until [`ClientInfo::settings_calls_done`].
    pub(crate) async fn start_settings_calls(&self) {
        let _gate = self.cancel_gate.lock().await;
        self.live.settings_in_flight.store(true, Ordering::Release);
    }

    /// The server answered every FunctionCall of the sync.
    pub(crate) fn settings_calls_done(&self) {
        self.live.settings_in_flight.store(false, Ordering::Release);
    }

    /// The target for a cancel request, once no settings sync of FunctionCalls is running (waiting
    /// up to `wait`); the gate stays held until the cancel is delivered. `None`: nothing to cancel,
    /// or the sync did not end in time (the cancel is dropped rather than risk landing on it).
    pub(crate) async fn cancel_gate(
        &self,
        wait: std::time::Duration,
    ) -> Option<(tokio::sync::MutexGuard<'_, ()>, Arc<CancelTarget>)> {
        let gate = self.cancel_gate.lock().await;
        let deadline = tokio::time::Instant::now() + wait;
        while self.live.settings_in_flight.load(Ordering::Acquire) {
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        Some((gate, self.cancel_target()?))
    }
}

/// All clients, by id and by cancel key.
#[derive(Default)]
pub struct ClientRegistry {
    clients: Mutex<Clients>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Clients {
    by_key: HashMap<(i32, i32), Arc<ClientInfo>>,
    /// The traffic of clients that have left.
    gone: Traffic,
}

/// Removes the client from the registry when its session ends, however it ends.
pub(crate) struct Registered<'a> {
    registry: &'a ClientRegistry,
    pub(crate) info: Arc<ClientInfo>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut clients = self.registry.clients.lock();
        clients.by_key.remove(&self.info.cancel_key);
        clients.gone.add(self.info.traffic());
    }
}

impl ClientRegistry {
    pub(crate) fn register(
        &self,
        addr: SocketAddr,
        user: &str,
        database: &str,
        application_name: &str,
    ) -> Registered<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut clients = self.clients.lock();
        let cancel_key = loop {
            let key = (rand::random::<i32>() & 0x7fff_ffff, rand::random::<i32>());
            if !clients.by_key.contains_key(&key) {
                break key;
            }
        };
        let info = Arc::new(ClientInfo {
            id,
            addr,
            user: user.to_owned(),
            database: database.to_owned(),
            application_name: application_name.to_owned(),
            connected_at: SystemTime::now(),
            cancel_key,
            live: Live {
                server: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                transactions: AtomicU64::new(0),
                bytes_in: AtomicU64::new(0),
                bytes_out: AtomicU64::new(0),
                cancel_target: Mutex::new(None),
                state: AtomicU8::new(0),
                settings_in_flight: AtomicBool::new(false),
            },
            cancel_gate: tokio::sync::Mutex::new(()),
            kick: Notify::new(),
        });
        clients.by_key.insert(cancel_key, info.clone());
        Registered {
            registry: self,
            info,
        }
    }

    /// The client that owns a cancel key.
    pub fn by_cancel_key(&self, key: (i32, i32)) -> Option<Arc<ClientInfo>> {
        self.clients.lock().by_key.get(&key).cloned()
    }

    /// Every connected client, by id.
    pub fn list(&self) -> Vec<Arc<ClientInfo>> {
        let mut v: Vec<_> = self.clients.lock().by_key.values().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.clients.lock().by_key.len()
    }

    /// The traffic of every client since start: those connected and those gone.
    pub fn traffic(&self) -> Traffic {
        let clients = self.clients.lock();
        let mut total = clients.gone;
        for c in clients.by_key.values() {
            total.add(c.traffic());
        }
        total
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "current_thread")]
    async fn a_cancel_waits_for_a_settings_sync_of_function_calls() {
        let registry = ClientRegistry::default();
        let client = registry.register("127.0.0.1:1".parse().unwrap(), "u", "d", "");
        let info = client.info.clone();
        let target = Arc::new(CancelTarget {
            host: "127.0.0.1".into(),
            port: 1,
            key: (1, 2),
        });
        info.attach(7, target);
        info.start_settings_calls().await;
        // The sync never ends in time: the cancel is dropped, not forwarded onto it.
        assert!(info.cancel_gate(Duration::from_millis(20)).await.is_none());
        // It ends while the cancel waits: the cancel goes through then.
        let waiting = {
            let info = info.clone();
            tokio::spawn(async move { info.cancel_gate(Duration::from_secs(1)).await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        info.settings_calls_done();
        assert!(waiting.await.unwrap());
        // While a cancel is being forwarded, a new sync waits for it.
        let (gate, _) = info.cancel_gate(Duration::from_secs(1)).await.unwrap();
        let starting = {
            let info = info.clone();
            tokio::spawn(async move { info.start_settings_calls().await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(!starting.is_finished());
        drop(gate);
        starting.await.unwrap();
        assert!(info.cancel_gate(Duration::from_millis(1)).await.is_none());
        info.detach();
        assert!(
            info.cancel_gate(Duration::from_millis(1)).await.is_none(),
            "no target once detached"
        );
    }
}
