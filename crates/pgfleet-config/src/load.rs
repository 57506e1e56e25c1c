//! Text → validated [`Config`]: TOML parsing, unknown keys, every value and every cross-reference
//! checked, all problems collected with their key paths.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use crate::keys::edit_distance;
use crate::model::{
    AuthMethod, ClusterConfig, Config, Consistency, DatabaseConfig, DefaultRole, PoolMode,
    PoolOverrides, PoolSettings, ProxyConfig, ServerConfig, ServerRole, UserConfig,
    MAX_METRICS_TOP_TENANTS, MAX_NODE_ID,
};
use crate::placement::read_placement;
use crate::problem::{ConfigErrors, Problem};
use crate::raw::{RawCluster, RawConfig, RawDatabase, RawPool, RawProxy, RawServer, RawUser};
use crate::reader::Reader;
use crate::secret::Secret;
use crate::sharding::{read_sharding, RawSharding};

/// Database name clients use to reach the admin console.
pub const ADMIN_DATABASE: &str = "pgfleet";

impl Config {
    /// Parses and validates a config file's text, reporting every problem found.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigErrors> {
        let mut unknown = Vec::new();
        let deserializer = toml::Deserializer::new(text);
        let raw: RawConfig =
            serde_ignored::deserialize(deserializer, |path| unknown.push(render_path(&path)))
                .map_err(|e| ConfigErrors {
                    problems: vec![toml_problem(text, &e)],
                })?;
        let mut reader = Reader::default();
        for path in unknown {
            reader.unknown_key(path);
        }
        let config = build(&mut reader, &raw);
        if reader.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors {
                problems: reader.problems,
            })
        }
    }

    /// Reads and validates a config file; an unreadable file is reported as a problem too.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            problems: vec![Problem::new(
                "",
                format!("cannot read config file {}: {e}", path.display()),
            )],
        })?;
        Config::from_toml_str(&text)
    }
}

/// Dotted path with array indexes as segments; serde_ignored's own rendering adds `?` for options.
pub(crate) fn render_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    let (parent, own) = match path {
        P::Root => return String::new(),
        P::Seq { parent, index } => (parent, index.to_string()),
        P::Map { parent, key } => (parent, key.clone()),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            return render_path(parent)
        }
    };
    let parent = render_path(parent);
    if parent.is_empty() {
        own
    } else {
        format!("{parent}.{own}")
    }
}

fn toml_problem(text: &str, error: &toml::de::Error) -> Problem {
    let message = error.message().trim().replace('\n', " ");
    let Some(span) = error.span() else {
        return Problem::new("", format!("invalid TOML: {message}"));
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Problem::new(
        "",
        format!("invalid TOML at line {line}, column {column}: {message}"),
    )
}

fn build(r: &mut Reader, raw: &RawConfig) -> Config {
    let proxy = build_proxy(r, &raw.proxy);
    let global = read_pool(r, "pool", &raw.pool);
    let pool = global.apply_to(&PoolSettings::default());
    check_min_idle(r, "pool", &global, &pool, true);

    let clusters: BTreeMap<String, ClusterConfig> = raw
        .clusters
        .iter()
        .map(|(name, c)| (name.clone(), build_cluster(r, name, c)))
        .collect();
    let databases: BTreeMap<String, DatabaseConfig> = raw
        .databases
        .iter()
        .map(|(name, d)| (name.clone(), build_database(r, name, d, &clusters, &pool)))
        .collect();
    let users: BTreeMap<String, UserConfig> = raw
        .users
        .iter()
        .map(|(name, u)| (name.clone(), build_user(r, name, u)))
        .collect();
    crate::tenancy::check_references(r, &databases, &users);
    let metadata = raw
        .metadata
        .as_ref()
        .map(|m| crate::tenancy::build_metadata(r, m, &clusters));

    // A user override meets every database's settings; report once per user.
    for (name, user) in &users {
        let prefix = format!("users.{name}.pool");
        let bases: Vec<PoolSettings> = if databases.is_empty() {
            vec![pool.clone()]
        } else {
            databases.values().map(|d| d.pool.apply_to(&pool)).collect()
        };
        if let Some(bad) = bases
            .iter()
            .map(|base| user.pool.apply_to(base))
            .find(|s| s.min_idle > s.pool_size)
        {
            check_min_idle(r, &prefix, &user.pool, &bad, false);
        }
    }

    Config {
        proxy,
        pool,
        clusters,
        databases,
        users,
        metadata,
    }
}

/// An `ip:port` listen address at `path`; `example_port` goes into the message's examples.
fn socket_address(
    r: &mut Reader,
    path: &str,
    value: &Option<toml::Value>,
    example_port: u16,
) -> Option<SocketAddr> {
    r.string(path, value)
        .and_then(|text| match text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                r.report(
                    path,
                    format!("invalid listen address `{text}`; write an IP address and port, e.g. \"127.0.0.1:{example_port}\" or \"[::]:{example_port}\""),
                );
                None
            }
        })
}

fn build_proxy(r: &mut Reader, raw: &RawProxy) -> ProxyConfig {
    let d = ProxyConfig::default();
    let listen = socket_address(r, "proxy.listen", &raw.listen, 6432);
    let metrics_listen = socket_address(r, "proxy.metrics_listen", &raw.metrics_listen, 9930);
    let top = r.usize("proxy.metrics_top_tenants", &raw.metrics_top_tenants, 0);
    let metrics_top_tenants = match top {
        Some(n) if n > MAX_METRICS_TOP_TENANTS => {
            r.report(
                "proxy.metrics_top_tenants",
                format!("must be at most {MAX_METRICS_TOP_TENANTS} (per-tenant counters are kept for the {MAX_METRICS_TOP_TENANTS} tenants active most recently), got {n}"),
            );
            d.metrics_top_tenants
        }
        Some(n) => n,
        None => d.metrics_top_tenants,
    };
    ProxyConfig {
        metrics_listen,
        listen: listen.unwrap_or(d.listen),
        max_client_connections: r
            .usize(
                "proxy.max_client_connections",
                &raw.max_client_connections,
                1,
            )
            .unwrap_or(d.max_client_connections),
        max_message_size: r
            .size("proxy.max_message_size", &raw.max_message_size)
            .unwrap_or(d.max_message_size),
        shutdown_timeout: r
            .duration("proxy.shutdown_timeout", &raw.shutdown_timeout)
            .unwrap_or(d.shutdown_timeout),
        analysis_cache_size: r
            .usize("proxy.analysis_cache_size", &raw.analysis_cache_size, 0)
            .unwrap_or(d.analysis_cache_size),
        metrics_top_tenants,
        merge_memory_limit: r
            .size("proxy.merge_memory_limit", &raw.merge_memory_limit)
            .unwrap_or(d.merge_memory_limit),
        node_id: match r.usize("proxy.node_id", &raw.node_id, 0) {
            Some(n) if n > MAX_NODE_ID => {
                r.report(
                    "proxy.node_id",
                    format!("must be at most {MAX_NODE_ID} (10 bits of a pgfleet id), got {n}"),
                );
                d.node_id
            }
            Some(n) => n as u16,
            None => d.node_id,
        },
    }
}

fn read_pool(r: &mut Reader, prefix: &str, raw: &RawPool) -> PoolOverrides {
    let p = |key: &str| format!("{prefix}.{key}");
    PoolOverrides {
        pool_mode: r.choice(
            &p("pool_mode"),
            &raw.pool_mode,
            &[
                ("transaction", PoolMode::Transaction),
                ("session", PoolMode::Session),
            ],
        ),
        pool_size: r.usize(&p("pool_size"), &raw.pool_size, 1),
        min_idle: r.usize(&p("min_idle"), &raw.min_idle, 0),
        connect_timeout: r.duration(&p("connect_timeout"), &raw.connect_timeout),
        checkout_timeout: r.duration(&p("checkout_timeout"), &raw.checkout_timeout),
        idle_timeout: r.duration(&p("idle_timeout"), &raw.idle_timeout),
        server_lifetime: r.duration(&p("server_lifetime"), &raw.server_lifetime),
        prepared_statements_cache: r.usize(
            &p("prepared_statements_cache"),
            &raw.prepared_statements_cache,
            0,
        ),
    }
}

/// Reports `min_idle > pool_size` at the key this table set; `always` for `[pool]`, whose
/// defaults have no lower level that could already have reported it.
fn check_min_idle(
    r: &mut Reader,
    prefix: &str,
    own: &PoolOverrides,
    effective: &PoolSettings,
    always: bool,
) {
    if effective.min_idle <= effective.pool_size {
        return;
    }
    let key = match (own.min_idle, own.pool_size) {
        (Some(_), _) => "min_idle",
        (None, Some(_)) => "pool_size",
        (None, None) if always => "min_idle",
        (None, None) => return,
    };
    r.report(
        format!("{prefix}.{key}"),
        format!(
            "min_idle ({}) is larger than pool_size ({})",
            effective.min_idle, effective.pool_size
        ),
    );
}

fn build_cluster(r: &mut Reader, name: &str, raw: &RawCluster) -> ClusterConfig {
    let prefix = format!("clusters.{name}");
    let items: &[toml::Value] = match &raw.servers {
        None => &[],
        Some(toml::Value::Array(items)) => items,
        Some(other) => {
            r.report(
                format!("{prefix}.servers"),
                format!("expected an array of servers, found {}; write servers = [{{ host = \"...\" }}] or use [[{prefix}.servers]]", other.type_str()),
            );
            &[]
        }
    };
    let mut raws = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{prefix}.servers.{i}");
        let mut unknown = Vec::new();
        match serde_ignored::deserialize(item.clone(), |p| unknown.push(render_path(&p))) {
            Ok(server) => raws.push((path.clone(), server)),
            Err(_) => r.report(
                &path,
                format!(
                    "expected a table such as {{ host = \"10.0.0.1\", port = 5432 }}, found {}",
                    item.type_str()
                ),
            ),
        }
        for key in unknown {
            r.unknown_key(format!("{path}.{key}"));
        }
    }
    if items.is_empty() && !matches!(raw.servers, Some(ref v) if !v.is_array()) {
        r.report(
            format!("{prefix}.servers"),
            "cluster has no servers; add e.g. servers = [{ host = \"127.0.0.1\", port = 5432, role = \"primary\" }]",
        );
    }
    let servers: Vec<ServerConfig> = raws
        .iter()
        .map(|(path, s): &(String, RawServer)| build_server(r, path, s))
        .collect();
    let mut primaries = servers
        .iter()
        .enumerate()
        .filter(|(_, s)| s.role == ServerRole::Primary)
        .map(|(i, _)| i);
    if let Some(first) = primaries.next() {
        for i in primaries {
            r.report(
                format!("{prefix}.servers.{i}.role"),
                format!("more than one server has role \"primary\" (servers.{first} already is); a cluster has one primary"),
            );
        }
    }
    let mut cluster = ClusterConfig::with_servers(servers);
    crate::replication::read_replication(r, &prefix, raw, &mut cluster);
    cluster
}

fn build_server(r: &mut Reader, prefix: &str, raw: &RawServer) -> ServerConfig {
    let host_path = format!("{prefix}.host");
    let host = match r.string(&host_path, &raw.host) {
        Some(h) if h.trim().is_empty() => {
            r.report(host_path, "host must not be empty");
            String::new()
        }
        Some(h) => h,
        None => {
            if raw.host.is_none() {
                r.report(host_path, "missing required key `host`");
            }
            String::new()
        }
    };
    let port_path = format!("{prefix}.port");
    let port = r
        .count(&port_path, &raw.port, 0)
        .and_then(|n| match u16::try_from(n) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                r.report(
                    &port_path,
                    format!("port must be between 1 and 65535 (found {n})"),
                );
                None
            }
        });
    let weight_path = format!("{prefix}.weight");
    let weight = r.count(&weight_path, &raw.weight, 0).and_then(|n| {
        u32::try_from(n)
            .map_err(|_| r.report(&weight_path, format!("weight {n} is too large")))
            .ok()
    });
    ServerConfig {
        host,
        port: port.unwrap_or(5432),
        role: r
            .choice(
                &format!("{prefix}.role"),
                &raw.role,
                &[
                    ("primary", ServerRole::Primary),
                    ("replica", ServerRole::Replica),
                    ("auto", ServerRole::Auto),
                ],
            )
            .unwrap_or_default(),
        weight: weight.unwrap_or(1),
    }
}

fn build_database(
    r: &mut Reader,
    name: &str,
    raw: &RawDatabase,
    clusters: &BTreeMap<String, ClusterConfig>,
    global: &PoolSettings,
) -> DatabaseConfig {
    let prefix = format!("databases.{name}");
    if name == ADMIN_DATABASE {
        r.report(
            &prefix,
            format!("database name `{ADMIN_DATABASE}` is reserved for the admin console; choose another name"),
        );
    }
    let cluster_path = format!("{prefix}.cluster");
    let cluster = r.string(&cluster_path, &raw.cluster);
    match &cluster {
        _ if raw.shards.is_some() && raw.cluster.is_some() => r.report(
            &cluster_path,
            "a database has either `cluster` (one cluster) or `shards` (a sharded database), not both",
        ),
        _ if raw.shards.is_some() => {}
        None if raw.cluster.is_none() => r.report(
            &cluster_path,
            "missing required key `cluster` (or `shards` for a sharded database)",
        ),
        None => {}
        Some(c) => {
            check_cluster_name(r, &cluster_path, c, clusters);
        }
    }
    let sharding = read_sharding(
        r,
        &prefix,
        &RawSharding {
            shards: &raw.shards,
            default_shard: &raw.default_shard,
            reference_tables: &raw.reference_tables,
            sharded_tables: &raw.sharded_tables,
        },
        clusters,
    );
    let placement = read_placement(r, &prefix, &raw.placement, clusters, sharding.as_ref());
    let pool = read_pool(r, &format!("{prefix}.pool"), &raw.pool);
    check_min_idle(
        r,
        &format!("{prefix}.pool"),
        &pool,
        &pool.apply_to(global),
        false,
    );
    DatabaseConfig {
        // A sharded database has no single cluster (see `DatabaseConfig::cluster`).
        cluster: if sharding.is_some() {
            String::new()
        } else {
            cluster.unwrap_or_default()
        },
        sharding,
        placement,
        server_database: r
            .string(&format!("{prefix}.server_database"), &raw.server_database)
            .unwrap_or_else(|| name.to_string()),
        pool,
        tenancy: raw
            .tenancy
            .as_ref()
            .map(|t| crate::tenancy::build_tenancy(r, &prefix, t)),
    }
}

/// Reports `name` at `path` unless it is a defined cluster, with a "did you mean" or the list of
/// defined clusters; true when it is defined.
pub(crate) fn check_cluster_name(
    r: &mut Reader,
    path: &str,
    name: &str,
    clusters: &BTreeMap<String, ClusterConfig>,
) -> bool {
    if clusters.contains_key(name) {
        return true;
    }
    let hint = clusters
        .keys()
        .filter(|k| edit_distance(name, k) <= 2)
        .min_by_key(|k| edit_distance(name, k))
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_else(|| {
            if clusters.is_empty() {
                "; no clusters are defined".to_string()
            } else {
                let names: Vec<&str> = clusters.keys().map(String::as_str).collect();
                format!("; defined clusters: {}", names.join(", "))
            }
        });
    r.report(path, format!("cluster `{name}` is not defined{hint}"));
    false
}

fn build_user(r: &mut Reader, name: &str, raw: &RawUser) -> UserConfig {
    let prefix = format!("users.{name}");
    let password_path = format!("{prefix}.password");
    let password = r.string(&password_path, &raw.password).and_then(|text| {
        Secret::parse(&text)
            .map_err(|m| r.report(&password_path, m))
            .ok()
    });
    let auth_method = r
        .choice(
            &format!("{prefix}.auth_method"),
            &raw.auth_method,
            &[
                ("scram-sha-256", AuthMethod::ScramSha256),
                ("md5", AuthMethod::Md5),
                ("trust", AuthMethod::Trust),
            ],
        )
        .unwrap_or_default();
    let mismatch = match (auth_method, &password) {
        (AuthMethod::Trust, _) => None,
        (_, None) if raw.password.is_none() => Some(format!(
            "auth_method \"{}\" needs a password; set one or use auth_method = \"trust\"",
            auth_method.as_str()
        )),
        (_, None) => None, // the bad password is already reported
        (AuthMethod::Md5, Some(Secret::ScramVerifier(_))) => {
            Some("md5 authentication needs a plain or md5 password".to_string())
        }
        (AuthMethod::ScramSha256, Some(Secret::Md5(_))) => Some(
            "scram-sha-256 authentication needs a plain password or a SCRAM verifier".to_string(),
        ),
        (_, Some(_)) => None,
    };
    if let Some(message) = mismatch {
        r.report(&password_path, message);
    }
    let server_password = r
        .string(&format!("{prefix}.server_password"), &raw.server_password)
        .or_else(|| {
            password
                .as_ref()
                .and_then(Secret::as_plain)
                .map(str::to_string)
        });
    let pool = read_pool(r, &format!("{prefix}.pool"), &raw.pool);
    let default_role = r
        .choice(
            &format!("{prefix}.default_role"),
            &raw.default_role,
            DefaultRole::CHOICES,
        )
        .unwrap_or_default();
    let default_consistency = r
        .choice(
            &format!("{prefix}.default_consistency"),
            &raw.default_consistency,
            Consistency::CHOICES,
        )
        .unwrap_or_default();
    UserConfig {
        password,
        auth_method,
        server_user: r
            .string(&format!("{prefix}.server_user"), &raw.server_user)
            .unwrap_or_else(|| name.to_string()),
        server_password,
        admin: r
            .boolean(&format!("{prefix}.admin"), &raw.admin)
            .unwrap_or(false),
        pool,
        default_role,
        default_consistency,
        cross_shard_writes: r
            .boolean(
                &format!("{prefix}.cross_shard_writes"),
                &raw.cross_shard_writes,
            )
            .unwrap_or(true),
        tenant: crate::tenancy::read_user_tenant(r, &prefix, &raw.tenant),
    }
}
