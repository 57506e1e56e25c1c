//! Client authentication (SCRAM-SHA-256 with a plain password or a stored verifier, md5, trust) and
//! server authentication (SCRAM, md5, trust).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use pgfleet_testkit::ClusterOptions;

fn users_config(cluster: &pgfleet_testkit::Cluster) -> String {
    let verifier = pgfleet_proxy::auth::ScramVerifier::generate(b"secret").to_text();
    format!(
        r#"{base}
[users.stored]
password = "{verifier}"
server_user = "app"
server_password = "app"

[users.legacy]
password = "md5{md5}"
auth_method = "md5"
server_user = "app"
server_password = "app"

[users.plainmd5]
password = "pw"
auth_method = "md5"
server_user = "app"
server_password = "app"

[users.open]
auth_method = "trust"
server_user = "app"
server_password = "app"
"#,
        base = config_text(cluster, "pool_size = 2"),
        md5 =
            pgfleet_proxy::auth::md5_password_hash("legacy", "legacypw").trim_start_matches("md5"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_auth_method_works_and_wrong_passwords_fail_at_once() {
    let cluster = app_cluster();
    let proxy = TestProxy::start(&users_config(&cluster)).await;
    for (user, pw) in [
        ("app", "app"),
        ("stored", "secret"),
        ("legacy", "legacypw"),
        ("plainmd5", "pw"),
        ("open", "anything"),
    ] {
        let c = proxy.connect_as(user, pw, "app").await;
        assert_eq!(
            c.query_one("SELECT current_user::text", &[])
                .await
                .unwrap()
                .get::<_, String>(0),
            "app",
            "{user}"
        );
    }
    for (user, pw) in [
        ("app", "wrong"),
        ("stored", "nope"),
        ("legacy", "x"),
        ("nosuchuser", "x"),
    ] {
        let start = Instant::now();
        let e = try_connect(&proxy.conn_str(user, pw, "app"))
            .await
            .err()
            .unwrap();
        assert_eq!(sqlstate(&e), "28P01", "{user}");
        assert_eq!(
            message(&e),
            format!("password authentication failed for user \"{user}\"")
        );
        assert!(start.elapsed() < Duration::from_secs(2));
    }
    let e = try_connect(&proxy.conn_str("app", "app", "nodb"))
        .await
        .err()
        .unwrap();
    assert_eq!(sqlstate(&e), "3D000");
    let e = try_connect(&proxy.conn_str("app", "app", "pgfleet"))
        .await
        .err()
        .unwrap();
    assert_eq!(sqlstate(&e), "28000", "only admins may use the console");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_md5_and_trust_logins() {
    let opts = ClusterOptions::default()
        .setting("password_encryption", "md5")
        .hba_line("local all all trust")
        .hba_line("host all postgres 127.0.0.1/32 trust")
        .hba_line("host all app 127.0.0.1/32 md5")
        .hba_line("host all all 127.0.0.1/32 trust");
    let cluster = pgfleet_testkit::Cluster::start_with(opts).unwrap();
    cluster
        .psql("CREATE ROLE app LOGIN PASSWORD 'app'")
        .unwrap();
    cluster.psql("CREATE ROLE nopw LOGIN").unwrap();
    cluster.psql("CREATE DATABASE app OWNER app").unwrap();
    let text = format!(
        "{}\n[users.nopw]\npassword = \"x\"\nserver_password = \"ignored\"\n",
        config_text(&cluster, "pool_size = 1")
    );
    let proxy = TestProxy::start(&text).await;
    let c = proxy.connect().await;
    assert_eq!(
        c.query_one("SELECT 7", &[]).await.unwrap().get::<_, i32>(0),
        7
    );
    let c = proxy.connect_as("nopw", "x", "app").await;
    assert_eq!(
        c.query_one("SELECT current_user::text", &[])
            .await
            .unwrap()
            .get::<_, String>(0),
        "nopw"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_server_password_is_a_clear_login_error() {
    let cluster = app_cluster();
    let text = format!(
        "{}\n[users.bad]\npassword = \"b\"\nserver_user = \"app\"\nserver_password = \"wrong\"\n",
        config_text(&cluster, "")
    );
    let proxy = TestProxy::start(&text).await;
    let e = try_connect(&proxy.conn_str("bad", "b", "app"))
        .await
        .err()
        .unwrap();
    let m = message(&e);
    assert!(
        m.contains("refused login") && m.contains("password authentication failed"),
        "{m}"
    );
    proxy.stop().await;
}
