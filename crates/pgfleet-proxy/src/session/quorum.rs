//! Quorum writes and the commit position: after a writing transaction ends on the primary,
//! pgfleet reads where its commit record ends and, with `write_quorum = N`, answers the COMMIT
//! only once N replicas have replayed that far.
//!
//! This is what PostgreSQL's `synchronous_standby_names` with `synchronous_commit = remote_apply`
//! does inside the server, done in the proxy instead: it needs no server configuration, can differ
//! per session, and never blocks the primary's other sessions; the price is one round trip and a
//! wait measured by the replication monitor (a few milliseconds per round). See
//! docs/replication.md#quorum-writes.

use std::time::Instant;

use bytes::BytesMut;
use pgfleet_config::QuorumTimeoutAction;
use pgfleet_wire::backend::ErrorFields;
use pgfleet_wire::tag::backend as b;

use crate::replication::{ClusterState, Lsn};

/// Where the last commit record ends, read on the connection that committed.
///
/// `pg_current_wal_insert_lsn()`, not `pg_current_wal_lsn()`: with `synchronous_commit = off`
/// the commit record may not be written yet, and only the insert position bounds it. But the
/// insert position of an empty page points past the page header, while a replica that replayed
/// a record ending exactly at the page boundary reports the boundary: without the correction
/// such a replica would never count as caught up. Short page headers are 24 bytes, the long
/// header at the start of a WAL segment 40 (PostgreSQL's `XLogBytePosToRecPtr` vs
/// `XLogBytePosToEndRecPtr`, src/backend/access/transam/xlog.c).
pub(super) const COMMIT_LSN_SQL: &str = "SELECT 'lsn', (l OPERATOR(pg_catalog.-) CASE \
     WHEN (l OPERATOR(pg_catalog.-) '0/0'::pg_catalog.pg_lsn) OPERATOR(pg_catalog.%) \
          pg_catalog.pg_size_bytes(pg_catalog.current_setting('wal_segment_size'))::numeric = 40 THEN 40 \
     WHEN (l OPERATOR(pg_catalog.-) '0/0'::pg_catalog.pg_lsn) OPERATOR(pg_catalog.%) \
          pg_catalog.current_setting('wal_block_size')::numeric = 24 THEN 24 \
     ELSE 0 END)::text FROM (SELECT pg_catalog.pg_current_wal_insert_lsn() AS l) AS p";

/// SQLSTATE of the error a COMMIT gets when its quorum is not reached in time and the cluster
/// says `quorum_timeout_action = "error"`: class 58 (system error: a condition outside the
/// server), since the transaction itself committed.
pub(super) const QUORUM_ERROR_SQLSTATE: &str = "58000";

/// Waits until `needed` replicas of `state` have replayed `lsn`, or the cluster's
/// `quorum_timeout`. On timeout, puts the configured error or warning into `to_client` just
/// before its final ReadyForQuery (the client's COMMIT response is held there).
pub(super) async fn await_quorum(
    state: &ClusterState,
    lsn: Option<Lsn>,
    needed: usize,
    to_client: &mut BytesMut,
) -> bool {
    let settings = state.settings.load_full();
    let message = match lsn {
        Some(lsn) => {
            let deadline = Instant::now() + settings.quorum_timeout;
            let reached = state
                .wait_for(deadline, |view| {
                    (view.replicas_at(lsn) >= needed).then_some(())
                })
                .await
                .is_some();
            if reached {
                return true;
            }
            let have = state.view.read().replicas_at(lsn);
            format!(
                "pgfleet: the transaction is committed on the primary of cluster `{}`, but only {have} of the {needed} replica(s) required by write_quorum replayed it (commit position {lsn}) within quorum_timeout {}ms",
                state.name,
                settings.quorum_timeout.as_millis()
            )
        }
        None => format!(
            "pgfleet: the transaction is committed on the primary of cluster `{}`, but its commit position could not be read, so write_quorum {needed} was not confirmed",
            state.name
        ),
    };
    let (severity, code, tag) = match settings.quorum_timeout_action {
        QuorumTimeoutAction::Error => ("ERROR", QUORUM_ERROR_SQLSTATE, b::ERROR_RESPONSE),
        QuorumTimeoutAction::Warning => ("WARNING", "01000", b::NOTICE_RESPONSE),
    };
    tracing::warn!(cluster = %state.name, ?lsn, needed, "write quorum not confirmed");
    insert_before_ready(to_client, |out| {
        ErrorFields::new(severity, code, &message).encode(out, tag)
    });
    false
}

/// Appends `message` to `out` before its trailing ReadyForQuery (or at the end if there is none).
fn insert_before_ready(out: &mut BytesMut, message: impl FnOnce(&mut BytesMut)) {
    const READY_LEN: usize = 6;
    let at = out.len().checked_sub(READY_LEN);
    // 'Z', length 5, status: the whole message, so a stray 'Z' inside row data cannot match.
    match at.filter(|&i| out[i] == b::READY_FOR_QUERY && out[i + 1..i + 5] == [0, 0, 0, 5]) {
        Some(i) => {
            let ready = out.split_off(i);
            message(out);
            out.extend_from_slice(&ready);
        }
        None => message(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgfleet_wire::backend::{encode_command_complete, encode_ready_for_query, TxStatus};

    #[test]
    fn the_notice_goes_before_ready_for_query() {
        let mut out = BytesMut::new();
        encode_command_complete(&mut out, "COMMIT");
        encode_ready_for_query(&mut out, TxStatus::Idle);
        let before = out.len();
        insert_before_ready(&mut out, |o| {
            ErrorFields::new("WARNING", "01000", "x").encode(o, b::NOTICE_RESPONSE)
        });
        assert!(out.len() > before);
        assert_eq!(out[out.len() - 6], b::READY_FOR_QUERY);
        let complete_len = 1 + 4 + "COMMIT\0".len();
        assert_eq!(out[complete_len], b::NOTICE_RESPONSE);
    }
}
