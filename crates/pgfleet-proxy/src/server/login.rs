//! Opening and authenticating a server connection (PostgreSQL docs 55.2.1 "Start-up", 55.3 "SASL
//! Authentication"). The client side of SCRAM and md5 comes from `postgres-protocol`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use pgfleet_wire::backend::{
    decode_auth, decode_backend_key_data, decode_parameter_status, AuthRequest, ErrorFields,
};
use pgfleet_wire::frontend::{encode_password, encode_sasl_initial, encode_sasl_response};
use pgfleet_wire::startup::encode_startup;
use pgfleet_wire::tag::backend as b;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use tokio::net::TcpStream;

use super::conn::ServerConn;
use super::{ServerError, ServerInfo, ServerTarget};
use crate::clients::CancelTarget;

static NEXT_SERVER_ID: AtomicU64 = AtomicU64::new(1);

/// Connects, logs in and reads the server's parameters up to the first ReadyForQuery.
pub(crate) async fn login(
    target: &ServerTarget,
    prepared_capacity: usize,
) -> Result<ServerConn, ServerError> {
    let addr = format!("{}:{}", target.host, target.port);
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|source| ServerError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let pool = (target.pool_user.clone(), target.pool_database.clone());
    let info = Arc::new(ServerInfo::new(
        NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed),
        addr.clone(),
        pool,
        0,
    ));
    let mut conn = ServerConn::new(
        stream,
        BytesMut::with_capacity(8192),
        info,
        Arc::new(CancelTarget {
            host: target.host.clone(),
            port: target.port,
            key: (0, 0),
        }),
        Vec::new(),
        prepared_capacity,
    );

    let mut out = BytesMut::new();
    encode_startup(
        &mut out,
        &[
            ("user", target.user.as_str()),
            ("database", target.database.as_str()),
            ("client_encoding", "UTF8"),
        ],
    );
    conn.write_all(&out).await?;

    let mut scram: Option<ScramSha256> = None;
    let mut params = Vec::new();
    let mut key = (0, 0);
    loop {
        let frame = conn.read_frame().await?;
        let proto = |source| ServerError::Protocol {
            addr: addr.clone(),
            source,
        };
        match frame.tag() {
            b::AUTHENTICATION => {
                let mut out = BytesMut::new();
                match decode_auth(frame.body()).map_err(proto)? {
                    AuthRequest::Ok => continue,
                    AuthRequest::Cleartext => encode_password(&mut out, password(target, &addr)?),
                    AuthRequest::Md5(salt) => {
                        let hash = md5_hash(
                            target.user.as_bytes(),
                            password(target, &addr)?.as_bytes(),
                            salt,
                        );
                        encode_password(&mut out, &hash);
                    }
                    AuthRequest::Sasl(mechs) => {
                        if !mechs.iter().any(|m| m == SCRAM_SHA_256) {
                            return Err(ServerError::UnsupportedAuth {
                                addr,
                                method: mechs.join(","),
                            });
                        }
                        let s = ScramSha256::new(
                            password(target, &addr)?.as_bytes(),
                            ChannelBinding::unsupported(),
                        );
                        encode_sasl_initial(&mut out, SCRAM_SHA_256, s.message());
                        scram = Some(s);
                    }
                    AuthRequest::SaslContinue(data) => {
                        let s = scram.as_mut().ok_or(ServerError::Unexpected {
                            addr: addr.clone(),
                            tag: b::AUTHENTICATION,
                        })?;
                        s.update(&data).map_err(|e| ServerError::Scram {
                            addr: addr.clone(),
                            message: e.to_string(),
                        })?;
                        encode_sasl_response(&mut out, s.message());
                    }
                    AuthRequest::SaslFinal(data) => {
                        let mut s = scram.take().ok_or(ServerError::Unexpected {
                            addr: addr.clone(),
                            tag: b::AUTHENTICATION,
                        })?;
                        s.finish(&data).map_err(|e| ServerError::Scram {
                            addr: addr.clone(),
                            message: e.to_string(),
                        })?;
                        continue;
                    }
                    AuthRequest::Unsupported(code) => {
                        return Err(ServerError::UnsupportedAuth {
                            addr,
                            method: format!("code {code}"),
                        })
                    }
                }
                conn.write_all(&out).await?;
            }
            b::PARAMETER_STATUS => {
                let (k, v) = decode_parameter_status(frame.body()).map_err(proto)?;
                params.push((k.to_owned(), v.to_owned()));
            }
            b::BACKEND_KEY_DATA => key = decode_backend_key_data(frame.body()).map_err(proto)?,
            b::NOTICE_RESPONSE | b::NEGOTIATE_PROTOCOL_VERSION => {}
            b::ERROR_RESPONSE => {
                let fields = ErrorFields::decode(frame.body()).map_err(proto)?;
                return Err(ServerError::Login { addr, fields });
            }
            b::READY_FOR_QUERY => break,
            tag => return Err(ServerError::Unexpected { addr, tag }),
        }
    }
    let info = Arc::new(ServerInfo::new(
        conn.info.id,
        addr,
        (target.pool_user.clone(), target.pool_database.clone()),
        key.0,
    ));
    conn.info = info;
    conn.cancel = Arc::new(CancelTarget {
        host: target.host.clone(),
        port: target.port,
        key,
    });
    conn.startup_params = params;
    Ok(conn)
}

fn password<'a>(target: &'a ServerTarget, addr: &str) -> Result<&'a str, ServerError> {
    target
        .password
        .as_deref()
        .ok_or_else(|| ServerError::NoPassword {
            addr: addr.to_owned(),
            user: target.user.clone(),
        })
}
