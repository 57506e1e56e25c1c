//! Why a checkout failed.

use std::time::Duration;

/// A checkout that produced no connection.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError<E> {
    /// Every connection stayed busy for the whole checkout timeout.
    #[error("no connection within {}ms (pool size {size}, {busy} busy, {waiting} waiting)", waited.as_millis())]
    Timeout {
        /// How long the caller waited.
        waited: Duration,
        /// Configured size.
        size: usize,
        /// Connections checked out at the time.
        busy: usize,
        /// Other callers waiting at the time.
        waiting: usize,
    },
    /// Opening a new connection failed.
    #[error("connect failed")]
    Connect(E),
    /// Opening a new connection took longer than the connect timeout.
    #[error("connect timed out after {}ms", .0.as_millis())]
    ConnectTimeout(Duration),
    /// The pool was closed (reload removed it, or shutdown).
    #[error("pool is closed")]
    Closed,
}
