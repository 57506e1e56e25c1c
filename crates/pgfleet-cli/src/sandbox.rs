//! `pgfleet sandbox [--dir DIR] [--port PORT] [--replicas M] [--shards N] [--tenants]`: a
//! primary, M streaming replicas and the proxy in front of them, on this machine, in one command;
//! with `--shards N`, N such clusters as the shards of a sharded database with demo data; with
//! `--tenants`, demo tenants in each isolation model.
//!
//! First run: initdb `DIR/primary`, role and database `app`, `pg_basebackup` replicas
//! `DIR/replica1..M`, server ports after PORT saved in `DIR/ports`. A rerun reuses all of it (and
//! adds missing replicas). Every run rewrites `DIR/pgfleet.toml`, validates it, serves it, prints
//! `ready: postgres://app:app@127.0.0.1:PORT/app` on stdout and, on Ctrl-C or SIGTERM, stops the
//! proxy gracefully and then every server it started. Server logs: `DIR/<name>/log`.
//!
//! With `--shards N` (recorded in `DIR/shard-count`; a rerun must repeat it): clusters `shard0` ..
//! `shard{N-1}` in `DIR/shard<i>` with replicas `DIR/shard<i>-replica<j>`, each with role and
//! database `app`; the metadata database `pgfleet_meta` on shard0; database `app` sharded in the
//! config; and on each shard primary that has none of them yet, the demo tables of
//! `demo` with that shard's rows (placed by pgfleet's own shard map).
//!
//! With `--tenants`: the metadata database `pgfleet_meta` on the first cluster (if `--shards`
//! has not made it), databases `saas_schema`, `saas_row` and `saas_db` with tenancy in the
//! config, and tenants `acme` and `globex` in each, provisioned with `pgfleet-tenant` (see
//! `tenants`). After the ready line, the tenants' URLs.
//!
//! The servers are our children in their own process group, so a terminal Ctrl-C reaches only us
//! and the shutdown happens in order: proxy, replicas, primary.
//!
//! Modules: `ports` (the port map), `config_file` (the generated pgfleet.toml), `shards` (the
//! shard count of a directory, filling the shards), `demo` (demo schema and rows per shard,
//! pure), `tenants` (the multi-tenancy demo).

mod config_file;
mod demo;
mod ports;
mod shards;
mod tenants;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::Context;
use pgfleet_config::{Config, ServerRole};
use pgfleet_localpg::{
    check_socket_path, conf, psql, stop_leftover, InitDb, PgEnv, Postmaster, PsqlTarget,
    StartFailure, StartOptions,
};

use crate::serve;
use config_file::{config_text, ConfigServer, Layout};
use ports::PortMap;
use shards::{check_shard_count, load_demo};

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Directory for the data directories, their logs, the port map and the generated
    /// pgfleet.toml; created when missing, reused by later runs.
    #[arg(long, default_value = ".pgfleet-sandbox")]
    dir: PathBuf,
    /// The proxy's port on 127.0.0.1; new servers take the free ports after it.
    #[arg(long, default_value_t = 6432)]
    port: u16,
    /// Streaming replicas to run (at least: replicas created by an earlier run start too).
    #[arg(long, default_value_t = 0)]
    replicas: u16,
    /// Shard clusters (2 to 32) of a sharded database `app` with demo tables customers, orders
    /// (sharded) and countries (reference), each cluster with --replicas replicas. Fixed by the
    /// first run in DIR. Default: one cluster, no sharding.
    #[arg(long, value_parser = clap::value_parser!(u16).range(2..=32))]
    shards: Option<u16>,
    /// Multi-tenancy demo: databases saas_schema, saas_row and saas_db (one per isolation
    /// model, on the first cluster) with tenants acme and globex, reachable as users app.acme
    /// and app.globex; a metadata database holds the tenant directory.
    #[arg(long)]
    tenants: bool,
}

/// The only client-facing names; the config and the ready line both use them.
const APP: &str = "app";
const PRIMARY: &str = "primary";
/// The metadata database of a sharded sandbox or one with tenants, on the first cluster, owned
/// by `app`.
const META_DB: &str = "pgfleet_meta";
/// How long a start retries while leftovers of an earlier server still hold the directory.
const BUSY_RETRY: Duration = Duration::from_secs(10);

/// Written into every new primary's postgresql.conf (replicas copy it with pg_basebackup).
const SETTINGS: &[(&str, &str)] = &[
    ("wal_level", "replica"),
    ("max_wal_senders", "10"),
    ("max_replication_slots", "10"),
    // Replicas use no slot: this much WAL stays for a replica that was stopped for a while.
    ("wal_keep_size", "256MB"),
    ("hot_standby", "on"),
    ("max_connections", "200"),
    // Cross-shard writes commit with PREPARE TRANSACTION (docs/sharding.md).
    ("max_prepared_transactions", "64"),
    ("password_encryption", "scram-sha-256"),
];

/// Passwords on TCP for everyone; the `postgres` superuser is trusted on the unix socket (in the
/// data directory, mode 0700) for our own psql, and for replication from 127.0.0.1 so
/// pg_basebackup and the standbys connect without a password.
const HBA: &[&str] = &[
    "# Written by `pgfleet sandbox`.",
    "# TYPE  DATABASE     USER      ADDRESS        METHOD",
    "local   all          postgres                 trust",
    "local   replication  postgres                 trust",
    "local   all          all                      scram-sha-256",
    "host    replication  postgres  127.0.0.1/32   trust",
    "host    all          all       127.0.0.1/32   scram-sha-256",
];

/// Runs until Ctrl-C / SIGTERM (or the admin console's SHUTDOWN), then stops everything.
pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    serve::init_tracing();
    serve::tokio_runtime()?.block_on(async move {
        // Watch for signals from the very start: setup is never abandoned half-way, and whatever
        // was started is stopped.
        let mut stop = tokio::spawn(serve::stop_signal());
        tokio::task::yield_now().await;
        let mut setup = tokio::task::spawn_blocking(move || Fleet::up(&args));
        let fleet = tokio::select! {
            fleet = &mut setup => fleet.context("sandbox setup panicked")??,
            _ = &mut stop => {
                tracing::info!("signal received during setup; stopping when it finishes");
                let fleet = setup.await.context("sandbox setup panicked")??;
                shut_down(fleet).await?;
                return Ok(ExitCode::SUCCESS);
            }
        };
        let served = serve_until_stopped(&fleet, stop).await;
        // Stop the servers whatever happened to the proxy.
        shut_down(fleet).await?;
        served?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Validates and serves the generated config, prints the ready line, waits for a stop signal and
/// shuts the proxy down gracefully.
async fn serve_until_stopped(
    fleet: &Fleet,
    stop: tokio::task::JoinHandle<()>,
) -> anyhow::Result<()> {
    let config = Config::load(&fleet.config_path)
        .map_err(|e| anyhow::anyhow!("{}:\n{e}", fleet.config_path.display()))?;
    let proxy = serve::start(config, Some(fleet.config_path.clone())).await?;
    let rt = proxy.runtime().clone();
    let listen = proxy.local_addr().context("reading the proxy's address")?;
    let mut run = tokio::spawn(proxy.run());
    tracing::info!(%listen, config = %fleet.config_path.display(), "sandbox is ready");
    // The listener is bound: clients connecting from now on are served.
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "ready: postgres://{APP}:{APP}@127.0.0.1:{}/{APP}",
        listen.port()
    )
    .and_then(|()| {
        if fleet.tenants {
            write!(out, "{}", tenants::hint(listen.port()))?;
        }
        out.flush()
    })
    .context("writing the ready line to stdout")?;
    drop(out);
    tokio::select! {
        _ = stop => {
            tracing::info!("shutting down");
            rt.shutdown();
            run.await.context("proxy task panicked")?;
        }
        done = &mut run => done.context("proxy task panicked")?,
    }
    Ok(())
}

async fn shut_down(fleet: Fleet) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || fleet.down())
        .await
        .context("stopping the servers panicked")?
}

/// The servers this process started, in start order (each cluster's primary first).
struct Fleet {
    config_path: PathBuf,
    servers: Vec<Server>,
    /// Whether the multi-tenancy demo is set up (`--tenants`).
    tenants: bool,
}

/// One started server.
struct Server {
    /// Its cluster in the config (`main`, `shard<i>`).
    cluster: String,
    /// Its directory name under DIR, also its name in the port map and the logs.
    name: String,
    role: ServerRole,
    postmaster: Postmaster,
}

/// The names of one cluster: in the config, and of its servers' directories.
struct ClusterNames {
    cluster: String,
    primary: String,
    replica_prefix: String,
}

impl ClusterNames {
    /// The unsharded sandbox: `main` = `primary` + `replica<i>`.
    fn single() -> ClusterNames {
        ClusterNames {
            cluster: "main".into(),
            primary: PRIMARY.into(),
            replica_prefix: "replica".into(),
        }
    }

    /// Shard `i`: `shard<i>` = `shard<i>` + `shard<i>-replica<j>`.
    fn shard(i: u16) -> ClusterNames {
        ClusterNames {
            cluster: format!("shard{i}"),
            primary: format!("shard{i}"),
            replica_prefix: format!("shard{i}-replica"),
        }
    }

    fn replica(&self, i: usize) -> String {
        format!("{}{i}", self.replica_prefix)
    }
}

impl Fleet {
    /// Creates what is missing, starts every server and writes pgfleet.toml. On error the servers
    /// started so far are stopped when the partial fleet is dropped.
    fn up(args: &Args) -> anyhow::Result<Fleet> {
        let started = Instant::now();
        let env = PgEnv::detect()?;
        tracing::info!(bin = %env.bins.dir().display(), version = env.bins.version(), "PostgreSQL binaries");
        std::fs::create_dir_all(&args.dir)
            .with_context(|| format!("creating {}", args.dir.display()))?;
        let dir = std::fs::canonicalize(&args.dir)
            .with_context(|| format!("resolving {}", args.dir.display()))?;
        env.run_as
            .ensure_can_enter(&dir)
            .context("choosing the sandbox directory (--dir)")?;
        let longest_name = match args.shards {
            None => "replica99999".to_string(),
            Some(n) => ClusterNames::shard(n.saturating_sub(1)).replica(99999),
        };
        check_socket_path(&dir.join(longest_name)).context("choose a shorter --dir")?;
        check_shard_count(&dir, args.shards)?;

        let mut ports = PortMap::load(&dir)?;
        let mut fleet = Fleet {
            config_path: dir.join("pgfleet.toml"),
            servers: Vec::new(),
            tenants: args.tenants,
        };
        let (layout, primaries) = match args.shards {
            None => {
                let names = ClusterNames::single();
                let port = fleet.cluster(&env, &dir, &mut ports, args, &names)?;
                let primary_dir = dir.join(&names.primary);
                (Layout::Single, vec![(names.primary, primary_dir, port)])
            }
            Some(n) => {
                let mut primaries = Vec::new();
                for i in 0..n {
                    let names = ClusterNames::shard(i);
                    let port = fleet.cluster(&env, &dir, &mut ports, args, &names)?;
                    let primary_dir = dir.join(&names.primary);
                    if i == 0 {
                        ensure_database(&env, &primary_dir, port, META_DB, APP)?;
                    }
                    primaries.push((names.primary, primary_dir, port));
                }
                (Layout::Sharded, primaries)
            }
        };

        // The tenants live on the first cluster, next to the metadata database.
        let (_, first_dir, first_port) = primaries
            .first()
            .context("the sandbox has no cluster")?
            .clone();
        if args.tenants {
            ensure_database(&env, &first_dir, first_port, META_DB, APP)?;
            tenants::prepare(&env, &dir, &first_dir, first_port)?;
        }

        let servers: Vec<ConfigServer<'_>> = fleet
            .servers
            .iter()
            .map(|s| ConfigServer {
                cluster: &s.cluster,
                name: &s.name,
                role: s.role,
                port: s.postmaster.port(),
            })
            .collect();
        let text = config_text(layout, args.tenants, args.port, &dir, &servers);
        std::fs::write(&fleet.config_path, &text)
            .with_context(|| format!("writing {}", fleet.config_path.display()))?;
        if layout == Layout::Sharded || args.tenants {
            let config = Config::from_toml_str(&text).map_err(|e| {
                anyhow::anyhow!("the generated {}:\n{e}", fleet.config_path.display())
            })?;
            if layout == Layout::Sharded {
                load_demo(&env, &config, &primaries)?;
            }
            if args.tenants {
                tenants::provision(&env, &config, &dir, &first_dir, first_port)?;
            }
        }
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            servers = fleet.servers.len(),
            "servers are up"
        );
        Ok(fleet)
    }

    /// Builds what is missing of one cluster (initdb primary, role and database `app`,
    /// pg_basebackup replicas) and starts its servers; returns the primary's port.
    fn cluster(
        &mut self,
        env: &PgEnv,
        dir: &Path,
        ports: &mut PortMap,
        args: &Args,
        names: &ClusterNames,
    ) -> anyhow::Result<u16> {
        let primary_dir = dir.join(&names.primary);
        let primary_port = ports.get_or_pick(&names.primary, args.port)?;
        if !is_data_dir(&primary_dir) {
            tracing::info!(dir = %primary_dir.display(), "creating the primary (initdb)");
            build_atomically(&primary_dir, |tmp| {
                env.create_data_dir(tmp)?;
                env.initdb(
                    tmp,
                    &InitDb {
                        auth_local: "trust".into(),
                        auth_host: "scram-sha-256".into(),
                        no_sync: true,
                    },
                )?;
                let settings: Vec<(String, String)> = SETTINGS
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect();
                conf::append_settings(tmp, "pgfleet sandbox settings", &settings)?;
                let hba: Vec<String> = HBA.iter().map(|l| (*l).to_string()).collect();
                conf::write_hba(tmp, &hba)
            })?;
        }
        self.start(
            env,
            &names.cluster,
            &names.primary,
            ServerRole::Primary,
            &primary_dir,
            primary_port,
        )?;
        ensure_app(env, &primary_dir, primary_port)?;

        let existing = (1..)
            .take_while(|i| is_data_dir(&dir.join(names.replica(*i))))
            .count();
        let wanted = existing.max(usize::from(args.replicas));
        for i in 1..=wanted {
            let name = names.replica(i);
            let replica_dir = dir.join(&name);
            let port = ports.get_or_pick(&name, args.port)?;
            if !is_data_dir(&replica_dir) {
                tracing::info!(dir = %replica_dir.display(), "creating a replica (pg_basebackup)");
                build_atomically(&replica_dir, |tmp| {
                    env.create_data_dir(tmp)?;
                    env.basebackup(primary_port, tmp)
                })?;
            }
            self.start(
                env,
                &names.cluster,
                &name,
                ServerRole::Replica,
                &replica_dir,
                port,
            )?;
        }
        Ok(primary_port)
    }

    /// Starts one server as our child; a server left running by an earlier, killed sandbox is
    /// stopped first so that every server we report is one we can stop.
    fn start(
        &mut self,
        env: &PgEnv,
        cluster: &str,
        name: &str,
        role: ServerRole,
        dir: &Path,
        port: u16,
    ) -> anyhow::Result<()> {
        if let Some(pid) = stop_leftover(dir)? {
            tracing::warn!(
                name,
                pid,
                "stopped a server left running by an earlier sandbox"
            );
        }
        let options = StartOptions {
            own_process_group: true,
            ..StartOptions::default()
        };
        let deadline = Instant::now() + BUSY_RETRY;
        let server = loop {
            match Postmaster::start(env, dir, port, &options) {
                Ok(server) => break server,
                Err(StartFailure::Busy(_)) if Instant::now() < deadline => {
                    sleep(Duration::from_millis(100));
                }
                Err(StartFailure::PortInUse(e)) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "port {port} (saved for {name} in {}) is taken by another process; \
                         stop that process or edit the port map",
                        dir.with_file_name(PortMap::FILE).display()
                    )))
                }
                Err(f) => {
                    return Err(anyhow::Error::new(f.into_error()).context(format!(
                        "starting {name} (log: {})",
                        dir.join("log").display()
                    )))
                }
            }
        };
        tracing::info!(name, port, pid = server.pid(), "server started");
        self.servers.push(Server {
            cluster: cluster.to_string(),
            name: name.to_string(),
            role,
            postmaster: server,
        });
        Ok(())
    }

    /// Fast shutdown of every server in reverse start order: each cluster's replicas before its
    /// primary (a primary waits for its standbys to receive the shutdown checkpoint).
    fn down(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(Server {
            name, postmaster, ..
        }) = self.servers.pop()
        {
            let pid = postmaster.pid();
            match postmaster.stop() {
                Ok(()) => tracing::info!(name, pid, "server stopped"),
                Err(e) => {
                    tracing::error!(name, pid, error = %e, "stopping server");
                    first_error
                        .get_or_insert(anyhow::Error::new(e).context(format!("stopping {name}")));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A complete data directory (initdb or pg_basebackup finished: they are built in `<dir>.tmp`
/// and renamed).
fn is_data_dir(dir: &Path) -> bool {
    dir.join("PG_VERSION").is_file()
}

/// Builds `dir` in `<dir>.tmp` (removing the leftovers of an interrupted earlier attempt) and
/// renames it into place, so a half-built data directory is never mistaken for a finished one.
fn build_atomically(
    dir: &Path,
    build: impl FnOnce(&Path) -> pgfleet_localpg::Result<()>,
) -> anyhow::Result<()> {
    let tmp = dir.with_extension("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    if dir.exists() {
        anyhow::bail!(
            "{} exists but is not a PostgreSQL data directory (no PG_VERSION); remove it",
            dir.display()
        );
    }
    build(&tmp)?;
    std::fs::rename(&tmp, dir)
        .with_context(|| format!("renaming {} to {}", tmp.display(), dir.display()))
}

/// Runs `sql` in database `db` of the primary in `primary_dir` as `postgres` over its unix
/// socket (trusted, see [`HBA`]).
fn primary_psql(
    env: &PgEnv,
    primary_dir: &Path,
    port: u16,
    db: &str,
    sql: &str,
) -> pgfleet_localpg::Result<String> {
    let socket_dir = primary_dir.to_string_lossy();
    let target = PsqlTarget {
        host: &socket_dir,
        port,
        user: "postgres",
        db,
        app_name: "pgfleet-sandbox",
    };
    psql(&env.bins, &target, sql)
}

/// Creates role `app` (password `app`) and database `app` owned by it, unless they exist.
fn ensure_app(env: &PgEnv, primary_dir: &Path, port: u16) -> anyhow::Result<()> {
    primary_psql(
        env,
        primary_dir,
        port,
        "postgres",
        &format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP}') THEN \
                 CREATE ROLE {APP} LOGIN PASSWORD '{APP}'; \
               END IF; \
             END $$"
        ),
    )
    .context("creating role app")?;
    ensure_database(env, primary_dir, port, APP, APP)
}

/// Creates database `name` owned by role `owner`, unless it exists.
fn ensure_database(
    env: &PgEnv,
    primary_dir: &Path,
    port: u16,
    name: &str,
    owner: &str,
) -> anyhow::Result<()> {
    let exists = primary_psql(
        env,
        primary_dir,
        port,
        "postgres",
        &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
    )
    .with_context(|| format!("looking for database {name}"))?;
    if exists.is_empty() {
        // CREATE DATABASE cannot run inside a transaction (nor the DO block above).
        primary_psql(
            env,
            primary_dir,
            port,
            "postgres",
            &format!("CREATE DATABASE {name} OWNER {owner}"),
        )
        .with_context(|| format!("creating database {name}"))?;
    }
    Ok(())
}
