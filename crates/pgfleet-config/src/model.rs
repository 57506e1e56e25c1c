//! The validated configuration model: what the rest of pgfleet reads.
//! Every value here has passed validation; defaults are already filled in.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::placement::PlacementGroup;
use crate::secret::Secret;
use crate::sharding::ShardingConfig;
use crate::tenancy::{MetadataConfig, TenancyConfig};

/// The whole validated config file.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Config {
    /// `[proxy]`: the listener and process-wide limits.
    pub proxy: ProxyConfig,
    /// `[pool]`: global pool defaults, overridable per database and per user.
    pub pool: PoolSettings,
    /// `[clusters.NAME]`: one primary and its replicas each.
    pub clusters: BTreeMap<String, ClusterConfig>,
    /// `[databases.NAME]`: what clients connect to, keyed by the name clients use.
    pub databases: BTreeMap<String, DatabaseConfig>,
    /// `[users.NAME]`: who may connect, keyed by the name clients use.
    pub users: BTreeMap<String, UserConfig>,
    /// `[metadata]`: the metadata database (tenant directory, migration ledger), when configured.
    pub metadata: Option<MetadataConfig>,
}

impl Config {
    /// Effective pool settings for (user, database): user override > database override > `[pool]`.
    ///
    /// Unknown user or database names simply contribute no overrides.
    pub fn pool_settings(&self, user: &str, database: &str) -> PoolSettings {
        let mut settings = self.pool.clone();
        if let Some(db) = self.databases.get(database) {
            settings = db.pool.apply_to(&settings);
        }
        if let Some(u) = self.users.get(user) {
            settings = u.pool.apply_to(&settings);
        }
        settings
    }
}

/// `[proxy]`: the listener and process-wide limits.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyConfig {
    /// `proxy.listen`: address clients connect to; changing it needs a restart.
    pub listen: SocketAddr,
    /// `proxy.max_client_connections`: client connections accepted at once; more are refused.
    pub max_client_connections: usize,
    /// `proxy.max_message_size`: largest protocol message (bytes) accepted from clients or servers.
    pub max_message_size: usize,
    /// `proxy.shutdown_timeout`: how long a graceful shutdown waits for sessions to finish.
    pub shutdown_timeout: Duration,
    /// `proxy.analysis_cache_size`: entries in the SQL analysis LRU cache.
    pub analysis_cache_size: usize,
    /// `proxy.metrics_listen`: where Prometheus metrics are served over HTTP (`GET /metrics`);
    /// `None` = not served. Changing it needs a restart.
    pub metrics_listen: Option<SocketAddr>,
    /// `proxy.metrics_top_tenants`: the busiest tenants (by statements) that get their own
    /// `tenant` label in the per-tenant metrics; the others are summed into `tenant="_other"`,
    /// so the number of series stays bounded. At most [`MAX_METRICS_TOP_TENANTS`].
    pub metrics_top_tenants: usize,
    /// `proxy.merge_memory_limit`: bytes one cross-shard merge may hold (groups, DISTINCT keys,
    /// buffered rows); beyond it the query fails with 53200.
    pub merge_memory_limit: usize,
    /// `proxy.node_id`: this instance's number (0–1023), unique among the pgfleet instances in
    /// front of the same servers: it names two-phase-commit transactions and goes into ids.
    pub node_id: u16,
}

/// The largest `proxy.metrics_top_tenants`: the proxy keeps per-tenant counters for at most
/// this many tenants (`pgfleet_proxy::tenancy::STATS_ENTRIES`).
pub const MAX_METRICS_TOP_TENANTS: usize = 1000;

/// The largest `proxy.node_id`.
pub const MAX_NODE_ID: usize = 1023;

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 6432)),
            max_client_connections: 10_000,
            max_message_size: 64 << 20,
            shutdown_timeout: Duration::from_secs(30),
            analysis_cache_size: 10_000,
            metrics_listen: None,
            metrics_top_tenants: 20,
            merge_memory_limit: 256 << 20,
            node_id: 0,
        }
    }
}

/// Pool behaviour for one (user, database) pair, or the global `[pool]` defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSettings {
    /// When a server connection goes back to the pool.
    pub pool_mode: PoolMode,
    /// Most server connections per (user, database) pool; at least 1.
    pub pool_size: usize,
    /// Idle server connections kept open; at most `pool_size`.
    pub min_idle: usize,
    /// Limit for opening and authenticating one server connection.
    pub connect_timeout: Duration,
    /// How long a request waits for a free server connection before failing.
    pub checkout_timeout: Duration,
    /// Idle server connections older than this are closed; zero = never.
    pub idle_timeout: Duration,
    /// Server connections are closed after this age once idle; zero = unlimited.
    pub server_lifetime: Duration,
    /// Prepared statements remembered per server connection.
    pub prepared_statements_cache: usize,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            pool_mode: PoolMode::Transaction,
            pool_size: 20,
            min_idle: 0,
            connect_timeout: Duration::from_secs(5),
            checkout_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(600),
            server_lifetime: Duration::from_secs(3600),
            prepared_statements_cache: 500,
        }
    }
}

/// When a server connection is returned to the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PoolMode {
    /// At the end of each transaction (`"transaction"`, the default).
    #[default]
    Transaction,
    /// When the client disconnects (`"session"`).
    Session,
}

impl PoolMode {
    /// The config spelling: `"transaction"` or `"session"`.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMode::Transaction => "transaction",
            PoolMode::Session => "session",
        }
    }
}

/// Per-database or per-user pool overrides (`[databases.NAME.pool]`, `[users.NAME.pool]`);
/// `None` keeps the value from the level below.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PoolOverrides {
    /// Overrides [`PoolSettings::pool_mode`].
    pub pool_mode: Option<PoolMode>,
    /// Overrides [`PoolSettings::pool_size`].
    pub pool_size: Option<usize>,
    /// Overrides [`PoolSettings::min_idle`].
    pub min_idle: Option<usize>,
    /// Overrides [`PoolSettings::connect_timeout`].
    pub connect_timeout: Option<Duration>,
    /// Overrides [`PoolSettings::checkout_timeout`].
    pub checkout_timeout: Option<Duration>,
    /// Overrides [`PoolSettings::idle_timeout`].
    pub idle_timeout: Option<Duration>,
    /// Overrides [`PoolSettings::server_lifetime`].
    pub server_lifetime: Option<Duration>,
    /// Overrides [`PoolSettings::prepared_statements_cache`].
    pub prepared_statements_cache: Option<usize>,
}

impl PoolOverrides {
    /// `base` with every set override applied.
    pub fn apply_to(&self, base: &PoolSettings) -> PoolSettings {
        PoolSettings {
            pool_mode: self.pool_mode.unwrap_or(base.pool_mode),
            pool_size: self.pool_size.unwrap_or(base.pool_size),
            min_idle: self.min_idle.unwrap_or(base.min_idle),
            connect_timeout: self.connect_timeout.unwrap_or(base.connect_timeout),
            checkout_timeout: self.checkout_timeout.unwrap_or(base.checkout_timeout),
            idle_timeout: self.idle_timeout.unwrap_or(base.idle_timeout),
            server_lifetime: self.server_lifetime.unwrap_or(base.server_lifetime),
            prepared_statements_cache: self
                .prepared_statements_cache
                .unwrap_or(base.prepared_statements_cache),
        }
    }

    /// True when no key is overridden.
    pub fn is_empty(&self) -> bool {
        *self == PoolOverrides::default()
    }
}

/// `[clusters.NAME]`: one primary and its replicas, and how reads are spread over them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The cluster's servers; never empty, at most one with role primary.
    pub servers: Vec<ServerConfig>,
    /// How a read picks one of the qualifying replicas; default round robin.
    pub load_balancing: LoadBalancing,
    /// Whether the primary serves reads; default [`PrimaryReads::Fallback`].
    pub primary_reads: PrimaryReads,
    /// Replicas whose replay position is more than this many bytes of WAL behind the primary
    /// get no reads; default 16 MiB.
    pub max_lag_bytes: u64,
    /// Replicas whose last replayed transaction is older than this (while they are behind) get
    /// no reads; default 10 s.
    pub max_lag_time: Duration,
    /// How often each server's health and role (`pg_is_in_recovery()`) are checked; default 1 s.
    pub health_check_interval: Duration,
    /// How often replay LSNs and the primary's WAL LSN are read; default 100 ms.
    pub lag_check_interval: Duration,
    /// First ban of a failing server; each further consecutive failure doubles it; default 5 s.
    pub ban_time: Duration,
    /// Longest ban, the cap of the doubling; at least `ban_time`; default 60 s.
    pub max_ban_time: Duration,
    /// How long writes wait for a primary while none is known (failover); default 30 s.
    pub failover_timeout: Duration,
    /// Volatile functions that do not write (e.g. `random`): calling them does not force a
    /// statement to the primary. Lower-case names, optionally schema-qualified.
    pub read_volatile_allowlist: Vec<String>,
    /// Read-your-writes: how long a read waits for a replica to replay the session's last write
    /// before it goes to the primary; default 0 s (to the primary at once).
    pub ryw_wait: Duration,
    /// Replicas that must have replayed a writing transaction's commit before its COMMIT is
    /// answered; default 0 (answer at once). A session may change it (`SET pgfleet.write_quorum`).
    pub write_quorum: usize,
    /// Longest wait for `write_quorum` replicas; default 5 s.
    pub quorum_timeout: Duration,
    /// What the client gets when the quorum is not reached in time; default an error.
    pub quorum_timeout_action: QuorumTimeoutAction,
}

/// What happens when a COMMIT's `write_quorum` is not reached within `quorum_timeout`. Either way
/// the transaction is committed on the primary: PostgreSQL has already made it durable there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QuorumTimeoutAction {
    /// The COMMIT's response carries an error (after its CommandComplete) saying so.
    #[default]
    Error,
    /// The COMMIT succeeds with a WARNING notice saying so.
    Warning,
}

impl QuorumTimeoutAction {
    /// Config spellings.
    pub const CHOICES: &'static [(&'static str, QuorumTimeoutAction)] = &[
        ("error", QuorumTimeoutAction::Error),
        ("warning", QuorumTimeoutAction::Warning),
    ];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            QuorumTimeoutAction::Error => "error",
            QuorumTimeoutAction::Warning => "warning",
        }
    }
}

impl ClusterConfig {
    /// Default for [`ClusterConfig::max_lag_bytes`]: 16 MiB.
    pub const DEFAULT_MAX_LAG_BYTES: u64 = 16 << 20;

    /// Default for [`ClusterConfig::read_volatile_allowlist`]: functions that pg_proc marks
    /// volatile (`provolatile = 'v'`) but that read nothing a replica lacks and write nothing.
    /// `now()`, `statement_timestamp()` and other stable functions need no entry: only volatile
    /// functions are treated as possible writers. `setseed` is left out on purpose (it changes
    /// session state that later `random()` calls depend on), as are `nextval`/`setval`.
    pub const DEFAULT_READ_VOLATILE_ALLOWLIST: &'static [&'static str] = &[
        "random",
        "random_normal",
        "gen_random_uuid",
        "uuidv4",
        "uuidv7",
        "clock_timestamp",
        "timeofday",
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
    ];

    /// A cluster of `servers` with every other key at its default.
    pub fn with_servers(servers: Vec<ServerConfig>) -> Self {
        ClusterConfig {
            servers,
            load_balancing: LoadBalancing::default(),
            primary_reads: PrimaryReads::default(),
            max_lag_bytes: Self::DEFAULT_MAX_LAG_BYTES,
            max_lag_time: Duration::from_secs(10),
            health_check_interval: Duration::from_secs(1),
            lag_check_interval: Duration::from_millis(100),
            ban_time: Duration::from_secs(5),
            max_ban_time: Duration::from_secs(60),
            failover_timeout: Duration::from_secs(30),
            read_volatile_allowlist: Self::DEFAULT_READ_VOLATILE_ALLOWLIST
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ryw_wait: Duration::ZERO,
            write_quorum: 0,
            quorum_timeout: Duration::from_secs(5),
            quorum_timeout_action: QuorumTimeoutAction::Error,
        }
    }

    /// True when `function` (lower-case, optionally `schema.`-qualified) is allowlisted: an
    /// unqualified entry matches the name in any schema, a qualified entry only that schema.
    pub fn allows_volatile_read(&self, function: &str) -> bool {
        let bare = function.rsplit('.').next().unwrap_or(function);
        self.read_volatile_allowlist
            .iter()
            .any(|entry| entry == function || (!entry.contains('.') && entry == bare))
    }
}

/// How a read picks one replica among those that qualify (`clusters.NAME.load_balancing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LoadBalancing {
    /// `"round_robin"` (default): each qualifying replica in turn.
    #[default]
    RoundRobin,
    /// `"least_connections"`: the replica with the fewest active server connections.
    LeastConnections,
    /// `"random"`: a random replica, chosen in proportion to each server's `weight`.
    Random,
}

impl LoadBalancing {
    /// Every value with its config spelling.
    pub const CHOICES: &'static [(&'static str, LoadBalancing)] = &[
        ("round_robin", LoadBalancing::RoundRobin),
        ("least_connections", LoadBalancing::LeastConnections),
        ("random", LoadBalancing::Random),
    ];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadBalancing::RoundRobin => "round_robin",
            LoadBalancing::LeastConnections => "least_connections",
            LoadBalancing::Random => "random",
        }
    }
}

/// Whether the primary serves reads (`clusters.NAME.primary_reads`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PrimaryReads {
    /// `"never"`: reads fail when no replica qualifies.
    Never,
    /// `"always"`: the primary is one of the read candidates.
    Always,
    /// `"fallback"` (default): the primary serves reads only when no replica qualifies.
    #[default]
    Fallback,
}

impl PrimaryReads {
    /// Every value with its config spelling.
    pub const CHOICES: &'static [(&'static str, PrimaryReads)] = &[
        ("never", PrimaryReads::Never),
        ("always", PrimaryReads::Always),
        ("fallback", PrimaryReads::Fallback),
    ];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PrimaryReads::Never => "never",
            PrimaryReads::Always => "always",
            PrimaryReads::Fallback => "fallback",
        }
    }
}

/// Where a user's statements go unless a hint or `SET pgfleet.role` says otherwise
/// (`users.NAME.default_role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DefaultRole {
    /// `"auto"` (default): classify each statement; reads may go to a replica.
    #[default]
    Auto,
    /// `"primary"`: every statement goes to the primary.
    Primary,
    /// `"replica"`: statements go to a replica; writes still go to the primary (pgfleet never
    /// sends a write to a replica).
    Replica,
}

impl DefaultRole {
    /// Every value with its config spelling.
    pub const CHOICES: &'static [(&'static str, DefaultRole)] = &[
        ("auto", DefaultRole::Auto),
        ("primary", DefaultRole::Primary),
        ("replica", DefaultRole::Replica),
    ];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultRole::Auto => "auto",
            DefaultRole::Primary => "primary",
            DefaultRole::Replica => "replica",
        }
    }
}

/// How stale a read may be (`users.NAME.default_consistency`, `SET pgfleet.consistency`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Consistency {
    /// `"eventual"` (default): any healthy replica within the cluster's `max_lag_*`.
    #[default]
    Eventual,
    /// `"bounded"`: only replicas whose lag is under the session's `pgfleet.max_staleness`.
    Bounded,
    /// `"read_your_writes"`: only replicas that have replayed the session's last commit LSN.
    ReadYourWrites,
    /// `"strong"`: the primary only.
    Strong,
}

impl Consistency {
    /// Every value with its config spelling.
    pub const CHOICES: &'static [(&'static str, Consistency)] = &[
        ("eventual", Consistency::Eventual),
        ("bounded", Consistency::Bounded),
        ("read_your_writes", Consistency::ReadYourWrites),
        ("strong", Consistency::Strong),
    ];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Eventual => "eventual",
            Consistency::Bounded => "bounded",
            Consistency::ReadYourWrites => "read_your_writes",
            Consistency::Strong => "strong",
        }
    }
}

/// One PostgreSQL server (endpoint) of a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Host name or IP address.
    pub host: String,
    /// TCP port, 1–65535; default 5432.
    pub port: u16,
    /// Declared role; `Auto` asks the server (`pg_is_in_recovery()`).
    pub role: ServerRole,
    /// Relative share of reads under random balancing; default 1. With every strategy, weight 0
    /// means reads only when no candidate of weight above 0 qualifies.
    pub weight: u32,
}

/// A server's role in its cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServerRole {
    /// `"primary"`: takes writes.
    Primary,
    /// `"replica"`: a read-only standby.
    Replica,
    /// `"auto"` (default): detected at connect time with `pg_is_in_recovery()`.
    #[default]
    Auto,
}

impl ServerRole {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerRole::Primary => "primary",
            ServerRole::Replica => "replica",
            ServerRole::Auto => "auto",
        }
    }
}

/// `[databases.NAME]`: a database clients connect to.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseConfig {
    /// Name of the cluster (a key of [`Config::clusters`]) that holds it. Empty for a sharded
    /// database, whose data spans the clusters in [`ShardingConfig::shards`]: code that routes
    /// to `cluster` must check [`DatabaseConfig::sharding`] first.
    pub cluster: String,
    /// Database name on the servers; defaults to the database's own name.
    pub server_database: String,
    /// Pool overrides for this database.
    pub pool: PoolOverrides,
    /// `[databases.NAME.tenancy]`: multi-tenancy, when configured.
    pub tenancy: Option<TenancyConfig>,
    /// `shards` and the keys that go with them; `None` for a database on one cluster.
    pub sharding: Option<ShardingConfig>,
    /// `[databases.NAME.placement.GROUP]`: groups of tables that live on other clusters
    /// (vertical partitioning), by group name; empty when the database has none.
    pub placement: BTreeMap<String, PlacementGroup>,
}

/// `[users.NAME]`: a user clients log in as. `Debug` never shows passwords.
#[derive(Clone, PartialEq)]
pub struct UserConfig {
    /// Password clients must prove; `None` only with `auth_method = "trust"`.
    pub password: Option<Secret>,
    /// How clients authenticate to pgfleet.
    pub auth_method: AuthMethod,
    /// User name on the PostgreSQL servers; defaults to the user's own name.
    pub server_user: String,
    /// Password for the servers; defaults to `password` when that is plain text.
    pub server_password: Option<String>,
    /// May use the admin console (database `pgfleet`).
    pub admin: bool,
    /// Pool overrides for this user (win over database overrides).
    pub pool: PoolOverrides,
    /// Where this user's statements go by default; `Auto` classifies each statement.
    pub default_role: DefaultRole,
    /// This user's consistency level until a session or statement chooses another.
    pub default_consistency: Consistency,
    /// `users.NAME.cross_shard_writes`: may write on several shards in one statement
    /// (two-phase commit); false refuses such statements with 42501.
    pub cross_shard_writes: bool,
    /// `users.NAME.tenant`: the tenant this user always is (a per-user binding).
    pub tenant: Option<String>,
}

impl fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserConfig")
            .field("password", &self.password)
            .field("auth_method", &self.auth_method)
            .field("server_user", &self.server_user)
            .field(
                "server_password",
                &self.server_password.as_ref().map(|_| "<redacted>"),
            )
            .field("admin", &self.admin)
            .field("pool", &self.pool)
            .field("default_role", &self.default_role)
            .field("default_consistency", &self.default_consistency)
            .field("cross_shard_writes", &self.cross_shard_writes)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// How a client proves who it is to pgfleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// `"scram-sha-256"` (default): needs a plain password or a SCRAM verifier.
    #[default]
    ScramSha256,
    /// `"md5"`: needs a plain password or an md5 hash.
    Md5,
    /// `"trust"`: no password asked.
    Trust,
}

impl AuthMethod {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::Md5 => "md5",
            AuthMethod::Trust => "trust",
        }
    }
}
