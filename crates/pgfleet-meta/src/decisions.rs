//! The decision log of pgfleet's two-phase commits. A cross-shard write prepares its transaction
//! on every shard (`PREPARE TRANSACTION gid`), then records the decision here, then commits the
//! prepared transactions. The row is the commit point: a prepared transaction whose gid has a row
//! must be committed, one without a row must be rolled back. Recovery after a crash follows
//! exactly that rule, then forgets the rows it finished.

use tokio_postgres::GenericClient;

use crate::{MetaError, MetaStore};

/// One recorded commit decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The prepared transactions' name on every shard.
    pub gid: String,
    /// The pgfleet instance (`proxy.node_id`) that decided.
    pub node_id: i32,
    /// The pgfleet database.
    pub database: String,
    /// The user whose server login prepared the transactions.
    pub user: String,
    /// The shards that hold a prepared transaction named `gid`.
    pub shards: Vec<i32>,
}

impl MetaStore {
    /// Records the decision to commit `d.gid`: once this returns, the transaction is committed
    /// (recovery will finish it on every shard).
    pub async fn record_commit(&self, d: &Decision) -> Result<(), MetaError> {
        record_commit(&self.client, d).await
    }

    /// Forgets a decision whose prepared transactions are all committed.
    pub async fn forget_decision(&self, gid: &str) -> Result<(), MetaError> {
        forget_decision(&self.client, gid).await
    }

    /// Whether the decision for `gid` was to commit.
    pub async fn decided_commit(&self, gid: &str) -> Result<bool, MetaError> {
        decided_commit(&self.client, gid).await
    }

    /// Every decision still recorded (their prepared transactions may not all be committed).
    pub async fn decisions(&self) -> Result<Vec<Decision>, MetaError> {
        decisions(&self.client).await
    }
}

/// [`MetaStore::record_commit`] on any client (the proxy keeps its own connection).
pub async fn record_commit(client: &impl GenericClient, d: &Decision) -> Result<(), MetaError> {
    client
        .execute(
            "INSERT INTO pgfleet.commit_decisions (gid, node_id, database, user_name, shards) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&d.gid, &d.node_id, &d.database, &d.user, &d.shards],
        )
        .await
        .map_err(MetaError::query("recording a commit decision"))?;
    Ok(())
}

/// [`MetaStore::forget_decision`] on any client.
pub async fn forget_decision(client: &impl GenericClient, gid: &str) -> Result<(), MetaError> {
    client
        .execute(
            "DELETE FROM pgfleet.commit_decisions WHERE gid = $1",
            &[&gid],
        )
        .await
        .map_err(MetaError::query("forgetting a commit decision"))?;
    Ok(())
}

/// [`MetaStore::decided_commit`] on any client.
pub async fn decided_commit(client: &impl GenericClient, gid: &str) -> Result<bool, MetaError> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pgfleet.commit_decisions WHERE gid = $1)",
            &[&gid],
        )
        .await
        .map_err(MetaError::query("reading a commit decision"))?;
    Ok(row.get(0))
}

/// [`MetaStore::decisions`] on any client.
pub async fn decisions(client: &impl GenericClient) -> Result<Vec<Decision>, MetaError> {
    let rows = client
        .query(
            "SELECT gid, node_id, database, user_name, shards FROM pgfleet.commit_decisions \
             ORDER BY decided_at, gid",
            &[],
        )
        .await
        .map_err(MetaError::query("listing commit decisions"))?;
    Ok(rows
        .iter()
        .map(|r| Decision {
            gid: r.get(0),
            node_id: r.get(1),
            database: r.get(2),
            user: r.get(3),
            shards: r.get(4),
        })
        .collect())
}
