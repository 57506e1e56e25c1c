//! User passwords as written in the config: plain text, a SCRAM verifier or an md5 hash,
//! in the formats PostgreSQL stores in `pg_authid.rolpassword`
//! (PostgreSQL docs, "Password Authentication" and the `pg_authid` catalog).

use std::fmt;

/// A user's password as the config gives it.
///
/// `Debug` never shows the secret itself.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// Clear-text password; usable for every auth method and for logging in to the servers.
    Plain(String),
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (salt and keys in base64).
    ScramVerifier(String),
    /// `md5` followed by 32 hex digits: md5(password || user name).
    Md5(String),
}

const SCRAM_PREFIX: &str = "SCRAM-SHA-256$";
const SCRAM_SHAPE: &str =
    "expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> as stored in pg_authid";

impl Secret {
    /// Reads a password value.
    ///
    /// A value starting with `SCRAM-SHA-256$` must be a well-formed verifier; a value that is `md5`
    /// followed only by hex digits must be a complete md5 hash (exactly 32 digits); anything else
    /// is a plain password.
    pub fn parse(text: &str) -> Result<Secret, String> {
        if let Some(rest) = text.strip_prefix(SCRAM_PREFIX) {
            check_scram(rest)?;
            return Ok(Secret::ScramVerifier(text.to_string()));
        }
        if let Some(hex) = text.strip_prefix("md5") {
            if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                if hex.len() != 32 {
                    return Err(format!(
                        "malformed md5 hash: expected `md5` followed by 32 hex digits, found {}",
                        hex.len()
                    ));
                }
                return Ok(Secret::Md5(text.to_ascii_lowercase()));
            }
        }
        if text.is_empty() {
            return Err("password must not be empty".to_string());
        }
        Ok(Secret::Plain(text.to_string()))
    }

    /// The clear-text password, when the config holds one.
    pub fn as_plain(&self) -> Option<&str> {
        match self {
            Secret::Plain(p) => Some(p),
            Secret::ScramVerifier(_) | Secret::Md5(_) => None,
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Secret::Plain(_) => "Plain",
            Secret::ScramVerifier(_) => "ScramVerifier",
            Secret::Md5(_) => "Md5",
        };
        write!(f, "{kind}(<redacted>)")
    }
}

fn check_scram(rest: &str) -> Result<(), String> {
    let malformed = |why: &str| format!("malformed SCRAM verifier: {why}; {SCRAM_SHAPE}");
    let (iter_salt, keys) = rest
        .split_once('$')
        .ok_or_else(|| malformed("missing `$` before the keys"))?;
    let (iterations, salt) = iter_salt
        .split_once(':')
        .ok_or_else(|| malformed("missing `:` between iterations and salt"))?;
    match iterations.parse::<u32>() {
        Ok(n) if n > 0 => {}
        _ => return Err(malformed("iterations must be a positive integer")),
    }
    if salt.is_empty() || !is_base64(salt) {
        return Err(malformed("salt is not base64"));
    }
    let (stored, server) = keys
        .split_once(':')
        .ok_or_else(|| malformed("missing `:` between StoredKey and ServerKey"))?;
    for (name, key) in [("StoredKey", stored), ("ServerKey", server)] {
        // 32-byte SHA-256 digests are 44 base64 characters with one `=` of padding.
        if key.len() != 44 || !key.ends_with('=') || !is_base64(key) {
            return Err(malformed(&format!("{name} is not a base64 SHA-256 digest")));
        }
    }
    Ok(())
}

fn is_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len() % 4 == 0
        && s.len() - body.len() <= 2
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const VERIFIER: &str = "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$\
        bWhAWPRGGUoQBJOsPC3xG/tD3Lth9y7vzXb2/2WhuA4=:y5Yvyt7oRVpMbAZrDEGIpS1JAsLWBIFrlB1t2s9r+Jc=";

    #[test]
    fn parses_each_kind() {
        assert_eq!(Secret::parse("app"), Ok(Secret::Plain("app".into())));
        assert_eq!(
            Secret::parse("md5isnotahash"),
            Ok(Secret::Plain("md5isnotahash".into()))
        );
        assert!(matches!(
            Secret::parse(VERIFIER),
            Ok(Secret::ScramVerifier(_))
        ));
        assert!(matches!(
            Secret::parse("md5ABCDEF0123456789abcdef0123456789"),
            Ok(Secret::Md5(h)) if h == "md5abcdef0123456789abcdef0123456789"
        ));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "md5abc",
            "SCRAM-SHA-256$",
            "SCRAM-SHA-256$4096:salt",
            "SCRAM-SHA-256$0:c2FsdA==$a:b",
            "SCRAM-SHA-256$4096:c2FsdA==$short=:short=",
        ] {
            assert!(Secret::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_redacts() {
        assert_eq!(
            format!("{:?}", Secret::Plain("hunter2".into())),
            "Plain(<redacted>)"
        );
    }
}
