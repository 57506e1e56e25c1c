//! [`AdminError`]: everything an admin command can fail with, and the SQLSTATE the client sees.

use std::fmt;
use std::time::Duration;

use pgfleet_config::ConfigErrors;
use pgfleet_proxy::console::ConsoleError;

use crate::command::COMMAND_LIST;

/// Why an admin command failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminError {
    /// The statement is not an admin command (the trimmed text as typed).
    UnknownCommand(String),
    /// RELOAD without a config file: the process was started from an in-memory config.
    NoConfigFile,
    /// RELOAD found problems in the config file; the running config was kept.
    InvalidConfig {
        /// The file that was read.
        path: String,
        /// Every problem, with key paths.
        errors: ConfigErrors,
    },
    /// PAUSE waited too long for busy server connections; pgfleet resumed.
    PauseTimeout {
        /// How long it waited.
        waited: Duration,
        /// Server connections still busy when it gave up.
        busy: usize,
    },
}

impl AdminError {
    /// SQLSTATE (PostgreSQL docs, appendix A "PostgreSQL Error Codes").
    pub fn code(&self) -> &'static str {
        match self {
            // syntax_error
            AdminError::UnknownCommand(_) => "42601",
            // config_file_error
            AdminError::NoConfigFile | AdminError::InvalidConfig { .. } => "F0000",
            // query_canceled, as for statement_timeout
            AdminError::PauseTimeout { .. } => "57014",
        }
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::UnknownCommand(cmd) => {
                write!(
                    f,
                    "pgfleet: unknown admin command \"{cmd}\"; try {COMMAND_LIST}"
                )
            }
            AdminError::NoConfigFile => f.write_str(
                "pgfleet: cannot reload: this process was not started from a config file",
            ),
            AdminError::InvalidConfig { path, errors } => write!(
                f,
                "pgfleet: reload failed, the running config is kept; problems in {path}:\n{errors}"
            ),
            AdminError::PauseTimeout { waited, busy } => write!(
                f,
                "pgfleet: pause timed out after {}s with {busy} server connection(s) still busy \
                 (session-mode clients hold theirs until they disconnect); pgfleet resumed",
                waited.as_secs()
            ),
        }
    }
}

impl std::error::Error for AdminError {}

impl From<AdminError> for ConsoleError {
    fn from(e: AdminError) -> ConsoleError {
        ConsoleError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}
