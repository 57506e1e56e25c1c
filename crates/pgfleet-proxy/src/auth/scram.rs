//! Server side of SCRAM-SHA-256, as PostgreSQL runs it (PostgreSQL docs 55.3 "SASL
//! Authentication"; RFC 5802, RFC 7677; PostgreSQL's `auth-scram.c`).
//!
//! The I/O code drives it like this:
//!
//! 1. send `AuthenticationSASL` listing [`SCRAM_SHA_256`] only (never `-PLUS`: pgfleet does
//!    not implement channel binding);
//! 2. `SASLInitialResponse` → [`ScramServer::client_first`] → send the returned bytes in
//!    `AuthenticationSASLContinue`;
//! 3. `SASLResponse` → [`ScramServer::client_final`] → send the returned bytes in
//!    `AuthenticationSASLFinal`, then `AuthenticationOk`.
//!
//! Any `Err` ends the exchange: send `ErrorResponse` with [`AuthError::sqlstate`] and
//! [`AuthError::client_message`] and close the connection.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;

use super::crypto::{ct_eq, hmac_sha256, sha256};
use super::error::AuthError;
use super::verifier::ScramVerifier;

/// The only SASL mechanism pgfleet offers to clients.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// Random bytes in the server's part of the nonce (`SCRAM_RAW_NONCE_LEN` in PostgreSQL).
const SERVER_NONCE_LEN: usize = 18;

/// The GS2 channel-binding flag the client sent in client-first-message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gs2Flag {
    /// `n`: the client does not support channel binding.
    NotSupported,
    /// `y`: the client supports it but thinks the server does not. Accepted because pgfleet
    /// never advertises `SCRAM-SHA-256-PLUS`; were it to, `y` would signal a downgrade attack.
    NotOffered,
}

impl Gs2Flag {
    /// base64 of the GS2 header the client must echo in the `c=` attribute.
    fn expected_cbind(self) -> &'static [u8] {
        match self {
            Gs2Flag::NotSupported => b"biws", // base64("n,,")
            Gs2Flag::NotOffered => b"eSws",   // base64("y,,")
        }
    }
}

/// Where the exchange is.
#[derive(Debug)]
enum State {
    /// Waiting for client-first-message.
    Initial,
    /// server-first-message sent; waiting for client-final-message.
    ServerFirstSent {
        flag: Gs2Flag,
        client_first_bare: Vec<u8>,
        server_first: Vec<u8>,
        nonce: Vec<u8>,
    },
    /// The proof was verified; the exchange is over.
    Authenticated,
    /// An error ended the exchange; no further message is accepted.
    Failed,
}

/// One SCRAM-SHA-256 exchange with one client.
#[derive(Debug)]
pub struct ScramServer {
    verifier: ScramVerifier,
    state: State,
    /// Server nonce part to use instead of random bytes (known-answer tests only).
    fixed_server_nonce: Option<String>,
}

impl ScramServer {
    /// Starts an exchange for a user whose stored secret is `verifier`.
    ///
    /// For a user that does not exist, pass [`ScramVerifier::mock`] so the client cannot tell
    /// the difference before the end of the exchange.
    pub fn new(verifier: ScramVerifier) -> Self {
        ScramServer {
            verifier,
            state: State::Initial,
            fixed_server_nonce: None,
        }
    }

    /// Test-only: uses `server_nonce` instead of 18 random bytes, to replay RFC examples.
    #[cfg(test)]
    fn with_server_nonce(verifier: ScramVerifier, server_nonce: &str) -> Self {
        ScramServer {
            fixed_server_nonce: Some(server_nonce.to_string()),
            ..ScramServer::new(verifier)
        }
    }

    /// True once [`ScramServer::client_final`] has accepted the client's proof.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated)
    }

    /// Handles `SASLInitialResponse`: the chosen mechanism and client-first-message.
    /// Returns server-first-message (`r=<nonce>,s=<salt>,i=<iterations>`).
    ///
    /// The user name in the message (`n=`) is ignored, as PostgreSQL does: the user is the one
    /// from the startup packet.
    pub fn client_first(
        &mut self,
        sasl_mechanism: &str,
        data: &[u8],
    ) -> Result<Vec<u8>, AuthError> {
        if !matches!(
            std::mem::replace(&mut self.state, State::Failed),
            State::Initial
        ) {
            return Err(AuthError::UnexpectedMessage(
                "client-first-message already received",
            ));
        }
        if sasl_mechanism != SCRAM_SHA_256 {
            return Err(AuthError::UnsupportedMechanism);
        }
        let first = parse_client_first(data)?;

        let mut nonce = first.client_nonce.to_vec();
        match &self.fixed_server_nonce {
            Some(fixed) => nonce.extend_from_slice(fixed.as_bytes()),
            None => {
                let mut raw = [0u8; SERVER_NONCE_LEN];
                rand::thread_rng().fill_bytes(&mut raw);
                nonce.extend_from_slice(B64.encode(raw).as_bytes());
            }
        }

        let mut server_first = b"r=".to_vec();
        server_first.extend_from_slice(&nonce);
        server_first.extend_from_slice(b",s=");
        server_first.extend_from_slice(B64.encode(&self.verifier.salt).as_bytes());
        server_first.extend_from_slice(format!(",i={}", self.verifier.iterations).as_bytes());

        self.state = State::ServerFirstSent {
            flag: first.flag,
            client_first_bare: first.bare.to_vec(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(server_first)
    }

    /// Handles `SASLResponse`: client-final-message (`c=…,r=…,p=…`). Checks the channel-binding
    /// echo, the nonce and the proof; returns server-final-message (`v=<ServerSignature>`).
    pub fn client_final(&mut self, data: &[u8]) -> Result<Vec<u8>, AuthError> {
        let State::ServerFirstSent {
            flag,
            client_first_bare,
            server_first,
            nonce,
        } = std::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(AuthError::UnexpectedMessage(
                "client-final-message without a preceding client-first-message",
            ));
        };
        let fin = parse_client_final(data)?;
        if fin.cbind != flag.expected_cbind() {
            return Err(AuthError::ChannelBindingMismatch);
        }
        if fin.nonce != nonce.as_slice() {
            return Err(AuthError::NonceMismatch);
        }

        // AuthMessage = client-first-message-bare "," server-first-message ","
        //               client-final-message-without-proof   (RFC 5802 section 3)
        let auth_message: [&[u8]; 5] = [
            &client_first_bare,
            b",",
            &server_first,
            b",",
            fin.without_proof,
        ];
        let client_signature = hmac_sha256(&self.verifier.stored_key, &auth_message);
        let mut client_key = fin.proof;
        for (k, s) in client_key.iter_mut().zip(client_signature.iter()) {
            *k ^= s;
        }
        if !ct_eq(&sha256(&client_key), &self.verifier.stored_key) {
            return Err(AuthError::PasswordMismatch);
        }

        let server_signature = hmac_sha256(&self.verifier.server_key, &auth_message);
        self.state = State::Authenticated;
        let mut server_final = b"v=".to_vec();
        server_final.extend_from_slice(B64.encode(server_signature).as_bytes());
        Ok(server_final)
    }
}

/// The parts of client-first-message the server keeps.
struct ClientFirst<'a> {
    flag: Gs2Flag,
    /// client-first-message-bare: everything after the GS2 header, part of AuthMessage.
    bare: &'a [u8],
    client_nonce: &'a [u8],
}

/// `gs2-header client-first-message-bare` (RFC 5802 section 7).
fn parse_client_first(data: &[u8]) -> Result<ClientFirst<'_>, AuthError> {
    reject_nul(data)?;
    let (flag, rest) = match data.split_first() {
        Some((b'n', rest)) => (Gs2Flag::NotSupported, rest),
        Some((b'y', rest)) => (Gs2Flag::NotOffered, rest),
        Some((b'p', _)) => return Err(AuthError::ChannelBindingNotSupported),
        _ => {
            return Err(AuthError::MalformedMessage(
                "unexpected channel-binding flag in client-first-message",
            ))
        }
    };
    let rest = rest.strip_prefix(b",").ok_or(AuthError::MalformedMessage(
        "comma expected after the channel-binding flag",
    ))?;
    if rest.starts_with(b"a=") {
        return Err(AuthError::UnsupportedFeature("authorization identity"));
    }
    let bare = rest.strip_prefix(b",").ok_or(AuthError::MalformedMessage(
        "unexpected attribute in client-first-message",
    ))?;

    let mut attrs = bare.split(|&b| b == b',');
    match attrs.next() {
        Some(a) if a.starts_with(b"m=") => {
            return Err(AuthError::UnsupportedFeature("mandatory extension (m=)"))
        }
        Some(a) if a.starts_with(b"n=") => {}
        _ => {
            return Err(AuthError::MalformedMessage(
                "user name attribute expected in client-first-message",
            ))
        }
    }
    let client_nonce =
        attrs
            .next()
            .and_then(|a| a.strip_prefix(b"r="))
            .ok_or(AuthError::MalformedMessage(
                "nonce attribute expected in client-first-message",
            ))?;
    if client_nonce.is_empty() || !client_nonce.iter().all(|&b| is_nonce_char(b)) {
        return Err(AuthError::MalformedMessage(
            "nonce in client-first-message is not printable",
        ));
    }
    check_extensions(attrs)?;
    Ok(ClientFirst {
        flag,
        bare,
        client_nonce,
    })
}

/// The parts of client-final-message the server checks.
struct ClientFinal<'a> {
    /// base64 of the GS2 header (`c=`).
    cbind: &'a [u8],
    nonce: &'a [u8],
    /// client-final-message-without-proof, part of AuthMessage.
    without_proof: &'a [u8],
    proof: [u8; 32],
}

/// `channel-binding "," nonce ["," extensions] "," proof` (RFC 5802 section 7).
fn parse_client_final(data: &[u8]) -> Result<ClientFinal<'_>, AuthError> {
    reject_nul(data)?;
    let malformed_proof = AuthError::MalformedMessage("malformed proof in client-final-message");
    let at = data
        .windows(3)
        .rposition(|w| w == b",p=")
        .ok_or(AuthError::MalformedMessage(
            "proof attribute expected at the end of client-final-message",
        ))?;
    let (without_proof, proof) = (&data[..at], &data[at + 3..]);
    let proof = B64.decode(proof).map_err(|_| malformed_proof.clone())?;
    let proof: [u8; 32] = proof.try_into().map_err(|_| malformed_proof)?;

    let mut attrs = without_proof.split(|&b| b == b',');
    let cbind =
        attrs
            .next()
            .and_then(|a| a.strip_prefix(b"c="))
            .ok_or(AuthError::MalformedMessage(
                "channel-binding attribute expected in client-final-message",
            ))?;
    let nonce =
        attrs
            .next()
            .and_then(|a| a.strip_prefix(b"r="))
            .ok_or(AuthError::MalformedMessage(
                "nonce attribute expected in client-final-message",
            ))?;
    check_extensions(attrs)?;
    Ok(ClientFinal {
        cbind,
        nonce,
        without_proof,
        proof,
    })
}

/// Optional extensions are ignored (as PostgreSQL does) but must look like `x=value`.
fn check_extensions<'a>(attrs: impl Iterator<Item = &'a [u8]>) -> Result<(), AuthError> {
    for attr in attrs {
        match attr {
            [name, b'=', ..] if name.is_ascii_alphabetic() => {}
            _ => {
                return Err(AuthError::MalformedMessage(
                    "attribute expected in SCRAM message",
                ))
            }
        }
    }
    Ok(())
}

/// PostgreSQL reads SASL messages as C strings; a NUL would silently truncate them there.
fn reject_nul(data: &[u8]) -> Result<(), AuthError> {
    if data.contains(&0) {
        return Err(AuthError::MalformedMessage(
            "SCRAM message contains a NUL byte",
        ));
    }
    Ok(())
}

/// `printable = %x21-2B / %x2D-7E` (RFC 5802 section 7): printable ASCII except ','.
fn is_nonce_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b','
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "scram_tests.rs"]
mod tests;
