//! The pure decision: from the migrations of a target's kind and the target's history, what runs
//! there (or why nothing may). `plan`/`--dry-run` print exactly these steps; `exec` carries them out.

use std::fmt;

use crate::source::Migration;

/// One row of a target's history table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedRow {
    /// The version applied.
    pub version: i64,
    /// Its name when applied.
    pub name: String,
    /// Its checksum when applied (or last repaired).
    pub checksum: String,
}

/// What to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Apply pending migrations up to `to` (all when `None`).
    Up {
        /// Highest version to apply.
        to: Option<i64>,
        /// Apply a pending version lower than the newest applied one instead of refusing.
        out_of_order: bool,
    },
    /// Revert applied migrations down to `to` (exclusive; only the newest one when `None`).
    Down {
        /// Version to stay at.
        to: Option<i64>,
    },
    /// Accept edited files: record their current checksums.
    Repair,
}

/// One step on one target.
#[derive(Clone, Copy, Debug)]
pub enum Step<'a> {
    /// Run the up script and record it.
    Apply(&'a Migration),
    /// Run the down script and remove the record.
    Revert(&'a Migration),
    /// Record the file's current checksum instead of `recorded`.
    Repair {
        /// The migration.
        migration: &'a Migration,
        /// The checksum in the history table.
        recorded: &'a str,
    },
}

impl Step<'_> {
    /// The migration the step is about.
    pub fn migration(&self) -> &Migration {
        match self {
            Step::Apply(m) | Step::Revert(m) | Step::Repair { migration: m, .. } => m,
        }
    }

    /// "apply V0002__notes", "revert V0002__notes", "repair V0002__notes".
    pub fn describe(&self) -> String {
        let (verb, m) = match self {
            Step::Apply(m) => ("apply", m),
            Step::Revert(m) => ("revert", m),
            Step::Repair { migration, .. } => ("repair checksum of", migration),
        };
        let script = match self {
            Step::Revert(m) => m.down.as_ref(),
            _ => Some(&m.up),
        };
        let mode = match (self, script.and_then(|s| s.first_outside())) {
            (Step::Repair { .. }, _) => String::new(),
            (_, Some((_, why))) => format!(" (outside a transaction: {why})"),
            (_, None) => " (in a transaction)".to_string(),
        };
        format!("{verb} {}{mode}", m.label())
    }
}

/// Why nothing may run on a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A file changed after it was applied.
    Drift {
        /// The file name.
        file: String,
        /// Checksum in the history table.
        recorded: String,
        /// Checksum of the file now.
        current: String,
    },
    /// The history has a version no file has.
    MissingFile {
        /// The version.
        version: i64,
        /// Its recorded name.
        name: String,
    },
    /// A migration to revert has no down script.
    MissingDown {
        /// The migration.
        label: String,
    },
    /// A pending migration is older than the newest applied one.
    OutOfOrder {
        /// The pending migration.
        label: String,
        /// The newest applied version.
        newest: i64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Drift { file, recorded, current } => write!(
                f,
                "{file} changed after it was applied: applied checksum {recorded}, file checksum {current}; restore the file, or run `pgfleet migrate repair` to accept the change"
            ),
            Problem::MissingFile { version, name } => write!(
                f,
                "version {version} ({name}) is applied but no file has it; restore V{version:04}__{name}.sql"
            ),
            Problem::MissingDown { label } => write!(
                f,
                "{label} has no down script ({label}.down.sql); it cannot be reverted"
            ),
            Problem::OutOfOrder { label, newest } => write!(
                f,
                "{label} is pending but version {newest} is already applied; renumber it above {newest}, or pass --out-of-order"
            ),
        }
    }
}

/// A target's version and pending count.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TargetStatus {
    /// Newest applied version (0: none).
    pub version: i64,
    /// Applied migrations.
    pub applied: usize,
    /// Migrations not applied yet.
    pub pending: usize,
    /// Drift and missing files.
    pub problems: Vec<Problem>,
}

/// Drift and missing files of the applied rows.
fn history_problems(migrations: &[&Migration], applied: &[AppliedRow]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for row in applied {
        match migrations.iter().find(|m| m.version == row.version) {
            Some(m) if m.up.checksum != row.checksum => problems.push(Problem::Drift {
                file: m.up.file_name(),
                recorded: row.checksum.clone(),
                current: m.up.checksum.clone(),
            }),
            Some(_) => {}
            None => problems.push(Problem::MissingFile {
                version: row.version,
                name: row.name.clone(),
            }),
        }
    }
    problems
}

/// The status of a target with history `applied`.
pub fn status(migrations: &[&Migration], applied: &[AppliedRow]) -> TargetStatus {
    TargetStatus {
        version: applied.iter().map(|r| r.version).max().unwrap_or(0),
        applied: applied.len(),
        pending: migrations
            .iter()
            .filter(|m| !applied.iter().any(|r| r.version == m.version))
            .count(),
        problems: history_problems(migrations, applied),
    }
}

/// The steps of `command` on a target of the kind of `migrations` (ascending) with history
/// `applied`, or every problem that forbids it.
pub fn plan_target<'a>(
    migrations: &[&'a Migration],
    applied: &'a [AppliedRow],
    command: Command,
) -> Result<Vec<Step<'a>>, Vec<Problem>> {
    let problems = history_problems(migrations, applied);
    let newest = applied.iter().map(|r| r.version).max().unwrap_or(0);
    match command {
        Command::Repair => {
            let steps = applied
                .iter()
                .filter_map(|row| {
                    let m = migrations.iter().find(|m| m.version == row.version)?;
                    (m.up.checksum != row.checksum).then_some(Step::Repair {
                        migration: m,
                        recorded: row.checksum.as_str(),
                    })
                })
                .collect();
            Ok(steps)
        }
        Command::Up { to, out_of_order } => {
            let mut problems = problems;
            let pending: Vec<&Migration> = migrations
                .iter()
                .copied()
                .filter(|m| to.is_none_or(|to| m.version <= to))
                .filter(|m| !applied.iter().any(|r| r.version == m.version))
                .collect();
            if !out_of_order {
                problems.extend(pending.iter().filter(|m| m.version < newest).map(|m| {
                    Problem::OutOfOrder {
                        label: m.label(),
                        newest,
                    }
                }));
            }
            if problems.is_empty() {
                Ok(pending.into_iter().map(Step::Apply).collect())
            } else {
                Err(problems)
            }
        }
        Command::Down { to } => {
            let mut rows: Vec<&AppliedRow> = applied.iter().collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.version));
            let chosen: Vec<&AppliedRow> = match to {
                Some(to) => rows.into_iter().filter(|r| r.version > to).collect(),
                None => rows.into_iter().take(1).collect(),
            };
            let mut problems = problems;
            let mut steps = Vec::new();
            for row in chosen {
                match migrations.iter().find(|m| m.version == row.version) {
                    Some(m) if m.down.is_some() => steps.push(Step::Revert(m)),
                    Some(m) => problems.push(Problem::MissingDown { label: m.label() }),
                    None => {} // reported as MissingFile
                }
            }
            if problems.is_empty() {
                Ok(steps)
            } else {
                Err(problems)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::script::Script;
    use crate::source::TargetKind;

    fn migration(version: i64, sql: &str, down: Option<&str>) -> Migration {
        let script = |name: &str, sql: &str| match Script::parse(Path::new(name), sql.to_string()) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        Migration {
            version,
            name: format!("m{version}"),
            kind: TargetKind::Tenant,
            up: script(&format!("V{version}__m{version}.sql"), sql),
            down: down.map(|d| script("down.sql", d)),
            allow: Vec::new(),
        }
    }

    fn row(m: &Migration) -> AppliedRow {
        AppliedRow {
            version: m.version,
            name: m.name.clone(),
            checksum: m.up.checksum.clone(),
        }
    }

    fn labels(steps: &[Step<'_>]) -> Vec<String> {
        steps.iter().map(Step::describe).collect()
    }

    const UP: Command = Command::Up {
        to: None,
        out_of_order: false,
    };

    #[test]
    fn up_applies_pending_in_order_up_to_a_version() {
        let ms = [
            migration(1, "SELECT 1", None),
            migration(2, "CREATE INDEX CONCURRENTLY i ON t (a)", None),
            migration(3, "SELECT 3", None),
        ];
        let refs: Vec<&Migration> = ms.iter().collect();
        let applied = [row(&ms[0])];
        let steps = plan_target(&refs, &applied, UP).unwrap_or_default();
        assert_eq!(
            labels(&steps),
            [
                "apply V0002__m2 (outside a transaction: CREATE INDEX CONCURRENTLY)",
                "apply V0003__m3 (in a transaction)"
            ]
        );
        let steps = plan_target(
            &refs,
            &applied,
            Command::Up {
                to: Some(2),
                out_of_order: false,
            },
        )
        .unwrap_or_default();
        assert_eq!(steps.len(), 1);
        let s = status(&refs, &applied);
        assert_eq!((s.version, s.applied, s.pending), (1, 1, 2));
    }

    #[test]
    fn drift_missing_files_and_out_of_order_are_refused() {
        let ms = [
            migration(1, "SELECT 1", None),
            migration(2, "SELECT 2", None),
            migration(3, "SELECT 3", None),
        ];
        let refs: Vec<&Migration> = ms.iter().collect();
        let mut edited = row(&ms[0]);
        edited.checksum = "abc".into();
        let applied = [
            edited,
            row(&ms[2]),
            AppliedRow {
                version: 9,
                name: "gone".into(),
                checksum: "x".into(),
            },
        ];
        let problems = plan_target(&refs, &applied, UP).err().unwrap_or_default();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text[0].contains(
                "V1__m1.sql changed after it was applied: applied checksum abc, file checksum "
            ) && text[0].contains(&ms[0].up.checksum)
        );
        assert!(text[1].contains("version 9 (gone) is applied but no file has it"));
        assert!(text[2].contains("V0002__m2 is pending but version 9 is already applied"));
        // Out of order accepted on purpose (drift still refused).
        let applied = [row(&ms[0]), row(&ms[2])];
        assert!(plan_target(&refs, &applied, UP).is_err());
        let steps = plan_target(
            &refs,
            &applied,
            Command::Up {
                to: None,
                out_of_order: true,
            },
        )
        .unwrap_or_default();
        assert_eq!(labels(&steps), ["apply V0002__m2 (in a transaction)"]);
    }

    #[test]
    fn down_reverts_newest_first_and_needs_down_scripts() {
        let ms = [
            migration(1, "SELECT 1", Some("SELECT -1")),
            migration(2, "SELECT 2", Some("SELECT -2")),
            migration(3, "SELECT 3", Some("SELECT -3")),
        ];
        let refs: Vec<&Migration> = ms.iter().collect();
        let applied: Vec<AppliedRow> = ms.iter().map(row).collect();
        let one = plan_target(&refs, &applied, Command::Down { to: None }).unwrap_or_default();
        assert_eq!(labels(&one), ["revert V0003__m3 (in a transaction)"]);
        let to1 = plan_target(&refs, &applied, Command::Down { to: Some(1) }).unwrap_or_default();
        assert_eq!(
            labels(&to1),
            [
                "revert V0003__m3 (in a transaction)",
                "revert V0002__m2 (in a transaction)"
            ]
        );
        let no_down = [migration(1, "SELECT 1", None)];
        let refs: Vec<&Migration> = no_down.iter().collect();
        let applied = [row(&no_down[0])];
        let problems = plan_target(&refs, &applied, Command::Down { to: Some(0) })
            .err()
            .unwrap_or_default();
        assert_eq!(
            problems,
            [Problem::MissingDown {
                label: "V0001__m1".into()
            }]
        );
        assert!(plan_target(&refs, &[], Command::Down { to: None }).is_ok_and(|s| s.is_empty()));
    }

    #[test]
    fn repair_records_changed_checksums_only() {
        let ms = [
            migration(1, "SELECT 1", None),
            migration(2, "SELECT 2", None),
        ];
        let refs: Vec<&Migration> = ms.iter().collect();
        let mut edited = row(&ms[1]);
        edited.checksum = "old".into();
        let applied = [row(&ms[0]), edited];
        let steps = plan_target(&refs, &applied, Command::Repair).unwrap_or_default();
        assert_eq!(labels(&steps), ["repair checksum of V0002__m2"]);
    }
}
