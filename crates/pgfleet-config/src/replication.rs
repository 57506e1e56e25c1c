//! A cluster's read-routing keys: load balancing, primary reads, lag limits, check intervals,
//! bans, failover wait and the volatile-function allowlist, each checked with its key path.

use crate::model::{ClusterConfig, LoadBalancing, PrimaryReads, QuorumTimeoutAction};
use crate::raw::RawCluster;
use crate::reader::Reader;

/// The cluster's read-routing, health and lag keys; values left at their defaults when absent.
pub(crate) fn read_replication(
    r: &mut Reader,
    prefix: &str,
    raw: &RawCluster,
    c: &mut ClusterConfig,
) {
    let p = |key: &str| format!("{prefix}.{key}");
    if let Some(v) = r.choice(
        &p("load_balancing"),
        &raw.load_balancing,
        LoadBalancing::CHOICES,
    ) {
        c.load_balancing = v;
    }
    if let Some(v) = r.choice(
        &p("primary_reads"),
        &raw.primary_reads,
        PrimaryReads::CHOICES,
    ) {
        c.primary_reads = v;
    }
    if let Some(v) = r.size(&p("max_lag_bytes"), &raw.max_lag_bytes) {
        c.max_lag_bytes = v as u64;
    }
    let durations = [
        (
            &raw.max_lag_time,
            "max_lag_time",
            &mut c.max_lag_time,
            false,
        ),
        (
            &raw.health_check_interval,
            "health_check_interval",
            &mut c.health_check_interval,
            true,
        ),
        (
            &raw.lag_check_interval,
            "lag_check_interval",
            &mut c.lag_check_interval,
            true,
        ),
        (&raw.ban_time, "ban_time", &mut c.ban_time, true),
        (&raw.max_ban_time, "max_ban_time", &mut c.max_ban_time, true),
        (
            &raw.failover_timeout,
            "failover_timeout",
            &mut c.failover_timeout,
            false,
        ),
        (&raw.ryw_wait, "ryw_wait", &mut c.ryw_wait, false),
        (
            &raw.quorum_timeout,
            "quorum_timeout",
            &mut c.quorum_timeout,
            false,
        ),
    ];
    for (value, key, slot, positive) in durations {
        let path = p(key);
        match r.duration(&path, value) {
            // A zero interval would make a background check spin; a zero ban would retry a
            // failing server on every request.
            Some(d) if positive && d.is_zero() => {
                r.report(
                    path,
                    format!(
                        "must be longer than 0s; write e.g. \"{}\"",
                        default_text(key)
                    ),
                );
            }
            Some(d) => *slot = d,
            None => {}
        }
    }
    if c.max_ban_time < c.ban_time {
        // Report at the key the operator wrote: an explicit max_ban_time, else the ban_time
        // that outgrew the default cap.
        let key = if raw.max_ban_time.is_some() {
            "max_ban_time"
        } else {
            "ban_time"
        };
        r.report(
            p(key),
            format!(
                "max_ban_time ({}) is shorter than ban_time ({}); bans start at ban_time and double up to max_ban_time",
                humantime::format_duration(c.max_ban_time),
                humantime::format_duration(c.ban_time)
            ),
        );
    }
    if let Some(v) = r.choice(
        &p("quorum_timeout_action"),
        &raw.quorum_timeout_action,
        QuorumTimeoutAction::CHOICES,
    ) {
        c.quorum_timeout_action = v;
    }
    if let Some(n) = r.usize(&p("write_quorum"), &raw.write_quorum, 0) {
        // Every server but the primary can be a replica; a quorum larger than that can never
        // be met and would fail every write.
        let replicas = c.servers.len().saturating_sub(1);
        if n > replicas {
            r.report(
                p("write_quorum"),
                format!("write_quorum {n} needs {n} replicas, but the cluster has {} server(s), so at most {replicas} replica(s)", c.servers.len()),
            );
        } else {
            c.write_quorum = n;
        }
    }
    if let Some(names) = r.string_list(&p("read_volatile_allowlist"), &raw.read_volatile_allowlist)
    {
        c.read_volatile_allowlist = names
            .into_iter()
            .filter_map(|(path, name)| check_allowlisted_function(r, &path, &name))
            .collect();
    }
}

fn default_text(key: &str) -> &'static str {
    match key {
        "health_check_interval" => "1s",
        "lag_check_interval" => "100ms",
        "ban_time" => "5s",
        "max_ban_time" => "60s",
        _ => "1s",
    }
}

/// Functions that change state even though a replica would run them (or that a replica refuses):
/// allowlisting them would send writes to replicas, which pgfleet never does.
fn writes_state(name: &str) -> bool {
    let bare = name.rsplit('.').next().unwrap_or(name);
    matches!(
        bare,
        "nextval" | "setval" | "setseed" | "txid_current" | "pg_current_xact_id"
    ) || bare.starts_with("pg_advisory_")
        || bare.starts_with("pg_try_advisory_")
}

/// One allowlist entry: a (optionally schema-qualified) function name, stored lower-case because
/// PostgreSQL folds unquoted identifiers to lower case.
fn check_allowlisted_function(r: &mut Reader, path: &str, name: &str) -> Option<String> {
    let trimmed = name.trim();
    if let Some(bare) = trimmed.strip_suffix("()") {
        r.report(
            path,
            format!("write the function name without parentheses: \"{bare}\""),
        );
        return None;
    }
    let valid_part = |part: &str| {
        part.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && part
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
    };
    let parts: Vec<&str> = trimmed.split('.').collect();
    if parts.len() > 2 || !parts.iter().all(|p| valid_part(p)) {
        r.report(
            path,
            format!("invalid function name `{name}`; write a name such as \"random\" or \"public.my_func\""),
        );
        return None;
    }
    let lower = trimmed.to_lowercase();
    if writes_state(&lower) {
        r.report(
            path,
            format!("`{lower}` changes session or database state and always runs on the primary; remove it from the allowlist"),
        );
        return None;
    }
    Some(lower)
}
