//! The tenant directory (`pgfleet.tenants`): one row per tenant of a pgfleet database, with its
//! model details (schema, database, shard) and state. A trigger announces every change, by pgfleet
//! or by hand, with `NOTIFY pgfleet_tenants, '<tenant name>'`, so caches in every instance can
//! drop the entry (a name can exist in several databases: a listener drops it in all of them).

use std::time::SystemTime;

use pgfleet_config::{check_tenant_name, TenancyConfig, TenantModel};
use tokio_postgres::Row;

use crate::store::MetaStore;
use crate::MetaError;

/// The NOTIFY channel of tenant directory changes; the payload is the tenant name.
pub const TENANTS_CHANNEL: &str = "pgfleet_tenants";

/// Where a tenant is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TenantState {
    /// Serving sessions.
    Active,
    /// Its sessions get an error until it is resumed.
    Suspended,
    /// Being moved to another shard or cluster.
    Moving,
}

impl TenantState {
    /// The spelling stored in the directory.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Active => "active",
            TenantState::Suspended => "suspended",
            TenantState::Moving => "moving",
        }
    }

    /// The state named by its stored spelling.
    pub fn parse(text: &str) -> Option<TenantState> {
        match text {
            "active" => Some(TenantState::Active),
            "suspended" => Some(TenantState::Suspended),
            "moving" => Some(TenantState::Moving),
            _ => None,
        }
    }
}

/// A tenant to add to the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTenant {
    /// The pgfleet database (a key of `Config::databases`) the tenant belongs to.
    pub database: String,
    /// The tenant name (see [`check_tenant_name`]).
    pub name: String,
    /// Its isolation model.
    pub model: TenantModel,
    /// Schema model: the tenant's schema.
    pub schema_name: Option<String>,
    /// Database model: the tenant's database.
    pub database_name: Option<String>,
    /// The shard it lives on, for sharded databases; `None` when unsharded.
    pub shard: Option<i32>,
}

impl NewTenant {
    /// A tenant of `database` placed as its `[databases.NAME.tenancy]` says: the schema or
    /// database name rendered from the template of its model.
    pub fn from_config(
        database: &str,
        name: &str,
        tenancy: &TenancyConfig,
        shard: Option<i32>,
    ) -> NewTenant {
        let (schema_name, database_name) = match tenancy.model {
            TenantModel::Schema => (Some(tenancy.schema_for(name)), None),
            TenantModel::Row => (None, None),
            TenantModel::Database => (None, Some(tenancy.database_for(name))),
        };
        NewTenant {
            database: database.to_string(),
            name: name.to_string(),
            model: tenancy.model,
            schema_name,
            database_name,
            shard,
        }
    }

    fn check(&self) -> Result<(), MetaError> {
        check_tenant_name(&self.name).map_err(MetaError::Invalid)?;
        let missing = match self.model {
            TenantModel::Schema if self.schema_name.is_none() => Some("a schema name"),
            TenantModel::Database if self.database_name.is_none() => Some("a database name"),
            _ => None,
        };
        if let Some(what) = missing {
            return Err(MetaError::Invalid(format!(
                "tenant `{}` uses model \"{}\" and needs {what}",
                self.name,
                self.model.as_str()
            )));
        }
        if self.shard.is_some_and(|s| s < 0) {
            return Err(MetaError::Invalid(format!(
                "tenant `{}`: shard must not be negative",
                self.name
            )));
        }
        Ok(())
    }
}

/// One row of the tenant directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// The pgfleet database the tenant belongs to.
    pub database: String,
    /// The tenant name.
    pub name: String,
    /// Its isolation model.
    pub model: TenantModel,
    /// Schema model: its schema.
    pub schema_name: Option<String>,
    /// Database model: its database.
    pub database_name: Option<String>,
    /// Its shard, for sharded databases.
    pub shard: Option<i32>,
    /// Its state.
    pub state: TenantState,
    /// When it was added.
    pub created_at: SystemTime,
    /// When its row last changed.
    pub updated_at: SystemTime,
}

const COLUMNS: &str =
    "database, name, model, schema_name, database_name, shard, state, created_at, updated_at";

impl Tenant {
    fn from_row(row: &Row) -> Result<Tenant, MetaError> {
        let model: String = row.get(2);
        let state: String = row.get(6);
        let name: String = row.get(1);
        let corrupt = |detail: String| MetaError::Corrupt {
            table: "tenants",
            detail,
        };
        Ok(Tenant {
            database: row.get(0),
            model: TenantModel::parse(&model)
                .ok_or_else(|| corrupt(format!("tenant `{name}` has unknown model `{model}`")))?,
            schema_name: row.get(3),
            database_name: row.get(4),
            shard: row.get(5),
            state: TenantState::parse(&state)
                .ok_or_else(|| corrupt(format!("tenant `{name}` has unknown state `{state}`")))?,
            created_at: row.get(7),
            updated_at: row.get(8),
            name,
        })
    }
}

impl MetaStore {
    /// Adds a tenant (state active); fails with [`MetaError::TenantExists`] when it is there.
    pub async fn create_tenant(&self, t: &NewTenant) -> Result<Tenant, MetaError> {
        t.check()?;
        let sql = format!(
            "INSERT INTO pgfleet.tenants (database, name, model, schema_name, database_name, shard)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
        );
        let result = self
            .client
            .query_one(
                &sql,
                &[
                    &t.database,
                    &t.name,
                    &t.model.as_str(),
                    &t.schema_name,
                    &t.database_name,
                    &t.shard,
                ],
            )
            .await;
        match result {
            Ok(row) => Tenant::from_row(&row),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                Err(MetaError::TenantExists {
                    database: t.database.clone(),
                    tenant: t.name.clone(),
                })
            }
            Err(e) => Err(MetaError::Query {
                context: "adding a tenant",
                source: e,
            }),
        }
    }

    /// One tenant, or `None`.
    pub async fn tenant(&self, database: &str, name: &str) -> Result<Option<Tenant>, MetaError> {
        let sql =
            format!("SELECT {COLUMNS} FROM pgfleet.tenants WHERE database = $1 AND name = $2");
        let row = self
            .client
            .query_opt(&sql, &[&database, &name])
            .await
            .map_err(MetaError::query("reading a tenant"))?;
        row.as_ref().map(Tenant::from_row).transpose()
    }

    /// Every tenant of `database`, by name.
    pub async fn tenants(&self, database: &str) -> Result<Vec<Tenant>, MetaError> {
        let sql =
            format!("SELECT {COLUMNS} FROM pgfleet.tenants WHERE database = $1 ORDER BY name");
        let rows = self
            .client
            .query(&sql, &[&database])
            .await
            .map_err(MetaError::query("listing tenants"))?;
        rows.iter().map(Tenant::from_row).collect()
    }

    /// Changes a tenant's state (suspend, resume, mark moving).
    pub async fn set_tenant_state(
        &self,
        database: &str,
        name: &str,
        state: TenantState,
    ) -> Result<Tenant, MetaError> {
        let sql = format!(
            "UPDATE pgfleet.tenants SET state = $3 WHERE database = $1 AND name = $2 RETURNING {COLUMNS}"
        );
        self.update_one(&sql, database, name, &state.as_str()).await
    }

    /// Places a tenant on another shard (`None`: unsharded).
    pub async fn set_tenant_shard(
        &self,
        database: &str,
        name: &str,
        shard: Option<i32>,
    ) -> Result<Tenant, MetaError> {
        if shard.is_some_and(|s| s < 0) {
            return Err(MetaError::Invalid(format!(
                "tenant `{name}`: shard must not be negative"
            )));
        }
        let sql = format!(
            "UPDATE pgfleet.tenants SET shard = $3 WHERE database = $1 AND name = $2 RETURNING {COLUMNS}"
        );
        self.update_one(&sql, database, name, &shard).await
    }

    async fn update_one(
        &self,
        sql: &str,
        database: &str,
        name: &str,
        value: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<Tenant, MetaError> {
        let row = self
            .client
            .query_opt(sql, &[&database, &name, value])
            .await
            .map_err(MetaError::query("updating a tenant"))?;
        match row {
            Some(row) => Tenant::from_row(&row),
            None => Err(MetaError::TenantNotFound {
                database: database.to_string(),
                tenant: name.to_string(),
            }),
        }
    }

    /// Removes a tenant from the directory (its schema or database is the caller's business);
    /// false when it was not there.
    pub async fn drop_tenant(&self, database: &str, name: &str) -> Result<bool, MetaError> {
        let n = self
            .client
            .execute(
                "DELETE FROM pgfleet.tenants WHERE database = $1 AND name = $2",
                &[&database, &name],
            )
            .await
            .map_err(MetaError::query("removing a tenant"))?;
        Ok(n > 0)
    }
}
