//! Prometheus metrics: the SHOW STATS counters, every pool's gauges and counters, every
//! cluster's replication view (roles, health, lag) and the per-tenant counters, rendered in the
//! Prometheus text exposition format 0.0.4 from snapshots (pure), and served over HTTP by
//! [`crate::http`].
//!
//! Labels are bounded by the config (user, database, cluster, endpoint address, pin reason), never
//! raw SQL; the `tenant` label only for the `proxy.metrics_top_tenants` busiest tenants plus one
//! `_other` per database ([`crate::tenants::top_tenants`]). Every metric is listed in
//! docs/admin.md.

use std::fmt::Write;
use std::time::Instant;

use pgfleet_proxy::replication::ObservedRole;
use pgfleet_proxy::tenancy::TenantStatsRow;

use crate::show::lag_bytes;
use crate::snapshot::{PoolSnapshot, ReplicationSnapshot};

/// One metric family being written: `# HELP`, `# TYPE`, then samples.
struct Family<'a> {
    out: &'a mut String,
    name: String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
        let name = format!("pgfleet_{name}");
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(&self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Label values escape backslash, double quote and newline (exposition format rules).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders every metric. `stats` are the SHOW STATS cells (name, value); `clients_connected` and
/// `pinned_*` become their own families, the rest counters named `<cell>_total`. `tenants` are
/// the per-tenant rows already cut to the top N ([`crate::tenants::top_tenants`]).
pub fn render(
    stats: &[(String, u64)],
    pools: &[PoolSnapshot],
    replication: &ReplicationSnapshot,
    tenants: &[TenantStatsRow],
) -> String {
    let mut out = String::with_capacity(4096);
    render_stats(&mut out, stats);
    render_pools(&mut out, pools);
    render_replication(&mut out, replication);
    render_tenants(&mut out, tenants);
    out
}

fn render_stats(out: &mut String, stats: &[(String, u64)]) {
    let mut pins = Vec::new();
    for (name, value) in stats {
        if name == "clients_connected" {
            Family::new(out, name, "gauge", "client connections open now").sample(&[], value);
        } else if let Some(reason) = name.strip_prefix("pinned_") {
            pins.push((reason, *value));
        } else {
            let help = match name.as_str() {
                "clients_total" => "client connections accepted and authenticated",
                "clients_refused" => "client connections refused",
                "requests" => "requests forwarded to servers",
                "cross_shard" => "requests run across several shards",
                "transactions" => "server checkouts in transaction mode",
                "bytes_in" => "bytes received from clients",
                "bytes_out" => "bytes sent to clients",
                "settings_replays" => "session settings replayed on another server connection",
                "read_retries" => "reads replayed on another server after their replica failed",
                "quorum_timeouts" => "COMMITs answered without their write quorum",
                "reprepares" => "prepared statements re-prepared on a server connection",
                "checkout_timeouts" => "requests that waited longer than checkout_timeout",
                "server_losses" => "server connections lost while in use",
                "cancels" => "cancel requests forwarded",
                _ => "see SHOW STATS in docs/admin.md",
            };
            Family::new(out, &format!("{name}_total"), "counter", help).sample(&[], value);
        }
    }
    let mut f = Family::new(
        out,
        "pins_total",
        "counter",
        "sessions pinned to their server connection, by reason",
    );
    for (reason, value) in pins {
        f.sample(&[("reason", reason)], value);
    }
}

fn render_pools(out: &mut String, pools: &[PoolSnapshot]) {
    type Pick = fn(&PoolSnapshot) -> u64;
    let families: [(&str, &str, &str, Pick); 10] = [
        (
            "pool_size",
            "gauge",
            "most server connections of the pool",
            |p| p.pool_size as u64,
        ),
        (
            "pool_connections_idle",
            "gauge",
            "idle server connections",
            |p| p.stats.idle as u64,
        ),
        (
            "pool_connections_busy",
            "gauge",
            "server connections in use",
            |p| p.stats.busy as u64,
        ),
        (
            "pool_clients_waiting",
            "gauge",
            "requests waiting for a server connection",
            |p| p.stats.waiting as u64,
        ),
        (
            "pool_checkouts_total",
            "counter",
            "server connections handed out",
            |p| p.stats.checkouts,
        ),
        (
            "pool_connects_total",
            "counter",
            "server connections opened",
            |p| p.stats.connects,
        ),
        (
            "pool_connect_errors_total",
            "counter",
            "failed server connection attempts",
            |p| p.stats.connect_errors,
        ),
        (
            "pool_checkout_timeouts_total",
            "counter",
            "checkouts that timed out",
            |p| p.stats.timeouts,
        ),
        (
            "pool_discarded_total",
            "counter",
            "server connections closed as broken or expired",
            |p| p.stats.discarded,
        ),
        (
            "pool_wait_seconds_total",
            "counter",
            "time spent waiting for server connections",
            |p| p.stats.wait_micros,
        ),
    ];
    for (name, kind, help, pick) in families {
        let mut f = Family::new(out, name, kind, help);
        for p in pools {
            let endpoint = format!("{}:{}", p.host, p.port);
            let labels = [
                ("user", p.user.as_str()),
                ("database", p.database.as_str()),
                ("endpoint", endpoint.as_str()),
            ];
            if name == "pool_wait_seconds_total" {
                f.sample(&labels, pick(p) as f64 / 1e6);
            } else {
                f.sample(&labels, pick(p));
            }
        }
    }
}

fn render_replication(out: &mut String, snapshot: &ReplicationSnapshot) {
    let now: Instant = snapshot.now;
    let mut clusters: Vec<_> = snapshot.clusters.iter().collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    let endpoints = || {
        clusters
            .iter()
            .flat_map(|c| c.view.endpoints.iter().map(move |e| (*c, e)))
    };
    {
        let mut f = Family::new(
            out,
            "endpoint_role",
            "gauge",
            "1 for the role each endpoint reports (pg_is_in_recovery()); unknown until measured",
        );
        for (c, e) in endpoints() {
            let role = match e.observed_role {
                ObservedRole::Primary => "primary",
                ObservedRole::Replica => "replica",
                ObservedRole::Unknown => "unknown",
            };
            f.sample(
                &[
                    ("cluster", &c.name),
                    ("endpoint", &e.address),
                    ("role", role),
                ],
                1,
            );
        }
    }
    {
        let mut f = Family::new(
            out,
            "endpoint_up",
            "gauge",
            "1 when the endpoint is not banned after a failed check or connect",
        );
        for (c, e) in endpoints() {
            let up = u8::from(e.banned_for(now).is_none());
            f.sample(&[("cluster", &c.name), ("endpoint", &e.address)], up);
        }
    }
    {
        let mut f = Family::new(
            out,
            "endpoint_writes",
            "gauge",
            "1 for the endpoint that takes the cluster's writes now (none during failover or split brain)",
        );
        for c in &clusters {
            let primary = c.view.primary(now).ok();
            for (i, e) in c.view.endpoints.iter().enumerate() {
                let writes = u8::from(primary == Some(i));
                f.sample(&[("cluster", &c.name), ("endpoint", &e.address)], writes);
            }
        }
    }
    {
        let mut f = Family::new(
            out,
            "replication_lag_bytes",
            "gauge",
            "WAL bytes between the primary's position and the endpoint's replay position (absent while unknown)",
        );
        for (c, e) in endpoints() {
            if let Some(lag) = lag_bytes(&c.view, e) {
                f.sample(&[("cluster", &c.name), ("endpoint", &e.address)], lag);
            }
        }
    }
    {
        let mut f = Family::new(
            out,
            "replication_lag_seconds",
            "gauge",
            "replay delay while the endpoint is behind: now() - pg_last_xact_replay_timestamp()",
        );
        for (c, e) in endpoints() {
            if e.observed_role == ObservedRole::Replica {
                f.sample(
                    &[("cluster", &c.name), ("endpoint", &e.address)],
                    e.replay_lag.as_secs_f64(),
                );
            }
        }
    }
    {
        let mut f = Family::new(
            out,
            "endpoint_active_connections",
            "gauge",
            "server connections in use at the endpoint, as the load balancer sees them",
        );
        for (c, e) in endpoints() {
            f.sample(
                &[("cluster", &c.name), ("endpoint", &e.address)],
                e.active_connections,
            );
        }
    }
}

/// The per-tenant families, labels `database` and `tenant`. Without rows (no database with
/// tenancy, no tenant session yet) only their HELP and TYPE lines are written.
fn render_tenants(out: &mut String, tenants: &[TenantStatsRow]) {
    type Pick = fn(&TenantStatsRow) -> f64;
    let families: [(&str, &str, &str, Pick); 5] = [
        (
            "tenant_transactions_total",
            "counter",
            "transactions (server checkouts) of the tenant's sessions",
            |t| t.transactions as f64,
        ),
        (
            "tenant_statements_total",
            "counter",
            "simple queries and Executes of the tenant's sessions",
            |t| t.statements as f64,
        ),
        (
            "tenant_errors_total",
            "counter",
            "statements pgfleet refused and transactions it could not start for the tenant",
            |t| t.errors as f64,
        ),
        (
            "tenant_server_seconds_total",
            "counter",
            "time the tenant's sessions held server connections",
            |t| t.server_micros as f64 / 1e6,
        ),
        (
            "tenant_server_connections",
            "gauge",
            "server connections the tenant's sessions hold now (databases with tenancy.max_server_connections)",
            |t| t.connections as f64,
        ),
    ];
    for (name, kind, help, pick) in families {
        let mut f = Family::new(out, name, kind, help);
        for t in tenants {
            f.sample(&[("database", &t.database), ("tenant", &t.tenant)], pick(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::ClusterSnapshot;
    use pgfleet_config::{ClusterConfig, ServerConfig, ServerRole};
    use pgfleet_proxy::replication::{ClusterView, Lsn};
    use std::time::Duration;

    fn server(host: &str, role: ServerRole) -> ServerConfig {
        ServerConfig {
            host: host.into(),
            port: 5432,
            role,
            weight: 1,
        }
    }

    #[test]
    fn renders_counters_pools_and_replication_lag() {
        let stats = vec![
            ("clients_connected".to_owned(), 3),
            ("requests".to_owned(), 42),
            ("pinned_listen".to_owned(), 2),
        ];
        let pool = PoolSnapshot {
            user: "app".into(),
            database: "app".into(),
            pool_mode: "transaction".into(),
            pool_size: 20,
            host: "10.0.0.1".into(),
            port: 5432,
            ..Default::default()
        };
        let cluster = ClusterConfig::with_servers(vec![
            server("10.0.0.1", ServerRole::Primary),
            server("10.0.0.2", ServerRole::Replica),
        ]);
        let mut view = ClusterView::from_config(&cluster);
        view.primary_lsn = Some(Lsn(10_000));
        view.endpoints[0].observed_role = ObservedRole::Primary;
        view.endpoints[1].observed_role = ObservedRole::Replica;
        view.endpoints[1].replay_lsn = Some(Lsn(9_000));
        view.endpoints[1].replay_lag = Duration::from_millis(1500);
        let text = render(
            &stats,
            &[pool],
            &ReplicationSnapshot {
                clusters: vec![ClusterSnapshot {
                    name: "main".into(),
                    view,
                }],
                now: Instant::now(),
            },
            &[TenantStatsRow {
                database: "app".into(),
                tenant: "acme".into(),
                transactions: 7,
                statements: 9,
                errors: 1,
                server_micros: 2_500_000,
                connections: 2,
                state: None,
            }],
        );
        for line in [
            "# TYPE pgfleet_clients_connected gauge",
            "pgfleet_clients_connected 3",
            "# TYPE pgfleet_requests_total counter",
            "pgfleet_requests_total 42",
            "pgfleet_pins_total{reason=\"listen\"} 2",
            "pgfleet_pool_size{user=\"app\",database=\"app\",endpoint=\"10.0.0.1:5432\"} 20",
            "pgfleet_endpoint_role{cluster=\"main\",endpoint=\"10.0.0.2:5432\",role=\"replica\"} 1",
            "pgfleet_endpoint_writes{cluster=\"main\",endpoint=\"10.0.0.1:5432\"} 1",
            "pgfleet_replication_lag_bytes{cluster=\"main\",endpoint=\"10.0.0.2:5432\"} 1000",
            "pgfleet_replication_lag_seconds{cluster=\"main\",endpoint=\"10.0.0.2:5432\"} 1.5",
            "pgfleet_endpoint_up{cluster=\"main\",endpoint=\"10.0.0.2:5432\"} 1",
            "# TYPE pgfleet_tenant_statements_total counter",
            "pgfleet_tenant_transactions_total{database=\"app\",tenant=\"acme\"} 7",
            "pgfleet_tenant_statements_total{database=\"app\",tenant=\"acme\"} 9",
            "pgfleet_tenant_errors_total{database=\"app\",tenant=\"acme\"} 1",
            "pgfleet_tenant_server_seconds_total{database=\"app\",tenant=\"acme\"} 2.5",
            "pgfleet_tenant_server_connections{database=\"app\",tenant=\"acme\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
        // Every sample belongs to a family announced with HELP and TYPE.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap_or_default();
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
