//! `pgfleet tenant`: provisioning the tenants of a database with tenancy (create, list, show,
//! suspend, resume, drop) and the row-level security policies of the row model. A thin shell over
//! `pgfleet-tenant`; see docs/tenancy.md, "pgfleet tenant".

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use pgfleet_config::Config;
use pgfleet_meta::TenantState;
use pgfleet_migrate::MigrationSet;
use pgfleet_tenant::provision::APPLICATION_NAME;
use pgfleet_tenant::report::{
    created_text, dropped_text, list_text, policies_text, show_text, state_text,
};
use pgfleet_tenant::{
    check_policies, choose_database, tool_login, CreateOptions, TenantError, Tenants,
};

use crate::serve;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The config file (clusters, databases with tenancy, metadata database).
    #[arg(long, global = true, default_value = "pgfleet.toml")]
    config: PathBuf,
    /// The pgfleet database whose tenants to manage; may be left out when only one database has
    /// a [databases.NAME.tenancy] table.
    #[arg(long, global = true)]
    database: Option<String>,
    /// Server login for schemas, databases and policies: a [users.NAME] of the config (its
    /// server_user and server_password), or a server user name (password from PGPASSWORD).
    /// Default: the config's only non-admin user with a server password, else `postgres`.
    #[arg(long, global = true)]
    user: Option<String>,
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Create a tenant: its schema or database, its tenant migrations, its directory entry.
    Create {
        /// Tenant name: 1 to 48 lower-case letters, digits or `_`, starting with a letter.
        name: String,
        /// Put it on this shard (sharded databases) instead of the shard its name hashes to.
        #[arg(long)]
        shard: Option<u32>,
        /// Owner of the new schema or database (default: the login).
        #[arg(long)]
        owner: Option<String>,
        /// Migrations directory whose tenant/ migrations the new tenant gets; default
        /// `migrations` when it exists.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// List the tenants of the database.
    List,
    /// One tenant's model, schema or database, shard, state and times.
    Show {
        /// Tenant name.
        name: String,
    },
    /// Suspend a tenant: its sessions get an error until it is resumed.
    Suspend {
        /// Tenant name.
        name: String,
    },
    /// Resume a suspended tenant.
    Resume {
        /// Tenant name.
        name: String,
    },
    /// Drop a tenant: its schema (CASCADE) or database, and its directory entry. Row model: only
    /// the directory entry; the rows stay.
    Drop {
        /// Tenant name.
        name: String,
        /// Really drop it (without this, the command says what it would drop and stops).
        #[arg(long)]
        confirm: bool,
    },
    /// Row model: check that every table with the tenant column has row-level security and the
    /// pgfleet_tenant_isolation policy, on every shard; exit status 1 when one lacks it.
    Policies {
        /// Fix what is missing (needs the tables' owner or a superuser as --user).
        #[arg(long)]
        apply: bool,
    },
}

/// Runs the subcommand; exit status 1 on an error or, for `policies`, a table left without
/// its policy.
pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    run(args).map_err(|e| match e.downcast::<TenantError>() {
        // Its messages are whole sentences that already carry the server's words; printing its
        // source chain too would repeat them ("… (SQLSTATE 42501): db error: ERROR: …").
        Ok(e) => anyhow::anyhow!("{e}"),
        Err(e) => e,
    })
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)
        .map_err(|e| anyhow::anyhow!("{}:\n{e}", args.config.display()))?;
    let database = choose_database(&config, args.database.as_deref())?;
    let login = tool_login(
        &config,
        args.user.as_deref(),
        std::env::var("PGPASSWORD").ok(),
        APPLICATION_NAME,
    );
    init_tracing();
    serve::tokio_runtime()?.block_on(async move {
        if let Sub::Policies { apply } = args.command {
            let report = check_policies(&config, &database, &login, apply).await?;
            print!("{}", policies_text(&report));
            for w in report.warnings() {
                eprintln!("warning: {w}");
            }
            return Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        let tenants = Tenants::new(config, &database, login)?;
        let text = match args.command {
            Sub::Create {
                name,
                shard,
                owner,
                dir,
            } => {
                let (migrations, dir_text) = load_migrations(dir)?;
                let opts = CreateOptions {
                    shard,
                    owner,
                    migrations,
                };
                let created = tenants.create(&name, opts).await?;
                created_text(&created, dir_text.as_deref())
            }
            Sub::List => {
                let model = tenants.scope()?.tenancy.model;
                list_text(tenants.database(), model, &tenants.list().await?)
            }
            Sub::Show { name } => show_text(&tenants.show(&name).await?),
            Sub::Suspend { name } => {
                state_text(&tenants.set_state(&name, TenantState::Suspended).await?)
            }
            Sub::Resume { name } => {
                state_text(&tenants.set_state(&name, TenantState::Active).await?)
            }
            Sub::Drop { name, confirm } => {
                dropped_text(&tenants.drop_tenant(&name, confirm).await?)
            }
            Sub::Policies { .. } => unreachable!("handled above"),
        };
        print!("{text}");
        Ok(ExitCode::SUCCESS)
    })
}

/// The migrations for a new tenant: `--dir` (which must exist), else `migrations` when it
/// exists, else none. Returns them with the directory's name for messages.
fn load_migrations(dir: Option<PathBuf>) -> anyhow::Result<(Option<MigrationSet>, Option<String>)> {
    let (path, explicit) = match dir {
        Some(d) => (d, true),
        None => (PathBuf::from("migrations"), false),
    };
    let shown = Some(path.display().to_string());
    if !explicit && !path.exists() {
        return Ok((None, shown));
    }
    let set = MigrationSet::load(&path)
        .with_context(|| format!("reading migrations from {} (--dir)", path.display()))?;
    Ok((Some(set), shown))
}

/// Warnings and errors only on stderr (RUST_LOG overrides): the report is the output.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
