//! [`MetaError`]: what can go wrong talking to the metadata database or a fleet server.

use crate::endpoint::{error_text, Endpoint};

/// An error from the metadata database or from logging in to a server.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The config has no `[metadata]` table.
    #[error("no metadata database is configured; add a [metadata] table (see docs/config.md)")]
    NotConfigured,
    /// `[metadata]` or a database names a cluster the config does not define.
    #[error("cluster `{0}` is not defined in the config")]
    UnknownCluster(String),
    /// Logging in to one server failed.
    #[error("failed to connect to {endpoint} (database `{database}`, user `{user}`): {}", error_text(.source))]
    Connect {
        /// The server.
        endpoint: Endpoint,
        /// The database asked for.
        database: String,
        /// The login used.
        user: String,
        /// What the server or the network said.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No server of the cluster is a reachable primary.
    #[error("cluster `{cluster}` has no reachable primary: {reasons}")]
    NoPrimary {
        /// The cluster.
        cluster: String,
        /// One reason per server tried, `; `-separated.
        reasons: String,
    },
    /// The metadata schema is newer than this binary knows.
    #[error("the metadata schema `pgfleet` is at version {found}, newer than this pgfleet (knows up to {known}); upgrade pgfleet")]
    SchemaTooNew {
        /// Version found in the database.
        found: i32,
        /// Newest version this binary has.
        known: i32,
    },
    /// A tenant that should exist does not.
    #[error("tenant `{tenant}` is not in the tenant directory of database `{database}`")]
    TenantNotFound {
        /// The pgfleet database.
        database: String,
        /// The tenant name.
        tenant: String,
    },
    /// A tenant that should not exist yet does.
    #[error("tenant `{tenant}` already exists in database `{database}`")]
    TenantExists {
        /// The pgfleet database.
        database: String,
        /// The tenant name.
        tenant: String,
    },
    /// A value that breaks a rule of the directory (tenant name pattern, model details).
    #[error("{0}")]
    Invalid(String),
    /// A row in the directory that this binary cannot read (edited by hand, or a newer pgfleet).
    #[error("unreadable row in pgfleet.{table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A statement against the metadata database failed.
    #[error("metadata database: {context}: {}", error_text(.source))]
    Query {
        /// What pgfleet was doing.
        context: &'static str,
        /// The server's error.
        #[source]
        source: tokio_postgres::Error,
    },
}

impl MetaError {
    /// Wraps a query error with what pgfleet was doing.
    pub(crate) fn query(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> MetaError {
        move |source| MetaError::Query { context, source }
    }
}
