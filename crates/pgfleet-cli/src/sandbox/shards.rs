//! A sharded sandbox (`--shards N`): the shard count its directory was built with, and filling
//! the shard primaries with the demo tables.

use std::path::{Path, PathBuf};

use anyhow::Context;
use pgfleet_catalog::Catalog;
use pgfleet_config::Config;
use pgfleet_localpg::PgEnv;

use super::{demo, is_data_dir, primary_psql, APP, PRIMARY};

/// `DIR/shard-count`: the `--shards` of the first run (absent without sharding).
const SHARD_COUNT_FILE: &str = "shard-count";

/// A sandbox directory keeps the shard count of its first run (`DIR/shard-count`): its rows are
/// placed for that many shards, and an unsharded sandbox has no shards to add.
pub(super) fn check_shard_count(dir: &Path, shards: Option<u16>) -> anyhow::Result<()> {
    let path = dir.join(SHARD_COUNT_FILE);
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text.trim().parse::<u16>().with_context(|| {
            format!(
                "{}: expected the shard count, got `{}`",
                path.display(),
                text.trim()
            )
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    match (shards, recorded) {
        (None, None) => Ok(()),
        (None, Some(n)) => anyhow::bail!(
            "{} holds a sandbox with {n} shards; run `pgfleet sandbox --shards {n}` on it, \
             or choose another --dir for a sandbox without shards",
            dir.display()
        ),
        (Some(n), None) => {
            if is_data_dir(&dir.join(PRIMARY)) {
                anyhow::bail!(
                    "{} holds a sandbox without shards; run it without --shards, \
                     or choose another --dir for --shards {n}",
                    dir.display()
                );
            }
            std::fs::write(&path, format!("{n}\n"))
                .with_context(|| format!("writing {}", path.display()))
        }
        (Some(n), Some(m)) if n != m => anyhow::bail!(
            "{} was built with --shards {m} and its rows are placed for {m} shards; \
             run it with --shards {m}, or choose another --dir for --shards {n}",
            dir.display()
        ),
        (Some(_), Some(_)) => Ok(()),
    }
}

/// Creates the demo tables with their rows on every shard primary (`(name, dir, port)`, in shard
/// order) that has none of them yet: on the first run, or after a run that stopped before a
/// shard was filled (each shard is filled in one transaction, which also installs the shard's
/// `pgfleet.id()`). Tables that exist are left alone, whatever they hold.
pub(super) fn load_demo(
    env: &PgEnv,
    config: &Config,
    primaries: &[(String, PathBuf, u16)],
) -> anyhow::Result<()> {
    let catalog = Catalog::from_config(config).context("building the catalog of the sandbox")?;
    let topology = catalog
        .database(APP)
        .context("building the catalog of the sandbox")?;
    let texts = demo::shard_sql(topology).context("placing the demo rows on their shards")?;
    for ((name, dir, port), sql) in primaries.iter().zip(&texts) {
        let tables: Vec<String> = demo::TABLES
            .iter()
            .map(|t| format!("'public.{t}'"))
            .collect();
        let present = primary_psql(
            env,
            dir,
            *port,
            APP,
            &format!(
                "SELECT count(to_regclass(t)) FROM unnest(ARRAY[{}]) AS t",
                tables.join(", ")
            ),
        )
        .with_context(|| format!("looking for the demo tables on {name}"))?;
        match present.trim() {
            "0" => {
                primary_psql(env, dir, *port, APP, sql)
                    .with_context(|| format!("creating the demo tables on {name}"))?;
                tracing::info!(shard = %name, "created the demo tables");
            }
            n if n == demo::TABLES.len().to_string() => {
                tracing::info!(shard = %name, "demo tables present; reusing them");
            }
            n => tracing::warn!(
                shard = %name,
                found = n,
                "some of the demo tables (customers, orders, countries) exist; left as they are"
            ),
        }
    }
    Ok(())
}
