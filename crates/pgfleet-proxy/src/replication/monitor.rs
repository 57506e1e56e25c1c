//! The replication monitor: one task per cluster with more than one server. Every
//! `lag_check_interval` it asks each endpoint for its role and WAL position over its own
//! connection, bans endpoints that fail (with backoff), and every 10 s reloads the list of
//! non-volatile functions from the primary's `pg_proc`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgfleet_config::Config;

use super::state::ClusterState;
use super::{Lsn, ObservedRole};
use crate::pools::targets_on;
use crate::route::VolatileCatalog;
use crate::runtime::Runtime;
use crate::server::{login, ServerConn, ServerError, ServerTarget};

/// Role, WAL position (replay position on a replica, write position on a primary) and replay lag.
const PROBE_SQL: &str = "SELECT pg_catalog.pg_is_in_recovery(), \
     CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn() \
          ELSE pg_catalog.pg_current_wal_lsn() END, \
     CASE WHEN pg_catalog.pg_is_in_recovery() \
               AND pg_catalog.pg_last_wal_receive_lsn() IS DISTINCT FROM pg_catalog.pg_last_wal_replay_lsn() \
          THEN COALESCE(extract(epoch FROM now() - pg_catalog.pg_last_xact_replay_timestamp()), 0) \
          ELSE 0 END";

const CATALOG_SQL: &str = "SELECT n.nspname, p.proname, bool_and(p.provolatile <> 'v') \
     FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace GROUP BY 1, 2";

/// Least time between two monitor rounds asked for by waiting sessions (read-your-writes waits,
/// quorum writes): a round is one short query per endpoint, so a few hundred per second are cheap,
/// and a waiter learns of a replica's progress within about this long.
const URGENT_SPACING: Duration = Duration::from_millis(2);

/// How often the function catalog is reloaded. Until a new function is seen it counts as
/// volatile (its calls go to the primary), so a short period only matters for read scaling.
const CATALOG_REFRESH: Duration = Duration::from_secs(10);

/// Who the monitor logs in as: the first database (by name) on the cluster and the first user (by
/// name; users that are not admin-console users first) pgfleet has a server password for, or,
/// failing that, the first such user.
pub fn monitor_targets(config: &Config, cluster: &str) -> Option<Vec<ServerTarget>> {
    let database = config
        .databases
        .iter()
        .find(|(name, _)| crate::pools::serves(config, name, cluster))?
        .0;
    let users = config
        .users
        .iter()
        .filter(|(_, u)| !u.admin)
        .chain(config.users.iter().filter(|(_, u)| u.admin))
        .map(|(name, _)| name);
    let mut fallback = None;
    for user in users {
        if let Some(targets) = targets_on(config, user, database, cluster) {
            if targets.first().is_some_and(|t| t.password.is_some()) {
                return Some(targets);
            }
            fallback.get_or_insert(targets);
        }
    }
    fallback
}

/// What one probe found.
enum Probe {
    /// Banned: not probed this round.
    Skipped,
    /// Answered.
    Ok {
        in_recovery: bool,
        lsn: Option<Lsn>,
        lag: Duration,
    },
    /// Failed to connect or answer: the endpoint is banned.
    Failed(String),
    /// The server refused the monitor's login (credentials or database): a configuration
    /// problem, not a sign the endpoint is down, so nothing is banned.
    Refused(String),
}

async fn probe(
    slot: &mut Option<ServerConn>,
    target: &ServerTarget,
    skip: bool,
    timeout: Duration,
    login_timeout: Duration,
) -> Probe {
    if skip {
        return Probe::Skipped;
    }
    // A (re)login gets the pool's connect_timeout: SCRAM costs the server real CPU, and on a busy
    // machine a login slower than the probe timeout is not a sign of an unhealthy server. The
    // probe query itself must answer within `timeout`.
    let timeout = if slot.is_none() {
        timeout + login_timeout
    } else {
        timeout
    };
    let attempt = async {
        let conn = match slot {
            Some(c) => c,
            None => slot.insert(login(target, 1).await?),
        };
        conn.simple_query(PROBE_SQL).await
    };
    let rows = match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            *slot = None;
            let refused = matches!(&e, ServerError::Login { fields, .. }
                if fields.code().is_some_and(|c| c.starts_with("28") || c.starts_with("3D")))
                || matches!(
                    e,
                    ServerError::NoPassword { .. }
                        | ServerError::UnsupportedAuth { .. }
                        | ServerError::Scram { .. }
                );
            return if refused {
                Probe::Refused(e.to_string())
            } else {
                Probe::Failed(e.to_string())
            };
        }
        Err(_) => {
            *slot = None;
            return Probe::Failed(format!("no answer within {}ms", timeout.as_millis()));
        }
    };
    let Some([Some(recovery), lsn, lag]) = rows.first().map(|r| {
        [
            r.first().cloned().flatten(),
            r.get(1).cloned().flatten(),
            r.get(2).cloned().flatten(),
        ]
    }) else {
        return Probe::Failed("unexpected probe result".into());
    };
    Probe::Ok {
        in_recovery: recovery == "t",
        lsn: lsn.and_then(|l| Lsn::parse(&l).ok()),
        lag: lag
            .and_then(|l| l.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::ZERO),
    }
}

/// The running monitors, one per cluster with more than one server; dropping this stops them.
#[derive(Default)]
pub struct Monitors {
    running: HashMap<String, (Arc<ClusterState>, tokio::task::JoinHandle<()>)>,
}

impl Monitors {
    /// Starts a monitor for every configured cluster with more than one server that has none
    /// (at start, and for clusters a reload added or gave a fresh state), and stops the monitors
    /// of clusters that are gone or down to one server.
    pub fn reconcile(&mut self, rt: &Arc<Runtime>) {
        let config = rt.config();
        let wanted: HashMap<&String, Arc<ClusterState>> = config
            .clusters
            .iter()
            .filter(|(_, c)| c.servers.len() > 1)
            .filter_map(|(name, _)| Some((name, rt.clusters().get(&config, name)?)))
            .collect();
        self.running.retain(|name, (state, task)| {
            let keep = wanted.get(name).is_some_and(|w| Arc::ptr_eq(w, state));
            if !keep {
                task.abort();
            }
            keep
        });
        for (name, state) in wanted {
            if !self.running.contains_key(name) {
                tracing::info!(cluster = %name, "starting the replication monitor");
                let task = tokio::spawn(run(rt.clone(), state.clone()));
                self.running.insert(name.clone(), (state, task));
            }
        }
    }
}

impl Drop for Monitors {
    fn drop(&mut self) {
        for (_, task) in self.running.values() {
            task.abort();
        }
    }
}

/// Probes the cluster's endpoints forever (until the task is aborted at shutdown).
pub async fn run(rt: Arc<Runtime>, state: Arc<ClusterState>) {
    let mut conns: Vec<Option<ServerConn>> = Vec::new();
    let mut catalog_loaded_at: Option<Instant> = None;
    loop {
        let settings = state.settings.load_full();
        let config = rt.config();
        let Some(targets) = monitor_targets(&config, &state.name) else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        conns.resize_with(targets.len(), || None);
        let now = Instant::now();
        let skip: Vec<bool> = {
            let view = state.view.read();
            (0..targets.len())
                .map(|i| view.endpoints.get(i).is_some_and(|e| !e.is_available(now)))
                .collect()
        };
        let probes = conns
            .iter_mut()
            .zip(&targets)
            .zip(&skip)
            .map(|((slot, target), &skip)| {
                probe(
                    slot,
                    target,
                    skip,
                    settings.health_check_interval,
                    config.pool.connect_timeout,
                )
            });
        let results = futures::future::join_all(probes).await;
        let busy = rt.pools.busy_by_endpoint(&state.name, targets.len());
        let now = Instant::now();
        {
            let mut view = state.view.write();
            let mut primary_lsn = None;
            for (i, result) in results.iter().enumerate() {
                let Some(e) = view.endpoints.get_mut(i) else {
                    continue;
                };
                e.active_connections = busy.get(i).copied().unwrap_or(0);
                match result {
                    Probe::Skipped => {}
                    Probe::Refused(why) => {
                        tracing::error!(cluster = %state.name, endpoint = %e.address, error = %why, "the replication monitor cannot log in; roles stay as configured and nothing is banned");
                    }
                    Probe::Failed(why) => {
                        let ban = e.mark_failure(now);
                        tracing::warn!(cluster = %state.name, endpoint = %e.address, error = %why, ban_ms = ban.as_millis() as u64, "endpoint failed its check");
                    }
                    Probe::Ok {
                        in_recovery,
                        lsn,
                        lag,
                    } => {
                        e.mark_healthy();
                        if *in_recovery {
                            e.observed_role = ObservedRole::Replica;
                            e.replay_lsn = *lsn;
                            e.replay_lag = *lag;
                        } else {
                            e.observed_role = ObservedRole::Primary;
                            e.replay_lsn = *lsn;
                            e.replay_lag = Duration::ZERO;
                            primary_lsn = primary_lsn.or(*lsn);
                        }
                    }
                }
            }
            view.primary_lsn = primary_lsn;
            // Time lag only means something while a replica is behind in bytes: otherwise
            // `now() - pg_last_xact_replay_timestamp()` is just the time since the last commit.
            if let Some(p) = primary_lsn {
                for e in view.endpoints.iter_mut() {
                    if e.observed_role == ObservedRole::Replica
                        && e.replay_lsn.is_some_and(|r| r >= p)
                    {
                        e.replay_lag = Duration::ZERO;
                    }
                }
            }
        }
        if catalog_loaded_at.is_none_or(|t| t.elapsed() >= CATALOG_REFRESH) {
            let primary = state.view.read().primary(now).ok();
            if let Some(conn) = primary
                .and_then(|i| conns.get_mut(i))
                .and_then(Option::as_mut)
            {
                match conn.simple_query(CATALOG_SQL).await {
                    Ok(rows) => {
                        let pairs = rows.into_iter().filter_map(|r| {
                            match (r.first(), r.get(1), r.get(2)) {
                                (Some(Some(s)), Some(Some(n)), Some(Some(safe))) => {
                                    Some((s.clone(), n.clone(), safe == "t"))
                                }
                                _ => None,
                            }
                        });
                        state
                            .catalog
                            .store(Arc::new(VolatileCatalog::from_rows(pairs)));
                        catalog_loaded_at = Some(Instant::now());
                    }
                    Err(e) => {
                        tracing::warn!(cluster = %state.name, error = %e, "loading the function catalog failed")
                    }
                }
            }
        }
        state.round_done();
        tokio::select! {
            _ = tokio::time::sleep(settings.lag_check_interval) => {}
            _ = state.urgent_requested() => {
                // Sessions are waiting for replicas to catch up: measure again soon, but leave the
                // servers a breath between rounds.
                tokio::time::sleep(URGENT_SPACING.min(settings.lag_check_interval)).await;
            }
        }
    }
}
