//! The `pgfleet` schema's own versioned migrations. They are applied when a [`crate::MetaStore`]
//! connects: a read-only check first (nothing to do in the common case, no lock, no DDL), else
//! one transaction under a transaction-level advisory lock, so several instances starting at
//! once apply each migration exactly once. Migrations are append-only: never edit one that
//! shipped; add the next version.

use tokio_postgres::{Client, GenericClient};

use crate::MetaError;

/// Advisory lock key (`pg_advisory_xact_lock(bigint)`) serialising schema upgrades: "pgfleetm".
const LOCK_KEY: i64 = 0x7067_666c_6565_746d;

/// One migration of the `pgfleet` schema.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tenant directory",
        sql: r#"
CREATE TABLE pgfleet.tenants (
    database      text NOT NULL,
    name          text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,47}$'),
    model         text NOT NULL CHECK (model IN ('schema', 'row', 'database')),
    schema_name   text,
    database_name text,
    shard         integer CHECK (shard >= 0),
    state         text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'suspended', 'moving')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (database, name),
    CHECK (model <> 'schema' OR schema_name IS NOT NULL),
    CHECK (model <> 'database' OR database_name IS NOT NULL)
);
COMMENT ON TABLE pgfleet.tenants IS 'pgfleet tenant directory: one row per tenant of a pgfleet database';

CREATE FUNCTION pgfleet.tenants_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER tenants_touch BEFORE UPDATE ON pgfleet.tenants
    FOR EACH ROW EXECUTE FUNCTION pgfleet.tenants_touch();

-- Every change, by pgfleet or by hand, is announced; the payload is the tenant name.
CREATE FUNCTION pgfleet.tenants_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('pgfleet_tenants', OLD.name);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.name <> NEW.name THEN
        PERFORM pg_notify('pgfleet_tenants', OLD.name);
    END IF;
    PERFORM pg_notify('pgfleet_tenants', NEW.name);
    RETURN NEW;
END $$;
CREATE TRIGGER tenants_notify AFTER INSERT OR UPDATE OR DELETE ON pgfleet.tenants
    FOR EACH ROW EXECUTE FUNCTION pgfleet.tenants_notify();
"#,
    },
    Migration {
        version: 2,
        name: "fleet migration ledger",
        sql: r#"
CREATE TABLE pgfleet.migration_ledger (
    database          text NOT NULL,
    target_kind       text NOT NULL CHECK (target_kind IN ('shared', 'tenant')),
    version           bigint NOT NULL,
    migrations_digest text NOT NULL,
    targets_digest    text NOT NULL,
    targets           integer NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    updated_by        text NOT NULL DEFAULT current_user,
    PRIMARY KEY (database, target_kind)
);
COMMENT ON TABLE pgfleet.migration_ledger IS 'pgfleet migrate: every target of (database, kind) is at version with this set of migrations';
"#,
    },
    Migration {
        version: 3,
        name: "two-phase commit decisions",
        sql: r#"
CREATE TABLE pgfleet.commit_decisions (
    gid        text PRIMARY KEY,
    node_id    integer NOT NULL,
    database   text NOT NULL,
    user_name  text NOT NULL,
    shards     integer[] NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pgfleet.commit_decisions IS 'pgfleet two-phase commit: a row means the prepared transactions named gid on these shards must be committed; no row means they must be rolled back';
"#,
    },
];

/// The newest version of the `pgfleet` schema this binary knows.
pub const SCHEMA_VERSION: i32 = 3;

/// The schema's version; 0 when it does not exist yet. (Two statements: a query that names a
/// missing table fails at parse time, whatever CASE guards it.)
async fn current_version(client: &impl GenericClient) -> Result<i32, MetaError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('pgfleet.meta_migrations') IS NOT NULL",
            &[],
        )
        .await
        .map_err(MetaError::query("reading the schema version"))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM pgfleet.meta_migrations",
            &[],
        )
        .await
        .map_err(MetaError::query("reading the schema version"))?;
    Ok(row.get(0))
}

/// Brings the `pgfleet` schema to [`SCHEMA_VERSION`]; returns the versions it applied.
pub(crate) async fn ensure(client: &mut Client) -> Result<Vec<i32>, MetaError> {
    debug_assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    let current = current_version(client).await?;
    check_not_newer(current)?;
    if current == SCHEMA_VERSION {
        return Ok(Vec::new());
    }
    let tx = client
        .transaction()
        .await
        .map_err(MetaError::query("starting the schema upgrade"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(MetaError::query("taking the schema upgrade lock"))?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS pgfleet;
         CREATE TABLE IF NOT EXISTS pgfleet.meta_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await
    .map_err(MetaError::query("creating the schema pgfleet"))?;
    // Read again under the lock: another instance may have upgraded meanwhile.
    let current = current_version(&tx).await?;
    check_not_newer(current)?;
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql)
            .await
            .map_err(MetaError::query("upgrading the schema pgfleet"))?;
        tx.execute(
            "INSERT INTO pgfleet.meta_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await
        .map_err(MetaError::query("recording a schema upgrade"))?;
        applied.push(m.version);
    }
    tx.commit()
        .await
        .map_err(MetaError::query("committing the schema upgrade"))?;
    if !applied.is_empty() {
        tracing::info!(?applied, "metadata schema upgraded");
    }
    Ok(applied)
}

fn check_not_newer(found: i32) -> Result<(), MetaError> {
    if found > SCHEMA_VERSION {
        return Err(MetaError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dense_and_end_at_schema_version() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let expected: Vec<i32> = (1..=SCHEMA_VERSION).collect();
        assert_eq!(versions, expected);
    }
}
