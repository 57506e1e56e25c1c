//! A primary with streaming replicas from the test kit, and the pgfleet config in front of them.

use std::time::{Duration, Instant};

use pgfleet_testkit::{Cluster, TestProxy};

use super::{app_cluster, config_text};

/// A primary (with table `t(id serial, v text)` owned by `app`) and its replicas.
pub struct Fleet {
    pub primary: Cluster,
    pub replicas: Vec<Cluster>,
}

pub fn fleet(replicas: usize) -> Fleet {
    fleet_with(&vec![pgfleet_testkit::ClusterOptions::default(); replicas])
}

/// A primary with table `t` and one replica per option set.
pub fn fleet_with(replicas: &[pgfleet_testkit::ClusterOptions]) -> Fleet {
    let primary = app_cluster();
    primary
        .psql_db(
            "app",
            "CREATE TABLE t(id serial primary key, v text); ALTER TABLE t OWNER TO app",
        )
        .unwrap();
    let replicas = replicas
        .iter()
        .map(|o| primary.replica_with(o.clone()).unwrap())
        .collect();
    Fleet { primary, replicas }
}

pub fn fleet_config(f: &Fleet, cluster_extra: &str) -> String {
    let mut servers = vec![format!(
        "{{ host = \"127.0.0.1\", port = {}, role = \"primary\" }}",
        f.primary.port()
    )];
    for r in &f.replicas {
        servers.push(format!(
            "{{ host = \"127.0.0.1\", port = {}, role = \"replica\" }}",
            r.port()
        ));
    }
    config_text(&f.primary, "pool_size = 4").replace(
        &format!(
            "servers = [{{ host = \"127.0.0.1\", port = {}, role = \"primary\" }}]",
            f.primary.port()
        ),
        &format!("servers = [{}]\n{cluster_extra}", servers.join(", ")),
    )
}

pub async fn port_of(c: &tokio_postgres::Client, sql: &str) -> i32 {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Waits until the monitor has seen every endpoint (so routing uses observed roles).
pub async fn settled(proxy: &TestProxy) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let clusters = proxy.rt.clusters().list();
        // The monitor registers its cluster when the proxy task starts: wait for that too.
        let all_seen = !clusters.is_empty()
            && clusters.iter().all(|s| {
                let v = s.view.read();
                v.primary_lsn.is_some()
                    && v.endpoints.iter().all(|e| {
                        e.observed_role != pgfleet_proxy::replication::ObservedRole::Unknown
                    })
            })
            && proxy
                .rt
                .clusters()
                .list()
                .iter()
                .all(|s| !s.catalog.load().safe.is_empty());
        if all_seen {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for s in proxy.rt.clusters().list() {
        eprintln!(
            "view: {:?} catalog {}",
            *s.view.read(),
            s.catalog.load().safe.len()
        );
    }
    panic!("the replication monitor did not observe every endpoint within 30s");
}
