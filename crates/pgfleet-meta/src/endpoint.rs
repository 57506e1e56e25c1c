//! Logging in to fleet servers from tools (`pgfleet migrate`, `pgfleet tenant`), and finding the
//! primary of a cluster. The proxy has its own monitor for this; tools connect once and go.

use std::fmt;
use std::time::Duration;

use pgfleet_config::{ClusterConfig, ServerRole};
use tokio_postgres::{Client, NoTls};

use crate::MetaError;

/// One server address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Who logs in, to which database.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// Server user name.
    pub user: String,
    /// Password, when the server asks for one.
    pub password: Option<String>,
    /// Database name on the server.
    pub database: String,
    /// `application_name`, shown in `pg_stat_activity` (e.g. `pgfleet-migrate`).
    pub application_name: String,
    /// Limit for opening the connection.
    pub connect_timeout: Duration,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("application_name", &self.application_name)
            .finish()
    }
}

impl Login {
    /// The same login for another database.
    pub fn for_database(&self, database: &str) -> Login {
        Login {
            database: database.to_string(),
            ..self.clone()
        }
    }
}

/// The tokio-postgres settings for `login` at `endpoint`.
pub(crate) fn client_config(endpoint: &Endpoint, login: &Login) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&endpoint.host)
        .port(endpoint.port)
        .user(&login.user)
        .dbname(&login.database)
        .application_name(&login.application_name)
        .connect_timeout(login.connect_timeout);
    if let Some(password) = &login.password {
        config.password(password);
    }
    config
}

/// Opens a connection; its I/O runs on a spawned task that ends when the client is dropped.
pub async fn connect(endpoint: &Endpoint, login: &Login) -> Result<Client, MetaError> {
    let config = client_config(endpoint, login);
    let fail = |source| MetaError::Connect {
        endpoint: endpoint.clone(),
        database: login.database.clone(),
        user: login.user.clone(),
        source,
    };
    let (client, connection) = config.connect(NoTls).await.map_err(fail)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %error_text(&e), "connection ended");
        }
    });
    Ok(client)
}

/// Finds the primary of `cluster` and returns a connection to it: servers declared `primary`
/// first, then `auto` ones, each asked `pg_is_in_recovery()`; declared replicas are never
/// candidates. The error names every server tried and why it was not the primary.
pub async fn find_primary(
    name: &str,
    cluster: &ClusterConfig,
    login: &Login,
) -> Result<(Client, Endpoint), MetaError> {
    let mut candidates: Vec<_> = cluster
        .servers
        .iter()
        .filter(|s| s.role == ServerRole::Primary)
        .collect();
    candidates.extend(
        cluster
            .servers
            .iter()
            .filter(|s| s.role == ServerRole::Auto),
    );
    let mut reasons = Vec::new();
    for server in candidates {
        let endpoint = Endpoint {
            host: server.host.clone(),
            port: server.port,
        };
        let client = match connect(&endpoint, login).await {
            Ok(c) => c,
            Err(e) => {
                reasons.push(e.to_string());
                continue;
            }
        };
        match client.query_one("SELECT pg_is_in_recovery()", &[]).await {
            Ok(row) if !row.get::<_, bool>(0) => return Ok((client, endpoint)),
            Ok(_) => reasons.push(format!("{endpoint} is in recovery (a replica)")),
            Err(e) => reasons.push(format!("{endpoint}: {}", error_text(&e))),
        }
    }
    if reasons.is_empty() {
        reasons.push("no server has role \"primary\" or \"auto\"".to_string());
    }
    Err(MetaError::NoPrimary {
        cluster: name.to_string(),
        reasons: reasons.join("; "),
    })
}

/// A tokio-postgres error as a sentence: the server's message with SQLSTATE, detail and hint
/// (the plain `Display` of a database error is only "db error").
pub fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("; detail: {detail}"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            if let Some(tokio_postgres::error::ErrorPosition::Original(p)) = db.position() {
                text.push_str(&format!("; at character {p}"));
            }
            text
        }
        None => {
            // Include the cause: "error connecting to server: Connection refused (os error 111)".
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}
