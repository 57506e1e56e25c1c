//! `pgfleet sandbox` end to end: the built binary, real servers, a real client.

mod common;

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
    /// Its stdout lines after the ready line.
    stdout: mpsc::Receiver<String>,
}

impl Sandbox {
    /// Starts the binary and waits for its ready line; returns it with the line.
    fn start(dir: &Path, port: u16, replicas: u16) -> (Sandbox, String, Duration) {
        Self::start_with(dir, port, replicas, &[])
    }

    /// [`Sandbox::start`] with more arguments (`--shards N`).
    fn start_with(
        dir: &Path,
        port: u16,
        replicas: u16,
        more: &[&str],
    ) -> (Sandbox, String, Duration) {
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
            .args(more)
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
        let sandbox = Sandbox {
            child,
            stderr_log,
            stdout: rx,
        };
        let line = match sandbox.stdout.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(e) => panic!("no ready line ({e}); stderr:\n{}", sandbox.stderr()),
        };
        (sandbox, line, started.elapsed())
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// The next line on stdout (printed with the ready line, so at most a second away).
    fn next_line(&self) -> String {
        self.stdout
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("no further stdout line ({e}); stderr:\n{}", self.stderr()))
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

/// The ports of the sandbox's shard primaries and their replicas (index = shard number), read
/// from the generated config.
struct ShardPorts {
    primaries: Vec<u16>,
    replicas: Vec<Vec<u16>>,
}

fn shard_ports(dir: &Path) -> ShardPorts {
    let config = Config::load(&dir.join("pgfleet.toml")).expect("generated config is valid");
    let sharding = config.databases["app"]
        .sharding
        .as_ref()
        .expect("database app is sharded");
    let mut ports = ShardPorts {
        primaries: vec![],
        replicas: vec![],
    };
    for cluster in &sharding.shards {
        let servers = &config.clusters[cluster].servers;
        let role = |r: ServerRole| {
            servers
                .iter()
                .filter(move |s| s.role == r)
                .map(|s| s.port)
                .collect::<Vec<u16>>()
        };
        let primary = role(ServerRole::Primary);
        assert_eq!(primary.len(), 1, "cluster {cluster}: one primary");
        ports.primaries.push(primary[0]);
        ports.replicas.push(role(ServerRole::Replica));
    }
    ports
}

/// Runs `pgfleet check-config` on the generated file: it must say `ok`.
fn assert_check_config_ok(dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_pgfleet"))
        .arg("check-config")
        .arg(dir.join("pgfleet.toml"))
        .output()
        .expect("run pgfleet check-config");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "check-config failed:\n{stdout}");
    assert!(stdout.trim_end().ends_with(": ok"), "{stdout}");
}

fn count(row: &tokio_postgres::Row) -> i64 {
    row.get(0)
}

/// What one shard primary holds of the demo data, checked against its shard number.
struct ShardContents {
    customers: i64,
    orders: i64,
    countries: Vec<(String, String)>,
}

/// Every customers/orders row of shard `shard` (of `shards`) must be one PostgreSQL's own hash
/// partitioning puts in remainder `shard` (`satisfies_hash_partition` on a helper table
/// partitioned like the shard map), and every order's customer must be on the same shard.
async fn check_shard(port: u16, shard: usize, shards: usize) -> ShardContents {
    let client = connect(&format!("postgres://app:app@127.0.0.1:{port}/app")).await;
    client
        .batch_execute("CREATE TEMP TABLE shard_map (k bigint) PARTITION BY HASH (k)")
        .await
        .expect("helper table");
    let satisfies = |column: &str| {
        format!("satisfies_hash_partition('shard_map'::regclass, {shards}, {shard}, {column})")
    };
    let customers = count(
        &client
            .query_one("SELECT count(*) FROM customers", &[])
            .await
            .expect("customers"),
    );
    let misplaced = count(
        &client
            .query_one(
                &format!(
                    "SELECT count(*) FROM customers WHERE NOT {}",
                    satisfies("id")
                ),
                &[],
            )
            .await
            .expect("customers on their shard"),
    );
    assert_eq!(misplaced, 0, "shard {shard}: customers on the wrong shard");
    let orders = count(
        &client
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .expect("orders"),
    );
    let misplaced = count(
        &client
            .query_one(
                &format!(
                    "SELECT count(*) FROM orders WHERE NOT {}",
                    satisfies("customer_id")
                ),
                &[],
            )
            .await
            .expect("orders on their shard"),
    );
    assert_eq!(misplaced, 0, "shard {shard}: orders on the wrong shard");
    let orphans = count(
        &client
            .query_one(
                "SELECT count(*) FROM orders o \
                 WHERE NOT EXISTS (SELECT FROM customers c WHERE c.id = o.customer_id)",
                &[],
            )
            .await
            .expect("orders with their customer"),
    );
    assert_eq!(
        orphans, 0,
        "shard {shard}: orders whose customer is elsewhere"
    );
    assert!(
        customers > 0 && orders > 0,
        "shard {shard}: {customers} customers, {orders} orders"
    );
    let countries = client
        .query("SELECT code, name FROM countries ORDER BY code", &[])
        .await
        .expect("countries")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    ShardContents {
        customers,
        orders,
        countries,
    }
}

/// The name of customer `id` read directly from the shard primaries: exactly one has it.
async fn customer_on_shards(primaries: &[u16], id: i64) -> (usize, String) {
    let mut found = vec![];
    for (shard, port) in primaries.iter().enumerate() {
        let client = connect(&format!("postgres://app:app@127.0.0.1:{port}/app")).await;
        for row in client
            .query("SELECT name FROM customers WHERE id = $1", &[&id])
            .await
            .expect("customer")
        {
            found.push((shard, row.get::<_, String>(0)));
        }
    }
    assert_eq!(
        found.len(),
        1,
        "customer {id} on exactly one shard: {found:?}"
    );
    found.remove(0)
}

async fn wait_for_customers_on(port: u16, expected: i64) {
    let client = connect(&format!("postgres://app:app@127.0.0.1:{port}/app")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = client
            .query_one("SELECT count(*) FROM customers", &[])
            .await
            .ok()
            .map(|r| count(&r));
        if n == Some(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica {port}: {n:?} customers after 30 s, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_shards_places_every_row_on_its_shard() {
    let dir = temp_dir("shards");
    let data = dir.join("sbx");
    let port = free_port();
    let expected = format!("ready: postgres://app:app@127.0.0.1:{port}/app");
    let url = format!("postgres://app:app@127.0.0.1:{port}/app");

    let (sandbox, line, took) = Sandbox::start_with(&data, port, 1, &["--shards", "2"]);
    eprintln!("sharded first run ready after {took:?}");
    assert_eq!(line, expected);
    assert_check_config_ok(&data);
    let ports = shard_ports(&data);
    assert_eq!(ports.primaries.len(), 2);
    assert!(
        ports.replicas.iter().all(|r| r.len() == 1),
        "one replica per shard"
    );

    // Directly on each shard primary: rows where pgfleet routes them, identical countries.
    let mut shards = vec![];
    for (i, p) in ports.primaries.iter().enumerate() {
        shards.push(check_shard(*p, i, 2).await);
    }
    assert_eq!(shards.iter().map(|s| s.customers).sum::<i64>(), 200);
    assert_eq!(shards.iter().map(|s| s.orders).sum::<i64>(), 1000);
    assert_eq!(shards[0].countries.len(), 10);
    assert_eq!(shards[0].countries, shards[1].countries, "countries differ");
    assert!(
        shards[0]
            .countries
            .iter()
            .any(|(code, name)| code == "JP" && name == "日本"),
        "{:?}",
        shards[0].countries
    );
    for (shard, replicas) in ports.replicas.iter().enumerate() {
        wait_for_customers_on(replicas[0], shards[shard].customers).await;
    }

    // The metadata database on shard0, owned by app.
    let meta = connect(&format!(
        "postgres://app:app@127.0.0.1:{}/pgfleet_meta",
        ports.primaries[0]
    ))
    .await;
    let owner: String = meta
        .query_one(
            "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .await
        .expect("metadata database")
        .get(0);
    assert_eq!(owner, "app");
    drop(meta);

    // Through the proxy: single-shard statements find their rows.
    let (shard_of_42, name_42) = customer_on_shards(&ports.primaries, 42).await;
    eprintln!("customer 42 is on shard {shard_of_42}");
    let client = connect(&url).await;
    let rows = client
        .query("SELECT name FROM customers WHERE id = 42", &[])
        .await
        .expect("single-shard query through the proxy");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), name_42);
    let direct = connect(&format!(
        "postgres://app:app@127.0.0.1:{}/app",
        ports.primaries[shard_of_42]
    ))
    .await;
    let join = "SELECT count(*) FROM customers JOIN orders ON orders.customer_id = customers.id \
                WHERE customers.id = 42";
    let via_proxy = count(
        &client
            .query_one(join, &[])
            .await
            .expect("co-located join through the proxy"),
    );
    let on_shard = count(
        &direct
            .query_one(join, &[])
            .await
            .expect("join on the shard"),
    );
    assert_eq!(via_proxy, on_shard);
    let japan: String = client
        .query_one("SELECT name FROM countries WHERE code = 'JP'", &[])
        .await
        .expect("reference table through the proxy")
        .get(0);
    assert_eq!(japan, "日本");
    drop((client, direct));
    sandbox.terminate();
    let mut all_ports = vec![port];
    all_ports.extend(&ports.primaries);
    all_ports.extend(ports.replicas.iter().flatten());
    assert_refused(&all_ports);

    // The shard count is fixed by the first run.
    let out = Command::new(env!("CARGO_BIN_EXE_pgfleet"))
        .arg("sandbox")
        .arg("--dir")
        .arg(&data)
        .args(["--port", &port.to_string()])
        .output()
        .expect("run pgfleet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "must refuse a sharded dir without --shards"
    );
    assert!(stderr.contains("--shards 2"), "{stderr}");

    // Rerun: clusters and data reused, not loaded again.
    let (sandbox, line, took) = Sandbox::start_with(&data, port, 1, &["--shards", "2"]);
    eprintln!("sharded rerun ready after {took:?}");
    assert_eq!(line, expected);
    let again = shard_ports(&data);
    assert_eq!(
        (&again.primaries, &again.replicas),
        (&ports.primaries, &ports.replicas)
    );
    for (i, p) in again.primaries.iter().enumerate() {
        let contents = check_shard(*p, i, 2).await;
        assert_eq!(
            (contents.customers, contents.orders),
            (shards[i].customers, shards[i].orders),
            "shard {i} after the rerun"
        );
    }
    let client = connect(&url).await;
    let name: String = client
        .query_one("SELECT name FROM customers WHERE id = 42", &[])
        .await
        .expect("single-shard query after the rerun")
        .get(0);
    assert_eq!(name, name_42);
    drop(client);
    sandbox.terminate();
    assert_refused(&all_ports);

    std::fs::remove_dir_all(&dir).expect("remove the sandbox directory");
    let _ = std::fs::remove_file(data.with_extension("stderr"));
}

/// Every row of a simple-protocol query, its columns as text (NULL as `NULL`).
async fn simple_rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<String>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Cross-shard reads of the sandbox's demo data through the proxy (fan-out + merge, issue 4): kept
/// apart from the single-shard test above, so the two features fail separately.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_shards_cross_shard_queries() {
    let dir = temp_dir("xshard");
    let data = dir.join("sbx");
    let port = free_port();
    let (sandbox, line, _) = Sandbox::start_with(&data, port, 0, &["--shards", "2"]);
    assert_eq!(
        line,
        format!("ready: postgres://app:app@127.0.0.1:{port}/app")
    );
    let ports = shard_ports(&data);
    let client = connect(&format!("postgres://app:app@127.0.0.1:{port}/app")).await;

    let total = simple_rows(&client, "SELECT count(*) FROM customers").await;
    assert_eq!(total, [["200"]]);

    // The README's example: per country, the shards' partial counts and sums added up.
    let mut expected: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    for p in &ports.primaries {
        let direct = connect(&format!("postgres://app:app@127.0.0.1:{p}/app")).await;
        for row in direct
            .query(
                "SELECT country, count(*), (sum(amount) * 100)::bigint FROM customers \
                 JOIN orders ON orders.customer_id = customers.id GROUP BY country",
                &[],
            )
            .await
            .expect("per-shard groups")
        {
            let e = expected.entry(row.get(0)).or_default();
            e.0 += row.get::<_, i64>(1);
            e.1 += row.get::<_, i64>(2);
        }
    }
    let rows = simple_rows(
        &client,
        "SELECT country, count(*), sum(amount) FROM customers \
         JOIN orders ON orders.customer_id = customers.id GROUP BY country ORDER BY 2 DESC",
    )
    .await;
    let counts: Vec<i64> = rows.iter().map(|r| r[1].parse().expect("count")).collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "ORDER BY 2 DESC: {rows:?}"
    );
    let got: std::collections::BTreeMap<String, (i64, String)> = rows
        .into_iter()
        .map(|r| (r[0].clone(), (r[1].parse().expect("count"), r[2].clone())))
        .collect();
    let want: std::collections::BTreeMap<String, (i64, String)> = expected
        .into_iter()
        .map(|(country, (n, cents))| (country, (n, format!("{}.{:02}", cents / 100, cents % 100))))
        .collect();
    assert_eq!(got, want);

    // A write on both shards commits with two-phase commit (the sandbox has the metadata
    // database and max_prepared_transactions for it): every row lands on its shard.
    client
        .batch_execute(
            "INSERT INTO customers (id, name, country) VALUES \
             (900001, 'a', 'FR'), (900002, 'b', 'FR'), (900003, 'c', 'FR'), (900004, 'd', 'FR')",
        )
        .await
        .expect("a multi-row INSERT over both shards");
    let mut on_shards = 0i64;
    for p in &ports.primaries {
        let direct = connect(&format!("postgres://app:app@127.0.0.1:{p}/app")).await;
        let n: i64 = direct
            .query_one("SELECT count(*) FROM customers WHERE id > 900000", &[])
            .await
            .expect("count on a shard")
            .get(0);
        on_shards += n;
    }
    assert_eq!(on_shards, 4);
    drop(client);
    sandbox.terminate();
    std::fs::remove_dir_all(&dir).expect("remove the sandbox directory");
    let _ = std::fs::remove_file(data.with_extension("stderr"));
}

/// The demo tenants of `sandbox --tenants`.
const TENANTS: [&str; 2] = ["acme", "globex"];

/// The notes `tenant` starts with, in id order.
fn demo_notes(tenant: &str) -> Vec<(i64, String)> {
    ["first note", "second note", "third note"]
        .iter()
        .zip(1..)
        .map(|(note, id)| (id, format!("{tenant}: {note}")))
        .collect()
}

/// Every row of `notes` (id, body) as `client` sees it, in id order.
async fn notes(client: &tokio_postgres::Client) -> Vec<(i64, String)> {
    client
        .query("SELECT id, body FROM notes ORDER BY id", &[])
        .await
        .expect("SELECT FROM notes")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// A client of `database` through the sandbox's proxy on `port`, as tenant `tenant`
/// (user `app.<tenant>`).
async fn tenant_client(port: u16, database: &str, tenant: &str) -> tokio_postgres::Client {
    let url = format!("postgres://app.{tenant}:app@127.0.0.1:{port}/{database}");
    common::try_connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// `pgfleet tenant --config DIR/pgfleet.toml ARGS`: (success, stdout, stderr).
fn pgfleet_tenant(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pgfleet"))
        .arg("tenant")
        .arg("--config")
        .arg(dir.join("pgfleet.toml"))
        .args(args)
        .env_remove("PGPASSWORD")
        .output()
        .expect("run pgfleet tenant");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The tenant directory (database, name, model, created_at as text), read directly.
async fn directory(primary: u16) -> Vec<(String, String, String, String)> {
    let meta = connect(&format!(
        "postgres://app:app@127.0.0.1:{primary}/pgfleet_meta"
    ))
    .await;
    meta.query(
        "SELECT database, name, model, created_at::text FROM pgfleet.tenants ORDER BY 1, 2",
        &[],
    )
    .await
    .expect("tenant directory")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

/// `--tenants` (issue 5 §7): the schema and row models isolate the demo tenants through the
/// proxy, the database model's tenant databases hold their tenant's notes (checked on the
/// server; through the proxy in `sandbox_tenants_database_model_through_proxy`), the row
/// model's policies are what `pgfleet tenant policies` wants, and a rerun reuses everything.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_tenants_isolate_schema_and_row_models() {
    let dir = temp_dir("tenants");
    let data = dir.join("sbx");
    let port = free_port();

    let (sandbox, line, took) = Sandbox::start_with(&data, port, 0, &["--tenants"]);
    eprintln!("tenants first run ready after {took:?}");
    assert_eq!(
        line,
        format!("ready: postgres://app:app@127.0.0.1:{port}/app")
    );
    let hint: Vec<String> = (0..4).map(|_| sandbox.next_line()).collect();
    assert!(hint[0].starts_with("tenants acme, globex"), "{hint:?}");
    for (line, db) in hint[1..].iter().zip(["saas_schema", "saas_row", "saas_db"]) {
        assert!(
            line.contains(&format!("postgres://app.acme:app@127.0.0.1:{port}/{db} ")),
            "{hint:?}"
        );
    }
    assert_check_config_ok(&data);
    let config = Config::load(&data.join("pgfleet.toml")).expect("generated config");
    for (db, model) in [
        ("saas_schema", "schema"),
        ("saas_row", "row"),
        ("saas_db", "database"),
    ] {
        let tenancy = config.databases[db].tenancy.as_ref().expect("tenancy");
        assert_eq!(tenancy.model.as_str(), model, "{db}");
    }
    let (primary, _) = server_ports(&data);

    // Schema and row models through the proxy: each tenant sees its own notes only.
    for db in ["saas_schema", "saas_row"] {
        for tenant in TENANTS {
            let c = tenant_client(port, db, tenant).await;
            assert_eq!(notes(&c).await, demo_notes(tenant), "{db} as app.{tenant}");
        }
    }
    let acme = tenant_client(port, "saas_schema", "acme").await;
    let e = acme
        .query("SELECT body FROM tenant_globex.notes", &[])
        .await
        .expect_err("another tenant's schema");
    assert_eq!(common::sqlstate(&e), "42501", "{}", common::message(&e));
    acme.execute(
        "INSERT INTO notes (id, body) VALUES (4, 'acme: added through the proxy')",
        &[],
    )
    .await
    .expect("a tenant writes its own notes");
    let acme = tenant_client(port, "saas_row", "acme").await;
    let e = acme
        .execute(
            "INSERT INTO notes (tenant_id, id, body) VALUES ('globex', 9, 'not acme''s')",
            &[],
        )
        .await
        .expect_err("a row of another tenant");
    assert_eq!(common::sqlstate(&e), "42501", "{}", common::message(&e));
    drop(acme);

    // Database model, directly on the server: one database per tenant, with its notes.
    for tenant in TENANTS {
        let c = connect(&format!(
            "postgres://app:app@127.0.0.1:{primary}/saas_db_{tenant}"
        ))
        .await;
        assert_eq!(notes(&c).await, demo_notes(tenant), "saas_db_{tenant}");
    }

    // The row model's table: owned by saas_owner, not by the proxy's role, with FORCE; the
    // policies are the ones `pgfleet tenant policies` checks for.
    let row = connect(&format!("postgres://app:app@127.0.0.1:{primary}/saas_row")).await;
    let facts = row
        .query_one(
            "SELECT pg_get_userbyid(relowner)::text, relrowsecurity, relforcerowsecurity \
             FROM pg_class WHERE oid = 'public.notes'::regclass",
            &[],
        )
        .await
        .expect("notes in saas_row");
    assert_eq!(
        (facts.get::<_, String>(0), facts.get(1), facts.get(2)),
        ("saas_owner".to_string(), true, true)
    );
    drop(row);
    let (ok, stdout, stderr) = pgfleet_tenant(&data, &["--database", "saas_row", "policies"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("1 table(s) ok, 0 need fixing"), "{stdout}");
    assert!(!stderr.contains("warning"), "{stderr}");

    // The tenant directory: both tenants in every model.
    let dir_rows = directory(primary).await;
    let names: Vec<(&str, &str, &str)> = dir_rows
        .iter()
        .map(|(d, n, m, _)| (d.as_str(), n.as_str(), m.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("saas_db", "acme", "database"),
            ("saas_db", "globex", "database"),
            ("saas_row", "acme", "row"),
            ("saas_row", "globex", "row"),
            ("saas_schema", "acme", "schema"),
            ("saas_schema", "globex", "schema"),
        ]
    );
    sandbox.terminate();

    // Rerun: tenants, notes and policies reused; nothing created or seeded again.
    let (sandbox, line, took) = Sandbox::start_with(&data, port, 0, &["--tenants"]);
    eprintln!("tenants rerun ready after {took:?}");
    assert_eq!(
        line,
        format!("ready: postgres://app:app@127.0.0.1:{port}/app")
    );
    assert!(
        !sandbox.stderr().contains("created the tenant"),
        "{}",
        sandbox.stderr()
    );
    assert_eq!(
        directory(primary).await,
        dir_rows,
        "the same directory entries"
    );
    let acme = tenant_client(port, "saas_schema", "acme").await;
    let mut expected = demo_notes("acme");
    expected.push((4, "acme: added through the proxy".into()));
    assert_eq!(notes(&acme).await, expected);
    drop(acme);
    for tenant in TENANTS {
        let c = tenant_client(port, "saas_row", tenant).await;
        assert_eq!(
            notes(&c).await,
            demo_notes(tenant),
            "saas_row as app.{tenant}"
        );
        let c = connect(&format!(
            "postgres://app:app@127.0.0.1:{primary}/saas_db_{tenant}"
        ))
        .await;
        assert_eq!(notes(&c).await, demo_notes(tenant), "saas_db_{tenant}");
    }
    sandbox.terminate();

    std::fs::remove_dir_all(&dir).expect("remove the sandbox directory");
    let _ = std::fs::remove_file(data.with_extension("stderr"));
}

/// The database model of `--tenants` through the proxy: app.acme and app.globex reach their own
/// tenant database via `saas_db`. Needs the proxy's database-model routing.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_tenants_database_model_through_proxy() {
    let dir = temp_dir("tenantdb");
    let data = dir.join("sbx");
    let port = free_port();
    let (sandbox, line, _) = Sandbox::start_with(&data, port, 0, &["--tenants"]);
    assert_eq!(
        line,
        format!("ready: postgres://app:app@127.0.0.1:{port}/app")
    );
    let (primary, _) = server_ports(&data);
    for tenant in TENANTS {
        let c = tenant_client(port, "saas_db", tenant).await;
        assert_eq!(
            notes(&c).await,
            demo_notes(tenant),
            "saas_db as app.{tenant}"
        );
        let db: String = c
            .query_one("SELECT current_database()::text", &[])
            .await
            .expect("current_database")
            .get(0);
        assert_eq!(db, format!("saas_db_{tenant}"));
        c.execute(
            "INSERT INTO notes (id, body) VALUES (4, $1)",
            &[&format!("{tenant}: through the proxy")],
        )
        .await
        .expect("a tenant writes to its database");
    }
    // Each write landed in its tenant's database.
    for tenant in TENANTS {
        let c = connect(&format!(
            "postgres://app:app@127.0.0.1:{primary}/saas_db_{tenant}"
        ))
        .await;
        let last = notes(&c).await.pop().expect("notes");
        assert_eq!(last, (4, format!("{tenant}: through the proxy")));
    }
    sandbox.terminate();
    std::fs::remove_dir_all(&dir).expect("remove the sandbox directory");
    let _ = std::fs::remove_file(data.with_extension("stderr"));
}
