//! Socket helpers shared by the client and server connections.

use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::net::TcpStream;

/// Writes what the socket takes right now, without waiting: the part of `bytes` still to send
/// (empty when all went). A message usually fits the socket's buffer at once, and this skips the
/// readiness wait and its future; the caller awaits the rest, if any.
pub(crate) fn write_now<'b>(stream: &TcpStream, bytes: &'b [u8]) -> std::io::Result<&'b [u8]> {
    match stream.try_write(bytes) {
        Ok(n) => Ok(&bytes[n..]),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(bytes),
        Err(e) => Err(e),
    }
}

/// Reads what the socket has into `buf` (which must have room: [`make_room`]), or registers the
/// task for the socket's readiness: the number of bytes read, 0 at EOF.
///
/// A poll function rather than a future: a session waiting on its client and its server polls
/// both in one `poll_fn`, whose state is a few references, instead of keeping a read future per
/// socket in its own (one more cache line per transaction; see docs/benchmarks.md).
///
/// Through tokio's `AsyncRead`, not `try_read_buf`: a read that leaves room in the buffer shows
/// the socket drained, and `AsyncRead` then clears the readiness, where `try_read_buf` keeps it
/// and the next wait on the socket costs one more `recv` that fails with `EAGAIN` (two per
/// transaction, a third of pgfleet's system calls: docs/benchmarks.md, session 17). A message
/// that arrives after that read raises the readiness anew (edge-triggered epoll).
pub(crate) fn poll_read_into(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    tokio_util::io::poll_read_buf(std::pin::Pin::new(stream), cx, buf)
}

/// Makes room in a read buffer before a read: at least `min_free` bytes, growing by `grow`.
///
/// An empty buffer starts again at its beginning, when no message split off it is still alive:
/// otherwise each read lands after the last one and a session walks through its whole buffer
/// (8–16 KiB), a cold cache line every few transactions, before the space is reused.
pub(crate) fn make_room(buf: &mut BytesMut, min_free: usize, grow: usize) {
    if buf.is_empty() {
        // One byte more than is left after the read position can only be had by moving back to
        // the start: this never allocates, and fails (harmlessly) while a message split off the
        // buffer is alive or the buffer is already at its start.
        let _ = buf.try_reclaim(buf.capacity() + 1);
    }
    if buf.capacity() - buf.len() < min_free {
        buf.reserve(grow);
    }
}

#[cfg(test)]
mod tests {
    use super::make_room;
    use bytes::{Buf, BytesMut};

    #[test]
    fn an_empty_buffer_is_read_into_from_its_start_again() {
        let mut buf = BytesMut::with_capacity(1024);
        let start = buf.as_ptr();
        buf.extend_from_slice(&[1; 100]);
        // A message split off and dropped, as the session does with a request.
        drop(buf.split_to(60).freeze());
        buf.advance(40);
        assert!(buf.is_empty());
        assert_ne!(buf.as_ptr(), start);
        make_room(&mut buf, 16, 1024);
        assert_eq!(buf.as_ptr(), start, "the next read goes to the start");
        assert!(buf.capacity() >= 1024);

        // While a split-off message is alive, the buffer stays where it is.
        buf.extend_from_slice(&[2; 10]);
        let held = buf.split_to(10).freeze();
        let at = buf.as_ptr();
        make_room(&mut buf, 16, 1024);
        assert_eq!(buf.as_ptr(), at);
        assert_eq!(&held[..], &[2; 10]);

        // Data not yet consumed is never moved or lost.
        drop(held);
        buf.extend_from_slice(b"abc");
        make_room(&mut buf, 16, 1024);
        assert_eq!(&buf[..], b"abc");
    }
}
