//! The pgfleet admin console: commands typed by `admin = true` users connected to the database
//! `pgfleet` (see docs/admin.md). The proxy's console loop splits each simple query on `;` and
//! hands every statement to [`AdminConsole`].
//!
//! Module map, in the order a command flows:
//! - [`command`]: text → [`Command`] (pure);
//! - [`snapshot`]: plain copies of pools, clients, servers and cluster views taken from the
//!   runtime;
//! - [`show`]: SHOW POOLS/CLIENTS/SERVERS/STATS/REPLICATION/VERSION/HELP tables from snapshots
//!   (pure);
//! - [`config_rows`]: SHOW CONFIG rows from a config snapshot, passwords hidden (pure);
//! - [`control`]: RELOAD, PAUSE, RESUME, SHUTDOWN on the runtime;
//! - [`metrics`]: the same counters, pools and replication views as Prometheus text (pure);
//! - [`http`]: the HTTP endpoint serving them (`proxy.metrics_listen`, `GET /metrics`);
//! - [`tenants`]: SHOW TENANTS from the proxy's per-tenant counters;
//! - [`text`]: timestamp and duration rendering;
//! - [`error`]: the [`AdminError`] and the SQLSTATE each case answers with.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod command;
pub mod config_rows;
pub mod control;
pub mod error;
pub mod http;
pub mod metrics;
pub mod show;
pub mod snapshot;
pub mod tenants;
pub mod text;

use std::sync::Arc;

use pgfleet_proxy::console::{Console, ConsoleFuture, ConsoleReply};
use pgfleet_proxy::Runtime;

pub use command::{Command, ShowTarget};
pub use error::AdminError;

use snapshot::{ClientSnapshot, ServerSnapshot};

/// The admin console commands; plug into [`Runtime::new`] as the console.
pub struct AdminConsole;

impl Console for AdminConsole {
    fn execute<'a>(&'a self, rt: &'a Arc<Runtime>, command: &'a str) -> ConsoleFuture<'a> {
        Box::pin(async move {
            let result = run(rt, command).await;
            if let Err(e) = &result {
                tracing::debug!(command, code = e.code(), "admin command failed");
            }
            result.map_err(Into::into)
        })
    }
}

/// Parses and runs one admin command.
pub async fn run(rt: &Runtime, text: &str) -> Result<ConsoleReply, AdminError> {
    let command = Command::parse(text)?;
    tracing::debug!(?command, "admin command");
    match command {
        Command::Show(target) => Ok(show_target(rt, target)),
        Command::Reload => control::reload(rt).map(|()| done(command)),
        Command::Pause => control::pause(rt).await.map(|()| done(command)),
        Command::Resume => {
            control::resume(rt);
            Ok(done(command))
        }
        Command::Shutdown => {
            control::shutdown(rt);
            Ok(done(command))
        }
    }
}

fn done(command: Command) -> ConsoleReply {
    ConsoleReply::Done(command.tag().to_owned())
}

fn show_target(rt: &Runtime, target: ShowTarget) -> ConsoleReply {
    match target {
        ShowTarget::Pools => show::pools(&snapshot::pools_of(rt)),
        ShowTarget::Clients => {
            let clients: Vec<ClientSnapshot> = rt
                .clients()
                .list()
                .iter()
                .map(|c| ClientSnapshot::of(c))
                .collect();
            show::clients(&clients)
        }
        ShowTarget::Servers => {
            let servers: Vec<ServerSnapshot> = rt
                .pools()
                .servers
                .list()
                .iter()
                .map(|s| ServerSnapshot::of(s))
                .collect();
            show::servers(&servers)
        }
        ShowTarget::Stats => show::stats(rt.stats(), rt.clients().len(), rt.clients().traffic()),
        ShowTarget::Replication => show::replication(&snapshot::replication_of(rt)),
        ShowTarget::Config => config_rows::config(&rt.config()),
        ShowTarget::Version => show::version(),
        ShowTarget::Help => show::help(),
        ShowTarget::Transactions => show::transactions(&rt.twophase.list()),
        ShowTarget::Tenants => tenants::tenants(rt),
    }
}

#[cfg(test)]
mod tests;
