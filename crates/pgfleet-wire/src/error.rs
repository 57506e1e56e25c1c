//! Errors found while decoding protocol bytes. Every one is a protocol violation (SQLSTATE 08P01).

/// A malformed or oversized message.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The length field is below the minimum the protocol allows.
    #[error("invalid message length {0}")]
    LengthTooSmall(i64),
    /// The length field exceeds the configured maximum message size.
    #[error("message of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A message body ended before a field was complete.
    #[error("truncated {0} message")]
    Truncated(&'static str),
    /// A string field was not valid UTF-8.
    #[error(
        "invalid UTF-8 in {0} message (pgfleet reads its text as UTF-8: set client_encoding to UTF8)"
    )]
    InvalidUtf8(&'static str),
    /// The startup packet was not a supported request or protocol version.
    #[error("unsupported frontend protocol {major}.{minor}: server supports 3.0")]
    UnsupportedProtocol {
        /// Major version requested.
        major: u16,
        /// Minor version requested.
        minor: u16,
    },
    /// A startup packet whose parameter list is malformed.
    #[error("invalid startup packet layout: {0}")]
    BadStartup(&'static str),
    /// A message type byte this side of the protocol never sends.
    #[error("unknown message type '{}' (0x{:02x})", char::from(*.0).escape_default(), .0)]
    UnknownTag(u8),
}

impl WireError {
    /// The SQLSTATE a client should see: always `protocol_violation`.
    pub fn sqlstate(&self) -> &'static str {
        "08P01"
    }
}
