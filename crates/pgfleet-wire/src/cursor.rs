//! A bounds-checked reader over a message body.

use crate::WireError;

/// Reads fields from a message body; every read checks the remaining length.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Cursor { buf, what }
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        let (&b, rest) = self
            .buf
            .split_first()
            .ok_or(WireError::Truncated(self.what))?;
        self.buf = rest;
        Ok(b)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, WireError> {
        let b = self.bytes(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.bytes(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated(self.what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A NUL-terminated string (the protocol's "String" type), which must be UTF-8.
    pub(crate) fn cstr(&mut self) -> Result<&'a str, WireError> {
        let what = self.what;
        let b = self.cstr_bytes()?;
        std::str::from_utf8(b).map_err(|_| WireError::InvalidUtf8(what))
    }

    /// A NUL-terminated string as its bytes, in whatever encoding the client uses.
    pub(crate) fn cstr_bytes(&mut self) -> Result<&'a [u8], WireError> {
        let end = memchr::memchr(0, self.buf).ok_or(WireError::Truncated(self.what))?;
        let s = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }
}
