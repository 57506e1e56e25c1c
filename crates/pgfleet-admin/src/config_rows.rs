//! SHOW CONFIG: the running config as (key, value) rows, keys spelled as in the file. Pure.
//!
//! Passwords never appear: a set `password` or `server_password` shows as `<hidden>`.

use pgfleet_config::{Config, PoolOverrides, PoolSettings};
use pgfleet_proxy::console::ConsoleReply;

use crate::show::table;
use crate::text::duration_text;

/// What SHOW CONFIG prints instead of a password.
pub const HIDDEN: &str = "<hidden>";

/// SHOW CONFIG: `key`, `value`.
pub fn config(config: &Config) -> ConsoleReply {
    let rows = config_rows(config)
        .into_iter()
        .map(|(k, v)| vec![Some(k), Some(v)])
        .collect();
    table(&["key", "value"], rows)
}

/// Every row, in file order: `proxy.*`, `pool.*`, clusters, databases (with their effective pool
/// settings), users (with the pool keys they override), then `effective.<user>.<database>.*`, the
/// settings each (user, database) pool actually runs with.
pub fn config_rows(config: &Config) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut put = |key: String, value: String| rows.push((key, value));

    let p = &config.proxy;
    put("proxy.listen".into(), p.listen.to_string());
    put(
        "proxy.max_client_connections".into(),
        p.max_client_connections.to_string(),
    );
    put(
        "proxy.max_message_size".into(),
        p.max_message_size.to_string(),
    );
    put(
        "proxy.shutdown_timeout".into(),
        duration_text(p.shutdown_timeout),
    );
    put(
        "proxy.analysis_cache_size".into(),
        p.analysis_cache_size.to_string(),
    );
    put(
        "proxy.metrics_listen".into(),
        p.metrics_listen
            .map_or_else(|| "none".to_owned(), |a| a.to_string()),
    );
    put(
        "proxy.metrics_top_tenants".into(),
        p.metrics_top_tenants.to_string(),
    );
    for (k, v) in pool_settings(&config.pool) {
        put(format!("pool.{k}"), v);
    }
    for (name, cluster) in &config.clusters {
        for (i, s) in cluster.servers.iter().enumerate() {
            let prefix = format!("clusters.{name}.servers.{i}");
            put(format!("{prefix}.host"), s.host.clone());
            put(format!("{prefix}.port"), s.port.to_string());
            put(format!("{prefix}.role"), s.role.as_str().to_owned());
            put(format!("{prefix}.weight"), s.weight.to_string());
        }
        let prefix = format!("clusters.{name}");
        put(
            format!("{prefix}.load_balancing"),
            cluster.load_balancing.as_str().to_owned(),
        );
        put(
            format!("{prefix}.primary_reads"),
            cluster.primary_reads.as_str().to_owned(),
        );
        put(
            format!("{prefix}.max_lag_bytes"),
            cluster.max_lag_bytes.to_string(),
        );
        put(
            format!("{prefix}.max_lag_time"),
            duration_text(cluster.max_lag_time),
        );
        put(
            format!("{prefix}.health_check_interval"),
            duration_text(cluster.health_check_interval),
        );
        put(
            format!("{prefix}.lag_check_interval"),
            duration_text(cluster.lag_check_interval),
        );
        put(
            format!("{prefix}.ban_time"),
            duration_text(cluster.ban_time),
        );
        put(
            format!("{prefix}.max_ban_time"),
            duration_text(cluster.max_ban_time),
        );
        put(
            format!("{prefix}.failover_timeout"),
            duration_text(cluster.failover_timeout),
        );
        put(
            format!("{prefix}.ryw_wait"),
            duration_text(cluster.ryw_wait),
        );
        put(
            format!("{prefix}.write_quorum"),
            cluster.write_quorum.to_string(),
        );
        put(
            format!("{prefix}.quorum_timeout"),
            duration_text(cluster.quorum_timeout),
        );
        put(
            format!("{prefix}.quorum_timeout_action"),
            cluster.quorum_timeout_action.as_str().to_owned(),
        );
        put(
            format!("{prefix}.read_volatile_allowlist"),
            cluster.read_volatile_allowlist.join(","),
        );
    }
    for (name, db) in &config.databases {
        put(format!("databases.{name}.cluster"), db.cluster.clone());
        put(
            format!("databases.{name}.server_database"),
            db.server_database.clone(),
        );
        for (k, v) in pool_settings(&db.pool.apply_to(&config.pool)) {
            put(format!("databases.{name}.pool.{k}"), v);
        }
    }
    for (name, u) in &config.users {
        if u.password.is_some() {
            put(format!("users.{name}.password"), HIDDEN.to_owned());
        }
        put(
            format!("users.{name}.auth_method"),
            u.auth_method.as_str().to_owned(),
        );
        put(format!("users.{name}.server_user"), u.server_user.clone());
        if u.server_password.is_some() {
            put(format!("users.{name}.server_password"), HIDDEN.to_owned());
        }
        put(format!("users.{name}.admin"), u.admin.to_string());
        put(
            format!("users.{name}.default_role"),
            u.default_role.as_str().to_owned(),
        );
        put(
            format!("users.{name}.default_consistency"),
            u.default_consistency.as_str().to_owned(),
        );
        for (k, v) in overrides(&u.pool) {
            put(format!("users.{name}.pool.{k}"), v);
        }
    }
    for user in config.users.keys() {
        for database in config.databases.keys() {
            for (k, v) in pool_settings(&config.pool_settings(user, database)) {
                put(format!("effective.{user}.{database}.{k}"), v);
            }
        }
    }
    rows
}

/// The eight pool keys with their values, in documentation order.
fn pool_settings(s: &PoolSettings) -> Vec<(&'static str, String)> {
    vec![
        ("pool_mode", s.pool_mode.as_str().to_owned()),
        ("pool_size", s.pool_size.to_string()),
        ("min_idle", s.min_idle.to_string()),
        ("connect_timeout", duration_text(s.connect_timeout)),
        ("checkout_timeout", duration_text(s.checkout_timeout)),
        ("idle_timeout", duration_text(s.idle_timeout)),
        ("server_lifetime", duration_text(s.server_lifetime)),
        (
            "prepared_statements_cache",
            s.prepared_statements_cache.to_string(),
        ),
    ]
}

/// Only the keys an override table sets.
fn overrides(o: &PoolOverrides) -> Vec<(&'static str, String)> {
    let set = o.apply_to(&PoolSettings::default());
    pool_settings(&set)
        .into_iter()
        .filter(|(k, _)| match *k {
            "pool_mode" => o.pool_mode.is_some(),
            "pool_size" => o.pool_size.is_some(),
            "min_idle" => o.min_idle.is_some(),
            "connect_timeout" => o.connect_timeout.is_some(),
            "checkout_timeout" => o.checkout_timeout.is_some(),
            "idle_timeout" => o.idle_timeout.is_some(),
            "server_lifetime" => o.server_lifetime.is_some(),
            _ => o.prepared_statements_cache.is_some(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgfleet_config::ClusterConfig;

    const CONFIG: &str = r#"
        [proxy]
        listen = "0.0.0.0:7432"
        shutdown_timeout = "45s"
        [pool]
        pool_size = 30
        [clusters.main]
        servers = [{ host = "10.0.0.10", port = 5433, role = "primary" }]
        [clusters.ro]
        servers = [
            { host = "10.0.1.10", role = "primary" },
            { host = "10.0.1.11", role = "replica", weight = 3 },
        ]
        load_balancing = "least_connections"
        primary_reads = "never"
        max_lag_bytes = 1048576
        max_lag_time = "2s"
        health_check_interval = "500ms"
        lag_check_interval = "250ms"
        ban_time = "10s"
        max_ban_time = "2m"
        failover_timeout = "1m"
        read_volatile_allowlist = ["random", "myschema.jitter"]
        [databases.app]
        cluster = "main"
        server_database = "app_production"
        [databases.app.pool]
        idle_timeout = "5m"
        [users.app]
        password = "app-secret-pw"
        server_password = "server-secret-pw"
        [users.app.pool]
        pool_mode = "session"
        checkout_timeout = "500ms"
        [users.ops]
        password = "md5a3556571e93b0d20722ba62be61e8c2d"
        auth_method = "md5"
        admin = true
        default_role = "primary"
        default_consistency = "read_your_writes"
    "#;

    fn load() -> Config {
        match Config::from_toml_str(CONFIG) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn value<'a>(rows: &'a [(String, String)], key: &str) -> Option<&'a str> {
        rows.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn shows_effective_values_in_config_syntax() {
        let rows = config_rows(&load());
        let cases = [
            ("proxy.listen", "0.0.0.0:7432"),
            ("proxy.shutdown_timeout", "45s"),
            ("proxy.max_message_size", "67108864"),
            ("pool.pool_size", "30"),
            ("pool.pool_mode", "transaction"),
            ("pool.idle_timeout", "10m"),
            ("clusters.main.servers.0.host", "10.0.0.10"),
            ("clusters.main.servers.0.port", "5433"),
            ("clusters.main.servers.0.role", "primary"),
            ("databases.app.server_database", "app_production"),
            ("databases.app.pool.idle_timeout", "5m"),
            ("databases.app.pool.pool_size", "30"),
            ("users.app.pool.pool_mode", "session"),
            ("users.app.pool.checkout_timeout", "500ms"),
            ("users.app.server_user", "app"),
            ("users.ops.admin", "true"),
            ("effective.app.app.pool_mode", "session"),
            ("effective.app.app.idle_timeout", "5m"),
            ("effective.app.app.checkout_timeout", "500ms"),
            ("effective.ops.app.pool_mode", "transaction"),
            // Cluster replication keys: defaults, then every key set.
            ("clusters.main.load_balancing", "round_robin"),
            ("clusters.main.primary_reads", "fallback"),
            ("clusters.main.max_lag_bytes", "16777216"),
            ("clusters.main.max_lag_time", "10s"),
            ("clusters.main.health_check_interval", "1s"),
            ("clusters.main.lag_check_interval", "100ms"),
            ("clusters.main.ban_time", "5s"),
            ("clusters.main.max_ban_time", "1m"),
            ("clusters.main.failover_timeout", "30s"),
            ("clusters.main.ryw_wait", "0s"),
            ("clusters.main.write_quorum", "0"),
            ("clusters.main.quorum_timeout", "5s"),
            ("clusters.main.quorum_timeout_action", "error"),
            ("clusters.ro.servers.1.host", "10.0.1.11"),
            ("clusters.ro.servers.1.role", "replica"),
            ("clusters.ro.servers.1.weight", "3"),
            ("clusters.ro.load_balancing", "least_connections"),
            ("clusters.ro.primary_reads", "never"),
            ("clusters.ro.max_lag_bytes", "1048576"),
            ("clusters.ro.max_lag_time", "2s"),
            ("clusters.ro.health_check_interval", "500ms"),
            ("clusters.ro.lag_check_interval", "250ms"),
            ("clusters.ro.ban_time", "10s"),
            ("clusters.ro.max_ban_time", "2m"),
            ("clusters.ro.failover_timeout", "1m"),
            (
                "clusters.ro.read_volatile_allowlist",
                "random,myschema.jitter",
            ),
            // User routing keys: defaults, then set.
            ("users.app.default_role", "auto"),
            ("users.app.default_consistency", "eventual"),
            ("users.ops.default_role", "primary"),
            ("users.ops.default_consistency", "read_your_writes"),
        ];
        for (key, want) in cases {
            assert_eq!(value(&rows, key), Some(want), "{key}");
        }
        let default_allowlist = ClusterConfig::DEFAULT_READ_VOLATILE_ALLOWLIST.join(",");
        assert_eq!(
            value(&rows, "clusters.main.read_volatile_allowlist"),
            Some(default_allowlist.as_str())
        );
        // Users list only the pool keys they override.
        assert_eq!(value(&rows, "users.app.pool.pool_size"), None);
        assert!(!rows.iter().any(|(k, _)| k.starts_with("users.ops.pool.")));
        // Keys are unique.
        let mut keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), rows.len());
    }

    #[test]
    fn never_shows_a_password() {
        let rows = config_rows(&load());
        assert_eq!(value(&rows, "users.app.password"), Some(HIDDEN));
        assert_eq!(value(&rows, "users.app.server_password"), Some(HIDDEN));
        assert_eq!(value(&rows, "users.ops.password"), Some(HIDDEN));
        assert_eq!(value(&rows, "users.ops.server_password"), None);
        for (k, v) in &rows {
            for secret in ["secret-pw", "md5a355"] {
                assert!(!v.contains(secret), "{k} = {v}");
            }
        }
    }

    #[test]
    fn table_has_key_and_value_columns() {
        match config(&load()) {
            ConsoleReply::Rows { columns, rows } => {
                assert_eq!(columns, ["key", "value"]);
                assert!(rows
                    .iter()
                    .all(|r| r.len() == 2 && r.iter().all(Option::is_some)));
            }
            ConsoleReply::Done(tag) => panic!("{tag}"),
        }
    }
}
