//! Which server serves a read: the replicas that qualify (healthy, within the lag limits, fresh
//! enough for the session's consistency level), then the cluster's `primary_reads` rule, then the
//! load-balancing strategy. Pure: the caller supplies the counter, the random number and the time.

use std::fmt;
use std::time::{Duration, Instant};

use pgfleet_config::{ClusterConfig, LoadBalancing, PrimaryReads};

use super::lsn::{bytes_text, Lsn};
use super::topology::{duration_text, ClusterView, EndpointState, PrimaryError};

/// The rules one read is placed by: the cluster's settings plus the session's consistency level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadPolicy {
    /// The strategy among qualifying servers.
    pub load_balancing: LoadBalancing,
    /// Whether, and when, the primary serves reads.
    pub primary_reads: PrimaryReads,
    /// Replicas more than this many bytes of WAL behind the primary do not qualify.
    pub max_lag_bytes: u64,
    /// Replicas whose replay lag exceeds this do not qualify.
    pub max_lag_time: Duration,
    /// Read-your-writes / causal reads: only replicas whose replay LSN has reached this qualify.
    pub min_lsn: Option<Lsn>,
    /// Bounded staleness (`pgfleet.max_staleness`): only replicas whose replay lag is at most
    /// this qualify (in addition to `max_lag_time`).
    pub max_staleness: Option<Duration>,
}

impl ReadPolicy {
    /// Eventual consistency under the cluster's settings; set `min_lsn` or `max_staleness` for
    /// the stricter levels. (Strong consistency never asks for a reader: it uses
    /// [`ClusterView::primary`].)
    pub fn from_cluster(cluster: &ClusterConfig) -> Self {
        ReadPolicy {
            load_balancing: cluster.load_balancing,
            primary_reads: cluster.primary_reads,
            max_lag_bytes: cluster.max_lag_bytes,
            max_lag_time: cluster.max_lag_time,
            min_lsn: None,
            max_staleness: None,
        }
    }
}

/// Why one replica was passed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Failed a check or connect; banned for `left` more.
    Banned {
        /// Time left on the ban.
        left: Duration,
    },
    /// Its replay position has not been measured yet, so its lag is unknown.
    ReplayUnknown,
    /// More WAL behind the primary than `max_lag_bytes`.
    LagBytes {
        /// Bytes behind.
        lag: u64,
        /// The limit.
        max: u64,
    },
    /// Replay lag over `max_lag_time`.
    LagTime {
        /// The replica's replay lag.
        lag: Duration,
        /// The limit.
        max: Duration,
    },
    /// Has not replayed the session's last write (read-your-writes) yet.
    BehindLsn {
        /// Its replay position.
        replay: Lsn,
        /// The position reads must see.
        min: Lsn,
    },
    /// Staler than the session's bounded-staleness limit.
    Stale {
        /// The replica's replay lag.
        lag: Duration,
        /// `pgfleet.max_staleness`.
        max: Duration,
    },
}

impl SkipReason {
    /// True when the replica may qualify again without an operator: everything but a ban is
    /// replication catching up, and bans run out. Read-your-writes uses this to decide whether
    /// waiting (`ryw_wait`) can help.
    pub fn may_catch_up(&self) -> bool {
        matches!(
            self,
            SkipReason::ReplayUnknown
                | SkipReason::LagBytes { .. }
                | SkipReason::LagTime { .. }
                | SkipReason::BehindLsn { .. }
                | SkipReason::Stale { .. }
        )
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Banned { left } => {
                write!(f, "banned for {} after failing", duration_text(*left))
            }
            SkipReason::ReplayUnknown => f.write_str("replay position not measured yet"),
            SkipReason::LagBytes { lag, max } => write!(
                f,
                "lag {} > max_lag_bytes {}",
                bytes_text(*lag),
                bytes_text(*max)
            ),
            SkipReason::LagTime { lag, max } => write!(
                f,
                "lag {} > max_lag_time {}",
                duration_text(*lag),
                duration_text(*max)
            ),
            SkipReason::BehindLsn { replay, min } => {
                write!(f, "replayed up to {replay}, this session needs {min}")
            }
            SkipReason::Stale { lag, max } => write!(
                f,
                "lag {} > pgfleet.max_staleness {}",
                duration_text(*lag),
                duration_text(*max)
            ),
        }
    }
}

/// One replica that did not qualify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Endpoint index.
    pub index: usize,
    /// Its `host:port`.
    pub address: String,
    /// Why.
    pub reason: SkipReason,
}

/// Why the primary did not serve the read either.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrimaryNotUsed {
    /// `primary_reads = "never"`.
    NotAllowed,
    /// The cluster has no usable primary right now.
    Unavailable(PrimaryError),
}

/// No server can serve a read; the message says why for every replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoReader {
    /// Replicas in the cluster (by reported, else configured, role).
    pub replicas: usize,
    /// Each replica and why it was passed over.
    pub skipped: Vec<Skipped>,
    /// Why the primary was not used.
    pub primary: PrimaryNotUsed,
}

impl NoReader {
    /// True when some replica may qualify after waiting (lag catching up, a ban running out).
    pub fn retry_may_help(&self) -> bool {
        self.skipped
            .iter()
            .any(|s| s.reason.may_catch_up() || matches!(s.reason, SkipReason::Banned { .. }))
    }
}

impl fmt::Display for NoReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no server can serve this read: ")?;
        match self.replicas {
            0 => f.write_str("the cluster has no replicas")?,
            1 => f.write_str("the only replica is banned or lagging")?,
            n => write!(f, "all {n} replicas are banned or lagging")?,
        }
        if !self.skipped.is_empty() {
            let details: Vec<String> = self
                .skipped
                .iter()
                .map(|s| format!("replica {} {}", s.address, s.reason))
                .collect();
            write!(f, " ({})", details.join("; "))?;
        }
        match &self.primary {
            PrimaryNotUsed::NotAllowed => {
                f.write_str(", and primary_reads = \"never\" keeps reads off the primary")
            }
            PrimaryNotUsed::Unavailable(e) => write!(f, ", and the primary cannot serve it: {e}"),
        }
    }
}

impl std::error::Error for NoReader {}

/// Whether a replica qualifies under `policy`, and if not, why.
pub fn check_replica(
    endpoint: &EndpointState,
    primary_lsn: Option<Lsn>,
    policy: &ReadPolicy,
    now: Instant,
) -> Result<(), SkipReason> {
    if let Some(left) = endpoint.banned_for(now) {
        return Err(SkipReason::Banned { left });
    }
    // Without a measured position a replica's lag is unknown; it may be hours behind.
    let replay = endpoint.replay_lsn.ok_or(SkipReason::ReplayUnknown)?;
    // Without a primary position (no primary: failover in progress) replicas keep serving reads
    // within the time limit, which still bounds how stale they are.
    if let Some(lag) = primary_lsn.map(|p| p.bytes_since(replay)) {
        if lag > policy.max_lag_bytes {
            return Err(SkipReason::LagBytes {
                lag,
                max: policy.max_lag_bytes,
            });
        }
    }
    let lag = endpoint.replay_lag;
    if lag > policy.max_lag_time {
        return Err(SkipReason::LagTime {
            lag,
            max: policy.max_lag_time,
        });
    }
    if let Some(min) = policy.min_lsn.filter(|min| replay < *min) {
        return Err(SkipReason::BehindLsn { replay, min });
    }
    if let Some(max) = policy.max_staleness.filter(|max| lag > *max) {
        return Err(SkipReason::Stale { lag, max });
    }
    Ok(())
}

/// The endpoint that serves one read.
///
/// Candidates are the replicas that pass [`check_replica`]; `primary_reads = "always"` adds the
/// primary, `"fallback"` uses it only when no replica qualifies (the primary is never stale, so
/// it meets every consistency level). Candidates of weight 0 are used only when every candidate
/// has weight 0. Then: round robin takes candidate `rr_counter mod n`; least connections the
/// fewest `active_connections` (ties: lowest index); random draws with `random` in proportion
/// to `weight`.
pub fn pick_reader(
    view: &ClusterView,
    policy: &ReadPolicy,
    rr_counter: u64,
    random: u64,
    now: Instant,
) -> Result<usize, NoReader> {
    let replicas = view.replicas();
    let mut candidates = Vec::with_capacity(replicas.len() + 1);
    let mut skipped = Vec::new();
    for &i in &replicas {
        let endpoint = &view.endpoints[i];
        match check_replica(endpoint, view.primary_lsn, policy, now) {
            Ok(()) => candidates.push(i),
            Err(reason) => skipped.push(Skipped {
                index: i,
                address: endpoint.address.clone(),
                reason,
            }),
        }
    }
    let wants_primary = match policy.primary_reads {
        PrimaryReads::Always => true,
        PrimaryReads::Fallback => candidates.is_empty(),
        PrimaryReads::Never => false,
    };
    let mut primary_not_used = PrimaryNotUsed::NotAllowed;
    if wants_primary {
        match view.primary(now) {
            Ok(p) => candidates.push(p),
            Err(e) => primary_not_used = PrimaryNotUsed::Unavailable(e),
        }
    }
    if candidates.is_empty() {
        return Err(NoReader {
            replicas: replicas.len(),
            skipped,
            primary: primary_not_used,
        });
    }
    // Index order keeps round robin and least-connections ties independent of how the list grew.
    candidates.sort_unstable();
    if candidates.iter().any(|&i| view.endpoints[i].weight > 0) {
        candidates.retain(|&i| view.endpoints[i].weight > 0);
    }
    Ok(choose(
        view,
        policy.load_balancing,
        &candidates,
        rr_counter,
        random,
    ))
}

/// Applies the strategy to a non-empty candidate list (ascending indices).
fn choose(
    view: &ClusterView,
    strategy: LoadBalancing,
    candidates: &[usize],
    rr_counter: u64,
    random: u64,
) -> usize {
    let n = candidates.len() as u64;
    let by_counter = |k: u64| candidates[(k % n) as usize];
    match strategy {
        LoadBalancing::RoundRobin => by_counter(rr_counter),
        LoadBalancing::LeastConnections => candidates
            .iter()
            .copied()
            .min_by_key(|&i| (view.endpoints[i].active_connections, i))
            .unwrap_or_else(|| by_counter(rr_counter)),
        LoadBalancing::Random => {
            let total: u64 = candidates
                .iter()
                .map(|&i| u64::from(view.endpoints[i].weight))
                .sum();
            if total == 0 {
                return by_counter(random);
            }
            let mut point = random % total;
            for &i in candidates {
                let w = u64::from(view.endpoints[i].weight);
                if point < w {
                    return i;
                }
                point -= w;
            }
            // Unreachable: `point < total`, the sum of the weights walked above.
            by_counter(random)
        }
    }
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
