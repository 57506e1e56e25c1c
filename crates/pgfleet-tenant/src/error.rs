//! [`TenantError`]: what stops a `pgfleet tenant` command. Every message names the tenant, the
//! database and, for server errors, what pgfleet was doing and where.

use pgfleet_meta::endpoint::error_text;
use pgfleet_meta::MetaError;
use pgfleet_migrate::MigrateError;

/// An error of the tenant tool.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// The config does not say which database, or the database has no (suitable) tenancy.
    #[error("{0}")]
    Scope(String),
    /// The tenant name breaks the naming rule (see `pgfleet_config::check_tenant_name`).
    #[error("{0}")]
    InvalidName(String),
    /// No shard can be chosen for the tenant (bad `--shard`, a shard key it cannot be read as).
    #[error("{0}")]
    Placement(String),
    /// `create` of a tenant the directory already has; nothing was changed.
    #[error(
        "tenant `{tenant}` already exists in database `{database}` ({detail}); nothing was changed"
    )]
    AlreadyExists {
        /// The pgfleet database.
        database: String,
        /// The tenant.
        tenant: String,
        /// Its model, place and state, to tell it apart.
        detail: String,
    },
    /// A tenant that should be in the directory is not.
    #[error("tenant `{tenant}` is not in the tenant directory of database `{database}`")]
    NotFound {
        /// The pgfleet database.
        database: String,
        /// The tenant.
        tenant: String,
    },
    /// `create` found the tenant's schema or database already there without a directory entry.
    #[error("{object} already exists, but tenant `{tenant}` is not in the tenant directory; drop or rename it first, or choose another tenant name (nothing was changed)")]
    ObjectExists {
        /// The schema or database, described with its place.
        object: String,
        /// The tenant.
        tenant: String,
    },
    /// A command that is not allowed as asked (drop without `--confirm`, a tenant being moved).
    #[error("{0}")]
    Refused(String),
    /// A statement on a fleet server failed.
    #[error("{context}: {}", error_text(.source))]
    Server {
        /// What pgfleet was doing, and where.
        context: String,
        /// The server's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The tenant migrations failed on a new tenant, which was then removed again.
    #[error("tenant migrations failed for tenant `{tenant}`: {error}; {cleanup}")]
    Migrations {
        /// The tenant.
        tenant: String,
        /// The failure, with file and server message.
        error: String,
        /// What happened to the half-made tenant.
        cleanup: String,
    },
    /// The metadata database or a server login failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Reading or running migrations failed before any target ran.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
}

impl TenantError {
    /// Wraps a server error with what pgfleet was doing.
    pub(crate) fn server(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Self {
        let context = context.into();
        move |source| TenantError::Server { context, source }
    }
}
