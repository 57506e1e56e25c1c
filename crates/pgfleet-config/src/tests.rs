//! Whole-file tests: bad configs (table-driven, exact problem paths), defaults, override
//! precedence, and the shipped examples/.

use std::time::Duration;

use crate::{
    path_matches, AuthMethod, ClusterConfig, Config, ConfigErrors, Consistency, DefaultRole,
    LoadBalancing, PoolMode, PrimaryReads, Secret, ServerRole, KEYS,
};

const GOOD: &str = r#"
[clusters.main]
servers = [{ host = "127.0.0.1", port = 5432, role = "primary" }]
[databases.app]
cluster = "main"
[users.app]
password = "app"
"#;

const VERIFIER: &str = "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$bWhAWPRGGUoQBJOsPC3xG/tD3Lth9y7vzXb2/2WhuA4=:y5Yvyt7oRVpMbAZrDEGIpS1JAsLWBIFrlB1t2s9r+Jc=";

fn load(text: &str) -> Config {
    match Config::from_toml_str(text) {
        Ok(c) => c,
        Err(e) => panic!("unexpected problems:\n{e}"),
    }
}

fn errors(text: &str) -> ConfigErrors {
    match Config::from_toml_str(text) {
        Ok(c) => panic!("expected problems, got {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn defaults() {
    let c = load(GOOD);
    assert_eq!(c.proxy.listen.to_string(), "127.0.0.1:6432");
    assert_eq!(c.proxy.max_client_connections, 10_000);
    assert_eq!(c.proxy.max_message_size, 64 << 20);
    assert_eq!(c.proxy.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(c.proxy.analysis_cache_size, 10_000);
    assert_eq!(c.proxy.metrics_top_tenants, 20);
    assert_eq!(c.pool.pool_mode, PoolMode::Transaction);
    assert_eq!(c.pool.pool_size, 20);
    assert_eq!(c.pool.idle_timeout, Duration::from_secs(600));
    assert_eq!(c.pool.server_lifetime, Duration::from_secs(3600));
    assert_eq!(c.pool.prepared_statements_cache, 500);
    let server = &c.clusters["main"].servers[0];
    assert_eq!(
        (server.port, server.role, server.weight),
        (5432, ServerRole::Primary, 1)
    );
    assert_eq!(c.databases["app"].server_database, "app");
    let user = &c.users["app"];
    assert_eq!(user.auth_method, AuthMethod::ScramSha256);
    assert_eq!(user.password, Some(Secret::Plain("app".into())));
    assert_eq!(user.server_user, "app");
    assert_eq!(user.server_password.as_deref(), Some("app"));
    assert!(!user.admin);
    assert_eq!(user.default_role, DefaultRole::Auto);
    assert_eq!(user.default_consistency, Consistency::Eventual);
    let cluster = &c.clusters["main"];
    assert_eq!(cluster.load_balancing, LoadBalancing::RoundRobin);
    assert_eq!(cluster.primary_reads, PrimaryReads::Fallback);
    assert_eq!(cluster.max_lag_bytes, 16 << 20);
    assert_eq!(cluster.max_lag_time, Duration::from_secs(10));
    assert_eq!(cluster.health_check_interval, Duration::from_secs(1));
    assert_eq!(cluster.lag_check_interval, Duration::from_millis(100));
    assert_eq!(cluster.ban_time, Duration::from_secs(5));
    assert_eq!(cluster.max_ban_time, Duration::from_secs(60));
    assert_eq!(cluster.failover_timeout, Duration::from_secs(30));
    assert!(cluster.allows_volatile_read("random"));
    assert!(cluster.allows_volatile_read("pg_catalog.random"));
    assert!(!cluster.allows_volatile_read("setseed"));
    assert_eq!(
        *cluster,
        ClusterConfig::with_servers(cluster.servers.clone())
    );
}

#[test]
fn replication_keys() {
    let c = load(&format!(
        "{GOOD}
[clusters.ro]
servers = [{{ host = \"a\" }}, {{ host = \"b\", weight = 3 }}]
load_balancing = \"random\"
primary_reads = \"never\"
max_lag_bytes = \"1MB\"
max_lag_time = \"0s\"
health_check_interval = \"250ms\"
lag_check_interval = \"50ms\"
ban_time = \"1s\"
max_ban_time = \"1s\"
failover_timeout = \"0s\"
read_volatile_allowlist = [\"Random\", \"audit.peek\"]
ryw_wait = \"20ms\"
write_quorum = 1
quorum_timeout = \"2s\"
quorum_timeout_action = \"warning\"
[users.reader]
password = \"r\"
default_role = \"replica\"
default_consistency = \"read_your_writes\"
"
    ));
    let ro = &c.clusters["ro"];
    assert_eq!(ro.load_balancing, LoadBalancing::Random);
    assert_eq!(ro.primary_reads, PrimaryReads::Never);
    assert_eq!(ro.max_lag_bytes, 1 << 20);
    assert_eq!(ro.max_lag_time, Duration::ZERO);
    assert_eq!(ro.health_check_interval, Duration::from_millis(250));
    assert_eq!(ro.lag_check_interval, Duration::from_millis(50));
    assert_eq!(
        (ro.ban_time, ro.max_ban_time),
        (Duration::from_secs(1), Duration::from_secs(1))
    );
    assert_eq!(ro.failover_timeout, Duration::ZERO);
    assert_eq!(ro.read_volatile_allowlist, vec!["random", "audit.peek"]);
    assert_eq!(ro.ryw_wait, Duration::from_millis(20));
    assert_eq!(
        (ro.write_quorum, ro.quorum_timeout, ro.quorum_timeout_action),
        (
            1,
            Duration::from_secs(2),
            crate::QuorumTimeoutAction::Warning
        )
    );
    assert!(ro.allows_volatile_read("audit.peek"));
    assert!(
        !ro.allows_volatile_read("peek"),
        "qualified entries match only their schema"
    );
    assert!(
        !ro.allows_volatile_read("gen_random_uuid"),
        "the key replaces the default"
    );
    let reader = &c.users["reader"];
    assert_eq!(reader.default_role, DefaultRole::Replica);
    assert_eq!(reader.default_consistency, Consistency::ReadYourWrites);

    let empty = load(&format!(
        "{GOOD}[clusters.e]\nservers = [{{ host = \"a\" }}]\nread_volatile_allowlist = []\n"
    ));
    assert!(empty.clusters["e"].read_volatile_allowlist.is_empty());
}

#[test]
fn enum_spellings_round_trip() {
    for (name, v) in LoadBalancing::CHOICES {
        assert_eq!(v.as_str(), *name);
    }
    for (name, v) in PrimaryReads::CHOICES {
        assert_eq!(v.as_str(), *name);
    }
    for (name, v) in DefaultRole::CHOICES {
        assert_eq!(v.as_str(), *name);
    }
    for (name, v) in Consistency::CHOICES {
        assert_eq!(v.as_str(), *name);
    }
}

#[test]
fn bad_configs_report_every_problem_with_its_path() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("unknown key", "[pool]\npool_sise = 3", &["pool.pool_sise"]),
        ("unknown table", "[poool]\nx = 1", &["poool"]),
        ("unknown nested keys", "[users.app]\npassword = \"x\"\ncolor = 1\n[users.app.pool]\nmin_idel = 1\n[clusters.c]\nservers = [{ host = \"h\", hots = \"h\" }]",
            &["users.app.color", "users.app.pool.min_idel", "clusters.c.servers.0.hots"]),
        ("syntax error", "[pool\npool_size = 1", &[""]),
        ("missing cluster", "[databases.app]\ncluster = \"nope\"", &["databases.app.cluster"]),
        ("cluster key absent", "[databases.app]\nserver_database = \"x\"", &["databases.app.cluster"]),
        ("cluster without servers", "[clusters.main]\nservers = []", &["clusters.main.servers"]),
        ("cluster table without servers key", "[clusters.main]", &["clusters.main.servers"]),
        ("two primaries", "[clusters.main]\nservers = [{ host = \"a\", role = \"primary\" }, { host = \"b\", role = \"replica\" }, { host = \"c\", role = \"primary\" }]",
            &["clusters.main.servers.2.role"]),
        ("reserved database", &format!("{GOOD}[databases.pgfleet]\ncluster = \"main\""), &["databases.pgfleet"]),
        ("md5 with verifier", &format!("[users.u]\nauth_method = \"md5\"\npassword = \"{VERIFIER}\""), &["users.u.password"]),
        ("scram with md5 hash", "[users.u]\npassword = \"md5abcdef0123456789abcdef0123456789\"", &["users.u.password"]),
        ("no password", "[users.a]\n[users.b]\nauth_method = \"md5\"\n[users.c]\nauth_method = \"trust\"", &["users.a.password", "users.b.password"]),
        ("malformed verifier", "[users.u]\npassword = \"SCRAM-SHA-256$4096:salt\"", &["users.u.password"]),
        ("malformed md5", "[users.u]\nauth_method = \"md5\"\npassword = \"md5abc123\"", &["users.u.password"]),
        ("min_idle > pool_size", "[pool]\npool_size = 2\nmin_idle = 3", &["pool.min_idle"]),
        ("pool_size 0 everywhere", &format!("{GOOD}[pool]\npool_size = 0\n[databases.app.pool]\npool_size = 0\n[users.app.pool]\npool_size = 0"),
            &["pool.pool_size", "databases.app.pool.pool_size", "users.app.pool.pool_size"]),
        ("override min_idle", &format!("{GOOD}[databases.app.pool]\nmin_idle = 30\n[users.app.pool]\npool_size = 10"),
            &["databases.app.pool.min_idle", "users.app.pool.pool_size"]),
        ("bad listen", "[proxy]\nlisten = \"localhost\"", &["proxy.listen"]),
        ("port 0 and too big", "[clusters.c]\nservers = [{ host = \"a\", port = 0 }, { host = \"b\", port = 70000 }]",
            &["clusters.c.servers.0.port", "clusters.c.servers.1.port"]),
        ("servers not an array", "[clusters.c]\n[clusters.c.servers]\nhost = \"a\"\n[pool]\npool_size = \"x\"", &["pool.pool_size", "clusters.c.servers"]),
        ("server not a table", "[clusters.c]\nservers = [\"a\", { host = \"b\", wieght = 1 }]", &["clusters.c.servers.0", "clusters.c.servers.1.wieght"]),
        ("missing host", "[clusters.c]\nservers = [{ port = 5433 }]", &["clusters.c.servers.0.host"]),
        ("bare integer durations", "[pool]\nconnect_timeout = 5\nidle_timeout = \"ten minutes\"\n[proxy]\nshutdown_timeout = 30",
            &["proxy.shutdown_timeout", "pool.connect_timeout", "pool.idle_timeout"]),
        ("bad sizes", "[proxy]\nmax_message_size = \"64 parsecs\"", &["proxy.max_message_size"]),
        ("metrics_top_tenants over the kept tenants", "[proxy]\nmetrics_top_tenants = 1001", &["proxy.metrics_top_tenants"]),
        ("metrics_top_tenants negative", "[proxy]\nmetrics_top_tenants = -1", &["proxy.metrics_top_tenants"]),
        ("bad replication enums", "[clusters.c]\nservers = [{ host = \"a\" }]\nload_balancing = \"fastest\"\nprimary_reads = true\n[users.u]\nauth_method = \"trust\"\ndefault_role = \"standby\"\ndefault_consistency = \"quorum\"",
            &["clusters.c.load_balancing", "clusters.c.primary_reads", "users.u.default_role", "users.u.default_consistency"]),
        ("bad lag and intervals", "[clusters.c]\nservers = [{ host = \"a\" }]\nmax_lag_bytes = \"10 parsecs\"\nmax_lag_time = 10\nhealth_check_interval = \"0s\"\nlag_check_interval = \"0ms\"\nfailover_timeout = \"soon\"",
            &["clusters.c.max_lag_bytes", "clusters.c.max_lag_time", "clusters.c.health_check_interval", "clusters.c.lag_check_interval", "clusters.c.failover_timeout"]),
        ("bad quorum keys", "[clusters.c]\nservers = [{ host = \"a\" }, { host = \"b\" }]\nwrite_quorum = 2\nquorum_timeout_action = \"ignore\"\nryw_wait = 5\nquorum_timeout = \"later\"",
            &["clusters.c.ryw_wait", "clusters.c.quorum_timeout", "clusters.c.quorum_timeout_action", "clusters.c.write_quorum"]),
        ("max_ban_time below ban_time", "[clusters.c]\nservers = [{ host = \"a\" }]\nban_time = \"10s\"\nmax_ban_time = \"5s\"\n[clusters.d]\nservers = [{ host = \"a\" }]\nban_time = \"2m\"\n[clusters.e]\nservers = [{ host = \"a\" }]\nban_time = \"0s\"",
            &["clusters.c.max_ban_time", "clusters.d.ban_time", "clusters.e.ban_time"]),
        ("bad allowlist", "[clusters.c]\nservers = [{ host = \"a\" }]\nread_volatile_allowlist = [\"random()\", 5, \"nextval\", \"pg_advisory_lock\", \"a b\", \"x.y.z\", \"clock_timestamp\"]\n[clusters.d]\nservers = [{ host = \"a\" }]\nread_volatile_allowlist = \"random\"",
            &["clusters.c.read_volatile_allowlist.1", "clusters.c.read_volatile_allowlist.0", "clusters.c.read_volatile_allowlist.2", "clusters.c.read_volatile_allowlist.3", "clusters.c.read_volatile_allowlist.4", "clusters.c.read_volatile_allowlist.5", "clusters.d.read_volatile_allowlist"]),
        ("replication key misspelled", "[clusters.c]\nservers = [{ host = \"a\" }]\nmax_lag_byte = \"1MB\"", &["clusters.c.max_lag_byte"]),
        ("bad enums and types", "[pool]\npool_mode = \"statement\"\nprepared_statements_cache = -1\n[users.u]\nauth_method = \"ldap\"\nadmin = \"yes\"\npassword = 5",
            &["pool.pool_mode", "pool.prepared_statements_cache", "users.u.password", "users.u.auth_method", "users.u.admin"]),
    ];
    for (name, text, want) in cases {
        let got = errors(text);
        assert_eq!(got.paths(), *want, "case `{name}`:\n{got}");
    }
}

#[test]
fn messages_are_actionable() {
    let e = errors(
        "[pool]\npool_sise = 3\nconnect_timeout = 5\n[users.app]\npassword = \"x\"\npool_size = 1",
    );
    let text = e.to_string();
    assert!(
        text.contains("pool.pool_sise: unknown key; did you mean `pool_size`?"),
        "{text}"
    );
    assert!(
        text.contains("users.app.pool_size: unknown key; did you mean `users.app.pool.pool_size`?"),
        "{text}"
    );
    assert!(
        text.contains("pool.connect_timeout: a duration needs a unit; write e.g. \"5s\""),
        "{text}"
    );
    assert_eq!(text.lines().count(), 3);

    let e = errors("[clusters.c]\nservers = [{ host = \"a\" }]\nban_time = \"10s\"\nmax_ban_time = \"5s\"\nread_volatile_allowlist = [\"setseed\", \"random()\"]\nmax_lag_tim = \"1s\"");
    let text = e.to_string();
    for want in [
        "clusters.c.max_lag_tim: unknown key; did you mean `max_lag_time`?",
        "clusters.c.max_ban_time: max_ban_time (5s) is shorter than ban_time (10s)",
        "clusters.c.read_volatile_allowlist.0: `setseed` changes session or database state",
        "clusters.c.read_volatile_allowlist.1: write the function name without parentheses: \"random\"",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }

    let e = errors("[pool]\npool_size = 1\n\n[pool.x\n");
    assert!(e.to_string().contains("line 4, column"), "{e}");

    let e = errors(&format!(
        "[users.u]\nauth_method = \"md5\"\npassword = \"{VERIFIER}\""
    ));
    assert_eq!(
        e.problems[0].message,
        "md5 authentication needs a plain or md5 password"
    );
    assert!(
        !e.to_string().contains("c2FsdHNhbHRzYWx0"),
        "never echo secrets"
    );
}

#[test]
fn load_reports_unreadable_file() {
    let e = match Config::load(std::path::Path::new("/nonexistent/pgfleet.toml")) {
        Ok(_) => panic!("loaded a missing file"),
        Err(e) => e,
    };
    assert!(
        e.to_string()
            .contains("cannot read config file /nonexistent/pgfleet.toml"),
        "{e}"
    );
}

#[test]
fn pool_overrides_precedence() {
    let c = load(&format!(
        "{GOOD}
[pool]
pool_size = 10
pool_mode = \"session\"
checkout_timeout = \"1s\"
[databases.app.pool]
pool_size = 30
idle_timeout = \"0s\"
[databases.other]
cluster = \"main\"
[users.app.pool]
pool_size = 40
pool_mode = \"transaction\"
[users.reporting]
password = \"r\"
"
    ));
    let s = c.pool_settings("app", "app");
    assert_eq!(s.pool_size, 40, "user beats database");
    assert_eq!(s.pool_mode, PoolMode::Transaction, "user beats global");
    assert_eq!(s.idle_timeout, Duration::ZERO, "database beats global");
    assert_eq!(
        s.checkout_timeout,
        Duration::from_secs(1),
        "global beats default"
    );
    assert_eq!(s.min_idle, 0, "default");

    let s = c.pool_settings("reporting", "app");
    assert_eq!((s.pool_size, s.pool_mode), (30, PoolMode::Session));
    let s = c.pool_settings("reporting", "other");
    assert_eq!(s, c.pool);
    assert_eq!(c.pool_settings("nobody", "nowhere"), c.pool);
}

fn examples_dir() -> std::path::PathBuf {
    std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples")).to_path_buf()
}

#[test]
fn every_example_loads() {
    let mut loaded = Vec::new();
    let entries = std::fs::read_dir(examples_dir()).map_err(|e| e.to_string());
    for entry in entries.into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = Config::load(&path) {
                panic!("{}:\n{e}", path.display());
            }
            loaded.push(path);
        }
    }
    assert!(
        loaded.len() >= 2,
        "examples/minimal.toml and examples/full.toml expected, found {loaded:?}"
    );
}

#[test]
fn minimal_example_is_what_it_says() {
    let c = match Config::load(&examples_dir().join("minimal.toml")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(c.databases["app"].cluster, "main");
    assert_eq!(c.users["app"].password, Some(Secret::Plain("app".into())));
}

#[test]
fn full_example_uses_every_key() {
    let text = match std::fs::read_to_string(examples_dir().join("full.toml")) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let mut paths = Vec::new();
    collect_paths(&toml::Value::Table(table), String::new(), &mut paths);
    let unused: Vec<&str> = KEYS
        .iter()
        .map(|k| k.path)
        .filter(|k| !paths.iter().any(|p| path_matches(k, p)))
        .collect();
    assert!(
        unused.is_empty(),
        "examples/full.toml does not use {unused:?}"
    );
}

fn collect_paths(value: &toml::Value, path: String, out: &mut Vec<String>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        toml::Value::Table(t) => t.iter().for_each(|(k, v)| collect_paths(v, join(k), out)),
        toml::Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| collect_paths(v, join(&i.to_string()), out)),
        _ => {}
    }
    out.push(path);
}
