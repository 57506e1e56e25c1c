//! The template data directory: initdb once per PostgreSQL version, copy for every cluster.
//!
//! Tests run in parallel threads and in parallel processes (one per test binary), so the build is
//! guarded by an exclusive file lock (`flock`, which also excludes threads of one process because
//! each `open` gets its own lock) and published with a rename plus a "ready" marker: a crashed
//! builder leaves only a `.tmp` directory that the next builder removes.

use std::fs::{self, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use pgfleet_localpg::conf::append;
use pgfleet_localpg::{run, InitDb, PgEnv, RunAs, MAX_SOCKET_PATH};

use crate::{Error, Result};

/// Environment variable for the base directory of templates and clusters.
pub(crate) const DIR_ENV: &str = "PGFLEET_TESTKIT_DIR";
/// Default base: tmpfs when the machine has one (creating the template's ~1,000 files costs ~1.5 s
/// per cluster on this machine's disk and ~0.1 s in memory), else /tmp.
const DEFAULT_DIRS: [&str; 2] = ["/dev/shm/pgfleet-testkit", "/tmp/pgfleet-testkit"];

/// Bump when the initdb flags or [`TEMPLATE_SETTINGS`] change, so stale caches are not reused.
const TEMPLATE_FORMAT: u32 = 1;

/// Appended to the template's postgresql.conf. Durability is off (tests never survive a power
/// loss); replication is on so any cluster can serve `pg_basebackup` and hot-standby replicas.
const TEMPLATE_SETTINGS: &str = "
# pgfleet-testkit template settings
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
max_connections = 300
shared_buffers = 32MB
max_prepared_transactions = 100
unix_socket_permissions = 0777
";

/// The prepared environment shared by every cluster of this process.
#[derive(Debug)]
pub(crate) struct Template {
    pub(crate) env: PgEnv,
    pub(crate) base: PathBuf,
    pub(crate) dir: PathBuf,
}

impl Template {
    /// The process-wide template, built (or found in the cache) on first use. A failure is not
    /// cached: the next caller tries again and gets its own error.
    pub(crate) fn shared() -> Result<&'static Template> {
        static SHARED: OnceLock<Template> = OnceLock::new();
        static INIT: Mutex<()> = Mutex::new(());
        if let Some(t) = SHARED.get() {
            return Ok(t);
        }
        let _guard = INIT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = SHARED.get() {
            return Ok(t);
        }
        let t = Template::prepare()?;
        Ok(SHARED.get_or_init(|| t))
    }

    fn prepare() -> Result<Template> {
        let env = PgEnv::detect()?;
        let base = std::env::var_os(DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let shm = Path::new("/dev/shm");
                let pick = if shm.is_dir() {
                    DEFAULT_DIRS[0]
                } else {
                    DEFAULT_DIRS[1]
                };
                PathBuf::from(pick)
            });
        // A cluster's socket is <base>/c-<10 hex>/.s.PGSQL.<port>.
        let len = base.as_os_str().len() + "/c-0123456789/.s.PGSQL.65535".len();
        if len > MAX_SOCKET_PATH {
            return Err(Error::SocketPathTooLong { base, len });
        }
        if !base.is_dir() {
            fs::create_dir_all(&base).map_err(Error::io(format!("create {}", base.display())))?;
            // The postgres user must be able to traverse it; only we create entries in it.
            if let RunAs::Postgres { .. } = env.run_as {
                fs::set_permissions(&base, fs::Permissions::from_mode(0o755))
                    .map_err(Error::io(format!("chmod 0755 {}", base.display())))?;
            }
        }
        let key = format!(
            "tpl-{}-u{}-f{TEMPLATE_FORMAT}",
            env.bins.version(),
            env.run_as.uid()
        );
        let t = Template {
            dir: base.join(&key),
            env,
            base,
        };
        t.build_once(&key)?;
        Ok(t)
    }

    fn build_once(&self, key: &str) -> Result<()> {
        let ready = self.base.join(format!("{key}.ready"));
        if ready.is_file() && self.dir.is_dir() {
            return Ok(());
        }
        let lock_path = self.base.join(format!("{key}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io(format!("open {}", lock_path.display())))?;
        lock.lock()
            .map_err(Error::io(format!("lock {}", lock_path.display())))?;
        // Someone else may have finished while we waited for the lock.
        if ready.is_file() && self.dir.is_dir() {
            return Ok(());
        }
        let tmp = self.base.join(format!("{key}.tmp"));
        for stale in [&tmp, &self.dir] {
            if stale.exists() {
                fs::remove_dir_all(stale)
                    .map_err(Error::io(format!("remove stale {}", stale.display())))?;
            }
        }
        self.env.create_data_dir(&tmp)?;
        self.env.initdb(&tmp, &InitDb::default())?;
        append(&tmp.join("postgresql.conf"), TEMPLATE_SETTINGS)?;
        fs::rename(&tmp, &self.dir).map_err(Error::io(format!(
            "rename {} to {}",
            tmp.display(),
            self.dir.display()
        )))?;
        fs::write(&ready, b"ok\n").map_err(Error::io(format!("write {}", ready.display())))?;
        // The lock is released when `lock` is closed.
        Ok(())
    }

    /// Creates a new, unique, empty directory `<base>/<prefix>-<10 hex>` with mode 0700, owned by
    /// the server's OS user. Short on purpose: the unix socket lives inside it.
    pub(crate) fn new_cluster_dir(&self, prefix: &str) -> Result<PathBuf> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
            h.write_u32(std::process::id());
            let name = format!("{prefix}-{:010x}", h.finish() & 0xff_ffff_ffff);
            let dir = self.base.join(name);
            match fs::create_dir(&dir) {
                Ok(()) => {
                    self.env.own_private_dir(&dir)?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(format!("create {}", dir.display()))(e)),
            }
        }
    }

    /// Copies the template's contents into the empty directory `dir` (as the server's OS user, so
    /// ownership and modes come out right).
    pub(crate) fn copy_into(&self, dir: &Path) -> Result<()> {
        run(self
            .env
            .run_as
            .command(Path::new("cp"), &self.base)
            .arg("-a")
            .arg(self.dir.join("."))
            .arg(dir))?;
        Ok(())
    }
}
