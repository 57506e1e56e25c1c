//! [`Merge`]: the push/pull state machine the proxy drives with each shard's result messages.

use bytes::{Bytes, BytesMut};
use pgfleet_sql::merge_plan::{MergeMode, MergePlan};
use pgfleet_wire::backend::encode_command_complete;
use pgfleet_wire::rows::{decode_row_description, encode_row_description, FieldDescription};
use pgfleet_wire::tag::backend as tag;
use pgfleet_wire::Frame;

use crate::error::MergeError;
use crate::groups::GroupMerge;
use crate::memory::Memory;
use crate::output::{Limits, Output, Poll};
use crate::rows::{RowMerge, RowPoll};

/// How one execution is merged.
#[derive(Clone, Copy, Debug)]
pub struct MergeOptions {
    /// Bytes the merge may hold (buffered rows, groups, DISTINCT keys): the value of the
    /// `proxy.merge_memory_limit` setting. Beyond it the merge fails with SQLSTATE 53200.
    pub memory_limit: usize,
    /// Whether to emit a RowDescription (simple protocol, or Describe of the portal in the
    /// extended protocol). Shards must send theirs either way: the merge needs the types.
    pub emit_row_description: bool,
    /// LIMIT/OFFSET with parameters resolved ([`Limits::resolve`]).
    pub limits: Limits,
}

enum Mode {
    Rows(Box<RowMerge>),
    Groups(Box<GroupMerge>),
}

/// Merges the results of one SELECT from several shards.
///
/// Feed each shard's RowDescription, DataRows and CommandComplete with [`Merge::push`] (or the
/// typed `push_*` methods) and take output with [`Merge::poll`] until [`Poll::Finished`].
/// When `poll` says [`Poll::NeedInput`], read from the shards for which [`Merge::wants_rows`] is
/// true; do not read from the others (that is the backpressure that bounds memory).
pub struct Merge {
    mode: Mode,
    limits: Limits,
    emit_row_description: bool,
    memory: Memory,
    shard_fields: Option<Vec<FieldDescription>>,
    described: Vec<bool>,
    done: Vec<bool>,
    row_description_sent: bool,
    pending_description: Option<Vec<FieldDescription>>,
    sent: u64,
    skipped: u64,
    finished: bool,
}

impl Merge {
    /// A merge of `shards` result streams following `plan`.
    pub fn new(plan: &MergePlan, shards: usize, options: MergeOptions) -> Merge {
        let mode = match &plan.mode {
            MergeMode::Rows { hidden_columns } => Mode::Rows(Box::new(RowMerge::new(
                *hidden_columns,
                &plan.sort,
                plan.distinct,
                shards,
            ))),
            MergeMode::Aggregate(a) => {
                Mode::Groups(Box::new(GroupMerge::new(a, &plan.sort, plan.distinct)))
            }
        };
        Merge {
            mode,
            limits: options.limits,
            emit_row_description: options.emit_row_description,
            memory: Memory {
                used: 0,
                limit: options.memory_limit,
            },
            shard_fields: None,
            described: vec![false; shards],
            done: vec![false; shards],
            row_description_sent: !options.emit_row_description,
            pending_description: None,
            sent: 0,
            skipped: 0,
            finished: false,
        }
    }

    /// Feeds one message from a shard: RowDescription, DataRow or CommandComplete. Other
    /// messages (ErrorResponse, ReadyForQuery, …) are the proxy's to handle.
    pub fn push(&mut self, shard: usize, frame: &Frame) -> Result<(), MergeError> {
        match frame.tag() {
            tag::ROW_DESCRIPTION => self.push_row_description(shard, frame.body()),
            tag::DATA_ROW => self.push_data_row(shard, frame.raw().clone()),
            tag::COMMAND_COMPLETE => self.shard_done(shard),
            other => Err(MergeError::Protocol(format!(
                "unexpected message '{}' from shard {shard} in a merged result",
                char::from(other).escape_default()
            ))),
        }
    }

    fn check_shard(&self, shard: usize) -> Result<(), MergeError> {
        if shard >= self.done.len() {
            return Err(MergeError::Protocol(format!(
                "no shard {shard} in this merge"
            )));
        }
        Ok(())
    }

    /// A shard's RowDescription body (the one for the portal: its format codes are the rows').
    pub fn push_row_description(&mut self, shard: usize, body: &[u8]) -> Result<(), MergeError> {
        self.check_shard(shard)?;
        let fields = decode_row_description(body)?;
        match &self.shard_fields {
            Some(first) => {
                let same = first.len() == fields.len()
                    && first
                        .iter()
                        .zip(&fields)
                        .all(|(a, b)| a.type_oid == b.type_oid && a.format == b.format);
                if !same {
                    return Err(MergeError::Protocol(format!(
                        "shard {shard} returned different columns than another shard (schemas differ between shards?)"
                    )));
                }
            }
            None => {
                let client = match &mut self.mode {
                    Mode::Rows(r) => r.describe(&fields)?,
                    Mode::Groups(g) => g.describe(&fields)?,
                };
                self.shard_fields = Some(fields);
                if self.emit_row_description {
                    self.pending_description = Some(client);
                }
            }
        }
        self.described[shard] = true;
        Ok(())
    }

    /// One DataRow message (whole, with tag and length) from a shard.
    pub fn push_data_row(&mut self, shard: usize, raw: Bytes) -> Result<(), MergeError> {
        self.check_shard(shard)?;
        if self.finished {
            return Ok(());
        }
        if self.shard_fields.is_none() {
            return Err(MergeError::Protocol(format!(
                "shard {shard} sent a row before any RowDescription"
            )));
        }
        if self.done[shard] {
            return Err(MergeError::Protocol(format!(
                "shard {shard} sent a row after CommandComplete"
            )));
        }
        if raw.len() < 5 || raw[0] != tag::DATA_ROW {
            return Err(MergeError::Protocol("not a DataRow message".into()));
        }
        match &mut self.mode {
            Mode::Rows(r) => r.push(shard, raw, &mut self.memory),
            Mode::Groups(g) => g.push(&raw, &mut self.memory),
        }
    }

    /// A shard's CommandComplete: it has no more rows.
    pub fn shard_done(&mut self, shard: usize) -> Result<(), MergeError> {
        self.check_shard(shard)?;
        self.done[shard] = true;
        Ok(())
    }

    /// Whether the merge wants more rows from `shard` now (false: leave them unread).
    pub fn wants_rows(&self, shard: usize) -> bool {
        if self.finished || self.done.get(shard).is_none_or(|d| *d) {
            return false;
        }
        match &self.mode {
            Mode::Rows(r) => r.wants(shard),
            Mode::Groups(_) => true,
        }
    }

    /// Whether CommandComplete has been produced (e.g. LIMIT reached before the shards ended).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Bytes currently held against the memory limit.
    pub fn memory_used(&self) -> usize {
        self.memory.used
    }

    /// The next message for the client, or what the merge waits for.
    pub fn poll(&mut self) -> Result<Poll, MergeError> {
        if self.finished {
            return Ok(Poll::Finished);
        }
        if !self.row_description_sent {
            match self.pending_description.take() {
                Some(fields) => {
                    self.row_description_sent = true;
                    let mut out = BytesMut::new();
                    encode_row_description(&mut out, &fields);
                    return Ok(Poll::Ready(Output::RowDescription(out.freeze())));
                }
                None if self.done.iter().all(|d| *d) => {
                    return Err(MergeError::Protocol(
                        "no shard sent a RowDescription for a merged result".into(),
                    ))
                }
                None => return Ok(Poll::NeedInput),
            }
        }
        let all_done = self.done.iter().all(|d| *d);
        if self.shard_fields.is_none() {
            if all_done {
                return Err(MergeError::Protocol(
                    "no shard sent a RowDescription for a merged result".into(),
                ));
            }
            return Ok(Poll::NeedInput);
        }
        loop {
            if self.limits.limit.is_some_and(|l| self.sent >= l) {
                return Ok(self.complete());
            }
            let next = match &mut self.mode {
                Mode::Rows(r) => r.next(&self.done, &mut self.memory)?,
                Mode::Groups(g) => g.next(all_done, &mut self.memory)?,
            };
            match next {
                RowPoll::NeedInput => return Ok(Poll::NeedInput),
                RowPoll::Exhausted => return Ok(self.complete()),
                RowPoll::Row(row) => {
                    if self.skipped < self.limits.offset {
                        self.skipped += 1;
                        continue;
                    }
                    self.sent += 1;
                    return Ok(Poll::Ready(Output::DataRow(row)));
                }
            }
        }
    }

    fn complete(&mut self) -> Poll {
        self.finished = true;
        let mut out = BytesMut::new();
        encode_command_complete(&mut out, &format!("SELECT {}", self.sent));
        Poll::Ready(Output::CommandComplete(out.freeze()))
    }
}
