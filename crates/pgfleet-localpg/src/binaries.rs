//! Finding the PostgreSQL server binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result};

/// Environment variable that names the directory holding `initdb`, `postgres`, `pg_ctl`, ….
pub const PG_BIN_ENV: &str = "PGFLEET_PG_BIN";

/// Where Debian/Ubuntu install the versioned server binaries (`<root>/<version>/bin`).
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// Finds the directory with the PostgreSQL server binaries.
///
/// Order: `$PGFLEET_PG_BIN` (if set it must be right: no silent fallback), then
/// `pg_config --bindir` if it holds `initdb`, then the newest `/usr/lib/postgresql/*/bin`
/// (pg_config often comes from libpq-dev and points at a client-only directory).
pub fn find_pg_bin() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(PG_BIN_ENV) {
        let dir = PathBuf::from(dir);
        if has_initdb(&dir) {
            return Ok(dir);
        }
        return Err(Error::NoBinaries {
            looked: format!("{PG_BIN_ENV}={}", dir.display()),
        });
    }
    let mut looked = Vec::new();
    match pg_config_bindir() {
        Some(dir) if has_initdb(&dir) => return Ok(dir),
        Some(dir) => looked.push(format!("`pg_config --bindir` = {}", dir.display())),
        None => looked.push("`pg_config --bindir` (not available)".to_string()),
    }
    if let Some(dir) = newest_debian_bindir() {
        return Ok(dir);
    }
    looked.push(format!("{DEBIAN_ROOT}/*/bin"));
    Err(Error::NoBinaries {
        looked: looked.join(", "),
    })
}

fn has_initdb(dir: &Path) -> bool {
    dir.join("initdb").is_file()
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| PathBuf::from(text))
}

fn newest_debian_bindir() -> Option<PathBuf> {
    let entries = std::fs::read_dir(DEBIAN_ROOT).ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version: Vec<u32> = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let bin = e.path().join("bin");
            has_initdb(&bin).then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// A located set of server binaries and their version.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    dir: PathBuf,
    version: String,
}

impl PgBinaries {
    /// Finds the binaries ([`find_pg_bin`]) and reads their version.
    pub fn locate() -> Result<Self> {
        Self::at(find_pg_bin()?)
    }

    /// Uses the binaries in `dir` and asks `postgres --version` (allowed as root) for the version.
    pub fn at(dir: PathBuf) -> Result<Self> {
        let postgres = dir.join("postgres");
        let out = Command::new(&postgres)
            .arg("--version")
            .output()
            .map_err(Error::io(format!("run {} --version", postgres.display())))?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "postgres (PostgreSQL) 15.18 (Debian 15.18-1.pgdg120+1)"
        let version = text
            .split_once("(PostgreSQL)")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("unknown")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        Ok(Self { dir, version })
    }

    /// The path of one tool in the binaries directory.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `psql`: from the server directory when present, else from `PATH`.
    pub fn psql(&self) -> PathBuf {
        let p = self.dir.join("psql");
        if p.is_file() {
            p
        } else {
            PathBuf::from("psql")
        }
    }

    /// The directory holding the binaries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server version, e.g. "15.18".
    pub fn version(&self) -> &str {
        &self.version
    }
}
