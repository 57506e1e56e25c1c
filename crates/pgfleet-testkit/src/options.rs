//! Per-cluster configuration on top of the template.

use std::path::Path;

use pgfleet_localpg::conf::{append_settings, write_hba};

use crate::Result;

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
        append_settings(dir, "pgfleet-testkit cluster settings", &self.settings)?;
        if let Some(lines) = &self.hba {
            write_hba(dir, lines)?;
        }
        Ok(())
    }
}
