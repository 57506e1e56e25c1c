//! Running SQL with `psql`: the simplest way to set up roles and databases without a client
//! library.

use std::process::Command;

use crate::binaries::PgBinaries;
use crate::os_user::run;
use crate::Result;

/// Where and as whom [`psql`] connects. No password: the server must trust this connection.
#[derive(Debug, Clone)]
pub struct PsqlTarget<'a> {
    /// "127.0.0.1", or a unix socket directory (an absolute path).
    pub host: &'a str,
    /// The port (for a socket directory it picks the socket file `.s.PGSQL.<port>`).
    pub port: u16,
    /// The role.
    pub user: &'a str,
    /// The database.
    pub db: &'a str,
    /// `application_name`, to recognise our sessions in pg_stat_activity.
    pub app_name: &'a str,
}

/// Runs `sql` with psql (as ourselves, with `ON_ERROR_STOP`) and returns its unaligned,
/// tuples-only output (rows on lines, columns separated by `|`), trailing newline removed.
pub fn psql(bins: &PgBinaries, target: &PsqlTarget<'_>, sql: &str) -> Result<String> {
    let mut cmd = Command::new(bins.psql());
    cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]);
    // Only our own connection parameters: a developer's PG* variables must not leak in.
    for var in [
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGPASSWORD",
        "PGPASSFILE",
        "PGOPTIONS",
        "PGSSLMODE",
        "PGHOSTADDR",
        "PGREQUIRESSL",
        "PGTARGETSESSIONATTRS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("PGHOST", target.host)
        .env("PGPORT", target.port.to_string())
        .env("PGUSER", target.user)
        .env("PGDATABASE", target.db)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGAPPNAME", target.app_name);
    let out = run(&mut cmd)?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.trim_end_matches('\n').to_string())
}
