//! Client authentication against the users in the config (PostgreSQL docs 55.2.1, 55.3): SCRAM-SHA-256,
//! md5 or trust. Unknown users go through a SCRAM exchange with a mock verifier and fail like a wrong
//! password, so user names cannot be probed.

use std::collections::HashMap;

use bytes::BytesMut;
use parking_lot::Mutex;
use pgfleet_config::{AuthMethod, Secret, UserConfig};
use pgfleet_wire::backend::{encode_auth, encode_auth_sasl_scram};
use pgfleet_wire::frontend::{decode_password, decode_sasl_initial};
use pgfleet_wire::tag::frontend as t;
use pgfleet_wire::Frame;

use super::ClientConn;
use crate::auth::{
    md5_salt, md5_verify, password_failed_message, AuthError, ScramServer, ScramVerifier, StoredMd5,
};
use crate::ProxyError;

/// SCRAM verifiers derived from plain-text passwords, so PBKDF2 runs once per user, not per login.
#[derive(Default)]
pub struct VerifierCache {
    map: Mutex<HashMap<(String, String), ScramVerifier>>,
}

impl VerifierCache {
    fn verifier(&self, user: &str, secret: Option<&Secret>) -> Result<ScramVerifier, AuthError> {
        match secret {
            Some(Secret::ScramVerifier(text)) => ScramVerifier::parse(text),
            Some(Secret::Plain(p)) => {
                let key = (user.to_owned(), p.clone());
                let mut map = self.map.lock();
                Ok(map
                    .entry(key)
                    .or_insert_with(|| ScramVerifier::generate(p.as_bytes()))
                    .clone())
            }
            // Validated config never pairs SCRAM with an md5 hash or no password; fail closed.
            Some(Secret::Md5(_)) | None => Ok(ScramVerifier::mock(user, b"pgfleet")),
        }
    }
}

fn auth_error(e: AuthError, user: &str) -> ProxyError {
    ProxyError::Client {
        code: e.sqlstate(),
        message: e.client_message(user),
    }
}

fn wrong_password(user: &str) -> ProxyError {
    ProxyError::Client {
        code: "28P01",
        message: password_failed_message(user),
    }
}

async fn read_password_frame(client: &mut ClientConn) -> Result<Frame, ProxyError> {
    let frame = client
        .read_frame()
        .await?
        .ok_or_else(|| ProxyError::Client {
            code: "08006",
            message: "client closed the connection during authentication".into(),
        })?;
    if frame.tag() != t::PASSWORD {
        return Err(ProxyError::Client {
            code: "08P01",
            message: format!(
                "expected a password response during authentication, got message type '{}'",
                char::from(frame.tag()).escape_default()
            ),
        });
    }
    Ok(frame)
}

/// Runs the exchange for `user` (None when the user is not in the config). Sends AuthenticationOk on
/// success.
pub(crate) async fn authenticate(
    client: &mut ClientConn,
    cache: &VerifierCache,
    user_name: &str,
    user: Option<&UserConfig>,
) -> Result<(), ProxyError> {
    let method = user
        .map(|u| u.auth_method)
        .unwrap_or(AuthMethod::ScramSha256);
    let mut out = BytesMut::new();
    match method {
        AuthMethod::Trust => {}
        AuthMethod::Md5 => {
            let salt = md5_salt();
            encode_auth(&mut out, 5, &salt);
            client.write_all(&out).await?;
            out.clear();
            let frame = read_password_frame(client).await?;
            let response = decode_password(&frame)?;
            let stored = match user.and_then(|u| u.password.as_ref()) {
                Some(Secret::Plain(p)) => StoredMd5::Plain(p),
                Some(Secret::Md5(h)) => StoredMd5::Hash(h),
                _ => return Err(wrong_password(user_name)),
            };
            if user.is_none() || !md5_verify(stored, user_name, salt, response) {
                return Err(wrong_password(user_name));
            }
        }
        AuthMethod::ScramSha256 => {
            let verifier = match user {
                Some(u) => cache
                    .verifier(user_name, u.password.as_ref())
                    .map_err(|e| auth_error(e, user_name))?,
                None => ScramVerifier::mock(user_name, b"pgfleet"),
            };
            let mut scram = ScramServer::new(verifier);
            encode_auth_sasl_scram(&mut out);
            client.write_all(&out).await?;
            out.clear();
            let frame = read_password_frame(client).await?;
            let (mechanism, data) = decode_sasl_initial(&frame)?;
            let server_first = scram
                .client_first(mechanism, data)
                .map_err(|e| auth_error(e, user_name))?;
            encode_auth(&mut out, 11, &server_first);
            client.write_all(&out).await?;
            out.clear();
            let frame = read_password_frame(client).await?;
            let server_final = scram
                .client_final(frame.body())
                .map_err(|e| auth_error(e, user_name))?;
            if user.is_none() {
                return Err(wrong_password(user_name));
            }
            encode_auth(&mut out, 12, &server_final);
        }
    }
    encode_auth(&mut out, 0, &[]);
    client.write_all(&out).await
}
