//! [`TenantChanges`]: a dedicated connection that LISTENs on [`TENANTS_CHANNEL`] and hands out the
//! names of changed tenants. Notifications arrive only after the changing transaction commits
//! (PostgreSQL docs, NOTIFY), so a reader that re-reads the directory then sees the change.

use futures::{stream, StreamExt};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::endpoint::{Endpoint, Login};
use crate::tenants::TENANTS_CHANNEL;
use crate::MetaError;

/// Names of tenants whose directory rows changed, in commit order. Dropping it closes the
/// connection.
pub struct TenantChanges {
    receiver: mpsc::UnboundedReceiver<String>,
    _client: tokio_postgres::Client,
}

impl TenantChanges {
    /// Opens the LISTEN connection to the metadata database at `endpoint`.
    pub async fn listen(endpoint: &Endpoint, login: &Login) -> Result<TenantChanges, MetaError> {
        let config = crate::endpoint::client_config(endpoint, login);
        let (client, mut connection) =
            config
                .connect(NoTls)
                .await
                .map_err(|source| MetaError::Connect {
                    endpoint: endpoint.clone(),
                    database: login.database.clone(),
                    user: login.user.clone(),
                    source,
                })?;
        let (sender, receiver) = mpsc::unbounded_channel();
        // The connection future must be polled for messages; notifications are only delivered
        // through poll_message.
        let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
        tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) if n.channel() == TENANTS_CHANNEL => {
                        if sender.send(n.payload().to_string()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %crate::endpoint::error_text(&e), "tenant change listener ended");
                        break;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {TENANTS_CHANNEL}"))
            .await
            .map_err(MetaError::query("listening for tenant changes"))?;
        Ok(TenantChanges {
            receiver,
            _client: client,
        })
    }

    /// The next changed tenant name; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<String> {
        self.receiver.recv().await
    }
}
