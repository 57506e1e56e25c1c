//! Read/write classification for read/write splitting, decided on the parsed statement (never on
//! the first word): may a replica serve this request, or must the primary?
//!
//! A hot standby runs only read-only transactions (PostgreSQL docs, "Hot Standby", hot-standby.html:
//! "Transactions started during hot standby … may not write"); so anything that writes, locks rows,
//! takes a lock, advances a sequence or cannot run in recovery goes to the primary. Functions a
//! read calls are listed so the router can check their volatility against pg_proc.

use pg_query::protobuf::{a_const::Val, TransactionStmt, TransactionStmtKind, VariableSetStmt};
use pg_query::{Node, NodeEnum};

use crate::hint::{parse_hints, Hints};
use crate::read_walk::{walk_read, ReadFindings};

/// `CURSOR_OPT_HOLD` from PostgreSQL's parsenodes.h: `DECLARE … WITH HOLD`.
const CURSOR_OPT_HOLD: i32 = 0x0020;

/// Where a request may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Any healthy replica (or the primary, per `primary_reads`).
    Replica,
    /// The primary only.
    Primary,
}

/// Why a request must go to the primary (for logs, `SHOW` and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteReason {
    /// `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `TRUNCATE`.
    Dml,
    /// Schema and object changes (`CREATE`/`ALTER`/`DROP`/`GRANT`/`COMMENT`/`REINDEX`/…).
    Ddl,
    /// `FOR UPDATE` / `FOR NO KEY UPDATE` / `FOR SHARE` / `FOR KEY SHARE` anywhere in the tree.
    LockingRead,
    /// A data-modifying statement inside a read (`WITH d AS (DELETE …) SELECT …`).
    ModifyingCte,
    /// `SELECT … INTO new_table` creates a table.
    SelectInto,
    /// `LOCK TABLE`.
    Lock,
    /// `COPY … FROM` (`COPY … TO` is a read).
    CopyFrom,
    /// `CALL procedure(…)`.
    Call,
    /// `DO` blocks (procedural code we do not analyze).
    Do,
    /// `nextval` / `setval` (the name as written, lower-case).
    SequenceFunction(String),
    /// `pg_advisory_*` / `pg_try_advisory_*` (the name as written, lower-case).
    AdvisoryLock(String),
    /// A function the volatility catalog says may write; set by the router, never by this crate.
    VolatileFunction(String),
    /// `BEGIN`/`START TRANSACTION` that is not `READ ONLY`, `PREPARE TRANSACTION`,
    /// `COMMIT`/`ROLLBACK PREPARED`, `SET TRANSACTION` other than `READ ONLY`, and SERIALIZABLE
    /// read-only transactions (a hot standby refuses SERIALIZABLE; docs, hot-standby.html).
    TransactionControl,
    /// `SET`/`RESET`/`LISTEN`/`UNLISTEN`/`NOTIFY`/`PREPARE`/`EXECUTE`/`DEALLOCATE`/`DISCARD`/`LOAD`,
    /// cursor commands and `DECLARE … WITH HOLD`: they run where the session is (the proxy
    /// handles them separately).
    SessionCommand,
    /// The text did not parse (or nests too deeply to analyze): never a replica.
    ParseError,
    /// A statement kind not known to be a read (the parse-tree node name, e.g. `VacuumStmt`).
    Other(String),
}

/// Transaction control seen in the text (of its first statement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxControl {
    /// Not a transaction-control statement.
    None,
    /// `BEGIN` / `START TRANSACTION`; `read_only` is `Some` when `READ ONLY`/`READ WRITE` is written.
    Begin {
        /// `Some(true)` for `READ ONLY`, `Some(false)` for `READ WRITE`, `None` when not written.
        read_only: Option<bool>,
    },
    /// `SET TRANSACTION READ ONLY` (`true`) / `READ WRITE` (`false`).
    SetTransactionReadOnly(bool),
    /// `COMMIT` / `END` (also `AND CHAIN`).
    Commit,
    /// `ROLLBACK` / `ABORT` (not `ROLLBACK TO SAVEPOINT`).
    Rollback,
}

/// The read/write classification of one SQL text (simple Query or Parse).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classification {
    /// `Replica` only if every statement is a plain read. Decided on the grammar alone: hints,
    /// `SET pgfleet.role`, volatility and consistency levels are the router's to apply
    /// (see [`Classification::target_with_hint`]).
    pub target: Target,
    /// `Some(_)` iff `target == Primary`: the first statement's reason to need the primary.
    pub reason: Option<WriteReason>,
    /// Every function called by read statements, lower-case, schema-qualified as written
    /// (`now`, `pg_catalog.random`, `myschema.f`), deduplicated, in text order.
    pub functions: Vec<String>,
    /// Transaction control of the first statement.
    pub tx: TxControl,
    /// `/* pgfleet: … */` comment hints.
    pub hints: Hints,
}

impl Classification {
    /// The target after the comment hint: `role=primary` moves a read to the primary;
    /// `role=replica` never moves a write to a replica (it only confirms a read).
    pub fn target_with_hint(&self) -> Target {
        match (self.target, self.hints.role) {
            (Target::Replica, Some(Target::Primary)) => Target::Primary,
            (t, _) => t,
        }
    }
}

/// One statement's verdict.
struct Verdict {
    reason: Option<WriteReason>,
    tx: TxControl,
}

impl Verdict {
    fn read() -> Verdict {
        Verdict {
            reason: None,
            tx: TxControl::None,
        }
    }
    fn write(reason: WriteReason) -> Verdict {
        Verdict {
            reason: Some(reason),
            tx: TxControl::None,
        }
    }
}

/// Parses `sql` and classifies it (no cache). Any statement that needs the primary makes the
/// whole text need it; a text that does not parse needs the primary.
pub fn classify_uncached(sql: &str) -> Classification {
    let hints = parse_hints(sql);
    let parsed = match pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        Ok(p) => p,
        Err(_) => {
            return Classification {
                target: Target::Primary,
                reason: Some(WriteReason::ParseError),
                functions: Vec::new(),
                tx: TxControl::None,
                hints,
            }
        }
    };
    let mut reason = None;
    let mut tx = None;
    let mut calls: Vec<(i32, String)> = Vec::new();
    for raw in &parsed.protobuf.stmts {
        let Some(stmt) = raw.stmt.as_deref().and_then(|n| n.node.as_ref()) else {
            continue;
        };
        let mut found = ReadFindings::default();
        let verdict = classify_stmt(stmt, &mut found);
        tx.get_or_insert(verdict.tx);
        match verdict.reason {
            Some(r) => {
                reason.get_or_insert(r);
            }
            None => calls.append(&mut found.calls),
        }
    }
    Classification {
        target: if reason.is_some() {
            Target::Primary
        } else {
            Target::Replica
        },
        reason,
        functions: in_text_order(calls),
        tx: tx.unwrap_or(TxControl::None),
        hints,
    }
}

/// Sorts calls by their position in the text and drops repeated names.
fn in_text_order(mut calls: Vec<(i32, String)>) -> Vec<String> {
    calls.sort_by_key(|(loc, _)| *loc);
    let mut out: Vec<String> = Vec::with_capacity(calls.len());
    for (_, name) in calls {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Classifies one top-level statement; read statements are walked into `found`.
fn classify_stmt(stmt: &NodeEnum, found: &mut ReadFindings) -> Verdict {
    // EXPLAIN, COPY (query) and DECLARE wrap one statement; the grammar allows no deeper wrapping,
    // but a loop keeps this free of recursion anyway.
    let mut stmt = stmt;
    loop {
        let inner = match stmt {
            // EXPLAIN ANALYZE runs its statement. Plain EXPLAIN of a write does not, but only
            // "EXPLAIN of a read" is promised to replicas: classify the inner statement either way.
            NodeEnum::ExplainStmt(e) => e.query.as_deref(),
            NodeEnum::CopyStmt(c) if c.is_from => return Verdict::write(WriteReason::CopyFrom),
            NodeEnum::CopyStmt(c) => match c.query.as_deref() {
                Some(q) => Some(q),
                None => return Verdict::read(),
            },
            NodeEnum::DeclareCursorStmt(d) if d.options & CURSOR_OPT_HOLD != 0 => {
                return Verdict::write(WriteReason::SessionCommand)
            }
            NodeEnum::DeclareCursorStmt(d) => d.query.as_deref(),
            _ => return classify_leaf(stmt, found),
        };
        match inner.and_then(|n| n.node.as_ref()) {
            Some(next) => stmt = next,
            // A wrapper without its statement does not come out of the parser.
            None => return Verdict::write(WriteReason::Other(node_kind(stmt))),
        }
    }
}

fn classify_leaf(stmt: &NodeEnum, found: &mut ReadFindings) -> Verdict {
    use WriteReason as W;
    match stmt {
        // SELECT, VALUES and TABLE are all SelectStmt.
        NodeEnum::SelectStmt(_) => {
            walk_read(stmt.to_ref(), found);
            match found.write.take() {
                Some(r) => Verdict::write(r),
                None => Verdict::read(),
            }
        }
        NodeEnum::VariableShowStmt(_) => Verdict::read(),
        NodeEnum::InsertStmt(_)
        | NodeEnum::UpdateStmt(_)
        | NodeEnum::DeleteStmt(_)
        | NodeEnum::MergeStmt(_)
        | NodeEnum::TruncateStmt(_) => Verdict::write(W::Dml),
        NodeEnum::LockStmt(_) => Verdict::write(W::Lock),
        NodeEnum::CallStmt(_) => Verdict::write(W::Call),
        NodeEnum::DoStmt(_) => Verdict::write(W::Do),
        NodeEnum::TransactionStmt(t) => transaction(t),
        NodeEnum::VariableSetStmt(s) => variable_set(s),
        NodeEnum::ListenStmt(_)
        | NodeEnum::UnlistenStmt(_)
        | NodeEnum::NotifyStmt(_)
        | NodeEnum::PrepareStmt(_)
        | NodeEnum::ExecuteStmt(_)
        | NodeEnum::DeallocateStmt(_)
        | NodeEnum::DiscardStmt(_)
        | NodeEnum::LoadStmt(_)
        | NodeEnum::ConstraintsSetStmt(_)
        | NodeEnum::FetchStmt(_)
        | NodeEnum::ClosePortalStmt(_) => Verdict::write(W::SessionCommand),
        _ => {
            let kind = node_kind(stmt);
            Verdict::write(if is_ddl(&kind) {
                W::Ddl
            } else {
                W::Other(kind)
            })
        }
    }
}

/// Statement node kinds that change the schema, objects or privileges.
fn is_ddl(kind: &str) -> bool {
    const PREFIXES: &[&str] = &["Create", "Alter", "Drop", "Rename"];
    const KINDS: &[&str] = &[
        "CommentStmt",
        "CompositeTypeStmt",
        "DefineStmt",
        "GrantRoleStmt",
        "GrantStmt",
        "ImportForeignSchemaStmt",
        "IndexStmt",
        "ReassignOwnedStmt",
        "RefreshMatViewStmt",
        "ReindexStmt",
        "RuleStmt",
        "SecLabelStmt",
        "ViewStmt",
        "ClusterStmt",
    ];
    PREFIXES.iter().any(|p| kind.starts_with(p)) || KINDS.contains(&kind)
}

/// The parse-tree node name of a statement (`VacuumStmt`), from its `Debug` output. The writer
/// stops at the first delimiter, so this costs a few bytes however large (or deep) the tree is.
fn node_kind(stmt: &NodeEnum) -> String {
    use std::fmt::Write;
    struct Head(String);
    impl Write for Head {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            match s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                Some(i) => {
                    self.0.push_str(&s[..i]);
                    Err(std::fmt::Error)
                }
                None => {
                    self.0.push_str(s);
                    Ok(())
                }
            }
        }
    }
    let mut head = Head(String::new());
    // The error is our own early stop, not a failure.
    let _ = write!(head, "{stmt:?}");
    head.0
}

fn transaction(t: &TransactionStmt) -> Verdict {
    use TransactionStmtKind as K;
    match TransactionStmtKind::try_from(t.kind) {
        Ok(K::TransStmtBegin | K::TransStmtStart) => {
            let mode = TxMode::of(&t.options);
            Verdict {
                reason: (!mode.replica_safe()).then_some(WriteReason::TransactionControl),
                tx: TxControl::Begin {
                    read_only: mode.read_only,
                },
            }
        }
        // The proxy decides these by the transaction it is in; any server can answer outside one.
        Ok(K::TransStmtCommit) => Verdict {
            reason: None,
            tx: TxControl::Commit,
        },
        Ok(K::TransStmtRollback) => Verdict {
            reason: None,
            tx: TxControl::Rollback,
        },
        Ok(K::TransStmtSavepoint | K::TransStmtRelease | K::TransStmtRollbackTo) => Verdict::read(),
        // Two-phase commit writes state files: impossible during recovery.
        Ok(K::TransStmtPrepare | K::TransStmtCommitPrepared | K::TransStmtRollbackPrepared)
        | Ok(K::Undefined)
        | Err(_) => Verdict::write(WriteReason::TransactionControl),
    }
}

fn variable_set(s: &VariableSetStmt) -> Verdict {
    // `SET TRANSACTION …` is the only VariableSetStmt that is transaction control; `SET SESSION
    // CHARACTERISTICS …` changes defaults (session state) like any other SET.
    if s.name.eq_ignore_ascii_case("transaction") {
        let mode = TxMode::of(&s.args);
        return match mode.read_only {
            Some(ro) => Verdict {
                reason: (!mode.replica_safe()).then_some(WriteReason::TransactionControl),
                tx: TxControl::SetTransactionReadOnly(ro),
            },
            None => Verdict::write(WriteReason::TransactionControl),
        };
    }
    Verdict::write(WriteReason::SessionCommand)
}

/// Transaction modes written in `BEGIN`/`START TRANSACTION`/`SET TRANSACTION`.
#[derive(Default)]
struct TxMode {
    read_only: Option<bool>,
    serializable: bool,
}

impl TxMode {
    fn of(options: &[Node]) -> TxMode {
        let mut mode = TxMode::default();
        for opt in options {
            let Some(NodeEnum::DefElem(d)) = opt.node.as_ref() else {
                continue;
            };
            let val = d
                .arg
                .as_deref()
                .and_then(|a| a.node.as_ref())
                .and_then(|a| match a {
                    NodeEnum::AConst(c) => c.val.as_ref(),
                    _ => None,
                });
            // The grammar writes these as makeDefElem("transaction_read_only", makeIntConst(…))
            // and ("transaction_isolation", makeStringConst("serializable")); the last one wins.
            match (d.defname.as_str(), val) {
                ("transaction_read_only", Some(Val::Ival(i))) => mode.read_only = Some(i.ival != 0),
                ("transaction_read_only", Some(Val::Boolval(b))) => {
                    mode.read_only = Some(b.boolval)
                }
                ("transaction_isolation", Some(Val::Sval(s))) => {
                    mode.serializable = s.sval.eq_ignore_ascii_case("serializable")
                }
                _ => {}
            }
        }
        mode
    }

    /// READ ONLY and not SERIALIZABLE: a hot standby refuses SERIALIZABLE ("cannot use
    /// serializable mode in a hot standby"; docs, hot-standby.html, "Hot Standby Limitations").
    fn replica_safe(&self) -> bool {
        self.read_only == Some(true) && !self.serializable
    }
}
