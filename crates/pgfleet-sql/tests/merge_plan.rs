//! Table-driven tests: SQL → per-shard SQL + MergePlan, and SQL → refusal (SQLSTATE + message).

use pgfleet_sql::merge_plan::{
    plan_select, Aggregate, AggregatePlan, AllSharded, CompareOp, FinalColumn, LimitValue, Literal,
    MergeMode, MergePlan, Operand, Predicate, SortColumn, SortKey,
};

fn key(column: SortColumn, descending: bool, nulls_first: bool) -> SortKey {
    SortKey {
        column,
        descending,
        nulls_first,
    }
}
fn asc(i: usize) -> SortKey {
    key(SortColumn::Output(i), false, false)
}
fn desc(i: usize) -> SortKey {
    key(SortColumn::Output(i), true, true)
}
fn hidden(j: usize) -> SortKey {
    key(SortColumn::Hidden(j), false, false)
}
fn rows(hidden_columns: usize, sort: Vec<SortKey>) -> MergePlan {
    MergePlan {
        mode: MergeMode::Rows { hidden_columns },
        sort,
        distinct: false,
        limit: None,
        offset: None,
    }
}
fn limit(mut p: MergePlan, l: Option<LimitValue>, o: Option<LimitValue>) -> MergePlan {
    p.limit = l;
    p.offset = o;
    p
}
fn distinct(mut p: MergePlan) -> MergePlan {
    p.distinct = true;
    p
}
fn c(n: u64) -> Option<LimitValue> {
    Some(LimitValue::Const(n))
}
fn param(n: u32) -> Option<LimitValue> {
    Some(LimitValue::Param(n))
}
fn group(column: usize) -> FinalColumn {
    FinalColumn::Group { column }
}
fn agg(a: Aggregate) -> FinalColumn {
    FinalColumn::Aggregate(a)
}
fn aggs(
    shard_columns: usize,
    group_keys: Vec<usize>,
    columns: Vec<FinalColumn>,
    visible: usize,
    having: Option<Predicate>,
    sort: Vec<SortKey>,
) -> MergePlan {
    MergePlan {
        mode: MergeMode::Aggregate(AggregatePlan {
            shard_columns,
            group_keys,
            columns,
            visible,
            having,
        }),
        sort,
        distinct: false,
        limit: None,
        offset: None,
    }
}
fn cmp(col: usize, op: CompareOp, lit: Literal) -> Predicate {
    Predicate::Compare {
        left: Operand::Column(col),
        op,
        right: Operand::Literal(lit),
    }
}
fn num(s: &str) -> Literal {
    Literal::Number(s.to_string())
}

fn plans() -> Vec<(&'static str, &'static str, MergePlan)> {
    use Aggregate::*;
    vec![
        // ---- row mode: ORDER BY, hidden columns, LIMIT/OFFSET, DISTINCT
        (
            "SELECT id, name FROM users ORDER BY name DESC NULLS LAST, id LIMIT 10 OFFSET 5",
            "SELECT id, name FROM users ORDER BY name DESC NULLS LAST, id LIMIT 15",
            limit(rows(0, vec![key(SortColumn::Output(1), true, false), asc(0)]), c(10), c(5)),
        ),
        (
            "SELECT id FROM users ORDER BY name",
            "SELECT id, name AS __pgfleet_sort_0 FROM users ORDER BY name",
            rows(1, vec![hidden(0)]),
        ),
        (
            "SELECT * FROM users ORDER BY created_at",
            "SELECT *, created_at AS __pgfleet_sort_0 FROM users ORDER BY created_at",
            rows(1, vec![hidden(0)]),
        ),
        (
            "SELECT id FROM t ORDER BY id DESC",
            "SELECT id FROM t ORDER BY id DESC",
            rows(0, vec![desc(0)]),
        ),
        (
            "SELECT id FROM t ORDER BY id ASC NULLS FIRST",
            "SELECT id FROM t ORDER BY id ASC NULLS FIRST",
            rows(0, vec![key(SortColumn::Output(0), false, true)]),
        ),
        (
            "SELECT id FROM t ORDER BY id DESC NULLS LAST",
            "SELECT id FROM t ORDER BY id DESC NULLS LAST",
            rows(0, vec![key(SortColumn::Output(0), true, false)]),
        ),
        (
            "SELECT id AS k, name FROM t ORDER BY k",
            "SELECT id AS k, name FROM t ORDER BY k",
            rows(0, vec![asc(0)]),
        ),
        (
            "SELECT id, price * qty AS total FROM t ORDER BY price*qty DESC",
            "SELECT id, price * qty AS total FROM t ORDER BY price * qty DESC",
            rows(0, vec![desc(1)]),
        ),
        (
            "SELECT id, price * qty FROM t ORDER BY 2, 1",
            "SELECT id, price * qty FROM t ORDER BY 2, 1",
            rows(0, vec![asc(1), asc(0)]),
        ),
        (
            "SELECT id FROM t LIMIT 5",
            "SELECT id FROM t LIMIT 5",
            limit(rows(0, vec![]), c(5), None),
        ),
        (
            "SELECT id FROM t ORDER BY id LIMIT $1 OFFSET $2",
            "SELECT id FROM t ORDER BY id LIMIT $1::bigint + $2::bigint",
            limit(rows(0, vec![asc(0)]), param(1), param(2)),
        ),
        (
            "SELECT id FROM t ORDER BY id LIMIT 10 OFFSET $1",
            "SELECT id FROM t ORDER BY id LIMIT 10::bigint + $1::bigint",
            limit(rows(0, vec![asc(0)]), c(10), param(1)),
        ),
        (
            "SELECT id FROM t ORDER BY id OFFSET 3",
            "SELECT id FROM t ORDER BY id",
            limit(rows(0, vec![asc(0)]), None, c(3)),
        ),
        (
            "SELECT id FROM t ORDER BY id OFFSET $1",
            "SELECT id FROM t ORDER BY id LIMIT NULL::bigint + $1::bigint",
            limit(rows(0, vec![asc(0)]), None, param(1)),
        ),
        (
            "SELECT id FROM t ORDER BY id FETCH FIRST 3 ROWS ONLY",
            "SELECT id FROM t ORDER BY id LIMIT 3",
            limit(rows(0, vec![asc(0)]), c(3), None),
        ),
        (
            "SELECT id FROM t ORDER BY id LIMIT ALL",
            "SELECT id FROM t ORDER BY id",
            rows(0, vec![asc(0)]),
        ),
        (
            "SELECT id FROM t ORDER BY id LIMIT 3000000000 OFFSET 1",
            "SELECT id FROM t ORDER BY id LIMIT 3000000001",
            limit(rows(0, vec![asc(0)]), c(3_000_000_000), c(1)),
        ),
        (
            "SELECT DISTINCT country FROM users ORDER BY country",
            "SELECT DISTINCT country FROM users ORDER BY country",
            distinct(rows(0, vec![asc(0)])),
        ),
        (
            "SELECT DISTINCT country, city FROM users LIMIT 7",
            "SELECT DISTINCT country, city FROM users LIMIT 7",
            limit(distinct(rows(0, vec![])), c(7), None),
        ),
        (
            "SELECT id, name FROM t ORDER BY lower(name), name, lower(name) DESC",
            "SELECT id, name, lower(name) AS __pgfleet_sort_0 FROM t ORDER BY lower(name), name, lower(name) DESC",
            rows(1, vec![hidden(0), asc(1), key(SortColumn::Hidden(0), true, true)]),
        ),
        (
            "SELECT t.*, id + 1 AS next FROM t ORDER BY next",
            "SELECT t.*, id + 1 AS next, id + 1 AS __pgfleet_sort_0 FROM t ORDER BY next",
            rows(1, vec![hidden(0)]),
        ),
        (
            "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.amount > 10 ORDER BY o.created_at DESC LIMIT 20",
            "SELECT o.id, c.name, o.created_at AS __pgfleet_sort_0 FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.amount > 10 ORDER BY o.created_at DESC LIMIT 20",
            limit(rows(1, vec![key(SortColumn::Hidden(0), true, true)]), c(20), None),
        ),
        // ---- aggregate mode
        (
            "SELECT count(*) FROM t",
            "SELECT count(*) AS count FROM t",
            aggs(1, vec![], vec![agg(Count { column: 0 })], 1, None, vec![]),
        ),
        (
            "SELECT count(x), sum(x), min(x), max(x) FROM t",
            "SELECT count(x) AS count, sum(x) AS sum, min(x) AS min, max(x) AS max FROM t",
            aggs(
                4,
                vec![],
                vec![
                    agg(Count { column: 0 }),
                    agg(Sum { column: 1 }),
                    agg(Min { column: 2 }),
                    agg(Max { column: 3 }),
                ],
                4,
                None,
                vec![],
            ),
        ),
        (
            "SELECT avg(x) FROM t",
            "SELECT sum(x) AS avg, count(x) AS __pgfleet_0 FROM t",
            aggs(2, vec![], vec![agg(Avg { sum: 0, count: 1 })], 1, None, vec![]),
        ),
        (
            "SELECT avg(x) AS mean, avg(x) FROM t",
            "SELECT sum(x) AS mean, sum(x) AS avg, count(x) AS __pgfleet_0 FROM t",
            aggs(
                3,
                vec![],
                vec![agg(Avg { sum: 0, count: 2 }), agg(Avg { sum: 1, count: 2 })],
                2,
                None,
                vec![],
            ),
        ),
        (
            "SELECT country, count(*) FROM users GROUP BY country",
            "SELECT country, count(*) AS count FROM users GROUP BY country",
            aggs(2, vec![0], vec![group(0), agg(Count { column: 1 })], 2, None, vec![]),
        ),
        (
            "SELECT count(*) FROM users GROUP BY country",
            "SELECT count(*) AS count, country AS __pgfleet_0 FROM users GROUP BY country",
            aggs(2, vec![1], vec![agg(Count { column: 0 })], 1, None, vec![]),
        ),
        (
            "SELECT country, count(*) FROM users GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3 OFFSET 1",
            "SELECT country, count(*) AS count FROM users GROUP BY 1",
            limit(
                aggs(2, vec![0], vec![group(0), agg(Count { column: 1 })], 2, None, vec![desc(1), asc(0)]),
                c(3),
                c(1),
            ),
        ),
        (
            "SELECT country, count(*) AS n FROM users GROUP BY country HAVING count(*) > 1",
            "SELECT country, count(*) AS n FROM users GROUP BY country",
            aggs(
                2,
                vec![0],
                vec![group(0), agg(Count { column: 1 })],
                2,
                Some(cmp(1, CompareOp::Gt, num("1"))),
                vec![],
            ),
        ),
        (
            "SELECT country FROM users GROUP BY country HAVING sum(x) >= 10.5 AND min(name) <> 'bob'",
            "SELECT country, sum(x) AS __pgfleet_0, min(name) AS __pgfleet_1 FROM users GROUP BY country",
            aggs(
                3,
                vec![0],
                vec![group(0), agg(Sum { column: 1 }), agg(Min { column: 2 })],
                1,
                Some(Predicate::And(vec![
                    cmp(1, CompareOp::Ge, num("10.5")),
                    cmp(2, CompareOp::Ne, Literal::String("bob".into())),
                ])),
                vec![],
            ),
        ),
        (
            "SELECT g FROM t GROUP BY g HAVING NOT (max(x) IS NULL OR avg(x) < -2) OR g = 3",
            "SELECT g, max(x) AS __pgfleet_0, sum(x) AS __pgfleet_1, count(x) AS __pgfleet_2 FROM t GROUP BY g",
            aggs(
                4,
                vec![0],
                vec![group(0), agg(Max { column: 1 }), agg(Avg { sum: 2, count: 3 })],
                1,
                Some(Predicate::Or(vec![
                    Predicate::Not(Box::new(Predicate::Or(vec![
                        Predicate::IsNull {
                            operand: Operand::Column(1),
                            negated: false,
                        },
                        cmp(2, CompareOp::Lt, num("-2")),
                    ]))),
                    cmp(0, CompareOp::Eq, num("3")),
                ])),
                vec![],
            ),
        ),
        (
            "SELECT bool_and(a), bool_or(b), every(c) FROM t",
            "SELECT bool_and(a) AS bool_and, bool_or(b) AS bool_or, every(c) AS every FROM t",
            aggs(
                3,
                vec![],
                vec![
                    agg(BoolAnd { column: 0 }),
                    agg(BoolOr { column: 1 }),
                    agg(BoolAnd { column: 2 }),
                ],
                3,
                None,
                vec![],
            ),
        ),
        (
            "SELECT g, string_agg(name, ', ') FROM t GROUP BY g",
            "SELECT g, string_agg(name, ', ') AS string_agg FROM t GROUP BY g",
            aggs(
                2,
                vec![0],
                vec![group(0), agg(StringAgg { column: 1, delimiter: ", ".into() })],
                2,
                None,
                vec![],
            ),
        ),
        (
            "SELECT g, array_agg(id) ids FROM t GROUP BY g ORDER BY g",
            "SELECT g, array_agg(id) AS ids FROM t GROUP BY g",
            aggs(2, vec![0], vec![group(0), agg(ArrayAgg { column: 1 })], 2, None, vec![asc(0)]),
        ),
        (
            "SELECT country, count(*) FROM users GROUP BY country ORDER BY max(age) DESC NULLS LAST",
            "SELECT country, count(*) AS count, max(age) AS __pgfleet_0 FROM users GROUP BY country",
            aggs(
                3,
                vec![0],
                vec![group(0), agg(Count { column: 1 }), agg(Max { column: 2 })],
                2,
                None,
                vec![key(SortColumn::Output(2), true, false)],
            ),
        ),
        (
            "SELECT DISTINCT count(*) FROM t GROUP BY g",
            "SELECT count(*) AS count, g AS __pgfleet_0 FROM t GROUP BY g",
            distinct(aggs(2, vec![1], vec![agg(Count { column: 0 })], 1, None, vec![])),
        ),
        (
            "SELECT count(*) FILTER (WHERE x > 0), avg(x) FILTER (WHERE x > 0) FROM t",
            "SELECT count(*) FILTER (WHERE x > 0) AS count, sum(x) FILTER (WHERE x > 0) AS avg, count(x) FILTER (WHERE x > 0) AS __pgfleet_0 FROM t",
            aggs(
                3,
                vec![],
                vec![agg(Count { column: 0 }), agg(Avg { sum: 1, count: 2 })],
                2,
                None,
                vec![],
            ),
        ),
        (
            "SELECT g, sum(x) FROM t GROUP BY g HAVING bool_or(flag)",
            "SELECT g, sum(x) AS sum, bool_or(flag) AS __pgfleet_0 FROM t GROUP BY g",
            aggs(
                3,
                vec![0],
                vec![group(0), agg(Sum { column: 1 }), agg(BoolOr { column: 2 })],
                2,
                Some(cmp(2, CompareOp::Eq, Literal::Bool(true))),
                vec![],
            ),
        ),
        (
            "SELECT lower(name), count(*) FROM t GROUP BY lower(name) ORDER BY lower(name)",
            "SELECT lower(name), count(*) AS count FROM t GROUP BY lower(name)",
            aggs(2, vec![0], vec![group(0), agg(Count { column: 1 })], 2, None, vec![asc(0)]),
        ),
        (
            "SELECT count(*) FROM t LIMIT 1 OFFSET 0",
            "SELECT count(*) AS count FROM t",
            limit(
                aggs(1, vec![], vec![agg(Count { column: 0 })], 1, None, vec![]),
                c(1),
                c(0),
            ),
        ),
        (
            "SELECT g, h, sum(x) FROM t GROUP BY g, h, g ORDER BY h DESC",
            "SELECT g, h, sum(x) AS sum FROM t GROUP BY g, h, g",
            aggs(3, vec![0, 1], vec![group(0), group(1), agg(Sum { column: 2 })], 3, None, vec![desc(1)]),
        ),
        (
            "SELECT max(created_at) FROM orders WHERE customer_id IN (SELECT id FROM countries)",
            "SELECT max(created_at) AS max FROM orders WHERE customer_id IN (SELECT id FROM countries)",
            aggs(1, vec![], vec![agg(Max { column: 0 })], 1, None, vec![]),
        ),
    ]
}

#[test]
fn plans_and_shard_sql() {
    let cases = plans();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for (sql, shard_sql, plan) in cases {
        let q = plan_select(sql, &AllSharded).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(q.sql, shard_sql, "shard SQL of {sql}");
        assert_eq!(q.plan, plan, "plan of {sql}");
        // The per-shard text must itself be valid SQL.
        pg_query::parse(&q.sql, pg_query::ParserOptions::DEFAULT).expect("shard SQL parses");
    }
}

/// (sql, SQLSTATE, words the message must contain)
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "SELECT id, row_number() OVER (ORDER BY id) FROM t",
        "0A000",
        "window function `row_number()`",
    ),
    (
        "SELECT id FROM t ORDER BY sum(x) OVER ()",
        "0A000",
        "window function `sum()`",
    ),
    (
        "SELECT id FROM t WINDOW w AS (ORDER BY id)",
        "0A000",
        "WINDOW clause",
    ),
    (
        "SELECT DISTINCT ON (a) a, b FROM t ORDER BY a",
        "0A000",
        "DISTINCT ON",
    ),
    (
        "SELECT count(DISTINCT x) FROM t",
        "0A000",
        "`count(DISTINCT …)`",
    ),
    (
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM t",
        "0A000",
        "ordered-set aggregate `percentile_cont",
    ),
    (
        "SELECT mode() WITHIN GROUP (ORDER BY x) FROM t",
        "0A000",
        "ordered-set aggregate `mode",
    ),
    (
        "SELECT string_agg(name, ',' ORDER BY name) FROM t",
        "0A000",
        "`string_agg(… ORDER BY …)`",
    ),
    (
        "SELECT array_agg(x ORDER BY x) FROM t",
        "0A000",
        "`array_agg(… ORDER BY …)`",
    ),
    ("SELECT stddev(x) FROM t", "0A000", "aggregate `stddev()`"),
    (
        "SELECT jsonb_agg(x) FROM t GROUP BY g",
        "0A000",
        "aggregate `jsonb_agg()`",
    ),
    (
        "SELECT my_agg(x) FILTER (WHERE x > 0) FROM t",
        "0A000",
        "aggregate `my_agg()`",
    ),
    (
        "SELECT id, (SELECT max(amount) FROM orders o WHERE o.customer_id = c.id) FROM customers c",
        "0A000",
        "sub-query in the select list",
    ),
    (
        "SELECT id FROM t WHERE x > (SELECT avg(x) FROM t)",
        "0A000",
        "sub-query with aggregates over sharded table t",
    ),
    (
        "SELECT count(*) FROM (SELECT DISTINCT customer_id FROM orders) s",
        "0A000",
        "sub-query with DISTINCT over sharded table orders",
    ),
    (
        "WITH top AS (SELECT id FROM orders ORDER BY amount DESC LIMIT 5) SELECT * FROM top",
        "0A000",
        "sub-query with LIMIT/OFFSET over sharded table orders",
    ),
    (
        "SELECT id FROM t OFFSET 10",
        "0A000",
        "OFFSET without ORDER BY",
    ),
    (
        "SELECT g, count(*) FROM t GROUP BY g LIMIT 5 OFFSET 5",
        "0A000",
        "OFFSET without ORDER BY",
    ),
    (
        "SELECT id FROM t ORDER BY id FOR UPDATE",
        "0A000",
        "FOR UPDATE/FOR SHARE",
    ),
    (
        "SELECT id FROM a UNION SELECT id FROM b",
        "0A000",
        "UNION/INTERSECT/EXCEPT",
    ),
    (
        "SELECT g, count(*) FROM t GROUP BY ROLLUP (g)",
        "0A000",
        "GROUPING SETS/ROLLUP/CUBE",
    ),
    (
        "SELECT sum(x) / count(*) FROM t",
        "0A000",
        "expression over aggregate results",
    ),
    (
        "SELECT coalesce(max(x), 0) FROM t",
        "0A000",
        "expression over aggregate results",
    ),
    (
        "SELECT g FROM t GROUP BY g ORDER BY count(*) + 1",
        "0A000",
        "expression over aggregate results in HAVING or ORDER BY",
    ),
    (
        "SELECT id FROM t ORDER BY id FETCH FIRST 3 ROWS WITH TIES",
        "0A000",
        "WITH TIES",
    ),
    (
        "SELECT g FROM t GROUP BY g HAVING count(*) > $1",
        "0A000",
        "HAVING expression",
    ),
    (
        "SELECT g FROM t GROUP BY g HAVING count(*) IN (1, 2)",
        "0A000",
        "HAVING expression",
    ),
    (
        "SELECT name FROM t ORDER BY name COLLATE \"de_DE\"",
        "0A000",
        "COLLATE \"de_DE\"",
    ),
    (
        "SELECT *, id FROM t ORDER BY 2",
        "0A000",
        "ORDER BY position 2 after a *",
    ),
    (
        "SELECT x + 1 AS y, count(*) FROM t GROUP BY y",
        "0A000",
        "GROUP BY output column name `y`",
    ),
    (
        "SELECT string_agg(name, sep) FROM t",
        "0A000",
        "delimiter that is not a string constant",
    ),
    (
        "SELECT * , count(*) FROM t",
        "0A000",
        "* in the select list of an aggregate query",
    ),
    ("SELECT id FROM t LIMIT 2 + 3", "0A000", "LIMIT `2 + 3`"),
    ("VALUES (1), (2)", "0A000", "VALUES"),
    (
        "INSERT INTO t VALUES (1)",
        "0A000",
        "a statement other than SELECT",
    ),
    ("SELECT 1; SELECT 2", "0A000", "several statements"),
    (
        "SELECT id FROM t LIMIT -1",
        "2201W",
        "LIMIT must not be negative",
    ),
    (
        "SELECT id FROM t ORDER BY id OFFSET -1",
        "2201X",
        "OFFSET must not be negative",
    ),
    (
        "SELECT DISTINCT a FROM t ORDER BY b",
        "42P10",
        "ORDER BY expressions must appear in select list",
    ),
    (
        "SELECT a, b FROM t ORDER BY 3",
        "42P10",
        "ORDER BY position 3 is not in select list",
    ),
    (
        "SELECT count(*) FROM t GROUP BY 1",
        "42803",
        "aggregate functions are not allowed in GROUP BY",
    ),
    ("SELEC 1", "42601", "syntax error"),
];

#[test]
fn refusals() {
    for (sql, state, words) in REFUSED {
        let err = match plan_select(sql, &AllSharded) {
            Ok(q) => panic!("{sql}: planned as {} / {:?}", q.sql, q.plan),
            Err(e) => e,
        };
        assert_eq!(err.sqlstate(), *state, "{sql}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(words),
            "{sql}: message `{msg}` lacks `{words}`"
        );
    }
}

#[test]
fn refusal_names_the_tables() {
    let err = plan_select(
        "SELECT count(DISTINCT o.x) FROM orders o JOIN items i ON i.o = o.id",
        &AllSharded,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`count(DISTINCT …)` is not supported in a query that reads several shards (tables: items, orders)"
    );
}

#[test]
fn reference_tables_may_be_read_by_select_list_subqueries() {
    let scope = |_: Option<&str>, t: &str| t == "countries";
    let sql = "SELECT id, (SELECT name FROM countries c WHERE c.code = u.country) FROM users u ORDER BY id";
    let q = plan_select(sql, &scope).expect("reference table sub-query is fine");
    assert_eq!(q.plan, rows(0, vec![asc(0)]));
    assert!(plan_select(sql, &AllSharded).is_err());
    // A sub-query with aggregates over a reference table sees all of it on every shard.
    let q = plan_select(
        "SELECT id FROM users WHERE country IN (SELECT code FROM countries GROUP BY code)",
        &scope,
    )
    .expect("plans");
    assert_eq!(q.plan, rows(0, vec![]));
}

#[test]
fn parameters_the_shards_no_longer_see_are_listed() {
    let q = pgfleet_sql::merge_plan::plan_select(
        "SELECT a, count(*) FROM t WHERE b = $1 GROUP BY a ORDER BY 2 LIMIT $2 OFFSET $3",
        &pgfleet_sql::merge_plan::AllSharded,
    )
    .unwrap();
    assert!(!q.sql.contains("$2") && !q.sql.contains("$3"), "{}", q.sql);
    assert_eq!(q.unused_params, vec![2, 3]);
    let q = pgfleet_sql::merge_plan::plan_select(
        "SELECT a FROM t WHERE b = $1 ORDER BY a LIMIT $2",
        &pgfleet_sql::merge_plan::AllSharded,
    )
    .unwrap();
    assert!(
        q.unused_params.is_empty(),
        "{} {:?}",
        q.sql,
        q.unused_params
    );
}
