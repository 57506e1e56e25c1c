//! `pgfleet sandbox [--dir DIR] [--port PORT] [--replicas M]`: a primary, M streaming replicas and
//! the proxy in front of them, on this machine, in one command.
//!
//! First run: initdb `DIR/primary`, role and database `app`, `pg_basebackup` replicas
//! `DIR/replica1..M`, server ports after PORT saved in `DIR/ports`. A rerun reuses all of it (and
//! adds missing replicas). Every run rewrites `DIR/pgfleet.toml`, validates it, serves it, prints
//! `ready: postgres://app:app@127.0.0.1:PORT/app` on stdout and, on Ctrl-C or SIGTERM, stops the
//! proxy gracefully and then every server it started. Server logs: `DIR/<name>/log`.
//!
//! The servers are our children in their own process group, so a terminal Ctrl-C reaches only us
//! and the shutdown happens in order: proxy, replicas, primary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::Context;
use pgfleet_config::Config;
use pgfleet_localpg::{
    check_socket_path, conf, psql, stop_leftover, InitDb, PgEnv, Postmaster, PsqlTarget,
    StartFailure, StartOptions,
};

use crate::serve;

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
}

/// The only client-facing names; the config and the ready line both use them.
const APP: &str = "app";
const PRIMARY: &str = "primary";
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
    .and_then(|()| out.flush())
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

/// The servers this process started, in start order (primary first).
struct Fleet {
    config_path: PathBuf,
    servers: Vec<(String, Postmaster)>,
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
        check_socket_path(&dir.join("replica99999")).context("choose a shorter --dir")?;

        let mut ports = PortMap::load(&dir)?;
        let mut fleet = Fleet {
            config_path: dir.join("pgfleet.toml"),
            servers: Vec::new(),
        };

        let primary_dir = dir.join(PRIMARY);
        let primary_port = ports.get_or_pick(PRIMARY, args.port)?;
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
        fleet.start(&env, PRIMARY, &primary_dir, primary_port)?;
        ensure_app(&env, &primary_dir, primary_port)?;

        let existing = (1..)
            .take_while(|i| is_data_dir(&dir.join(format!("replica{i}"))))
            .count();
        let wanted = existing.max(usize::from(args.replicas));
        for i in 1..=wanted {
            let name = format!("replica{i}");
            let replica_dir = dir.join(&name);
            let port = ports.get_or_pick(&name, args.port)?;
            if !is_data_dir(&replica_dir) {
                tracing::info!(dir = %replica_dir.display(), "creating a replica (pg_basebackup)");
                build_atomically(&replica_dir, |tmp| {
                    env.create_data_dir(tmp)?;
                    env.basebackup(primary_port, tmp)
                })?;
            }
            fleet.start(&env, &name, &replica_dir, port)?;
        }

        std::fs::write(
            &fleet.config_path,
            config_text(args.port, &dir, &fleet.servers),
        )
        .with_context(|| format!("writing {}", fleet.config_path.display()))?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            servers = fleet.servers.len(),
            "servers are up"
        );
        Ok(fleet)
    }

    /// Starts one server as our child; a server left running by an earlier, killed sandbox is
    /// stopped first so that every server we report is one we can stop.
    fn start(&mut self, env: &PgEnv, name: &str, dir: &Path, port: u16) -> anyhow::Result<()> {
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
        self.servers.push((name.to_string(), server));
        Ok(())
    }

    /// Fast shutdown of every server, replicas before the primary (a primary waits for its
    /// standbys to receive the shutdown checkpoint).
    fn down(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some((name, server)) = self.servers.pop() {
            let pid = server.pid();
            match server.stop() {
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

/// Creates role `app` (password `app`) and database `app` owned by it, unless they exist.
fn ensure_app(env: &PgEnv, primary_dir: &Path, port: u16) -> anyhow::Result<()> {
    let socket_dir = primary_dir.to_string_lossy();
    let target = |db| PsqlTarget {
        host: &socket_dir,
        port,
        user: "postgres",
        db,
        app_name: "pgfleet-sandbox",
    };
    psql(
        &env.bins,
        &target("postgres"),
        &format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP}') THEN \
                 CREATE ROLE {APP} LOGIN PASSWORD '{APP}'; \
               END IF; \
             END $$"
        ),
    )
    .context("creating role app")?;
    let exists = psql(
        &env.bins,
        &target("postgres"),
        &format!("SELECT 1 FROM pg_database WHERE datname = '{APP}'"),
    )
    .context("looking for database app")?;
    if exists.is_empty() {
        // CREATE DATABASE cannot run inside the DO block's transaction.
        psql(
            &env.bins,
            &target("postgres"),
            &format!("CREATE DATABASE {APP} OWNER {APP}"),
        )
        .context("creating database app")?;
    }
    Ok(())
}

/// Server name → port, kept in `DIR/ports` ("name port" lines) so reruns use the same ports (the
/// replicas' primary_conninfo names the primary's).
struct PortMap {
    path: PathBuf,
    ports: BTreeMap<String, u16>,
}

impl PortMap {
    const FILE: &'static str = "ports";

    fn load(dir: &Path) -> anyhow::Result<PortMap> {
        let path = dir.join(Self::FILE);
        let mut ports = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let parsed = line
                        .split_once(' ')
                        .and_then(|(name, port)| Some((name, port.trim().parse::<u16>().ok()?)));
                    let Some((name, port)) = parsed else {
                        anyhow::bail!(
                            "{} line {}: expected `name port`, got `{line}`",
                            path.display(),
                            n + 1
                        );
                    };
                    ports.insert(name.to_string(), port);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        Ok(PortMap { path, ports })
    }

    /// The saved port of `name`, or the first free port after `proxy_port` that no other server
    /// has (saved at once).
    fn get_or_pick(&mut self, name: &str, proxy_port: u16) -> anyhow::Result<u16> {
        if let Some(port) = self.ports.get(name) {
            return Ok(*port);
        }
        let taken: Vec<u16> = self.ports.values().copied().collect();
        let port = (proxy_port.saturating_add(1)..=u16::MAX)
            .find(|p| !taken.contains(p) && TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .with_context(|| format!("no free port after {proxy_port} for {name}"))?;
        self.ports.insert(name.to_string(), port);
        let mut text = String::from("# server ports of this sandbox (name port)\n");
        for (n, p) in &self.ports {
            let _ = writeln!(text, "{n} {p}");
        }
        std::fs::write(&self.path, text)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(port)
    }
}

/// The generated config: a real one, meant to be copied.
fn config_text(proxy_port: u16, dir: &Path, servers: &[(String, Postmaster)]) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Written by `pgfleet sandbox` on every run (edits are overwritten; copy it elsewhere).\n\
         # Every key is documented in docs/config.md.\n\
         # Clients: psql \"postgres://{APP}:{APP}@127.0.0.1:{proxy_port}/{APP}\"\n\
         # Admin console: psql \"postgres://admin:admin@127.0.0.1:{proxy_port}/pgfleet\"\n\
         # Servers run from {} (logs in <name>/log).\n",
        dir.display()
    );
    let _ = writeln!(text, "[proxy]\nlisten = \"127.0.0.1:{proxy_port}\"\n");
    let _ = writeln!(text, "[clusters.main]\nservers = [");
    for (name, server) in servers {
        let role = if name == PRIMARY {
            "primary"
        } else {
            "replica"
        };
        let _ = writeln!(
            text,
            "    {{ host = \"127.0.0.1\", port = {}, role = \"{role}\" }},  # {name}",
            server.port()
        );
    }
    let _ = writeln!(text, "]\n");
    let _ = writeln!(text, "[databases.{APP}]\ncluster = \"main\"\n");
    let _ = writeln!(
        text,
        "[users.{APP}]\npassword = \"{APP}\"   # also the server password of role {APP}\n"
    );
    let _ = writeln!(text, "[users.admin]\npassword = \"admin\"\nadmin = true");
    text
}
