//! The sandbox's generated `pgfleet.toml`: a real config, meant to be copied.

use std::fmt::Write as _;
use std::path::Path;

use pgfleet_config::ServerRole;

use super::tenants::{
    DATABASE_DB, DATABASE_TEMPLATE, ROW_COLUMN, ROW_DB, ROW_SETTING, SCHEMA_DB, TENANTS,
};
use super::{APP, META_DB};

/// One running server as the config names it.
pub(super) struct ConfigServer<'a> {
    /// The `[clusters.NAME]` it belongs to.
    pub cluster: &'a str,
    /// The sandbox's name for it (its directory, in the comment after the entry).
    pub name: &'a str,
    pub role: ServerRole,
    pub port: u16,
}

/// How database `app` is laid out over the clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// One cluster, `main`.
    Single,
    /// Every cluster is a shard, in order of first appearance in the server list; demo tables
    /// sharded, a metadata database on the first shard.
    Sharded,
}

/// The config text for `servers` (in start order, each cluster's primary first); with
/// `tenants`, the databases of the multi-tenancy demo on the first cluster and (unsharded)
/// `[metadata]` there too.
pub(super) fn config_text(
    layout: Layout,
    tenants: bool,
    proxy_port: u16,
    dir: &Path,
    servers: &[ConfigServer<'_>],
) -> String {
    let mut clusters: Vec<&str> = Vec::new();
    for s in servers {
        if !clusters.contains(&s.cluster) {
            clusters.push(s.cluster);
        }
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Written by `pgfleet sandbox` on every run (edits are overwritten; copy it elsewhere).\n\
         # Every key is documented in docs/config.md.\n\
         # Clients: psql \"postgres://{APP}:{APP}@127.0.0.1:{proxy_port}/{APP}\"\n\
         # Admin console: psql \"postgres://admin:admin@127.0.0.1:{proxy_port}/pgfleet\"\n\
         # Servers run from {} (logs in <name>/log).\n",
        dir.display()
    );
    let _ = writeln!(text, "[proxy]\nlisten = \"127.0.0.1:{proxy_port}\"\n");
    for cluster in &clusters {
        let _ = writeln!(text, "[clusters.{cluster}]\nservers = [");
        for s in servers.iter().filter(|s| s.cluster == *cluster) {
            let _ = writeln!(
                text,
                "    {{ host = \"127.0.0.1\", port = {}, role = \"{}\" }},  # {}",
                s.port,
                s.role.as_str(),
                s.name
            );
        }
        let _ = writeln!(text, "]\n");
    }
    match layout {
        Layout::Single => {
            let _ = writeln!(text, "[databases.{APP}]\ncluster = \"main\"\n");
        }
        Layout::Sharded => sharded_database(&mut text, &clusters),
    }
    if tenants {
        let first = clusters.first().copied().unwrap_or("main");
        if layout == Layout::Single {
            metadata(&mut text, first, "");
        }
        tenant_databases(&mut text, first);
    }
    let _ = writeln!(
        text,
        "[users.{APP}]\npassword = \"{APP}\"   # also the server password of role {APP}\n"
    );
    let _ = writeln!(text, "[users.admin]\npassword = \"admin\"\nadmin = true");
    text
}

/// `[databases.app]` over the shards `clusters`, its sharded tables (the demo schema of
/// `super::demo`) and `[metadata]` on the first shard.
fn sharded_database(text: &mut String, clusters: &[&str]) {
    let n = clusters.len();
    let shards: Vec<String> = clusters.iter().map(|c| format!("\"{c}\"")).collect();
    let _ = writeln!(
        text,
        "# Demo tables, created on every shard by the first run: customers and orders are\n\
         # sharded by customer (hash, as PARTITION BY HASH with modulus {n}), countries is a\n\
         # reference table. See docs/sharding.md.\n\
         [databases.{APP}]\n\
         shards = [{}]   # shard i = i-th cluster\n\
         reference_tables = [\"countries\"]   # a full copy on every shard\n",
        shards.join(", ")
    );
    let _ = writeln!(
        text,
        "[databases.{APP}.sharded_tables.customers]\n\
         column = \"id\"\n\
         type = \"bigint\"\n\
         method = \"hash\"\n"
    );
    let _ = writeln!(
        text,
        "[databases.{APP}.sharded_tables.orders]\n\
         column = \"customer_id\"\n\
         type = \"bigint\"\n\
         method = \"hash\"   # hashes like customers.id: a customer's orders are on its shard\n"
    );
    let first = clusters.first().copied().unwrap_or("shard0");
    metadata(text, first, ", on the first shard");
}

/// `[metadata]`: database `pgfleet_meta` on `cluster`, reached as `app`.
fn metadata(text: &mut String, cluster: &str, where_: &str) {
    let _ = writeln!(
        text,
        "# The metadata database (tenant directory, migration ledger){where_}.\n\
         [metadata]\n\
         cluster = \"{cluster}\"\n\
         database = \"{META_DB}\"\n\
         user = \"{APP}\"\n\
         password = \"{APP}\"\n"
    );
}

/// The multi-tenancy demo (`--tenants`, see `super::tenants`): one database per isolation
/// model on `cluster`, each with the same tenants.
fn tenant_databases(text: &mut String, cluster: &str) {
    let names: Vec<String> = TENANTS.iter().map(|t| format!("{APP}.{t}")).collect();
    let _ = writeln!(
        text,
        "# Multi-tenancy demo (--tenants): tenants {tenants} in every isolation model, in the\n\
         # tenant directory of [metadata]; connect as user {users} (password {APP}).\n\
         # More tenants: pgfleet tenant --config pgfleet.toml --database {SCHEMA_DB} create NAME\n\
         # (run in this directory: it gives new tenants the notes table of migrations/tenant/).\n\
         # See docs/tenancy.md.\n\
         [databases.{SCHEMA_DB}]\n\
         cluster = \"{cluster}\"\n\n\
         [databases.{SCHEMA_DB}.tenancy]\n\
         model = \"schema\"   # a schema per tenant (tenant_acme), search_path set by pgfleet\n\n\
         [databases.{ROW_DB}]\n\
         cluster = \"{cluster}\"\n\n\
         [databases.{ROW_DB}.tenancy]\n\
         model = \"row\"   # shared tables; row-level security compares the column with the setting\n\
         tenant_column = \"{ROW_COLUMN}\"\n\
         setting = \"{ROW_SETTING}\"\n\n\
         [databases.{DATABASE_DB}]\n\
         cluster = \"{cluster}\"\n\n\
         [databases.{DATABASE_DB}.tenancy]\n\
         model = \"database\"   # a database per tenant\n\
         database_template = \"{DATABASE_TEMPLATE}\"\n",
        tenants = TENANTS.join(" and "),
        users = names.join(" or "),
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use pgfleet_config::Config;

    fn server<'a>(cluster: &'a str, name: &'a str, primary: bool, port: u16) -> ConfigServer<'a> {
        ConfigServer {
            cluster,
            name,
            role: if primary {
                ServerRole::Primary
            } else {
                ServerRole::Replica
            },
            port,
        }
    }

    #[test]
    fn single_cluster_config_is_unchanged() {
        let text = config_text(
            Layout::Single,
            false,
            6432,
            Path::new("/sbx"),
            &[
                server("main", "primary", true, 6433),
                server("main", "replica1", false, 6434),
            ],
        );
        let expected = "\
# Written by `pgfleet sandbox` on every run (edits are overwritten; copy it elsewhere).
# Every key is documented in docs/config.md.
# Clients: psql \"postgres://app:app@127.0.0.1:6432/app\"
# Admin console: psql \"postgres://admin:admin@127.0.0.1:6432/pgfleet\"
# Servers run from /sbx (logs in <name>/log).

[proxy]
listen = \"127.0.0.1:6432\"

[clusters.main]
servers = [
    { host = \"127.0.0.1\", port = 6433, role = \"primary\" },  # primary
    { host = \"127.0.0.1\", port = 6434, role = \"replica\" },  # replica1
]

[databases.app]
cluster = \"main\"

[users.app]
password = \"app\"   # also the server password of role app

[users.admin]
password = \"admin\"
admin = true
";
        assert_eq!(text, expected);
        Config::from_toml_str(&text).unwrap();
    }

    #[test]
    fn sharded_config_validates() {
        let text = config_text(
            Layout::Sharded,
            false,
            6432,
            Path::new("/sbx"),
            &[
                server("shard0", "shard0", true, 6433),
                server("shard0", "shard0-replica1", false, 6434),
                server("shard1", "shard1", true, 6435),
                server("shard1", "shard1-replica1", false, 6436),
            ],
        );
        let config = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let sharding = config.databases["app"].sharding.as_ref().unwrap();
        assert_eq!(sharding.shards, ["shard0", "shard1"]);
        assert_eq!(sharding.reference_tables, ["countries"]);
        assert_eq!(sharding.sharded_tables["customers"].column, "id");
        assert_eq!(sharding.sharded_tables["orders"].column, "customer_id");
        assert_eq!(config.clusters["shard1"].servers.len(), 2);
        let meta = config.metadata.unwrap();
        assert_eq!(
            (
                meta.cluster.as_str(),
                meta.database.as_str(),
                meta.user.as_str()
            ),
            ("shard0", "pgfleet_meta", "app")
        );
    }

    /// The three databases of the tenancy demo on `cluster`, one per model.
    fn assert_tenant_databases(config: &Config, cluster: &str) {
        use pgfleet_config::TenantModel;
        for (db, model) in [
            (SCHEMA_DB, TenantModel::Schema),
            (ROW_DB, TenantModel::Row),
            (DATABASE_DB, TenantModel::Database),
        ] {
            let d = &config.databases[db];
            assert_eq!(d.server_database, db);
            let tenancy = d.tenancy.as_ref().unwrap();
            assert_eq!(tenancy.model, model, "{db}");
            assert!(d.sharding.is_none(), "{db} is not sharded");
        }
        let row = config.databases[ROW_DB].tenancy.as_ref().unwrap();
        assert_eq!(
            (row.tenant_column.as_str(), row.setting.as_str()),
            ("tenant_id", "app.current_tenant")
        );
        let db = config.databases[DATABASE_DB].tenancy.as_ref().unwrap();
        assert_eq!(db.database_for("acme"), "saas_db_acme");
        let meta = config.metadata.as_ref().unwrap();
        assert_eq!(
            (meta.cluster.as_str(), meta.database.as_str()),
            (cluster, "pgfleet_meta")
        );
        for db in [SCHEMA_DB, ROW_DB, DATABASE_DB] {
            assert_eq!(config.databases[db].cluster, cluster, "{db}");
        }
    }

    #[test]
    fn tenants_add_metadata_and_a_database_per_model() {
        let text = config_text(
            Layout::Single,
            true,
            6432,
            Path::new("/sbx"),
            &[server("main", "primary", true, 6433)],
        );
        let config = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_tenant_databases(&config, "main");
        assert!(config.databases["app"].tenancy.is_none());
        assert_eq!(text.matches("\n[metadata]\n").count(), 1);

        let text = config_text(
            Layout::Sharded,
            true,
            6432,
            Path::new("/sbx"),
            &[
                server("shard0", "shard0", true, 6433),
                server("shard1", "shard1", true, 6435),
            ],
        );
        let config = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_tenant_databases(&config, "shard0");
        assert_eq!(text.matches("\n[metadata]\n").count(), 1);
    }
}
