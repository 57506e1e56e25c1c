//! Targets: where migrations run, enumerated from the config and the tenant directory (pure).
//!
//! - `shared`: the primary of the cluster of the database, or of each of its shards (see
//!   [`placements`]);
//! - `tenant`: every tenant of a database with tenancy: schema model → that schema in the
//!   database; database model → that tenant database; row model → none (tenants share the
//!   tables, which `shared` migrations create).

use pgfleet_config::{Config, TenantModel};
use pgfleet_meta::{Tenant, TenantState};

use crate::source::TargetKind;
use crate::MigrateError;

/// One place migrations run.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The pgfleet database (a key of `Config::databases`).
    pub database: String,
    /// Shared or tenant.
    pub kind: TargetKind,
    /// The cluster whose primary holds it.
    pub cluster: String,
    /// The shard, for sharded databases.
    pub shard: Option<u32>,
    /// The database name on the server.
    pub server_database: String,
    /// Schema model: the tenant's schema (migrations run with it first on the search_path, and
    /// its history table lives in it).
    pub schema: Option<String>,
    /// Schema model: schemas appended to the search_path after the tenant's.
    pub shared_schemas: Vec<String>,
    /// The tenant, for tenant targets.
    pub tenant: Option<String>,
    /// Why this target is left alone this run (e.g. a tenant being moved).
    pub skip: Option<String>,
}

impl Target {
    /// A short, unique name: `app/shared`, `app/shared#2`, `app/tenant:acme`.
    pub fn name(&self) -> String {
        let mut name = format!("{}/{}", self.database, self.kind);
        if let Some(t) = &self.tenant {
            name.push(':');
            name.push_str(t);
        }
        if let Some(s) = self.shard {
            name.push_str(&format!("#{s}"));
        }
        name
    }

    /// Where it is, for messages: `tenant `acme` (schema tenant_acme in database app on cluster main)`.
    pub fn describe(&self) -> String {
        let place = match (&self.schema, self.shard) {
            (Some(schema), _) => format!("schema {schema} in database {}", self.server_database),
            (None, Some(shard)) => format!("database {} on shard {shard}", self.server_database),
            (None, None) => format!("database {}", self.server_database),
        };
        let who = match &self.tenant {
            Some(t) => format!("tenant `{t}`"),
            None => format!("shared target of `{}`", self.database),
        };
        format!("{who} ({place} on cluster {})", self.cluster)
    }

    /// The key of its session advisory lock (advisory locks are per server database, so this
    /// only needs to tell targets of one database apart).
    pub fn lock_key(&self) -> String {
        match &self.schema {
            Some(schema) => format!("pgfleet-migrate:schema:{schema}"),
            None => format!("pgfleet-migrate:{}", self.kind),
        }
    }

    /// The history table, quoted: `"tenant_acme".pgfleet_schema_history` in a tenant schema,
    /// `pgfleet.schema_history` elsewhere.
    pub fn history_table(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.pgfleet_schema_history", quote_ident(schema)),
            None => "pgfleet.schema_history".to_string(),
        }
    }

    /// The schema that holds the history table.
    pub fn history_schema(&self) -> &str {
        self.schema.as_deref().unwrap_or("pgfleet")
    }

    /// The search_path migrations of this target run with; `None` keeps the server's.
    pub fn search_path(&self) -> Option<String> {
        let schema = self.schema.as_ref()?;
        let mut parts = vec![quote_ident(schema)];
        parts.extend(self.shared_schemas.iter().map(|s| quote_ident(s)));
        Some(parts.join(", "))
    }
}

/// A PostgreSQL identifier in double quotes.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Where a database lives: one cluster, or one cluster per shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// An unsharded database on one cluster.
    Cluster(String),
    /// Shard `index` of a sharded database, on `cluster`.
    Shard {
        /// The shard number.
        index: u32,
        /// Its cluster.
        cluster: String,
    },
}

impl Placement {
    /// The cluster.
    pub fn cluster(&self) -> &str {
        match self {
            Placement::Cluster(c) | Placement::Shard { cluster: c, .. } => c,
        }
    }

    /// The shard number, for sharded databases.
    pub fn shard(&self) -> Option<u32> {
        match self {
            Placement::Cluster(_) => None,
            Placement::Shard { index, .. } => Some(*index),
        }
    }
}

/// The placements of a database's shared targets: its cluster, or each of its shards. Tables
/// placed on other clusters (`[databases.NAME.placement]`) are refused: which migration belongs
/// to which group is not known yet.
pub fn placements(config: &Config, database: &str) -> Result<Vec<Placement>, MigrateError> {
    let db = config
        .databases
        .get(database)
        .ok_or_else(|| unknown_database(config, database))?;
    if !db.placement.is_empty() {
        let groups: Vec<&str> = db.placement.keys().map(String::as_str).collect();
        return Err(MigrateError::Fleet(format!(
            "database `{database}` places tables on other clusters ([databases.{database}.placement]: {}); pgfleet migrate does not run migrations on placement groups yet",
            groups.join(", ")
        )));
    }
    match &db.sharding {
        None => Ok(vec![Placement::Cluster(db.cluster.clone())]),
        Some(sharding) => Ok(sharding
            .shards
            .iter()
            .enumerate()
            .map(|(i, cluster)| Placement::Shard {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                cluster: cluster.clone(),
            })
            .collect()),
    }
}

fn unknown_database(config: &Config, database: &str) -> MigrateError {
    let names: Vec<&str> = config.databases.keys().map(String::as_str).collect();
    MigrateError::Fleet(format!(
        "database `{database}` is not in the config (databases: {})",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    ))
}

/// The shared targets of `database`.
pub fn shared_targets(config: &Config, database: &str) -> Result<Vec<Target>, MigrateError> {
    let db = config
        .databases
        .get(database)
        .ok_or_else(|| unknown_database(config, database))?;
    Ok(placements(config, database)?
        .into_iter()
        .map(|placement| Target {
            database: database.to_string(),
            kind: TargetKind::Shared,
            cluster: placement.cluster().to_string(),
            shard: placement.shard(),
            server_database: db.server_database.clone(),
            schema: None,
            shared_schemas: Vec::new(),
            tenant: None,
            skip: None,
        })
        .collect())
}

/// Whether `database` has tenant targets at all (tenancy with the schema or database model).
pub fn has_tenant_targets(config: &Config, database: &str) -> bool {
    config
        .databases
        .get(database)
        .and_then(|d| d.tenancy.as_ref())
        .is_some_and(|t| t.model != TenantModel::Row)
}

/// The tenant targets of `database` from its directory rows. A tenant placed on a shard of a
/// database the config does not shard is an error naming it; a tenant being moved is skipped.
pub fn tenant_targets(
    config: &Config,
    database: &str,
    tenants: &[Tenant],
) -> Result<Vec<Target>, MigrateError> {
    let db = config
        .databases
        .get(database)
        .ok_or_else(|| unknown_database(config, database))?;
    let Some(tenancy) = &db.tenancy else {
        return Ok(Vec::new());
    };
    let placements = placements(config, database)?;
    let mut targets = Vec::with_capacity(tenants.len());
    for t in tenants {
        if t.database != database || tenancy.model == TenantModel::Row {
            continue;
        }
        if t.model != tenancy.model {
            return Err(MigrateError::Fleet(format!(
                "tenant `{}` is model \"{}\" in the tenant directory but database `{database}` uses model \"{}\"",
                t.name,
                t.model.as_str(),
                tenancy.model.as_str()
            )));
        }
        let (cluster, shard) = match (t.shard, placements.as_slice()) {
            (None, [Placement::Cluster(c)]) => (c.clone(), None),
            (Some(shard), [Placement::Cluster(_)]) => {
                return Err(MigrateError::Fleet(format!(
                    "tenant `{}` is placed on shard {shard} in the tenant directory, but database `{database}` has no shards in the config; pgfleet migrate cannot tell which cluster holds it",
                    t.name
                )))
            }
            (None, _) => {
                return Err(MigrateError::Fleet(format!(
                    "tenant `{}` has no shard in the tenant directory, but database `{database}` is sharded; place it on a shard first",
                    t.name
                )))
            }
            (Some(shard), shards) => match shards.iter().find(|p| p.shard() == u32::try_from(shard).ok()) {
                Some(p) => (p.cluster().to_string(), p.shard()),
                None => {
                    return Err(MigrateError::Fleet(format!(
                        "tenant `{}` is placed on shard {shard}, but database `{database}` has {} shard(s) (0 to {})",
                        t.name,
                        shards.len(),
                        shards.len().saturating_sub(1)
                    )))
                }
            },
        };
        let (server_database, schema, shared_schemas) = match tenancy.model {
            TenantModel::Schema => (
                db.server_database.clone(),
                Some(
                    t.schema_name
                        .clone()
                        .unwrap_or_else(|| tenancy.schema_for(&t.name)),
                ),
                tenancy.shared_schemas.clone(),
            ),
            TenantModel::Database => (
                t.database_name
                    .clone()
                    .unwrap_or_else(|| tenancy.database_for(&t.name)),
                None,
                Vec::new(),
            ),
            TenantModel::Row => continue,
        };
        targets.push(Target {
            database: database.to_string(),
            kind: TargetKind::Tenant,
            cluster,
            shard,
            server_database,
            schema,
            shared_schemas,
            tenant: Some(t.name.clone()),
            skip: (t.state == TenantState::Moving)
                .then(|| "tenant is being moved; migrate it after the move".to_string()),
        });
    }
    Ok(targets)
}

/// Digest of a target list (the ledger compares it): every target's identity and the servers of
/// its cluster, in order, so a cluster pointed at other servers is visited again.
pub fn targets_digest(config: &Config, targets: &[Target]) -> String {
    let lines: Vec<String> = targets
        .iter()
        .map(|t| {
            let servers: Vec<String> = config
                .clusters
                .get(&t.cluster)
                .map(|c| {
                    c.servers
                        .iter()
                        .map(|s| format!("{}:{}", s.host, s.port))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{}|{}|{}|{}|{}",
                t.name(),
                t.cluster,
                servers.join(","),
                t.server_database,
                t.schema.as_deref().unwrap_or("")
            )
        })
        .collect();
    crate::checksum::digest(lines.iter().map(String::as_str))
}
