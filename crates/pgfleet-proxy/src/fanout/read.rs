//! A SELECT across shards: read the shards' results as the merge asks for them (only from shards
//! it wants rows from, which bounds memory), and stream the merged result to the client.

use bytes::{Bytes, BytesMut};
use futures::future::select_all;
use pgfleet_merge::{Merge, MergeError, Poll};
use pgfleet_wire::backend::encode_error;
use pgfleet_wire::tag::backend as b;
use pgfleet_wire::Frame;

use super::legs::Leg;
use crate::client::ClientConn;
use crate::ProxyError;

/// Client output is written once this much is buffered.
const FLUSH_AT: usize = 64 * 1024;

/// Before waiting for the shards, output is written once this much is buffered (or when it holds a
/// notice): PostgreSQL's own send buffer size, so the client sees a slow result arrive as it would
/// from one server. A small answer (a RowDescription, a few rows) waits for the end and goes out
/// in one write, not two.
const FLUSH_BEFORE_WAIT_AT: usize = 8 * 1024;

/// Whether `leg` must be read now: its preamble, the part before its rows, its rows when the
/// merge wants them, and whatever follows its last row.
fn wanted(leg: &Leg, merge: &Merge) -> bool {
    !leg.ready
        && !leg.broken
        && (leg.preamble > 0
            || merge.is_finished()
            || !leg.described
            || leg.completed
            || merge.wants_rows(leg.slot))
}

/// The ErrorResponse for a merge failure.
pub(crate) fn merge_error(e: &MergeError) -> Bytes {
    let mut out = BytesMut::new();
    encode_error(&mut out, "ERROR", e.sqlstate(), &format!("pgfleet: {e}"));
    out.freeze()
}

/// Runs the merge over `legs` (their requests are sent) and streams the merged result to the
/// client after what `out` holds (what the client gets first, e.g. ParseComplete/BindComplete).
/// A failure is an ErrorResponse after the rows that went out before it, like a server sends.
/// The end of the answer stays in `out` for the caller to send with its ReadyForQuery, so a
/// small answer reaches the client in one write. Legs that are not ready afterwards are in an
/// unknown state (the caller closes them).
pub(crate) async fn merged_read(
    legs: &mut [Leg],
    merge: &mut Merge,
    client: &mut ClientConn,
    out: &mut BytesMut,
) -> Result<(), ProxyError> {
    let mut failure: Option<Bytes> = None;
    let mut urgent = false;
    loop {
        if failure.is_none() {
            loop {
                match merge.poll() {
                    Ok(Poll::Ready(o)) => out.extend_from_slice(o.bytes()),
                    Ok(Poll::NeedInput | Poll::Finished) => break,
                    Err(e) => {
                        failure = Some(merge_error(&e));
                        break;
                    }
                }
            }
        }
        if failure.is_some() || legs.iter().all(|l| l.ready) {
            break;
        }
        if out.len() >= FLUSH_AT {
            client.write_all(out).await?;
            out.clear();
        }
        // Messages already buffered first.
        let mut progressed = false;
        for leg in legs.iter_mut() {
            while wanted(leg, merge) && failure.is_none() {
                let frame = match leg.buffered_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        leg.broken = true;
                        failure = Some(server_failure(leg.shard, &e.to_string()));
                        break;
                    }
                };
                progressed = true;
                // PostgreSQL flushes a notice at once: so does pgfleet, at the next wait.
                urgent |= frame.tag() == b::NOTICE_RESPONSE;
                handle(leg, frame, merge, out, &mut failure);
            }
        }
        if progressed || failure.is_some() {
            continue;
        }
        if urgent || out.len() >= FLUSH_BEFORE_WAIT_AT {
            client.write_all(out).await?;
            out.clear();
            urgent = false;
        }
        let waits: Vec<_> = legs
            .iter_mut()
            .enumerate()
            .filter(|(_, l)| wanted(l, merge))
            .map(|(i, l)| Box::pin(async move { (i, l.server().fill().await) }))
            .collect();
        if waits.is_empty() {
            failure = Some(server_failure(
                usize::MAX,
                "the merge waits for rows that no shard can send",
            ));
            break;
        }
        let ((i, result), _, _) = select_all(waits).await;
        if let Err(e) = result {
            if let Some(leg) = legs.get_mut(i) {
                leg.broken = true;
                failure = Some(server_failure(leg.shard, &e.to_string()));
            }
        }
    }
    if let Some(f) = failure {
        out.extend_from_slice(&f);
    }
    Ok(())
}

/// One message of a shard's answer.
fn handle(
    leg: &mut Leg,
    frame: Frame,
    merge: &mut Merge,
    out: &mut BytesMut,
    failure: &mut Option<Bytes>,
) {
    let frame = match leg.classify(frame) {
        Ok(Some(f)) => f,
        Ok(None) => {
            if let (Some(e), None) = (&leg.preamble_error, &failure) {
                *failure = Some(e.raw().clone());
            }
            return;
        }
        Err(e) => {
            leg.broken = true;
            *failure = Some(server_failure(leg.shard, &e.to_string()));
            return;
        }
    };
    match frame.tag() {
        b::ROW_DESCRIPTION | b::DATA_ROW | b::COMMAND_COMPLETE if failure.is_none() => {
            if let Err(e) = merge.push(leg.slot, &frame) {
                *failure = Some(merge_error(&e));
            }
        }
        b::ERROR_RESPONSE if failure.is_none() => *failure = Some(frame.raw().clone()),
        b::NOTICE_RESPONSE => out.extend_from_slice(frame.raw()),
        _ => {}
    }
}

/// 08006-style error for a shard connection that failed mid-request.
pub(crate) fn server_failure(shard: usize, what: &str) -> Bytes {
    let mut out = BytesMut::new();
    let message = if shard == usize::MAX {
        format!("pgfleet: cross-shard query failed: {what}")
    } else {
        format!("pgfleet: shard {shard} failed during a cross-shard query: {what}")
    };
    encode_error(&mut out, "ERROR", "08006", &message);
    out.freeze()
}
