//! The `pgfleet` binary: one thin subcommand per job (see `pgfleet --help`).
//!
//! - `serve`: run the proxy from a config file.
//! - `check-config`: validate a config file and report every problem with its key path.
//! - `sandbox`: real local PostgreSQL clusters plus the proxy, in one command.
//! - `migrate`: versioned schema migrations across every shard and tenant (docs/migrate.md).
//! - `tenant`: provisioning tenants and row-level-security policies (docs/tenancy.md).
//! - `ids`: installing `pgfleet.id()`, globally unique ids, on every shard (docs/sharding.md).

mod check_config;
mod ids;
mod migrate;
mod sandbox;
mod serve;
mod tenant;

use clap::{Parser, Subcommand};

/// pgfleet: one PostgreSQL endpoint in front of a fleet of PostgreSQL servers.
#[derive(Parser)]
#[command(name = "pgfleet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve(serve::Args),
    /// Validate a config file; exit status 1 when it has problems.
    CheckConfig(check_config::Args),
    /// Start local PostgreSQL clusters and the proxy in front of them.
    Sandbox(sandbox::Args),
    /// Versioned schema migrations across every shard and tenant.
    Migrate(Box<migrate::Args>),
    /// Tenant provisioning: create, list, show, suspend, resume, drop; row-level security policies.
    Tenant(tenant::Args),
    /// Globally unique ids for sharded tables: install pgfleet.id() on every shard.
    Ids(ids::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::exec(args),
        Command::CheckConfig(args) => check_config::exec(args),
        Command::Sandbox(args) => sandbox::exec(args),
        Command::Migrate(args) => migrate::exec(*args),
        Command::Tenant(args) => tenant::exec(args),
        Command::Ids(args) => ids::exec(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pgfleet: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
