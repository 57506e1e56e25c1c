//! Accepting client connections, with the connection limit and graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::net::TcpListener;

use crate::client::{handle_connection, ClientConn};
use crate::runtime::Runtime;
use crate::stats::Stats;

/// A bound listener and the runtime it serves.
pub struct Proxy {
    listener: TcpListener,
    rt: Arc<Runtime>,
}

/// Counts open client connections; decremented when the connection task ends.
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Proxy {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(rt: Arc<Runtime>, addr: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Proxy { listener, rt })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }

    /// Accepts clients until shutdown starts, then waits (up to `proxy.shutdown_timeout`) for
    /// clients to finish their transactions and leave.
    pub async fn run(self) {
        let rt = self.rt.clone();
        let open = Arc::new(AtomicUsize::new(0));
        let maintenance = tokio::spawn(maintain(rt.clone()));
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let max = rt.config().proxy.max_client_connections;
                    let slot = Slot(open.clone());
                    if open.fetch_add(1, Ordering::AcqRel) >= max {
                        Stats::add(&rt.stats().clients_refused, 1);
                        let mut c = ClientConn::new(stream, Default::default(), 1024);
                        tokio::spawn(async move {
                            let _slot = slot;
                            c.fatal("53300", &format!("pgfleet: sorry, too many clients already (max_client_connections {max})")).await;
                        });
                        continue;
                    }
                    let rt = rt.clone();
                    tokio::spawn(handle_connection(rt, stream, peer, slot));
                }
                _ = rt.shutdown_started() => break,
            }
        }
        drop(self.listener);
        let deadline = tokio::time::Instant::now() + rt.config().proxy.shutdown_timeout;
        while open.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Also stops the replication monitors, which the maintenance task owns.
        maintenance.abort();
        rt.pools.close_all();
    }
}

/// Background upkeep: pool idle timeouts, lifetimes and min_idle; pruning the statement table;
/// replication monitors for clusters a reload added (and none for those it removed).
async fn maintain(rt: Arc<Runtime>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut monitors = crate::replication::monitor::Monitors::default();
    // Two-phase recovery: shortly after start (servers may still be coming up), then every minute.
    let mut recovery_due = Instant::now() + Duration::from_secs(1);
    let mut recovery = None;
    loop {
        tick.tick().await;
        // First: pool upkeep may wait on connects to a slow server, monitors must not.
        monitors.reconcile(&rt);
        // Pools created from a config snapshot older than the last reload go (see apply_config).
        rt.pools.reconcile(&rt.config());
        rt.pools.maintain().await;
        rt.prepared.prune();
        recover_in_doubt(&rt, &mut recovery_due, &mut recovery);
    }
}

/// Finishes the in-doubt two-phase transactions of this instance when due (see
/// `fanout::recover`).
fn recover_in_doubt(
    rt: &Arc<Runtime>,
    due: &mut Instant,
    running: &mut Option<tokio::task::JoinHandle<Result<(), ()>>>,
) {
    // A pass in its own task: it may wait for servers, and pool upkeep must not wait with it;
    // none while PAUSEd (its checkouts would wait) or while the previous pass runs.
    if let Some(pass) = running.take() {
        if !pass.is_finished() {
            *running = Some(pass);
            return;
        }
        if let Some(Ok(Err(()))) = pass.now_or_never() {
            *due = Instant::now() + Duration::from_secs(5);
        }
    }
    if Instant::now() < *due || rt.is_shutting_down() || rt.is_paused() {
        return;
    }
    *due = Instant::now() + RECOVERY_INTERVAL;
    let rt = rt.clone();
    *running = Some(tokio::spawn(async move {
        match crate::fanout::recover::recover(&rt).await {
            Ok(r) if r.committed + r.rolled_back > 0 => {
                tracing::warn!(
                    committed = r.committed,
                    rolled_back = r.rolled_back,
                    "two-phase recovery finished in-doubt transactions"
                );
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "two-phase recovery failed; retrying in 5s");
                Err(())
            }
        }
    }));
}

/// How often pgfleet looks for in-doubt two-phase transactions of its own.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(60);
