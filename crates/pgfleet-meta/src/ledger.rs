//! The fleet migration ledger (`pgfleet.migration_ledger`): per (pgfleet database, target kind),
//! the version every target reached in the last complete `pgfleet migrate up`, with digests of the
//! migration set and of the target list it was reached with. When both digests still match, a
//! run with nothing pending can skip those targets without visiting each one. Anything that could
//! make it stale (a down migration, a repair, an incomplete run) clears the entry.

use std::time::SystemTime;

use crate::store::MetaStore;
use crate::MetaError;

/// One ledger entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The pgfleet database.
    pub database: String,
    /// `shared` or `tenant`.
    pub target_kind: String,
    /// The version every target is at.
    pub version: i64,
    /// Digest of the migration files (versions and checksums) of this kind.
    pub migrations_digest: String,
    /// Digest of the target list (endpoints, databases, schemas).
    pub targets_digest: String,
    /// How many targets there were.
    pub targets: i32,
    /// When it was written (ignored when writing).
    pub updated_at: Option<SystemTime>,
}

impl MetaStore {
    /// The entry for (database, kind), if any.
    pub async fn ledger_entry(
        &self,
        database: &str,
        target_kind: &str,
    ) -> Result<Option<LedgerEntry>, MetaError> {
        let row = self
            .client
            .query_opt(
                "SELECT version, migrations_digest, targets_digest, targets, updated_at
                 FROM pgfleet.migration_ledger WHERE database = $1 AND target_kind = $2",
                &[&database, &target_kind],
            )
            .await
            .map_err(MetaError::query("reading the migration ledger"))?;
        Ok(row.map(|row| LedgerEntry {
            database: database.to_string(),
            target_kind: target_kind.to_string(),
            version: row.get(0),
            migrations_digest: row.get(1),
            targets_digest: row.get(2),
            targets: row.get(3),
            updated_at: Some(row.get(4)),
        }))
    }

    /// Writes (inserts or replaces) an entry.
    pub async fn put_ledger_entry(&self, e: &LedgerEntry) -> Result<(), MetaError> {
        self.client
            .execute(
                "INSERT INTO pgfleet.migration_ledger
                     (database, target_kind, version, migrations_digest, targets_digest, targets)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (database, target_kind) DO UPDATE SET
                     version = excluded.version,
                     migrations_digest = excluded.migrations_digest,
                     targets_digest = excluded.targets_digest,
                     targets = excluded.targets,
                     updated_at = now(),
                     updated_by = current_user",
                &[
                    &e.database,
                    &e.target_kind,
                    &e.version,
                    &e.migrations_digest,
                    &e.targets_digest,
                    &e.targets,
                ],
            )
            .await
            .map_err(MetaError::query("writing the migration ledger"))?;
        Ok(())
    }

    /// Removes the entry for (database, kind); the next run visits every target.
    pub async fn clear_ledger_entry(
        &self,
        database: &str,
        target_kind: &str,
    ) -> Result<(), MetaError> {
        self.client
            .execute(
                "DELETE FROM pgfleet.migration_ledger WHERE database = $1 AND target_kind = $2",
                &[&database, &target_kind],
            )
            .await
            .map_err(MetaError::query("clearing the migration ledger"))?;
        Ok(())
    }
}
