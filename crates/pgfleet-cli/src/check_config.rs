//! `pgfleet check-config FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use pgfleet_config::Config;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The config file.
    file: PathBuf,
}

/// Prints `FILE: ok` or one line per problem (`key.path: message`).
pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    match Config::load(&args.file) {
        Ok(_) => {
            println!("{}: ok", args.file.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for p in &errors.problems {
                println!("{}: {p}", args.file.display());
            }
            println!(
                "{}: {} problem(s)",
                args.file.display(),
                errors.problems.len()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
