//! The session's tenant: resolved before every transaction (sources in the configured order, the
//! directory through its cache, the state), its context forced among the wanted settings so the
//! settings sync puts it on whichever server runs the transaction, every client statement checked
//! against the guard, and the per-tenant connection cap and counters. See `crate::tenancy`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use pgfleet_config::{TenancyConfig, TenantModel, TenantSource};
use pgfleet_meta::TenantState;
use pgfleet_sql::tenant_guard::{TenantGuard, TenantRules};
use pgfleet_wire::frontend::{decode_parse, decode_query};
use pgfleet_wire::tag::frontend as t;
use pgfleet_wire::Frame;
use tokio::sync::OwnedSemaphorePermit;

use super::params::SessionParams;
use super::Session;
use crate::execute::request::UnnamedStatement;
use crate::prepared::StatementDef;
use crate::runtime::Runtime;
use crate::tenancy::context::{context, Placement};
use crate::tenancy::identify::{check_name, resolve, switch_refused, Sources, TENANT_SETTING};
use crate::tenancy::TenantStats;
use crate::ProxyError;

/// A session's tenancy state (only for databases with `[databases.NAME.tenancy]`).
pub(crate) struct TenantSession {
    database: String,
    sources: Sources,
    admin: bool,
    /// The tenant of the current (or last) transaction and where it came from.
    current: Option<(String, TenantSource)>,
    /// Forced settings of the current context.
    forced: Vec<(String, String)>,
    rules: Option<TenantRules>,
    /// The database requires a tenant and the session has none: why (only texts that touch no
    /// data may run, such as `SET pgfleet.tenant`).
    missing: Option<String>,
    guard: Arc<TenantGuard>,
    stats: Option<Arc<TenantStats>>,
    /// `database` model: where the current tenant's transactions run.
    home: Option<TenantHome>,
    /// A place under the tenant's connection cap while a server is held.
    permit: Option<OwnedSemaphorePermit>,
    held_since: Option<Instant>,
    /// What the last full [`TenantSession::enter`] of a tenant read; while none of it changed,
    /// the next one has nothing to do.
    entered: Option<Entered>,
}

/// Everything a tenant's context is decided from, besides the session's fixed sources: the
/// configuration, the tenant directory (unchanged while its change count stays the same), the
/// session's `pgfleet.tenant` setting, and whether the session keeps its server.
struct Entered {
    config: Arc<pgfleet_config::Config>,
    directory: u64,
    setting: Option<String>,
    held: bool,
}

/// Where a tenant of a `database`-model database lives: its own server database on its
/// database's cluster, or on its shard's cluster in a sharded database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TenantHome {
    pub(crate) cluster: String,
    pub(crate) database: String,
}

fn client_error(code: &'static str, message: String) -> ProxyError {
    ProxyError::Client { code, message }
}

impl TenantSession {
    /// The tenancy state of a new session of `user` on `database`, or `None` when the database
    /// has no tenancy. `params` are the startup settings.
    pub(crate) fn new(
        rt: &Runtime,
        user: &str,
        database: &str,
        params: &SessionParams,
    ) -> Option<Box<TenantSession>> {
        let config = rt.config();
        let tenancy = config.databases.get(database)?.tenancy.as_ref()?;
        Some(Box::new(TenantSession {
            database: database.to_owned(),
            sources: Sources {
                user: None,
                startup: params.desired().get(TENANT_SETTING).cloned(),
                binding: config.users.get(user).and_then(|u| u.tenant.clone()),
            },
            admin: tenancy.admin_roles.iter().any(|r| r == user),
            current: None,
            forced: Vec::new(),
            rules: None,
            missing: None,
            guard: rt.tenancy.guard(database, tenancy),
            stats: None,
            home: None,
            permit: None,
            held_since: None,
            entered: None,
        }))
    }

    /// The tenant named by the user name (`app.acme`).
    pub(crate) fn set_user_tenant(&mut self, tenant: Option<String>) {
        self.sources.user = tenant;
        self.entered = None;
    }

    fn count_error(&self) {
        if let Some(s) = &self.stats {
            s.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Resolves the tenant for the transaction about to start and forces its context into
    /// `params`. Returns whether the forced settings changed (a held server needs a new sync).
    /// A new tenant drops the client's prepared statements: they were parsed in another tenant's
    /// context. `held`: the session keeps its server (session pooling, pinned), so a tenant in
    /// another database ([`TenantHome`]) cannot be reached.
    pub(crate) async fn enter(
        &mut self,
        rt: &Arc<Runtime>,
        params: &mut SessionParams,
        statements: &mut HashMap<String, Arc<StatementDef>>,
        unnamed: &mut Option<Arc<UnnamedStatement>>,
        held: bool,
    ) -> Result<bool, ProxyError> {
        let result = self
            .enter_inner(rt, params, statements, unnamed, held)
            .await;
        if result.is_err() {
            self.count_error();
        }
        result
    }

    async fn enter_inner(
        &mut self,
        rt: &Arc<Runtime>,
        params: &mut SessionParams,
        statements: &mut HashMap<String, Arc<StatementDef>>,
        unnamed: &mut Option<Arc<UnnamedStatement>>,
        held: bool,
    ) -> Result<bool, ProxyError> {
        let setting = params.desired().get(TENANT_SETTING).map(String::as_str);
        // Most transactions: the same tenant as last time, nothing changed; its forced settings
        // are still the session's (a RESET ALL would have dropped them).
        if let Some(last) = &self.entered {
            if last.held == held
                && last.setting.as_deref() == setting
                && rt.config_is(&last.config)
                && rt.tenancy.directory.unchanged_since() == Some(last.directory)
                && self
                    .forced
                    .iter()
                    .all(|(name, value)| params.desired().get(name) == Some(value))
            {
                return Ok(false);
            }
        }
        self.entered = None;
        let config = rt.config();
        let Some(tenancy) = config
            .databases
            .get(&self.database)
            .and_then(|d| d.tenancy.as_ref())
        else {
            // A reload took tenancy away: nothing to enforce any more.
            self.leave_home(held, params)?;
            return Ok(self.apply(params, Vec::new()));
        };
        // Cheap (one map lookup); follows a reload that changed the schema template.
        self.guard = rt.tenancy.guard(&self.database, tenancy);
        let named = resolve(tenancy, &self.sources, setting);
        if let Some((name, source)) = &named {
            check_name(name, *source).map_err(|m| client_error("28000", m))?;
        }
        let named = match (&self.current, named) {
            // tenant_switch = deny: a later SET cannot have taken effect (the guard refuses it),
            // but a RESET back to no tenant must not free the session either.
            (Some(cur), None) if tenancy.tenant_switch == pgfleet_config::TenantSwitch::Deny => {
                Some(cur.clone())
            }
            (_, n) => n,
        };
        self.missing = None;
        let Some((name, source)) = named else {
            if tenancy.required && !self.admin {
                self.missing = Some(required_message(tenancy, &self.database));
            }
            let c = context(
                tenancy,
                None,
                false,
                self.admin,
                switch_refused(tenancy, &self.database, None),
            );
            self.leave_home(held, params)?;
            self.rules = c.rules;
            self.current = None;
            self.stats = None;
            return Ok(self.apply(params, c.forced));
        };
        // Read before the row: a change that arrives meanwhile makes the next transaction look
        // again.
        let directory = rt.tenancy.directory.unchanged_since();
        let row = rt
            .tenancy
            .directory
            .get(rt, &self.database, &name)
            .await
            .map_err(|e| {
                client_error(
                    "08006",
                    format!(
                        "pgfleet: cannot read tenant `{name}` from the tenant directory: {}",
                        e.0
                    ),
                )
            })?;
        let Some(row) = row else {
            return Err(client_error(
                "3D000",
                format!(
                    "pgfleet: tenant `{name}` does not exist in database `{}` (tenant directory); create it with `pgfleet tenant create {name}`",
                    self.database
                ),
            ));
        };
        match row.state {
            TenantState::Suspended => {
                return Err(client_error(
                    "57P03",
                    format!("pgfleet: tenant `{name}` is suspended; its sessions cannot run statements until `pgfleet tenant resume {name}`"),
                ))
            }
            TenantState::Active | TenantState::Moving => {}
        }
        let home = match tenancy.model {
            TenantModel::Database => Some(tenant_home(&config, &self.database, tenancy, &row)?),
            TenantModel::Schema | TenantModel::Row => None,
        };
        if held && home != self.home {
            // The switch does not happen: the session stays with its tenant.
            self.keep_current(params);
            return Err(other_database(&name, home.as_ref()));
        }
        self.home = home;
        let changed_tenant = self.current.as_ref().map(|(n, _)| n) != Some(&name);
        if changed_tenant && self.current.is_some() {
            statements.clear();
            *unnamed = None;
        }
        if changed_tenant || self.stats.is_none() {
            self.stats = Some(rt.tenancy.stats(&self.database, &name));
        }
        let placement = Placement {
            tenant: &name,
            schema: row.schema_name.as_deref(),
            shard: row.shard,
        };
        let sharded = rt.shard_router(&self.database).is_some();
        let current = (name.clone(), source);
        let refused = switch_refused(tenancy, &self.database, Some(&current));
        let c = context(tenancy, Some(&placement), sharded, self.admin, refused);
        self.rules = c.rules;
        self.current = Some(current);
        let changed = self.apply(params, c.forced);
        self.entered = directory.map(|directory| Entered {
            config: config.clone(),
            directory,
            setting: params.desired().get(TENANT_SETTING).map(String::to_owned),
            held,
        });
        Ok(changed)
    }

    /// The settings the current context forces (name, value).
    pub(crate) fn forced(&self) -> &[(String, String)] {
        &self.forced
    }

    /// `database` model: where the current tenant's transactions run (`None`: the database's own
    /// server database).
    pub(crate) fn home(&self) -> Option<&TenantHome> {
        self.home.as_ref()
    }

    /// The session has no tenant (any more): back to the database's own server database, which a
    /// session that keeps its server connection cannot reach.
    fn leave_home(&mut self, held: bool, params: &mut SessionParams) -> Result<(), ProxyError> {
        if held && self.home.is_some() {
            self.keep_current(params);
            return Err(other_database("(none)", None));
        }
        self.home = None;
        Ok(())
    }

    /// A tenant switch that cannot happen: `pgfleet.tenant` back to the current tenant (when the
    /// session's own SET named it) so the session's next statements run as before.
    fn keep_current(&self, params: &mut SessionParams) {
        match &self.current {
            Some((name, TenantSource::Set)) => params.learned(TENANT_SETTING, Some(name.clone())),
            _ => params.reset(TENANT_SETTING),
        }
    }

    /// Puts `forced` among the wanted settings (and drops settings the previous context forced
    /// that this one does not). Returns whether anything changed.
    fn apply(&mut self, params: &mut SessionParams, forced: Vec<(String, String)>) -> bool {
        let mut changed = false;
        for (name, _) in &self.forced {
            if !forced.iter().any(|(n, _)| n == name) {
                params.reset(name);
                changed = true;
            }
        }
        for (name, value) in &forced {
            if params.desired().get(name) != Some(value) {
                params.learned(name, Some(value.clone()));
                changed = true;
            }
        }
        self.forced = forced;
        changed
    }

    /// Checks one client message against the guard: SQL of a Query or Parse, and FunctionCall
    /// (it can call any function by OID, `set_config` included). `count`: count it as a
    /// statement (a request's opening message is checked before the checkout without being
    /// counted, then only counted when it is sent, see [`TenantSession::count_statement`]).
    pub(crate) fn check(&self, frame: &Frame, count: bool) -> Result<(), ProxyError> {
        if count {
            self.count_statement(frame);
        }
        let tag = frame.tag();
        let Some(rules) = &self.rules else {
            return Ok(());
        };
        let sql = match tag {
            t::QUERY => decode_query(frame)?,
            t::PARSE => decode_parse(frame)?.query,
            t::FUNCTION_CALL => {
                self.count_error();
                return Err(client_error(
                    "42501",
                    "pgfleet: permission denied for the function call protocol message in a tenant session; call the function in SQL".to_owned(),
                ));
            }
            _ => return Ok(()),
        };
        let facts = self.guard.facts(sql);
        if let (Some(why), false) = (&self.missing, facts.only_settings) {
            self.count_error();
            return Err(client_error("28000", why.clone()));
        }
        facts.check(rules).map_err(|v| {
            self.count_error();
            client_error(v.code, v.message)
        })
    }

    /// Counts a client message that runs a statement (Query, Execute) in the tenant's statistics.
    pub(crate) fn count_statement(&self, frame: &Frame) {
        if let (Some(s), t::QUERY | t::EXECUTE) = (&self.stats, frame.tag()) {
            s.statements.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Before a checkout in transaction pooling: waits for a place under the tenant's cap
    /// (`tenancy.max_server_connections`), up to the pool's checkout timeout.
    pub(crate) async fn reserve(
        &mut self,
        rt: &Runtime,
        checkout_timeout: std::time::Duration,
    ) -> Result<(), ProxyError> {
        self.held_since = Some(Instant::now());
        if let Some(s) = &self.stats {
            s.transactions.fetch_add(1, Ordering::Relaxed);
        }
        let Some((tenant, _)) = &self.current else {
            return Ok(());
        };
        let config = rt.config();
        let max = config
            .databases
            .get(&self.database)
            .and_then(|d| d.tenancy.as_ref())
            .map_or(0, |t| t.max_server_connections);
        if max == 0 || self.permit.is_some() {
            return Ok(());
        }
        let sem = rt.tenancy.limit(&self.database, tenant, max);
        match tokio::time::timeout(checkout_timeout, sem.acquire_owned()).await {
            Ok(Ok(permit)) => {
                self.permit = Some(permit);
                Ok(())
            }
            _ => {
                self.count_error();
                Err(ProxyError::PoolExhausted(format!(
                    "tenant `{tenant}` already holds {max} server connections in database `{}` (tenancy.max_server_connections) and none became free within {}ms",
                    self.database,
                    checkout_timeout.as_millis()
                )))
            }
        }
    }

    /// The server went back (or broke): free the tenant's place, count the time.
    pub(crate) fn released(&mut self) {
        self.permit = None;
        if let (Some(since), Some(s)) = (self.held_since.take(), &self.stats) {
            let micros = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
            s.server_micros.fetch_add(micros, Ordering::Relaxed);
        }
    }
}

/// Where the tenant `row` of `database` (a `database`-model database) lives.
fn tenant_home(
    config: &pgfleet_config::Config,
    database: &str,
    t: &TenancyConfig,
    row: &pgfleet_meta::Tenant,
) -> Result<TenantHome, ProxyError> {
    let misplaced = |why: String| {
        client_error(
            "55000",
            format!(
                "pgfleet: tenant `{}` {why}; fix its directory row or the config",
                row.name
            ),
        )
    };
    let db = config.databases.get(database).ok_or_else(|| {
        misplaced(format!(
            "belongs to database `{database}`, which the config no longer has"
        ))
    })?;
    let cluster = match (&db.sharding, row.shard) {
        (None, None) => db.cluster.clone(),
        (None, Some(s)) => {
            return Err(misplaced(format!(
                "is placed on shard {s} in the tenant directory, but database `{database}` has no shards"
            )))
        }
        (Some(_), None) => {
            return Err(misplaced(format!(
                "has no shard in the tenant directory, but database `{database}` is sharded"
            )))
        }
        (Some(sharding), Some(s)) => usize::try_from(s)
            .ok()
            .and_then(|i| sharding.shards.get(i))
            .cloned()
            .ok_or_else(|| {
                misplaced(format!(
                    "is placed on shard {s}, but database `{database}` has {} shard(s)",
                    sharding.shards.len()
                ))
            })?,
    };
    Ok(TenantHome {
        cluster,
        database: row
            .database_name
            .clone()
            .unwrap_or_else(|| t.database_for(&row.name)),
    })
}

/// A session that keeps its server connection asked for a tenant whose transactions run in
/// another server database.
fn other_database(tenant: &str, home: Option<&TenantHome>) -> ProxyError {
    let there = home.map_or_else(
        || "the database's own server database".to_owned(),
        |h| format!("database `{}`", h.database),
    );
    client_error(
        "0A000",
        format!(
            "pgfleet: cannot switch this session to tenant `{tenant}`: its transactions run in {there}, and this session keeps its server connection to another database (session pooling or a pinned session), so it stays as it was; connect again as the tenant"
        ),
    )
}

fn required_message(t: &TenancyConfig, database: &str) -> String {
    let ways: Vec<&str> = t
        .identify
        .iter()
        .map(|s| match s {
            TenantSource::User => "connect as USER.TENANT",
            TenantSource::Startup => {
                "set the startup parameter pgfleet.tenant (options=-c pgfleet.tenant=TENANT)"
            }
            TenantSource::Set => "run SET pgfleet.tenant = 'TENANT'",
            TenantSource::Binding => "bind the user to a tenant (users.NAME.tenant)",
        })
        .collect();
    format!(
        "pgfleet: database `{database}` requires a tenant and this session has none; {}",
        ways.join(", or ")
    )
}

impl Session<'_> {
    /// Before a request that needs a server: resolve the tenant and check the request's first
    /// message. In transaction pooling this runs at the start of every transaction.
    pub(super) async fn tenant_request(&mut self, frame: &Frame) -> Result<(), ProxyError> {
        let Some(ts) = self.tenant.as_deref_mut() else {
            return Ok(());
        };
        ts.enter(
            self.rt,
            &mut self.params,
            &mut self.statements,
            &mut self.unnamed,
            false,
        )
        .await?;
        let home = ts.home().cloned();
        self.follow_tenant_home(home.as_ref())?;
        match self.tenant.as_deref() {
            Some(ts) => ts.check(frame, false),
            None => Ok(()),
        }
    }

    /// `database` model: the session's pools follow its tenant to the tenant's own server
    /// database (a sharded database's shard routing is set aside meanwhile: a tenant's
    /// database is whole on one cluster), and come back without a tenant.
    fn follow_tenant_home(&mut self, home: Option<&TenantHome>) -> Result<(), ProxyError> {
        let here = self
            .pools
            .tenant_database
            .as_deref()
            .map(|d| (self.pools.cluster.as_str(), d));
        let there = home.map(|h| (h.cluster.as_str(), h.database.as_str()));
        if here == there {
            return Ok(());
        }
        let config = self.rt.config();
        let (user, database) = (self.pools.key.0.clone(), self.pools.key.1.clone());
        self.pools = match there {
            Some((cluster, db)) => self.rt.pools.in_database(
                &config,
                self.rt.clusters(),
                &user,
                &database,
                cluster,
                Some(db),
            )?,
            None => self
                .rt
                .pools
                .get(&config, self.rt.clusters(), &user, &database)?,
        };
        if there.is_some() {
            if let Some(shard) = self.shard.take() {
                self.shard_aside = Some(shard);
            }
        } else if let Some(shard) = self.shard_aside.take() {
            self.shard = Some(shard);
        }
        Ok(())
    }

    /// Whether the guard lets a Parse answered without a server through (the session's current
    /// context; a refused one takes the normal path, which refuses it).
    pub(super) fn tenant_allows(&self, parse: &Frame) -> bool {
        self.tenant
            .as_deref()
            .is_none_or(|ts| ts.missing.is_none() && ts.check(parse, false).is_ok())
    }

    /// Before a checkout: the tenant's connection cap.
    pub(super) async fn tenant_reserve(&mut self) -> Result<(), ProxyError> {
        let Some(ts) = self.tenant.as_deref_mut() else {
            return Ok(());
        };
        // Read only for a tenant: the pool's settings are behind a lock every session shares.
        let timeout = self
            .pools
            .endpoint(self.pools.configured_primary)
            .settings()
            .checkout_timeout;
        ts.reserve(self.rt, timeout).await
    }

    /// After the server went back or broke.
    pub(super) fn tenant_released(&mut self) {
        if let Some(ts) = self.tenant.as_deref_mut() {
            ts.released();
        }
    }

    /// The user name named this tenant (`app.acme`).
    pub(crate) fn set_user_tenant(&mut self, tenant: Option<String>) {
        if let Some(ts) = self.tenant.as_deref_mut() {
            ts.set_user_tenant(tenant);
        }
    }
}
