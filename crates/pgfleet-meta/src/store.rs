//! [`MetaStore`]: one connection to the metadata database, with the `pgfleet` schema brought to
//! this binary's version on connect. The tenant directory and the ledger are methods on it
//! (see [`crate::tenants`], [`crate::ledger`]).

use std::time::Duration;

use pgfleet_config::{Config, MetadataConfig};
use tokio_postgres::Client;

use crate::endpoint::{connect, find_primary, Endpoint, Login};
use crate::{schema, MetaError};

/// A connection to the metadata database.
pub struct MetaStore {
    pub(crate) client: Client,
    endpoint: Option<Endpoint>,
}

impl MetaStore {
    /// The login `[metadata]` describes, for `application_name`.
    pub fn login(meta: &MetadataConfig, application_name: &str) -> Login {
        Login {
            user: meta.user.clone(),
            password: meta.password.clone(),
            database: meta.database.clone(),
            application_name: application_name.to_string(),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Connects to the metadata database on the primary of `[metadata].cluster` and brings the
    /// `pgfleet` schema up to date.
    pub async fn connect(config: &Config, application_name: &str) -> Result<MetaStore, MetaError> {
        let meta = config.metadata.as_ref().ok_or(MetaError::NotConfigured)?;
        let cluster = config
            .clusters
            .get(&meta.cluster)
            .ok_or_else(|| MetaError::UnknownCluster(meta.cluster.clone()))?;
        let login = Self::login(meta, application_name);
        let (client, endpoint) = find_primary(&meta.cluster, cluster, &login).await?;
        let mut store = MetaStore {
            client,
            endpoint: Some(endpoint),
        };
        store.upgrade().await?;
        Ok(store)
    }

    /// Connects to one known server (tests, tools that already know the primary).
    pub async fn connect_to(endpoint: &Endpoint, login: &Login) -> Result<MetaStore, MetaError> {
        let client = connect(endpoint, login).await?;
        let mut store = MetaStore {
            client,
            endpoint: Some(endpoint.clone()),
        };
        store.upgrade().await?;
        Ok(store)
    }

    /// Wraps an open connection and brings the schema up to date.
    pub async fn from_client(client: Client) -> Result<MetaStore, MetaError> {
        let mut store = MetaStore {
            client,
            endpoint: None,
        };
        store.upgrade().await?;
        Ok(store)
    }

    /// Applies the schema migrations this binary has and the database lacks; returns their
    /// versions (empty when the schema was current). Safe to call from many processes at once.
    pub async fn upgrade(&mut self) -> Result<Vec<i32>, MetaError> {
        schema::ensure(&mut self.client).await
    }

    /// The server this store talks to, when known.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    /// The connection itself, for a caller that keeps it (the proxy's decision log).
    pub fn into_client(self) -> Client {
        self.client
    }

    /// The underlying connection, for reads this crate has no method for.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
