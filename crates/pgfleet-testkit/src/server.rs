//! The postmaster process: spawn it as our direct child, wait until it accepts connections, stop
//! or kill it, and always reap it (no zombies).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::template::Template;
use crate::{Error, Result};

/// How long a start may take before we give up (a hot standby first needs a consistent state).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a fast shutdown may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(10);

/// Why a start failed, so callers can pick a retry.
#[derive(Debug)]
pub(crate) enum StartFailure {
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
    pub(crate) fn into_error(self) -> Error {
        match self {
            StartFailure::PortInUse(e) | StartFailure::Busy(e) | StartFailure::Fatal(e) => e,
        }
    }
}

/// Spawns `postgres -D dir -p port -k dir -c listen_addresses=127.0.0.1` with its output in
/// `dir/log`, and waits until it accepts connections.
pub(crate) fn start(tpl: &Template, dir: &Path, port: u16) -> Result<Child, StartFailure> {
    let log_path = dir.join("log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(Error::io(format!("open {}", log_path.display())))?;
    tpl.run_as.own(&log_path)?;
    let log_offset = log
        .metadata()
        .map_err(Error::io(format!("stat {}", log_path.display())))?
        .len();
    let log_err = log
        .try_clone()
        .map_err(Error::io(format!("dup {}", log_path.display())))?;
    let mut child = tpl
        .run_as
        .command(&tpl.bins.tool("postgres"), dir)
        .arg("-D")
        .arg(dir)
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(dir)
        .args(["-c", "listen_addresses=127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(Error::io(format!("spawn postgres for {}", dir.display())))?;

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let exited = child.try_wait().map_err(Error::io("wait for postgres"))?;
        if let Some(status) = exited {
            return Err(classify(dir, port, status, log_offset));
        }
        if pid_file_accepting(dir, child.id()) && pg_isready(tpl, port) {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            // Best effort: we are already reporting a failure.
            let _ = child.kill();
            let _ = child.wait();
            return Err(StartFailure::Fatal(Error::StartTimeout {
                dir: dir.to_path_buf(),
                port,
                secs: START_TIMEOUT.as_secs(),
                log: log_tail(dir, log_offset),
            }));
        }
        sleep(POLL);
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
fn pg_isready(tpl: &Template, port: u16) -> bool {
    Command::new(tpl.bins.tool("pg_isready"))
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
pub(crate) fn log_tail(dir: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(dir.join("log")) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_string(&mut text);
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

/// Fast shutdown (SIGINT: abort transactions, checkpoint, exit), SIGKILL after [`STOP_TIMEOUT`].
/// Always reaps the child.
pub(crate) fn stop(mut child: Child) -> Result<()> {
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
pub(crate) fn kill_hard(mut child: Child) -> Result<()> {
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
