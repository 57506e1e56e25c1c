//! `pgfleet sandbox` (being written).

use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {}

/// Not ready yet.
pub fn exec(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sandbox is not built yet")
}
