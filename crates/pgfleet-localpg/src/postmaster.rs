//! The postmaster process: spawn it as our direct child, wait until it accepts connections, stop
//! or kill it, and always reap it (no zombies).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::env::PgEnv;
use crate::{Error, Result};

/// How long a start may take before we give up (a hot standby first needs a consistent state).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a fast shutdown may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(10);

/// Why a start failed, so callers can pick a retry.
#[derive(Debug)]
pub enum StartFailure {
    /// The port was taken (by another process racing us for a "free" port): retry on a new port.
    PortInUse(Error),
    /// Leftovers of a killed server still hold the data directory: retry the same port shortly.
    Busy(Error),
    /// Anything else.
    Fatal(Error),
}

impl From<Error> for StartFailure {
    fn from(e: Error) -> Self {
        StartFailure::Fatal(e)
    }
}

impl StartFailure {
    /// The error inside, whatever the kind.
    pub fn into_error(self) -> Error {
        match self {
            StartFailure::PortInUse(e) | StartFailure::Busy(e) | StartFailure::Fatal(e) => e,
        }
    }
}

/// Options for [`Postmaster::start`].
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Put the postmaster in its own process group, so a Ctrl-C in the terminal reaches only us and
    /// we shut the servers down in order. Leave it off when nothing would stop the server if we
    /// died (tests): then the terminal's signal stops it too.
    pub own_process_group: bool,
    /// How long the start may take before we give up.
    pub timeout: Duration,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            own_process_group: false,
            timeout: START_TIMEOUT,
        }
    }
}

/// A running postmaster that is our direct child: we signal it and always reap it (no zombies).
///
/// Dropping it stops the server (fast shutdown, SIGKILL after 10 s); call [`Postmaster::stop`] to
/// see errors.
#[derive(Debug)]
pub struct Postmaster {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl Postmaster {
    /// Spawns `postgres -D dir -p port -k dir -c listen_addresses=127.0.0.1` with its output
    /// appended to `dir/log`, and waits until it accepts connections. The unix socket lives in the
    /// data directory (see [`crate::check_socket_path`]).
    pub fn start(
        env: &PgEnv,
        dir: &Path,
        port: u16,
        options: &StartOptions,
    ) -> Result<Postmaster, StartFailure> {
        let log_path = dir.join("log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(Error::io(format!("open {}", log_path.display())))?;
        env.run_as.own(&log_path)?;
        let log_offset = log
            .metadata()
            .map_err(Error::io(format!("stat {}", log_path.display())))?
            .len();
        let log_err = log
            .try_clone()
            .map_err(Error::io(format!("dup {}", log_path.display())))?;
        let mut cmd = env.run_as.command(&env.bins.tool("postgres"), dir);
        cmd.arg("-D")
            .arg(dir)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if options.own_process_group {
            cmd.process_group(0);
        }
        let mut child = cmd
            .spawn()
            .map_err(Error::io(format!("spawn postgres for {}", dir.display())))?;

        let deadline = Instant::now() + options.timeout;
        loop {
            let exited = child.try_wait().map_err(Error::io("wait for postgres"))?;
            if let Some(status) = exited {
                return Err(classify(dir, port, status, log_offset));
            }
            if pid_file_accepting(dir, child.id()) && pg_isready(env, port) {
                return Ok(Postmaster {
                    child: Some(child),
                    dir: dir.to_path_buf(),
                    port,
                });
            }
            if Instant::now() >= deadline {
                // Best effort: we are already reporting a failure.
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartFailure::Fatal(Error::StartTimeout {
                    dir: dir.to_path_buf(),
                    port,
                    secs: options.timeout.as_secs(),
                    log: log_tail(dir, log_offset),
                }));
            }
            sleep(POLL);
        }
    }

    /// The postmaster's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The TCP port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the process is still alive (it may have crashed on its own).
    pub fn is_alive(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Fast shutdown (SIGINT: abort transactions, checkpoint, exit), SIGKILL after 10 s. Always
    /// reaps the child.
    pub fn stop(mut self) -> Result<()> {
        match self.child.take() {
            Some(child) => stop(child),
            None => Ok(()),
        }
    }

    /// SIGKILL the postmaster and its backends at once, like a machine crash; the next start runs
    /// crash recovery.
    pub fn kill_hard(mut self) -> Result<()> {
        match self.child.take() {
            Some(child) => kill_hard(child),
            None => Ok(()),
        }
    }
}

impl Drop for Postmaster {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            // Errors cannot be reported from drop; stop() reaps the child whatever happens.
            let _ = stop(child);
        }
    }
}

/// The postmaster writes its status into line 8 of postmaster.pid once the sockets are open and it
/// accepts connections ("ready", or "standby" for a hot standby); this is what `pg_ctl -w` waits
/// for. Checking the pid also proves the port is served by *our* server, not a racing one.
fn pid_file_accepting(dir: &Path, pid: u32) -> bool {
    let Ok(text) = fs::read_to_string(dir.join("postmaster.pid")) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines.first().map(|l| l.trim()) == Some(pid.to_string().as_str())
        && matches!(lines.get(7).map(|l| l.trim()), Some("ready" | "standby"))
}

/// A real connection attempt: `pg_isready` exits 0 when the server accepts connections (whatever
/// pg_hba.conf then decides about the user).
fn pg_isready(env: &PgEnv, port: u16) -> bool {
    Command::new(env.bins.tool("pg_isready"))
        .args([
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-t",
            "5",
        ])
        .arg("-p")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn classify(dir: &Path, port: u16, status: ExitStatus, log_offset: u64) -> StartFailure {
    let log = log_tail(dir, log_offset);
    let err = Error::StartFailed {
        dir: dir.to_path_buf(),
        port,
        status: status.to_string(),
        log: log.clone(),
    };
    if log.contains("Address already in use")
        || log.contains("could not bind")
        || log.contains("could not create any TCP/IP sockets")
    {
        StartFailure::PortInUse(err)
    } else if log.contains("pre-existing shared memory block")
        || log.contains("lock file \"postmaster.pid\" already exists")
    {
        StartFailure::Busy(err)
    } else {
        StartFailure::Fatal(err)
    }
}

/// The last lines the server logged since `offset` (the start of this run).
pub fn log_tail(dir: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(dir.join("log")) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_string(&mut text);
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

fn stop(mut child: Child) -> Result<()> {
    if child
        .try_wait()
        .map_err(Error::io("wait for postgres"))?
        .is_some()
    {
        return Ok(());
    }
    let pid = child.id();
    let signalled = signal(pid, Signal::SIGINT, "SIGINT");
    let deadline = Instant::now() + STOP_TIMEOUT;
    while signalled.is_ok() && Instant::now() < deadline {
        if child
            .try_wait()
            .map_err(Error::io("wait for postgres"))?
            .is_some()
        {
            return Ok(());
        }
        sleep(POLL);
    }
    let _ = child.kill();
    child.wait().map_err(Error::io("wait for postgres"))?;
    signalled
}

/// SIGKILL the postmaster and its backends at once, like a machine crash. The backends are
/// collected first: once the postmaster is gone they are re-parented and we could not find them.
fn kill_hard(mut child: Child) -> Result<()> {
    // Orphaned backends are re-parented to PID 1, and not every container init reaps them promptly
    // (here they stayed zombies for minutes): become their reaper instead. Process-wide, but only
    // set once a test simulates a crash.
    let reaper = become_subreaper();
    let pid = child.id();
    let backends = children_of(pid);
    let sent = signal(pid, Signal::SIGKILL, "SIGKILL");
    child.wait().map_err(Error::io("wait for postgres"))?;
    for b in backends {
        // They may be gone already; a crash simulation does not care.
        let _ = signal(b, Signal::SIGKILL, "SIGKILL");
        if reaper {
            if let Ok(raw) = i32::try_from(b) {
                // ECHILD when it was not re-parented to us (already reaped): nothing to do.
                let _ = nix::sys::wait::waitpid(Pid::from_raw(raw), None);
            }
        }
    }
    sent
}

#[cfg(target_os = "linux")]
fn become_subreaper() -> bool {
    nix::sys::prctl::set_child_subreaper(true).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn become_subreaper() -> bool {
    false
}

fn signal(pid: u32, sig: Signal, name: &'static str) -> Result<()> {
    let raw = i32::try_from(pid).map_err(|_| Error::Signal {
        signal: name,
        pid,
        source: nix::Error::EINVAL,
    })?;
    kill(Pid::from_raw(raw), sig).map_err(|source| Error::Signal {
        signal: name,
        pid,
        source,
    })
}

/// Pids whose parent is `parent`, from /proc/<pid>/stat (field 4, after the parenthesised name).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = &s[s.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// Stops a postmaster that an earlier process started in `dir` and left running (e.g. it was
/// killed before it could stop its servers): fast shutdown, then SIGKILL with its backends after
/// 10 s. Returns the old pid, or `None` when no live server holds the directory.
///
/// Only a live process named `postgres` whose pid is in `dir/postmaster.pid` is signalled, so a
/// recycled pid is left alone.
pub fn stop_leftover(dir: &Path) -> Result<Option<u32>> {
    let Some(pid) = leftover_pid(dir) else {
        return Ok(None);
    };
    signal(pid, Signal::SIGINT, "SIGINT")?;
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if !is_live_postgres(pid) {
            return Ok(Some(pid));
        }
        sleep(POLL * 5);
    }
    let backends = children_of(pid);
    let _ = signal(pid, Signal::SIGKILL, "SIGKILL");
    for b in backends {
        let _ = signal(b, Signal::SIGKILL, "SIGKILL");
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while is_live_postgres(pid) {
        if Instant::now() >= deadline {
            return Err(Error::StaleServer {
                dir: dir.to_path_buf(),
                pid,
                secs: STOP_TIMEOUT.as_secs() + 2,
            });
        }
        sleep(POLL * 5);
    }
    Ok(Some(pid))
}

/// The pid in `dir/postmaster.pid` when that process is alive and is a postgres server.
pub fn leftover_pid(dir: &Path) -> Option<u32> {
    let text = fs::read_to_string(dir.join("postmaster.pid")).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    is_live_postgres(pid).then_some(pid)
}

/// Alive (not a zombie) and named `postgres`, from /proc/<pid>/stat: "pid (comm) state ...".
fn is_live_postgres(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let comm = &stat[open + 1..close];
    let state = stat[close + 1..].split_whitespace().next();
    comm == "postgres" && !matches!(state, Some("Z" | "X"))
}
