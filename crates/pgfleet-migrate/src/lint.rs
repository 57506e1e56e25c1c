//! The linter for unsafe DDL: rules over the parse trees of each up script (the real PostgreSQL
//! grammar via libpg_query, never regexes). A target's SQL is the file's SQL (tenant migrations
//! run unchanged in every tenant), so linting each file once covers every target.
//!
//! "Existing table" means a table not created earlier in the same file: a table the file itself
//! creates is empty and nobody else can be waiting on it.

use std::path::PathBuf;

use pg_query::protobuf::{a_const, AlterTableType, ConstrType, Node, ObjectType, VariableSetKind};
use pg_query::NodeEnum;

use crate::script::{Script, Statement};
use crate::source::MigrationSet;

/// One lint rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its id (`--allow ID`, header `allow=ID`).
    pub id: &'static str,
    /// What can go wrong.
    pub risk: &'static str,
    /// The safe alternative.
    pub instead: &'static str,
}

/// Every rule.
pub const RULES: &[Rule] = &[
    Rule {
        id: "volatile-default",
        risk: "adding a column whose DEFAULT is volatile (or a serial column) rewrites the whole table under an ACCESS EXCLUSIVE lock: reads and writes wait until it finishes",
        instead: "add the column without a default (or with a constant one), then backfill in batches and set the default afterwards",
    },
    Rule {
        id: "not-null-without-default",
        risk: "adding a NOT NULL column without a DEFAULT fails on a table that has rows",
        instead: "add the column nullable (or with a constant DEFAULT), backfill, then add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, and SET NOT NULL",
    },
    Rule {
        id: "index-without-concurrently",
        risk: "CREATE INDEX without CONCURRENTLY blocks every write to the table while the index is built",
        instead: "CREATE INDEX CONCURRENTLY (pgfleet runs it outside a transaction); use IF NOT EXISTS and check for an INVALID index after a failure",
    },
    Rule {
        id: "foreign-key-without-not-valid",
        risk: "adding a FOREIGN KEY validates every row while holding a SHARE ROW EXCLUSIVE lock on both tables: writes wait",
        instead: "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later migration (it takes a weaker lock)",
    },
    Rule {
        id: "check-without-not-valid",
        risk: "adding a CHECK constraint scans the whole table under an ACCESS EXCLUSIVE lock: reads and writes wait",
        instead: "ADD CONSTRAINT ... CHECK (...) NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later migration",
    },
    Rule {
        id: "alter-column-type",
        risk: "changing a column's type usually rewrites the table and its indexes under an ACCESS EXCLUSIVE lock, and breaks clients that read the old type",
        instead: "add a new column of the new type, backfill it in batches, switch the application over, then drop the old column",
    },
    Rule {
        id: "rename-column",
        risk: "renaming a column breaks every running application instance that still uses the old name",
        instead: "add the new column, write both, backfill, move readers, then drop the old column (or expose the new name through a view)",
    },
    Rule {
        id: "rename-table",
        risk: "renaming a table breaks every running application instance that still uses the old name",
        instead: "create the new table (or a view with the new name), move the application over, then drop the old name",
    },
    Rule {
        id: "drop-column",
        risk: "dropping a column breaks running application instances that still select or write it, and the data is gone",
        instead: "first deploy code that no longer uses the column, then drop it in a later migration",
    },
    Rule {
        id: "drop-table",
        risk: "dropping a table breaks running application instances that still use it, and the data is gone",
        instead: "first deploy code that no longer uses the table (rename it aside or keep a backup), then drop it in a later migration",
    },
    Rule {
        id: "set-not-null",
        risk: "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock: reads and writes wait",
        instead: "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT c, then SET NOT NULL (PostgreSQL 12+ skips the scan) and drop c",
    },
    Rule {
        id: "missing-lock-timeout",
        risk: "DDL that waits for a lock queues every later query on the table behind it: without a lock_timeout one long transaction stalls the application",
        instead: "keep pgfleet's default lock_timeout (--lock-timeout) or SET lock_timeout = '5s' at the top of the file; pgfleet retries on lock timeouts",
    },
    Rule {
        id: "vacuum-full",
        risk: "VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock: reads and writes wait until it finishes",
        instead: "plain VACUUM, or an online rebuild tool (pg_repack) outside migrations",
    },
    Rule {
        id: "cluster",
        risk: "CLUSTER rewrites the table under an ACCESS EXCLUSIVE lock: reads and writes wait until it finishes",
        instead: "leave physical ordering to an online tool (pg_repack --order-by) outside migrations",
    },
];

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule id.
    pub rule: &'static str,
    /// The file.
    pub path: PathBuf,
    /// 1-based line of the statement.
    pub line: usize,
    /// What the statement does, e.g. "ALTER TABLE users DROP COLUMN email".
    pub what: String,
    /// Risk and safe alternative.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: [{}] {}: {}",
            self.path.display(),
            self.line,
            self.rule,
            self.what,
            self.message
        )
    }
}

/// What the runner does around the scripts (the linter's only context).
#[derive(Clone, Copy, Debug)]
pub struct LintContext {
    /// The lock_timeout the runner sets before each migration; zero = none.
    pub runner_lock_timeout_ms: u64,
}

/// Lints the up scripts of `set` (of the given kinds); findings whose rule is in `allow` or in
/// the file's header `allow=` are left out.
pub fn lint_set(
    set: &MigrationSet,
    kinds: &[crate::TargetKind],
    allow: &[String],
    ctx: LintContext,
) -> Vec<Finding> {
    set.migrations
        .iter()
        .filter(|m| kinds.contains(&m.kind))
        .flat_map(|m| {
            lint_script(&m.up, ctx)
                .into_iter()
                .filter(|f| !allow.iter().chain(&m.allow).any(|a| a == f.rule))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every finding in one script.
pub fn lint_script(script: &Script, ctx: LintContext) -> Vec<Finding> {
    let mut lint = Lint {
        script,
        created: Vec::new(),
        lock_timeout_ms: None,
        findings: Vec::new(),
    };
    for s in &script.statements {
        lint.statement(s, ctx);
    }
    lint.findings
}

struct Lint<'a> {
    script: &'a Script,
    /// Tables created earlier in the file (lower-case relname).
    created: Vec<String>,
    /// lock_timeout set by the file so far (`Some(0)`: explicitly disabled).
    lock_timeout_ms: Option<u64>,
    findings: Vec<Finding>,
}

impl Lint<'_> {
    fn report(&mut self, rule_id: &'static str, s: &Statement, what: String) {
        let Some(rule) = rule(rule_id) else { return };
        self.findings.push(Finding {
            rule: rule.id,
            path: self.script.path.clone(),
            line: s.line,
            what,
            message: format!("{}. Instead: {}.", rule.risk, rule.instead),
        });
    }

    fn existing(&self, relname: &str) -> bool {
        !self.created.iter().any(|c| c == relname)
    }

    fn statement(&mut self, s: &Statement, ctx: LintContext) {
        let Some(node) = s.node.node.as_ref() else {
            return;
        };
        if self.takes_strong_lock(node) {
            let effective = self.lock_timeout_ms.unwrap_or(ctx.runner_lock_timeout_ms);
            if effective == 0 {
                self.report(
                    "missing-lock-timeout",
                    s,
                    format!("{} with no lock_timeout in effect", summary(node)),
                );
            }
        }
        match node {
            NodeEnum::CreateStmt(c) => {
                if let Some(r) = &c.relation {
                    self.created.push(r.relname.clone());
                }
            }
            NodeEnum::VariableSetStmt(v) if v.name == "lock_timeout" => {
                self.lock_timeout_ms = Some(lock_timeout_value(v));
            }
            NodeEnum::IndexStmt(i) if !i.concurrent => {
                let table = i
                    .relation
                    .as_ref()
                    .map(|r| r.relname.clone())
                    .unwrap_or_default();
                if self.existing(&table) {
                    self.report(
                        "index-without-concurrently",
                        s,
                        format!("CREATE INDEX on {table}"),
                    );
                }
            }
            NodeEnum::AlterTableStmt(a) => {
                let table = a
                    .relation
                    .as_ref()
                    .map(|r| r.relname.clone())
                    .unwrap_or_default();
                if !self.existing(&table) {
                    return;
                }
                for cmd in &a.cmds {
                    if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node {
                        self.alter_table_cmd(s, &table, cmd);
                    }
                }
            }
            NodeEnum::RenameStmt(r) => {
                let table = r
                    .relation
                    .as_ref()
                    .map(|r| r.relname.clone())
                    .unwrap_or_default();
                if !self.existing(&table) {
                    return;
                }
                if r.rename_type == ObjectType::ObjectColumn as i32 {
                    self.report(
                        "rename-column",
                        s,
                        format!(
                            "ALTER TABLE {table} RENAME COLUMN {} TO {}",
                            r.subname, r.newname
                        ),
                    );
                } else if r.rename_type == ObjectType::ObjectTable as i32 {
                    self.report(
                        "rename-table",
                        s,
                        format!("ALTER TABLE {table} RENAME TO {}", r.newname),
                    );
                }
            }
            NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectTable as i32 => {
                for name in d.objects.iter().filter_map(object_name) {
                    if self.existing(&name) {
                        self.report("drop-table", s, format!("DROP TABLE {name}"));
                    }
                }
            }
            NodeEnum::VacuumStmt(v) if v.is_vacuumcmd && has_option(&v.options, "full") => {
                self.report("vacuum-full", s, "VACUUM FULL".to_string());
            }
            NodeEnum::ClusterStmt(c) => {
                let table = c
                    .relation
                    .as_ref()
                    .map(|r| r.relname.clone())
                    .unwrap_or_else(|| "every clustered table".into());
                self.report("cluster", s, format!("CLUSTER {table}"));
            }
            _ => {}
        }
    }

    fn alter_table_cmd(
        &mut self,
        s: &Statement,
        table: &str,
        cmd: &pg_query::protobuf::AlterTableCmd,
    ) {
        let subtype = AlterTableType::try_from(cmd.subtype).unwrap_or(AlterTableType::Undefined);
        match subtype {
            AlterTableType::AtAddColumn => {
                let Some(NodeEnum::ColumnDef(col)) =
                    cmd.def.as_deref().and_then(|d| d.node.as_ref())
                else {
                    return;
                };
                let constraints: Vec<&pg_query::protobuf::Constraint> = col
                    .constraints
                    .iter()
                    .filter_map(|c| match &c.node {
                        Some(NodeEnum::Constraint(c)) => Some(c.as_ref()),
                        _ => None,
                    })
                    .collect();
                let default = constraints
                    .iter()
                    .find(|c| c.contype == ConstrType::ConstrDefault as i32);
                let not_null = col.is_not_null
                    || constraints
                        .iter()
                        .any(|c| c.contype == ConstrType::ConstrNotnull as i32);
                let type_name = col
                    .type_name
                    .as_ref()
                    .and_then(|t| t.names.last())
                    .and_then(string_value)
                    .unwrap_or_default();
                let serial = matches!(
                    type_name.as_str(),
                    "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8"
                );
                let volatile = default
                    .and_then(|d| d.raw_expr.as_deref())
                    .map(called_functions)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|f| VOLATILE.contains(&f.as_str()));
                if let Some(function) = volatile {
                    self.report(
                        "volatile-default",
                        s,
                        format!(
                            "ALTER TABLE {table} ADD COLUMN {} DEFAULT {function}(...)",
                            col.colname
                        ),
                    );
                } else if serial {
                    self.report(
                        "volatile-default",
                        s,
                        format!("ALTER TABLE {table} ADD COLUMN {} {type_name}", col.colname),
                    );
                }
                if not_null && default.is_none() && !serial {
                    self.report(
                        "not-null-without-default",
                        s,
                        format!("ALTER TABLE {table} ADD COLUMN {} NOT NULL", col.colname),
                    );
                }
            }
            AlterTableType::AtAddConstraint => {
                let Some(NodeEnum::Constraint(c)) =
                    cmd.def.as_deref().and_then(|d| d.node.as_ref())
                else {
                    return;
                };
                if c.skip_validation {
                    return;
                }
                let name = if c.conname.is_empty() {
                    String::new()
                } else {
                    format!(" {}", c.conname)
                };
                if c.contype == ConstrType::ConstrForeign as i32 {
                    self.report(
                        "foreign-key-without-not-valid",
                        s,
                        format!("ALTER TABLE {table} ADD CONSTRAINT{name} FOREIGN KEY"),
                    );
                } else if c.contype == ConstrType::ConstrCheck as i32 {
                    self.report(
                        "check-without-not-valid",
                        s,
                        format!("ALTER TABLE {table} ADD CONSTRAINT{name} CHECK"),
                    );
                }
            }
            AlterTableType::AtAlterColumnType => {
                self.report(
                    "alter-column-type",
                    s,
                    format!("ALTER TABLE {table} ALTER COLUMN {} TYPE", cmd.name),
                );
            }
            AlterTableType::AtDropColumn => {
                self.report(
                    "drop-column",
                    s,
                    format!("ALTER TABLE {table} DROP COLUMN {}", cmd.name),
                );
            }
            AlterTableType::AtSetNotNull => {
                self.report(
                    "set-not-null",
                    s,
                    format!("ALTER TABLE {table} ALTER COLUMN {} SET NOT NULL", cmd.name),
                );
            }
            _ => {}
        }
    }

    /// Statements that take a lock on an existing table strong enough to queue its readers or
    /// writers (ACCESS EXCLUSIVE or SHARE and stronger).
    fn takes_strong_lock(&self, node: &NodeEnum) -> bool {
        let existing = |r: &Option<pg_query::protobuf::RangeVar>| {
            r.as_ref().is_some_and(|r| self.existing(&r.relname))
        };
        match node {
            NodeEnum::AlterTableStmt(a) => existing(&a.relation),
            NodeEnum::IndexStmt(i) => !i.concurrent && existing(&i.relation),
            NodeEnum::RenameStmt(r) => existing(&r.relation),
            NodeEnum::DropStmt(d) => {
                d.remove_type == ObjectType::ObjectTable as i32
                    && d.objects
                        .iter()
                        .filter_map(object_name)
                        .any(|n| self.existing(&n))
            }
            NodeEnum::ClusterStmt(_) => true,
            NodeEnum::VacuumStmt(v) => v.is_vacuumcmd && has_option(&v.options, "full"),
            _ => false,
        }
    }
}

/// Built-in functions PostgreSQL marks volatile that show up in column defaults.
const VOLATILE: &[&str] = &[
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "txid_current",
    "pg_current_xact_id",
];

/// The milliseconds a `SET lock_timeout` sets (0 for `0`, DEFAULT, RESET or unparsable text:
/// treated as "no timeout", the cautious reading).
fn lock_timeout_value(v: &pg_query::protobuf::VariableSetStmt) -> u64 {
    if v.kind != VariableSetKind::VarSetValue as i32 {
        return 0;
    }
    let Some(NodeEnum::AConst(c)) = v.args.first().and_then(|a| a.node.as_ref()) else {
        return 0;
    };
    match &c.val {
        Some(a_const::Val::Ival(i)) => u64::try_from(i.ival).unwrap_or(0),
        Some(a_const::Val::Sval(s)) => parse_pg_duration_ms(&s.sval).unwrap_or(0),
        _ => 0,
    }
}

/// `'5s'`, `'500ms'`, `'1min'`, `'100'` (milliseconds, PostgreSQL's unit for lock_timeout).
fn parse_pg_duration_ms(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let factor = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(n * factor)
}

fn has_option(options: &[Node], name: &str) -> bool {
    options.iter().any(|o| match &o.node {
        Some(NodeEnum::DefElem(d)) if d.defname == name => {
            match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
                Some(NodeEnum::Boolean(b)) => b.boolval,
                Some(NodeEnum::Integer(i)) => i.ival != 0,
                _ => true,
            }
        }
        _ => false,
    })
}

fn string_value(node: &Node) -> Option<String> {
    match &node.node {
        Some(NodeEnum::String(s)) => Some(s.sval.clone()),
        _ => None,
    }
}

/// `DROP TABLE a.b` objects are lists of name parts; the table name is the last.
fn object_name(node: &Node) -> Option<String> {
    match &node.node {
        Some(NodeEnum::List(l)) => l.items.last().and_then(string_value),
        _ => None,
    }
}

/// Names (last part, lower-case) of every function called anywhere inside `node`. The walk goes
/// over the serialized tree so that no expression type is missed.
fn called_functions(node: &Node) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(call) = map.get("FuncCall") {
                    if let Some(serde_json::Value::Array(parts)) = call.get("funcname") {
                        if let Some(name) = parts
                            .last()
                            .and_then(|p| p.pointer("/node/String/sval"))
                            .and_then(|s| s.as_str())
                        {
                            out.push(name.to_lowercase());
                        }
                    }
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::to_value(node) {
        walk(&value, &mut out);
    }
    out
}

fn summary(node: &NodeEnum) -> &'static str {
    match node {
        NodeEnum::AlterTableStmt(_) => "ALTER TABLE",
        NodeEnum::IndexStmt(_) => "CREATE INDEX",
        NodeEnum::RenameStmt(_) => "RENAME",
        NodeEnum::DropStmt(_) => "DROP TABLE",
        NodeEnum::ClusterStmt(_) => "CLUSTER",
        NodeEnum::VacuumStmt(_) => "VACUUM FULL",
        _ => "statement",
    }
}
