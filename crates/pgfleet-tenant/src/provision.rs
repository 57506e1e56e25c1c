//! [`Tenants`]: the tenant commands of one database, over the tenant directory (metadata
//! database) and the servers that hold the tenants' schemas or databases (thin I/O; the decisions
//! are in [`crate::scope`] and [`crate::lifecycle`]).
//!
//! `create` changes nothing when it fails: it checks the directory, creates the schema or
//! database (an existing one is a conflict, never adopted), runs the tenant migrations, and only
//! then adds the directory entry, so a session can never find a half-made tenant; on any failure
//! after the object was created, the object is dropped again.

use std::time::SystemTime;

use pgfleet_config::{check_tenant_name, Config};
use pgfleet_meta::{find_primary, Login, MetaError, MetaStore, NewTenant, Tenant, TenantState};
use pgfleet_migrate::{bring_tenant_to_current, MigrationSet, Outcome, RunOptions, TargetKind};
use tokio::sync::OnceCell;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::lifecycle::{
    drop_blocked, drop_refusal, maintenance_databases, state_change, StateChange, TenantObject,
};
use crate::scope::{choose_shard, scope, tenant_place, Place, Scope};
use crate::TenantError;

/// `application_name` of the tool's connections.
pub const APPLICATION_NAME: &str = "pgfleet-tenant";

/// Options of `create`.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// Put the tenant on this shard instead of the placement rule's.
    pub shard: Option<u32>,
    /// Owner of the new schema or database (default: the login).
    pub owner: Option<String>,
    /// Migrations whose tenant migrations bring the new tenant to the current version.
    pub migrations: Option<MigrationSet>,
}

/// What the tenant migrations did for a new tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationsDone {
    /// Row model: tenants share the tables; there is nothing per tenant to migrate.
    NotApplicable,
    /// No migrations were given.
    NoneGiven,
    /// The migrations have no tenant migrations.
    NoTenantMigrations,
    /// These steps ran.
    Applied(Vec<String>),
    /// The new tenant was already current (its migrations did nothing).
    UpToDate,
}

/// A tenant `create` made.
#[derive(Clone, Debug)]
pub struct Created {
    /// Its directory entry.
    pub tenant: Tenant,
    /// Where it lives.
    pub place: Place,
    /// Its schema or database.
    pub object: TenantObject,
    /// What its migrations did.
    pub migrations: MigrationsDone,
}

/// What `drop` removed.
#[derive(Clone, Debug)]
pub struct Dropped {
    /// The directory entry it had.
    pub tenant: Tenant,
    /// Where it lived.
    pub place: Place,
    /// Its schema or database (or shared rows, which stay).
    pub object: TenantObject,
    /// Whether the schema or database was there to drop (false: already gone, or row model).
    pub object_existed: bool,
}

/// What a state command did.
#[derive(Clone, Debug)]
pub enum StateOutcome {
    /// The state was written; the tenant as it is now.
    Changed(Tenant),
    /// The tenant was already in that state.
    Already(Tenant),
}

/// One tenant with where it lives, for `show`.
#[derive(Clone, Debug)]
pub struct TenantView {
    /// Its directory entry.
    pub tenant: Tenant,
    /// Where it lives, or why the config cannot say.
    pub place: Result<Place, String>,
    /// Its schema or database, or why the config cannot say.
    pub object: Result<TenantObject, String>,
}

/// The tenant commands of one database with tenancy.
pub struct Tenants {
    config: Config,
    database: String,
    login: Login,
    meta: OnceCell<MetaStore>,
}

impl Tenants {
    /// The commands of `database` (which must have tenancy), logging in to servers as `login`
    /// and to the metadata database as `[metadata]` says. Connects lazily.
    pub fn new(config: Config, database: &str, login: Login) -> Result<Tenants, TenantError> {
        scope(&config, database)?;
        Ok(Tenants {
            config,
            database: database.to_string(),
            login,
            meta: OnceCell::new(),
        })
    }

    /// The database's scope.
    pub fn scope(&self) -> Result<Scope<'_>, TenantError> {
        scope(&self.config, &self.database)
    }

    /// The pgfleet database these commands manage.
    pub fn database(&self) -> &str {
        &self.database
    }

    async fn meta(&self) -> Result<&MetaStore, TenantError> {
        self.meta
            .get_or_try_init(|| async {
                MetaStore::connect(&self.config, APPLICATION_NAME)
                    .await
                    .map_err(TenantError::from)
            })
            .await
    }

    async fn existing(&self, name: &str) -> Result<Tenant, TenantError> {
        self.meta()
            .await?
            .tenant(&self.database, name)
            .await?
            .ok_or_else(|| TenantError::NotFound {
                database: self.database.clone(),
                tenant: name.to_string(),
            })
    }

    /// Creates tenant `name`: placement, schema or database, tenant migrations, directory entry
    /// (state active). See the module docs for why in this order.
    pub async fn create(&self, name: &str, opts: CreateOptions) -> Result<Created, TenantError> {
        check_tenant_name(name).map_err(TenantError::InvalidName)?;
        let scope = self.scope()?;
        let shard = choose_shard(&scope, name, opts.shard)?;
        let place = tenant_place(&scope, name, shard)?;
        let object = TenantObject::for_new(&scope, name);
        let meta = self.meta().await?;
        if let Some(t) = meta.tenant(&self.database, name).await? {
            return Err(TenantError::AlreadyExists {
                database: self.database.clone(),
                tenant: name.to_string(),
                detail: existing_detail(&scope, &t),
            });
        }
        let made = match object.create_sql(opts.owner.as_deref()) {
            Some(sql) => {
                self.create_object(&scope, &place, &object, &sql, name)
                    .await?;
                true
            }
            None => false,
        };
        let new = NewTenant::from_config(&self.database, name, scope.tenancy, shard);
        let draft = Tenant {
            database: new.database.clone(),
            name: new.name.clone(),
            model: new.model,
            schema_name: new.schema_name.clone(),
            database_name: new.database_name.clone(),
            shard,
            state: TenantState::Active,
            created_at: SystemTime::now(),
            updated_at: SystemTime::now(),
        };
        let migrations = match self.migrate(&object, &draft, opts.migrations).await {
            Ok(done) => done,
            Err(error) => {
                let cleanup = self.undo_create(made, &scope, &place, &object).await;
                return Err(TenantError::Migrations {
                    tenant: name.to_string(),
                    error,
                    cleanup,
                });
            }
        };
        match meta.create_tenant(&new).await {
            Ok(tenant) => Ok(Created {
                tenant,
                place,
                object,
                migrations,
            }),
            Err(e) => {
                let cleanup = self.undo_create(made, &scope, &place, &object).await;
                Err(match e {
                    MetaError::TenantExists { database, tenant } => TenantError::AlreadyExists {
                        database,
                        tenant,
                        detail: format!("added by another run at the same time; {cleanup}"),
                    },
                    other => TenantError::Refused(format!(
                        "adding tenant `{name}` to the tenant directory failed: {other}; {cleanup}"
                    )),
                })
            }
        }
    }

    async fn create_object(
        &self,
        scope: &Scope<'_>,
        place: &Place,
        object: &TenantObject,
        sql: &str,
        tenant: &str,
    ) -> Result<(), TenantError> {
        let client = self.object_connection(scope, place, object).await?;
        let described = object.describe(place);
        match client.batch_execute(sql).await {
            Ok(()) => Ok(()),
            Err(e)
                if e.code() == Some(&SqlState::DUPLICATE_SCHEMA)
                    || e.code() == Some(&SqlState::DUPLICATE_DATABASE) =>
            {
                Err(TenantError::ObjectExists {
                    object: described,
                    tenant: tenant.to_string(),
                })
            }
            Err(e) => Err(TenantError::server(format!("creating {described}"))(e)),
        }
    }

    /// Drops what `create` made after a later step failed; says what happened, for the error.
    async fn undo_create(
        &self,
        made: bool,
        scope: &Scope<'_>,
        place: &Place,
        object: &TenantObject,
    ) -> String {
        if !made {
            return "nothing was created".to_string();
        }
        let described = object.describe(place);
        match self.drop_object(scope, place, object).await {
            Ok(_) => format!("the tenant was not created ({described} was dropped again)"),
            Err(e) => format!("dropping {described} again also failed ({e}); drop it by hand"),
        }
    }

    async fn migrate(
        &self,
        object: &TenantObject,
        draft: &Tenant,
        set: Option<MigrationSet>,
    ) -> Result<MigrationsDone, String> {
        if let TenantObject::Rows { .. } = object {
            return Ok(MigrationsDone::NotApplicable);
        }
        let Some(set) = set else {
            return Ok(MigrationsDone::NoneGiven);
        };
        if set.of_kind(TargetKind::Tenant).next().is_none() {
            return Ok(MigrationsDone::NoTenantMigrations);
        }
        let mut opts = RunOptions::new(self.login.clone());
        opts.jobs = 1;
        let result = bring_tenant_to_current(&self.config, set, draft, &opts)
            .await
            .map_err(|e| e.to_string())?;
        match result.outcome {
            Outcome::Applied { steps } => Ok(MigrationsDone::Applied(steps)),
            Outcome::UpToDate => Ok(MigrationsDone::UpToDate),
            Outcome::Failed { error, done } if done.is_empty() => Err(error),
            Outcome::Failed { error, done } => {
                Err(format!("{error} (after applying {})", done.join(", ")))
            }
            other => Err(format!("unexpected outcome {other:?}")),
        }
    }

    /// Every tenant of the database, by name.
    pub async fn list(&self) -> Result<Vec<Tenant>, TenantError> {
        Ok(self.meta().await?.tenants(&self.database).await?)
    }

    /// One tenant with where it lives.
    pub async fn show(&self, name: &str) -> Result<TenantView, TenantError> {
        let tenant = self.existing(name).await?;
        let scope = self.scope()?;
        Ok(TenantView {
            place: tenant_place(&scope, name, tenant.shard).map_err(|e| e.to_string()),
            object: TenantObject::for_tenant(&scope, &tenant).map_err(|e| e.to_string()),
            tenant,
        })
    }

    /// Suspends (`Suspended`) or resumes (`Active`) a tenant.
    pub async fn set_state(
        &self,
        name: &str,
        wanted: TenantState,
    ) -> Result<StateOutcome, TenantError> {
        let tenant = self.existing(name).await?;
        match state_change(name, tenant.state, wanted)? {
            StateChange::Already => Ok(StateOutcome::Already(tenant)),
            StateChange::To(state) => Ok(StateOutcome::Changed(
                self.meta()
                    .await?
                    .set_tenant_state(&self.database, name, state)
                    .await?,
            )),
        }
    }

    /// Drops a tenant: without `confirm`, refuses with what it would remove. With it: suspends
    /// the tenant (its sessions stop before its data goes), drops its schema or database, then
    /// removes its directory entry. Row model: only the directory entry goes; the rows stay.
    pub async fn drop_tenant(&self, name: &str, confirm: bool) -> Result<Dropped, TenantError> {
        let tenant = self.existing(name).await?;
        let scope = self.scope()?;
        let place = tenant_place(&scope, name, tenant.shard)?;
        let object = TenantObject::for_tenant(&scope, &tenant)?;
        if let Some(why) = drop_blocked(&tenant) {
            return Err(TenantError::Refused(why));
        }
        if !confirm {
            return Err(TenantError::Refused(drop_refusal(name, &object, &place)));
        }
        let meta = self.meta().await?;
        if tenant.state != TenantState::Suspended {
            meta.set_tenant_state(&self.database, name, TenantState::Suspended)
                .await?;
        }
        let object_existed = self.drop_object(&scope, &place, &object).await?;
        meta.drop_tenant(&self.database, name).await?;
        Ok(Dropped {
            tenant,
            place,
            object,
            object_existed,
        })
    }

    /// Drops the schema or database; false when it was not there (or for the row model).
    async fn drop_object(
        &self,
        scope: &Scope<'_>,
        place: &Place,
        object: &TenantObject,
    ) -> Result<bool, TenantError> {
        if let TenantObject::Rows { .. } = object {
            return Ok(false);
        }
        let client = self.object_connection(scope, place, object).await?;
        let described = object.describe(place);
        let (exists_sql, name) = match object {
            TenantObject::Schema { name, .. } => {
                ("SELECT count(*) FROM pg_namespace WHERE nspname = $1", name)
            }
            TenantObject::Database { name } => {
                ("SELECT count(*) FROM pg_database WHERE datname = $1", name)
            }
            TenantObject::Rows { .. } => return Ok(false),
        };
        let found: i64 = client
            .query_one(exists_sql, &[name])
            .await
            .map_err(TenantError::server(format!("looking for {described}")))?
            .get(0);
        if found == 0 {
            return Ok(false);
        }
        let version: i32 = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .map_err(TenantError::server(format!(
                "reading the server version on {place}"
            )))?
            .get(0);
        // DROP DATABASE … WITH (FORCE) exists since PostgreSQL 13.
        if let Some(sql) = object.drop_sql(version >= 130_000) {
            client
                .batch_execute(&sql)
                .await
                .map_err(TenantError::server(format!("dropping {described}")))?;
        }
        Ok(true)
    }

    /// A connection to the primary of the place, in the database where the object's statements
    /// run (the schema's database, or a maintenance database for a tenant database).
    async fn object_connection(
        &self,
        scope: &Scope<'_>,
        place: &Place,
        object: &TenantObject,
    ) -> Result<Client, TenantError> {
        let candidates = match object.home_database() {
            Some(db) => vec![db.to_string()],
            None => maintenance_databases(scope),
        };
        let mut first_error = None;
        for db in &candidates {
            match primary(&self.config, place.cluster(), &self.login, db).await {
                Ok(client) => return Ok(client),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error
            .unwrap_or_else(|| TenantError::Scope(format!("no database to connect to on {place}"))))
    }
}

/// A connection to the primary of `cluster`, database `database`, as `login`.
pub(crate) async fn primary(
    config: &Config,
    cluster: &str,
    login: &Login,
    database: &str,
) -> Result<Client, TenantError> {
    let c = config
        .clusters
        .get(cluster)
        .ok_or_else(|| MetaError::UnknownCluster(cluster.to_string()))?;
    let (client, _) = find_primary(cluster, c, &login.for_database(database)).await?;
    Ok(client)
}

/// How an existing tenant is described when `create` finds it.
fn existing_detail(scope: &Scope<'_>, t: &Tenant) -> String {
    let place = tenant_place(scope, &t.name, t.shard)
        .map(|p| p.to_string())
        .unwrap_or_else(|e| e.to_string());
    format!(
        "model {}, {place}, state {}, created {}",
        t.model.as_str(),
        t.state.as_str(),
        humantime::format_rfc3339_seconds(t.created_at)
    )
}
