//! `pgfleet ids install`: installs `pgfleet.id()` (globally unique, time-ordered 64-bit ids) on
//! the primary of every shard of the sharded databases, each shard with its own generator number
//! (its shard number). A thin shell over `pgfleet_catalog::ids`; see docs/sharding.md, "Globally
//! unique ids".

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use pgfleet_catalog::ids::{id_function_sql, Generator, MAX_GENERATOR};
use pgfleet_config::Config;
use pgfleet_meta::endpoint::error_text;
use pgfleet_meta::{find_primary, Login};

use crate::serve;

/// `application_name` of the installer's server connections.
const APPLICATION_NAME: &str = "pgfleet-ids";

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Create or update pgfleet.id(), pgfleet.id_parts() and pgfleet.id_generator() on the
    /// primary of every shard (shard N is generator N). Idempotent: run it again after adding
    /// shards or restoring a shard.
    Install {
        /// The config file (clusters and sharded databases).
        #[arg(long, default_value = "pgfleet.toml")]
        config: PathBuf,
        /// Only this sharded database (default: every sharded database of the config).
        #[arg(long)]
        database: Option<String>,
        /// Server login: a [users.NAME] of the config (its server_user and server_password), or
        /// a server user name (password from PGPASSWORD). Default: the config's only non-admin
        /// user with a server password, else `postgres`. The functions belong to this role.
        #[arg(long)]
        user: Option<String>,
        /// Print the SQL each shard would run, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// One shard to install on: where, and with which generator number.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// The pgfleet database.
    database: String,
    /// Its name on the servers.
    server_database: String,
    /// The shard number.
    shard: usize,
    /// The shard's cluster.
    cluster: String,
    /// The number baked into the shard's `pgfleet.id()`.
    generator: Generator,
}

impl Target {
    fn label(&self) -> String {
        format!(
            "database {} shard {} (cluster {}, server database {})",
            self.database, self.shard, self.cluster, self.server_database
        )
    }
}

/// The shards to install on, in database and shard order (pure): every shard of `database`, or
/// of every sharded database when it is `None`.
fn targets(config: &Config, database: Option<&str>) -> anyhow::Result<Vec<Target>> {
    let chosen: Vec<(&String, _)> = match database {
        Some(name) => {
            let Some((name, db)) = config.databases.get_key_value(name) else {
                let names: Vec<&str> = config.databases.keys().map(String::as_str).collect();
                bail!(
                    "database `{name}` is not in the config (databases: {})",
                    names.join(", ")
                );
            };
            if db.sharding.is_none() {
                bail!(
                    "database `{name}` is not sharded: pgfleet.id() is for databases with \
                     `shards`; a database on one cluster can use an identity column"
                );
            }
            vec![(name, db)]
        }
        None => config
            .databases
            .iter()
            .filter(|(_, db)| db.sharding.is_some())
            .collect(),
    };
    if chosen.is_empty() {
        bail!("no database in the config is sharded (has `shards`); pgfleet.id() is for those");
    }
    let mut out = Vec::new();
    for (name, db) in chosen {
        let Some(sharding) = &db.sharding else {
            continue;
        };
        for (shard, cluster) in sharding.shards.iter().enumerate() {
            let Some(generator) = Generator::new(shard) else {
                bail!(
                    "database `{name}` has {} shards; pgfleet.id() has 10 bits for the shard \
                     number, so it serves shards 0 to {MAX_GENERATOR} only",
                    sharding.shards.len()
                );
            };
            out.push(Target {
                database: name.clone(),
                server_database: db.server_database.clone(),
                shard,
                cluster: cluster.clone(),
                generator,
            });
        }
    }
    Ok(out)
}

/// Runs the subcommand; exit status 1 when a shard failed (the others are still installed).
pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    let Sub::Install {
        config: path,
        database,
        user,
        dry_run,
    } = args.command;
    let config = Config::load(&path).map_err(|e| anyhow::anyhow!("{}:\n{e}", path.display()))?;
    let targets = targets(&config, database.as_deref())?;
    if dry_run {
        for t in &targets {
            println!("-- {}", t.label());
            println!("{}", id_function_sql(t.generator));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let login = pgfleet_tenant::login::tool_login(
        &config,
        user.as_deref(),
        std::env::var("PGPASSWORD").ok(),
        APPLICATION_NAME,
    );
    serve::tokio_runtime()?.block_on(async {
        let mut failed = 0;
        for t in &targets {
            match install(&config, t, &login).await {
                Ok(outcome) => println!("{}: {outcome}", t.label()),
                Err(e) => {
                    failed += 1;
                    eprintln!("{}: failed: {e}", t.label());
                }
            }
        }
        println!(
            "pgfleet.id() installed on {} of {} shard(s)",
            targets.len() - failed,
            targets.len()
        );
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// Installs on one shard's primary (one transaction); says what changed.
async fn install(config: &Config, t: &Target, login: &Login) -> anyhow::Result<String> {
    let Some(cluster) = config.clusters.get(&t.cluster) else {
        bail!("cluster `{}` is not in the config", t.cluster);
    };
    let (client, endpoint) =
        find_primary(&t.cluster, cluster, &login.for_database(&t.server_database)).await?;
    // The generator of the function installed now, if any (`to_regprocedure` is NULL when
    // it is missing; a query naming a missing function would fail to plan).
    let before: Option<i32> = match client
        .query_one(
            "SELECT to_regprocedure('pgfleet.id_generator()') IS NOT NULL",
            &[],
        )
        .await
    {
        Ok(row) if row.get::<_, bool>(0) => Some(
            client
                .query_one("SELECT pgfleet.id_generator()", &[])
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "reading the installed generator on {endpoint}: {}",
                        error_text(&e)
                    )
                })?
                .get(0),
        ),
        Ok(_) => None,
        Err(e) => bail!("looking for pgfleet.id() on {endpoint}: {}", error_text(&e)),
    };
    client
        .batch_execute(&id_function_sql(t.generator))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "installing pgfleet.id() on {endpoint} as {}: {}",
                login.user,
                error_text(&e)
            )
        })?;
    let g = i32::from(t.generator.get());
    Ok(match before {
        None => format!("installed pgfleet.id() on {endpoint}, generator {g}"),
        Some(b) if b == g => {
            format!("reinstalled pgfleet.id() on {endpoint}, generator {g} as before")
        }
        Some(b) => format!(
            "pgfleet.id() on {endpoint} changed from generator {b} to {g} (ids made before keep \
             generator {b}; they stay unique because later ids have later times)"
        ),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn config(extra: &str) -> Config {
        let mut text = String::new();
        for i in 0..3 {
            text.push_str(&format!(
                "[clusters.s{i}]\nservers = [{{ host = \"127.0.0.1\", port = {}, role = \"primary\" }}]\n",
                5000 + i
            ));
        }
        text.push_str(extra);
        text.push_str("[users.app]\npassword = \"app\"\n");
        Config::from_toml_str(&text).unwrap()
    }

    const SHARDED: &str =
        "[databases.app]\nshards = [\"s2\", \"s0\", \"s1\"]\nserver_database = \"app_db\"\n";
    const PLAIN: &str = "[databases.plain]\ncluster = \"s0\"\n";

    #[test]
    fn every_shard_of_every_sharded_database_gets_its_shard_number() {
        let c = config(&format!("{SHARDED}{PLAIN}"));
        let got: Vec<(String, usize, String, u16, String)> = targets(&c, None)
            .unwrap()
            .into_iter()
            .map(|t| {
                (
                    t.database,
                    t.shard,
                    t.cluster,
                    t.generator.get(),
                    t.server_database,
                )
            })
            .collect();
        let expected: Vec<(String, usize, String, u16, String)> = [(0, "s2"), (1, "s0"), (2, "s1")]
            .into_iter()
            .map(|(i, cl)| ("app".into(), i, cl.into(), i as u16, "app_db".into()))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(targets(&c, Some("app")).unwrap().len(), 3);
    }

    #[test]
    fn unsharded_and_unknown_databases_are_refused() {
        let c = config(&format!("{SHARDED}{PLAIN}"));
        let e = targets(&c, Some("plain")).unwrap_err().to_string();
        assert!(e.contains("database `plain` is not sharded"), "{e}");
        let e = targets(&c, Some("nope")).unwrap_err().to_string();
        assert!(
            e.contains("`nope` is not in the config (databases: app, plain)"),
            "{e}"
        );
        let e = targets(&config(PLAIN), None).unwrap_err().to_string();
        assert!(e.contains("no database in the config is sharded"), "{e}");
    }
}
