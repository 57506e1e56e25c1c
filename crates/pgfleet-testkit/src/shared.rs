//! [`SharedCluster`]: one cluster for the tests of a test binary that run at the same time.
//!
//! A `static` cluster would never be dropped (statics are not), leaving its postmaster running
//! after the test process exits. Instead the slot keeps only a weak reference: every test holds
//! an `Arc` while it runs, the first test to start boots the cluster, and the last one to finish
//! stops it (a later test boots a fresh one). Tests isolate themselves inside it, e.g. with a
//! database each.

use std::sync::{Arc, Mutex, Weak};

use crate::{Cluster, ClusterOptions, Result};

/// A lazily started cluster shared by concurrently running tests; see the module docs.
pub struct SharedCluster {
    slot: Mutex<Weak<Cluster>>,
    options: fn() -> ClusterOptions,
}

impl SharedCluster {
    /// A slot whose cluster starts with `options()`; usable in a `static`.
    pub const fn new(options: fn() -> ClusterOptions) -> SharedCluster {
        SharedCluster {
            slot: Mutex::new(Weak::new()),
            options,
        }
    }

    /// The running cluster, started now when no test holds one.
    pub fn get(&self) -> Result<Arc<Cluster>> {
        // A test that panicked while holding the lock leaves it poisoned; the Weak inside is
        // still valid.
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cluster) = slot.upgrade() {
            return Ok(cluster);
        }
        let cluster = Arc::new(Cluster::start_with((self.options)())?);
        *slot = Arc::downgrade(&cluster);
        Ok(cluster)
    }
}
