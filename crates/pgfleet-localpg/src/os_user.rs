//! Which OS user runs the PostgreSQL programs.
//!
//! initdb and postgres refuse to run as root. When we are root we spawn them with
//! `CommandExt::uid/gid` of the `postgres` user instead of going through `runuser`/`su`, so the
//! postmaster stays our direct child and we can signal and reap it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix::unistd::{geteuid, User};

use crate::{Error, Result};

/// The identity that runs initdb, postgres, pg_basebackup and pg_ctl.
#[derive(Debug, Clone)]
pub enum RunAs {
    /// We are not root: run as ourselves.
    Current,
    /// We are root: run as the `postgres` OS user.
    Postgres {
        /// The `postgres` user's uid.
        uid: u32,
        /// Its primary group.
        gid: u32,
        /// Its home directory (HOME for the programs, e.g. for .pgpass lookups).
        home: PathBuf,
    },
}

impl RunAs {
    /// `Current` unless we are root, then the `postgres` OS user (which must exist).
    pub fn detect() -> Result<Self> {
        if !geteuid().is_root() {
            return Ok(RunAs::Current);
        }
        let user = User::from_name("postgres")
            .map_err(|e| Error::Io {
                action: "look up the `postgres` OS user".into(),
                source: e.into(),
            })?
            .ok_or(Error::NoPostgresUser)?;
        Ok(RunAs::Postgres {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir,
        })
    }

    /// A command for `program` that will run as this identity, from `cwd` (our own working
    /// directory may not be readable by the `postgres` user).
    pub fn command(&self, program: &Path, cwd: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(cwd);
        if let RunAs::Postgres { uid, gid, home } = self {
            // std drops root's supplementary groups when uid is set.
            cmd.uid(*uid)
                .gid(*gid)
                .env("HOME", home)
                .env("USER", "postgres");
        }
        cmd
    }

    /// Gives `path` to this identity (a no-op when not root).
    pub fn own(&self, path: &Path) -> Result<()> {
        if let RunAs::Postgres { uid, gid, .. } = self {
            std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
                .map_err(Error::io(format!("chown {} to postgres", path.display())))?;
        }
        Ok(())
    }

    /// Fails with [`Error::NotReachable`] unless this identity can enter `dir` (every parent
    /// directory needs the search permission for it; e.g. root's home usually denies it).
    pub fn ensure_can_enter(&self, dir: &Path) -> Result<()> {
        if let RunAs::Current = self {
            return Ok(());
        }
        let status = self
            .command(Path::new("test"), Path::new("/"))
            .arg("-x")
            .arg(dir)
            .stdin(std::process::Stdio::null())
            .status()
            .map_err(Error::io(format!(
                "check access to {} as postgres",
                dir.display()
            )))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::NotReachable {
                dir: dir.to_path_buf(),
            })
        }
    }

    /// The uid, for cache keys: templates built by different users are not interchangeable.
    pub fn uid(&self) -> u32 {
        match self {
            RunAs::Current => geteuid().as_raw(),
            RunAs::Postgres { uid, .. } => *uid,
        }
    }
}

/// Runs `cmd` to completion, turning a non-zero exit into [`Error::Command`].
pub fn run(cmd: &mut Command) -> Result<Output> {
    let line = describe(cmd);
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(Error::io(format!("run `{line}`")))?;
    if out.status.success() {
        return Ok(out);
    }
    let mut output = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        if !output.is_empty() {
            output.push('\n');
        }
        output.push_str(stdout.trim());
    }
    Err(Error::Command {
        command: line,
        status: out.status.to_string(),
        output,
    })
}

fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        line.push(' ');
        line.push_str(&a.to_string_lossy());
    }
    line
}
