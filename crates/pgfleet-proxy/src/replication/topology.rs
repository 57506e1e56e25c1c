//! What pgfleet knows about one cluster's servers at an instant: each endpoint's role (configured
//! and observed), health with bans, replay position and lag, load. The I/O monitor fills a
//! [`ClusterView`]; the pure decisions ([`ClusterView::primary`], [`crate::replication::pick_reader`])
//! read it.

use std::fmt;
use std::time::{Duration, Instant};

use pgfleet_config::{ClusterConfig, ServerConfig, ServerRole};

use super::lsn::Lsn;

/// The role a server reported for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ObservedRole {
    /// `pg_is_in_recovery()` returned false: the server accepts writes.
    Primary,
    /// `pg_is_in_recovery()` returned true: a standby replaying WAL.
    Replica,
    /// Not asked yet, or the server failed since it last answered.
    #[default]
    Unknown,
}

/// Whether an endpoint may receive new requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Health {
    /// Passing checks.
    #[default]
    Healthy,
    /// Failed a check or a connect: no new requests until `until`, then it is tried again.
    Banned {
        /// When the ban ends.
        until: Instant,
        /// Consecutive failures so far (1 after the first); the ban length doubles with each.
        strikes: u32,
    },
}

/// Ban lengths: the first ban lasts `ban_time`, each further consecutive failure doubles it, up
/// to `max_ban_time` (`clusters.NAME.ban_time`, `max_ban_time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BanPolicy {
    /// The first ban.
    pub ban_time: Duration,
    /// The cap of the doubling.
    pub max_ban_time: Duration,
}

impl BanPolicy {
    /// The ban for the `strikes`-th consecutive failure (1-based): `ban_time · 2^(strikes-1)`,
    /// capped at `max_ban_time`.
    pub fn ban_for(&self, strikes: u32) -> Duration {
        let factor = 1u32
            .checked_shl(strikes.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.ban_time.saturating_mul(factor).min(self.max_ban_time)
    }
}

impl Default for BanPolicy {
    fn default() -> Self {
        BanPolicy {
            ban_time: Duration::from_secs(5),
            max_ban_time: Duration::from_secs(60),
        }
    }
}

/// One endpoint (server) of a cluster, by its index in the cluster's `servers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointState {
    /// `host:port` (`[host]:port` for IPv6 addresses), for messages and SHOW REPLICATION.
    pub address: String,
    /// The role written in the config (`Auto` = ask the server).
    pub configured_role: ServerRole,
    /// The role the server last reported; `Unknown` before the first check and after a failure.
    pub observed_role: ObservedRole,
    /// Healthy or banned.
    pub health: Health,
    /// `pg_last_wal_replay_lsn()` on a replica; `None` until measured.
    pub replay_lsn: Option<Lsn>,
    /// `now() - pg_last_xact_replay_timestamp()` while the replica is behind the primary, zero
    /// once it has replayed everything (an idle primary must not make replicas look stale).
    pub replay_lag: Duration,
    /// Server connections to this endpoint in use right now (the pools' statistics).
    pub active_connections: usize,
    /// Relative share of reads under random balancing; 0 = only when no other candidate qualifies.
    pub weight: u32,
    /// Ban lengths for this endpoint.
    pub ban: BanPolicy,
}

impl EndpointState {
    /// A healthy endpoint of unknown observed role, as the config describes it.
    pub fn new(server: &ServerConfig, ban: BanPolicy) -> Self {
        EndpointState {
            address: endpoint_address(&server.host, server.port),
            configured_role: server.role,
            observed_role: ObservedRole::Unknown,
            health: Health::Healthy,
            replay_lsn: None,
            replay_lag: Duration::ZERO,
            active_connections: 0,
            weight: server.weight,
            ban,
        }
    }

    /// The role pgfleet acts on: what the server reported, else what the config says.
    pub fn role(&self) -> ObservedRole {
        match (self.observed_role, self.configured_role) {
            (ObservedRole::Unknown, ServerRole::Primary) => ObservedRole::Primary,
            (ObservedRole::Unknown, ServerRole::Replica) => ObservedRole::Replica,
            (observed, _) => observed,
        }
    }

    /// True when the endpoint may receive new requests: healthy, or its ban has run out (the
    /// next request or check is the retry).
    pub fn is_available(&self, now: Instant) -> bool {
        match self.health {
            Health::Healthy => true,
            Health::Banned { until, .. } => now >= until,
        }
    }

    /// Time left on the ban, if banned at `now`.
    pub fn banned_for(&self, now: Instant) -> Option<Duration> {
        match self.health {
            Health::Banned { until, .. } if until > now => Some(until - now),
            _ => None,
        }
    }

    /// Records a failed check or connect at `now` and returns the ban in force.
    ///
    /// A failure while a ban is still running adds no strike: concurrent connects failing together
    /// are one incident, not several. A failure after the ban ran out (the retry failed) doubles
    /// the next ban. The observed role is forgotten: a server that stopped answering may come back
    /// demoted or promoted, and a stale "primary" must not count towards a split brain.
    pub fn mark_failure(&mut self, now: Instant) -> Duration {
        self.observed_role = ObservedRole::Unknown;
        let strikes = match self.health {
            Health::Banned { until, .. } if until > now => return until - now,
            Health::Banned { strikes, .. } => strikes.saturating_add(1),
            Health::Healthy => 1,
        };
        let ban = self.ban.ban_for(strikes);
        // An `Instant` overflow needs a ban of centuries; the config caps bans far below that.
        let until = now.checked_add(ban).unwrap_or(now);
        self.health = Health::Banned { until, strikes };
        ban
    }

    /// Records a passed check: the ban (and its doubling) is over.
    pub fn mark_healthy(&mut self) {
        self.health = Health::Healthy;
    }

    /// Bytes of WAL this endpoint's replay position is behind `primary_lsn`; `None` while its
    /// replay position is unknown.
    pub fn lag_bytes(&self, primary_lsn: Lsn) -> Option<u64> {
        self.replay_lsn
            .map(|replay| primary_lsn.bytes_since(replay))
    }
}

/// `host:port`, bracketing IPv6 literals as in a socket address.
pub fn endpoint_address(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Why a cluster has no server to write to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrimaryError {
    /// No reachable server is (or is configured as) primary: e.g. the primary went away and no
    /// replica has been promoted yet. Writes may wait for one (`failover_timeout`).
    #[error("no primary: {}", no_primary_detail(.servers))]
    NoPrimary {
        /// Every endpoint with what is known of it, e.g. `127.0.0.1:5432 (banned)`.
        servers: Vec<String>,
    },
    /// Two or more reachable servers report `pg_is_in_recovery() = false`. Writing to either could
    /// lose data, so writes are refused until an operator resolves it.
    #[error(
        "refusing writes: {} servers claim to be primary ({}); demote or stop all but one, pgfleet never writes to two primaries",
        .indices.len(),
        .addresses.join(" and ")
    )]
    SplitBrain {
        /// Endpoint indices of the claimants.
        indices: Vec<usize>,
        /// Their addresses, in the same order.
        addresses: Vec<String>,
    },
}

fn no_primary_detail(servers: &[String]) -> String {
    if servers.is_empty() {
        "the cluster has no servers".to_string()
    } else {
        format!(
            "no reachable server reports pg_is_in_recovery() = false ({}); waiting for a replica to be promoted",
            servers.join(", ")
        )
    }
}

/// One cluster's endpoints, in config order, and the primary's current WAL position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterView {
    /// Endpoint states; an endpoint's index is its position in `clusters.NAME.servers`.
    pub endpoints: Vec<EndpointState>,
    /// `pg_current_wal_lsn()` on the primary at the last lag check; `None` before the first one
    /// or while there is no primary.
    pub primary_lsn: Option<Lsn>,
}

impl ClusterView {
    /// The view before any check: every server healthy, roles as configured.
    pub fn from_config(cluster: &ClusterConfig) -> Self {
        let ban = BanPolicy {
            ban_time: cluster.ban_time,
            max_ban_time: cluster.max_ban_time,
        };
        ClusterView {
            endpoints: cluster
                .servers
                .iter()
                .map(|s| EndpointState::new(s, ban))
                .collect(),
            primary_lsn: None,
        }
    }

    /// Available endpoints acting as primary at `now`.
    ///
    /// A server's own answer beats the config: when any available endpoint has *reported* being
    /// primary, only reporting endpoints count (after a failover the old, configured primary may
    /// be unreachable or back as a replica). Only before any report does a configured
    /// `role = "primary"` count. Banned endpoints never count: they cannot take writes, and a
    /// dead old primary must not turn a clean failover into a split brain.
    pub fn primaries(&self, now: Instant) -> Vec<usize> {
        let available = || {
            self.endpoints
                .iter()
                .enumerate()
                .filter(move |(_, e)| e.is_available(now))
        };
        let observed: Vec<usize> = available()
            .filter(|(_, e)| e.observed_role == ObservedRole::Primary)
            .map(|(i, _)| i)
            .collect();
        if !observed.is_empty() {
            return observed;
        }
        available()
            .filter(|(_, e)| e.role() == ObservedRole::Primary)
            .map(|(i, _)| i)
            .collect()
    }

    /// The endpoint that takes writes at `now`, or why there is none.
    pub fn primary(&self, now: Instant) -> Result<usize, PrimaryError> {
        let primaries = self.primaries(now);
        match primaries.as_slice() {
            [one] => Ok(*one),
            [] => Err(PrimaryError::NoPrimary {
                servers: self.endpoints.iter().map(|e| e.describe(now)).collect(),
            }),
            many => Err(PrimaryError::SplitBrain {
                indices: many.to_vec(),
                addresses: many
                    .iter()
                    .map(|&i| self.endpoints[i].address.clone())
                    .collect(),
            }),
        }
    }

    /// Indices of endpoints acting as replicas (reported, else configured), healthy or not.
    pub fn replicas(&self) -> Vec<usize> {
        self.endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| e.role() == ObservedRole::Replica)
            .map(|(i, _)| i)
            .collect()
    }

    /// Replicas (by reported role) whose measured replay position has reached `lsn`: the count a
    /// quorum write waits for. A replica that is banned still counts if its last measured position
    /// had reached `lsn` (replayed WAL is not un-replayed); one never measured does not.
    pub fn replicas_at(&self, lsn: Lsn) -> usize {
        self.endpoints
            .iter()
            .filter(|e| e.observed_role == ObservedRole::Replica)
            .filter(|e| e.replay_lsn.is_some_and(|r| r >= lsn))
            .count()
    }
}

impl EndpointState {
    /// `address (state)` for messages, e.g. `10.0.0.1:5432 (banned for 4s)`.
    fn describe(&self, now: Instant) -> String {
        let state = match (self.banned_for(now), self.role()) {
            (Some(left), _) => format!("banned for {}", duration_text(left)),
            (None, ObservedRole::Replica) => "replica".to_string(),
            (None, ObservedRole::Primary) => "primary".to_string(),
            (None, ObservedRole::Unknown) => "role not yet known".to_string(),
        };
        format!("{} ({state})", self.address)
    }
}

/// A duration for messages, rounded to what a reader needs: `850ms`, `4.2s`, `2m 5s`.
pub(crate) fn duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let (seconds, tenth) = (ms / 1000, (ms % 1000) / 100);
        match tenth {
            0 => format!("{seconds}s"),
            _ => format!("{seconds}.{tenth}s"),
        }
    } else {
        let s = d.as_secs();
        format!("{}m {}s", s / 60, s % 60)
    }
}

impl fmt::Display for ObservedRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObservedRole::Primary => "primary",
            ObservedRole::Replica => "replica",
            ObservedRole::Unknown => "unknown",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(host: &str, role: ServerRole) -> ServerConfig {
        ServerConfig {
            host: host.to_string(),
            port: 5432,
            role,
            weight: 1,
        }
    }

    fn view(roles: &[ServerRole]) -> ClusterView {
        let servers = roles
            .iter()
            .enumerate()
            .map(|(i, r)| server(&format!("10.0.0.{}", i + 1), *r))
            .collect();
        ClusterView::from_config(&ClusterConfig::with_servers(servers))
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn bans_double_up_to_the_cap_and_recover() {
        let now = Instant::now();
        let mut e = EndpointState::new(&server("db", ServerRole::Replica), BanPolicy::default());
        assert!(e.is_available(now));
        // (seconds after start of the failure, ban expected)
        let steps = [(0, 5), (5, 10), (15, 20), (35, 40), (75, 60), (135, 60)];
        for (at, want) in steps {
            let t = now + at * S;
            assert!(e.is_available(t), "ban over at +{at}s");
            assert_eq!(e.mark_failure(t), want * S, "failure at +{at}s");
            assert!(!e.is_available(t));
            assert_eq!(e.banned_for(t), Some(want * S));
            assert!(e.is_available(t + want * S));
        }
        assert!(matches!(e.health, Health::Banned { strikes: 6, .. }));

        e.mark_healthy();
        assert_eq!(e.health, Health::Healthy);
        assert_eq!(e.mark_failure(now + 200 * S), 5 * S, "doubling restarts");
    }

    #[test]
    fn failures_during_a_ban_are_one_incident() {
        let now = Instant::now();
        let mut e = EndpointState::new(&server("db", ServerRole::Replica), BanPolicy::default());
        assert_eq!(e.mark_failure(now), 5 * S);
        assert_eq!(
            e.mark_failure(now + 2 * S),
            3 * S,
            "remaining ban, no new strike"
        );
        assert!(matches!(e.health, Health::Banned { strikes: 1, .. }));
    }

    #[test]
    fn ban_lengths() {
        let policy = BanPolicy {
            ban_time: Duration::from_millis(100),
            max_ban_time: Duration::from_secs(2),
        };
        let cases = [
            (1, 100),
            (2, 200),
            (3, 400),
            (5, 1600),
            (6, 2000),
            (40, 2000),
            (u32::MAX, 2000),
        ];
        for (strikes, ms) in cases {
            assert_eq!(
                policy.ban_for(strikes),
                Duration::from_millis(ms),
                "{strikes}"
            );
        }
    }

    #[test]
    fn failure_forgets_the_observed_role() {
        let mut e = EndpointState::new(&server("db", ServerRole::Auto), BanPolicy::default());
        e.observed_role = ObservedRole::Primary;
        e.mark_failure(Instant::now());
        assert_eq!(e.role(), ObservedRole::Unknown);
    }

    #[test]
    fn roles_reported_beat_configured() {
        use ObservedRole::{Primary as P, Replica as R, Unknown as U};
        use ServerRole::{Auto, Primary, Replica};
        let cases = [
            (Primary, U, P),
            (Replica, U, R),
            (Auto, U, U),
            (Primary, R, R),
            (Replica, P, P),
            (Auto, R, R),
        ];
        for (configured, observed, want) in cases {
            let mut e = EndpointState::new(&server("db", configured), BanPolicy::default());
            e.observed_role = observed;
            assert_eq!(e.role(), want, "{configured:?} + {observed:?}");
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(endpoint_address("10.0.0.1", 5432), "10.0.0.1:5432");
        assert_eq!(endpoint_address("db.internal", 6000), "db.internal:6000");
        assert_eq!(endpoint_address("::1", 5432), "[::1]:5432");
        assert_eq!(endpoint_address("[::1]", 5432), "[::1]:5432");
    }

    #[test]
    fn lag_bytes_needs_a_replay_position() {
        let mut e = EndpointState::new(&server("db", ServerRole::Replica), BanPolicy::default());
        assert_eq!(e.lag_bytes(Lsn(1000)), None);
        e.replay_lsn = Some(Lsn(400));
        assert_eq!(e.lag_bytes(Lsn(1000)), Some(600));
        assert_eq!(e.lag_bytes(Lsn(300)), Some(0));
    }

    #[test]
    fn primary_detection() {
        use ObservedRole::{Primary as P, Replica as R, Unknown as U};
        use ServerRole::{Auto, Primary, Replica};
        // (configured roles, observed roles, banned endpoints, expected primary or claimants)
        type Case = (
            &'static str,
            Vec<ServerRole>,
            Vec<ObservedRole>,
            Vec<usize>,
            Result<usize, Vec<usize>>,
        );
        let cases: Vec<Case> = vec![
            (
                "configured, before checks",
                vec![Primary, Replica],
                vec![U, U],
                vec![],
                Ok(0),
            ),
            (
                "auto, before checks",
                vec![Auto, Auto],
                vec![U, U],
                vec![],
                Err(vec![]),
            ),
            (
                "auto, detected",
                vec![Auto, Auto],
                vec![R, P],
                vec![],
                Ok(1),
            ),
            (
                "configured primary down",
                vec![Primary, Replica],
                vec![U, R],
                vec![0],
                Err(vec![]),
            ),
            (
                "promoted replica, old primary down",
                vec![Primary, Replica],
                vec![U, P],
                vec![0],
                Ok(1),
            ),
            (
                "promoted replica, old primary not yet re-checked",
                vec![Primary, Replica],
                vec![U, P],
                vec![],
                Ok(1),
            ),
            (
                "old primary back as replica",
                vec![Primary, Replica],
                vec![R, P],
                vec![],
                Ok(1),
            ),
            (
                "split brain",
                vec![Primary, Replica, Replica],
                vec![P, R, P],
                vec![],
                Err(vec![0, 2]),
            ),
            (
                "split brain, one banned",
                vec![Primary, Replica, Replica],
                vec![P, R, P],
                vec![2],
                Ok(0),
            ),
        ];
        let now = Instant::now();
        for (name, configured, observed, banned, want) in cases {
            let mut v = view(&configured);
            for (e, o) in v.endpoints.iter_mut().zip(&observed) {
                e.observed_role = *o;
            }
            for i in banned {
                // mark_failure forgets the role; keep the stale one to prove bans alone exclude.
                let role = v.endpoints[i].observed_role;
                v.endpoints[i].mark_failure(now);
                v.endpoints[i].observed_role = role;
            }
            let got = v.primary(now).map_err(|e| match e {
                PrimaryError::NoPrimary { .. } => vec![],
                PrimaryError::SplitBrain { indices, .. } => indices,
            });
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn split_brain_names_both_servers() {
        let mut v = view(&[ServerRole::Primary, ServerRole::Replica]);
        v.endpoints[0].observed_role = ObservedRole::Primary;
        v.endpoints[1].observed_role = ObservedRole::Primary;
        let message = v
            .primary(Instant::now())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            message,
            "refusing writes: 2 servers claim to be primary (10.0.0.1:5432 and 10.0.0.2:5432); demote or stop all but one, pgfleet never writes to two primaries"
        );
    }

    #[test]
    fn no_primary_says_what_is_known() {
        let now = Instant::now();
        let mut v = view(&[ServerRole::Auto, ServerRole::Auto, ServerRole::Replica]);
        v.endpoints[0].mark_failure(now);
        v.endpoints[1].observed_role = ObservedRole::Replica;
        let message = v
            .primary(now)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            message,
            "no primary: no reachable server reports pg_is_in_recovery() = false (10.0.0.1:5432 (banned for 5s), 10.0.0.2:5432 (replica), 10.0.0.3:5432 (replica)); waiting for a replica to be promoted"
        );
        assert_eq!(v.replicas(), vec![1, 2]);
    }

    #[test]
    fn durations_for_messages() {
        let cases = [
            (0, "0ms"),
            (850, "850ms"),
            (1000, "1s"),
            (4250, "4.2s"),
            (59_999, "59.9s"),
            (125_000, "2m 5s"),
        ];
        for (ms, want) in cases {
            assert_eq!(duration_text(Duration::from_millis(ms)), want);
        }
    }
}
