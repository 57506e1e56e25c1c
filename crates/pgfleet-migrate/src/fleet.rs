//! The fleet of one pgfleet database: its shared and tenant targets (tenants from the tenant
//! directory), the fleet ledger in the metadata database, and the commands over them.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use pgfleet_config::Config;
use pgfleet_meta::{LedgerEntry, MetaStore, Tenant};

use crate::exec::{run_targets, Action, EventSink, Outcome, RunOptions, TargetResult};
use crate::plan::Command;
use crate::source::{MigrationSet, TargetKind};
use crate::target::{has_tenant_targets, shared_targets, targets_digest, tenant_targets, Target};
use crate::MigrateError;

/// Which targets a run covers.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only these kinds (both when empty).
    pub kinds: Vec<TargetKind>,
    /// Only these tenants (all when empty; shared targets are left out when set).
    pub tenants: Vec<String>,
}

impl Selection {
    fn kinds(&self) -> Vec<TargetKind> {
        if self.kinds.is_empty() && self.tenants.is_empty() {
            TargetKind::ALL.to_vec()
        } else if self.kinds.is_empty() {
            vec![TargetKind::Tenant]
        } else {
            self.kinds.clone()
        }
    }

    fn is_partial(&self) -> bool {
        !self.tenants.is_empty()
    }
}

/// The targets of one pgfleet database, ready to run.
pub struct Fleet {
    config: Config,
    database: String,
    set: Arc<MigrationSet>,
    meta: Option<MetaStore>,
    selection: Selection,
    shared: Vec<Target>,
    tenants: Vec<Target>,
}

/// What a run did, target by target, phase by phase (shared first).
#[derive(Clone, Debug, Default)]
pub struct FleetReport {
    /// Every target with its outcome.
    pub results: Vec<TargetResult>,
    /// Remarks about the run itself (ledger skips and updates).
    pub notes: Vec<String>,
}

impl FleetReport {
    /// The failed targets.
    pub fn failures(&self) -> impl Iterator<Item = &TargetResult> {
        self.results.iter().filter(|r| r.outcome.is_failure())
    }

    /// True when no target failed or was left unstarted.
    pub fn is_success(&self) -> bool {
        !self
            .results
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Failed { .. } | Outcome::NotStarted))
    }
}

impl Fleet {
    /// Enumerates the targets of `database`: its shared targets, and when it has tenancy, one
    /// target per tenant in the tenant directory of the metadata database.
    pub async fn open(
        config: &Config,
        set: MigrationSet,
        database: &str,
        selection: Selection,
    ) -> Result<Fleet, MigrateError> {
        let shared = shared_targets(config, database)?;
        let meta = match &config.metadata {
            Some(_) => Some(MetaStore::connect(config, "pgfleet-migrate").await?),
            None => None,
        };
        let kinds = selection.kinds();
        let mut tenants = Vec::new();
        if kinds.contains(&TargetKind::Tenant) && has_tenant_targets(config, database) {
            let Some(store) = &meta else {
                return Err(MigrateError::Fleet(format!(
                    "database `{database}` has tenancy but the config has no [metadata] table: pgfleet migrate reads the tenants from the tenant directory in the metadata database"
                )));
            };
            let rows = store.tenants(database).await?;
            tenants = tenant_targets(config, database, &rows)?;
            if !selection.tenants.is_empty() {
                if let Some(missing) = selection
                    .tenants
                    .iter()
                    .find(|n| !tenants.iter().any(|t| t.tenant.as_ref() == Some(*n)))
                {
                    return Err(MigrateError::Fleet(format!(
                        "tenant `{missing}` is not in the tenant directory of database `{database}`"
                    )));
                }
                tenants.retain(|t| {
                    t.tenant
                        .as_ref()
                        .is_some_and(|n| selection.tenants.contains(n))
                });
            }
        } else if kinds == [TargetKind::Tenant] && !selection.tenants.is_empty() {
            return Err(MigrateError::Fleet(format!(
                "database `{database}` has no tenant schemas or databases (no tenancy, or model \"row\")"
            )));
        }
        Ok(Fleet {
            config: config.clone(),
            database: database.to_string(),
            set: Arc::new(set),
            meta,
            selection,
            shared,
            tenants,
        })
    }

    /// The targets, shared first.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.phase(TargetKind::Shared)
            .iter()
            .chain(self.phase(TargetKind::Tenant))
    }

    /// The migrations.
    pub fn migrations(&self) -> &MigrationSet {
        &self.set
    }

    fn phase(&self, kind: TargetKind) -> &[Target] {
        if !self.selection.kinds().contains(&kind) {
            return &[];
        }
        match kind {
            TargetKind::Shared => &self.shared,
            TargetKind::Tenant => &self.tenants,
        }
    }

    /// Version and pending count of every target (always visits each one).
    pub async fn status(&self, opts: &RunOptions, events: EventSink) -> FleetReport {
        let mut report = FleetReport::default();
        let stop = Arc::new(AtomicBool::new(false));
        for kind in TargetKind::ALL {
            let targets = self.phase(kind).to_vec();
            report.results.extend(
                run_targets(
                    &self.config,
                    self.set.clone(),
                    targets,
                    Action::Status,
                    Arc::new(opts.clone()),
                    events.clone(),
                    stop.clone(),
                )
                .await,
            );
        }
        report
    }

    /// What `command` would do on every target (`dry_run`), or does it. `up` skips a whole
    /// phase when the fleet ledger says every target is already at the newest version of
    /// the same migration set; `down` and `repair` clear the ledger first.
    pub async fn run(
        &self,
        command: Command,
        dry_run: bool,
        opts: &RunOptions,
        events: EventSink,
    ) -> FleetReport {
        let mut report = FleetReport::default();
        let stop = Arc::new(AtomicBool::new(false));
        let opts = Arc::new(opts.clone());
        let order: [TargetKind; 2] = match command {
            Command::Down { .. } => [TargetKind::Tenant, TargetKind::Shared],
            _ => TargetKind::ALL,
        };
        for kind in order {
            let targets = self.phase(kind).to_vec();
            if !dry_run && !matches!(command, Command::Up { .. }) {
                self.clear_ledger(kind, &mut report).await;
            }
            if let Command::Up { to, .. } = command {
                if let Some(note) = self.ledger_says_current(kind, &targets, to).await {
                    report.notes.push(note.clone());
                    report
                        .results
                        .extend(targets.into_iter().map(|target| TargetResult {
                            target,
                            outcome: Outcome::Skipped {
                                reason: note.clone(),
                            },
                        }));
                    continue;
                }
            }
            let action = if dry_run {
                Action::Plan(command)
            } else {
                Action::Execute(command)
            };
            let results = run_targets(
                &self.config,
                self.set.clone(),
                targets.clone(),
                action,
                opts.clone(),
                events.clone(),
                stop.clone(),
            )
            .await;
            let complete = results
                .iter()
                .all(|r| matches!(r.outcome, Outcome::Applied { .. } | Outcome::UpToDate));
            if let (Command::Up { to, .. }, false, true) = (command, dry_run, complete) {
                if to.is_none_or(|to| to >= self.set.latest(kind)) {
                    self.write_ledger(kind, &targets, &mut report).await;
                }
            }
            report.results.extend(results);
        }
        report
    }

    async fn ledger_says_current(
        &self,
        kind: TargetKind,
        targets: &[Target],
        to: Option<i64>,
    ) -> Option<String> {
        let store = self.meta.as_ref()?;
        if self.selection.is_partial() || targets.is_empty() {
            return None;
        }
        let entry = store
            .ledger_entry(&self.database, kind.as_str())
            .await
            .ok()??;
        let latest = self.set.latest(kind);
        let current = entry.version == latest
            && entry.migrations_digest == self.set.digest(kind)
            && entry.targets_digest == targets_digest(&self.config, targets)
            && to.is_none_or(|to| to >= latest);
        current.then(|| {
            format!(
                "{} {kind} target(s) of `{}` skipped: the fleet ledger records all of them at version {latest} with these migration files",
                targets.len(),
                self.database
            )
        })
    }

    async fn write_ledger(&self, kind: TargetKind, targets: &[Target], report: &mut FleetReport) {
        let Some(store) = &self.meta else { return };
        if self.selection.is_partial() {
            return;
        }
        let entry = LedgerEntry {
            database: self.database.clone(),
            target_kind: kind.as_str().to_string(),
            version: self.set.latest(kind),
            migrations_digest: self.set.digest(kind),
            targets_digest: targets_digest(&self.config, targets),
            targets: i32::try_from(targets.len()).unwrap_or(i32::MAX),
            updated_at: None,
        };
        if let Err(e) = store.put_ledger_entry(&entry).await {
            report
                .notes
                .push(format!("could not update the fleet ledger: {e}"));
        }
    }

    async fn clear_ledger(&self, kind: TargetKind, report: &mut FleetReport) {
        let Some(store) = &self.meta else { return };
        if let Err(e) = store
            .clear_ledger_entry(&self.database, kind.as_str())
            .await
        {
            report
                .notes
                .push(format!("could not clear the fleet ledger: {e}"));
        }
    }
}

/// Brings one tenant (just created by `pgfleet tenant create`) to the current version of the
/// tenant migrations of its database: the tenant's schema or database must be reachable; the
/// schema model creates the schema when it is missing. Returns the tenant's outcome.
pub async fn bring_tenant_to_current(
    config: &Config,
    set: MigrationSet,
    tenant: &Tenant,
    opts: &RunOptions,
) -> Result<TargetResult, MigrateError> {
    let targets = tenant_targets(config, &tenant.database, std::slice::from_ref(tenant))?;
    let Some(target) = targets.into_iter().next() else {
        return Err(MigrateError::Fleet(format!(
            "tenant `{}` of database `{}` has no schema or database of its own (no tenancy, or model \"row\")",
            tenant.name, tenant.database
        )));
    };
    let results = run_targets(
        config,
        Arc::new(set),
        vec![target],
        Action::Execute(Command::Up {
            to: None,
            out_of_order: false,
        }),
        Arc::new(opts.clone()),
        crate::exec::no_events(),
        Arc::new(AtomicBool::new(false)),
    )
    .await;
    results.into_iter().next().ok_or_else(|| {
        MigrateError::Fleet("the migration task for the tenant did not finish".into())
    })
}
