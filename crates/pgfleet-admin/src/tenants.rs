//! SHOW TENANTS: the per-tenant counters the proxy keeps (a bounded LRU of the tenants seen most
//! recently, `pgfleet_proxy::tenancy::STATS_ENTRIES`), busiest first. Tenants never become metric
//! labels: their number is unbounded.

use pgfleet_proxy::console::ConsoleReply;
use pgfleet_proxy::Runtime;

use crate::show::{table, text};

/// The columns of SHOW TENANTS.
pub const TENANT_COLUMNS: [&str; 9] = [
    "database",
    "tenant",
    "state",
    "transactions",
    "statements",
    "errors",
    "server_time_ms",
    "connections",
    "max_connections",
];

/// SHOW TENANTS: database, tenant, cached directory state (NULL when not cached), transactions,
/// statements, errors (statements pgfleet refused, transactions it could not start), milliseconds
/// the tenant held server connections, connections held now, the cap (0 = none).
pub fn tenants(rt: &Runtime) -> ConsoleReply {
    let config = rt.config();
    let cap = |db: &str| {
        config
            .databases
            .get(db)
            .and_then(|d| d.tenancy.as_ref())
            .map_or(0, |t| t.max_server_connections)
    };
    let rows = rt
        .tenancy
        .show(&cap)
        .into_iter()
        .map(|r| {
            vec![
                text(&r.database),
                text(&r.tenant),
                r.state.map(str::to_owned),
                text(r.transactions),
                text(r.statements),
                text(r.errors),
                text(r.server_micros / 1000),
                text(r.connections),
                text(cap(&r.database)),
            ]
        })
        .collect();
    table(&TENANT_COLUMNS, rows)
}
