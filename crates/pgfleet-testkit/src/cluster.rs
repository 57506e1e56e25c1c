//! [`Cluster`]: one running PostgreSQL server (a primary or a hot standby) owned by the test.

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use pgfleet_localpg::{psql, Postmaster, PsqlTarget, StartFailure, StartOptions};

use crate::options::ClusterOptions;
use crate::port::free_port;
use crate::template::Template;
use crate::{Error, Result};

/// How many fresh ports a start tries before giving up (another process can take a "free" port).
const PORT_ATTEMPTS: usize = 5;
/// How long `start_again` retries while leftovers of a killed server still hold the directory.
const BUSY_RETRY: Duration = Duration::from_secs(10);

/// Set to keep data directories after drop (for debugging a failed test).
const KEEP_ENV: &str = "PGFLEET_TESTKIT_KEEP";

/// A real PostgreSQL server in its own data directory under the testkit base directory, listening on
/// 127.0.0.1 and in its data directory (unix socket), with `trust` authentication for local and
/// loopback connections by default.
///
/// Dropping it stops the server (also while a panic unwinds) and removes the directory. The
/// postmaster is our direct child and is always reaped.
#[derive(Debug)]
pub struct Cluster {
    tpl: &'static Template,
    dir: PathBuf,
    port: u16,
    server: Option<Postmaster>,
}

impl Cluster {
    /// Starts a new primary from the template with default options.
    pub fn start() -> Result<Cluster> {
        Cluster::start_with(ClusterOptions::default())
    }

    /// Starts a new primary from the template with extra settings or pg_hba.conf lines.
    pub fn start_with(options: ClusterOptions) -> Result<Cluster> {
        let tpl = Template::shared()?;
        let dir = tpl.new_cluster_dir("c")?;
        // From here on, Drop cleans up the directory if anything fails.
        let mut cluster = Cluster {
            tpl,
            dir,
            port: 0,
            server: None,
        };
        tpl.copy_into(&cluster.dir)?;
        options.apply(&cluster.dir)?;
        cluster.boot_on_fresh_port()?;
        Ok(cluster)
    }

    /// A hot standby of this server: `pg_basebackup -R -X stream` into a new directory, started on
    /// a new port. It follows this server through streaming replication (no slot).
    pub fn replica(&self) -> Result<Cluster> {
        self.replica_with(ClusterOptions::default())
    }

    /// [`Cluster::replica`] with extra settings (e.g. `recovery_min_apply_delay`) or hba lines.
    pub fn replica_with(&self, options: ClusterOptions) -> Result<Cluster> {
        self.ensure_running()?;
        let tpl = self.tpl;
        let dir = tpl.new_cluster_dir("r")?;
        let mut replica = Cluster {
            tpl,
            dir,
            port: 0,
            server: None,
        };
        tpl.env.basebackup(self.port, &replica.dir)?;
        options.apply(&replica.dir)?;
        replica.boot_on_fresh_port()?;
        Ok(replica)
    }

    /// The address to connect to: always "127.0.0.1".
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The TCP port the server listens on (kept across [`Cluster::start_again`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (also the unix socket directory; the server log is `log` inside it).
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// The postmaster's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Postmaster::pid)
    }

    /// Whether we started the server and have not stopped or killed it since. (It may still have
    /// crashed on its own.)
    pub fn is_running(&self) -> bool {
        self.server.is_some()
    }

    /// A `postgres://` URL for this server; user and password are percent-encoded.
    pub fn url(&self, user: &str, password: Option<&str>, db: &str) -> String {
        let auth = match password {
            Some(p) => format!("{}:{}", encode(user), encode(p)),
            None => encode(user),
        };
        format!(
            "postgres://{auth}@{}:{}/{}",
            self.host(),
            self.port,
            encode(db)
        )
    }

    /// A tokio-postgres / libpq key=value connection string (no password: the default hba trusts
    /// loopback connections).
    pub fn config_string(&self, user: &str, db: &str) -> String {
        format!(
            "host={} port={} user={} dbname={}",
            self.host(),
            self.port,
            quote(user),
            quote(db)
        )
    }

    /// Runs SQL with psql as superuser `postgres` on database `postgres` and returns its unaligned,
    /// tuples-only output (rows on lines, columns separated by `|`), trailing newline removed.
    pub fn psql(&self, sql: &str) -> Result<String> {
        self.psql_db("postgres", sql)
    }

    /// [`Cluster::psql`] on another database.
    pub fn psql_db(&self, db: &str, sql: &str) -> Result<String> {
        psql(
            &self.tpl.env.bins,
            &PsqlTarget {
                host: self.host(),
                port: self.port,
                user: "postgres",
                db,
                app_name: "pgfleet-testkit",
            },
            sql,
        )
    }

    /// Fast shutdown (SIGINT), SIGKILL if it takes more than 10 s. A no-op when not running.
    pub fn stop(&mut self) -> Result<()> {
        match self.server.take() {
            Some(server) => server.stop(),
            None => Ok(()),
        }
    }

    /// Starts the server again in the same directory on the same port (after [`Cluster::stop`] or
    /// [`Cluster::kill`]). A no-op when running.
    pub fn start_again(&mut self) -> Result<()> {
        if self.server.is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + BUSY_RETRY;
        loop {
            match Postmaster::start(
                &self.tpl.env,
                &self.dir,
                self.port,
                &StartOptions::default(),
            ) {
                Ok(server) => {
                    self.server = Some(server);
                    return Ok(());
                }
                Err(StartFailure::Busy(_)) if Instant::now() < deadline => {
                    sleep(Duration::from_millis(100));
                }
                Err(f) => return Err(f.into_error()),
            }
        }
    }

    /// SIGKILL the postmaster and its backends, simulating a crash; the next
    /// [`Cluster::start_again`] runs crash recovery.
    ///
    /// The template sets `synchronous_commit = off`, so commits from the last few hundred
    /// milliseconds can be lost; start the cluster with `.setting("synchronous_commit", "on")` when
    /// a test needs committed data to survive the crash.
    pub fn kill(&mut self) -> Result<()> {
        match self.server.take() {
            Some(server) => server.kill_hard(),
            None => Ok(()),
        }
    }

    /// Promotes a hot standby to primary (`pg_ctl promote -w`: returns once it accepts writes).
    pub fn promote(&self) -> Result<()> {
        self.ensure_running()?;
        self.tpl.env.promote(&self.dir)
    }

    fn ensure_running(&self) -> Result<()> {
        if self.server.is_none() {
            return Err(Error::NotRunning {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    fn boot_on_fresh_port(&mut self) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            match Postmaster::start(&self.tpl.env, &self.dir, port, &StartOptions::default()) {
                Ok(server) => {
                    self.port = port;
                    self.server = Some(server);
                    return Ok(());
                }
                Err(StartFailure::PortInUse(_)) if attempt < PORT_ATTEMPTS => continue,
                Err(f) => return Err(f.into_error()),
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; stop() reaps the child whatever happens.
        let _ = self.stop();
        if std::env::var_os(KEEP_ENV).is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Quotes a libpq key=value value when needed.
fn quote(s: &str) -> String {
    if !s.is_empty() && !s.contains([' ', '\'', '\\']) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::{encode, quote};

    #[test]
    fn url_parts_are_percent_encoded() {
        assert_eq!(encode("app user"), "app%20user");
        assert_eq!(encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
        assert_eq!(encode("plain_1.x-~"), "plain_1.x-~");
    }

    #[test]
    fn conninfo_values_are_quoted_when_needed() {
        assert_eq!(quote("postgres"), "postgres");
        assert_eq!(quote("my db"), "'my db'");
        assert_eq!(quote("o'k"), "'o\\'k'");
        assert_eq!(quote(""), "''");
    }
}
