//! The bind parameters, declared parameter types and result formats each shard gets for a
//! cross-shard statement: the client's, renumbered for a shard's own text (an INSERT split per
//! shard), with bytea declared for parameters the shards' text no longer uses, and LIMIT/OFFSET
//! values read from either format. Pure.

use pgfleet_sql::merge_plan::{MergeMode, ShardQuery};
use pgfleet_wire::frontend::BindParam;

use super::fanout::client_error;
use crate::ProxyError;

pub(super) type OwnedParam = Option<(bool, Vec<u8>)>;

/// A bind parameter as owned bytes (`None`: NULL; the format is kept for non-NULL values).
pub(super) fn owned_param(p: &BindParam<'_>) -> OwnedParam {
    p.value.map(|v| (p.binary, v.to_vec()))
}

pub(super) fn borrowed_param(p: &OwnedParam) -> BindParam<'_> {
    match p {
        Some((binary, v)) => BindParam {
            binary: *binary,
            value: Some(v),
        },
        None => BindParam {
            binary: false,
            value: None,
        },
    }
}

/// The parameters (and declared types) a shard's text takes: the original numbers `map` lists,
/// in order; all of them when there is no map.
pub(super) fn mapped_params<'a>(
    params: &'a [OwnedParam],
    types: &[u32],
    map: Option<&[u32]>,
) -> (Vec<BindParam<'a>>, Vec<u32>) {
    match map {
        None => (params.iter().map(borrowed_param).collect(), types.to_vec()),
        Some(map) => {
            let p = map
                .iter()
                .filter_map(|n| params.get(*n as usize - 1))
                .map(borrowed_param)
                .collect();
            let ty = if types.is_empty() {
                Vec::new()
            } else {
                map.iter()
                    .map(|n| types.get(*n as usize - 1).copied().unwrap_or(0))
                    .collect()
            };
            (p, ty)
        }
    }
}

/// The parameter types the shards' Parse declares: the client's, and for parameters the shards'
/// text no longer mentions (a LIMIT applied after the merge) bytea, which accepts any bytes in
/// either format, so the client's Bind still fits. Empty when nothing needs declaring.
pub(super) fn shard_param_types(declared: &[u32], bound: usize, unused: &[u32]) -> Vec<u32> {
    if unused.is_empty() {
        return declared.to_vec();
    }
    const BYTEA: u32 = 17;
    (1..=bound.max(declared.len()) as u32)
        .map(|n| {
            if unused.contains(&n) {
                BYTEA
            } else {
                declared.get(n as usize - 1).copied().unwrap_or(0)
            }
        })
        .collect()
}

/// An integer bind parameter (LIMIT/OFFSET), text or binary int2/int4/int8.
pub(super) fn int_param(binary: bool, v: &[u8]) -> Option<i64> {
    if !binary {
        return std::str::from_utf8(v).ok()?.trim().parse().ok();
    }
    match v.len() {
        8 => Some(i64::from_be_bytes(v.try_into().ok()?)),
        4 => Some(i64::from(i32::from_be_bytes(v.try_into().ok()?))),
        2 => Some(i64::from(i16::from_be_bytes(v.try_into().ok()?))),
        _ => None,
    }
}

/// The result formats the shards get: the client's when they apply to the shards' columns
/// unchanged (none or one code, or one per column with no helper columns).
pub(super) fn shard_result_formats(q: &ShardQuery, client: &[i16]) -> Result<Vec<i16>, ProxyError> {
    if client.len() <= 1 || matches!(q.plan.mode, MergeMode::Rows { hidden_columns: 0 }) {
        return Ok(client.to_vec());
    }
    if client.iter().all(|f| *f == client[0]) {
        return Ok(vec![client[0]]);
    }
    Err(client_error(
        "0A000",
        "pgfleet: a cross-shard query with aggregates or hidden ORDER BY columns needs one result \
         format for all columns (the driver asked for a different format per column)"
            .to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_parameters_in_both_formats() {
        assert_eq!(int_param(false, b" 10"), Some(10));
        assert_eq!(int_param(true, &5i64.to_be_bytes()), Some(5));
        assert_eq!(int_param(true, &7i32.to_be_bytes()), Some(7));
        assert_eq!(int_param(true, &[1, 2, 3]), None);
    }

    #[test]
    fn parameters_dropped_from_the_shards_text_are_declared_bytea() {
        assert_eq!(shard_param_types(&[], 2, &[]), Vec::<u32>::new());
        assert_eq!(shard_param_types(&[], 3, &[2]), vec![0, 17, 0]);
        assert_eq!(shard_param_types(&[23, 20], 2, &[2]), vec![23, 17]);
    }

    #[test]
    fn split_parameters_follow_the_map() {
        let params: Vec<OwnedParam> = vec![
            Some((false, b"1".to_vec())),
            None,
            Some((true, vec![0, 0, 0, 3])),
        ];
        let (p, ty) = mapped_params(&params, &[20, 25, 23], Some(&[3, 1]));
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].value, Some(&[0u8, 0, 0, 3][..]));
        assert_eq!(p[1].value, Some(&b"1"[..]));
        assert_eq!(ty, vec![23, 20]);
        let (all, ty) = mapped_params(&params, &[], None);
        assert_eq!(all.len(), 3);
        assert!(ty.is_empty());
    }
}
