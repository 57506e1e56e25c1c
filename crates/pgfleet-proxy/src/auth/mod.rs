//! Password authentication, pure: no sockets, no tokio.
//!
//! pgfleet authenticates clients itself (it is the server they talk to) and then authenticates
//! to PostgreSQL as a client. This module holds the decisions for the client-facing side:
//!
//! - [`error`]: [`AuthError`], the one error enum, with the SQLSTATE and client-safe message.
//! - [`verifier`]: [`ScramVerifier`], the stored `SCRAM-SHA-256$…` secret (parse, derive, generate).
//! - [`scram`]: [`ScramServer`], the server side of SCRAM-SHA-256 as a state machine
//!   (PostgreSQL docs 55.3 "SASL Authentication", RFC 5802 / RFC 7677).
//! - [`md5`]: the legacy `md5` method (PostgreSQL docs 55.2.2, `AuthenticationMD5Password`).
//!
//! The I/O code (client handshake) moves bytes between the wire messages
//! (`AuthenticationSASL`, `SASLInitialResponse`, `SASLResponse`, `AuthenticationSASLContinue`,
//! `AuthenticationSASLFinal`, `AuthenticationMD5Password`, `PasswordMessage`) and these functions.
//!
//! The server-facing side (pgfleet logging in *to* PostgreSQL) is not here on purpose: use
//! `postgres_protocol::authentication::sasl::ScramSha256` (client SCRAM, including the
//! server-signature check in `finish`) and `postgres_protocol::authentication::md5_hash`.

mod crypto;
pub mod error;
pub mod md5;
pub mod scram;
pub mod verifier;

pub use error::{password_failed_message, AuthError};
pub use md5::{md5_password_hash, md5_salt, md5_salted_response, md5_verify, StoredMd5};
pub use scram::{ScramServer, SCRAM_SHA_256};
pub use verifier::{ScramVerifier, DEFAULT_ITERATIONS};
