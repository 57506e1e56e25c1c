//! The values a cross-shard SELECT plan is made of: what each shard runs and how
//! `pgfleet-merge` turns the shards' rows into the rows one server would have sent.

/// A SELECT that reads several shards: the text every shard runs and how to merge their rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardQuery {
    /// The SQL every shard runs (deparsed from the rewritten parse tree). Bind parameters keep
    /// their numbers: the proxy passes the client's parameters unchanged.
    pub sql: String,
    /// How the shards' rows are combined.
    pub plan: MergePlan,
    /// Parameters of the client's statement that `sql` no longer mentions (a LIMIT/OFFSET
    /// parameter applied only after the merge). The client still binds them, so the shards'
    /// Parse must declare them (any type that accepts the bytes: pgfleet uses bytea).
    pub unused_params: Vec<u32>,
}

/// How the rows of several shards become the client's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergePlan {
    /// Row merge or aggregation.
    pub mode: MergeMode,
    /// ORDER BY of the client's query, applied by k-way merge (row mode) or by sorting the
    /// merged groups (aggregate mode). Empty: any order.
    pub sort: Vec<SortKey>,
    /// SELECT DISTINCT (not DISTINCT ON, which is refused): duplicates across shards are removed.
    pub distinct: bool,
    /// The client's LIMIT, applied once after the merge (shards got `LIMIT limit + offset`).
    pub limit: Option<LimitValue>,
    /// The client's OFFSET, applied once after the merge (shards got no OFFSET).
    pub offset: Option<LimitValue>,
}

/// Row merge or aggregation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergeMode {
    /// Shards return the client's rows plus `hidden_columns` helper columns at the end (ORDER BY
    /// expressions that are not in the select list); the merge removes them. The number of
    /// visible columns is only known from the RowDescription when the select list has a `*`.
    Rows {
        /// Helper columns at the end of every shard row.
        hidden_columns: usize,
    },
    /// Shards return one partial row per group; the merge combines partials of equal groups.
    Aggregate(AggregatePlan),
}

/// Aggregation across shards: GROUP BY, aggregates and HAVING.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregatePlan {
    /// Columns in every shard row.
    pub shard_columns: usize,
    /// Shard columns whose values identify a group (empty: one group, the whole table).
    pub group_keys: Vec<usize>,
    /// The merged columns: the client's columns first (`visible` of them), then helper columns
    /// that only HAVING or ORDER BY read.
    pub columns: Vec<FinalColumn>,
    /// How many of `columns` the client sees.
    pub visible: usize,
    /// HAVING, evaluated over merged groups; a group is kept only when it is true.
    pub having: Option<Predicate>,
}

/// One merged column in aggregate mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinalColumn {
    /// A value that is the same in every partial row of a group (a GROUP BY expression or an
    /// expression of them): taken from the first partial row seen.
    Group {
        /// The shard column.
        column: usize,
    },
    /// An aggregate combined from the shards' partial results.
    Aggregate(Aggregate),
}

/// An aggregate and the shard columns holding its partial results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Aggregate {
    /// `count(*)`, `count(x)`: the sum of the partial counts (int8).
    Count {
        /// Partial count column.
        column: usize,
    },
    /// `sum(x)`: the sum of the partial sums, exact (int8 or numeric).
    Sum {
        /// Partial sum column.
        column: usize,
    },
    /// `min(x)`.
    Min {
        /// Partial min column.
        column: usize,
    },
    /// `max(x)`.
    Max {
        /// Partial max column.
        column: usize,
    },
    /// `avg(x)`: shards return `sum(x)` in the column's place and `count(x)` as a helper; the
    /// merge divides as PostgreSQL's `numeric_div` does (result type numeric).
    Avg {
        /// Partial sum column (in the place of the client's avg column).
        sum: usize,
        /// Partial count helper column.
        count: usize,
    },
    /// `bool_and(x)` / `every(x)`.
    BoolAnd {
        /// Partial column.
        column: usize,
    },
    /// `bool_or(x)`.
    BoolOr {
        /// Partial column.
        column: usize,
    },
    /// `string_agg(x, 'delimiter')` without ORDER BY inside: partials joined by the delimiter.
    StringAgg {
        /// Partial column.
        column: usize,
        /// The constant delimiter (NULL delimiter: empty).
        delimiter: String,
    },
    /// `array_agg(x)` without ORDER BY inside: partial arrays concatenated.
    ArrayAgg {
        /// Partial column.
        column: usize,
    },
}

impl Aggregate {
    /// The shard column whose field description (name, format) the merged column keeps.
    pub fn main_column(&self) -> usize {
        match self {
            Aggregate::Count { column }
            | Aggregate::Sum { column }
            | Aggregate::Min { column }
            | Aggregate::Max { column }
            | Aggregate::BoolAnd { column }
            | Aggregate::BoolOr { column }
            | Aggregate::StringAgg { column, .. }
            | Aggregate::ArrayAgg { column } => *column,
            Aggregate::Avg { sum, .. } => *sum,
        }
    }
}

/// One ORDER BY key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortKey {
    /// The column sorted on.
    pub column: SortColumn,
    /// DESC.
    pub descending: bool,
    /// Whether NULLs come first (PostgreSQL's default: last for ASC, first for DESC).
    pub nulls_first: bool,
}

/// The column a sort key reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortColumn {
    /// Row mode: the i-th shard column from the start (a client column). Aggregate mode: the
    /// i-th merged column ([`AggregatePlan::columns`]).
    Output(usize),
    /// Row mode only: the i-th hidden helper column (counted after the client's columns).
    Hidden(usize),
}

/// A LIMIT or OFFSET value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitValue {
    /// A constant (never negative: the planner refuses negative constants as PostgreSQL does).
    Const(u64),
    /// Bind parameter `$n` (1-based); the proxy resolves it per execution. NULL means no limit
    /// (LIMIT) or 0 (OFFSET), as in PostgreSQL.
    Param(u32),
}

/// HAVING as a small expression language over merged columns, with SQL's three-valued logic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Predicate {
    /// All must be true.
    And(Vec<Predicate>),
    /// One must be true.
    Or(Vec<Predicate>),
    /// Negation (NOT NULL is NULL).
    Not(Box<Predicate>),
    /// `left op right`; NULL when either side is NULL.
    Compare {
        /// Left operand.
        left: Operand,
        /// Comparison operator.
        op: CompareOp,
        /// Right operand.
        right: Operand,
    },
    /// `operand IS [NOT] NULL`.
    IsNull {
        /// The operand.
        operand: Operand,
        /// IS NOT NULL.
        negated: bool,
    },
    /// A constant truth value (`true`, `false`, NULL).
    Const(Option<bool>),
}

/// A comparison operator of HAVING.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `=`
    Eq,
    /// `<>` / `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// An operand of a HAVING comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operand {
    /// A merged column ([`AggregatePlan::columns`]).
    Column(usize),
    /// A constant from the query text.
    Literal(Literal),
}

/// A constant in HAVING. Strings are read as the compared column's type (like PostgreSQL's
/// `unknown` literals); numbers compare exactly with integer and numeric columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Literal {
    /// NULL.
    Null,
    /// An integer or decimal number, as written (e.g. `42`, `-1.50`).
    Number(String),
    /// A quoted string.
    String(String),
    /// `true` / `false`.
    Bool(bool),
}
