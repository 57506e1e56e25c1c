//! Test harness: feeds per-shard results (as protocol messages) into a `Merge` in a given
//! interleaving and collects the client's messages.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use pgfleet_merge::{Limits, Merge, MergeError, MergeOptions, Output, Poll};
use pgfleet_sql::merge_plan::MergePlan;
use pgfleet_wire::backend::{decode_command_complete, encode_command_complete};
use pgfleet_wire::rows::{
    decode_data_row, decode_row_description, encode_data_row_raw, encode_row_description,
    FieldDescription,
};

pub type Row = Vec<Option<Vec<u8>>>;

/// One shard's answer.
pub struct ShardResult {
    pub fields: Vec<FieldDescription>,
    pub rows: Vec<Row>,
}

/// What the client got.
#[derive(Debug)]
pub struct ClientResult {
    pub fields: Vec<FieldDescription>,
    pub rows: Vec<Row>,
    pub tag: String,
    /// The largest memory_used seen.
    pub peak_memory: usize,
}

pub fn field(name: &str, type_oid: u32, format: i16) -> FieldDescription {
    FieldDescription {
        name: name.to_string(),
        table_oid: 0,
        column: 0,
        type_oid,
        type_size: -1,
        type_modifier: -1,
        format,
    }
}

fn data_row(row: &Row) -> Bytes {
    let values: Vec<Option<&[u8]>> = row.iter().map(|v| v.as_deref()).collect();
    let mut out = BytesMut::new();
    encode_data_row_raw(&mut out, &values);
    out.freeze()
}

/// Runs the merge. `schedule` picks, at each step, which shard (among those the merge wants
/// rows from) delivers its next message; the merge is polled after every message, and the test
/// checks that it never blocks while input is available.
pub fn run(
    plan: &MergePlan,
    shards: &[ShardResult],
    limits: Limits,
    memory_limit: usize,
    schedule: &[u8],
) -> Result<ClientResult, MergeError> {
    let mut merge = Merge::new(
        plan,
        shards.len(),
        MergeOptions {
            memory_limit,
            emit_row_description: true,
            limits,
        },
    );
    // Next message index per shard: 0 = RowDescription, 1..=n rows, n+1 CommandComplete.
    let mut pos = vec![0usize; shards.len()];
    let mut out = ClientResult {
        fields: Vec::new(),
        rows: Vec::new(),
        tag: String::new(),
        peak_memory: 0,
    };
    let mut step = 0usize;
    loop {
        loop {
            match merge.poll()? {
                Poll::Ready(Output::RowDescription(b)) => {
                    out.fields = decode_row_description(&b[5..]).expect("RowDescription")
                }
                Poll::Ready(Output::DataRow(b)) => out.rows.push(
                    decode_data_row(&b[5..])
                        .expect("DataRow")
                        .into_iter()
                        .map(|v| v.map(<[u8]>::to_vec))
                        .collect(),
                ),
                Poll::Ready(Output::CommandComplete(b)) => {
                    out.tag = decode_command_complete(&b[5..]).expect("tag").to_string()
                }
                Poll::NeedInput => break,
                Poll::Finished => return Ok(out),
            }
        }
        // Shards that can deliver: RowDescription always; rows only when wanted.
        let ready: Vec<usize> = (0..shards.len())
            .filter(|&s| pos[s] == 0 || (pos[s] <= shards[s].rows.len() + 1 && merge.wants_rows(s)))
            .collect();
        assert!(!ready.is_empty(), "merge waits for input but wants none");
        let s = ready[schedule
            .get(step % schedule.len().max(1))
            .copied()
            .unwrap_or(0) as usize
            % ready.len()];
        step += 1;
        let shard = &shards[s];
        if pos[s] == 0 {
            let mut b = BytesMut::new();
            encode_row_description(&mut b, &shard.fields);
            merge.push_row_description(s, &b[5..])?;
        } else if pos[s] <= shard.rows.len() {
            merge.push_data_row(s, data_row(&shard.rows[pos[s] - 1]))?;
        } else {
            let mut b = BytesMut::new();
            encode_command_complete(&mut b, &format!("SELECT {}", shard.rows.len()));
            merge.shard_done(s)?;
        }
        pos[s] += 1;
        out.peak_memory = out.peak_memory.max(merge.memory_used());
    }
}
