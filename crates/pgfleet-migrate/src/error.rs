//! [`MigrateError`]: everything that stops `pgfleet migrate` before or around a fleet run.
//! Failures of single targets are not errors of the run: they are reported per target
//! (see [`crate::exec::Outcome`]).

use std::path::PathBuf;

/// An error of the migration tool.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A file or directory could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// A migration file breaks the file scheme or does not parse.
    #[error("{}: {message}", path.display())]
    Source {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The fleet cannot be enumerated from the config (unknown database, shards that cannot be
    /// listed yet, tenants without a metadata database, …).
    #[error("{0}")]
    Fleet(String),
    /// The metadata database or a server login failed.
    #[error(transparent)]
    Meta(#[from] pgfleet_meta::MetaError),
}
