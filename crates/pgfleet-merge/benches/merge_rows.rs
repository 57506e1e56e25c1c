//! The merge's cost per row: four shards' results (250 rows each) merged k-way on an int8
//! ORDER BY key, and passed through without ORDER BY (a cross-shard scan), as the proxy feeds
//! them (RowDescription, then rows round-robin while the merge wants them, then the shard's end).

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pgfleet_merge::{Limits, Merge, MergeOptions, Poll};
use pgfleet_sql::merge_plan::{plan_select, AllSharded, MergePlan};
use pgfleet_wire::rows::{encode_data_row_raw, encode_row_description, FieldDescription};

const SHARDS: usize = 4;
const ROWS_PER_SHARD: usize = 250;
const INT8: u32 = 20;

fn field(name: &str) -> FieldDescription {
    FieldDescription {
        name: name.to_string(),
        table_oid: 0,
        column: 0,
        type_oid: INT8,
        type_size: 8,
        type_modifier: -1,
        format: 0,
    }
}

/// Each shard's rows `(id, x)` in text format, ascending by x within the shard.
fn shard_rows() -> Vec<Vec<Bytes>> {
    (0..SHARDS)
        .map(|s| {
            (0..ROWS_PER_SHARD)
                .map(|i| {
                    let x = (i * SHARDS + s) as u64 * 2_654_435_761 % 4_294_967_291;
                    (i as u64 * 7 + s as u64, x)
                })
                .collect::<Vec<_>>()
        })
        .map(|mut rows| {
            rows.sort_by_key(|&(_, x)| x);
            rows.into_iter()
                .map(|(id, x)| {
                    let (id, x) = (id.to_string(), x.to_string());
                    let mut out = BytesMut::new();
                    encode_data_row_raw(&mut out, &[Some(id.as_bytes()), Some(x.as_bytes())]);
                    out.freeze()
                })
                .collect()
        })
        .collect()
}

/// Runs one merge over `rows`; returns the rows the client got.
fn merge_once(plan: &MergePlan, description: &[u8], rows: &[Vec<Bytes>]) -> usize {
    let mut merge = Merge::new(
        plan,
        SHARDS,
        MergeOptions {
            memory_limit: 64 << 20,
            emit_row_description: true,
            limits: Limits::default(),
        },
    );
    let mut out = 0usize;
    let mut next = [0usize; SHARDS];
    let mut done = [false; SHARDS];
    for s in 0..SHARDS {
        merge
            .push_row_description(s, description)
            .expect("RowDescription");
    }
    loop {
        loop {
            match merge.poll().expect("poll") {
                Poll::Ready(o) => out += usize::from(o.bytes()[0] == b'D'),
                Poll::NeedInput => break,
                Poll::Finished => return out,
            }
        }
        for s in 0..SHARDS {
            if done[s] || !merge.wants_rows(s) {
                continue;
            }
            match rows[s].get(next[s]) {
                Some(row) => {
                    merge.push_data_row(s, row.clone()).expect("row");
                    next[s] += 1;
                }
                None => {
                    merge.shard_done(s).expect("shard done");
                    done[s] = true;
                }
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    let rows = shard_rows();
    let mut description = BytesMut::new();
    encode_row_description(&mut description, &[field("id"), field("x")]);
    let description = description.split_off(5);
    let mut group = c.benchmark_group("merge_rows");
    group.throughput(Throughput::Elements((SHARDS * ROWS_PER_SHARD) as u64));
    for (name, sql) in [
        ("order_by_int8", "SELECT id, x FROM t ORDER BY x"),
        ("unordered", "SELECT id, x FROM t"),
    ] {
        let plan = plan_select(sql, &AllSharded).expect("plans").plan;
        assert_eq!(
            merge_once(&plan, &description, &rows),
            SHARDS * ROWS_PER_SHARD
        );
        group.bench_function(name, |b| {
            b.iter(|| merge_once(black_box(&plan), &description, &rows))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
