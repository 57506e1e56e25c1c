//! The client socket with its read and write buffers.

use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use pgfleet_wire::backend::encode_error;
use pgfleet_wire::frame::split_frame;
use pgfleet_wire::Frame;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::ProxyError;

/// A client connection after the startup packet.
pub struct ClientConn {
    pub(crate) stream: TcpStream,
    pub(crate) rbuf: BytesMut,
    pub(crate) max_message: usize,
    /// Bytes taken out of `rbuf` so far (messages consumed).
    pub(crate) consumed: u64,
    /// Bytes written to the client so far.
    pub(crate) written: u64,
}

impl ClientConn {
    pub(crate) fn new(stream: TcpStream, rbuf: BytesMut, max_message: usize) -> ClientConn {
        ClientConn {
            stream,
            rbuf,
            max_message,
            consumed: 0,
            written: 0,
        }
    }

    /// Takes one complete message from the buffer, if there is one.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, ProxyError> {
        let frame = split_frame(&mut self.rbuf, self.max_message)?;
        if let Some(f) = &frame {
            self.consumed += f.raw().len() as u64;
        }
        Ok(frame)
    }

    /// Drops `n` buffered bytes (messages already dealt with from a [`ClientConn::peek_until`]).
    pub(crate) fn skip(&mut self, n: usize) {
        bytes::Buf::advance(&mut self.rbuf, n);
        self.consumed += n as u64;
    }

    /// Puts consumed messages back in front of the buffer, to be read again (a read replayed on
    /// another server).
    pub(crate) fn unread(&mut self, messages: &[u8]) {
        let mut buf = BytesMut::with_capacity(messages.len() + self.rbuf.len());
        buf.extend_from_slice(messages);
        buf.extend_from_slice(&self.rbuf);
        self.rbuf = buf;
        self.consumed = self.consumed.saturating_sub(messages.len() as u64);
    }

    /// Reads one complete message, waiting for bytes as needed. `Ok(None)` = the client closed.
    pub(crate) async fn read_frame(&mut self) -> Result<Option<Frame>, ProxyError> {
        std::future::poll_fn(|cx| self.poll_read_frame(cx)).await
    }

    /// Reads more bytes; false on EOF.
    pub(crate) async fn fill(&mut self) -> Result<bool, ProxyError> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// [`Self::fill`] as a poll function, for waits on several things at once.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, ProxyError>> {
        crate::socket::make_room(&mut self.rbuf, 1024, 8 * 1024);
        Poll::Ready(
            match ready!(crate::socket::poll_read_into(
                &mut self.stream,
                &mut self.rbuf,
                cx
            )) {
                Ok(0) => Ok(false),
                Ok(_) => Ok(true),
                Err(e) => Err(ProxyError::ClientIo(e)),
            },
        )
    }

    /// [`Self::read_frame`] as a poll function.
    pub(crate) fn poll_read_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Frame>, ProxyError>> {
        loop {
            if let Some(f) = self.next_frame()? {
                return Poll::Ready(Ok(Some(f)));
            }
            if !ready!(self.poll_fill(cx))? {
                return Poll::Ready(Ok(None));
            }
        }
    }

    /// Writes all bytes.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> Result<(), ProxyError> {
        let taken = self.write_now(bytes)?;
        self.write_rest(&bytes[taken..]).await
    }

    /// Writes what the socket takes right now (see [`crate::socket::write_now`]) and counts all
    /// of `bytes` as written: how many bytes went. The rest goes with [`Self::write_rest`], so
    /// the usual write builds no future.
    pub(crate) fn write_now(&mut self, bytes: &[u8]) -> Result<usize, ProxyError> {
        self.written += bytes.len() as u64;
        let rest = crate::socket::write_now(&self.stream, bytes).map_err(ProxyError::ClientIo)?;
        Ok(bytes.len() - rest.len())
    }

    /// Writes all of `rest` (already counted by [`Self::write_now`]), waiting for the socket
    /// as needed.
    pub(crate) async fn write_rest(&mut self, rest: &[u8]) -> Result<(), ProxyError> {
        if rest.is_empty() {
            return Ok(());
        }
        self.stream
            .write_all(rest)
            .await
            .map_err(ProxyError::ClientIo)
    }

    /// Sends a FATAL error (the connection is closed afterwards by the caller).
    pub(crate) async fn fatal(&mut self, code: &str, message: &str) {
        let mut out = BytesMut::new();
        encode_error(&mut out, "FATAL", code, message);
        let _ = self.stream.write_all(&out).await;
        let _ = self.stream.shutdown().await;
    }
}

impl ClientConn {
    /// Copies of the complete messages already buffered (not consumed), up to and including the first
    /// one whose tag satisfies `is_end`, with their total length; `None` when no such message is
    /// buffered yet. Used to look at a whole request before deciding where it goes.
    pub(crate) fn peek_until(
        &self,
        is_end: impl Fn(u8) -> bool,
    ) -> Result<Option<(Vec<Frame>, usize)>, ProxyError> {
        let mut frames = Vec::new();
        let mut offset = 0;
        loop {
            let rest = &self.rbuf[offset..];
            match pgfleet_wire::frame::peek_header(rest, self.max_message)? {
                Some((tag, total)) if rest.len() >= total => {
                    frames.push(Frame::from_raw(bytes::Bytes::copy_from_slice(
                        &rest[..total],
                    )));
                    offset += total;
                    if is_end(tag) {
                        return Ok(Some((frames, offset)));
                    }
                }
                _ => return Ok(None),
            }
        }
    }

    /// Whether a complete message is already buffered.
    pub(crate) fn next_frame_ready(&self) -> bool {
        matches!(pgfleet_wire::frame::peek_header(&self.rbuf, self.max_message), Ok(Some((_, total))) if self.rbuf.len() >= total)
    }
}
