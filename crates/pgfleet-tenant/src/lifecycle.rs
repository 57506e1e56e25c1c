//! A tenant's own objects and its life (pure): the schema (schema model) or database (database
//! model) that holds its data, the SQL that creates and drops it, and which state changes are
//! allowed. The row model has no object of its own: its rows sit in shared tables.

use pgfleet_config::TenantModel;
use pgfleet_meta::{Tenant, TenantState};
use pgfleet_migrate::target::quote_ident;

use crate::scope::{Place, Scope};
use crate::TenantError;

/// What holds a tenant's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantObject {
    /// Schema model: a schema in the database's server database.
    Schema {
        /// The schema.
        name: String,
        /// The server database it is in.
        server_database: String,
    },
    /// Database model: a database of its own.
    Database {
        /// The database name on the server.
        name: String,
    },
    /// Row model: rows in shared tables, told apart by a column.
    Rows {
        /// The tenant column.
        column: String,
        /// The server database of the shared tables.
        server_database: String,
    },
}

impl TenantObject {
    /// The object a new tenant gets, from the database's tenancy templates.
    pub fn for_new(scope: &Scope<'_>, tenant: &str) -> TenantObject {
        match scope.tenancy.model {
            TenantModel::Schema => TenantObject::Schema {
                name: scope.tenancy.schema_for(tenant),
                server_database: scope.db.server_database.clone(),
            },
            TenantModel::Database => TenantObject::Database {
                name: scope.tenancy.database_for(tenant),
            },
            TenantModel::Row => TenantObject::Rows {
                column: scope.tenancy.tenant_column.clone(),
                server_database: scope.db.server_database.clone(),
            },
        }
    }

    /// The object of a tenant in the directory (its recorded schema or database name wins over
    /// the template, which may have changed since). A model that differs from the config's is an
    /// error: the tool would look in the wrong place.
    pub fn for_tenant(scope: &Scope<'_>, t: &Tenant) -> Result<TenantObject, TenantError> {
        if t.model != scope.tenancy.model {
            return Err(TenantError::Scope(format!(
                "tenant `{}` is model \"{}\" in the tenant directory but database `{}` uses model \"{}\"; fix the config or the directory entry",
                t.name,
                t.model.as_str(),
                scope.name,
                scope.tenancy.model.as_str()
            )));
        }
        Ok(
            match (
                Self::for_new(scope, &t.name),
                &t.schema_name,
                &t.database_name,
            ) {
                (
                    TenantObject::Schema {
                        server_database, ..
                    },
                    Some(name),
                    _,
                ) => TenantObject::Schema {
                    name: name.clone(),
                    server_database,
                },
                (TenantObject::Database { .. }, _, Some(name)) => {
                    TenantObject::Database { name: name.clone() }
                }
                (object, _, _) => object,
            },
        )
    }

    /// The server database where this object's statements run: the schema's or the shared
    /// tables' database; `None` for a tenant database (created and dropped from another one).
    pub fn home_database(&self) -> Option<&str> {
        match self {
            TenantObject::Schema {
                server_database, ..
            }
            | TenantObject::Rows {
                server_database, ..
            } => Some(server_database),
            TenantObject::Database { .. } => None,
        }
    }

    /// The statement that creates it, owned by `owner` when given (else by the login); `None`
    /// for the row model. Neither uses IF NOT EXISTS: an existing object is a conflict to report.
    pub fn create_sql(&self, owner: Option<&str>) -> Option<String> {
        match self {
            TenantObject::Schema { name, .. } => Some(match owner {
                Some(o) => format!(
                    "CREATE SCHEMA {} AUTHORIZATION {}",
                    quote_ident(name),
                    quote_ident(o)
                ),
                None => format!("CREATE SCHEMA {}", quote_ident(name)),
            }),
            TenantObject::Database { name } => Some(match owner {
                Some(o) => format!(
                    "CREATE DATABASE {} OWNER {}",
                    quote_ident(name),
                    quote_ident(o)
                ),
                None => format!("CREATE DATABASE {}", quote_ident(name)),
            }),
            TenantObject::Rows { .. } => None,
        }
    }

    /// The statement that drops it with everything in it; `force` (PostgreSQL 13 and later)
    /// ends the sessions still connected to a tenant database. `None` for the row model.
    pub fn drop_sql(&self, force: bool) -> Option<String> {
        match self {
            TenantObject::Schema { name, .. } => Some(format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                quote_ident(name)
            )),
            TenantObject::Database { name } => Some(format!(
                "DROP DATABASE IF EXISTS {}{}",
                quote_ident(name),
                if force { " WITH (FORCE)" } else { "" }
            )),
            TenantObject::Rows { .. } => None,
        }
    }

    /// Where it is, for messages: `schema tenant_acme in database app on cluster main`.
    pub fn describe(&self, place: &Place) -> String {
        match self {
            TenantObject::Schema {
                name,
                server_database,
            } => format!("schema {name} in database {server_database} on {place}"),
            TenantObject::Database { name } => format!("database {name} on {place}"),
            TenantObject::Rows {
                column,
                server_database,
            } => format!("rows with column {column} in the shared tables of database {server_database} on {place}"),
        }
    }
}

/// Databases to connect to when creating or dropping a tenant database (one cannot drop the
/// database one is connected to): `postgres`, the pgfleet database's server database, then
/// `template1`; the first that accepts the login is used.
pub fn maintenance_databases(scope: &Scope<'_>) -> Vec<String> {
    let mut dbs = vec!["postgres".to_string()];
    for db in [scope.db.server_database.as_str(), "template1"] {
        if !dbs.iter().any(|d| d == db) {
            dbs.push(db.to_string());
        }
    }
    dbs
}

/// What a state command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateChange {
    /// Write the new state.
    To(TenantState),
    /// The tenant is already in that state; nothing to write.
    Already,
}

/// Whether `tenant` in state `current` may be put in state `wanted`. A tenant being moved is left
/// to the move, which sets its state when it ends.
pub fn state_change(
    tenant: &str,
    current: TenantState,
    wanted: TenantState,
) -> Result<StateChange, TenantError> {
    match (current, wanted) {
        (TenantState::Moving, _) => Err(TenantError::Refused(format!(
            "tenant `{tenant}` is being moved (state moving); its state changes when the move ends, try again then"
        ))),
        (c, w) if c == w => Ok(StateChange::Already),
        (_, w) => Ok(StateChange::To(w)),
    }
}

/// The refusal of `drop` without `--confirm`, saying exactly what it would remove.
pub fn drop_refusal(tenant: &str, object: &TenantObject, place: &Place) -> String {
    let what = match object {
        TenantObject::Schema { .. } => format!(
            "this drops {} with everything in it (DROP SCHEMA … CASCADE) and cannot be undone",
            object.describe(place)
        ),
        TenantObject::Database { .. } => format!(
            "this drops {}, ending its sessions, and cannot be undone",
            object.describe(place)
        ),
        TenantObject::Rows { .. } => format!(
            "this removes tenant `{tenant}` from the tenant directory (its {} stay)",
            object.describe(place)
        ),
    };
    format!("refusing to drop tenant `{tenant}` without --confirm: {what}; run the command again with --confirm")
}

/// Whether a drop must be refused because the tenant is being moved.
pub fn drop_blocked(t: &Tenant) -> Option<String> {
    (t.state == TenantState::Moving).then(|| {
        format!(
            "tenant `{}` is being moved (state moving); drop it after the move ends",
            t.name
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::SystemTime;

    use pgfleet_config::Config;

    use super::*;
    use crate::scope::scope;

    fn config(model: &str, extra: &str) -> Config {
        let text = format!(
            "[clusters.main]\nservers = [{{ host = \"127.0.0.1\" }}]\n[databases.app]\ncluster = \"main\"\nserver_database = \"app_db\"\n[databases.app.tenancy]\nmodel = \"{model}\"\n{extra}"
        );
        match Config::from_toml_str(&text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn tenant(model: TenantModel, schema: Option<&str>, database: Option<&str>) -> Tenant {
        Tenant {
            database: "app".into(),
            name: "acme".into(),
            model,
            schema_name: schema.map(Into::into),
            database_name: database.map(Into::into),
            shard: None,
            state: TenantState::Active,
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn schema_model_sql() {
        let c = config("schema", "schema_template = \"t_{tenant}\"");
        let s = scope(&c, "app").unwrap();
        let o = TenantObject::for_new(&s, "acme");
        assert_eq!(
            o,
            TenantObject::Schema {
                name: "t_acme".into(),
                server_database: "app_db".into()
            }
        );
        assert_eq!(o.create_sql(None).unwrap(), "CREATE SCHEMA \"t_acme\"");
        assert_eq!(
            o.create_sql(Some("app")).unwrap(),
            "CREATE SCHEMA \"t_acme\" AUTHORIZATION \"app\""
        );
        assert_eq!(
            o.drop_sql(true).unwrap(),
            "DROP SCHEMA IF EXISTS \"t_acme\" CASCADE"
        );
        assert_eq!(o.home_database(), Some("app_db"));
        let place = Place::Cluster("main".into());
        assert_eq!(
            o.describe(&place),
            "schema t_acme in database app_db on cluster main"
        );
        // The directory's recorded name wins over a template changed since.
        let t = tenant(TenantModel::Schema, Some("old_acme"), None);
        assert_eq!(
            TenantObject::for_tenant(&s, &t).unwrap(),
            TenantObject::Schema {
                name: "old_acme".into(),
                server_database: "app_db".into()
            }
        );
        let t = tenant(TenantModel::Row, None, None);
        let e = TenantObject::for_tenant(&s, &t).unwrap_err().to_string();
        assert!(e.contains("tenant `acme` is model \"row\" in the tenant directory but database `app` uses model \"schema\""), "{e}");
    }

    #[test]
    fn database_model_sql() {
        let c = config("database", "");
        let s = scope(&c, "app").unwrap();
        let o = TenantObject::for_new(&s, "acme");
        assert_eq!(
            o,
            TenantObject::Database {
                name: "tenant_acme".into()
            }
        );
        assert_eq!(
            o.create_sql(Some("app")).unwrap(),
            "CREATE DATABASE \"tenant_acme\" OWNER \"app\""
        );
        assert_eq!(
            o.drop_sql(true).unwrap(),
            "DROP DATABASE IF EXISTS \"tenant_acme\" WITH (FORCE)"
        );
        assert_eq!(
            o.drop_sql(false).unwrap(),
            "DROP DATABASE IF EXISTS \"tenant_acme\""
        );
        assert_eq!(o.home_database(), None);
        assert_eq!(
            maintenance_databases(&s),
            vec!["postgres", "app_db", "template1"]
        );
        let t = tenant(TenantModel::Database, None, Some("legacy_acme"));
        assert_eq!(
            TenantObject::for_tenant(&s, &t).unwrap(),
            TenantObject::Database {
                name: "legacy_acme".into()
            }
        );
    }

    #[test]
    fn row_model_has_nothing_to_create_or_drop() {
        let c = config("row", "");
        let s = scope(&c, "app").unwrap();
        let o = TenantObject::for_new(&s, "acme");
        assert_eq!(o.create_sql(None), None);
        assert_eq!(o.drop_sql(true), None);
        let refusal = drop_refusal("acme", &o, &Place::Cluster("main".into()));
        assert!(
            refusal
                == "refusing to drop tenant `acme` without --confirm: this removes tenant `acme` from the tenant directory (its rows with column tenant_id in the shared tables of database app_db on cluster main stay); run the command again with --confirm",
            "{refusal}"
        );
    }

    #[test]
    fn state_changes() {
        use TenantState::*;
        assert_eq!(
            state_change("a", Active, Suspended).unwrap(),
            StateChange::To(Suspended)
        );
        assert_eq!(
            state_change("a", Suspended, Active).unwrap(),
            StateChange::To(Active)
        );
        assert_eq!(
            state_change("a", Suspended, Suspended).unwrap(),
            StateChange::Already
        );
        assert_eq!(
            state_change("a", Active, Active).unwrap(),
            StateChange::Already
        );
        let e = state_change("a", Moving, Active).unwrap_err().to_string();
        assert!(
            e.starts_with("tenant `a` is being moved (state moving)"),
            "{e}"
        );
        let mut t = tenant(TenantModel::Schema, Some("s"), None);
        assert_eq!(drop_blocked(&t), None);
        t.state = Moving;
        assert!(drop_blocked(&t).is_some());
    }
}
