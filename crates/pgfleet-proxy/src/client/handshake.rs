//! From accept to an authenticated client: the startup packet (SSL and GSS encryption declined until
//! TLS lands), cancel requests, authentication, then the admin console or a pooled session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use pgfleet_config::ADMIN_DATABASE;
use pgfleet_wire::backend::{
    encode_backend_key_data, encode_parameter_status, encode_ready_for_query, TxStatus,
};
use pgfleet_wire::startup::encode_cancel;
use pgfleet_wire::{split_startup, StartupPacket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::auth_flow::authenticate;
use super::ClientConn;
use crate::console::run_console;
use crate::pools::{DatabasePools, PoolEntry};
use crate::runtime::Runtime;
use crate::session::{Session, SessionParams};
use crate::stats::Stats;
use crate::ProxyError;

/// A client must finish startup and authentication within this time.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

enum First {
    Startup(Vec<(String, String)>),
    Done,
}

/// Serves one accepted TCP connection until it closes; `_slot` counts it as open until then.
pub(crate) async fn handle_connection(
    rt: Arc<Runtime>,
    mut stream: TcpStream,
    peer: SocketAddr,
    _slot: crate::listen::Slot,
) {
    let _ = stream.set_nodelay(true);
    let max = rt.config().proxy.max_message_size;
    let mut rbuf = BytesMut::with_capacity(512);
    let first =
        tokio::time::timeout(LOGIN_TIMEOUT, read_startup(&rt, &mut stream, &mut rbuf)).await;
    let params = match first {
        Ok(Ok(First::Startup(p))) => p,
        Ok(Ok(First::Done)) => return,
        Ok(Err(e)) => {
            Stats::add(&rt.stats().clients_refused, 1);
            let mut c = ClientConn::new(stream, rbuf, max);
            if !matches!(e, ProxyError::ClientIo(_)) {
                c.fatal(e.sqlstate(), &e.client_message()).await;
            }
            return;
        }
        Err(_) => return,
    };
    let mut client = ClientConn::new(stream, rbuf, max);
    match tokio::time::timeout(LOGIN_TIMEOUT, login(&rt, &mut client, &params)).await {
        Ok(Ok(Some(pools))) => {
            let user = param(&params, "user").unwrap_or_default();
            let database = param(&params, "database").unwrap_or(user);
            // `app.acme` on a database that names tenants by user name: user `app`, tenant `acme`.
            let (user, user_tenant) =
                crate::tenancy::identify::split_user(&rt.config(), user, database);
            let app = param(&params, "application_name").unwrap_or_default();
            let registered = rt.clients.register(peer, user, database, app);
            Stats::add(&rt.stats().clients_total, 1);
            let session_params = SessionParams::from_startup(&params);
            if let Err(e) = greet(
                &rt,
                &mut client,
                pools.endpoint(pools.configured_primary),
                &session_params,
                registered.info.cancel_key,
            )
            .await
            {
                tracing::debug!(client = registered.info.id, error = %e, "login failed");
                client.fatal(e.sqlstate(), &e.client_message()).await;
                return;
            }
            let mut session =
                Session::new(&rt, client, registered.info.clone(), pools, session_params);
            session.set_user_tenant(user_tenant.map(str::to_owned));
            let served = session.serve().await;
            session.finish(served).await;
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) => {
            Stats::add(&rt.stats().clients_refused, 1);
            tracing::debug!(%peer, error = %e, "client refused");
            if !matches!(e, ProxyError::ClientIo(_)) {
                client.fatal(e.sqlstate(), &e.client_message()).await;
            }
        }
        Err(_) => {
            client
                .fatal("08006", "pgfleet: authentication timed out")
                .await
        }
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    StartupPacket::param(params, name)
}

async fn read_startup(
    rt: &Runtime,
    stream: &mut TcpStream,
    rbuf: &mut BytesMut,
) -> Result<First, ProxyError> {
    loop {
        match split_startup(rbuf)? {
            Some(StartupPacket::SslRequest) | Some(StartupPacket::GssEncRequest) => {
                // Bytes already queued behind an encryption request would be read as if they had been
                // encrypted (CVE-2021-23214): refuse them.
                if !rbuf.is_empty() {
                    return Err(ProxyError::Client {
                        code: "08P01",
                        message: "received unencrypted data after SSL request".into(),
                    });
                }
                stream.write_all(b"N").await.map_err(ProxyError::ClientIo)?;
                continue;
            }
            Some(StartupPacket::Cancel { pid, secret }) => {
                forward_cancel(rt, (pid, secret)).await;
                return Ok(First::Done);
            }
            Some(StartupPacket::Startup { params }) => return Ok(First::Startup(params)),
            None => {}
        }
        if stream.read_buf(rbuf).await.map_err(ProxyError::ClientIo)? == 0 {
            return Ok(First::Done);
        }
    }
}

/// Forwards a cancel request to the server connection currently running the client's query.
async fn forward_cancel(rt: &Runtime, key: (i32, i32)) {
    let Some(client) = rt.clients.by_cancel_key(key) else {
        return;
    };
    let Some((_gate, target)) = client.cancel_gate(Duration::from_secs(1)).await else {
        return;
    };
    Stats::add(&rt.stats().cancels, 1);
    if let Ok(mut s) = TcpStream::connect((target.host.as_str(), target.port)).await {
        let mut out = BytesMut::new();
        encode_cancel(&mut out, target.key.0, target.key.1);
        let _ = s.write_all(&out).await;
        // PostgreSQL closes the connection after reading a cancel request; wait for that so the
        // cancel has been delivered before we return.
        let mut sink = [0u8; 16];
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut sink)).await;
    }
}

/// Checks the startup parameters and authenticates. `Ok(None)` when the connection was fully served
/// here (the admin console).
async fn login(
    rt: &Arc<Runtime>,
    client: &mut ClientConn,
    params: &[(String, String)],
) -> Result<Option<Arc<DatabasePools>>, ProxyError> {
    let config = rt.config();
    let Some(user) = param(params, "user") else {
        return Err(ProxyError::Client {
            code: "28000",
            message: "no PostgreSQL user name specified in startup packet".into(),
        });
    };
    if param(params, "replication").is_some_and(|v| v != "false" && v != "0" && v != "off") {
        return Err(ProxyError::Client {
            code: "0A000",
            message: "replication connections are not supported through pgfleet".into(),
        });
    }
    let database = param(params, "database").unwrap_or(user);
    // md5 hashes the name the client sent (`app.acme`); the credentials are `app`'s.
    let (base_user, _) = crate::tenancy::identify::split_user(&config, user, database);
    let user_config = config.users.get(base_user);
    authenticate(client, &rt.verifiers, user, user_config).await?;
    let user = base_user;
    if database == ADMIN_DATABASE {
        if !user_config.is_some_and(|u| u.admin) {
            return Err(ProxyError::Client {
                code: "28000",
                message: format!(
                    "user \"{user}\" may not use the admin console (set users.{user}.admin = true)"
                ),
            });
        }
        run_console(rt, client).await;
        return Ok(None);
    }
    if !config.databases.contains_key(database) {
        return Err(ProxyError::Client {
            code: "3D000",
            message: format!("database \"{database}\" does not exist"),
        });
    }
    rt.pools
        .get(&config, rt.clusters(), user, database)
        .map(Some)
}

/// Sends the server's parameters (with the client's own values where it set them), a cancel key and
/// ReadyForQuery. The first client of a pool waits for one server connection to learn them, which
/// also reports a server that is down as a clear error at login.
async fn greet(
    rt: &Runtime,
    client: &mut ClientConn,
    entry: &PoolEntry,
    params: &SessionParams,
    cancel_key: (i32, i32),
) -> Result<(), ProxyError> {
    let known = entry.server_params.lock().clone();
    let server_params = match known {
        Some(p) => p,
        None => {
            let guard = crate::session::checkout(rt, entry).await?;
            let p = guard.startup_params.clone();
            *entry.server_params.lock() = Some(p.clone());
            p
        }
    };
    let mut out = BytesMut::new();
    for (name, value) in &server_params {
        let value = params.reported_value(name).unwrap_or(value);
        encode_parameter_status(&mut out, name, value);
    }
    encode_backend_key_data(&mut out, cancel_key.0, cancel_key.1);
    encode_ready_for_query(&mut out, TxStatus::Idle);
    client.write_all(&out).await
}
