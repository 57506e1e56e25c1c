//! Admin console commands: text → [`Command`]. Pure; the console loop has already split the query
//! text on `;` and trimmed each statement.

use crate::error::AdminError;

/// What SHOW lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShowTarget {
    /// `SHOW POOLS`: one row per (user, database) pool.
    Pools,
    /// `SHOW CLIENTS`: one row per connected client.
    Clients,
    /// `SHOW SERVERS`: one row per open server connection.
    Servers,
    /// `SHOW STATS`: one row of process-wide counters.
    Stats,
    /// `SHOW CONFIG`: the effective configuration as key/value rows.
    Config,
    /// `SHOW REPLICATION`: one row per endpoint of each cluster: roles, health, lag, load.
    Replication,
    /// `SHOW VERSION`: the pgfleet version.
    Version,
    /// `SHOW TRANSACTIONS`: two-phase (cross-shard) transactions in flight or in doubt.
    Transactions,
    /// `SHOW TENANTS`: per-tenant counters (bounded to the tenants seen most recently).
    Tenants,
    /// `SHOW HELP`: the command list.
    Help,
}

/// One admin console command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `SHOW <target>`.
    Show(ShowTarget),
    /// `RELOAD`: re-read the config file.
    Reload,
    /// `PAUSE`: hold new transactions and wait until no server connection is busy.
    Pause,
    /// `RESUME`: undo PAUSE.
    Resume,
    /// `SHUTDOWN`: start a graceful shutdown.
    Shutdown,
}

/// Every command with a one-line description, in the order SHOW HELP lists them.
pub const HELP: [(&str, &str); 14] = [
    (
        "SHOW POOLS",
        "one row per (user, database) pool: sizes, connections, waits, counters",
    ),
    ("SHOW CLIENTS", "one row per connected client"),
    ("SHOW SERVERS", "one row per open server connection"),
    ("SHOW STATS", "process-wide counters since start"),
    (
        "SHOW REPLICATION",
        "one row per cluster endpoint: roles, health, replay position, lag, load, write target",
    ),
    (
        "SHOW CONFIG",
        "the effective configuration (passwords hidden)",
    ),
    ("SHOW VERSION", "the pgfleet version"),
    (
        "SHOW TRANSACTIONS",
        "cross-shard two-phase transactions in flight or in doubt",
    ),
    (
        "SHOW TENANTS",
        "per-tenant transactions, statements, errors and server time",
    ),
    ("SHOW HELP", "this list"),
    (
        "RELOAD",
        "re-read the config file; on problems the running config is kept",
    ),
    (
        "PAUSE",
        "hold new transactions and wait until no server connection is busy",
    ),
    ("RESUME", "let held transactions continue"),
    ("SHUTDOWN", "start a graceful shutdown of the whole process"),
];

/// The command list as it appears in the unknown-command error.
pub const COMMAND_LIST: &str = "SHOW POOLS, SHOW CLIENTS, SHOW SERVERS, SHOW STATS, \
SHOW REPLICATION, SHOW CONFIG, SHOW VERSION, SHOW TRANSACTIONS, SHOW TENANTS, RELOAD, PAUSE, RESUME, SHUTDOWN";

impl Command {
    /// Parses one statement: case-insensitive, any whitespace between words.
    pub fn parse(text: &str) -> Result<Command, AdminError> {
        let words: Vec<String> = text
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let command = match words.as_slice() {
            ["show", what] => Command::Show(match *what {
                "pools" => ShowTarget::Pools,
                "clients" => ShowTarget::Clients,
                "servers" => ShowTarget::Servers,
                "stats" => ShowTarget::Stats,
                "replication" => ShowTarget::Replication,
                "config" => ShowTarget::Config,
                "version" => ShowTarget::Version,
                "help" => ShowTarget::Help,
                "transactions" => ShowTarget::Transactions,
                "tenants" => ShowTarget::Tenants,
                _ => return Err(unknown(text)),
            }),
            ["reload"] => Command::Reload,
            ["pause"] => Command::Pause,
            ["resume"] => Command::Resume,
            ["shutdown"] => Command::Shutdown,
            _ => return Err(unknown(text)),
        };
        Ok(command)
    }

    /// The command tag a successful non-SHOW command answers with.
    pub fn tag(self) -> &'static str {
        match self {
            Command::Show(_) => "SHOW",
            Command::Reload => "RELOAD",
            Command::Pause => "PAUSE",
            Command::Resume => "RESUME",
            Command::Shutdown => "SHUTDOWN",
        }
    }
}

fn unknown(text: &str) -> AdminError {
    AdminError::UnknownCommand(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command_in_any_case_and_spacing() {
        let cases = [
            ("SHOW POOLS", Command::Show(ShowTarget::Pools)),
            ("show pools", Command::Show(ShowTarget::Pools)),
            ("  Show \t  Clients  ", Command::Show(ShowTarget::Clients)),
            ("show\nservers", Command::Show(ShowTarget::Servers)),
            ("SHOW STATS", Command::Show(ShowTarget::Stats)),
            ("show  Replication", Command::Show(ShowTarget::Replication)),
            ("show Config", Command::Show(ShowTarget::Config)),
            ("SHOW version", Command::Show(ShowTarget::Version)),
            ("show help", Command::Show(ShowTarget::Help)),
            ("RELOAD", Command::Reload),
            (" reload ", Command::Reload),
            ("Pause", Command::Pause),
            ("resume", Command::Resume),
            ("SHUTDOWN", Command::Shutdown),
        ];
        for (text, want) in cases {
            assert_eq!(Command::parse(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn rejects_unknown_commands_with_the_command_list() {
        for bad in [
            "",
            "SHOW",
            "SHOW DATABASES",
            "SHOW POOLS NOW",
            "RELOAD CONFIG",
            "SELECT 1",
            "showpools",
        ] {
            match Command::parse(bad) {
                Err(AdminError::UnknownCommand(cmd)) => assert_eq!(cmd, bad.trim()),
                other => panic!("{bad:?} parsed as {other:?}"),
            }
        }
        let err = Command::parse(" select 1 ").err();
        let Some(err) = err else {
            panic!("select parsed")
        };
        assert_eq!(err.code(), "42601");
        assert_eq!(
            err.to_string(),
            format!("pgfleet: unknown admin command \"select 1\"; try {COMMAND_LIST}")
        );
    }

    #[test]
    fn help_lists_every_command_of_the_error_message() {
        for name in COMMAND_LIST.split(", ") {
            assert!(HELP.iter().any(|(c, _)| *c == name), "{name}");
        }
    }

    #[test]
    fn tags() {
        assert_eq!(Command::Reload.tag(), "RELOAD");
        assert_eq!(Command::Pause.tag(), "PAUSE");
        assert_eq!(Command::Resume.tag(), "RESUME");
        assert_eq!(Command::Shutdown.tag(), "SHUTDOWN");
        assert_eq!(Command::Show(ShowTarget::Pools).tag(), "SHOW");
    }
}
