//! What EXPLAIN through pgfleet shows above the shards' own plans: which shards run the
//! statement, what each runs, and how pgfleet combines their results.

use pgfleet_sql::merge_plan::{Aggregate, FinalColumn, LimitValue, MergeMode, MergePlan};

fn limit_text(v: LimitValue) -> String {
    match v {
        LimitValue::Const(n) => n.to_string(),
        LimitValue::Param(n) => format!("${n}"),
    }
}

fn aggregate_name(a: &Aggregate) -> &'static str {
    match a {
        Aggregate::Count { .. } => "count (partial counts added)",
        Aggregate::Sum { .. } => "sum (partial sums added)",
        Aggregate::Min { .. } => "min",
        Aggregate::Max { .. } => "max",
        Aggregate::Avg { .. } => "avg (partial sums / partial counts)",
        Aggregate::BoolAnd { .. } => "bool_and",
        Aggregate::BoolOr { .. } => "bool_or",
        Aggregate::StringAgg { .. } => "string_agg (partials joined)",
        Aggregate::ArrayAgg { .. } => "array_agg (partial arrays concatenated)",
    }
}

/// The lines describing how a cross-shard SELECT's rows are merged.
pub(crate) fn merge_lines(plan: &MergePlan) -> Vec<String> {
    let mut lines = Vec::new();
    match &plan.mode {
        MergeMode::Rows { hidden_columns } => {
            let mut l = if plan.sort.is_empty() {
                "Merge: rows of every shard as they arrive".to_owned()
            } else {
                format!(
                    "Merge: k-way merge of the shards' sorted rows on {} ORDER BY key(s)",
                    plan.sort.len()
                )
            };
            if *hidden_columns > 0 {
                l.push_str(&format!(", {hidden_columns} helper column(s) removed"));
            }
            lines.push(l);
        }
        MergeMode::Aggregate(a) => {
            let aggregates: Vec<&str> = a
                .columns
                .iter()
                .filter_map(|c| match c {
                    FinalColumn::Aggregate(a) => Some(aggregate_name(a)),
                    FinalColumn::Group { .. } => None,
                })
                .collect();
            lines.push(format!(
                "Merge: partial aggregates combined per group ({} group key(s)): {}",
                a.group_keys.len(),
                if aggregates.is_empty() {
                    "no aggregates".to_owned()
                } else {
                    aggregates.join(", ")
                }
            ));
            if a.having.is_some() {
                lines.push("  HAVING evaluated after the merge".to_owned());
            }
            if !plan.sort.is_empty() {
                lines.push(format!(
                    "  groups sorted on {} ORDER BY key(s) after the merge",
                    plan.sort.len()
                ));
            }
        }
    }
    if plan.distinct {
        lines.push("  DISTINCT applied after the merge".to_owned());
    }
    match (plan.limit, plan.offset) {
        (None, None) => {}
        (limit, offset) => lines.push(format!(
            "  LIMIT {} OFFSET {} applied once after the merge",
            limit.map_or("ALL".to_owned(), limit_text),
            offset.map_or("0".to_owned(), limit_text)
        )),
    }
    lines
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pgfleet_sql::merge_plan::{plan_select, AllSharded};

    #[test]
    fn merges_are_described() {
        let q = plan_select(
            "SELECT a FROM t ORDER BY a DESC LIMIT 10 OFFSET 5",
            &AllSharded,
        )
        .unwrap();
        let lines = merge_lines(&q.plan);
        assert!(
            lines[0].contains("k-way merge") && lines[0].contains("1 ORDER BY"),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("LIMIT 10 OFFSET 5")),
            "{lines:?}"
        );
        let q = plan_select(
            "SELECT g, count(*), avg(x) FROM t GROUP BY g HAVING count(*) > 1 ORDER BY 2",
            &AllSharded,
        )
        .unwrap();
        let lines = merge_lines(&q.plan).join("\n");
        assert!(
            lines.contains("1 group key") && lines.contains("avg"),
            "{lines}"
        );
        assert!(lines.contains("HAVING"), "{lines}");
    }
}
