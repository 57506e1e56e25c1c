//! Migration files on disk. One scheme:
//!
//! - `V<version>__<name>.sql` is a migration, `V<version>__<name>.down.sql` its optional down
//!   script; the version is a positive integer (`V0001` = `V1`), unique across the directory; the
//!   name is letters, digits and `_`.
//! - The target is the folder: `shared/` (once per shard, or on the cluster of an unsharded
//!   database) or `tenant/` (in every tenant schema or tenant database). A file directly in the
//!   directory is `shared` unless its header says otherwise.
//! - Header: leading comment lines `-- pgfleet: target=tenant allow=drop-column,rename-table`
//!   (`target` must agree with the folder; `allow` accepts lint findings for this file).
//! - Other files (README.md, …) are ignored; any other folder is an error.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::checksum::digest;
use crate::script::Script;
use crate::MigrateError;

/// Where a migration runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetKind {
    /// Once per shard, or on the cluster of an unsharded database.
    Shared,
    /// In every tenant schema or tenant database.
    Tenant,
}

impl TargetKind {
    /// Both kinds, in run order (shared first: tenant migrations may rely on shared objects).
    pub const ALL: [TargetKind; 2] = [TargetKind::Shared, TargetKind::Tenant];

    /// `shared` or `tenant` (folder name, header value, ledger key).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Shared => "shared",
            TargetKind::Tenant => "tenant",
        }
    }

    /// The kind named `text`.
    pub fn parse(text: &str) -> Option<TargetKind> {
        match text {
            "shared" => Some(TargetKind::Shared),
            "tenant" => Some(TargetKind::Tenant),
            _ => None,
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One migration: its up script and optional down script.
#[derive(Clone, Debug)]
pub struct Migration {
    /// Its version.
    pub version: i64,
    /// Its name (the file name part after `__`).
    pub name: String,
    /// Where it runs.
    pub kind: TargetKind,
    /// The up script.
    pub up: Script,
    /// The down script, if there is one.
    pub down: Option<Script>,
    /// Lint rules accepted for this file by its header.
    pub allow: Vec<String>,
}

impl Migration {
    /// `V0003__add_index`, for messages.
    pub fn label(&self) -> String {
        format!("V{:04}__{}", self.version, self.name)
    }
}

/// Every migration of a directory, by version.
#[derive(Clone, Debug, Default)]
pub struct MigrationSet {
    /// The directory read.
    pub dir: PathBuf,
    /// The migrations, ascending by version.
    pub migrations: Vec<Migration>,
}

impl MigrationSet {
    /// Reads and parses every migration file under `dir`.
    pub fn load(dir: &Path) -> Result<MigrationSet, MigrateError> {
        if !dir.is_dir() {
            return Err(MigrateError::Source {
                path: dir.to_path_buf(),
                message: "no such migrations directory; create it with `pgfleet migrate new NAME` or pass --dir".into(),
            });
        }
        let mut files: Vec<(PathBuf, Option<TargetKind>)> = Vec::new();
        for entry in read_dir(dir)? {
            let path = entry;
            if path.is_dir() {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let Some(kind) = TargetKind::parse(&name) else {
                    if name.starts_with('.') {
                        continue;
                    }
                    return Err(MigrateError::Source {
                        path,
                        message: "unknown folder; migrations go in shared/ or tenant/ (or directly in the directory)".into(),
                    });
                };
                for file in read_dir(&path)? {
                    if !file.is_dir() {
                        files.push((file, Some(kind)));
                    }
                }
            } else {
                files.push((path, None));
            }
        }
        let mut ups: BTreeMap<i64, (Migration, PathBuf)> = BTreeMap::new();
        let mut downs: Vec<(i64, String, PathBuf, Option<TargetKind>)> = Vec::new();
        for (path, folder) in files {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !file_name.ends_with(".sql") {
                continue;
            }
            let (version, name, is_down) =
                parse_file_name(&file_name).map_err(|message| MigrateError::Source {
                    path: path.clone(),
                    message,
                })?;
            if is_down {
                downs.push((version, name, path, folder));
                continue;
            }
            let text = read(&path)?;
            let header = Header::parse(&path, &text)?;
            let kind = match (folder, header.target) {
                (Some(f), Some(h)) if f != h => {
                    return Err(MigrateError::Source {
                        path,
                        message: format!("header says target={h} but the file is in the {f}/ folder; move the file or fix the header"),
                    })
                }
                (Some(f), _) => f,
                (None, Some(h)) => h,
                (None, None) => TargetKind::Shared,
            };
            let up = Script::parse(&path, text)?;
            let migration = Migration {
                version,
                name,
                kind,
                up,
                down: None,
                allow: header.allow,
            };
            if let Some((_, other)) = ups.get(&version) {
                return Err(MigrateError::Source {
                    path,
                    message: format!(
                        "version {version} is also used by {}; versions must be unique",
                        other.display()
                    ),
                });
            }
            ups.insert(version, (migration, path));
        }
        for (version, name, path, folder) in downs {
            let Some((up, up_path)) = ups.get_mut(&version) else {
                return Err(MigrateError::Source {
                    path,
                    message: format!("down script without its migration V{version:04}__{name}.sql"),
                });
            };
            if up.name != name
                || folder.is_some_and(|f| f != up.kind)
                || up_path.parent() != path.parent()
            {
                return Err(MigrateError::Source {
                    path,
                    message: format!(
                        "down script does not match its migration {}; name it {}.down.sql next to it",
                        up_path.display(),
                        up.label()
                    ),
                });
            }
            let text = read(&path)?;
            up.down = Some(Script::parse(&path, text)?);
        }
        Ok(MigrationSet {
            dir: dir.to_path_buf(),
            migrations: ups.into_values().map(|(m, _)| m).collect(),
        })
    }

    /// The migrations of one kind, ascending.
    pub fn of_kind(&self, kind: TargetKind) -> impl Iterator<Item = &Migration> {
        self.migrations.iter().filter(move |m| m.kind == kind)
    }

    /// The newest version of one kind; 0 when there is none.
    pub fn latest(&self, kind: TargetKind) -> i64 {
        self.of_kind(kind).map(|m| m.version).max().unwrap_or(0)
    }

    /// Digest of the versions and checksums of one kind (the ledger compares it).
    pub fn digest(&self, kind: TargetKind) -> String {
        let lines: Vec<String> = self
            .of_kind(kind)
            .map(|m| format!("{}:{}", m.version, m.up.checksum))
            .collect();
        digest(lines.iter().map(String::as_str))
    }

    /// The migration with this version.
    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.version == version)
    }

    /// The next free version (for `new`).
    pub fn next_version(&self) -> i64 {
        self.migrations.iter().map(|m| m.version).max().unwrap_or(0) + 1
    }
}

/// `V0001__create_users.sql` → (1, "create_users", false); `.down.sql` → true.
pub fn parse_file_name(file_name: &str) -> Result<(i64, String, bool), String> {
    let hint = "name migration files V<version>__<name>.sql (and V<version>__<name>.down.sql), e.g. V0001__create_users.sql";
    let (stem, is_down) = match file_name.strip_suffix(".down.sql") {
        Some(stem) => (stem, true),
        None => (file_name.strip_suffix(".sql").unwrap_or(file_name), false),
    };
    let rest = stem
        .strip_prefix('V')
        .ok_or_else(|| format!("not a migration file name; {hint}"))?;
    let (digits, name) = rest
        .split_once("__")
        .ok_or_else(|| format!("not a migration file name; {hint}"))?;
    let version: i64 = digits
        .parse()
        .ok()
        .filter(|v| *v > 0 && digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("invalid version `{digits}`: a positive integer; {hint}"))?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "invalid name `{name}`: letters, digits and `_`; {hint}"
        ));
    }
    Ok((version, name.to_string(), is_down))
}

/// What the leading `-- pgfleet:` comment lines say.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// `target=shared|tenant`.
    pub target: Option<TargetKind>,
    /// `allow=rule,rule`.
    pub allow: Vec<String>,
}

impl Header {
    /// Reads the header of a file's text.
    pub fn parse(path: &Path, text: &str) -> Result<Header, MigrateError> {
        let mut header = Header::default();
        let fail = |message: String| MigrateError::Source {
            path: path.to_path_buf(),
            message,
        };
        for line in text.lines().map(str::trim) {
            if line.is_empty() {
                continue;
            }
            let Some(comment) = line.strip_prefix("--") else {
                break;
            };
            let Some(directives) = comment.trim().strip_prefix("pgfleet:") else {
                continue;
            };
            for directive in directives.split_whitespace() {
                match directive.split_once('=') {
                    Some(("target", v)) => {
                        header.target = Some(TargetKind::parse(v).ok_or_else(|| {
                            fail(format!("header: unknown target `{v}`; write target=shared or target=tenant"))
                        })?)
                    }
                    Some(("allow", v)) => header
                        .allow
                        .extend(v.split(',').filter(|r| !r.is_empty()).map(str::to_string)),
                    _ => {
                        return Err(fail(format!(
                            "header: unknown directive `{directive}`; known: target=shared|tenant, allow=RULE[,RULE]"
                        )))
                    }
                }
            }
        }
        Ok(header)
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, MigrateError> {
    let io = |error| MigrateError::Io {
        path: dir.to_path_buf(),
        error,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    paths.sort();
    Ok(paths)
}

fn read(path: &Path) -> Result<String, MigrateError> {
    std::fs::read_to_string(path).map_err(|error| MigrateError::Io {
        path: path.to_path_buf(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(
            parse_file_name("V0001__create_users.sql"),
            Ok((1, "create_users".into(), false))
        );
        assert_eq!(
            parse_file_name("V12__x.down.sql"),
            Ok((12, "x".into(), true))
        );
        for bad in [
            "0001__x.sql",
            "V0001_x.sql",
            "V__x.sql",
            "V0__x.sql",
            "V1__.sql",
            "V1__a-b.sql",
            "V+1__x.sql",
        ] {
            assert!(parse_file_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers() {
        let p = Path::new("f.sql");
        let h = Header::parse(p, "-- pgfleet: target=tenant\n-- pgfleet: allow=drop-column,rename-table\n-- other\nSELECT 1;\n-- pgfleet: target=shared")
            .ok();
        assert_eq!(
            h,
            Some(Header {
                target: Some(TargetKind::Tenant),
                allow: vec!["drop-column".into(), "rename-table".into()]
            })
        );
        assert!(Header::parse(p, "-- pgfleet: target=everywhere").is_err());
        assert!(Header::parse(p, "-- pgfleet: transaction=off").is_err());
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).ok();
        }
        std::fs::write(path, text).ok();
    }

    #[test]
    fn loads_a_directory() {
        let Ok(tmp) = tempfile::tempdir() else {
            panic!("tempdir")
        };
        let d = tmp.path();
        write(
            d,
            "shared/V0001__users.sql",
            "CREATE TABLE users (id bigint);",
        );
        write(d, "shared/V0001__users.down.sql", "DROP TABLE users;");
        write(
            d,
            "tenant/V0002__notes.sql",
            "CREATE TABLE notes (id bigint);",
        );
        write(
            d,
            "V0003__more.sql",
            "-- pgfleet: target=tenant\nALTER TABLE notes ADD COLUMN body text;",
        );
        write(d, "README.md", "not a migration");
        let set = match MigrationSet::load(d) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let got: Vec<(i64, TargetKind, bool)> = set
            .migrations
            .iter()
            .map(|m| (m.version, m.kind, m.down.is_some()))
            .collect();
        assert_eq!(
            got,
            [
                (1, TargetKind::Shared, true),
                (2, TargetKind::Tenant, false),
                (3, TargetKind::Tenant, false)
            ]
        );
        assert_eq!(set.latest(TargetKind::Tenant), 3);
        assert_eq!(set.next_version(), 4);
        assert_ne!(
            set.digest(TargetKind::Shared),
            set.digest(TargetKind::Tenant)
        );
    }

    #[test]
    fn directory_mistakes_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[
                    ("shared/V1__a.sql", "SELECT 1"),
                    ("tenant/V0001__b.sql", "SELECT 1"),
                ],
                "version 1 is also used",
            ),
            (
                &[("shared/V1__a.down.sql", "SELECT 1")],
                "down script without its migration",
            ),
            (
                &[
                    ("shared/V1__a.sql", "SELECT 1"),
                    ("shared/V1__b.down.sql", "SELECT 1"),
                ],
                "does not match",
            ),
            (
                &[("tenant/V1__a.sql", "-- pgfleet: target=shared\nSELECT 1")],
                "header says target=shared",
            ),
            (&[("other/V1__a.sql", "SELECT 1")], "unknown folder"),
            (
                &[("shared/create.sql", "SELECT 1")],
                "not a migration file name",
            ),
        ];
        for (files, want) in cases {
            let Ok(tmp) = tempfile::tempdir() else {
                panic!("tempdir")
            };
            for (rel, text) in *files {
                write(tmp.path(), rel, text);
            }
            let e = MigrationSet::load(tmp.path())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(want), "{files:?}: {e}");
        }
    }
}
