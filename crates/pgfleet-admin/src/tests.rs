//! The console end to end on a real [`Runtime`] without sockets: no clients or servers connect,
//! so tables are empty but commands, tags and errors are the ones psql sees.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pgfleet_config::Config;
use pgfleet_proxy::console::{Console, ConsoleError, ConsoleReply};
use pgfleet_proxy::Runtime;

use crate::AdminConsole;

const CONFIG: &str = r#"
[proxy]
listen = "127.0.0.1:6432"
[clusters.main]
servers = [{ host = "127.0.0.1", port = 5432, role = "primary" }]
[databases.app]
cluster = "main"
[users.app]
password = "app-secret-pw"
[users.admin]
password = "admin-secret-pw"
admin = true
"#;

/// A config file of its own per test (tests run in parallel), removed on drop.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(text: &str) -> TempConfig {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "pgfleet-admin-test-{}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        TempConfig::write(&path, text);
        TempConfig(path)
    }

    fn write(path: &PathBuf, text: &str) {
        if let Err(e) = std::fs::write(path, text) {
            panic!("cannot write {}: {e}", path.display());
        }
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn runtime(path: Option<PathBuf>) -> Arc<Runtime> {
    let config = match Config::from_toml_str(CONFIG) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    Runtime::new(config, path, Some(Arc::new(AdminConsole)))
}

async fn exec(rt: &Arc<Runtime>, command: &str) -> Result<ConsoleReply, ConsoleError> {
    AdminConsole.execute(rt, command).await
}

fn columns(reply: Result<ConsoleReply, ConsoleError>) -> (Vec<String>, usize) {
    match reply {
        Ok(ConsoleReply::Rows { columns, rows }) => (columns, rows.len()),
        other => panic!("expected rows, got {other:?}"),
    }
}

#[tokio::test]
async fn show_commands_answer_tables() {
    let rt = runtime(None);
    let (cols, n) = columns(exec(&rt, "show pools").await);
    assert_eq!((cols.len(), n), (16, 0));
    let (cols, n) = columns(exec(&rt, "SHOW  CLIENTS").await);
    assert_eq!((cols[0].as_str(), n), ("id", 0));
    let (cols, n) = columns(exec(&rt, "Show Servers").await);
    assert_eq!((cols[4].as_str(), n), ("pid", 0));
    let (cols, n) = columns(exec(&rt, "SHOW STATS").await);
    assert!(cols.iter().any(|c| c == "pinned_advisory_lock"));
    assert_eq!(n, 1);
    let (_, n) = columns(exec(&rt, "SHOW VERSION").await);
    assert_eq!(n, 1);
    let (cols, _) = columns(exec(&rt, "SHOW HELP").await);
    assert_eq!(cols, ["command", "description"]);
}

#[tokio::test]
async fn show_replication_lists_only_clusters_in_use() {
    let rt = runtime(None);
    let (cols, n) = columns(exec(&rt, "SHOW REPLICATION").await);
    assert_eq!(cols, crate::show::REPLICATION_COLUMNS);
    assert_eq!(n, 0, "no cluster touched yet");
    let touched = rt.clusters().get(&rt.config(), "main");
    assert!(touched.is_some());
    let Ok(ConsoleReply::Rows { rows, .. }) = exec(&rt, "show replication").await else {
        panic!("SHOW REPLICATION failed")
    };
    let want: Vec<Option<String>> = [
        Some("main"),
        Some("0"),
        Some("127.0.0.1:5432"),
        Some("primary"),
        Some("unknown"),
        Some("healthy"),
        None,
        Some("0"),
        Some("0"),
        Some("0"),
        Some("1"),
        Some("t"),
    ]
    .iter()
    .map(|c| c.map(str::to_owned))
    .collect();
    assert_eq!(rows, vec![want]);
}

#[tokio::test]
async fn show_config_hides_passwords() {
    let rt = runtime(None);
    let Ok(ConsoleReply::Rows { rows, .. }) = exec(&rt, "SHOW CONFIG").await else {
        panic!("SHOW CONFIG failed")
    };
    let flat: Vec<String> = rows.into_iter().flatten().flatten().collect();
    assert!(flat.iter().any(|v| v == "users.admin.password"));
    assert!(!flat.iter().any(|v| v.contains("secret-pw")));
}

#[tokio::test]
async fn unknown_command_is_a_syntax_error() {
    let rt = runtime(None);
    let err = exec(&rt, "SELECT 1").await.err();
    let Some(err) = err else { panic!("accepted") };
    assert_eq!(err.code, "42601");
    assert!(err
        .message
        .starts_with("pgfleet: unknown admin command \"SELECT 1\"; try SHOW POOLS"));
}

#[tokio::test]
async fn pause_resume_and_shutdown() {
    let rt = runtime(None);
    assert_eq!(
        exec(&rt, "PAUSE").await,
        Ok(ConsoleReply::Done("PAUSE".into()))
    );
    assert!(rt.is_paused());
    assert_eq!(
        exec(&rt, "resume").await,
        Ok(ConsoleReply::Done("RESUME".into()))
    );
    assert!(!rt.is_paused());
    assert_eq!(
        exec(&rt, "SHUTDOWN").await,
        Ok(ConsoleReply::Done("SHUTDOWN".into()))
    );
    assert!(rt.is_shutting_down());
}

#[tokio::test]
async fn reload_applies_a_valid_file_and_keeps_listen() {
    let file = TempConfig::new(CONFIG);
    let rt = runtime(Some(file.0.clone()));
    let changed =
        format!("{CONFIG}\n[pool]\npool_size = 7\n").replace("127.0.0.1:6432", "0.0.0.0:7777");
    TempConfig::write(&file.0, &changed);
    assert_eq!(
        exec(&rt, "RELOAD").await,
        Ok(ConsoleReply::Done("RELOAD".into()))
    );
    let config = rt.config();
    assert_eq!(config.pool.pool_size, 7);
    assert_eq!(config.proxy.listen.to_string(), "127.0.0.1:6432");
}

#[tokio::test]
async fn reload_with_problems_keeps_the_running_config() {
    let file = TempConfig::new(CONFIG);
    let rt = runtime(Some(file.0.clone()));
    let before = rt.config();
    let broken = format!("{CONFIG}\n[pool]\npool_size = 0\nmin_idel = 1\n");
    TempConfig::write(&file.0, &broken);
    let err = exec(&rt, "reload").await.err();
    let Some(err) = err else { panic!("accepted") };
    assert_eq!(err.code, "F0000");
    assert!(err.message.contains("pool.pool_size"), "{}", err.message);
    assert!(err.message.contains("pool.min_idel"), "{}", err.message);
    assert!(err.message.lines().count() >= 3, "{}", err.message);
    assert_eq!(*rt.config(), *before);
}

#[tokio::test]
async fn reload_without_a_file_fails() {
    let rt = runtime(None);
    let err = exec(&rt, "RELOAD").await.err();
    let Some(err) = err else { panic!("accepted") };
    assert_eq!(err.code, "F0000");
}
