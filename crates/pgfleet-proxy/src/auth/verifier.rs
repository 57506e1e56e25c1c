//! The stored SCRAM-SHA-256 secret: what `pg_authid.rolpassword` holds, and what pgfleet's
//! config may hold instead of a plain password (PostgreSQL docs 21.5 "Password Authentication").

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;

use super::crypto::{hi, hmac_sha256, sha256};
use super::error::AuthError;

/// Iterations PostgreSQL uses by default (`scram_iterations`, PostgreSQL 16+; fixed before).
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Salt length PostgreSQL uses (`SCRAM_DEFAULT_SALT_LEN`).
const SALT_LEN: usize = 16;

/// Prefix of the text form, also the SASL mechanism name.
const PREFIX: &str = "SCRAM-SHA-256$";

/// A SCRAM-SHA-256 verifier: enough to check a client's proof, not enough to log in as it.
///
/// Text form (as in `pg_authid`): `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`,
/// salt and keys in standard base64.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    /// PBKDF2 iteration count (`i=` in server-first-message).
    pub iterations: u32,
    /// Salt (`s=` in server-first-message, sent base64-encoded).
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

// Keys are secrets: Debug shows only the public parameters.
impl std::fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramVerifier")
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt.len())
            .finish_non_exhaustive()
    }
}

impl ScramVerifier {
    /// Parses the `pg_authid` text form.
    ///
    /// Errors are [`AuthError::InvalidVerifier`] with a reason that never echoes the input.
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        let rest = text.strip_prefix(PREFIX).ok_or(AuthError::InvalidVerifier(
            "missing `SCRAM-SHA-256$` prefix",
        ))?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or(AuthError::InvalidVerifier("missing `$` before the keys"))?;
        let (iterations, salt) = params.split_once(':').ok_or(AuthError::InvalidVerifier(
            "missing `:` between iterations and salt",
        ))?;
        let (stored_key, server_key) = keys
            .split_once(':')
            .ok_or(AuthError::InvalidVerifier("missing `:` between the keys"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| AuthError::InvalidVerifier("iteration count is not a number"))?;
        if iterations == 0 {
            return Err(AuthError::InvalidVerifier(
                "iteration count must be at least 1",
            ));
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| AuthError::InvalidVerifier("salt is not valid base64"))?;
        if salt.is_empty() {
            return Err(AuthError::InvalidVerifier("salt is empty"));
        }
        Ok(ScramVerifier {
            iterations,
            salt,
            stored_key: decode_key(stored_key, "StoredKey is not 32 bytes of base64")?,
            server_key: decode_key(server_key, "ServerKey is not 32 bytes of base64")?,
        })
    }

    /// Derives the verifier for `password` with a given salt and iteration count.
    ///
    /// Normalization: PostgreSQL runs SASLprep (RFC 4013) on the password first and falls back
    /// to the raw bytes when the password is not valid UTF-8 or SASLprep rejects it. pgfleet
    /// always uses the raw bytes. Both agree for ASCII passwords and for every password already
    /// in SASLprep normal form; a non-ASCII password that SASLprep would change (e.g. one
    /// containing U+00AD or a non-NFKC sequence) yields a verifier PostgreSQL would not produce,
    /// so store such passwords as a verifier made by PostgreSQL.
    /// `iterations` of 0 is treated as 1.
    pub fn from_password(password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let salted = hi(password, salt, iterations);
        let client_key = hmac_sha256(&salted, &[b"Client Key"]);
        ScramVerifier {
            iterations: iterations.max(1),
            salt: salt.to_vec(),
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, &[b"Server Key"]),
        }
    }

    /// Derives a verifier with a fresh random 16-byte salt and [`DEFAULT_ITERATIONS`], as
    /// PostgreSQL's `pg_be_scram_build_secret` does.
    pub fn generate(password: &[u8]) -> Self {
        let mut salt = [0u8; SALT_LEN];
        rand::thread_rng().fill_bytes(&mut salt);
        Self::from_password(password, &salt, DEFAULT_ITERATIONS)
    }

    /// A verifier no password matches, for users that do not exist.
    ///
    /// Like PostgreSQL's mock authentication (`scram_mock_salt`), the salt is derived from the
    /// user name and a per-process `secret`, so repeated attempts for one unknown user see the
    /// same salt and cannot tell it apart from a real user; the keys are random, so the
    /// exchange always ends in [`AuthError::PasswordMismatch`].
    pub fn mock(user: &str, secret: &[u8]) -> Self {
        let digest = hmac_sha256(secret, &[b"pgfleet mock salt", user.as_bytes()]);
        let mut stored_key = [0u8; 32];
        let mut server_key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut stored_key);
        rand::thread_rng().fill_bytes(&mut server_key);
        ScramVerifier {
            iterations: DEFAULT_ITERATIONS,
            salt: digest[..SALT_LEN].to_vec(),
            stored_key,
            server_key,
        }
    }

    /// The `pg_authid` text form; [`ScramVerifier::parse`] reads it back.
    pub fn to_text(&self) -> String {
        format!(
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

fn decode_key(text: &str, reason: &'static str) -> Result<[u8; 32], AuthError> {
    let bytes = B64
        .decode(text)
        .map_err(|_| AuthError::InvalidVerifier(reason))?;
    bytes
        .try_into()
        .map_err(|_| AuthError::InvalidVerifier(reason))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_postgres_protocol_verifier() {
        let text = postgres_protocol::password::scram_sha_256(b"secret");
        let v = ScramVerifier::parse(&text).unwrap();
        assert_eq!(v.iterations, 4096);
        assert_eq!(v.to_text(), text);
        // Same salt and iterations, derived here: identical keys.
        let derived = ScramVerifier::from_password(b"secret", &v.salt, v.iterations);
        assert_eq!(derived, v);
        assert_ne!(
            ScramVerifier::from_password(b"Secret", &v.salt, v.iterations),
            v
        );
    }

    #[test]
    fn generate_uses_random_salt() {
        let a = ScramVerifier::generate(b"pw");
        let b = ScramVerifier::generate(b"pw");
        assert_eq!(a.salt.len(), 16);
        assert_eq!(a.iterations, DEFAULT_ITERATIONS);
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.stored_key, b.stored_key);
    }

    #[test]
    fn mock_salt_is_stable_per_user() {
        let a = ScramVerifier::mock("ghost", b"k");
        let b = ScramVerifier::mock("ghost", b"k");
        assert_eq!(a.salt, b.salt);
        assert_ne!(a.salt, ScramVerifier::mock("other", b"k").salt);
    }

    #[test]
    fn parse_rejects_bad_text() {
        let good = ScramVerifier::from_password(b"x", b"salt", 4096).to_text();
        let bad = [
            "md5abc".to_string(),
            "SCRAM-SHA-256$4096:c2FsdA==".to_string(),
            good.replace("4096", "x"),
            good.replace("4096", "0"),
            good.replace("c2FsdA==", "***"),
            good.replace("$4096:c2FsdA==", "$4096:"),
            format!("{}AAAA", good),
        ];
        for text in bad {
            let err = ScramVerifier::parse(&text).unwrap_err();
            assert!(
                matches!(err, AuthError::InvalidVerifier(_)),
                "{text}: {err:?}"
            );
        }
    }

    #[test]
    fn debug_hides_keys() {
        let v = ScramVerifier::from_password(b"x", b"salt", 1);
        let dbg = format!("{v:?}");
        assert!(
            !dbg.contains("stored_key") && !dbg.contains("server_key"),
            "{dbg}"
        );
    }
}
