//! The few cryptographic primitives SCRAM-SHA-256 and md5 need (RFC 5802 section 2.2).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// `HMAC(key, part1 || part2 || …)` with SHA-256.
pub(super) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = keyed(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// `H(data)` with SHA-256.
pub(super) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// `Hi(password, salt, i)`: PBKDF2-HMAC-SHA-256 with one output block (RFC 5802 section 2.2).
///
/// `iterations` of 0 is treated as 1: the RFC requires at least one, and callers validate it
/// before (a verifier with 0 iterations is rejected when parsed).
pub(super) fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let base = keyed(password);
    let mut mac = base.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations.max(1) {
        let mut mac = base.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        for (o, b) in out.iter_mut().zip(u.iter()) {
            *o ^= b;
        }
    }
    out
}

/// Compares two byte strings in time that depends only on their lengths, so a client cannot
/// learn a secret byte by byte from response times.
pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[allow(clippy::expect_used)]
fn keyed(key: &[u8]) -> HmacSha256 {
    // Invariant: HMAC accepts keys of any length (longer keys are hashed, RFC 2104 section 3),
    // so `new_from_slice` cannot fail for `Hmac<Sha256>`.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn hi_matches_pbkdf2_known_answer() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, first 32 bytes.
        let expected = [
            0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16, 0x91, 0xc2, 0x25, 0x44,
            0xb6, 0x05, 0xf9, 0x41, 0x85, 0x21, 0x6d, 0xde, 0x04, 0x65, 0xe6, 0x8b, 0x9d, 0x57,
            0xc2, 0x0d, 0xac, 0xbc,
        ];
        assert_eq!(hi(b"passwd", b"salt", 1), expected);
    }
}
