//! [`PgEnv`]: the located binaries plus the OS user that runs them, and the one-shot tools
//! (initdb, pg_basebackup, pg_ctl promote).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::binaries::PgBinaries;
use crate::os_user::{run, RunAs};
use crate::{Error, Result};

/// Longest unix socket path the kernel accepts (sun_path is 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Everything needed to run the PostgreSQL programs here: where they are and as whom.
#[derive(Debug, Clone)]
pub struct PgEnv {
    /// The server binaries.
    pub bins: PgBinaries,
    /// The OS user that runs initdb, postgres, pg_basebackup and pg_ctl.
    pub run_as: RunAs,
}

/// Arguments for [`PgEnv::initdb`]. Superuser `postgres`, UTF8, locale C.UTF-8.
#[derive(Debug, Clone)]
pub struct InitDb {
    /// `--auth-local`: the method for unix-socket connections in the generated pg_hba.conf.
    pub auth_local: String,
    /// `--auth-host`: the method for TCP connections in the generated pg_hba.conf.
    pub auth_host: String,
    /// `--no-sync`: skip the final fsync (about 1 s faster; fine unless the machine crashes
    /// right after).
    pub no_sync: bool,
}

impl Default for InitDb {
    fn default() -> Self {
        Self {
            auth_local: "trust".into(),
            auth_host: "trust".into(),
            no_sync: true,
        }
    }
}

impl PgEnv {
    /// Finds the binaries ([`crate::find_pg_bin`]) and the OS user to run them as.
    pub fn detect() -> Result<PgEnv> {
        Ok(PgEnv {
            bins: PgBinaries::locate()?,
            run_as: RunAs::detect()?,
        })
    }

    /// A command for one of the server tools (`initdb`, `pg_ctl`, …) run as [`PgEnv::run_as`] from
    /// `cwd` (pick a directory that user can enter).
    pub fn command(&self, tool: &str, cwd: &Path) -> Command {
        self.run_as.command(&self.bins.tool(tool), cwd)
    }

    /// Creates the directory `dir` (its parent must exist) with mode 0700, owned by
    /// [`PgEnv::run_as`]: what initdb, pg_basebackup and postgres expect of a data directory.
    pub fn create_data_dir(&self, dir: &Path) -> Result<()> {
        fs::create_dir(dir).map_err(Error::io(format!("create {}", dir.display())))?;
        self.own_private_dir(dir)
    }

    /// Sets mode 0700 on an existing directory and gives it to [`PgEnv::run_as`].
    pub fn own_private_dir(&self, dir: &Path) -> Result<()> {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(Error::io(format!("chmod 0700 {}", dir.display())))?;
        self.run_as.own(dir)
    }

    /// Runs initdb into `dir` (empty or missing) with superuser `postgres`.
    pub fn initdb(&self, dir: &Path, options: &InitDb) -> Result<()> {
        let cwd = dir.parent().unwrap_or(Path::new("/"));
        let mut cmd = self.command("initdb", cwd);
        cmd.arg("-D")
            .arg(dir)
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"])
            .arg(format!("--auth-local={}", options.auth_local))
            .arg(format!("--auth-host={}", options.auth_host));
        if options.no_sync {
            cmd.arg("--no-sync");
        }
        run(&mut cmd)?;
        Ok(())
    }

    /// `pg_basebackup -R -X stream` from the server on 127.0.0.1:`primary_port` (connecting as
    /// `postgres`, so its pg_hba.conf must allow that replication connection without a password)
    /// into `dir` (empty or missing). The copy starts as a hot standby that follows the primary
    /// by streaming replication (no slot; the primary's `wal_keep_size` bounds how far it may
    /// fall behind). The primary's `log` file, copied along, is emptied.
    pub fn basebackup(&self, primary_port: u16, dir: &Path) -> Result<()> {
        let cwd = dir.parent().unwrap_or(Path::new("/"));
        run(self
            .command("pg_basebackup", cwd)
            .args(["-h", "127.0.0.1", "-U", "postgres", "-X", "stream", "-R"])
            .args(["--checkpoint=fast", "--no-sync"])
            .arg("-p")
            .arg(primary_port.to_string())
            .arg("-D")
            .arg(dir)
            .env_remove("PGPASSWORD"))?;
        let log = dir.join("log");
        if log.exists() {
            fs::write(&log, b"").map_err(Error::io(format!("truncate {}", log.display())))?;
        }
        Ok(())
    }

    /// Promotes the hot standby running in `dir` (`pg_ctl promote -w`: returns once it accepts
    /// writes).
    pub fn promote(&self, dir: &Path) -> Result<()> {
        let cwd = dir.parent().unwrap_or(Path::new("/"));
        run(self
            .command("pg_ctl", cwd)
            .args(["promote", "-w", "-t", "30", "-D"])
            .arg(dir))?;
        Ok(())
    }
}

/// Fails with [`Error::SocketPathTooLong`] when the unix socket of a server with its socket in
/// `dir` (as [`crate::Postmaster`] places it) could be longer than the kernel allows.
pub fn check_socket_path(dir: &Path) -> Result<()> {
    let len = dir.as_os_str().len() + "/.s.PGSQL.65535".len();
    if len > MAX_SOCKET_PATH {
        return Err(Error::SocketPathTooLong {
            base: dir.to_path_buf(),
            len,
        });
    }
    Ok(())
}
