//! What a reload changes: a pure comparison of two validated configs, which the proxy's reload
//! code carries out (rebuild pools, reconnect clusters, warn about restart-only keys).

use std::collections::BTreeSet;

use crate::model::{ClusterConfig, Config, ServerConfig};

/// Differences between a running config and a newly loaded one.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReloadDiff {
    /// (user, database) pairs present in both configs whose effective pool settings differ.
    pub pools_changed: Vec<(String, String)>,
    /// Clusters added, removed, or whose server list changed: their pools are reconnected.
    pub clusters_changed: Vec<String>,
    /// Clusters in both configs with the same servers but other changed keys (load balancing,
    /// lag limits, check intervals, bans, allowlist): applied in place, no reconnect needed.
    pub cluster_settings_changed: Vec<String>,
    /// Databases added, removed, or whose cluster, server database or overrides changed.
    pub databases_changed: Vec<String>,
    /// Users added, removed, or whose settings (credentials, admin, overrides) changed.
    pub users_changed: Vec<String>,
    /// `proxy.listen` or `proxy.metrics_listen` changed: takes effect only after a restart.
    pub listen_changed: bool,
    /// Any other `[proxy]` key changed (limits apply to new sessions).
    pub proxy_changed: bool,
}

impl ReloadDiff {
    /// True when some change can only take effect by restarting the process.
    pub fn needs_restart(&self) -> bool {
        self.listen_changed
    }

    /// True when the two configs are equivalent.
    pub fn is_empty(&self) -> bool {
        *self == ReloadDiff::default()
    }
}

impl Config {
    /// Compares this (running) config with `new`; pure, performs no I/O.
    pub fn diff(&self, new: &Config) -> ReloadDiff {
        let mut pools_changed = Vec::new();
        for user in self.users.keys().filter(|u| new.users.contains_key(*u)) {
            for db in self
                .databases
                .keys()
                .filter(|d| new.databases.contains_key(*d))
            {
                if self.pool_settings(user, db) != new.pool_settings(user, db) {
                    pools_changed.push((user.clone(), db.clone()));
                }
            }
        }
        ReloadDiff {
            pools_changed,
            clusters_changed: changed_keys(
                &server_lists(&self.clusters),
                &server_lists(&new.clusters),
            ),
            cluster_settings_changed: changed_keys(&self.clusters, &new.clusters)
                .into_iter()
                .filter(
                    |name| match (self.clusters.get(name), new.clusters.get(name)) {
                        (Some(old), Some(new)) => old.servers == new.servers,
                        _ => false,
                    },
                )
                .collect(),
            databases_changed: changed_keys(&self.databases, &new.databases),
            users_changed: changed_keys(&self.users, &new.users),
            listen_changed: self.proxy.listen != new.proxy.listen
                || self.proxy.metrics_listen != new.proxy.metrics_listen,
            proxy_changed: {
                let mut old = self.proxy.clone();
                old.listen = new.proxy.listen;
                old.metrics_listen = new.proxy.metrics_listen;
                old != new.proxy
            },
        }
    }
}

fn server_lists(
    clusters: &std::collections::BTreeMap<String, ClusterConfig>,
) -> std::collections::BTreeMap<String, &[ServerConfig]> {
    clusters
        .iter()
        .map(|(name, c)| (name.clone(), c.servers.as_slice()))
        .collect()
}

fn changed_keys<V: PartialEq>(
    old: &std::collections::BTreeMap<String, V>,
    new: &std::collections::BTreeMap<String, V>,
) -> Vec<String> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter(|n| old.get(*n) != new.get(*n))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        [clusters.main]
        servers = [{ host = "127.0.0.1", role = "primary" }]
        [databases.app]
        cluster = "main"
        [databases.other]
        cluster = "main"
        [users.app]
        password = "app"
    "#;

    fn load(text: &str) -> Config {
        match Config::from_toml_str(text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn identical_configs_have_no_diff() {
        let diff = load(BASE).diff(&load(BASE));
        assert!(diff.is_empty(), "{diff:?}");
        assert!(!diff.needs_restart());
    }

    #[test]
    fn reports_pool_cluster_and_listen_changes() {
        let new = format!(
            "{BASE}\n[databases.app.pool]\npool_size = 5\n[proxy]\nlisten = \"0.0.0.0:6432\"\n"
        )
        .replace("127.0.0.1", "10.0.0.1");
        let diff = load(BASE).diff(&load(&new));
        assert_eq!(
            diff.pools_changed,
            vec![("app".to_string(), "app".to_string())]
        );
        assert_eq!(diff.clusters_changed, vec!["main".to_string()]);
        assert_eq!(diff.databases_changed, vec!["app".to_string()]);
        assert!(diff.users_changed.is_empty());
        assert!(diff.listen_changed && diff.needs_restart());
        assert!(!diff.proxy_changed);
        assert!(diff.cluster_settings_changed.is_empty());
    }

    #[test]
    fn cluster_settings_change_without_reconnect() {
        let new = BASE.replace(
            "[databases.app]",
            "load_balancing = \"random\"\nmax_lag_bytes = \"1MB\"\n[databases.app]",
        );
        let diff = load(BASE).diff(&load(&new));
        assert!(diff.clusters_changed.is_empty(), "{diff:?}");
        assert_eq!(diff.cluster_settings_changed, vec!["main".to_string()]);
        assert!(!diff.is_empty());
    }
}
