//! RELOAD, PAUSE, RESUME, SHUTDOWN: thin actions on the runtime, around pure decisions
//! ([`plan_reload`], [`wait_until_idle`]'s polling rule).

use std::future::Future;
use std::time::Duration;

use pgfleet_config::{Config, ReloadDiff};
use pgfleet_proxy::Runtime;
use tokio::time::Instant;

use crate::error::AdminError;

/// How often PAUSE checks for busy server connections.
pub const PAUSE_POLL: Duration = Duration::from_millis(20);
/// How long PAUSE waits before giving up and resuming.
pub const PAUSE_LIMIT: Duration = Duration::from_secs(60);

/// The config to apply on RELOAD and what changed. `proxy.listen` cannot change without a restart,
/// so the running address is kept (SHOW CONFIG then shows the address actually listened on) and
/// the diff reports `listen_changed` for a warning.
pub fn plan_reload(running: &Config, mut loaded: Config) -> (Config, ReloadDiff) {
    let diff = running.diff(&loaded);
    loaded.proxy.listen = running.proxy.listen;
    (loaded, diff)
}

/// RELOAD: re-reads the config file; on any problem the running config stays.
pub fn reload(rt: &Runtime) -> Result<(), AdminError> {
    let Some(path) = rt.config_path() else {
        return Err(AdminError::NoConfigFile);
    };
    // A blocking read of a small local file; admin commands are rare, so this does not warrant
    // a blocking-pool hop.
    let loaded = Config::load(path).map_err(|errors| AdminError::InvalidConfig {
        path: path.display().to_string(),
        errors,
    })?;
    let running = rt.config();
    let requested = loaded.proxy.listen;
    let (new, diff) = plan_reload(&running, loaded);
    if diff.listen_changed {
        tracing::warn!(
            running = %running.proxy.listen,
            requested = %requested,
            "proxy.listen changed in the config file; restart pgfleet to listen on the new address (the rest of the config was applied)"
        );
    }
    tracing::info!(
        path = %path.display(),
        pools_changed = diff.pools_changed.len(),
        clusters_changed = ?diff.clusters_changed,
        databases_changed = ?diff.databases_changed,
        users_changed = ?diff.users_changed,
        proxy_changed = diff.proxy_changed,
        "config reloaded"
    );
    rt.apply_config(new);
    Ok(())
}

/// PAUSE: holds new transactions, then waits until no pool has a busy server connection. After
/// [`PAUSE_LIMIT`] it resumes and fails, so a forgotten PAUSE cannot stall the fleet.
pub async fn pause(rt: &Runtime) -> Result<(), AdminError> {
    rt.pause();
    let busy = || {
        rt.pools()
            .list()
            .iter()
            .map(|p| p.stats().busy)
            .sum::<usize>()
    };
    match wait_until_idle(busy, PAUSE_POLL, PAUSE_LIMIT, tokio::time::sleep).await {
        Ok(()) => {
            tracing::info!("paused: no server connection is busy");
            Ok(())
        }
        Err(busy) => {
            rt.resume();
            tracing::warn!(busy, "pause timed out; resumed");
            Err(AdminError::PauseTimeout {
                waited: PAUSE_LIMIT,
                busy,
            })
        }
    }
}

/// Polls `busy` every `poll` until it returns 0 (`Ok`) or `limit` has passed (`Err` with the last
/// count). `sleep` is injected so tests can run without real waiting.
pub async fn wait_until_idle<S, F>(
    busy: impl Fn() -> usize,
    poll: Duration,
    limit: Duration,
    sleep: S,
) -> Result<(), usize>
where
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    let deadline = Instant::now() + limit;
    let mut elapsed = Duration::ZERO;
    loop {
        let n = busy();
        if n == 0 {
            return Ok(());
        }
        // Either clock may run out: real time (production) or summed sleeps (tests with an
        // instant `sleep`).
        if elapsed >= limit || Instant::now() >= deadline {
            return Err(n);
        }
        sleep(poll).await;
        elapsed += poll;
    }
}

/// RESUME.
pub fn resume(rt: &Runtime) {
    rt.resume();
    tracing::info!("resumed");
}

/// SHUTDOWN: starts the graceful shutdown; this admin session ends with the others.
pub fn shutdown(rt: &Runtime) {
    tracing::info!("shutdown requested from the admin console");
    rt.shutdown();
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn load(text: &str) -> Config {
        match Config::from_toml_str(text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn reload_keeps_the_running_listen_address() {
        let running = load("[proxy]\nlisten = \"127.0.0.1:6432\"\n[pool]\npool_size = 5\n");
        let loaded = load("[proxy]\nlisten = \"0.0.0.0:7000\"\n[pool]\npool_size = 9\n");
        let (new, diff) = plan_reload(&running, loaded);
        assert!(diff.listen_changed);
        assert_eq!(new.proxy.listen, running.proxy.listen);
        assert_eq!(new.pool.pool_size, 9);
    }

    #[test]
    fn reload_without_listen_change() {
        let running = load("[pool]\npool_size = 5\n");
        let (new, diff) = plan_reload(&running, running.clone());
        assert!(diff.is_empty());
        assert_eq!(new, running);
    }

    async fn no_sleep(_: Duration) {}

    #[tokio::test]
    async fn wait_returns_once_idle() {
        let calls = Cell::new(0usize);
        let busy = || {
            calls.set(calls.get() + 1);
            3usize.saturating_sub(calls.get())
        };
        let r = wait_until_idle(busy, PAUSE_POLL, PAUSE_LIMIT, no_sleep).await;
        assert_eq!(r, Ok(()));
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test]
    async fn wait_gives_up_after_the_limit() {
        let calls = Cell::new(0usize);
        let busy = || {
            calls.set(calls.get() + 1);
            2
        };
        let limit = Duration::from_millis(100);
        let r = wait_until_idle(busy, Duration::from_millis(20), limit, no_sleep).await;
        assert_eq!(r, Err(2));
        // Checks at 0, 20, …, 100 ms of summed sleep.
        assert_eq!(calls.get(), 6);
    }
}
