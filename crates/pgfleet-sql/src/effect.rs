//! What a statement does to session state: the values the analyzer returns.

/// What one top-level statement does to session state. One per statement, in order
/// (a simple Query with N statements yields N entries, matching its N CommandCompletes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEffect {
    /// No session-level effect (includes `SET LOCAL`, `SELECT`, DML, `SET TRANSACTION`, …).
    None,
    /// `SET [SESSION] name …` or `SET name FROM CURRENT`; special forms use the GUC name they set:
    /// `SET TIME ZONE` → `timezone`, `SET ROLE` → `role`, `SET SCHEMA` → `search_path`,
    /// `SET NAMES` → `client_encoding`, `SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION
    /// LEVEL …` → `default_transaction_isolation`. The name is lower-cased (GUC names are
    /// case-insensitive, even when quoted).
    Set {
        /// Lower-cased setting name.
        name: String,
    },
    /// `RESET name` or `SET name TO DEFAULT`.
    Reset {
        /// Lower-cased setting name.
        name: String,
    },
    /// `RESET ALL`.
    ResetAll,
    /// `DISCARD ALL` (also drops prepared statements, temp objects, LISTENs, advisory locks).
    DiscardAll,
    /// `DEALLOCATE [PREPARE] name` (`Some`, case kept as the server sees it) or `DEALLOCATE ALL` (`None`).
    Deallocate {
        /// The prepared statement name, or `None` for `ALL`.
        name: Option<String>,
    },
    /// A call `set_config('literal_name', …, false)` anywhere in the statement (session-level).
    SetConfig {
        /// Lower-cased setting name.
        name: String,
    },
    /// The statement creates state that cannot be replayed elsewhere: the client needs its server.
    Pin(PinReason),
    /// Transaction control. Only reported when the text passes the prefilter (see
    /// [`crate::Analyzer::analyze`]); ReadyForQuery's status byte is the authority on transactions.
    Transaction(TransactionOp),
}

/// Why a statement needs a whole server session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PinReason {
    /// `LISTEN channel`: notifications are delivered to that server session.
    Listen,
    /// Session-level advisory lock functions (`pg_advisory_lock`, `pg_try_advisory_lock`, `_shared`).
    AdvisoryLock,
    /// `DECLARE … WITH HOLD`: the cursor outlives the transaction.
    WithHoldCursor,
    /// A temporary table, view, sequence or an object in `pg_temp`.
    TempObject,
    /// SQL-level `PREPARE` (protocol-level Parse is handled by renaming, not pinning).
    SqlPrepare,
    /// `SET`/`RESET SESSION AUTHORIZATION`.
    SessionAuthorization,
    /// `set_config` whose name or `is_local` is not a literal, several `set_config` names in one
    /// statement, `SET SESSION CHARACTERISTICS` with several modes, or a `DO` block that looks
    /// like it touches session state.
    SetConfigDynamic,
    /// `LOAD 'library'`.
    Load,
}

/// Transaction control statements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionOp {
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT` / `END`.
    Commit,
    /// `ROLLBACK` / `ABORT`.
    Rollback,
    /// `SAVEPOINT name`.
    Savepoint,
    /// `RELEASE [SAVEPOINT] name`.
    Release,
    /// `ROLLBACK TO [SAVEPOINT] name`.
    RollbackTo,
    /// `PREPARE TRANSACTION 'gid'`.
    Prepare,
    /// `COMMIT PREPARED 'gid'`.
    CommitPrepared,
    /// `ROLLBACK PREPARED 'gid'`.
    RollbackPrepared,
}

/// The analysis of one SQL text (simple Query or Parse).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Analysis {
    /// One effect per top-level statement, in order. Empty when the text did not parse, is empty,
    /// or was skipped by the prefilter (then no statement has a session effect).
    pub effects: Vec<SessionEffect>,
    /// The parser's message when the text is not valid SQL (or nests too deeply to analyze);
    /// callers decide (the proxy forwards it as is and lets the server report the error).
    pub parse_error: Option<String>,
}

impl Analysis {
    /// The first reason, in statement order, to pin the client to its server.
    pub fn pin_reason(&self) -> Option<PinReason> {
        self.effects.iter().find_map(|e| match e {
            SessionEffect::Pin(r) => Some(*r),
            _ => None,
        })
    }

    /// Whether any statement has a session-level effect (anything but `None`/`Transaction`).
    pub fn changes_session(&self) -> bool {
        self.effects
            .iter()
            .any(|e| !matches!(e, SessionEffect::None | SessionEffect::Transaction(_)))
    }
}
