//! Per-cluster configuration on top of the template.

use std::path::Path;

use crate::template::append;
use crate::{Error, Result};

/// Settings and client-authentication rules for one cluster.
///
/// `settings` are appended to postgresql.conf (later lines win, so they override the template).
/// `hba`, when set, replaces pg_hba.conf entirely: keep a `trust` line for the `postgres` user on
/// 127.0.0.1 (and a `replication` line) if the test also uses [`crate::Cluster::psql`] or
/// [`crate::Cluster::replica`]. The template's own pg_hba.conf trusts everyone on local and
/// loopback connections, replication included.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// `(name, value)` pairs appended to postgresql.conf as `name = 'value'`.
    pub settings: Vec<(String, String)>,
    /// Replacement pg_hba.conf lines, or `None` to keep the template's.
    pub hba: Option<Vec<String>>,
}

impl ClusterOptions {
    /// Adds one postgresql.conf setting, e.g. `.setting("recovery_min_apply_delay", "2s")`.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Adds one pg_hba.conf line; the first call replaces the template's rules.
    pub fn hba_line(mut self, line: impl Into<String>) -> Self {
        self.hba.get_or_insert_with(Vec::new).push(line.into());
        self
    }

    /// Writes these options into a data directory.
    pub(crate) fn apply(&self, dir: &Path) -> Result<()> {
        if !self.settings.is_empty() {
            let mut text = String::from("\n# pgfleet-testkit cluster settings\n");
            for (name, value) in &self.settings {
                // Quoted values are accepted for every GUC type; quotes are doubled inside.
                text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
            }
            append(&dir.join("postgresql.conf"), &text)?;
        }
        if let Some(lines) = &self.hba {
            let path = dir.join("pg_hba.conf");
            let mut text = lines.join("\n");
            text.push('\n');
            // Overwriting an existing file keeps its owner (the server's OS user).
            std::fs::write(&path, text).map_err(Error::io(format!("write {}", path.display())))?;
        }
        Ok(())
    }
}
