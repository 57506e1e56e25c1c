//! Ending server use badly or for good: a client that left (roll back, reset, or close the
//! server), and a server connection that broke under a client.

use std::time::Duration;

use bytes::BytesMut;
use pgfleet_wire::backend::{encode_error, encode_ready_for_query, TxStatus};
use pgfleet_wire::frontend::encode_query;

use super::{PumpEnd, Session};
use crate::client::ClientConn;
use crate::execute::exchange::Exchange;
use crate::runtime::Runtime;
use crate::server::ServerConn;
use crate::stats::Stats;
use crate::ProxyError;

/// Longest wait for a server to roll back or reset before it is discarded instead.
const RESET_TIMEOUT: Duration = Duration::from_secs(5);

impl Session<'_> {
    /// The client is gone: leave its server clean for the next client, or close it.
    pub(super) async fn finish_server(&mut self) {
        // Other shards of a transaction the client left: closing them rolls them back.
        self.discard_parked();
        let Some(mut guard) = self.server.take() else {
            return;
        };
        self.info.detach();
        let needs_discard_all = self.pinned.is_some() || self.session_mode();
        if self.server_broken
            || !self.exchange.is_idle()
            || !self
                .client_gone_cleanly(&mut guard, needs_discard_all)
                .await
        {
            guard.discard();
            return;
        }
        guard.info.set_idle();
    }

    async fn client_gone_cleanly(&mut self, server: &mut ServerConn, discard_all: bool) -> bool {
        let mut sql = Vec::new();
        if self.tx != TxStatus::Idle {
            sql.push("ROLLBACK");
        }
        if discard_all {
            sql.push("DISCARD ALL");
        }
        if sql.is_empty() {
            return true;
        }
        let ok = tokio::time::timeout(RESET_TIMEOUT, run_internal(server, &sql))
            .await
            .unwrap_or(false);
        if ok && discard_all {
            server.params.clear();
            server.prepared.clear();
        }
        ok
    }
}

/// Runs pgfleet's own statements (one Query each) and waits for every ReadyForQuery.
async fn run_internal(server: &mut ServerConn, statements: &[&str]) -> bool {
    let mut out = BytesMut::new();
    for s in statements {
        encode_query(&mut out, s);
    }
    server.unnamed = 0;
    if server.write_all(&out).await.is_err() {
        return false;
    }
    let mut remaining = statements.len();
    let mut ok = true;
    while remaining > 0 {
        match server.read_frame().await {
            Ok(f) if f.tag() == pgfleet_wire::tag::backend::READY_FOR_QUERY => {
                remaining -= 1;
                ok &= f.body() == b"I";
            }
            Ok(f) if f.tag() == pgfleet_wire::tag::backend::ERROR_RESPONSE => ok = false,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    ok
}

/// The server connection broke while in use. A client outside any transaction keeps its session
/// (it gets an error for the request in flight); one inside a transaction or pinned to that server
/// loses what only that server had, so it is disconnected like a direct client would be.
pub(super) async fn lose_server(
    rt: &Runtime,
    client: &mut ClientConn,
    x: &mut Exchange,
    e: crate::server::ServerError,
    tx: TxStatus,
    session_bound: bool,
) -> Result<PumpEnd, ProxyError> {
    Stats::add(&rt.stats().server_losses, 1);
    tracing::warn!(error = %e, "server connection lost");
    let error_sent = x.error_in_request;
    let request_in_flight = x.client_pending > 0;
    x.abandon();
    if session_bound || tx != TxStatus::Idle {
        let msg = format!(
            "pgfleet: {}; the session's transaction or session state was lost",
            e.client_message()
        );
        client.fatal("08006", &msg).await;
        return Ok(PumpEnd::ClientGone);
    }
    let mut out = BytesMut::new();
    if !error_sent {
        encode_error(
            &mut out,
            "ERROR",
            "08006",
            &format!(
                "pgfleet: {}; the statement may or may not have completed",
                e.client_message()
            ),
        );
    }
    if request_in_flight {
        encode_ready_for_query(&mut out, TxStatus::Idle);
    }
    client.write_all(&out).await?;
    if !request_in_flight && !error_sent {
        // The request's Sync has not arrived yet: answer it when it does.
        return Ok(PumpEnd::ServerLostBeforeSync);
    }
    Ok(PumpEnd::ServerLost)
}
