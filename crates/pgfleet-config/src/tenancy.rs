//! Multi-tenancy keys: `[metadata]` (the metadata database that holds the tenant directory and
//! other state shared by pgfleet instances), `[databases.NAME.tenancy]` (how a database's sessions
//! name their tenant and how tenants are isolated) and `users.NAME.tenant` (a per-user binding),
//! each checked with its key path. Tenant names are checked here too ([`check_tenant_name`]) so
//! the proxy, the tenant directory and the tools agree on one pattern.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::keys::edit_distance;
use crate::model::{ClusterConfig, DatabaseConfig, UserConfig};
use crate::reader::Reader;

type Leaf = Option<toml::Value>;

/// Longest tenant name, in bytes. Templates add at most [`TEMPLATE_FIXED_MAX`] bytes, so every
/// rendered schema or database name fits PostgreSQL's 63-byte identifier limit (NAMEDATALEN - 1).
pub const TENANT_NAME_MAX: usize = 48;
/// Longest fixed part of `schema_template` / `database_template` (the text around `{tenant}`).
pub const TEMPLATE_FIXED_MAX: usize = 63 - TENANT_NAME_MAX;
/// The placeholder a template must contain exactly once.
pub const TENANT_PLACEHOLDER: &str = "{tenant}";

/// Checks a tenant name: 1–48 bytes of lower-case ASCII letters, digits and `_`, starting with a
/// letter. Such a name is a valid unquoted PostgreSQL identifier on its own and inside a template,
/// cannot contain the `.` that separates user and tenant in user names (`app.acme`), and needs no
/// quoting in logs or NOTIFY payloads.
pub fn check_tenant_name(name: &str) -> Result<(), String> {
    let valid = name.len() <= TENANT_NAME_MAX
        && name.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid tenant name `{name}`; use 1 to {TENANT_NAME_MAX} lower-case letters, digits or `_`, starting with a letter (e.g. \"acme\", \"tenant_42\")"
        ))
    }
}

/// True for a plain lower-case identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes): schema names,
/// setting parts, column names that need no quoting.
fn is_plain_identifier(s: &str) -> bool {
    s.len() <= 63
        && s.as_bytes()
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || *b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `[metadata]`: where the state shared by pgfleet instances lives (tenant directory, fleet
/// migration ledger). `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct MetadataConfig {
    /// Cluster (a key of `Config::clusters`) whose primary holds the metadata database.
    pub cluster: String,
    /// Database name on that cluster's servers; default `pgfleet_meta`.
    pub database: String,
    /// Server login used by pgfleet and its tools for the metadata database; default `postgres`.
    pub user: String,
    /// Password for `user`, when the server asks for one.
    pub password: Option<String>,
}

impl fmt::Debug for MetadataConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataConfig")
            .field("cluster", &self.cluster)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// How tenants of a database are kept apart (`databases.NAME.tenancy.model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TenantModel {
    /// `"schema"`: each tenant has its own schema in the database.
    Schema,
    /// `"row"`: shared tables with a tenant column, row-level security on a setting.
    Row,
    /// `"database"`: each tenant has its own database.
    Database,
}

impl TenantModel {
    /// Every value with its config spelling.
    pub const CHOICES: &'static [(&'static str, TenantModel)] = &[
        ("schema", TenantModel::Schema),
        ("row", TenantModel::Row),
        ("database", TenantModel::Database),
    ];

    /// The config spelling (also stored in the tenant directory).
    pub fn as_str(self) -> &'static str {
        match self {
            TenantModel::Schema => "schema",
            TenantModel::Row => "row",
            TenantModel::Database => "database",
        }
    }

    /// The model named by its config spelling.
    pub fn parse(text: &str) -> Option<TenantModel> {
        Self::CHOICES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, m)| *m)
    }
}

/// One way a session names its tenant (`databases.NAME.tenancy.identify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantSource {
    /// `"user"`: the user name `app.acme` means user `app`, tenant `acme`.
    User,
    /// `"startup"`: the startup parameter `pgfleet.tenant` (`options=-c pgfleet.tenant=acme`).
    Startup,
    /// `"set"`: `SET pgfleet.tenant = 'acme'`.
    Set,
    /// `"binding"`: the user's `users.NAME.tenant`.
    Binding,
}

impl TenantSource {
    /// Every value with its config spelling.
    pub const CHOICES: &'static [(&'static str, TenantSource)] = &[
        ("user", TenantSource::User),
        ("startup", TenantSource::Startup),
        ("set", TenantSource::Set),
        ("binding", TenantSource::Binding),
    ];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantSource::User => "user",
            TenantSource::Startup => "startup",
            TenantSource::Set => "set",
            TenantSource::Binding => "binding",
        }
    }
}

/// Whether a session may change its tenant once it has one (`databases.NAME.tenancy.tenant_switch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TenantSwitch {
    /// `"allow"` (default): a later `SET pgfleet.tenant` switches the session's tenant.
    #[default]
    Allow,
    /// `"deny"`: the first tenant a session gets is its tenant until it disconnects.
    Deny,
}

impl TenantSwitch {
    /// Every value with its config spelling.
    pub const CHOICES: &'static [(&'static str, TenantSwitch)] =
        &[("allow", TenantSwitch::Allow), ("deny", TenantSwitch::Deny)];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantSwitch::Allow => "allow",
            TenantSwitch::Deny => "deny",
        }
    }
}

/// `[databases.NAME.tenancy]`: how sessions name their tenant and how tenants are isolated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenancyConfig {
    /// The isolation model.
    pub model: TenantModel,
    /// Ways a session names its tenant, tried in this order; never empty, no repeats.
    pub identify: Vec<TenantSource>,
    /// A session without a tenant gets an error at its first statement; default true.
    pub required: bool,
    /// Schema model: the tenant's schema name, `{tenant}` replaced; default `tenant_{tenant}`.
    pub schema_template: String,
    /// Schema model: schemas appended to every tenant's search_path; default `["public"]`.
    pub shared_schemas: Vec<String>,
    /// Row model: the setting RLS policies read; default `app.current_tenant`.
    pub setting: String,
    /// Row model: the column that holds the tenant; default `tenant_id`.
    pub tenant_column: String,
    /// Database model: the tenant's database name, `{tenant}` replaced; default `tenant_{tenant}`.
    pub database_template: String,
    /// Whether a session may switch tenants; default allow.
    pub tenant_switch: TenantSwitch,
    /// Users (keys of `Config::users`) allowed statements across tenants.
    pub admin_roles: Vec<String>,
    /// Most server connections one tenant's sessions hold at once per database (per pgfleet
    /// instance); 0 = no cap (default).
    pub max_server_connections: usize,
    /// `statement_timeout` forced on every transaction of a tenant session; `None` = the
    /// session's own (default).
    pub statement_timeout: Option<std::time::Duration>,
}

impl TenancyConfig {
    /// Default for `schema_template` and `database_template`.
    pub const DEFAULT_TEMPLATE: &'static str = "tenant_{tenant}";
    /// Default for `setting`.
    pub const DEFAULT_SETTING: &'static str = "app.current_tenant";
    /// Default for `tenant_column`.
    pub const DEFAULT_TENANT_COLUMN: &'static str = "tenant_id";
    /// Default for `identify`.
    pub const DEFAULT_IDENTIFY: &'static [TenantSource] = &[
        TenantSource::User,
        TenantSource::Startup,
        TenantSource::Set,
        TenantSource::Binding,
    ];

    /// A tenancy section of `model` with every other key at its default.
    pub fn with_model(model: TenantModel) -> Self {
        TenancyConfig {
            model,
            identify: Self::DEFAULT_IDENTIFY.to_vec(),
            required: true,
            schema_template: Self::DEFAULT_TEMPLATE.to_string(),
            shared_schemas: vec!["public".to_string()],
            setting: Self::DEFAULT_SETTING.to_string(),
            tenant_column: Self::DEFAULT_TENANT_COLUMN.to_string(),
            database_template: Self::DEFAULT_TEMPLATE.to_string(),
            tenant_switch: TenantSwitch::default(),
            admin_roles: Vec::new(),
            max_server_connections: 0,
            statement_timeout: None,
        }
    }

    /// The schema of `tenant` under the schema model (`schema_template` rendered).
    pub fn schema_for(&self, tenant: &str) -> String {
        self.schema_template.replace(TENANT_PLACEHOLDER, tenant)
    }

    /// The database of `tenant` under the database model (`database_template` rendered).
    pub fn database_for(&self, tenant: &str) -> String {
        self.database_template.replace(TENANT_PLACEHOLDER, tenant)
    }
}

/// `[metadata]` as serde sees it.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawMetadata {
    pub cluster: Leaf,
    pub database: Leaf,
    pub user: Leaf,
    pub password: Leaf,
}

/// `[databases.NAME.tenancy]` as serde sees it.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawTenancy {
    pub model: Leaf,
    pub identify: Leaf,
    pub required: Leaf,
    pub schema_template: Leaf,
    pub shared_schemas: Leaf,
    pub setting: Leaf,
    pub tenant_column: Leaf,
    pub database_template: Leaf,
    pub tenant_switch: Leaf,
    pub admin_roles: Leaf,
    pub max_server_connections: Leaf,
    pub statement_timeout: Leaf,
}

/// `[metadata]`: the cluster must be defined; the database and user names must not be empty.
pub(crate) fn build_metadata(
    r: &mut Reader,
    raw: &RawMetadata,
    clusters: &BTreeMap<String, ClusterConfig>,
) -> MetadataConfig {
    let cluster = match r.string("metadata.cluster", &raw.cluster) {
        Some(c) if clusters.contains_key(&c) => c,
        Some(c) => {
            let hint = clusters
                .keys()
                .filter(|k| edit_distance(&c, k) <= 2)
                .min_by_key(|k| edit_distance(&c, k))
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            r.report(
                "metadata.cluster",
                format!("cluster `{c}` is not defined{hint}"),
            );
            c
        }
        None => {
            if raw.cluster.is_none() {
                r.report(
                    "metadata.cluster",
                    "missing required key `cluster`: name the cluster whose primary holds the metadata database",
                );
            }
            String::new()
        }
    };
    let non_empty = |r: &mut Reader, key: &str, value: &Leaf, default: &str| {
        let path = format!("metadata.{key}");
        match r.string(&path, value) {
            Some(s) if s.is_empty() => {
                r.report(
                    path,
                    format!("must not be empty; the default is \"{default}\""),
                );
                default.to_string()
            }
            Some(s) => s,
            None => default.to_string(),
        }
    };
    let database = non_empty(r, "database", &raw.database, "pgfleet_meta");
    let user = non_empty(r, "user", &raw.user, "postgres");
    MetadataConfig {
        cluster,
        database,
        user,
        password: r.string("metadata.password", &raw.password),
    }
}

/// `[databases.NAME.tenancy]`; `prefix` is `databases.NAME`.
pub(crate) fn build_tenancy(r: &mut Reader, prefix: &str, raw: &RawTenancy) -> TenancyConfig {
    let p = |key: &str| format!("{prefix}.tenancy.{key}");
    let model = match r.choice(&p("model"), &raw.model, TenantModel::CHOICES) {
        Some(m) => m,
        None => {
            if raw.model.is_none() {
                r.report(
                    p("model"),
                    "missing required key `model`; write \"schema\", \"row\" or \"database\"",
                );
            }
            TenantModel::Schema
        }
    };
    let mut t = TenancyConfig::with_model(model);
    if let Some(items) = r.string_list(&p("identify"), &raw.identify) {
        if items.is_empty() {
            r.report(
                p("identify"),
                "must name at least one way: \"user\", \"startup\", \"set\" or \"binding\"",
            );
        }
        let mut identify = Vec::new();
        for (path, text) in items {
            let value = Some(toml::Value::String(text));
            if let Some(source) = r.choice(&path, &value, TenantSource::CHOICES) {
                if identify.contains(&source) {
                    r.report(path, format!("\"{}\" is listed twice", source.as_str()));
                } else {
                    identify.push(source);
                }
            }
        }
        t.identify = identify;
    }
    if let Some(b) = r.boolean(&p("required"), &raw.required) {
        t.required = b;
    }
    if let Some(v) = r.choice(
        &p("tenant_switch"),
        &raw.tenant_switch,
        TenantSwitch::CHOICES,
    ) {
        t.tenant_switch = v;
    }
    if let Some(s) = read_template(r, &p("schema_template"), &raw.schema_template) {
        t.schema_template = s;
    }
    if let Some(s) = read_template(r, &p("database_template"), &raw.database_template) {
        t.database_template = s;
    }
    if let Some(items) = r.string_list(&p("shared_schemas"), &raw.shared_schemas) {
        t.shared_schemas = items
            .into_iter()
            .filter(|(path, name)| {
                let ok = is_plain_identifier(name);
                if !ok {
                    r.report(
                        path,
                        format!(
                            "invalid schema name `{name}`; use lower-case letters, digits and `_`"
                        ),
                    );
                }
                ok
            })
            .map(|(_, name)| name)
            .collect();
    }
    if let Some(s) = r.string(&p("setting"), &raw.setting) {
        // PostgreSQL accepts custom settings only with a prefix: `prefix.name`.
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() == 2 && parts.iter().all(|part| is_plain_identifier(part)) {
            t.setting = s;
        } else {
            r.report(
                p("setting"),
                format!("invalid setting name `{s}`; write a custom setting with one dot, e.g. \"app.current_tenant\""),
            );
        }
    }
    if let Some(s) = r.string(&p("tenant_column"), &raw.tenant_column) {
        if is_plain_identifier(&s) {
            t.tenant_column = s;
        } else {
            r.report(
                p("tenant_column"),
                format!("invalid column name `{s}`; use lower-case letters, digits and `_`"),
            );
        }
    }
    if let Some(items) = r.string_list(&p("admin_roles"), &raw.admin_roles) {
        t.admin_roles = items.into_iter().map(|(_, name)| name).collect();
    }
    if let Some(n) = r.usize(&p("max_server_connections"), &raw.max_server_connections, 0) {
        t.max_server_connections = n;
    }
    if let Some(d) = r.duration(&p("statement_timeout"), &raw.statement_timeout) {
        if d.is_zero() {
            r.report(
                p("statement_timeout"),
                "must be more than 0s; leave the key out for no per-tenant timeout",
            );
        } else {
            t.statement_timeout = Some(d);
        }
    }
    // Keys of another model are mistakes (a model changed half-way, a copy-paste): say so.
    let foreign: &[(&str, &Leaf, TenantModel)] = &[
        ("schema_template", &raw.schema_template, TenantModel::Schema),
        ("shared_schemas", &raw.shared_schemas, TenantModel::Schema),
        ("setting", &raw.setting, TenantModel::Row),
        ("tenant_column", &raw.tenant_column, TenantModel::Row),
        (
            "database_template",
            &raw.database_template,
            TenantModel::Database,
        ),
    ];
    if raw.model.is_some() {
        for (key, value, owner) in foreign {
            if value.is_some() && *owner != model {
                r.report(
                    p(key),
                    format!(
                        "`{key}` applies to model \"{}\" only, this database uses model \"{}\"; remove it",
                        owner.as_str(),
                        model.as_str()
                    ),
                );
            }
        }
    }
    t
}

/// A schema or database template: lower-case letters, digits and `_` around exactly one
/// `{tenant}`, with a fixed part short enough for the longest tenant name.
fn read_template(r: &mut Reader, path: &str, value: &Leaf) -> Option<String> {
    let s = r.string(path, value)?;
    let fixed = s.replacen(TENANT_PLACEHOLDER, "", 1);
    let problem = if s.matches(TENANT_PLACEHOLDER).count() != 1 {
        Some(format!(
            "template `{s}` must contain `{TENANT_PLACEHOLDER}` exactly once, e.g. \"tenant_{{tenant}}\""
        ))
    } else if !fixed
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        || fixed.starts_with(|c: char| c.is_ascii_digit())
    {
        Some(format!(
            "template `{s}` may only contain lower-case letters, digits and `_` around `{TENANT_PLACEHOLDER}`, and must not start with a digit"
        ))
    } else if fixed.len() > TEMPLATE_FIXED_MAX {
        Some(format!(
            "template `{s}` is too long: at most {TEMPLATE_FIXED_MAX} characters besides `{TENANT_PLACEHOLDER}`, so that every name fits PostgreSQL's 63-byte limit"
        ))
    } else {
        None
    };
    match problem {
        Some(m) => {
            r.report(path, m);
            None
        }
        None => Some(s),
    }
}

/// `users.NAME.tenant`: a per-user binding, a valid tenant name.
pub(crate) fn read_user_tenant(r: &mut Reader, prefix: &str, value: &Leaf) -> Option<String> {
    let path = format!("{prefix}.tenant");
    let name = r.string(&path, value)?;
    match check_tenant_name(&name) {
        Ok(()) => Some(name),
        Err(m) => {
            r.report(path, m);
            None
        }
    }
}

/// Cross-references that need the whole file: admin roles must be defined users.
pub(crate) fn check_references(
    r: &mut Reader,
    databases: &BTreeMap<String, DatabaseConfig>,
    users: &BTreeMap<String, UserConfig>,
) {
    for (db, config) in databases {
        let Some(tenancy) = &config.tenancy else {
            continue;
        };
        for (i, role) in tenancy.admin_roles.iter().enumerate() {
            if !users.contains_key(role) {
                r.report(
                    format!("databases.{db}.tenancy.admin_roles.{i}"),
                    format!("user `{role}` is not defined; admin roles are names of [users.NAME] tables"),
                );
            }
        }
    }
}
