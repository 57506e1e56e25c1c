//! SHOW TENANTS: the per-tenant counters the proxy keeps (a bounded LRU of the tenants seen most
//! recently, `pgfleet_proxy::tenancy::STATS_ENTRIES`), busiest first; and the same counters
//! folded for the Prometheus metrics: only the `proxy.metrics_top_tenants` busiest tenants get
//! their own `tenant` label, the rest are summed per database into [`OTHER_TENANTS`], so the
//! number of series stays bounded however many tenants there are.

use std::collections::BTreeMap;

use pgfleet_config::{Config, MAX_METRICS_TOP_TENANTS};
use pgfleet_proxy::console::ConsoleReply;
use pgfleet_proxy::tenancy::{TenantStatsRow, STATS_ENTRIES};
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
    let cap = |db: &str| connection_cap(&config, db);
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

/// `tenancy.max_server_connections` of a database (0: no cap, or no tenancy).
fn connection_cap(config: &Config, database: &str) -> usize {
    config
        .databases
        .get(database)
        .and_then(|d| d.tenancy.as_ref())
        .map_or(0, |t| t.max_server_connections)
}

/// The `tenant` label of the sum over the tenants outside the top N. Tenant names start with a
/// letter, so no tenant can be called this.
pub const OTHER_TENANTS: &str = "_other";

// Every tenant the config may ask for has counters to show.
const _: () = assert!(MAX_METRICS_TOP_TENANTS <= STATS_ENTRIES);

/// The per-tenant rows of the Prometheus metrics now (see [`top_tenants`]).
pub fn metric_rows(rt: &Runtime) -> Vec<TenantStatsRow> {
    let config = rt.config();
    let rows = rt.tenancy.counters(&|db: &str| connection_cap(&config, db));
    top_tenants(rows, config.proxy.metrics_top_tenants)
}

/// Keeps the first `top` rows (`rows` come busiest first) and sums the others of each database
/// into one row with tenant [`OTHER_TENANTS`] (after the kept rows, by database name). At most
/// `top` + one row per database, whatever the number of tenants. Pure.
pub fn top_tenants(mut rows: Vec<TenantStatsRow>, top: usize) -> Vec<TenantStatsRow> {
    let rest = rows.split_off(top.min(rows.len()));
    let mut other: BTreeMap<String, TenantStatsRow> = BTreeMap::new();
    for r in rest {
        let sum = other
            .entry(r.database.clone())
            .or_insert_with(|| TenantStatsRow {
                database: r.database.clone(),
                tenant: OTHER_TENANTS.to_owned(),
                transactions: 0,
                statements: 0,
                errors: 0,
                server_micros: 0,
                connections: 0,
                state: None,
            });
        sum.transactions += r.transactions;
        sum.statements += r.statements;
        sum.errors += r.errors;
        sum.server_micros += r.server_micros;
        sum.connections += r.connections;
    }
    rows.extend(other.into_values());
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(database: &str, tenant: &str, statements: u64) -> TenantStatsRow {
        TenantStatsRow {
            database: database.into(),
            tenant: tenant.into(),
            transactions: statements / 2,
            statements,
            errors: 1,
            server_micros: 1000 * statements,
            connections: 1,
            state: None,
        }
    }

    #[test]
    fn top_tenants_keep_their_label_and_the_rest_is_summed_per_database() {
        let rows = vec![
            row("app", "acme", 50),
            row("crm", "initech", 40),
            row("app", "globex", 30),
            row("crm", "hooli", 20),
            row("app", "umbrella", 10),
        ];
        let got = top_tenants(rows.clone(), 2);
        let names: Vec<(&str, &str, u64, u64, usize)> = got
            .iter()
            .map(|r| {
                (
                    r.database.as_str(),
                    r.tenant.as_str(),
                    r.statements,
                    r.errors,
                    r.connections,
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("app", "acme", 50, 1, 1),
                ("crm", "initech", 40, 1, 1),
                ("app", "_other", 40, 2, 2),
                ("crm", "_other", 20, 1, 1),
            ]
        );
        assert_eq!(got[2].transactions, 15 + 5);
        assert_eq!(got[2].server_micros, 40_000);
        // Everything fits: nothing summed; 0: every tenant summed.
        assert_eq!(top_tenants(rows.clone(), 20).len(), 5);
        let none = top_tenants(rows, 0);
        assert_eq!(none.len(), 2);
        assert!(none.iter().all(|r| r.tenant == OTHER_TENANTS));
        assert_eq!(none[0].statements, 90);
        assert!(top_tenants(Vec::new(), 3).is_empty());
    }
}
