//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while preparing, starting or driving a local cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No directory with `initdb` was found.
    #[error(
        "no PostgreSQL server binaries found (looked in {looked}); install them, e.g. \
         `apt-get install postgresql-15`, or set PGFLEET_PG_BIN to the directory that holds initdb"
    )]
    NoBinaries {
        /// The places that were tried, in order.
        looked: String,
    },

    /// We run as root but there is no `postgres` OS user to run the server as.
    #[error(
        "running as root but the `postgres` OS user does not exist (PostgreSQL refuses to run as root); \
         create it (apt-get install postgresql-15 does) or run as a non-root user"
    )]
    NoPostgresUser,

    /// A file-system or process operation failed.
    #[error("failed to {action}: {source}")]
    Io {
        /// What we were doing, e.g. "create directory /tmp/pgfleet-testkit".
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An external command (initdb, cp, pg_basebackup, pg_ctl, psql) exited unsuccessfully.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line, shortened to the program and its arguments.
        command: String,
        /// The exit status.
        status: String,
        /// Its stderr (and stdout), trimmed.
        output: String,
    },

    /// The server process exited while we waited for it to accept connections.
    #[error(
        "postgres (data dir {dir}, port {port}) exited during start ({status}); log tail:\n{log}"
    )]
    StartFailed {
        /// The data directory.
        dir: PathBuf,
        /// The port it was asked to listen on.
        port: u16,
        /// The exit status.
        status: String,
        /// The last lines of the server log.
        log: String,
    },

    /// The server did not accept connections in time.
    #[error("postgres (data dir {dir}, port {port}) did not accept connections within {secs} s; log tail:\n{log}")]
    StartTimeout {
        /// The data directory.
        dir: PathBuf,
        /// The port it was asked to listen on.
        port: u16,
        /// How long we waited.
        secs: u64,
        /// The last lines of the server log.
        log: String,
    },

    /// Sending a signal to the server failed.
    #[error("failed to send {signal} to postgres pid {pid}: {source}")]
    Signal {
        /// The signal name.
        signal: &'static str,
        /// The postmaster's pid.
        pid: u32,
        /// The underlying error.
        #[source]
        source: nix::Error,
    },

    /// The base directory is so long that the server's unix socket path would not fit.
    #[error(
        "unix socket path under {base} would be {len} bytes, over the 107-byte limit; \
         use a shorter directory (the test kit reads PGFLEET_TESTKIT_DIR)"
    )]
    SocketPathTooLong {
        /// The base directory.
        base: PathBuf,
        /// The resulting socket path length.
        len: usize,
    },

    /// The `postgres` OS user cannot enter a directory the server must use.
    #[error(
        "the `postgres` OS user (which runs the servers because we are root) cannot enter {dir}; \
         use a directory it can reach, e.g. under /tmp or /var/lib/postgresql, or run as a non-root user"
    )]
    NotReachable {
        /// The directory.
        dir: PathBuf,
    },

    /// A server from an earlier run still holds the data directory and would not stop.
    #[error(
        "postgres pid {pid} from an earlier run still holds {dir} and did not stop within {secs} s"
    )]
    StaleServer {
        /// The data directory.
        dir: PathBuf,
        /// The old postmaster's pid.
        pid: u32,
        /// How long we waited.
        secs: u64,
    },

    /// The operation needs a running server.
    #[error("postgres (data dir {dir}) is not running")]
    NotRunning {
        /// The data directory.
        dir: PathBuf,
    },
}

impl Error {
    /// Wraps an I/O error with what we were doing: `.map_err(Error::io("create /x"))`.
    pub fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let action = action.into();
        move |source| Error::Io { action, source }
    }
}
