//! The legacy `md5` password method (PostgreSQL docs 55.2.2 and 21.5).
//!
//! The server sends `AuthenticationMD5Password` with a 4-byte salt; the client answers
//! `"md5" + hex(md5(hex(md5(password + user)) + salt))`. The stored secret is either the plain
//! password or PostgreSQL's `"md5" + hex(md5(password + user))`; both can check a response.
//! The scheme is weak (the stored hash is password-equivalent); prefer SCRAM.

use md5::{Digest, Md5};
use rand::RngCore;

use super::crypto::ct_eq;

/// Length of `"md5"` + 32 hex digits.
const HASH_LEN: usize = 35;

/// The secret pgfleet's config holds for an md5 user.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StoredMd5<'a> {
    /// The password itself.
    Plain(&'a str),
    /// `"md5" + hex(md5(password + user))`, as in `pg_authid.rolpassword`.
    Hash(&'a str),
}

// The secret is password-equivalent: Debug shows only its kind.
impl std::fmt::Debug for StoredMd5<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredMd5::Plain(_) => f.write_str("StoredMd5::Plain(..)"),
            StoredMd5::Hash(_) => f.write_str("StoredMd5::Hash(..)"),
        }
    }
}

impl<'a> StoredMd5<'a> {
    /// Classifies a config password the way PostgreSQL's `get_password_type` does: `"md5"`
    /// followed by exactly 32 hex digits is a hash, anything else is a plain password.
    pub fn from_config(secret: &'a str) -> Self {
        let is_hash = secret.len() == HASH_LEN
            && secret.starts_with("md5")
            && secret[3..].bytes().all(|b| b.is_ascii_hexdigit());
        if is_hash {
            StoredMd5::Hash(secret)
        } else {
            StoredMd5::Plain(secret)
        }
    }
}

/// Lower-case hexadecimal MD5 of `data` (PostgreSQL's `md5(text)`).
pub(crate) fn md5_hex(data: &[u8]) -> String {
    hex(&Md5::digest(data))
}

/// `"md5" + hex(md5(password + user))`: what PostgreSQL stores for an md5 password.
pub fn md5_password_hash(user: &str, password: &str) -> String {
    let mut md5 = Md5::new();
    md5.update(password.as_bytes());
    md5.update(user.as_bytes());
    format!("md5{}", hex(&md5.finalize()))
}

/// The response a client sends for `password_hash` (`"md5…"`) and `salt`:
/// `"md5" + hex(md5(hex_part(password_hash) + salt))`.
pub fn md5_salted_response(password_hash: &str, salt: [u8; 4]) -> String {
    let hex_part = password_hash.strip_prefix("md5").unwrap_or(password_hash);
    let mut md5 = Md5::new();
    md5.update(hex_part.to_ascii_lowercase().as_bytes());
    md5.update(salt);
    format!("md5{}", hex(&md5.finalize()))
}

/// Checks the client's `PasswordMessage` against the stored secret, in constant time.
///
/// `client_response` is the message's string without its trailing NUL.
pub fn md5_verify(stored: StoredMd5<'_>, user: &str, salt: [u8; 4], client_response: &str) -> bool {
    let expected = match stored {
        StoredMd5::Plain(password) => md5_salted_response(&md5_password_hash(user, password), salt),
        StoredMd5::Hash(hash) => md5_salted_response(hash, salt),
    };
    ct_eq(expected.as_bytes(), client_response.as_bytes())
}

/// A fresh random salt for `AuthenticationMD5Password`.
pub fn md5_salt() -> [u8; 4] {
    let mut salt = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut salt);
    salt
}

/// Lower-case hexadecimal of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SALT: [u8; 4] = [1, 2, 3, 4];

    #[test]
    fn password_hash_known_answer() {
        // PostgreSQL: md5("secret" || "user").
        assert_eq!(
            md5_password_hash("user", "secret"),
            "md520eb1b22a92b5c573dc1eb4331fc49ee"
        );
        assert_eq!(
            md5_password_hash("user", "secret"),
            postgres_protocol::password::md5(b"secret", "user")
        );
    }

    #[test]
    fn salted_response_known_answer() {
        let hash = md5_password_hash("user", "secret");
        assert_eq!(
            md5_salted_response(&hash, SALT),
            "md5fccef98e4f1cf6cbe96b743fad4e8bd0"
        );
        assert_eq!(
            md5_salted_response(&hash, SALT),
            postgres_protocol::authentication::md5_hash(b"user", b"secret", SALT)
        );
    }

    #[test]
    fn verify_with_plain_and_hashed_secret() {
        let response = postgres_protocol::authentication::md5_hash(b"user", b"secret", SALT);
        let hash = md5_password_hash("user", "secret");
        assert!(md5_verify(
            StoredMd5::Plain("secret"),
            "user",
            SALT,
            &response
        ));
        assert!(md5_verify(
            StoredMd5::from_config(&hash),
            "user",
            SALT,
            &response
        ));
        assert!(md5_verify(
            StoredMd5::from_config("secret"),
            "user",
            SALT,
            &response
        ));

        assert!(!md5_verify(
            StoredMd5::Plain("Secret"),
            "user",
            SALT,
            &response
        ));
        assert!(!md5_verify(
            StoredMd5::Plain("secret"),
            "other",
            SALT,
            &response
        ));
        assert!(!md5_verify(
            StoredMd5::Plain("secret"),
            "user",
            [4, 3, 2, 1],
            &response
        ));
        assert!(!md5_verify(StoredMd5::Hash(&hash), "user", SALT, "md5"));
        assert!(!md5_verify(StoredMd5::Hash(&hash), "user", SALT, ""));
    }

    #[test]
    fn from_config_classifies_like_postgres() {
        let hash = md5_password_hash("user", "secret");
        assert_eq!(StoredMd5::from_config(&hash), StoredMd5::Hash(&hash));
        assert_eq!(
            StoredMd5::from_config("md5short"),
            StoredMd5::Plain("md5short")
        );
        let not_hex = format!("md5{}", "z".repeat(32));
        assert_eq!(StoredMd5::from_config(&not_hex), StoredMd5::Plain(&not_hex));
        assert_eq!(StoredMd5::from_config(""), StoredMd5::Plain(""));
    }

    #[test]
    fn debug_hides_secret() {
        assert!(!format!("{:?}", StoredMd5::Plain("secret")).contains("secret"));
    }

    #[test]
    fn salts_are_random() {
        assert_ne!((md5_salt(), md5_salt()), (md5_salt(), md5_salt()));
    }
}
