//! `pgfleet migrate`: versioned migrations over every target of a pgfleet database (its shared
//! target(s) and every tenant schema or database). A thin shell over `pgfleet-migrate`; see
//! docs/migrate.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use pgfleet_config::{units::parse_duration, Config};
use pgfleet_migrate::lint::{lint_set, rule, LintContext, RULES};
use pgfleet_migrate::report::{run_text, status_text};
use pgfleet_migrate::{
    Command, Event, EventSink, Fleet, MigrationSet, RunOptions, Selection, TargetKind,
};

use crate::serve;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Sub,
}

/// Options every subcommand takes.
#[derive(clap::Args)]
struct Common {
    /// The config file (clusters, databases, tenancy, metadata database).
    #[arg(long, global = true, default_value = "pgfleet.toml")]
    config: PathBuf,
    /// The migrations directory (shared/, tenant/).
    #[arg(long, global = true, default_value = "migrations")]
    dir: PathBuf,
    /// The pgfleet database to migrate; may be left out when the config has only one.
    #[arg(long, global = true)]
    database: Option<String>,
    /// Server login: a [users.NAME] of the config (its server_user and server_password), or a
    /// server user name (password from PGPASSWORD). Default: the config's only non-admin user
    /// with a server password (as in the sandbox's config), else `postgres`.
    #[arg(long, global = true)]
    user: Option<String>,
    /// Only these tenants (repeatable); shared targets are left out.
    #[arg(long, global = true)]
    tenant: Vec<String>,
    /// Only targets of this kind: shared or tenant.
    #[arg(long, global = true, value_parser = parse_kind)]
    kind: Option<TargetKind>,
    /// Concurrent targets per server.
    #[arg(long, global = true, default_value_t = 4)]
    jobs: usize,
    /// Keep starting targets after one failed.
    #[arg(long, global = true)]
    continue_on_error: bool,
    /// lock_timeout for migrations ("0s": none).
    #[arg(long, global = true, default_value = "5s", value_parser = parse_duration)]
    lock_timeout: Duration,
    /// Retries after a lock timeout (the wait doubles from 500ms).
    #[arg(long, global = true, default_value_t = 5)]
    lock_retries: u32,
    /// statement_timeout for migrations ("0s": none).
    #[arg(long, global = true, default_value = "30m", value_parser = parse_duration)]
    statement_timeout: Duration,
    /// How long to wait for another runner that is migrating the same target.
    #[arg(long, global = true, default_value = "30s", value_parser = parse_duration)]
    lock_wait: Duration,
    /// Accept lint findings of this rule (repeatable).
    #[arg(long, global = true)]
    allow: Vec<String>,
    /// List every target instead of a summary and the outliers.
    #[arg(long, short, global = true)]
    verbose: bool,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Each target's version and pending count: a summary plus the outliers.
    Status,
    /// Apply pending migrations (lints first).
    Up {
        /// Highest version to apply.
        #[arg(long)]
        to: Option<i64>,
        /// Print what would run where, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply a pending migration older than the newest applied one.
        #[arg(long)]
        out_of_order: bool,
    },
    /// Revert the newest applied migration, or every one above --to.
    Down {
        /// Version to go back to (exclusive).
        #[arg(long)]
        to: Option<i64>,
        /// Print what would run where, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Exactly what `up` would run where (same as `up --dry-run`).
    Plan {
        /// Highest version to consider.
        #[arg(long)]
        to: Option<i64>,
    },
    /// Create the next migration file.
    New {
        /// Name, e.g. add_notes_body (letters, digits, `_`).
        name: String,
        /// A tenant migration (tenant/) instead of a shared one (shared/).
        #[arg(long = "for-tenants")]
        for_tenants: bool,
        /// Also create the down script.
        #[arg(long)]
        down: bool,
    },
    /// Lint the migration files for unsafe DDL.
    Lint,
    /// Accept edited, already applied files: record their current checksums.
    Repair,
}

fn parse_kind(text: &str) -> Result<TargetKind, String> {
    TargetKind::parse(text).ok_or_else(|| format!("`{text}`: write shared or tenant"))
}

/// Runs the subcommand; exit status 1 when a target failed or lint found something.
pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    if let Sub::New {
        name,
        for_tenants,
        down,
    } = &args.command
    {
        return new_file(&args.common.dir, name, *for_tenants, *down);
    }
    for a in &args.common.allow {
        if rule(a).is_none() {
            let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
            bail!(
                "unknown lint rule `{a}` in --allow; rules: {}",
                ids.join(", ")
            );
        }
    }
    let set = MigrationSet::load(&args.common.dir).with_context(|| {
        format!(
            "reading migrations from {} (--dir)",
            args.common.dir.display()
        )
    })?;
    let kinds = match args.common.kind {
        Some(k) => vec![k],
        None if !args.common.tenant.is_empty() => vec![TargetKind::Tenant],
        None => TargetKind::ALL.to_vec(),
    };
    if let Sub::Lint = args.command {
        return Ok(lint(&set, &kinds, &args.common, true));
    }
    let config = Config::load(&args.common.config)
        .map_err(|e| anyhow::anyhow!("{}:\n{e}", args.common.config.display()))?;
    let database = choose_database(&config, args.common.database.as_deref())?;
    let opts = run_options(&config, &args.common);
    init_tracing();
    serve::tokio_runtime()?.block_on(async move {
        let selection = Selection {
            kinds: args.common.kind.into_iter().collect(),
            tenants: args.common.tenant.clone(),
        };
        let fleet = Fleet::open(&config, set, &database, selection).await?;
        let (command, dry_run) = match args.command {
            Sub::Status => {
                let report = fleet.status(&opts, progress()).await;
                print!("{}", status_text(&report, fleet.migrations(), args.common.verbose));
                let ok = report.is_success()
                    && !report.results.iter().any(|r| matches!(&r.outcome, pgfleet_migrate::Outcome::Status(s) if !s.problems.is_empty()));
                return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
            }
            Sub::Up { to, dry_run, out_of_order } => (Command::Up { to, out_of_order }, dry_run),
            Sub::Plan { to } => (Command::Up { to, out_of_order: false }, true),
            Sub::Down { to, dry_run } => (Command::Down { to }, dry_run),
            Sub::Repair => (Command::Repair, false),
            Sub::New { .. } | Sub::Lint => unreachable!("handled above"),
        };
        let is_up = matches!(command, Command::Up { .. });
        let clean = !is_up || lint(fleet.migrations(), &kinds, &args.common, !dry_run) == ExitCode::SUCCESS;
        if !clean && !dry_run {
            eprintln!(
                "pgfleet migrate: not applying anything; fix the findings, or accept a rule with \
                 --allow RULE or a header `-- pgfleet: allow=RULE`"
            );
            return Ok(ExitCode::FAILURE);
        }
        let report = fleet.run(command, dry_run, &opts, progress()).await;
        print!("{}", run_text(&report, args.common.verbose));
        Ok(if report.is_success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
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

/// Prints lint findings; FAILURE when there are any.
fn lint(set: &MigrationSet, kinds: &[TargetKind], common: &Common, fail: bool) -> ExitCode {
    let ctx = LintContext {
        runner_lock_timeout_ms: u64::try_from(common.lock_timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let findings = lint_set(set, kinds, &common.allow, ctx);
    for f in &findings {
        eprintln!("{}: {f}", if fail { "error" } else { "warning" });
    }
    if findings.is_empty() {
        println!(
            "lint: {} migration file(s), no findings",
            set.migrations.len()
        );
        ExitCode::SUCCESS
    } else {
        eprintln!("lint: {} finding(s)", findings.len());
        ExitCode::FAILURE
    }
}

fn choose_database(config: &Config, asked: Option<&str>) -> anyhow::Result<String> {
    let names: Vec<&String> = config.databases.keys().collect();
    match (asked, names.as_slice()) {
        (Some(name), _) => Ok(name.to_string()),
        (None, [only]) => Ok((*only).clone()),
        (None, []) => bail!("the config defines no databases"),
        (None, many) => {
            let list: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
            bail!(
                "the config has several databases ({}); choose one with --database",
                list.join(", ")
            )
        }
    }
}

fn run_options(config: &Config, c: &Common) -> RunOptions {
    // The same login choice as `pgfleet tenant` (one rule for every tool).
    let mut o = RunOptions::new(pgfleet_tenant::login::tool_login(
        config,
        c.user.as_deref(),
        std::env::var("PGPASSWORD").ok(),
        "pgfleet-migrate",
    ));
    o.jobs = c.jobs.max(1);
    o.continue_on_error = c.continue_on_error;
    o.lock_timeout = c.lock_timeout;
    o.lock_retries = c.lock_retries;
    o.statement_timeout = c.statement_timeout;
    o.lock_wait = c.lock_wait;
    o
}

/// A progress bar with ETA per phase (hidden when stderr is not a terminal); notes go above it.
fn progress() -> EventSink {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} targets, {per_sec}, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let bar = Arc::new(bar);
    Arc::new(move |event| match event {
        Event::Start { targets } => {
            bar.reset();
            bar.set_length(targets as u64);
        }
        Event::Finished { .. } => bar.inc(1),
        Event::Note { target, message } => {
            if bar.is_hidden() {
                eprintln!("note: {target}: {message}");
            } else {
                bar.println(format!("note: {target}: {message}"));
            }
        }
    })
}

/// `new NAME`: the next version in shared/ or tenant/, with a header saying what it is.
fn new_file(dir: &Path, name: &str, for_tenants: bool, down: bool) -> anyhow::Result<ExitCode> {
    let clean: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if clean.trim_matches('_').is_empty() {
        bail!("give the migration a name, e.g. `pgfleet migrate new add_notes_body`");
    }
    let next = if dir.exists() {
        MigrationSet::load(dir)
            .with_context(|| format!("reading migrations from {}", dir.display()))?
            .next_version()
    } else {
        1
    };
    let kind = if for_tenants {
        TargetKind::Tenant
    } else {
        TargetKind::Shared
    };
    let folder = dir.join(kind.as_str());
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let stem = format!("V{next:04}__{clean}");
    let up = folder.join(format!("{stem}.sql"));
    let what = match kind {
        TargetKind::Shared => "runs once per shard (or on the database's cluster)",
        TargetKind::Tenant => "runs in every tenant schema or tenant database",
    };
    std::fs::write(&up, format!("-- {stem}: {what}.\n-- One transaction unless a statement needs to run outside one (e.g. CREATE INDEX CONCURRENTLY).\n\n"))
        .with_context(|| format!("writing {}", up.display()))?;
    println!("{}", up.display());
    if down {
        let path = folder.join(format!("{stem}.down.sql"));
        std::fs::write(&path, format!("-- Reverts {stem}.\n\n"))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use pgfleet_config::Config;
    use pgfleet_tenant::login::default_user;

    fn config(users: &str) -> Config {
        let text = format!(
            "[clusters.main]\nservers = [{{ host = \"127.0.0.1\" }}]\n[databases.app]\ncluster = \"main\"\n{users}"
        );
        match Config::from_toml_str(&text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_default_login_is_the_only_user_with_a_server_password() {
        // The sandbox's config: one application user with a plain password, one admin.
        let sandbox = config(
            "[users.app]\npassword = \"app\"\n[users.admin]\npassword = \"admin\"\nadmin = true\n",
        );
        assert_eq!(default_user(&sandbox), "app");
        let two = config("[users.a]\npassword = \"a\"\n[users.b]\npassword = \"b\"\n");
        assert_eq!(
            default_user(&two),
            "postgres",
            "ambiguous: the usual superuser"
        );
        let none = config("[users.a]\nauth_method = \"trust\"\n");
        assert_eq!(default_user(&none), "postgres");
    }
}
