//! Splitting a byte stream into whole tagged messages.
//!
//! After startup every message is `tag: u8, len: i32 (includes itself), body`. A [`Frame`] keeps the
//! complete raw bytes so the proxy can forward a message without re-encoding it.

use bytes::{Bytes, BytesMut};

use crate::WireError;

/// One complete tagged message: the raw bytes including tag and length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    raw: Bytes,
}

impl Frame {
    /// Wraps raw message bytes that were already checked to be one complete message.
    pub fn from_raw(raw: Bytes) -> Frame {
        debug_assert!(raw.len() >= 5);
        Frame { raw }
    }

    /// The message type byte.
    pub fn tag(&self) -> u8 {
        self.raw[0]
    }

    /// The body after tag and length.
    pub fn body(&self) -> &[u8] {
        &self.raw[5..]
    }

    /// The complete message as sent on the wire.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// Whether both are clones of one received message (the same bytes in memory, not merely
    /// equal ones): a constant-time identity test. While one of them is alive its memory cannot
    /// be reused, so a kept clone identifies exactly the message it was cloned from.
    pub fn is_same_message(&self, other: &Frame) -> bool {
        self.raw.as_ptr() == other.raw.as_ptr() && self.raw.len() == other.raw.len()
    }

    /// Consumes the frame, returning the complete message bytes.
    pub fn into_raw(self) -> Bytes {
        self.raw
    }
}

/// Tag and total length (tag byte included) of the message at the start of `buf`, if its header is
/// complete. Fails when the length field is below 4 or the total exceeds `max`.
pub fn peek_header(buf: &[u8], max: usize) -> Result<Option<(u8, usize)>, WireError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if len < 4 {
        return Err(WireError::LengthTooSmall(i64::from(len)));
    }
    // Invariant: len >= 4 was checked above, so the cast cannot wrap.
    let total = len as usize + 1;
    if total > max {
        return Err(WireError::TooLarge { len: total, max });
    }
    Ok(Some((buf[0], total)))
}

/// Removes one complete message from the front of `buf`, or returns `Ok(None)` when more bytes are
/// needed. `max` bounds the total message size (a client cannot make us buffer unbounded input).
pub fn split_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Frame>, WireError> {
    match peek_header(buf, max)? {
        Some((_, total)) if buf.len() >= total => Ok(Some(Frame {
            raw: buf.split_to(total).freeze(),
        })),
        Some((_, total)) => {
            buf.reserve(total - buf.len());
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Appends a message with `tag` and a body written by `f`, filling in the length afterwards.
pub fn write_message(out: &mut BytesMut, tag: u8, f: impl FnOnce(&mut BytesMut)) {
    out.extend_from_slice(&[tag, 0, 0, 0, 0]);
    let start = out.len() - 4;
    f(out);
    let len = (out.len() - start) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends a NUL-terminated string.
pub fn put_cstr(out: &mut BytesMut, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(&[0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_the_received_message_not_its_content() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x08abcdQ\0\0\0\x08abcd"[..]);
        let first = split_frame(&mut buf, 1024).unwrap().unwrap();
        let second = split_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(first, second);
        assert!(first.is_same_message(&first.clone()));
        assert!(!first.is_same_message(&second));
    }

    #[test]
    fn splits_whole_messages_and_waits_for_partial_ones() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x09abcd\0Z\0\0"[..]);
        let f = split_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(f.tag(), b'Q');
        assert_eq!(f.body(), b"abcd\0");
        assert_eq!(split_frame(&mut buf, 1024).unwrap(), None);
        assert_eq!(&buf[..], b"Z\0\0");
    }

    #[test]
    fn rejects_short_and_oversized_lengths() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x03"[..]);
        assert_eq!(
            split_frame(&mut buf, 1024),
            Err(WireError::LengthTooSmall(3))
        );
        let mut buf = BytesMut::from(&b"Q\0\x10\0\0"[..]);
        assert!(matches!(
            split_frame(&mut buf, 1024),
            Err(WireError::TooLarge { .. })
        ));
        let mut buf = BytesMut::from(&b"Q\xff\xff\xff\xff"[..]);
        assert_eq!(
            split_frame(&mut buf, 1024),
            Err(WireError::LengthTooSmall(-1))
        );
    }

    #[test]
    fn write_message_fills_length() {
        let mut out = BytesMut::new();
        write_message(&mut out, b'Q', |b| put_cstr(b, "SELECT 1"));
        let f = split_frame(&mut out, 1024).unwrap().unwrap();
        assert_eq!(f.body(), b"SELECT 1\0");
    }
}
