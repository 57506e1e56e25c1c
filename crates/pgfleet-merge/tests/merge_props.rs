//! Property tests: for random data split over k shards, merging what each shard returns for the
//! per-shard SQL equals the answer over all data at once. The shards are simulated here (each
//! computes its part of the per-shard query in plain Rust); the oracle is computed independently
//! of the merge (integers, i128-scaled decimals, byte strings).

mod common;

use std::cmp::Ordering;

use common::{field, run, Row, ShardResult};
use pgfleet_merge::numeric::Numeric;
use pgfleet_merge::{Limits, SHARD_QUEUE_ROWS};
use pgfleet_sql::merge_plan::{plan_select, AllSharded, MergeMode};
use proptest::prelude::*;

const INT4: u32 = 23;
const INT8: u32 = 20;
const TEXT: u32 = 25;
const NUMERIC: u32 = 1700;
const BOOL: u32 = 16;

/// One row of table t(id int8, g int4, a int4, t text, n numeric).
#[derive(Clone, Debug)]
struct Data {
    id: i64,
    g: Option<i32>,
    a: Option<i32>,
    t: Option<String>,
    /// mantissa, scale
    n: Option<(i64, u32)>,
    shard: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum V {
    Int(i64),
    Text(String),
    Num(i64, u32),
    Bool(bool),
}

fn scaled(m: i64, s: u32) -> i128 {
    i128::from(m) * 10i128.pow(6 - s)
}

fn cmp_v(a: &V, b: &V) -> Ordering {
    match (a, b) {
        (V::Int(x), V::Int(y)) => x.cmp(y),
        (V::Text(x), V::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (V::Num(m1, s1), V::Num(m2, s2)) => scaled(*m1, *s1).cmp(&scaled(*m2, *s2)),
        (V::Bool(x), V::Bool(y)) => x.cmp(y),
        _ => panic!("mixed types"),
    }
}

fn num_text(m: i64, s: u32) -> String {
    let neg = m < 0;
    let digits = m.unsigned_abs().to_string();
    let digits = format!("{:0>width$}", digits, width = s as usize + 1);
    let (i, f) = digits.split_at(digits.len() - s as usize);
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(i);
    if s > 0 {
        out.push('.');
        out.push_str(f);
    }
    out
}

fn encode(v: &Option<V>, type_oid: u32, binary: bool) -> Option<Vec<u8>> {
    let v = v.as_ref()?;
    Some(match (v, binary) {
        (V::Int(i), false) => i.to_string().into_bytes(),
        (V::Int(i), true) if type_oid == INT4 => (*i as i32).to_be_bytes().to_vec(),
        (V::Int(i), true) => i.to_be_bytes().to_vec(),
        (V::Text(t), _) => t.clone().into_bytes(),
        (V::Num(m, s), false) => num_text(*m, *s).into_bytes(),
        (V::Num(m, s), true) => {
            let mut b = Vec::new();
            Numeric::parse(&num_text(*m, *s))
                .expect("numeric")
                .encode_binary(&mut b);
            b
        }
        (V::Bool(b), false) => {
            if *b {
                b"t".to_vec()
            } else {
                b"f".to_vec()
            }
        }
        (V::Bool(b), true) => vec![u8::from(*b)],
    })
}

fn column(d: &Data, name: &str) -> Option<V> {
    match name {
        "id" => Some(V::Int(d.id)),
        "g" => d.g.map(|x| V::Int(x.into())),
        "a" => d.a.map(|x| V::Int(x.into())),
        "t" => d.t.clone().map(V::Text),
        "n" => d.n.map(|(m, s)| V::Num(m, s)),
        _ => panic!("{name}"),
    }
}

fn type_of(name: &str) -> u32 {
    match name {
        "id" => INT8,
        "g" | "a" => INT4,
        "t" => TEXT,
        _ => NUMERIC,
    }
}

fn data_strategy() -> impl Strategy<Value = (Vec<Data>, usize)> {
    (1usize..5)
        .prop_flat_map(|k| {
            let row = (
                prop::option::weighted(0.85, 0i32..5),
                prop::option::weighted(0.85, -50i32..50),
                prop::option::weighted(
                    0.85,
                    prop::sample::select(vec!["", "a", "B", "b", "é", "ab", "a b", "Z"]),
                ),
                prop::option::weighted(0.85, (-100_000i64..100_000, 0u32..4)),
                0..k,
            );
            (prop::collection::vec(row, 0..50), Just(k))
        })
        .prop_map(|(rows, k)| {
            let data = rows
                .into_iter()
                .enumerate()
                .map(|(i, (g, a, t, n, shard))| Data {
                    id: i as i64,
                    g,
                    a,
                    t: t.map(str::to_string),
                    n,
                    shard,
                })
                .collect();
            (data, k)
        })
}

#[derive(Clone, Debug)]
struct Key {
    col: &'static str,
    desc: bool,
    nulls_first: bool,
}

fn cmp_rows(a: &Data, b: &Data, keys: &[Key]) -> Ordering {
    for k in keys {
        let (x, y) = (column(a, k.col), column(b, k.col));
        let o = match (&x, &y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => {
                if k.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (Some(_), None) => {
                if k.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (Some(x), Some(y)) => {
                let o = cmp_v(x, y);
                if k.desc {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn limits_sql(limit: Option<u64>, offset: u64) -> String {
    let mut s = String::new();
    if let Some(l) = limit {
        s.push_str(&format!(" LIMIT {l}"));
    }
    if offset > 0 {
        s.push_str(&format!(" OFFSET {offset}"));
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// ORDER BY (1–3 random keys plus id) with LIMIT/OFFSET, select lists that may leave sort
    /// columns out (hidden helper columns), text or binary format per column.
    #[test]
    fn sorted_merge_equals_global_sort(
        (data, k) in data_strategy(),
        select in prop::sample::subsequence(vec!["g", "a", "t", "n"], 0..=4),
        keys in prop::collection::vec((prop::sample::select(vec!["g", "a", "t", "n"]), any::<bool>(), any::<bool>()), 1..4),
        limit in prop::option::of(0u64..20),
        offset in prop::option::weighted(0.5, 0u64..10),
        binary in prop::collection::vec(any::<bool>(), 6),
        schedule in prop::collection::vec(any::<u8>(), 1..40),
    ) {
        let offset = offset.unwrap_or(0);
        let mut keys: Vec<Key> = keys.into_iter().map(|(col, desc, nulls_first)| Key { col, desc, nulls_first }).collect();
        keys.push(Key { col: "id", desc: false, nulls_first: false });
        let mut cols = vec!["id"];
        cols.extend(select.iter().copied());
        let order = keys
            .iter()
            .map(|k| format!("{} {} NULLS {}", k.col, if k.desc { "DESC" } else { "ASC" }, if k.nulls_first { "FIRST" } else { "LAST" }))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT {} FROM t ORDER BY {order}{}", cols.join(", "), limits_sql(limit, offset));
        let q = plan_select(&sql, &AllSharded).expect("plans");
        // Hidden columns: sort columns outside the select list, in order of first use.
        let mut hidden: Vec<&str> = Vec::new();
        for k in &keys {
            if !cols.contains(&k.col) && !hidden.contains(&k.col) {
                hidden.push(k.col);
            }
        }
        prop_assert_eq!(&q.plan.mode, &MergeMode::Rows { hidden_columns: hidden.len() });
        let shard_cols: Vec<&str> = cols.iter().chain(hidden.iter()).copied().collect();
        let fmt = |i: usize| binary[i % binary.len()];
        let fields: Vec<_> = shard_cols.iter().enumerate().map(|(i, c)| field(c, type_of(c), i16::from(fmt(i)))).collect();
        let encode_row = |d: &Data, cs: &[&str]| -> Row {
            cs.iter().enumerate().map(|(i, c)| encode(&column(d, c), type_of(c), fmt(i))).collect()
        };
        let shard_limit = limit.map(|l| (l + offset) as usize);
        let shards: Vec<ShardResult> = (0..k)
            .map(|s| {
                let mut rows: Vec<&Data> = data.iter().filter(|d| d.shard == s).collect();
                rows.sort_by(|a, b| cmp_rows(a, b, &keys));
                rows.truncate(shard_limit.unwrap_or(usize::MAX));
                ShardResult { fields: fields.clone(), rows: rows.iter().map(|d| encode_row(d, &shard_cols)).collect() }
            })
            .collect();
        let limits = Limits::resolve(&q.plan, |_| None).expect("limits");
        let got = run(&q.plan, &shards, limits, 1 << 20, &schedule).expect("merge");
        let mut all: Vec<&Data> = data.iter().collect();
        all.sort_by(|a, b| cmp_rows(a, b, &keys));
        let want: Vec<Row> = all
            .iter()
            .skip(offset as usize)
            .take(limit.map_or(usize::MAX, |l| l as usize))
            .map(|d| encode_row(d, &cols))
            .collect();
        prop_assert_eq!(&got.fields, &fields[..cols.len()].to_vec());
        prop_assert_eq!(got.tag, format!("SELECT {}", want.len()));
        prop_assert_eq!(got.rows, want);
        // Bounded memory: never more than the per-shard queues (plus one heap row each).
        let max_row = shards.iter().flat_map(|s| s.rows.iter()).map(|r| r.iter().map(|v| v.as_ref().map_or(4, |b| b.len() + 4)).sum::<usize>() + 7).max().unwrap_or(0);
        prop_assert!(got.peak_memory <= k * (SHARD_QUEUE_ROWS + 1) * (max_row + 64), "peak {}", got.peak_memory);
    }

    /// GROUP BY g with count/sum/min/max/avg/bool_or, HAVING, ORDER BY, LIMIT/OFFSET.
    #[test]
    fn grouped_aggregates_equal_global_aggregates(
        (data, k) in data_strategy(),
        having in 0i64..4,
        limit in prop::option::of(0u64..6),
        offset in prop::option::weighted(0.3, 0u64..3),
        binary in prop::collection::vec(any::<bool>(), 11),
        schedule in prop::collection::vec(any::<u8>(), 1..40),
    ) {
        let offset = offset.unwrap_or(0);
        let sql = format!(
            "SELECT g, count(*), count(a), sum(a), min(a), max(a), avg(a), sum(n), min(t), max(n), bool_or(a > 0) \
             FROM t GROUP BY g HAVING count(*) >= {having} ORDER BY g DESC{}",
            limits_sql(limit, offset)
        );
        let q = plan_select(&sql, &AllSharded).expect("plans");
        prop_assert_eq!(
            q.sql,
            "SELECT g, count(*) AS count, count(a) AS count, sum(a) AS sum, min(a) AS min, max(a) AS max, sum(a) AS avg, sum(n) AS sum, min(t) AS min, max(n) AS max, bool_or(a > 0) AS bool_or FROM t GROUP BY g"
        );
        let types = [INT4, INT8, INT8, INT8, INT4, INT4, INT8, NUMERIC, TEXT, NUMERIC, BOOL];
        let fields: Vec<_> = types.iter().enumerate().map(|(i, t)| field(&format!("c{i}"), *t, i16::from(binary[i]))).collect();
        // Partial (or, over all rows, final) aggregates of one group's rows.
        struct Agg { count: i64, count_a: i64, sum_a: Option<i64>, min_a: Option<i64>, max_a: Option<i64>, sum_n: Option<(i128, u32)>, min_t: Option<String>, max_n: Option<(i64, u32)>, any_pos: Option<bool> }
        fn aggregate(rows: &[&Data]) -> Agg {
            let a: Vec<i64> = rows.iter().filter_map(|d| d.a.map(i64::from)).collect();
            let n: Vec<(i64, u32)> = rows.iter().filter_map(|d| d.n).collect();
            Agg {
                count: rows.len() as i64,
                count_a: a.len() as i64,
                sum_a: (!a.is_empty()).then(|| a.iter().sum()),
                min_a: a.iter().min().copied(),
                max_a: a.iter().max().copied(),
                sum_n: (!n.is_empty()).then(|| (n.iter().map(|(m, s)| scaled(*m, *s)).sum(), n.iter().map(|x| x.1).max().unwrap_or(0))),
                min_t: rows.iter().filter_map(|d| d.t.clone()).min_by(|x, y| x.as_bytes().cmp(y.as_bytes())),
                max_n: n.iter().copied().max_by(|x, y| scaled(x.0, x.1).cmp(&scaled(y.0, y.1))),
                any_pos: (!a.is_empty()).then(|| a.iter().any(|x| *x > 0)),
            }
        }
        fn groups(rows: &[&Data]) -> Vec<(Option<i32>, Vec<Data>)> {
            let mut keys: Vec<Option<i32>> = rows.iter().map(|d| d.g).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().map(|g| (g, rows.iter().filter(|d| d.g == g).map(|d| (*d).clone()).collect())).collect()
        }
        let shards: Vec<ShardResult> = (0..k)
            .map(|s| {
                let mine: Vec<&Data> = data.iter().filter(|d| d.shard == s).collect();
                let rows = groups(&mine)
                    .into_iter()
                    .map(|(g, rows)| {
                        let r: Vec<&Data> = rows.iter().collect();
                        let p = aggregate(&r);
                        // The shard's sum(n) has the group's largest scale, as PostgreSQL's.
                        let sum_n = p.sum_n.map(|(v, s)| V::Num((v / 10i128.pow(6 - s)) as i64, s));
                        let vals = [
                            g.map(|x| V::Int(x.into())), Some(V::Int(p.count)), Some(V::Int(p.count_a)),
                            p.sum_a.map(V::Int), p.min_a.map(V::Int), p.max_a.map(V::Int), p.sum_a.map(V::Int),
                            sum_n, p.min_t.map(V::Text), p.max_n.map(|(m, s)| V::Num(m, s)), p.any_pos.map(V::Bool),
                        ];
                        vals.iter().enumerate().map(|(i, v)| encode(v, types[i], binary[i])).collect()
                    })
                    .collect();
                ShardResult { fields: fields.clone(), rows }
            })
            .collect();
        let limits = Limits::resolve(&q.plan, |_| None).expect("limits");
        let got = run(&q.plan, &shards, limits, 1 << 20, &schedule).expect("merge");
        // Oracle over all rows.
        let all: Vec<&Data> = data.iter().collect();
        let mut want = groups(&all);
        want.retain(|(_, rows)| rows.len() as i64 >= having);
        want.sort_by(|a, b| match (a.0, b.0) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less, // DESC: NULLS FIRST
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => y.cmp(&x),
        });
        let want: Vec<_> = want.into_iter().skip(offset as usize).take(limit.map_or(usize::MAX, |l| l as usize)).collect();
        prop_assert_eq!(got.tag, format!("SELECT {}", want.len()));
        prop_assert_eq!(got.fields[6].type_oid, NUMERIC);
        prop_assert_eq!(got.rows.len(), want.len());
        let dec = |v: &Option<Vec<u8>>, t: u32, bin: bool| -> Option<String> {
            let b = v.as_ref()?;
            Some(match (t, bin) {
                (_, false) => String::from_utf8(b.clone()).expect("utf8"),
                (INT4, true) => i32::from_be_bytes(b[..].try_into().expect("4")).to_string(),
                (INT8, true) => i64::from_be_bytes(b[..].try_into().expect("8")).to_string(),
                (NUMERIC, true) => Numeric::decode_binary(b).expect("numeric").to_text(),
                (BOOL, true) => if b[0] != 0 { "t".into() } else { "f".into() },
                _ => String::from_utf8(b.clone()).expect("utf8"),
            })
        };
        for (row, (g, rows)) in got.rows.iter().zip(&want) {
            let r: Vec<&Data> = rows.iter().collect();
            let w = aggregate(&r);
            let cell = |i: usize| dec(&row[i], types[i], binary[i]);
            prop_assert_eq!(cell(0), g.map(|x| x.to_string()));
            prop_assert_eq!(cell(1), Some(w.count.to_string()));
            prop_assert_eq!(cell(2), Some(w.count_a.to_string()));
            prop_assert_eq!(cell(3), w.sum_a.map(|x| x.to_string()));
            prop_assert_eq!(cell(4), w.min_a.map(|x| x.to_string()));
            prop_assert_eq!(cell(5), w.max_a.map(|x| x.to_string()));
            // avg: numeric, correctly rounded at its scale, with at least 16 significant digits.
            match (dec(&row[6], NUMERIC, binary[6]), w.sum_a) {
                (None, None) => {}
                (Some(avg), Some(sum)) => {
                    let (int, frac) = avg.split_once('.').expect("avg has a fraction");
                    let scale = frac.len() as u32;
                    prop_assert!(scale >= 16, "{}", avg);
                    let digits: i128 = format!("{int}{frac}").parse().expect("digits");
                    let digits = if avg.starts_with('-') && digits > 0 { -digits } else { digits };
                    let exact = i128::from(sum) * 10i128.pow(scale);
                    let err = (digits * i128::from(w.count_a) - exact).abs();
                    prop_assert!(2 * err <= i128::from(w.count_a), "avg {} of sum {} / {}", avg, sum, w.count_a);
                }
                (a, s) => prop_assert!(false, "avg {:?} for sum {:?}", a, s),
            }
            prop_assert_eq!(cell(7), w.sum_n.map(|(v, s)| num_text((v / 10i128.pow(6 - s)) as i64, s)));
            prop_assert_eq!(cell(8), w.min_t);
            let max_n = cell(9).map(|t| Numeric::parse(&t).expect("numeric"));
            prop_assert_eq!(max_n.map(|n| n.normalized()), w.max_n.map(|(m, s)| Numeric::parse(&num_text(m, s)).expect("n").normalized()));
            prop_assert_eq!(cell(10), w.any_pos.map(|b| if b { "t".to_string() } else { "f".to_string() }));
        }
    }

    /// SELECT DISTINCT with and without ORDER BY, with LIMIT/OFFSET when ordered.
    #[test]
    fn distinct_equals_global_distinct(
        (data, k) in data_strategy(),
        ordered in any::<bool>(),
        limit in prop::option::of(0u64..8),
        offset in prop::option::weighted(0.3, 0u64..4),
        binary in any::<bool>(),
        schedule in prop::collection::vec(any::<u8>(), 1..40),
    ) {
        let (offset, limit) = if ordered { (offset.unwrap_or(0), limit) } else { (0, None) };
        let sql = if ordered {
            format!("SELECT DISTINCT t, g FROM t ORDER BY t NULLS FIRST, g DESC{}", limits_sql(limit, offset))
        } else {
            "SELECT DISTINCT t, g FROM t".to_string()
        };
        let q = plan_select(&sql, &AllSharded).expect("plans");
        prop_assert!(q.plan.distinct);
        let keys = [Key { col: "t", desc: false, nulls_first: true }, Key { col: "g", desc: true, nulls_first: true }];
        let fields = vec![field("t", TEXT, i16::from(binary)), field("g", INT4, i16::from(binary))];
        let project = |d: &Data| -> Row { vec![encode(&column(d, "t"), TEXT, binary), encode(&column(d, "g"), INT4, binary)] };
        let distinct_sorted = |rows: Vec<&Data>| -> Vec<Row> {
            let mut rows = rows;
            rows.sort_by(|a, b| cmp_rows(a, b, &keys));
            let mut out: Vec<Row> = Vec::new();
            for d in rows {
                let r = project(d);
                if out.last() != Some(&r) {
                    out.push(r);
                }
            }
            out
        };
        let shards: Vec<ShardResult> = (0..k)
            .map(|s| {
                let mut rows = distinct_sorted(data.iter().filter(|d| d.shard == s).collect());
                if let Some(l) = limit {
                    rows.truncate((l + offset) as usize);
                }
                if !ordered {
                    rows.reverse(); // any order
                }
                ShardResult { fields: fields.clone(), rows }
            })
            .collect();
        let got = run(&q.plan, &shards, Limits::resolve(&q.plan, |_| None).expect("limits"), 1 << 20, &schedule).expect("merge");
        let all = distinct_sorted(data.iter().collect());
        let want: Vec<Row> = all.into_iter().skip(offset as usize).take(limit.map_or(usize::MAX, |l| l as usize)).collect();
        prop_assert_eq!(got.tag, format!("SELECT {}", want.len()));
        let mut rows = got.rows;
        if !ordered {
            rows.sort();
            let mut w = want.clone();
            w.sort();
            prop_assert_eq!(rows, w);
        } else {
            prop_assert_eq!(rows, want);
        }
    }

    /// string_agg and array_agg: every element exactly once (their order is unspecified in
    /// PostgreSQL too without ORDER BY inside the aggregate).
    #[test]
    fn string_and_array_agg_keep_every_element(
        (data, k) in data_strategy(),
        binary in any::<bool>(),
        schedule in prop::collection::vec(any::<u8>(), 1..40),
    ) {
        let q = plan_select("SELECT string_agg(t, '|'), array_agg(a) FROM t", &AllSharded).expect("plans");
        let fields = vec![field("string_agg", TEXT, i16::from(binary)), field("array_agg", 1007, 0)];
        let shards: Vec<ShardResult> = (0..k)
            .map(|s| {
                let mine: Vec<&Data> = data.iter().filter(|d| d.shard == s).collect();
                let ts: Vec<String> = mine.iter().filter_map(|d| d.t.clone()).collect();
                let arr = (!mine.is_empty()).then(|| {
                    format!("{{{}}}", mine.iter().map(|d| d.a.map_or("NULL".to_string(), |x| x.to_string())).collect::<Vec<_>>().join(",")).into_bytes()
                });
                ShardResult { fields: fields.clone(), rows: vec![vec![(!ts.is_empty()).then(|| ts.join("|").into_bytes()), arr]] }
            })
            .collect();
        let got = run(&q.plan, &shards, Limits::default(), 1 << 20, &schedule).expect("merge");
        prop_assert_eq!(got.tag.as_str(), "SELECT 1");
        let mut want_t: Vec<String> = data.iter().filter_map(|d| d.t.clone()).collect();
        want_t.sort();
        let mut got_t: Vec<String> = got.rows[0][0].as_ref().map(|b| String::from_utf8(b.clone()).expect("utf8").split('|').map(str::to_string).collect()).unwrap_or_default();
        got_t.sort();
        prop_assert_eq!(got_t, want_t);
        let mut want_a: Vec<String> = data.iter().map(|d| d.a.map_or("NULL".to_string(), |x| x.to_string())).collect();
        want_a.sort();
        let mut got_a: Vec<String> = got.rows[0][1].as_ref().map(|b| {
            let s = String::from_utf8(b.clone()).expect("utf8");
            s.trim_start_matches('{').trim_end_matches('}').split(',').map(str::to_string).collect()
        }).unwrap_or_default();
        got_a.sort();
        prop_assert_eq!(got_a, want_a);
    }
}

#[test]
fn group_memory_limit_is_a_clear_error() {
    let q = plan_select("SELECT g, count(*) FROM t GROUP BY g", &AllSharded).expect("plans");
    let fields = vec![field("g", INT8, 0), field("count", INT8, 0)];
    let rows: Vec<Row> = (0..1000)
        .map(|i| vec![Some(i.to_string().into_bytes()), Some(b"1".to_vec())])
        .collect();
    let shards = vec![
        ShardResult {
            fields: fields.clone(),
            rows,
        },
        ShardResult {
            fields,
            rows: vec![],
        },
    ];
    let err =
        run(&q.plan, &shards, Limits::default(), 10_000, &[0, 1]).expect_err("over the limit");
    assert_eq!(err.sqlstate(), "53200");
    assert!(
        err.to_string().contains("proxy.merge_memory_limit"),
        "{err}"
    );
    assert!(err.to_string().contains("GROUP BY"), "{err}");
}

#[test]
fn float_sums_are_refused_when_the_types_arrive() {
    let q = plan_select("SELECT sum(x) FROM t", &AllSharded).expect("plans");
    let shards = vec![ShardResult {
        fields: vec![field("sum", 701, 0)],
        rows: vec![vec![Some(b"1.5".to_vec())]],
    }];
    let err = run(&q.plan, &shards, Limits::default(), 1 << 20, &[0]).expect_err("refused");
    assert_eq!(err.sqlstate(), "0A000");
    assert!(
        err.to_string().contains(
            "sum() (only exact integer and numeric sums are merged) over double precision values"
        ),
        "{err}"
    );
}

#[test]
fn out_of_order_shard_rows_are_detected() {
    let q = plan_select("SELECT t FROM t ORDER BY t", &AllSharded).expect("plans");
    // A shard sorting with a non-C collation ('a' before 'B').
    let shards = vec![ShardResult {
        fields: vec![field("t", TEXT, 0)],
        rows: vec![vec![Some(b"a".to_vec())], vec![Some(b"B".to_vec())]],
    }];
    let err = run(&q.plan, &shards, Limits::default(), 1 << 20, &[0]).expect_err("detected");
    assert_eq!(err.sqlstate(), "0A000");
    assert!(
        err.to_string()
            .contains("shard 0 returned rows out of ORDER BY order for key 1"),
        "{err}"
    );
}

#[test]
fn limit_parameters_resolve_and_negative_is_refused() {
    let q = plan_select(
        "SELECT id FROM t ORDER BY id LIMIT $1 OFFSET $2",
        &AllSharded,
    )
    .expect("plans");
    let l = Limits::resolve(&q.plan, |n| Some(if n == 1 { 5 } else { 2 })).expect("limits");
    assert_eq!(
        l,
        Limits {
            limit: Some(5),
            offset: 2
        }
    );
    let l = Limits::resolve(&q.plan, |_| None).expect("NULL = none");
    assert_eq!(
        l,
        Limits {
            limit: None,
            offset: 0
        }
    );
    let err =
        Limits::resolve(&q.plan, |n| Some(if n == 1 { -1 } else { 0 })).expect_err("negative");
    assert_eq!(err.sqlstate(), "2201W");
}

#[test]
fn aggregate_without_rows_returns_one_row() {
    let q = plan_select("SELECT count(*), sum(a), avg(a) FROM t", &AllSharded).expect("plans");
    let fields = vec![
        field("count", INT8, 0),
        field("sum", INT8, 0),
        field("avg", INT8, 1),
        field("h", INT8, 0),
    ];
    let shards: Vec<ShardResult> = (0..2)
        .map(|_| ShardResult {
            fields: fields.clone(),
            rows: vec![vec![Some(b"0".to_vec()), None, None, Some(b"0".to_vec())]],
        })
        .collect();
    let got = run(&q.plan, &shards, Limits::default(), 1 << 20, &[0, 1]).expect("merge");
    assert_eq!(got.rows, vec![vec![Some(b"0".to_vec()), None, None]]);
    assert_eq!(got.fields[2].type_oid, NUMERIC);
    assert_eq!(got.fields[2].format, 1);
    assert_eq!(got.tag, "SELECT 1");
}
