//! `pgfleet sandbox` end to end: the built binary, real servers, a real client.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pgfleet_config::{Config, ServerRole};

const READY_TIMEOUT: Duration = Duration::from_secs(120);

fn free_port() -> u16 {
    // The sandbox also takes the ports right after this one for its servers.
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = PathBuf::from(format!(
        "/tmp/pgfleet-sbx-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A running `pgfleet sandbox`; killed (and its servers left to the next run) if a test panics.
struct Sandbox {
    child: Child,
    stderr_log: PathBuf,
}

impl Sandbox {
    /// Starts the binary and waits for its ready line; returns it with the line.
    fn start(dir: &Path, port: u16, replicas: u16) -> (Sandbox, String, Duration) {
        let stderr_log = dir.with_extension("stderr");
        let stderr = std::fs::File::create(&stderr_log).expect("stderr log");
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgfleet"))
            .arg("sandbox")
            .arg("--dir")
            .arg(dir)
            .args([
                "--port",
                &port.to_string(),
                "--replicas",
                &replicas.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn pgfleet");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let sandbox = Sandbox { child, stderr_log };
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(e) => panic!("no ready line ({e}); stderr:\n{}", sandbox.stderr()),
        };
        (sandbox, line, started.elapsed())
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status must be 0 within 60 s.
    fn terminate(mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "exit {status}; stderr:\n{}",
                    self.stderr()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn server_ports(dir: &Path) -> (u16, Vec<u16>) {
    let config = Config::load(&dir.join("pgfleet.toml")).expect("generated config is valid");
    let servers = &config.clusters["main"].servers;
    let primary = servers
        .iter()
        .find(|s| s.role == ServerRole::Primary)
        .expect("primary")
        .port;
    let replicas = servers
        .iter()
        .filter(|s| s.role == ServerRole::Replica)
        .map(|s| s.port)
        .collect();
    (primary, replicas)
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(conn);
    client
}

async fn wait_for_row_on(port: u16, marker: &str) {
    let url = format!("postgres://app:app@127.0.0.1:{port}/app");
    let client = connect(&url).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = client
            .query_opt("SELECT v FROM sandbox_test WHERE v = $1", &[&marker])
            .await
            .ok()
            .flatten()
            .is_some();
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "row {marker} not on port {port} after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_refused(ports: &[u16]) {
    for port in ports {
        assert!(
            TcpStream::connect(("127.0.0.1", *port)).is_err(),
            "port {port} still accepts connections"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_serves_replicates_stops_and_reuses() {
    let dir = temp_dir("e2e");
    let data = dir.join("sbx");
    let port = free_port();
    let expected = format!("ready: postgres://app:app@127.0.0.1:{port}/app");
    let url = format!("postgres://app:app@127.0.0.1:{port}/app");

    // First run: initdb, role/database, one replica.
    let (sandbox, line, took) = Sandbox::start(&data, port, 1);
    eprintln!("first run ready after {took:?}");
    assert_eq!(line, expected);
    let (primary, replicas) = server_ports(&data);
    assert_eq!(replicas.len(), 1);
    let client = connect(&url).await;
    let one: i32 = client
        .query_one("SELECT 1", &[])
        .await
        .expect("select")
        .get(0);
    assert_eq!(one, 1);
    client
        .batch_execute(
            "CREATE TABLE sandbox_test (v text); INSERT INTO sandbox_test VALUES ('first')",
        )
        .await
        .expect("write through the proxy");
    drop(client);
    wait_for_row_on(replicas[0], "first").await;
    let mut all_ports = vec![port, primary];
    all_ports.extend(&replicas);
    sandbox.terminate();
    assert_refused(&all_ports);

    // Second run on the same directory: everything reused, the row is still there.
    let (sandbox, line, took) = Sandbox::start(&data, port, 1);
    eprintln!("rerun ready after {took:?}");
    assert_eq!(line, expected);
    assert_eq!(server_ports(&data), (primary, replicas.clone()));
    let client = connect(&url).await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM sandbox_test WHERE v = 'first'", &[])
        .await
        .expect("read through the proxy")
        .get(0);
    assert_eq!(n, 1);
    // `--replicas` serves reads: once the monitor has measured the replica, reads reach it.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let p: i32 = client
            .query_one("SELECT inet_server_port()", &[])
            .await
            .expect("read through the proxy")
            .get(0);
        if p == i32::from(replicas[0]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reads never reached the sandbox replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(client);
    wait_for_row_on(replicas[0], "first").await;
    sandbox.terminate();
    assert_refused(&all_ports);

    std::fs::remove_dir_all(&dir).expect("remove the sandbox directory");
    let _ = std::fs::remove_file(data.with_extension("stderr"));
}

#[test]
fn sandbox_without_binaries_explains_how_to_install_them() {
    let dir = temp_dir("nobin");
    let out = Command::new(env!("CARGO_BIN_EXE_pgfleet"))
        .arg("sandbox")
        .arg("--dir")
        .arg(dir.join("sbx"))
        .args(["--port", &free_port().to_string()])
        .env("PGFLEET_PG_BIN", "/nonexistent")
        .output()
        .expect("run pgfleet");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("apt-get install postgresql-15"), "{stderr}");
    assert!(stderr.contains("PGFLEET_PG_BIN"), "{stderr}");
    assert!(out.stdout.is_empty(), "no ready line expected");
}
