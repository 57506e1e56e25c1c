//! Socket helpers shared by the client and server connections.

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
