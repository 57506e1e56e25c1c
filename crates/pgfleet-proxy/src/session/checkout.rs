//! Getting a server connection for a client, with errors that say what happened.

use std::time::Duration;

use pgfleet_pool::{CheckoutError, Guard, Waiter};

use crate::pools::PoolEntry;
use crate::runtime::Runtime;
use crate::server::{ServerConn, ServerError, ServerManager};
use crate::stats::Stats;
use crate::ProxyError;

fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 || d >= Duration::from_secs(10) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Waits while PAUSE is in effect, then checks out a connection from the pool.
pub(crate) async fn checkout(
    rt: &Runtime,
    entry: &PoolEntry,
) -> Result<Guard<ServerManager>, ProxyError> {
    checkout_preferring(rt, entry, None, None).await
}

/// As [`checkout`], preferring an idle connection `prefer` accepts (see
/// [`pgfleet_pool::Pool::get_preferring`]), and waiting with `waiter` when given (a session's
/// own, see [`pgfleet_pool::Pool::get_timed`]).
pub(crate) async fn checkout_preferring(
    rt: &Runtime,
    entry: &PoolEntry,
    prefer: Option<pgfleet_pool::Prefer<'_, ServerConn>>,
    waiter: Option<&mut Waiter<ServerConn>>,
) -> Result<Guard<ServerManager>, ProxyError> {
    if rt.is_paused() {
        rt.wait_unpaused().await;
    }
    if rt.is_shutting_down() {
        return Err(ProxyError::ShuttingDown);
    }
    let got = match waiter {
        Some(waiter) => entry.pool.get_timed(prefer, waiter).await,
        None => entry.pool.get_preferring(prefer).await,
    };
    got.map_err(|e| checkout_error(rt, entry, e))
}

/// What a client is told when its checkout from `entry` failed.
pub(crate) fn checkout_error(
    rt: &Runtime,
    entry: &PoolEntry,
    e: CheckoutError<ServerError>,
) -> ProxyError {
    match e {
        CheckoutError::Timeout {
            size,
            busy,
            waiting,
            ..
        } => {
            Stats::add(&rt.stats().checkout_timeouts, 1);
            ProxyError::PoolExhausted(format!(
                "no server connection for {}@{} within {} (pool_size {size}, {busy} busy, {waiting} waiting)",
                entry.key.0,
                entry.key.1,
                human(entry.settings().checkout_timeout)
            ))
        }
        CheckoutError::Connect(e) => ProxyError::Server(e),
        CheckoutError::ConnectTimeout(d) => ProxyError::Server(ServerError::Connect {
            addr: format!("{}:{}", entry.target().host, entry.target().port),
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("timed out after {}", human(d)),
            ),
        }),
        CheckoutError::Closed => ProxyError::ShuttingDown,
    }
}
