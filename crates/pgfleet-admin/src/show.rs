//! SHOW tables built from snapshots: pure functions, one per SHOW command (SHOW CONFIG lives in
//! [`crate::config_rows`]). Every value is text; NULL means "none".

use std::time::Instant;

use pgfleet_proxy::clients::Traffic;
use pgfleet_proxy::console::ConsoleReply;
use pgfleet_proxy::replication::{ClusterView, EndpointState, ObservedRole};
use pgfleet_proxy::stats::{pin_reason_name, Stats, PIN_REASONS};

use crate::command::HELP;
use crate::snapshot::{
    ClientSnapshot, ClusterSnapshot, PoolSnapshot, ReplicationSnapshot, ServerSnapshot,
};
use crate::text::{ban_left_text, rfc3339_utc};

/// Columns of SHOW POOLS, in order.
pub const POOL_COLUMNS: [&str; 16] = [
    "user",
    "database",
    "pool_mode",
    "pool_size",
    "server",
    "server_database",
    "open",
    "idle",
    "busy",
    "waiting",
    "checkouts",
    "connects",
    "connect_errors",
    "timeouts",
    "discarded",
    "avg_wait_us",
];

/// Columns of SHOW CLIENTS, in order.
pub const CLIENT_COLUMNS: [&str; 9] = [
    "id",
    "user",
    "database",
    "addr",
    "application_name",
    "state",
    "server_id",
    "connected_at",
    "requests",
];

/// Columns of SHOW SERVERS, in order.
pub const SERVER_COLUMNS: [&str; 9] = [
    "id",
    "user",
    "database",
    "addr",
    "pid",
    "state",
    "client_id",
    "connected_at",
    "requests",
];

/// Columns of SHOW REPLICATION, in order.
pub const REPLICATION_COLUMNS: [&str; 12] = [
    "cluster",
    "index",
    "address",
    "configured_role",
    "observed_role",
    "health",
    "replay_lsn",
    "lag_bytes",
    "lag_ms",
    "active",
    "weight",
    "is_write_target",
];

/// A table of text values.
pub fn table(columns: &[&str], rows: Vec<Vec<Option<String>>>) -> ConsoleReply {
    ConsoleReply::Rows {
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        rows,
    }
}

pub(crate) fn text(v: impl ToString) -> Option<String> {
    Some(v.to_string())
}

/// An id where 0 means "none" → NULL.
fn id_or_null(id: u64) -> Option<String> {
    (id != 0).then(|| id.to_string())
}

/// Mean wait per checkout attempt (successful or timed out), in whole microseconds; 0 before the
/// first attempt. Attempts that found a free connection at once count as zero wait.
pub fn avg_wait_us(p: &PoolSnapshot) -> u64 {
    let attempts = p.stats.checkouts.saturating_add(p.stats.timeouts);
    p.stats.wait_micros.checked_div(attempts).unwrap_or(0)
}

/// SHOW POOLS, sorted by (user, database).
pub fn pools(pools: &[PoolSnapshot]) -> ConsoleReply {
    let mut pools: Vec<&PoolSnapshot> = pools.iter().collect();
    pools.sort_by(|a, b| (&a.user, &a.database).cmp(&(&b.user, &b.database)));
    let rows = pools
        .into_iter()
        .map(|p| {
            vec![
                text(&p.user),
                text(&p.database),
                text(&p.pool_mode),
                text(p.pool_size),
                Some(host_port(&p.host, p.port)),
                text(&p.server_database),
                text(p.stats.open),
                text(p.stats.idle),
                text(p.stats.busy),
                text(p.stats.waiting),
                text(p.stats.checkouts),
                text(p.stats.connects),
                text(p.stats.connect_errors),
                text(p.stats.timeouts),
                text(p.stats.discarded),
                text(avg_wait_us(p)),
            ]
        })
        .collect();
    table(&POOL_COLUMNS, rows)
}

/// `host:port`, with brackets around IPv6 literals.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// SHOW CLIENTS, sorted by id.
pub fn clients(clients: &[ClientSnapshot]) -> ConsoleReply {
    let mut clients: Vec<&ClientSnapshot> = clients.iter().collect();
    clients.sort_by_key(|c| c.id);
    let rows = clients
        .into_iter()
        .map(|c| {
            vec![
                text(c.id),
                text(&c.user),
                text(&c.database),
                text(&c.addr),
                text(&c.application_name),
                text(c.state),
                id_or_null(c.server_id),
                Some(rfc3339_utc(c.connected_at)),
                text(c.requests),
            ]
        })
        .collect();
    table(&CLIENT_COLUMNS, rows)
}

/// SHOW SERVERS, sorted by id.
pub fn servers(servers: &[ServerSnapshot]) -> ConsoleReply {
    let mut servers: Vec<&ServerSnapshot> = servers.iter().collect();
    servers.sort_by_key(|s| s.id);
    let rows = servers
        .into_iter()
        .map(|s| {
            vec![
                text(s.id),
                text(&s.user),
                text(&s.database),
                text(&s.addr),
                text(s.pid),
                text(s.state),
                id_or_null(s.client_id),
                Some(rfc3339_utc(s.connected_at)),
                text(s.requests),
            ]
        })
        .collect();
    table(&SERVER_COLUMNS, rows)
}

/// SHOW STATS: one row; `clients_connected` is the registry's current size, `traffic` the
/// clients' counters ([`pgfleet_proxy::clients::ClientRegistry::traffic`]).
pub fn stats(stats: &Stats, clients_connected: usize, traffic: Traffic) -> ConsoleReply {
    let cells = stat_cells(stats, clients_connected, traffic);
    ConsoleReply::Rows {
        columns: cells.iter().map(|(name, _)| name.clone()).collect(),
        rows: vec![cells.iter().map(|(_, v)| text(v)).collect()],
    }
}

/// The counters of SHOW STATS, by column name, in column order (also the Prometheus counters).
pub fn stat_cells(stats: &Stats, clients_connected: usize, traffic: Traffic) -> Vec<(String, u64)> {
    let get = Stats::get;
    let mut cells: Vec<(String, u64)> = vec![
        ("clients_total".into(), get(&stats.clients_total)),
        ("clients_refused".into(), get(&stats.clients_refused)),
        ("clients_connected".into(), clients_connected as u64),
        ("requests".into(), traffic.requests),
        ("cross_shard".into(), get(&stats.cross_shard)),
        ("transactions".into(), traffic.transactions),
        ("bytes_in".into(), traffic.bytes_in),
        ("bytes_out".into(), traffic.bytes_out),
        ("settings_replays".into(), get(&stats.settings_replays)),
        ("read_retries".into(), get(&stats.read_retries)),
        ("quorum_timeouts".into(), get(&stats.quorum_timeouts)),
        ("reprepares".into(), get(&stats.reprepares)),
        ("checkout_timeouts".into(), get(&stats.checkout_timeouts)),
        ("server_losses".into(), get(&stats.server_losses)),
        ("cancels".into(), get(&stats.cancels)),
    ];
    for (reason, counter) in PIN_REASONS.iter().zip(stats.pins.iter()) {
        cells.push((format!("pinned_{}", pin_reason_name(*reason)), get(counter)));
    }
    cells
}

/// SHOW REPLICATION: one row per endpoint, sorted by (cluster, index). Bans and the write target
/// are judged at `snapshot.now`.
pub fn replication(snapshot: &ReplicationSnapshot) -> ConsoleReply {
    let mut clusters: Vec<&ClusterSnapshot> = snapshot.clusters.iter().collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    let rows = clusters
        .into_iter()
        .flat_map(|c| endpoint_rows(&c.name, &c.view, snapshot.now))
        .collect();
    table(&REPLICATION_COLUMNS, rows)
}

fn endpoint_rows(cluster: &str, view: &ClusterView, now: Instant) -> Vec<Vec<Option<String>>> {
    // No primary or a split brain: no endpoint takes writes.
    let write_target = view.primary(now).ok();
    view.endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| {
            vec![
                text(cluster),
                text(i),
                text(&e.address),
                text(e.configured_role.as_str()),
                text(e.observed_role),
                Some(match e.banned_for(now) {
                    Some(left) => format!("banned {}", ban_left_text(left)),
                    None => "healthy".to_owned(),
                }),
                e.replay_lsn.map(|lsn| lsn.to_string()),
                lag_bytes(view, e).map(|b| b.to_string()),
                text(e.replay_lag.as_millis()),
                text(e.active_connections),
                text(e.weight),
                text(if write_target == Some(i) { "t" } else { "f" }),
            ]
        })
        .collect()
}

/// WAL bytes an endpoint's replay position is behind the primary's last sampled position: 0 for
/// an endpoint acting as primary (it writes the WAL), `None` while either position is unknown.
pub fn lag_bytes(view: &ClusterView, e: &EndpointState) -> Option<u64> {
    if e.role() == ObservedRole::Primary {
        return Some(0);
    }
    e.lag_bytes(view.primary_lsn?)
}

/// SHOW VERSION.
pub fn version() -> ConsoleReply {
    table(
        &["version"],
        vec![vec![Some(format!("pgfleet {}", env!("CARGO_PKG_VERSION")))]],
    )
}

/// Columns of SHOW TRANSACTIONS.
pub const TRANSACTION_COLUMNS: [&str; 6] =
    ["gid", "database", "user", "shards", "state", "age_seconds"];

/// SHOW TRANSACTIONS: the two-phase transactions in flight or in doubt.
pub fn transactions(list: &[pgfleet_proxy::fanout::twophase::TxEntry]) -> ConsoleReply {
    let rows = list
        .iter()
        .map(|t| {
            let shards: Vec<String> = t.shards.iter().map(usize::to_string).collect();
            vec![
                text(&t.gid),
                text(&t.database),
                text(&t.user),
                text(shards.join(",")),
                text(t.phase.as_str()),
                text(format!("{:.3}", t.since.elapsed().as_secs_f64())),
            ]
        })
        .collect();
    table(&TRANSACTION_COLUMNS, rows)
}

/// SHOW HELP: command, description.
pub fn help() -> ConsoleReply {
    let rows = HELP
        .iter()
        .map(|(command, description)| vec![text(command), text(description)])
        .collect();
    table(&["command", "description"], rows)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn rows_of(reply: ConsoleReply) -> (Vec<String>, Vec<Vec<Option<String>>>) {
        match reply {
            ConsoleReply::Rows { columns, rows } => (columns, rows),
            ConsoleReply::Done(tag) => panic!("expected rows, got tag {tag}"),
        }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn pools_table() {
        let a = PoolSnapshot {
            user: "app".into(),
            database: "app".into(),
            pool_mode: "transaction".into(),
            pool_size: 20,
            host: "127.0.0.1".into(),
            port: 5432,
            server_database: "app_production".into(),
            stats: pgfleet_proxy::pools::PoolStats {
                size: 20,
                open: 3,
                idle: 1,
                busy: 2,
                waiting: 4,
                checkouts: 90,
                connects: 3,
                connect_errors: 1,
                timeouts: 10,
                discarded: 5,
                wait_micros: 1_000,
            },
        };
        let b = PoolSnapshot {
            user: "admin".into(),
            database: "app".into(),
            host: "::1".into(),
            port: 5433,
            ..PoolSnapshot::default()
        };
        let (columns, rows) = rows_of(pools(&[a, b]));
        assert_eq!(columns, POOL_COLUMNS);
        assert_eq!(rows.len(), 2);
        // Sorted by (user, database); no attempts yet → avg 0.
        assert_eq!(rows[0][0], s("admin"));
        assert_eq!(rows[0][4], s("[::1]:5433"));
        assert_eq!(rows[0][15], s("0"));
        let want: Vec<Option<String>> = [
            "app",
            "app",
            "transaction",
            "20",
            "127.0.0.1:5432",
            "app_production",
            "3",
            "1",
            "2",
            "4",
            "90",
            "3",
            "1",
            "10",
            "5",
            "10",
        ]
        .iter()
        .map(|v| s(v))
        .collect();
        assert_eq!(rows[1], want);
    }

    #[test]
    fn clients_table_sorted_by_id_with_null_server() {
        let at = UNIX_EPOCH + Duration::from_secs(1_714_566_896);
        let client = |id, server_id, state| ClientSnapshot {
            id,
            user: "app".into(),
            database: "app".into(),
            addr: "127.0.0.1:40000".into(),
            application_name: "psql".into(),
            state,
            server_id,
            connected_at: at,
            requests: 7,
        };
        let (columns, rows) = rows_of(clients(&[client(2, 9, "active"), client(1, 0, "idle")]));
        assert_eq!(columns, CLIENT_COLUMNS);
        assert_eq!(
            rows[0],
            vec![
                s("1"),
                s("app"),
                s("app"),
                s("127.0.0.1:40000"),
                s("psql"),
                s("idle"),
                None,
                s("2024-05-01T12:34:56Z"),
                s("7"),
            ]
        );
        assert_eq!(rows[1][0], s("2"));
        assert_eq!(rows[1][5], s("active"));
        assert_eq!(rows[1][6], s("9"));
    }

    #[test]
    fn servers_table() {
        let at = UNIX_EPOCH;
        let server = ServerSnapshot {
            id: 4,
            user: "app".into(),
            database: "app".into(),
            addr: "127.0.0.1:5432".into(),
            pid: 12345,
            state: "active",
            client_id: 2,
            connected_at: at,
            requests: 11,
        };
        let idle = ServerSnapshot {
            id: 3,
            state: "idle",
            client_id: 0,
            ..server.clone()
        };
        let (columns, rows) = rows_of(servers(&[server, idle]));
        assert_eq!(columns, SERVER_COLUMNS);
        assert_eq!(rows[0][0], s("3"));
        assert_eq!(rows[0][6], None);
        assert_eq!(
            rows[1],
            vec![
                s("4"),
                s("app"),
                s("app"),
                s("127.0.0.1:5432"),
                s("12345"),
                s("active"),
                s("2"),
                s("1970-01-01T00:00:00Z"),
                s("11"),
            ]
        );
    }

    #[test]
    fn stats_row_has_every_counter_and_pin_reason() {
        let stats = Stats::default();
        stats.pins[1].store(3, Ordering::Relaxed);
        let traffic = Traffic {
            requests: 42,
            transactions: 7,
            bytes_in: 100,
            bytes_out: 200,
        };
        let (columns, rows) = rows_of(super::stats(&stats, 5, traffic));
        assert_eq!(rows.len(), 1);
        assert_eq!(columns.len(), rows[0].len());
        assert_eq!(columns.len(), 15 + PIN_REASONS.len());
        assert!(columns.iter().any(|c| c == "cross_shard"));
        assert!(columns.iter().any(|c| c == "read_retries"));
        assert!(columns.iter().any(|c| c == "quorum_timeouts"));
        let value = |name: &str| {
            let i = columns.iter().position(|c| c == name);
            let Some(i) = i else {
                panic!("no column {name}")
            };
            rows[0][i].clone()
        };
        assert_eq!(value("requests"), s("42"));
        assert_eq!(value("transactions"), s("7"));
        assert_eq!(value("bytes_in"), s("100"));
        assert_eq!(value("bytes_out"), s("200"));
        assert_eq!(value("clients_connected"), s("5"));
        assert_eq!(value("cancels"), s("0"));
        let pinned = format!("pinned_{}", pin_reason_name(PIN_REASONS[1]));
        assert_eq!(value(&pinned), s("3"));
        assert!(columns.iter().any(|c| c == "pinned_listen"));
    }

    fn endpoint(host: &str, role: pgfleet_config::ServerRole) -> EndpointState {
        let server = pgfleet_config::ServerConfig {
            host: host.into(),
            port: 5432,
            role,
            weight: 1,
        };
        EndpointState::new(&server, pgfleet_proxy::replication::BanPolicy::default())
    }

    #[test]
    fn replication_table() {
        use pgfleet_config::ServerRole;
        use pgfleet_proxy::replication::{Health, Lsn};

        let now = Instant::now();
        let mut primary = endpoint("10.0.0.1", ServerRole::Primary);
        primary.observed_role = ObservedRole::Primary;
        primary.active_connections = 3;
        let mut replica = endpoint("10.0.0.2", ServerRole::Auto);
        replica.observed_role = ObservedRole::Replica;
        replica.replay_lsn = Some(Lsn(0x1_0000_0000));
        replica.replay_lag = Duration::from_millis(1_250);
        replica.weight = 2;
        let mut banned = endpoint("::1", ServerRole::Replica);
        banned.health = Health::Banned {
            until: now + Duration::from_millis(4_150),
            strikes: 1,
        };
        let main = ClusterSnapshot {
            name: "main".into(),
            view: ClusterView {
                endpoints: vec![primary, replica, banned],
                primary_lsn: Some(Lsn(0x1_0000_0400)),
            },
        };
        // Two reported primaries: a split brain, so nothing is the write target; no primary
        // LSN yet, so replica lag is unknown.
        let mut a = endpoint("10.1.0.1", ServerRole::Auto);
        a.observed_role = ObservedRole::Primary;
        let mut b = endpoint("10.1.0.2", ServerRole::Auto);
        b.observed_role = ObservedRole::Primary;
        let mut c = endpoint("10.1.0.3", ServerRole::Auto);
        c.replay_lsn = Some(Lsn(5));
        let alpha = ClusterSnapshot {
            name: "alpha".into(),
            view: ClusterView {
                endpoints: vec![a, b, c],
                primary_lsn: None,
            },
        };
        let (columns, rows) = rows_of(replication(&ReplicationSnapshot {
            clusters: vec![main, alpha],
            now,
        }));
        assert_eq!(columns, REPLICATION_COLUMNS);
        let row = |cells: [Option<&str>; 12]| -> Vec<Option<String>> {
            cells.iter().map(|c| c.map(str::to_owned)).collect()
        };
        let want = vec![
            row([
                Some("alpha"),
                Some("0"),
                Some("10.1.0.1:5432"),
                Some("auto"),
                Some("primary"),
                Some("healthy"),
                None,
                Some("0"),
                Some("0"),
                Some("0"),
                Some("1"),
                Some("f"),
            ]),
            row([
                Some("alpha"),
                Some("1"),
                Some("10.1.0.2:5432"),
                Some("auto"),
                Some("primary"),
                Some("healthy"),
                None,
                Some("0"),
                Some("0"),
                Some("0"),
                Some("1"),
                Some("f"),
            ]),
            row([
                Some("alpha"),
                Some("2"),
                Some("10.1.0.3:5432"),
                Some("auto"),
                Some("unknown"),
                Some("healthy"),
                Some("0/5"),
                None,
                Some("0"),
                Some("0"),
                Some("1"),
                Some("f"),
            ]),
            row([
                Some("main"),
                Some("0"),
                Some("10.0.0.1:5432"),
                Some("primary"),
                Some("primary"),
                Some("healthy"),
                None,
                Some("0"),
                Some("0"),
                Some("3"),
                Some("1"),
                Some("t"),
            ]),
            row([
                Some("main"),
                Some("1"),
                Some("10.0.0.2:5432"),
                Some("auto"),
                Some("replica"),
                Some("healthy"),
                Some("1/0"),
                Some("1024"),
                Some("1250"),
                Some("0"),
                Some("2"),
                Some("f"),
            ]),
            row([
                Some("main"),
                Some("2"),
                Some("[::1]:5432"),
                Some("replica"),
                Some("unknown"),
                Some("banned 4.2s"),
                None,
                None,
                Some("0"),
                Some("0"),
                Some("1"),
                Some("f"),
            ]),
        ];
        assert_eq!(rows, want);

        // Once the ban has run out the endpoint is tried again: healthy.
        let (_, rows) = rows_of(replication(&ReplicationSnapshot {
            clusters: vec![ClusterSnapshot {
                name: "main".into(),
                view: ClusterView {
                    endpoints: vec![endpoint("10.0.0.9", ServerRole::Replica)],
                    primary_lsn: None,
                },
            }],
            now,
        }));
        assert_eq!(rows[0][5], s("healthy"));
        let (_, rows) = rows_of(replication(&ReplicationSnapshot {
            clusters: Vec::new(),
            now,
        }));
        assert!(rows.is_empty());
    }

    #[test]
    fn version_and_help() {
        let (columns, rows) = rows_of(version());
        assert_eq!(columns, ["version"]);
        assert_eq!(
            rows,
            vec![vec![Some(format!("pgfleet {}", env!("CARGO_PKG_VERSION")))]]
        );
        let (columns, rows) = rows_of(help());
        assert_eq!(columns, ["command", "description"]);
        assert_eq!(rows.len(), HELP.len());
    }
}
