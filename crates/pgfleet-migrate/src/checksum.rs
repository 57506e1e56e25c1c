//! Checksums of migration files: SHA-256 over the text normalized so that a checkout's line
//! endings or an editor's trailing whitespace change nothing (CRLF and lone CR become LF, trailing
//! spaces and tabs are stripped from every line, a leading byte order mark and trailing blank
//! lines are dropped). Anything else — a changed word, a new statement — changes the checksum.

use sha2::{Digest, Sha256};

/// The normalized text the checksum is taken over.
pub fn normalize(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(unified.len());
    for line in unified.split('\n') {
        out.push_str(line.trim_end_matches([' ', '\t']));
        out.push('\n');
    }
    let trimmed = out.trim_end_matches('\n').len();
    out.truncate(trimmed);
    out
}

/// Lower-case hex SHA-256 of the normalized text.
pub fn checksum(text: &str) -> String {
    hex(&Sha256::digest(normalize(text).as_bytes()))
}

/// Lower-case hex SHA-256 of `parts`, each followed by a newline (digests of lists).
pub fn digest<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_and_trailing_whitespace_do_not_count() {
        let lf = "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n";
        let crlf = "CREATE TABLE t (id int);  \r\nINSERT INTO t VALUES (1);\t\r\n\r\n";
        let cr = "\u{feff}CREATE TABLE t (id int);\rINSERT INTO t VALUES (1);";
        assert_eq!(checksum(lf), checksum(crlf));
        assert_eq!(checksum(lf), checksum(cr));
        assert_eq!(checksum(lf).len(), 64);
    }

    #[test]
    fn content_counts() {
        let a = checksum("CREATE TABLE t (id int);");
        assert_ne!(a, checksum("CREATE TABLE t (id bigint);"));
        assert_ne!(a, checksum("CREATE  TABLE t (id int);"));
        assert_ne!(
            a,
            checksum("  CREATE TABLE t (id int);"),
            "leading whitespace is content"
        );
    }

    #[test]
    fn known_value() {
        // sha256("") and sha256("a")
        assert_eq!(
            checksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            checksum("a\r\n"),
            "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
        );
    }
}
