//! What one SQL text could do to a session's tenant context, and whether a tenant session may run
//! it. Pure: [`TenantGuard::facts`] analyzes a text once (cached by text) into [`TenantFacts`],
//! independent of which tenant runs it; [`TenantFacts::check`] applies a session's
//! [`TenantRules`] to them.
//!
//! pgfleet enforces a tenant's context (its schema on the search_path, or the row-level security
//! setting) by setting it on the server before the client's statements. A tenant's statements can
//! only escape that context by changing those settings (`SET`, `RESET`, `set_config`, `SET ROLE`),
//! by naming another tenant's schema, or by running SQL pgfleet cannot see (`DO` blocks, function
//! bodies, `query_to_xml`): those are refused here with SQLSTATE 42501.

use std::num::NonZeroUsize;

use lru::LruCache;
use parking_lot::Mutex;
use pg_query::protobuf::{
    a_const::Val, AlterTableType, FuncCall, ObjectType, ReindexObjectType, Token, VariableSetKind,
};
use pg_query::{NodeEnum, NodeRef};

use crate::children::push_children;
use crate::hint::parse_hints;
use crate::literals::normalize;
use crate::own_names::{SERVER_STATEMENT_PREFIX, TWO_PHASE_GID_PREFIX};

/// Functions that run SQL given as text, or dump whole schemas: what they read is invisible to
/// the guard (PostgreSQL docs, "Mapping Tables to XML").
const SQL_TEXT_FUNCTIONS: &[&str] = &[
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xmlschema",
    "database_to_xml_and_xmlschema",
    "schema_to_xml",
    "schema_to_xmlschema",
    "schema_to_xml_and_xmlschema",
    "dblink",
    "dblink_exec",
    "dblink_open",
    "dblink_send_query",
    // Full text search statistics over the rows of a query given as text.
    "ts_stat",
    // tablefunc: pivot and tree queries built from SQL or relation names given as text.
    "crosstab",
    "crosstab2",
    "crosstab3",
    "crosstab4",
    "connectby",
];

/// Functions that signal server processes: with one server role for every tenant they reach the
/// server connections that serve other tenants (a client cancels its own query with the
/// protocol's CancelRequest, which pgfleet forwards to exactly its server).
const SIGNAL_FUNCTIONS: &[&str] = &["pg_cancel_backend", "pg_terminate_backend"];

/// Catalog views that show column values of every table (most common values, histograms): with
/// one server role for every tenant they would show other tenants' data.
const VALUE_CATALOGS: &[&str] = &[
    "pg_stats",
    "pg_stats_ext",
    "pg_stats_ext_exprs",
    "pg_statistic",
    "pg_statistic_ext_data",
];

/// How a statement touches one setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingChange {
    /// `SET name …`, `SET LOCAL name …`, `set_config('name', …)`.
    Set,
    /// `RESET name`, `SET name TO DEFAULT`.
    Reset,
}

/// What a text could do to a tenant context, independent of the tenant (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantFacts {
    /// Settings the text sets or resets, lower-cased, in order (`SET ROLE` → `role`, `SET SCHEMA`
    /// → `search_path`, `SET SESSION AUTHORIZATION` → `session_authorization`).
    pub settings: Vec<(String, SettingChange)>,
    /// A `set_config` whose setting name is not a constant.
    pub dynamic_set_config: bool,
    /// An `UPDATE` of `pg_settings` (PostgreSQL's rule turns it into `set_config` calls).
    pub settings_update: bool,
    /// A statement row-level security does not restrict, or one that changes it: `TRUNCATE`,
    /// `ALTER TABLE … DISABLE / NO FORCE ROW LEVEL SECURITY`, `CREATE / ALTER / DROP POLICY`
    /// (a short description).
    pub row_security_bypass: Option<&'static str>,
    /// `nextval`, `setval` or `currval` of a sequence not named by a string constant (computed
    /// names, OIDs): the name check cannot see whose sequence it is (the function name).
    pub dynamic_sequence: Option<String>,
    /// Code pgfleet cannot check: `DO`, `CREATE FUNCTION`/`PROCEDURE`, `ALTER FUNCTION`,
    /// `ALTER ROLE … SET`, `ALTER DATABASE … SET`, `ALTER SYSTEM` (a short description).
    pub opaque_code: Option<&'static str>,
    /// A call of a function that runs SQL given as text (lower-cased name).
    pub sql_text_call: Option<String>,
    /// A call of a function that signals server processes (lower-cased name).
    pub signal_call: Option<String>,
    /// A statement that acts on what every tenant shares: the server role (its objects in every
    /// schema, its password and attributes, role membership) or the database (a short
    /// description).
    pub shared_objects: Option<&'static str>,
    /// A catalog view that shows column values of all tables (lower-cased name).
    pub value_catalog: Option<String>,
    /// A SQL-level `EXECUTE`, `PREPARE` or `DEALLOCATE` of a name that starts with
    /// [`SERVER_STATEMENT_PREFIX`] (the name).
    pub server_statement: Option<String>,
    /// `PREPARE TRANSACTION`, `COMMIT PREPARED` or `ROLLBACK PREPARED` of a transaction name that
    /// starts with [`TWO_PHASE_GID_PREFIX`] (the name).
    pub own_transaction: Option<String>,
    /// Schema names the text mentions that match the schema template, lower-cased, deduplicated:
    /// as identifiers, in qualified names and in string constants (`'tenant_b.notes'::regclass`).
    pub tenant_schemas: Vec<String>,
    /// `CREATE SCHEMA`: tenants get their schema from `pgfleet tenant create`.
    pub creates_schema: bool,
    /// A `/* pgfleet: shard=… */` or `shard_key` hint.
    pub shard_hint: bool,
    /// Every statement is `SET`, `RESET` or `SHOW` (or there is none): the text touches no data,
    /// so a session may run it before it has a tenant (e.g. `SET pgfleet.tenant = 'acme'`).
    pub only_settings: bool,
    /// The text parsed (else only its identifiers were scanned).
    pub parsed: bool,
}

/// A session's limits: what [`TenantFacts::check`] refuses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantRules {
    /// The session's tenant (for messages); `None` for a session without one.
    pub tenant: Option<String>,
    /// Settings the client may not set or reset (lower-cased): the tenant context, `role`,
    /// `session_authorization`.
    pub protected: Vec<String>,
    /// Schemas matching the template the session may name (its own); every other match is
    /// another tenant's.
    pub own_schemas: Vec<String>,
    /// Why `SET pgfleet.tenant` is refused now (`None`: allowed).
    pub tenant_switch_refused: Option<String>,
    /// Refuse shard hints (the tenant lives on one shard).
    pub pinned_shard: bool,
    /// Every tenant's rows share tables under row-level security (the row model): refuse what
    /// bypasses or changes it.
    pub shared_rows: bool,
}

/// A refused statement: SQLSTATE and message for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// SQLSTATE (42501, insufficient privilege).
    pub code: &'static str,
    /// The message, starting with `pgfleet:`.
    pub message: String,
}

/// The session setting that names the tenant.
pub const TENANT_SETTING: &str = "pgfleet.tenant";

fn violation(message: String) -> Violation {
    Violation {
        code: "42501",
        message: format!("pgfleet: {message}"),
    }
}

impl TenantFacts {
    /// Whether a session under `rules` may run the text.
    pub fn check(&self, rules: &TenantRules) -> Result<(), Violation> {
        let who = match &rules.tenant {
            Some(t) => format!("tenant `{t}`"),
            None => "a session without a tenant".to_owned(),
        };
        for (name, change) in &self.settings {
            if name == TENANT_SETTING {
                if let Some(why) = &rules.tenant_switch_refused {
                    return Err(violation(why.clone()));
                }
                continue;
            }
            if rules.protected.contains(name) {
                let verb = match change {
                    SettingChange::Set => "set",
                    SettingChange::Reset => "reset",
                };
                return Err(violation(format!(
                    "permission denied to {verb} {name}: pgfleet manages it for {who}"
                )));
            }
        }
        if self.dynamic_set_config {
            return Err(violation(format!(
                "permission denied for set_config with a computed setting name: {who} may only name settings literally"
            )));
        }
        if let (Some(what), true) = (self.row_security_bypass, rules.shared_rows) {
            return Err(violation(format!(
                "permission denied for {what}: {who} shares its tables with other tenants under row-level security, which {what} would bypass or change"
            )));
        }
        if self.settings_update {
            return Err(violation(format!(
                "permission denied to update pg_settings: it changes settings like set_config; {who} may only SET settings by name"
            )));
        }
        if let Some(f) = &self.dynamic_sequence {
            return Err(violation(format!(
                "permission denied for {f} with a computed sequence: {who} may only name sequences literally"
            )));
        }
        if let Some(what) = self.opaque_code {
            return Err(violation(format!(
                "permission denied for {what}: {who} may not run code pgfleet cannot check; use an admin role"
            )));
        }
        if let Some(f) = &self.sql_text_call {
            return Err(violation(format!(
                "permission denied for function {f}: it runs SQL text pgfleet cannot check"
            )));
        }
        if let Some(what) = self.shared_objects {
            return Err(violation(format!(
                "permission denied for {what}: it acts on the server role or the database that every tenant shares; use an admin role"
            )));
        }
        if let Some(f) = &self.signal_call {
            return Err(violation(format!(
                "permission denied for function {f}: the server processes it reaches serve other \
                 tenants too; cancel a query with the protocol's cancel request"
            )));
        }
        if let Some(v) = &self.value_catalog {
            return Err(violation(format!(
                "permission denied for {v}: it shows column values of every tenant"
            )));
        }
        if let Some(gid) = &self.own_transaction {
            return Err(violation(format!(
                "permission denied for prepared transaction '{gid}': transactions named \
                 {TWO_PHASE_GID_PREFIX}… are pgfleet's two-phase commits, which only pgfleet \
                 finishes"
            )));
        }
        if let Some(name) = &self.server_statement {
            return Err(violation(format!(
                "permission denied for prepared statement {name}: statements named \
                 {SERVER_STATEMENT_PREFIX}… are pgfleet's own, shared by every session that uses \
                 a server connection"
            )));
        }
        if let Some(schema) = self
            .tenant_schemas
            .iter()
            .find(|s| !rules.own_schemas.contains(s))
        {
            return Err(violation(format!(
                "permission denied for schema {schema}: it belongs to another tenant, {who} may only use its own schema"
            )));
        }
        if self.creates_schema && !rules.own_schemas.is_empty() {
            return Err(violation(format!(
                "permission denied to create a schema: {who} has its schema from `pgfleet tenant create`"
            )));
        }
        if self.shard_hint && rules.pinned_shard {
            return Err(violation(format!(
                "permission denied for a shard hint: {who} lives on one shard"
            )));
        }
        Ok(())
    }
}

/// Analyzes texts for tenant sessions of one database (its schema template), with a bounded LRU
/// cache by exact text.
pub struct TenantGuard {
    /// The schema template's text before and after `{tenant}` (schema model), lower-case.
    pattern: Option<(String, String)>,
    cache: Mutex<LruCache<String, std::sync::Arc<TenantFacts>>>,
}

impl TenantGuard {
    /// A guard for schema names `prefix{tenant}suffix` (`None`: no schema model), caching
    /// `capacity` texts.
    pub fn new(pattern: Option<(String, String)>, capacity: usize) -> TenantGuard {
        TenantGuard {
            pattern: pattern.map(|(p, s)| (p.to_ascii_lowercase(), s.to_ascii_lowercase())),
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// The template this guard matches schema names against.
    pub fn pattern(&self) -> Option<&(String, String)> {
        self.pattern.as_ref()
    }

    /// The facts of `sql` (cached). Texts that differ only in literals share one analysis
    /// ([`crate::literals`]): the facts of the text with parameters in place of its literals,
    /// plus the schema names its string literals mention (the only facts a literal's value
    /// decides, see [`tenant_facts`]). When that text does not parse, or its `set_config` or
    /// sequence function lost its literal name, the exact text is analyzed.
    pub fn facts(&self, sql: &str) -> std::sync::Arc<TenantFacts> {
        if let Some(n) = normalize(sql) {
            let shared = self.cached(&n.key);
            if shared.parsed && !shared.dynamic_set_config && shared.dynamic_sequence.is_none() {
                let mut extra = TenantFacts::default();
                for v in &n.values {
                    note_string_schema(&mut extra, v, self.pattern.as_ref());
                }
                let new: Vec<String> = extra
                    .tenant_schemas
                    .into_iter()
                    .filter(|s| !shared.tenant_schemas.contains(s))
                    .collect();
                if new.is_empty() {
                    return shared;
                }
                let mut facts = (*shared).clone();
                facts.tenant_schemas.extend(new);
                return std::sync::Arc::new(facts);
            }
        }
        self.cached(sql)
    }

    fn cached(&self, sql: &str) -> std::sync::Arc<TenantFacts> {
        if let Some(f) = self.cache.lock().get(sql) {
            return f.clone();
        }
        let facts = std::sync::Arc::new(tenant_facts(sql, self.pattern.as_ref()));
        self.cache.lock().put(sql.to_owned(), facts.clone());
        facts
    }
}

/// A schema name a template matches, as written: noted once, lower-cased.
fn note_schema(facts: &mut TenantFacts, name: &str, pattern: Option<&(String, String)>) {
    let Some(p) = pattern else { return };
    let name = name.to_ascii_lowercase();
    if matches_template(&name, p) && !facts.tenant_schemas.contains(&name) {
        facts.tenant_schemas.push(name);
    }
}

/// A string constant that names a qualified object (`'tenant_b.notes'::regclass`,
/// `to_regclass('"tenant_b".notes')`): its schema part.
fn note_string_schema(facts: &mut TenantFacts, value: &str, pattern: Option<&(String, String)>) {
    if let Some((first, _)) = value.split_once('.') {
        note_schema(facts, first.trim().trim_matches('"'), pattern);
    }
}

/// Whether `name` (lower-case) is `prefix` + a valid tenant name + `suffix`.
fn matches_template(name: &str, pattern: &(String, String)) -> bool {
    let Some(middle) = name
        .strip_prefix(pattern.0.as_str())
        .and_then(|rest| rest.strip_suffix(pattern.1.as_str()))
    else {
        return false;
    };
    !middle.is_empty()
        && middle.len() <= 48
        && middle.as_bytes()[0].is_ascii_lowercase()
        && middle
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The facts of `sql` (uncached). A text that does not parse gets only its identifier scan: the
/// server refuses it anyway.
pub fn tenant_facts(sql: &str, pattern: Option<&(String, String)>) -> TenantFacts {
    let mut facts = TenantFacts::default();
    let hints = parse_hints(sql);
    facts.shard_hint = hints.shard.is_some() || hints.shard_key.is_some();
    let note_schema = |facts: &mut TenantFacts, name: &str| note_schema(facts, name, pattern);
    // Identifiers as written in schema position, whatever statement holds them: a qualifier
    // (`tenant_b.notes`, `tenant_b.f()`) or right after SCHEMA (`DROP SCHEMA tenant_b`, `GRANT …
    // ON SCHEMA tenant_b`, `IN SCHEMA tenant_b`). A column that happens to look like a schema name
    // (`tenant_id`) is not one.
    if let Ok(scan) = pg_query::scan(sql) {
        let tokens = &scan.tokens;
        for (i, token) in tokens.iter().enumerate() {
            let unicode = token.token == Token::Uident as i32;
            if token.token != Token::Ident as i32 && !unicode {
                continue;
            }
            if unicode
                && tokens
                    .get(i + 1)
                    .is_some_and(|n| n.token == Token::Uescape as i32)
            {
                // Another escape character: not decoded here, so not accepted.
                facts
                    .opaque_code
                    .get_or_insert("identifiers with a UESCAPE clause");
                continue;
            }
            let qualifier = tokens
                .get(i + 1)
                .is_some_and(|n| n.token == Token::Ascii46 as i32);
            let after_schema = i
                .checked_sub(1)
                .and_then(|p| tokens.get(p))
                .is_some_and(|p| {
                    p.token == Token::Schema as i32 || p.token == Token::Schemas as i32
                });
            if !qualifier && !after_schema {
                continue;
            }
            let Some(text) = sql.get(token.start as usize..token.end as usize) else {
                continue;
            };
            let ident = if unicode {
                match unicode_identifier(text) {
                    Some(ident) => ident,
                    None => {
                        facts
                            .opaque_code
                            .get_or_insert("malformed Unicode-escaped identifiers");
                        continue;
                    }
                }
            } else {
                match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                    Some(quoted) => quoted.replace("\"\"", "\""),
                    None => text.to_owned(),
                }
            };
            note_schema(&mut facts, &ident);
        }
    }
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        return facts;
    };
    facts.parsed = true;
    facts.only_settings = parsed.protobuf.stmts.iter().all(|raw| {
        matches!(
            raw.stmt.as_deref().and_then(|n| n.node.as_ref()),
            Some(NodeEnum::VariableSetStmt(_) | NodeEnum::VariableShowStmt(_)) | None
        )
    });
    for raw in &parsed.protobuf.stmts {
        let Some(stmt) = raw.stmt.as_deref().and_then(|n| n.node.as_ref()) else {
            continue;
        };
        let mut stack = vec![stmt.to_ref()];
        while let Some(node) = stack.pop() {
            match node {
                NodeRef::VariableSetStmt(s) => {
                    let change = match VariableSetKind::try_from(s.kind) {
                        Ok(VariableSetKind::VarReset | VariableSetKind::VarSetDefault) => {
                            Some(SettingChange::Reset)
                        }
                        Ok(VariableSetKind::VarSetValue | VariableSetKind::VarSetCurrent) => {
                            Some(SettingChange::Set)
                        }
                        // RESET ALL is re-applied by the proxy; SET TRANSACTION changes no setting
                        // a tenant context uses.
                        _ => None,
                    };
                    if let Some(change) = change {
                        facts.settings.push((s.name.to_ascii_lowercase(), change));
                    }
                }
                NodeRef::FuncCall(call) => visit_call(call, &mut facts),
                NodeRef::DoStmt(_) => {
                    facts.opaque_code.get_or_insert("DO blocks");
                }
                // The parser folded unquoted names to lower case, as the server does.
                NodeRef::ExecuteStmt(s) => note_server_statement(&mut facts, &s.name),
                NodeRef::PrepareStmt(s) => note_server_statement(&mut facts, &s.name),
                NodeRef::DeallocateStmt(s) => note_server_statement(&mut facts, &s.name),
                NodeRef::TransactionStmt(t)
                    if t.gid.starts_with(TWO_PHASE_GID_PREFIX)
                        && facts.own_transaction.is_none() =>
                {
                    facts.own_transaction = Some(t.gid.clone());
                }
                NodeRef::CreateFunctionStmt(_) => {
                    facts
                        .opaque_code
                        .get_or_insert("CREATE FUNCTION and CREATE PROCEDURE");
                }
                NodeRef::AlterFunctionStmt(_) => {
                    facts
                        .opaque_code
                        .get_or_insert("ALTER FUNCTION and ALTER PROCEDURE");
                }
                NodeRef::UpdateStmt(u)
                    if u.relation
                        .as_ref()
                        .is_some_and(|r| r.relname.eq_ignore_ascii_case("pg_settings")) =>
                {
                    facts.settings_update = true;
                }
                NodeRef::TruncateStmt(_) => {
                    facts.row_security_bypass.get_or_insert("TRUNCATE");
                }
                NodeRef::AlterTableCmd(c)
                    if matches!(
                        AlterTableType::try_from(c.subtype),
                        Ok(AlterTableType::AtDisableRowSecurity
                            | AlterTableType::AtNoForceRowSecurity)
                    ) =>
                {
                    facts
                        .row_security_bypass
                        .get_or_insert("turning row-level security off");
                }
                NodeRef::CreatePolicyStmt(_) | NodeRef::AlterPolicyStmt(_) => {
                    facts
                        .row_security_bypass
                        .get_or_insert("CREATE and ALTER POLICY");
                }
                NodeRef::DropStmt(d)
                    if ObjectType::try_from(d.remove_type) == Ok(ObjectType::ObjectPolicy) =>
                {
                    facts.row_security_bypass.get_or_insert("DROP POLICY");
                }
                NodeRef::DropOwnedStmt(_) => {
                    facts.shared_objects.get_or_insert("DROP OWNED");
                }
                NodeRef::ReassignOwnedStmt(_) => {
                    facts.shared_objects.get_or_insert("REASSIGN OWNED");
                }
                NodeRef::CreateRoleStmt(_)
                | NodeRef::AlterRoleStmt(_)
                | NodeRef::DropRoleStmt(_)
                | NodeRef::GrantRoleStmt(_) => {
                    facts
                        .shared_objects
                        .get_or_insert("CREATE, ALTER and DROP ROLE and role membership");
                }
                NodeRef::AlterDatabaseStmt(_) => {
                    facts.shared_objects.get_or_insert("ALTER DATABASE");
                }
                // Maintenance of every table at once locks and rewrites every tenant's tables.
                NodeRef::VacuumStmt(v) if v.rels.is_empty() => {
                    facts
                        .shared_objects
                        .get_or_insert("VACUUM and ANALYZE without a table list");
                }
                NodeRef::ClusterStmt(c) if c.relation.is_none() => {
                    facts
                        .shared_objects
                        .get_or_insert("CLUSTER without a table");
                }
                NodeRef::ReindexStmt(r)
                    if matches!(
                        ReindexObjectType::try_from(r.kind),
                        Ok(ReindexObjectType::ReindexObjectDatabase
                            | ReindexObjectType::ReindexObjectSystem)
                    ) =>
                {
                    facts
                        .shared_objects
                        .get_or_insert("REINDEX DATABASE and REINDEX SYSTEM");
                }
                NodeRef::AlterRoleSetStmt(_) => {
                    facts.opaque_code.get_or_insert("ALTER ROLE … SET");
                }
                NodeRef::AlterDatabaseSetStmt(_) => {
                    facts.opaque_code.get_or_insert("ALTER DATABASE … SET");
                }
                NodeRef::AlterSystemStmt(_) => {
                    facts.opaque_code.get_or_insert("ALTER SYSTEM");
                }
                NodeRef::CreateSchemaStmt(s) => {
                    facts.creates_schema = true;
                    note_schema(&mut facts, &s.schemaname);
                }
                NodeRef::AlterObjectSchemaStmt(s) => note_schema(&mut facts, &s.newschema),
                NodeRef::RenameStmt(s) => {
                    note_schema(&mut facts, &s.newname);
                    note_schema(&mut facts, &s.subname);
                }
                NodeRef::RangeVar(r) => {
                    note_schema(&mut facts, &r.schemaname);
                    let rel = r.relname.to_ascii_lowercase();
                    if VALUE_CATALOGS.contains(&rel.as_str()) && facts.value_catalog.is_none() {
                        facts.value_catalog = Some(rel);
                    }
                }
                NodeRef::AConst(c) => {
                    if let Some(Val::Sval(s)) = &c.val {
                        // 'tenant_b.notes'::regclass, to_regclass('"tenant_b".notes'), …
                        note_string_schema(&mut facts, &s.sval, pattern);
                    }
                }
                _ => {}
            }
            push_children(node, &mut stack);
        }
    }
    facts
}

/// A SQL-level reference to one of pgfleet's own server-side statements.
fn note_server_statement(facts: &mut TenantFacts, name: &str) {
    if name.starts_with(SERVER_STATEMENT_PREFIX) && facts.server_statement.is_none() {
        facts.server_statement = Some(name.to_owned());
    }
}

/// The name a `U&"…"` identifier stands for, with PostgreSQL's default escape character `\`:
/// `\XXXX` and `\+XXXXXX` are code points in hex, `\\` is a backslash, `""` a quote. `None` for
/// anything malformed (the caller refuses it rather than guess).
fn unicode_identifier(text: &str) -> Option<String> {
    let body = text
        .get(2..)
        .filter(|_| text.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("u&")))?
        .strip_prefix('"')?
        .strip_suffix('"')?
        .replace("\"\"", "\"");
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let rest = chars.as_str();
        if let Some(after) = rest.strip_prefix('\\') {
            out.push('\\');
            chars = after.chars();
            continue;
        }
        let (digits, after) = match rest.strip_prefix('+') {
            Some(r) => (r.get(..6)?, r.get(6..)?),
            None => (rest.get(..4)?, rest.get(4..)?),
        };
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        out.push(char::from_u32(u32::from_str_radix(digits, 16).ok()?)?);
        chars = after.chars();
    }
    Some(out)
}

/// The last part of a function's name, lower-cased.
fn call_name(call: &FuncCall) -> Option<String> {
    match call.funcname.last()?.node.as_ref()? {
        NodeEnum::String(s) => Some(s.sval.to_ascii_lowercase()),
        _ => None,
    }
}

fn visit_call(call: &FuncCall, facts: &mut TenantFacts) {
    let Some(name) = call_name(call) else { return };
    if name == "set_config" {
        // set_config(name, value, is_local): local or not, it changes the setting now.
        match call.args.first().and_then(literal_str) {
            Some(setting) => facts
                .settings
                .push((setting.to_ascii_lowercase(), SettingChange::Set)),
            None => facts.dynamic_set_config = true,
        }
    } else if matches!(name.as_str(), "nextval" | "setval" | "currval") {
        // A constant name is checked like any other string constant naming a qualified object.
        if call.args.first().and_then(literal_str).is_none() {
            facts.dynamic_sequence.get_or_insert(name);
        }
    } else if SQL_TEXT_FUNCTIONS.contains(&name.as_str())
        || name.starts_with("table_to_xml")
        || name.starts_with("cursor_to_xml")
        // ts_rewrite(query, 'SELECT target, substitute FROM …') runs that SELECT.
        || (name == "ts_rewrite" && call.args.len() == 2)
    {
        facts.sql_text_call.get_or_insert(name);
    } else if SIGNAL_FUNCTIONS.contains(&name.as_str()) {
        facts.signal_call.get_or_insert(name);
    }
}

/// A string constant, looking through casts (`'x'::text`).
fn literal_str(node: &pg_query::Node) -> Option<&str> {
    let mut node = node.node.as_ref()?;
    for _ in 0..8 {
        match node {
            NodeEnum::AConst(c) if !c.isnull => {
                return match c.val.as_ref()? {
                    Val::Sval(s) => Some(s.sval.as_str()),
                    _ => None,
                }
            }
            NodeEnum::TypeCast(t) => node = t.arg.as_deref()?.node.as_ref()?,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests;
