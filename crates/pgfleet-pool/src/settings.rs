//! Pool sizes and timeouts.

use std::time::Duration;

/// Run-time settings of one pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Maximum connections (idle + checked out).
    pub size: usize,
    /// Idle connections kept open ahead of demand by [`crate::Pool::maintain`].
    pub min_idle: usize,
    /// Longest wait for a free connection.
    pub checkout_timeout: Duration,
    /// Longest time to open one connection.
    pub connect_timeout: Duration,
    /// Idle connections older than this (idle time) are closed, down to `min_idle`. Zero: never.
    pub idle_timeout: Duration,
    /// Connections older than this are closed when next idle. Zero: no limit.
    pub lifetime: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            size: 20,
            min_idle: 0,
            checkout_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(600),
            lifetime: Duration::from_secs(3600),
        }
    }
}
