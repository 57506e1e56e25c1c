//! Whole-file tests: bad configs (table-driven, exact problem paths), defaults, override
//! precedence, and the shipped examples/.

use std::time::Duration;

use crate::{path_matches, AuthMethod, Config, ConfigErrors, PoolMode, Secret, ServerRole, KEYS};

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
