//! The one error type of authentication, with what the client is allowed to see.

use thiserror::Error;

/// SQLSTATE `08P01` protocol_violation: the client sent something SCRAM does not allow.
const PROTOCOL_VIOLATION: &str = "08P01";
/// SQLSTATE `28P01` invalid_password: the exchange was well formed but the password is wrong.
const INVALID_PASSWORD: &str = "28P01";

/// Why an authentication exchange failed.
///
/// Messages never contain the password, the proof, or any key: every variant carries only
/// `'static` descriptions written here, so `Display` is safe to log and, for protocol
/// violations, to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// The client chose a SASL mechanism other than `SCRAM-SHA-256` (we never offer `-PLUS`).
    #[error("client selected an invalid SASL authentication mechanism")]
    UnsupportedMechanism,
    /// The client asked for channel binding (`p=`), which needs `SCRAM-SHA-256-PLUS`.
    #[error("channel binding is not supported: the server did not offer SCRAM-SHA-256-PLUS")]
    ChannelBindingNotSupported,
    /// The `c=` attribute of client-final-message does not echo the client's GS2 header.
    #[error("SCRAM channel binding check failed")]
    ChannelBindingMismatch,
    /// The client used a SCRAM feature PostgreSQL does not support either (authzid, `m=`).
    #[error("unsupported SCRAM feature: {0}")]
    UnsupportedFeature(&'static str),
    /// A SCRAM message does not follow the RFC 5802 grammar.
    #[error("malformed SCRAM message: {0}")]
    MalformedMessage(&'static str),
    /// The nonce in client-final-message is not the one the server announced.
    #[error("SCRAM nonce mismatch")]
    NonceMismatch,
    /// A message arrived in a state where it is not expected (e.g. a second client-final).
    #[error("unexpected SCRAM message: {0}")]
    UnexpectedMessage(&'static str),
    /// The client proof (SCRAM) or response (md5) does not match the stored secret.
    #[error("password authentication failed")]
    PasswordMismatch,
    /// The stored SCRAM secret from the config cannot be used; the client only sees a failed
    /// password, as PostgreSQL does for an invalid `rolpassword`.
    #[error("invalid SCRAM verifier: {0}")]
    InvalidVerifier(&'static str),
}

impl AuthError {
    /// The SQLSTATE to put in the client's `ErrorResponse`.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            AuthError::UnsupportedMechanism
            | AuthError::ChannelBindingNotSupported
            | AuthError::ChannelBindingMismatch
            | AuthError::UnsupportedFeature(_)
            | AuthError::MalformedMessage(_)
            | AuthError::NonceMismatch
            | AuthError::UnexpectedMessage(_) => PROTOCOL_VIOLATION,
            AuthError::PasswordMismatch | AuthError::InvalidVerifier(_) => INVALID_PASSWORD,
        }
    }

    /// True when the client broke the protocol (`08P01`), false for a failed password.
    pub fn is_protocol_violation(&self) -> bool {
        self.sqlstate() == PROTOCOL_VIOLATION
    }

    /// The message to send the client in `ErrorResponse`.
    ///
    /// Password failures use PostgreSQL's exact wording (see [`password_failed_message`]) so
    /// drivers and users see what they would see without pgfleet; a broken verifier looks the
    /// same to the client (the detail belongs in the log, not on the wire).
    pub fn client_message(&self, user: &str) -> String {
        match self {
            AuthError::PasswordMismatch | AuthError::InvalidVerifier(_) => {
                password_failed_message(user)
            }
            other => other.to_string(),
        }
    }
}

/// PostgreSQL's message for a wrong password: `password authentication failed for user "NAME"`.
///
/// The user name is quoted as is, like PostgreSQL (`auth.c`, `auth_failed`).
pub fn password_failed_message(user: &str) -> String {
    format!("password authentication failed for user \"{user}\"")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_split_protocol_from_password() {
        assert_eq!(AuthError::PasswordMismatch.sqlstate(), "28P01");
        assert_eq!(AuthError::InvalidVerifier("x").sqlstate(), "28P01");
        assert_eq!(AuthError::MalformedMessage("x").sqlstate(), "08P01");
        assert_eq!(AuthError::NonceMismatch.sqlstate(), "08P01");
        assert!(AuthError::UnsupportedMechanism.is_protocol_violation());
        assert!(!AuthError::PasswordMismatch.is_protocol_violation());
    }

    #[test]
    fn client_message_matches_postgres() {
        assert_eq!(
            AuthError::PasswordMismatch.client_message("alice"),
            "password authentication failed for user \"alice\""
        );
        assert_eq!(
            AuthError::InvalidVerifier("bad salt").client_message("bob"),
            "password authentication failed for user \"bob\""
        );
        assert_eq!(
            AuthError::NonceMismatch.client_message("bob"),
            "SCRAM nonce mismatch"
        );
    }
}
