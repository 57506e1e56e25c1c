//! Aggregate mode: every shard returns one partial row per group; partial rows of equal groups
//! (equal by type, e.g. numeric 1.0 = 1.00) are combined in memory — bounded by the memory
//! budget — and once every shard is done the groups are finished, filtered by HAVING, made
//! DISTINCT and sorted by ORDER BY.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};

use bytes::{Bytes, BytesMut};
use pgfleet_sql::merge_plan::{
    AggregatePlan, FinalColumn, Operand, Predicate, SortColumn, SortKey,
};
use pgfleet_wire::rows::{decode_data_row, encode_data_row_raw, FieldDescription};

use crate::aggregate::{FinalSpec, State};
use crate::error::MergeError;
use crate::having::{evaluate, GroupRow};
use crate::memory::{Distinct, Memory};
use crate::rows::{check_comparable, RowPoll};
use crate::value::{canonical_nullable, compare_nullable, is_comparable, Format, Value};

/// A finished group: its merged values in output format, and decoded for sorting.
type FinishedRow = (Vec<Option<Vec<u8>>>, Vec<Option<Value>>);

/// Bookkeeping per group beyond its values, for the memory budget.
const GROUP_OVERHEAD: usize = 96;

pub(crate) struct GroupMerge {
    plan: AggregatePlan,
    sort: Vec<SortKey>,
    distinct: bool,
    specs: Vec<FinalSpec>,
    key_types: Vec<(u32, Format)>,
    index: HashMap<Vec<u8>, usize>,
    groups: Vec<Vec<State>>,
    finished: Option<VecDeque<Bytes>>,
}

impl GroupMerge {
    pub(crate) fn new(plan: &AggregatePlan, sort: &[SortKey], distinct: bool) -> GroupMerge {
        GroupMerge {
            plan: plan.clone(),
            sort: sort.to_vec(),
            distinct,
            specs: Vec::new(),
            key_types: Vec::new(),
            index: HashMap::new(),
            groups: Vec::new(),
            finished: None,
        }
    }

    pub(crate) fn describe(
        &mut self,
        fields: &[FieldDescription],
    ) -> Result<Vec<FieldDescription>, MergeError> {
        if fields.len() != self.plan.shard_columns {
            return Err(MergeError::Protocol(format!(
                "a shard returned {} columns, the merge plan expects {}",
                fields.len(),
                self.plan.shard_columns
            )));
        }
        self.specs = self
            .plan
            .columns
            .iter()
            .map(|c| FinalSpec::compile(c, fields))
            .collect::<Result<_, _>>()?;
        self.key_types = Vec::new();
        for &k in &self.plan.group_keys {
            let f = &fields[k];
            check_comparable(f.type_oid, "GROUP BY")?;
            self.key_types
                .push((f.type_oid, Format::from_code(f.format)));
        }
        for k in &self.sort {
            check_comparable(self.spec_of(k.column)?.out_oid, "ORDER BY")?;
        }
        if self.distinct {
            for s in &self.specs[..self.plan.visible] {
                check_comparable(s.out_oid, "SELECT DISTINCT")?;
            }
        }
        if let Some(h) = &self.plan.having {
            let mut columns = Vec::new();
            having_columns(h, &mut columns);
            for c in columns {
                let spec = self.specs.get(c).ok_or_else(|| {
                    MergeError::Protocol(format!(
                        "HAVING reads merged column {c}, which does not exist"
                    ))
                })?;
                check_comparable(spec.out_oid, "HAVING")?;
            }
        }
        let mut out = Vec::with_capacity(self.plan.visible);
        for spec in &self.specs[..self.plan.visible] {
            let mut f = match &spec.source {
                FinalColumn::Group { column } => fields[*column].clone(),
                FinalColumn::Aggregate(a) => fields[a.main_column()].clone(),
            };
            if f.type_oid != spec.out_oid {
                // avg(): the shard computed sum(); the client gets numeric, as from one server.
                f.type_oid = spec.out_oid;
                f.type_size = -1;
                f.type_modifier = -1;
                f.table_oid = 0;
                f.column = 0;
            }
            out.push(f);
        }
        Ok(out)
    }

    fn spec_of(&self, c: SortColumn) -> Result<&FinalSpec, MergeError> {
        match c {
            SortColumn::Output(i) => self.specs.get(i),
            SortColumn::Hidden(_) => None,
        }
        .ok_or_else(|| {
            MergeError::Protocol(format!("ORDER BY column {c:?} is not a merged column"))
        })
    }

    pub(crate) fn push(&mut self, raw: &[u8], memory: &mut Memory) -> Result<(), MergeError> {
        let values = decode_data_row(&raw[5..])?;
        if values.len() != self.plan.shard_columns {
            return Err(MergeError::Protocol(format!(
                "a shard sent a row of {} columns, the merge plan expects {}",
                values.len(),
                self.plan.shard_columns
            )));
        }
        let mut key = Vec::new();
        for (i, &k) in self.plan.group_keys.iter().enumerate() {
            let (t, f) = self.key_types[i];
            let v = values[k].map(|b| Value::decode(t, f, b)).transpose()?;
            canonical_nullable(v.as_ref(), &mut key);
        }
        let g = match self.index.get(&key) {
            Some(&g) => g,
            None => {
                memory.grow(
                    key.len() + GROUP_OVERHEAD + 32 * self.specs.len(),
                    "GROUP BY groups",
                )?;
                self.groups
                    .push(self.specs.iter().map(State::new).collect());
                self.index.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        for (state, spec) in self.groups[g].iter_mut().zip(&self.specs) {
            let grown = state.update(spec, &values)?;
            memory.grow(grown, "GROUP BY groups")?;
        }
        Ok(())
    }

    /// The next finished row (after every shard is done), or NeedInput before.
    pub(crate) fn next(
        &mut self,
        all_done: bool,
        memory: &mut Memory,
    ) -> Result<RowPoll, MergeError> {
        if self.finished.is_none() {
            if !all_done {
                return Ok(RowPoll::NeedInput);
            }
            self.finished = Some(self.finish(memory)?);
        }
        Ok(match self.finished.as_mut().and_then(VecDeque::pop_front) {
            Some(row) => RowPoll::Row(row),
            None => RowPoll::Exhausted,
        })
    }

    fn finish(&mut self, memory: &mut Memory) -> Result<VecDeque<Bytes>, MergeError> {
        // Without GROUP BY there is exactly one group, even over no rows (count = 0).
        if self.plan.group_keys.is_empty() && self.groups.is_empty() {
            self.groups
                .push(self.specs.iter().map(State::new).collect());
        }
        let types: Vec<u32> = self.specs.iter().map(|s| s.out_oid).collect();
        let mut rows: Vec<FinishedRow> = Vec::new();
        let mut distinct = if self.distinct {
            Distinct::Set(Default::default())
        } else {
            Distinct::Off
        };
        for states in std::mem::take(&mut self.groups) {
            let raw: Vec<Option<Vec<u8>>> = states
                .into_iter()
                .zip(&self.specs)
                .map(|(s, spec)| s.finish(spec))
                .collect();
            let decoded = raw
                .iter()
                .zip(&self.specs)
                .map(|(v, spec)| match v {
                    Some(b) if is_comparable(spec.out_oid) => {
                        Value::decode(spec.out_oid, spec.format, b).map(Some)
                    }
                    _ => Ok(None),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(h) = &self.plan.having {
                let row = GroupRow {
                    values: &decoded,
                    types: &types,
                };
                if evaluate(h, &row)? != Some(true) {
                    continue;
                }
            }
            if self.distinct {
                let mut key = Vec::new();
                for v in &decoded[..self.plan.visible] {
                    canonical_nullable(v.as_ref(), &mut key);
                }
                if !distinct.first_time(key, memory)? {
                    continue;
                }
            }
            rows.push((raw, decoded));
        }
        self.index.clear();
        if !self.sort.is_empty() {
            let sort = &self.sort;
            rows.sort_by(|a, b| {
                for k in sort {
                    let SortColumn::Output(c) = k.column else {
                        continue;
                    };
                    // One column holds one type: comparison cannot fail (checked in describe).
                    let o = compare_nullable(
                        a.1[c].as_ref(),
                        b.1[c].as_ref(),
                        k.descending,
                        k.nulls_first,
                    )
                    .unwrap_or(Ordering::Equal);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            });
        }
        let visible = self.plan.visible;
        Ok(rows
            .into_iter()
            .map(|(raw, _)| {
                let values: Vec<Option<&[u8]>> =
                    raw[..visible].iter().map(|v| v.as_deref()).collect();
                let mut out = BytesMut::new();
                encode_data_row_raw(&mut out, &values);
                out.freeze()
            })
            .collect())
    }
}

fn having_columns(p: &Predicate, out: &mut Vec<usize>) {
    let operand = |o: &Operand, out: &mut Vec<usize>| {
        if let Operand::Column(c) = o {
            out.push(*c);
        }
    };
    match p {
        Predicate::And(v) | Predicate::Or(v) => v.iter().for_each(|x| having_columns(x, out)),
        Predicate::Not(x) => having_columns(x, out),
        Predicate::Compare { left, right, .. } => {
            operand(left, out);
            operand(right, out);
        }
        Predicate::IsNull { operand: o, .. } => operand(o, out),
        Predicate::Const(_) => {}
    }
}
