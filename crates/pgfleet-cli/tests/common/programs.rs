//! Running real PostgreSQL client programs (psql, pgbench) against the proxy.

use pgfleet_testkit::TestProxy;
use tokio::process::Command;

/// Runs a PostgreSQL client program against the proxy as app/app and returns (success, stdout+stderr).
pub async fn run(program: &str, proxy: &TestProxy, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &proxy.port().to_string(),
            "-U",
            "app",
        ])
        .args(args)
        .env("PGPASSWORD", "app")
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} could not run: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs a psql script file against the proxy on `db` (a database name or a conninfo string):
/// stops at the first error, prints rows unaligned without headers.
pub async fn psql_script(proxy: &TestProxy, db: &str, file: &std::path::Path) -> (bool, String) {
    let file = file.to_str().expect("a UTF-8 path");
    let args = [
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-A",
        "-t",
        "-d",
        db,
        "-f",
        file,
    ];
    run("psql", proxy, &args).await
}

pub fn failed_transactions(output: &str) -> Option<u64> {
    output
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

pub fn processed(output: &str) -> Option<u64> {
    output
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|rest| rest.split('/').next())
        .and_then(|n| n.parse().ok())
}
