//! `pgfleet sandbox --tenants`: a multi-tenancy demo next to database `app`. The tenants
//! [`TENANTS`] in each isolation model, each in its own pgfleet database on the first cluster:
//!
//! - `saas_schema` (model schema): a schema per tenant (`tenant_acme`) holding
//!   `notes(id bigint primary key, body text)`;
//! - `saas_row` (model row): one shared `notes(tenant_id text, id bigint, body text, primary key
//!   (tenant_id, id))` under row-level security on `app.current_tenant`;
//! - `saas_db` (model database): a database per tenant (`saas_db_acme`) with the schema model's
//!   `notes`.
//!
//! Tenants are made exactly as `pgfleet tenant create` makes them (`pgfleet_tenant::Tenants`,
//! logged in as `app`, the CLI's default login): schema or database, then the tenant migrations
//! of `DIR/migrations` (written here: `tenant/V0001__notes.sql` creates `notes`), then the
//! directory entry; a tenant created by this run then gets its demo notes. The row model's
//! policies are those of `pgfleet tenant policies --apply` (`pgfleet_tenant::check_policies`),
//! run as role `saas_owner`, which owns the shared table: `app`, the proxy's server role, owns
//! nothing there and has no BYPASSRLS, so the policies filter its rows. For the database model
//! `app` gets `CREATEDB`.
//!
//! Reruns reuse everything: roles, databases and tables are created only when missing, tenants
//! already in the directory are left alone (whatever their notes hold), and the policy check
//! finds nothing to fix.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use pgfleet_config::Config;
use pgfleet_localpg::PgEnv;
use pgfleet_migrate::target::quote_ident;
use pgfleet_migrate::MigrationSet;
use pgfleet_tenant::provision::APPLICATION_NAME;
use pgfleet_tenant::report::policies_text;
use pgfleet_tenant::{check_policies, tool_login, CreateOptions, TenantObject, Tenants};

use super::{ensure_database, primary_psql, APP};

/// The demo tenants, the same in every model.
pub(super) const TENANTS: [&str; 2] = ["acme", "globex"];
/// The schema model's pgfleet database (and server database).
pub(super) const SCHEMA_DB: &str = "saas_schema";
/// The row model's pgfleet database (and server database).
pub(super) const ROW_DB: &str = "saas_row";
/// The database model's pgfleet database. A server database of that name exists too, empty:
/// sessions without a tenant (admin roles) run there, and the proxy logs in there to learn the
/// server's parameters.
pub(super) const DATABASE_DB: &str = "saas_db";
/// The database model's `database_template`: tenant databases `saas_db_acme`, …
pub(super) const DATABASE_TEMPLATE: &str = "saas_db_{tenant}";
/// The row model's `tenancy.tenant_column` (the default, written out in the config).
pub(super) const ROW_COLUMN: &str = "tenant_id";
/// The row model's `tenancy.setting` (the default, written out in the config).
pub(super) const ROW_SETTING: &str = "app.current_tenant";

/// The three demo databases, in provisioning order.
const DATABASES: [&str; 3] = [SCHEMA_DB, ROW_DB, DATABASE_DB];
/// Owner of the row model's shared table (and of database `saas_row`), password the same: the
/// login that applies its row-level security (`PGPASSWORD=saas_owner pgfleet tenant --database
/// saas_row --user saas_owner policies --apply`).
const ROW_OWNER: &str = "saas_owner";
/// The migrations directory under DIR, and the tenant migration that creates `notes`.
const MIGRATIONS: &str = "migrations";
const NOTES_MIGRATION: &str = "tenant/V0001__notes.sql";
const NOTES_MIGRATION_SQL: &str = "\
-- Written by `pgfleet sandbox --tenants` (kept when it exists): the table every tenant of the
-- schema and database models gets, from `pgfleet tenant create` (docs/migrate.md, tenant/).
CREATE TABLE notes (id bigint PRIMARY KEY, body text);
";
/// The demo notes of each tenant: `acme: first note`, …
const NOTES: [&str; 3] = ["first note", "second note", "third note"];

/// Roles, in database `postgres`: the row model's table owner, and CREATEDB for `app` (the
/// database model's `pgfleet tenant create` creates databases as `app`).
fn roles_sql() -> String {
    format!(
        "DO $$ BEGIN \
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROW_OWNER}') THEN \
             CREATE ROLE {ROW_OWNER} LOGIN PASSWORD '{ROW_OWNER}'; \
           END IF; \
         END $$; \
         ALTER ROLE {APP} CREATEDB;"
    )
}

/// The row model's shared table, in `saas_row`, owned by `saas_owner`; `app` may read and write
/// it (row-level security decides which rows).
fn row_table_sql() -> String {
    format!(
        "SET client_min_messages = warning; \
         SET ROLE {ROW_OWNER}; \
         CREATE TABLE IF NOT EXISTS notes ({ROW_COLUMN} text, id bigint, body text, \
           PRIMARY KEY ({ROW_COLUMN}, id)); \
         GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO {APP};"
    )
}

/// Before the config is written: roles, the demo databases, the row model's shared table and the
/// tenant migration, on the primary of the first cluster (`primary_dir`, `port`).
pub(super) fn prepare(
    env: &PgEnv,
    dir: &Path,
    primary_dir: &Path,
    port: u16,
) -> anyhow::Result<()> {
    primary_psql(env, primary_dir, port, "postgres", &roles_sql())
        .with_context(|| format!("creating role {ROW_OWNER} and giving {APP} CREATEDB"))?;
    ensure_database(env, primary_dir, port, SCHEMA_DB, APP)?;
    ensure_database(env, primary_dir, port, ROW_DB, ROW_OWNER)?;
    ensure_database(env, primary_dir, port, DATABASE_DB, APP)?;
    primary_psql(env, primary_dir, port, ROW_DB, &row_table_sql())
        .with_context(|| format!("creating the shared table notes in database {ROW_DB}"))?;
    let path = dir.join(MIGRATIONS).join(NOTES_MIGRATION);
    if !path.exists() {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, NOTES_MIGRATION_SQL)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// After the config is written: the row model's policies, then the tenants missing from the
/// directory, each with its notes. Runs on the sandbox's tokio runtime from its setup thread.
pub(super) fn provision(
    env: &PgEnv,
    config: &Config,
    dir: &Path,
    primary_dir: &Path,
    port: u16,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Handle::try_current()
        .context("provisioning the tenants needs the sandbox's tokio runtime")?;
    rt.block_on(apply_policies(config))?;

    let login = tool_login(config, None, None, APPLICATION_NAME);
    let migrations_dir = dir.join(MIGRATIONS);
    let mut migrations: Option<MigrationSet> = None;
    for database in DATABASES {
        let tenants = Tenants::new(config.clone(), database, login.clone())
            .map_err(|e| anyhow::anyhow!("database `{database}`: {e}"))?;
        let existing = rt
            .block_on(tenants.list())
            .map_err(|e| anyhow::anyhow!("listing the tenants of database `{database}`: {e}"))?;
        for tenant in TENANTS {
            if existing.iter().any(|t| t.name == tenant) {
                tracing::info!(database, tenant, "tenant exists; reusing it");
                continue;
            }
            let set = match &migrations {
                Some(set) => set.clone(),
                None => {
                    let set = MigrationSet::load(&migrations_dir).with_context(|| {
                        format!("reading migrations from {}", migrations_dir.display())
                    })?;
                    migrations.insert(set).clone()
                }
            };
            let opts = CreateOptions {
                migrations: Some(set),
                ..CreateOptions::default()
            };
            let created = rt.block_on(tenants.create(tenant, opts)).map_err(|e| {
                anyhow::anyhow!("creating tenant `{tenant}` of database `{database}`: {e}")
            })?;
            let (server_database, sql) = seed_sql(&created.object, tenant);
            primary_psql(env, primary_dir, port, &server_database, &sql).with_context(|| {
                format!("adding the notes of tenant `{tenant}` to database {server_database}")
            })?;
            tracing::info!(
                database,
                tenant,
                place = %created.object.describe(&created.place),
                "created the tenant"
            );
        }
    }
    Ok(())
}

/// `pgfleet tenant --database saas_row --user saas_owner policies --apply`: the row model's
/// table gets row-level security and the `pgfleet_tenant_isolation` policy (nothing to do on a
/// rerun). Anything left unfixed fails the sandbox with the report.
async fn apply_policies(config: &Config) -> anyhow::Result<()> {
    let owner = tool_login(
        config,
        Some(ROW_OWNER),
        Some(ROW_OWNER.to_string()),
        APPLICATION_NAME,
    );
    let report = check_policies(config, ROW_DB, &owner, true)
        .await
        .map_err(|e| anyhow::anyhow!("row-level security of database `{ROW_DB}`: {e}"))?;
    for warning in report.warnings() {
        tracing::warn!(database = ROW_DB, "{warning}");
    }
    if !report.is_clean() {
        anyhow::bail!(
            "row-level security of database `{ROW_DB}` is not in place:\n{}",
            policies_text(&report)
        );
    }
    for (table, fixes) in report.places.iter().flat_map(|p| &p.fixed) {
        tracing::info!(database = ROW_DB, table, fixes = %fixes.join("; "), "applied row-level security");
    }
    Ok(())
}

/// The server database and statement that give a new tenant its demo notes (as the superuser,
/// so the row model's policy does not apply; a note already there is kept).
fn seed_sql(object: &TenantObject, tenant: &str) -> (String, String) {
    let body = |note: &str| format!("'{}'", format!("{tenant}: {note}").replace('\'', "''"));
    let rows = |prefix: &str| -> String {
        NOTES
            .iter()
            .zip(1..)
            .map(|(note, id)| format!("({prefix}{id}, {})", body(note)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match object {
        TenantObject::Schema {
            name,
            server_database,
        } => (
            server_database.clone(),
            format!(
                "INSERT INTO {}.notes (id, body) VALUES {} ON CONFLICT DO NOTHING",
                quote_ident(name),
                rows("")
            ),
        ),
        TenantObject::Database { name } => (
            name.clone(),
            format!(
                "INSERT INTO notes (id, body) VALUES {} ON CONFLICT DO NOTHING",
                rows("")
            ),
        ),
        TenantObject::Rows {
            column,
            server_database,
        } => (
            server_database.clone(),
            format!(
                "INSERT INTO notes ({}, id, body) VALUES {} ON CONFLICT DO NOTHING",
                quote_ident(column),
                rows(&format!("'{}', ", tenant.replace('\'', "''")))
            ),
        ),
    }
}

/// Printed after the ready line: where the tenants are.
pub(super) fn hint(proxy_port: u16) -> String {
    let mut text = format!(
        "tenants {} (user {APP}.TENANT, password {APP}; docs/tenancy.md):\n",
        TENANTS.join(", ")
    );
    let first = TENANTS[0];
    for (database, model) in [
        (SCHEMA_DB, "schema"),
        (ROW_DB, "row"),
        (DATABASE_DB, "database"),
    ] {
        let url = format!("postgres://{APP}.{first}:{APP}@127.0.0.1:{proxy_port}/{database}");
        let _ = writeln!(text, "  {url:<52} (model {model})");
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use pgfleet_tenant::scope::scope;

    fn config(model: &str) -> Config {
        let text = format!(
            "[clusters.main]\nservers = [{{ host = \"127.0.0.1\" }}]\n\
             [databases.d]\ncluster = \"main\"\nserver_database = \"srv\"\n\
             [databases.d.tenancy]\nmodel = \"{model}\"\n{}",
            if model == "database" {
                format!("database_template = \"{DATABASE_TEMPLATE}\"\n")
            } else {
                String::new()
            }
        );
        Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn seed(model: &str, tenant: &str) -> (String, String) {
        let c = config(model);
        let s = scope(&c, "d").unwrap();
        seed_sql(&TenantObject::for_new(&s, tenant), tenant)
    }

    #[test]
    fn notes_go_where_each_model_keeps_the_tenant() {
        assert_eq!(
            seed("schema", "acme"),
            (
                "srv".to_string(),
                "INSERT INTO \"tenant_acme\".notes (id, body) VALUES (1, 'acme: first note'), \
                 (2, 'acme: second note'), (3, 'acme: third note') ON CONFLICT DO NOTHING"
                    .to_string()
            )
        );
        let (db, sql) = seed("database", "globex");
        assert_eq!(db, "saas_db_globex");
        assert!(
            sql.starts_with("INSERT INTO notes (id, body) VALUES (1, 'globex: first note'),"),
            "{sql}"
        );
        assert_eq!(
            seed("row", "acme"),
            (
                "srv".to_string(),
                "INSERT INTO notes (\"tenant_id\", id, body) VALUES ('acme', 1, 'acme: first note'), \
                 ('acme', 2, 'acme: second note'), ('acme', 3, 'acme: third note') ON CONFLICT DO NOTHING"
                    .to_string()
            )
        );
    }

    #[test]
    fn hint_names_a_url_per_model() {
        let text = hint(6432);
        assert!(text.starts_with("tenants acme, globex (user app.TENANT, password app;"));
        for db in DATABASES {
            assert!(
                text.contains(&format!("postgres://app.acme:app@127.0.0.1:6432/{db} ")),
                "{text}"
            );
        }
        assert_eq!(text.lines().count(), 4);
    }

    #[test]
    fn the_row_table_belongs_to_its_owner_not_to_app() {
        let sql = row_table_sql();
        assert!(sql.contains("SET ROLE saas_owner;"));
        assert!(sql.contains("PRIMARY KEY (tenant_id, id)"));
        assert!(sql.ends_with("TO app;"));
    }
}
