//! The first packet of a connection, which has no type byte (PostgreSQL docs 55.2.1, 55.7):
//! StartupMessage, SSLRequest, GSSENCRequest or CancelRequest.

use bytes::{Buf, BytesMut};

use crate::cursor::Cursor;
use crate::frame::put_cstr;
use crate::WireError;

const PROTOCOL_3_0: i32 = 196_608;
const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;
/// PostgreSQL's own limit for a startup packet (MAX_STARTUP_PACKET_LENGTH).
pub const MAX_STARTUP_PACKET: usize = 10_000;

/// A decoded first packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartupPacket {
    /// StartupMessage for protocol 3.0 with its name/value parameters in order.
    Startup {
        /// Parameters such as user, database, application_name, options.
        params: Vec<(String, String)>,
    },
    /// SSLRequest: answer 'S' or 'N'.
    SslRequest,
    /// GSSENCRequest: answer 'G' or 'N'.
    GssEncRequest,
    /// CancelRequest for the backend identified by the key.
    Cancel {
        /// Process id from BackendKeyData.
        pid: i32,
        /// Secret key from BackendKeyData.
        secret: i32,
    },
}

impl StartupPacket {
    /// The value of a startup parameter.
    pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Removes and decodes the first packet from `buf`, or `Ok(None)` if more bytes are needed.
pub fn split_startup(buf: &mut BytesMut) -> Result<Option<StartupPacket>, WireError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 8 {
        return Err(WireError::LengthTooSmall(i64::from(len)));
    }
    // Invariant: len >= 8 was checked above.
    let len = len as usize;
    if len > MAX_STARTUP_PACKET {
        return Err(WireError::TooLarge {
            len,
            max: MAX_STARTUP_PACKET,
        });
    }
    if buf.len() < len {
        return Ok(None);
    }
    let packet = buf.split_to(len);
    let mut c = Cursor::new(&packet[4..], "startup");
    let code = c.i32()?;
    let decoded = match code {
        SSL_REQUEST if len == 8 => StartupPacket::SslRequest,
        GSSENC_REQUEST if len == 8 => StartupPacket::GssEncRequest,
        CANCEL_REQUEST if len == 16 => StartupPacket::Cancel {
            pid: c.i32()?,
            secret: c.i32()?,
        },
        SSL_REQUEST | GSSENC_REQUEST | CANCEL_REQUEST => {
            return Err(WireError::BadStartup("wrong length for a request code"))
        }
        PROTOCOL_3_0 => StartupPacket::Startup {
            params: decode_params(&mut c)?,
        },
        other => {
            return Err(WireError::UnsupportedProtocol {
                major: (other >> 16) as u16,
                minor: (other & 0xffff) as u16,
            })
        }
    };
    Ok(Some(decoded))
}

fn decode_params(c: &mut Cursor<'_>) -> Result<Vec<(String, String)>, WireError> {
    let mut params = Vec::new();
    loop {
        let name = c.cstr()?;
        if name.is_empty() {
            break;
        }
        let value = c.cstr()?;
        params.push((name.to_owned(), value.to_owned()));
    }
    if !c.is_empty() {
        return Err(WireError::BadStartup("bytes after the parameter list"));
    }
    Ok(params)
}

/// Encodes a protocol 3.0 StartupMessage.
pub fn encode_startup(out: &mut BytesMut, params: &[(&str, &str)]) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    for (k, v) in params {
        put_cstr(out, k);
        put_cstr(out, v);
    }
    out.extend_from_slice(&[0]);
    let len = (out.len() - start) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Encodes a CancelRequest.
pub fn encode_cancel(out: &mut BytesMut, pid: i32, secret: i32) {
    out.extend_from_slice(&16i32.to_be_bytes());
    out.extend_from_slice(&CANCEL_REQUEST.to_be_bytes());
    out.extend_from_slice(&pid.to_be_bytes());
    out.extend_from_slice(&secret.to_be_bytes());
}

/// Skips `n` bytes; used by tests and fuzzers feeding arbitrary input.
pub fn advance(buf: &mut BytesMut, n: usize) {
    buf.advance(n.min(buf.len()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_startup() {
        let mut out = BytesMut::new();
        encode_startup(&mut out, &[("user", "app"), ("database", "db")]);
        let p = split_startup(&mut out).unwrap().unwrap();
        assert_eq!(
            p,
            StartupPacket::Startup {
                params: vec![
                    ("user".into(), "app".into()),
                    ("database".into(), "db".into())
                ]
            }
        );
    }

    #[test]
    fn decodes_requests() {
        let mut b = BytesMut::from(&[0u8, 0, 0, 8, 4, 210, 22, 47][..]);
        assert_eq!(
            split_startup(&mut b).unwrap(),
            Some(StartupPacket::SslRequest)
        );
        let mut b = BytesMut::new();
        encode_cancel(&mut b, 7, 9);
        assert_eq!(
            split_startup(&mut b).unwrap(),
            Some(StartupPacket::Cancel { pid: 7, secret: 9 })
        );
    }

    #[test]
    fn rejects_malformed() {
        let mut b = BytesMut::from(&[0u8, 0, 0, 2][..]);
        assert!(split_startup(&mut b).is_err());
        let mut b = BytesMut::from(&[0u8, 0, 0, 8, 0, 2, 0, 0][..]);
        assert!(matches!(
            split_startup(&mut b),
            Err(WireError::UnsupportedProtocol { major: 2, .. })
        ));
        let mut b = BytesMut::from(&[0u8, 0, 0, 12, 0, 3, 0, 0, b'u', 0, b'x', b'y'][..]);
        assert!(split_startup(&mut b).is_err());
        let mut b = BytesMut::from(&[0u8, 1, 0, 0][..]);
        assert!(matches!(
            split_startup(&mut b),
            Err(WireError::TooLarge { .. })
        ));
    }
}
