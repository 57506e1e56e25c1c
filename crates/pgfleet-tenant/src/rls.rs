//! `pgfleet tenant policies`: reads every table, policy and proxy role on each place of a
//! row-model database (its cluster or every shard, and placement group clusters), checks them
//! against [`crate::policy`], and with `apply` fixes each table in its own transaction, then reads
//! everything again so the report shows the state the servers are in (thin I/O).

use std::collections::BTreeMap;
use std::time::Duration;

use pgfleet_config::{Config, TenantModel};
use pgfleet_meta::Login;
use tokio_postgres::Client;

use crate::login::proxy_roles;
use crate::policy::{
    check_table, fix_sql, role_warnings, ColumnFacts, PolicyFacts, PolicySpec, RoleFacts,
    TableCheck, TableFacts,
};
use crate::provision::primary;
use crate::scope::{data_places, scope, Place};
use crate::TenantError;

/// How long a fix waits for a table lock (ALTER TABLE and CREATE POLICY take ACCESS EXCLUSIVE)
/// before it gives up on that table, so a long transaction is reported instead of queueing every
/// other session on the table behind it.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The result on one place.
#[derive(Clone, Debug, Default)]
pub struct PlaceResult {
    /// Where, e.g. "shard 1 (cluster s1)".
    pub place: String,
    /// The database on the server.
    pub server_database: String,
    /// Every table with the tenant column and what it lacks (after fixes, when applying).
    pub checks: Vec<TableCheck>,
    /// Tables without the tenant column (`schema.table`): not covered by any policy.
    pub without_column: Vec<String>,
    /// Tables fixed this run, with what was fixed.
    pub fixed: Vec<(String, Vec<String>)>,
    /// Tables whose fix failed, with the error.
    pub failed: Vec<(String, String)>,
    /// Warnings (proxy roles, other permissive policies).
    pub warnings: Vec<String>,
    /// The place could not be checked at all.
    pub error: Option<String>,
}

/// The result on every place of a database.
#[derive(Clone, Debug)]
pub struct PolicyReport {
    /// The pgfleet database.
    pub database: String,
    /// The column and setting the policies compare.
    pub spec: PolicySpec,
    /// Whether fixes were applied.
    pub applied: bool,
    /// One result per place.
    pub places: Vec<PlaceResult>,
}

impl PolicyReport {
    /// True when every place was read, every table with the tenant column has the policy, and
    /// no fix failed.
    pub fn is_clean(&self) -> bool {
        self.places.iter().all(|p| {
            p.error.is_none() && p.failed.is_empty() && p.checks.iter().all(|c| c.fixes.is_empty())
        })
    }

    /// Every warning, in place order.
    pub fn warnings(&self) -> impl Iterator<Item = &String> {
        self.places.iter().flat_map(|p| p.warnings.iter())
    }
}

/// Checks (and with `apply`, fixes) the row-level security of a row-model database on every
/// place, logged in as `login` (fixing needs the tables' owner or a superuser).
pub async fn check_policies(
    config: &Config,
    database: &str,
    login: &Login,
    apply: bool,
) -> Result<PolicyReport, TenantError> {
    let scope = scope(config, database)?;
    if scope.tenancy.model != TenantModel::Row {
        return Err(TenantError::Scope(format!(
            "database `{database}` uses model \"{}\"; row-level security policies are for model \"row\", where tenants share tables",
            scope.tenancy.model.as_str()
        )));
    }
    let spec = PolicySpec {
        column: scope.tenancy.tenant_column.clone(),
        setting: scope.tenancy.setting.clone(),
    };
    let roles = proxy_roles(config, database);
    let server_database = scope.db.server_database.clone();
    let mut places = Vec::new();
    for place in data_places(&scope) {
        let mut result = PlaceResult {
            place: place.to_string(),
            server_database: server_database.clone(),
            ..PlaceResult::default()
        };
        if let Err(e) = check_place(config, &place, login, &spec, &roles, apply, &mut result).await
        {
            result.error = Some(e.to_string());
        }
        places.push(result);
    }
    Ok(PolicyReport {
        database: database.to_string(),
        spec,
        applied: apply,
        places,
    })
}

async fn check_place(
    config: &Config,
    place: &Place,
    login: &Login,
    spec: &PolicySpec,
    roles: &[String],
    apply: bool,
    result: &mut PlaceResult,
) -> Result<(), TenantError> {
    let mut client = primary(config, place.cluster(), login, &result.server_database).await?;
    let mut tables = read_tables(&client, &spec.column, place).await?;
    if apply {
        for table in &tables {
            let Some(check) = check_table(spec, table) else {
                continue;
            };
            if check.fixes.is_empty() {
                continue;
            }
            let statements = fix_sql(spec, table, &check.fixes);
            match apply_fix(&mut client, &statements).await {
                Ok(()) => result.fixed.push((
                    check.table.clone(),
                    check.fixes.iter().map(|f| f.describe()).collect(),
                )),
                Err(e) => result
                    .failed
                    .push((check.table.clone(), fix_error(&e, login))),
            }
        }
        tables = read_tables(&client, &spec.column, place).await?;
    }
    for table in &tables {
        match check_table(spec, table) {
            Some(check) => {
                result.warnings.extend(check.warnings.iter().cloned());
                result.checks.push(check);
            }
            None => result.without_column.push(table.display_name()),
        }
    }
    let role_facts = read_roles(&client, roles, place).await?;
    result
        .warnings
        .extend(role_warnings(&place.to_string(), &role_facts, &tables));
    Ok(())
}

/// Runs one table's fixes in one transaction, with a lock timeout.
async fn apply_fix(
    client: &mut Client,
    statements: &[String],
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{}ms'",
        LOCK_TIMEOUT.as_millis()
    ))
    .await?;
    for sql in statements {
        tx.batch_execute(sql).await?;
    }
    tx.commit().await
}

/// A failed fix as a sentence, with the likely cause for the usual errors.
fn fix_error(e: &tokio_postgres::Error, login: &Login) -> String {
    use tokio_postgres::error::SqlState;
    let text = pgfleet_meta::endpoint::error_text(e);
    match e.code() {
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => format!(
            "{text}; changing row-level security needs the table's owner or a superuser, and the login is `{}`: run with --user OWNER",
            login.user
        ),
        Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE => format!(
            "{text}; another session held a lock on the table for more than {}s: try again when it is quieter",
            LOCK_TIMEOUT.as_secs()
        ),
        _ => text,
    }
}

const TABLES_SQL: &str = r"
SELECT n.nspname::text, c.relname::text, pg_get_userbyid(c.relowner)::text,
       c.relrowsecurity, c.relforcerowsecurity,
       format_type(a.atttypid, a.atttypmod), t.typcategory::text
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $1::text
     AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_type t ON t.oid = a.atttypid
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgfleet')
  AND n.nspname NOT LIKE 'pg\_%'
ORDER BY 1, 2";

const POLICIES_SQL: &str = r"
SELECT schemaname::text, tablename::text, policyname::text, permissive = 'PERMISSIVE',
       roles::text[], cmd, qual, with_check
FROM pg_policies
ORDER BY 1, 2, 3";

/// The ordinary and partitioned tables of the non-system schemas, with their policies.
async fn read_tables(
    client: &Client,
    column: &str,
    place: &Place,
) -> Result<Vec<TableFacts>, TenantError> {
    let context = || format!("reading tables and policies on {place}");
    let mut policies: BTreeMap<(String, String), Vec<PolicyFacts>> = BTreeMap::new();
    for row in client
        .query(POLICIES_SQL, &[])
        .await
        .map_err(TenantError::server(context()))?
    {
        policies
            .entry((row.get(0), row.get(1)))
            .or_default()
            .push(PolicyFacts {
                name: row.get(2),
                permissive: row.get(3),
                roles: row.get(4),
                command: row.get(5),
                using: row.get(6),
                with_check: row.get(7),
            });
    }
    let rows = client
        .query(TABLES_SQL, &[&column])
        .await
        .map_err(TenantError::server(context()))?;
    Ok(rows
        .iter()
        .map(|row| {
            let schema: String = row.get(0);
            let name: String = row.get(1);
            let sql_type: Option<String> = row.get(5);
            let category: Option<String> = row.get(6);
            TableFacts {
                policies: policies
                    .remove(&(schema.clone(), name.clone()))
                    .unwrap_or_default(),
                schema,
                name,
                owner: row.get(2),
                rls_enabled: row.get(3),
                rls_forced: row.get(4),
                column: sql_type.map(|sql_type| ColumnFacts {
                    sql_type,
                    category: category.unwrap_or_default(),
                }),
            }
        })
        .collect())
}

/// The proxy's roles as this server knows them.
async fn read_roles(
    client: &Client,
    roles: &[String],
    place: &Place,
) -> Result<Vec<RoleFacts>, TenantError> {
    let rows = client
        .query(
            "SELECT rolname::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = ANY($1::text[])",
            &[&roles],
        )
        .await
        .map_err(TenantError::server(format!("reading roles on {place}")))?;
    Ok(roles
        .iter()
        .map(
            |name| match rows.iter().find(|r| r.get::<_, String>(0) == *name) {
                Some(r) => RoleFacts {
                    name: name.clone(),
                    exists: true,
                    superuser: r.get(1),
                    bypass_rls: r.get(2),
                },
                None => RoleFacts {
                    name: name.clone(),
                    exists: false,
                    superuser: false,
                    bypass_rls: false,
                },
            },
        )
        .collect())
}
