//! Table-driven tests of read placement: strategies and their distributions, lag exclusion,
//! consistency levels, bans, `primary_reads`, split brain, and the refusal messages.

use std::time::{Duration, Instant};

use pgfleet_config::{ClusterConfig, LoadBalancing, PrimaryReads, ServerConfig, ServerRole};

use super::*;
use crate::replication::topology::ObservedRole;

const MB: u64 = 1 << 20;

/// A primary (index 0, `127.0.0.1:5432`) and replicas on ports 5433, 5434, …, all healthy,
/// caught up at `0/10000000`, with the given weights.
fn cluster(replica_weights: &[u32]) -> ClusterView {
    let mut servers = vec![ServerConfig {
        host: "127.0.0.1".into(),
        port: 5432,
        role: ServerRole::Primary,
        weight: 1,
    }];
    for (i, w) in replica_weights.iter().enumerate() {
        servers.push(ServerConfig {
            host: "127.0.0.1".into(),
            port: 5433 + i as u16,
            role: ServerRole::Replica,
            weight: *w,
        });
    }
    let mut view = ClusterView::from_config(&ClusterConfig::with_servers(servers));
    view.primary_lsn = Some(Lsn(0x1000_0000));
    for e in view.endpoints.iter_mut().skip(1) {
        e.replay_lsn = Some(Lsn(0x1000_0000));
    }
    view
}

fn policy(load_balancing: LoadBalancing, primary_reads: PrimaryReads) -> ReadPolicy {
    ReadPolicy {
        load_balancing,
        primary_reads,
        max_lag_bytes: 16 * MB,
        max_lag_time: Duration::from_secs(10),
        min_lsn: None,
        max_staleness: None,
    }
}

fn eventual() -> ReadPolicy {
    policy(LoadBalancing::RoundRobin, PrimaryReads::Fallback)
}

/// Picks per endpoint over `rounds` reads, with counter `k` and a pseudo-random number per read.
fn distribution(view: &ClusterView, p: &ReadPolicy, rounds: u64) -> Vec<u64> {
    let now = Instant::now();
    let mut counts = vec![0; view.endpoints.len()];
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for k in 0..rounds {
        // splitmix64: deterministic, well spread, no dependency.
        rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let i = pick_reader(view, p, k, z, now).unwrap_or_else(|e| panic!("{e}"));
        counts[i] += 1;
    }
    counts
}

#[test]
fn round_robin_is_exact() {
    let cases: &[(&[u32], PrimaryReads, &[u64])] = &[
        (&[1, 1], PrimaryReads::Fallback, &[0, 500, 500]),
        (&[1, 1, 1], PrimaryReads::Fallback, &[0, 334, 333, 333]),
        (&[5, 1], PrimaryReads::Never, &[0, 500, 500]),
        (&[1, 1], PrimaryReads::Always, &[334, 333, 333]),
        (&[1], PrimaryReads::Fallback, &[0, 1000]),
        (&[], PrimaryReads::Fallback, &[1000]),
        (&[0, 1], PrimaryReads::Fallback, &[0, 0, 1000]),
        (&[0, 0], PrimaryReads::Never, &[0, 500, 500]),
    ];
    for (weights, primary_reads, want) in cases {
        let view = cluster(weights);
        let got = distribution(
            &view,
            &policy(LoadBalancing::RoundRobin, *primary_reads),
            1000,
        );
        assert_eq!(got, *want, "weights {weights:?}, {primary_reads:?}");
    }
}

#[test]
fn round_robin_cycles_in_index_order() {
    let view = cluster(&[1, 1, 1]);
    let now = Instant::now();
    let picks: Vec<usize> = (0..6)
        .map(|k| pick_reader(&view, &eventual(), k, 0, now).unwrap())
        .collect();
    assert_eq!(picks, vec![1, 2, 3, 1, 2, 3]);
}

#[test]
fn weighted_random_follows_weights() {
    // (replica weights, primary_reads, expected share per endpoint)
    let cases: &[(&[u32], PrimaryReads, &[f64])] = &[
        (&[1, 1], PrimaryReads::Fallback, &[0.0, 0.5, 0.5]),
        (
            &[2, 1],
            PrimaryReads::Fallback,
            &[0.0, 2.0 / 3.0, 1.0 / 3.0],
        ),
        (&[1, 3], PrimaryReads::Never, &[0.0, 0.25, 0.75]),
        (&[1, 2, 7], PrimaryReads::Fallback, &[0.0, 0.1, 0.2, 0.7]),
        (&[2, 1], PrimaryReads::Always, &[0.25, 0.5, 0.25]),
        (&[0, 1], PrimaryReads::Fallback, &[0.0, 0.0, 1.0]),
        (&[0, 0], PrimaryReads::Never, &[0.0, 0.5, 0.5]),
    ];
    let rounds = 1000;
    for (weights, primary_reads, shares) in cases {
        let view = cluster(weights);
        let got = distribution(
            &view,
            &policy(LoadBalancing::Random, *primary_reads),
            rounds,
        );
        for (i, (count, share)) in got.iter().zip(shares.iter()).enumerate() {
            let expected = share * rounds as f64;
            // ±5 % of the rounds: about 3.5 standard deviations at p = 0.5.
            assert!(
                (*count as f64 - expected).abs() <= 0.05 * rounds as f64,
                "weights {weights:?} {primary_reads:?}: endpoint {i} got {count}, expected ~{expected:.0} ({got:?})"
            );
            if *share == 0.0 {
                assert_eq!(
                    *count, 0,
                    "weights {weights:?}: endpoint {i} must get nothing"
                );
            }
        }
    }
}

#[test]
fn weighted_random_maps_the_number_exactly() {
    let view = cluster(&[1, 3]);
    let p = policy(LoadBalancing::Random, PrimaryReads::Never);
    let now = Instant::now();
    let picks: Vec<usize> = (0..8)
        .map(|r| pick_reader(&view, &p, 0, r, now).unwrap())
        .collect();
    assert_eq!(picks, vec![1, 2, 2, 2, 1, 2, 2, 2]);
}

#[test]
fn least_connections_picks_the_idlest() {
    // (active connections per endpoint, primary first; primary_reads; expected pick)
    let cases: &[(&[usize], PrimaryReads, usize)] = &[
        (&[0, 5, 2, 9], PrimaryReads::Fallback, 2),
        (&[0, 3, 3, 3], PrimaryReads::Fallback, 1),
        (&[0, 4, 1, 1], PrimaryReads::Fallback, 2),
        (&[1, 4, 2, 3], PrimaryReads::Always, 0),
        (&[5, 4, 2, 3], PrimaryReads::Always, 2),
        (&[0, 0, 0, 0], PrimaryReads::Never, 1),
    ];
    let now = Instant::now();
    for (active, primary_reads, want) in cases {
        let mut view = cluster(&[1, 1, 1]);
        for (e, a) in view.endpoints.iter_mut().zip(active.iter()) {
            e.active_connections = *a;
        }
        let p = policy(LoadBalancing::LeastConnections, *primary_reads);
        for k in 0..5 {
            assert_eq!(
                pick_reader(&view, &p, k, k * 7919, now),
                Ok(*want),
                "{active:?} {primary_reads:?}"
            );
        }
    }
}

#[test]
fn lag_excludes_replicas_until_they_catch_up() {
    let base = Lsn(0x1000_0000);
    // (name, replica 1 replay lsn, replica 1 lag, replica 2 replay lsn, replica 2 lag, qualifying replicas)
    type Case = (&'static str, Lsn, Duration, Lsn, Duration, &'static [usize]);
    let cases: &[Case] = &[
        (
            "both caught up",
            base,
            Duration::ZERO,
            base,
            Duration::ZERO,
            &[1, 2],
        ),
        (
            "one at the byte limit",
            Lsn(base.0 - 16 * MB),
            Duration::ZERO,
            base,
            Duration::ZERO,
            &[1, 2],
        ),
        (
            "one just over the byte limit",
            Lsn(base.0 - 16 * MB - 1),
            Duration::ZERO,
            base,
            Duration::ZERO,
            &[2],
        ),
        (
            "one over the time limit",
            base,
            Duration::from_millis(10_001),
            base,
            Duration::from_secs(10),
            &[2],
        ),
        (
            "both over",
            Lsn(0),
            Duration::ZERO,
            base,
            Duration::from_secs(11),
            &[],
        ),
        (
            "replica ahead of the sampled primary",
            Lsn(base.0 + 100),
            Duration::ZERO,
            base,
            Duration::ZERO,
            &[1, 2],
        ),
    ];
    let now = Instant::now();
    for (name, lsn1, lag1, lsn2, lag2, want) in cases {
        let mut view = cluster(&[1, 1]);
        view.endpoints[1].replay_lsn = Some(*lsn1);
        view.endpoints[1].replay_lag = *lag1;
        view.endpoints[2].replay_lsn = Some(*lsn2);
        view.endpoints[2].replay_lag = *lag2;
        let p = policy(LoadBalancing::RoundRobin, PrimaryReads::Fallback);
        let mut got: Vec<usize> = (0..4)
            .map(|k| pick_reader(&view, &p, k, 0, now).unwrap())
            .collect();
        got.sort();
        got.dedup();
        let want: Vec<usize> = if want.is_empty() {
            vec![0]
        } else {
            want.to_vec()
        };
        assert_eq!(got, want, "{name}");
    }

    // Catching up brings a replica back.
    let mut view = cluster(&[1]);
    view.endpoints[1].replay_lsn = Some(Lsn(0));
    let p = policy(LoadBalancing::RoundRobin, PrimaryReads::Never);
    assert!(pick_reader(&view, &p, 0, 0, now).is_err());
    view.endpoints[1].replay_lsn = view.primary_lsn;
    assert_eq!(pick_reader(&view, &p, 0, 0, now), Ok(1));
}

#[test]
fn unmeasured_replicas_do_not_qualify() {
    let now = Instant::now();
    let mut view = cluster(&[1, 1]);
    view.endpoints[1].replay_lsn = None;
    assert_eq!(pick_reader(&view, &eventual(), 0, 0, now), Ok(2));
    assert_eq!(pick_reader(&view, &eventual(), 1, 0, now), Ok(2));
}

#[test]
fn without_a_primary_position_only_time_lag_counts() {
    // During a failover there is no primary to measure; replicas keep serving reads.
    let now = Instant::now();
    let mut view = cluster(&[1, 1]);
    view.primary_lsn = None;
    view.endpoints[0].mark_failure(now);
    view.endpoints[1].replay_lsn = Some(Lsn(0));
    view.endpoints[2].replay_lag = Duration::from_secs(30);
    assert_eq!(pick_reader(&view, &eventual(), 0, 0, now), Ok(1));
}

#[test]
fn read_your_writes_needs_the_commit_lsn() {
    let now = Instant::now();
    let mut view = cluster(&[1, 1]);
    view.endpoints[1].replay_lsn = Some(Lsn(0x0FFF_FF00));
    view.endpoints[2].replay_lsn = Some(Lsn(0x1000_0000));
    // (min_lsn, primary_reads, qualifying endpoints; None = refused)
    let cases: &[(Lsn, PrimaryReads, Option<&[usize]>)] = &[
        (Lsn(0x0FFF_FF00), PrimaryReads::Never, Some(&[1, 2])),
        (Lsn(0x0FFF_FF01), PrimaryReads::Never, Some(&[2])),
        (Lsn(0x1000_0000), PrimaryReads::Fallback, Some(&[2])),
        (Lsn(0x1000_0001), PrimaryReads::Fallback, Some(&[0])),
        (Lsn(0x1000_0001), PrimaryReads::Never, None),
    ];
    for (min, primary_reads, want) in cases {
        let mut p = policy(LoadBalancing::RoundRobin, *primary_reads);
        p.min_lsn = Some(*min);
        let got: Result<Vec<usize>, NoReader> =
            (0..4).map(|k| pick_reader(&view, &p, k, 0, now)).collect();
        match (got, want) {
            (Ok(mut got), Some(want)) => {
                got.sort();
                got.dedup();
                assert_eq!(got, *want, "min {min}");
            }
            (Err(e), None) => {
                assert!(e.retry_may_help(), "{e}");
                assert!(
                    e.skipped
                        .iter()
                        .all(|s| matches!(s.reason, SkipReason::BehindLsn { .. })),
                    "{e}"
                );
            }
            (got, want) => panic!("min {min}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn bounded_staleness() {
    let now = Instant::now();
    let mut view = cluster(&[1, 1, 1]);
    view.endpoints[1].replay_lag = Duration::from_millis(50);
    view.endpoints[2].replay_lag = Duration::from_millis(200);
    view.endpoints[3].replay_lag = Duration::from_millis(201);
    // (max_staleness, qualifying endpoints)
    let cases: &[(u64, &[usize])] = &[(1000, &[1, 2, 3]), (200, &[1, 2]), (100, &[1]), (10, &[0])];
    for (ms, want) in cases {
        let mut p = eventual();
        p.max_staleness = Some(Duration::from_millis(*ms));
        let mut got: Vec<usize> = (0..6)
            .map(|k| pick_reader(&view, &p, k, 0, now).unwrap())
            .collect();
        got.sort();
        got.dedup();
        assert_eq!(got, *want, "max_staleness {ms}ms");
    }
}

#[test]
fn bans_exclude_then_expire() {
    let now = Instant::now();
    let mut view = cluster(&[1, 1]);
    let ban = view.endpoints[1].mark_failure(now);
    assert_eq!(ban, Duration::from_secs(5));
    let picks = |view: &ClusterView, at: Instant| -> Vec<usize> {
        let mut v: Vec<usize> = (0..4)
            .map(|k| pick_reader(view, &eventual(), k, 0, at).unwrap())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(picks(&view, now), vec![2]);
    assert_eq!(picks(&view, now + Duration::from_secs(4)), vec![2]);
    assert_eq!(picks(&view, now + ban), vec![1, 2], "ban over: retried");

    // The retry fails: a doubled ban.
    let later = now + ban;
    assert_eq!(
        view.endpoints[1].mark_failure(later),
        Duration::from_secs(10)
    );
    assert_eq!(picks(&view, later + Duration::from_secs(9)), vec![2]);
    view.endpoints[1].mark_healthy();
    assert_eq!(
        picks(&view, later),
        vec![1, 2],
        "a passed check lifts the ban"
    );

    // Every replica banned: fallback to the primary.
    view.endpoints[1].mark_failure(now);
    view.endpoints[2].mark_failure(now);
    assert_eq!(picks(&view, now), vec![0]);
}

#[test]
fn primary_reads_modes() {
    let now = Instant::now();
    // (replicas usable?, primary usable?, mode, expected picks or None for refusal)
    let cases: &[(bool, bool, PrimaryReads, Option<&[usize]>)] = &[
        (true, true, PrimaryReads::Fallback, Some(&[1, 2])),
        (false, true, PrimaryReads::Fallback, Some(&[0])),
        (false, false, PrimaryReads::Fallback, None),
        (true, true, PrimaryReads::Always, Some(&[0, 1, 2])),
        (true, false, PrimaryReads::Always, Some(&[1, 2])),
        (false, true, PrimaryReads::Always, Some(&[0])),
        (true, true, PrimaryReads::Never, Some(&[1, 2])),
        (false, true, PrimaryReads::Never, None),
    ];
    for (replicas_ok, primary_ok, mode, want) in cases {
        let mut view = cluster(&[1, 1]);
        if !replicas_ok {
            view.endpoints[1].replay_lsn = Some(Lsn(0));
            view.endpoints[2].mark_failure(now);
        }
        if !primary_ok {
            view.endpoints[0].mark_failure(now);
        }
        let p = policy(LoadBalancing::RoundRobin, *mode);
        let got: Result<Vec<usize>, NoReader> =
            (0..6).map(|k| pick_reader(&view, &p, k, 0, now)).collect();
        let got = got.map(|mut v| {
            v.sort();
            v.dedup();
            v
        });
        assert_eq!(
            got.as_deref().ok(),
            *want,
            "replicas {replicas_ok}, primary {primary_ok}, {mode:?}: {got:?}"
        );
    }
}

#[test]
fn split_brain_keeps_reads_on_replicas_only() {
    let now = Instant::now();
    let mut view = cluster(&[1, 1]);
    view.endpoints[0].observed_role = ObservedRole::Primary;
    view.endpoints[1].observed_role = ObservedRole::Primary;
    view.endpoints[2].observed_role = ObservedRole::Replica;
    assert!(matches!(
        view.primary(now),
        Err(PrimaryError::SplitBrain { .. })
    ));
    let p = policy(LoadBalancing::RoundRobin, PrimaryReads::Always);
    for k in 0..4 {
        assert_eq!(pick_reader(&view, &p, k, 0, now), Ok(2));
    }
    view.endpoints[2].mark_failure(now);
    let e = pick_reader(&view, &p, 0, 0, now).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("claim to be primary (127.0.0.1:5432 and 127.0.0.1:5433)"),
        "{text}"
    );
}

#[test]
fn auto_servers_serve_reads_once_their_role_is_known() {
    let now = Instant::now();
    let mut view = cluster(&[1]);
    view.endpoints[1].configured_role = ServerRole::Auto;
    let p = policy(LoadBalancing::RoundRobin, PrimaryReads::Never);
    let e = pick_reader(&view, &p, 0, 0, now).unwrap_err();
    assert_eq!(e.replicas, 0);
    view.endpoints[1].observed_role = ObservedRole::Replica;
    assert_eq!(pick_reader(&view, &p, 0, 0, now), Ok(1));
}

#[test]
fn refusals_explain_every_replica() {
    let now = Instant::now();
    let mut view = cluster(&[1, 1, 1]);
    view.endpoints[1].replay_lsn = Some(Lsn(0x1000_0000 - 64 * MB));
    view.endpoints[2].mark_failure(now);
    view.endpoints[3].replay_lag = Duration::from_millis(12_500);
    let p = policy(LoadBalancing::RoundRobin, PrimaryReads::Never);
    let e = pick_reader(&view, &p, 0, 0, now).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no server can serve this read: all 3 replicas are banned or lagging \
         (replica 127.0.0.1:5433 lag 64 MB > max_lag_bytes 16 MB; \
         replica 127.0.0.1:5434 banned for 5s after failing; \
         replica 127.0.0.1:5435 lag 12.5s > max_lag_time 10s), \
         and primary_reads = \"never\" keeps reads off the primary"
    );
    assert_eq!(
        e.skipped.iter().map(|s| s.index).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );

    let mut view = cluster(&[1]);
    view.endpoints[0].mark_failure(now);
    view.endpoints[1].replay_lsn = None;
    let e = pick_reader(&view, &eventual(), 0, 0, now).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no server can serve this read: the only replica is banned or lagging \
         (replica 127.0.0.1:5433 replay position not measured yet), and the primary cannot serve it: \
         no primary: no reachable server reports pg_is_in_recovery() = false \
         (127.0.0.1:5432 (banned for 5s), 127.0.0.1:5433 (replica)); waiting for a replica to be promoted"
    );

    let view = cluster(&[]);
    let p = policy(LoadBalancing::Random, PrimaryReads::Never);
    let e = pick_reader(&view, &p, 0, 0, now).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no server can serve this read: the cluster has no replicas, and primary_reads = \"never\" keeps reads off the primary"
    );
    assert!(!e.retry_may_help());

    let mut view = cluster(&[1]);
    view.endpoints[1].replay_lag = Duration::from_millis(300);
    let mut p = policy(LoadBalancing::RoundRobin, PrimaryReads::Never);
    p.max_staleness = Some(Duration::from_millis(200));
    p.min_lsn = None;
    let e = pick_reader(&view, &p, 0, 0, now).unwrap_err();
    assert!(
        e.to_string()
            .contains("lag 300ms > pgfleet.max_staleness 200ms"),
        "{e}"
    );
    p.max_staleness = None;
    p.min_lsn = Some(Lsn(0x1000_0001));
    let e = pick_reader(&view, &p, 0, 0, now).unwrap_err();
    assert!(
        e.to_string()
            .contains("replayed up to 0/10000000, this session needs 0/10000001"),
        "{e}"
    );
}

#[test]
fn policy_from_cluster_config() {
    let mut c = ClusterConfig::with_servers(vec![]);
    c.load_balancing = LoadBalancing::LeastConnections;
    c.primary_reads = PrimaryReads::Always;
    c.max_lag_bytes = 3;
    c.max_lag_time = Duration::from_secs(4);
    let p = ReadPolicy::from_cluster(&c);
    assert_eq!(
        p,
        ReadPolicy {
            load_balancing: LoadBalancing::LeastConnections,
            primary_reads: PrimaryReads::Always,
            max_lag_bytes: 3,
            max_lag_time: Duration::from_secs(4),
            min_lsn: None,
            max_staleness: None,
        }
    );
}
