//! One open, authenticated server connection.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use lru::LruCache;
use pgfleet_wire::frame::split_frame;
use pgfleet_wire::Frame;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub use super::state::{ServerInfo, ServerState};
use super::ServerError;
use crate::clients::CancelTarget;
use crate::settings::Settings;

/// Largest message accepted from a server (PostgreSQL's own limit for a field is 1 GiB).
pub(crate) const MAX_SERVER_MESSAGE: usize = 1 << 30;

/// An authenticated connection to one PostgreSQL server.
pub struct ServerConn {
    pub(crate) stream: TcpStream,
    pub(crate) rbuf: BytesMut,
    pub(crate) info: Arc<ServerInfo>,
    /// Where a cancel request for this backend goes (address + BackendKeyData).
    pub(crate) cancel: Arc<CancelTarget>,
    /// ParameterStatus values the server reported at login.
    pub(crate) startup_params: Vec<(String, String)>,
    /// Session settings pgfleet knows this connection has, beyond its login defaults.
    pub(crate) params: Settings,
    /// Server-side names of statements prepared on this connection (bounded, least recently used
    /// first out).
    pub(crate) prepared: LruCache<String, ()>,
    /// Which client unnamed statement the server's unnamed slot holds (0 = unknown or none).
    pub(crate) unnamed: u64,
}

impl ServerConn {
    pub(crate) fn new(
        stream: TcpStream,
        rbuf: BytesMut,
        info: Arc<ServerInfo>,
        cancel: Arc<CancelTarget>,
        startup_params: Vec<(String, String)>,
        prepared_capacity: usize,
    ) -> ServerConn {
        let cap = NonZeroUsize::new(prepared_capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        ServerConn {
            stream,
            rbuf,
            info,
            cancel,
            startup_params,
            params: Settings::default(),
            prepared: LruCache::new(cap),
            unnamed: 0,
        }
    }

    /// Shared info (SHOW SERVERS).
    pub fn info(&self) -> &Arc<ServerInfo> {
        &self.info
    }

    /// host:port.
    pub fn addr(&self) -> &str {
        &self.info.addr
    }

    /// Reads one complete message.
    pub(crate) async fn read_frame(&mut self) -> Result<Frame, ServerError> {
        loop {
            match split_frame(&mut self.rbuf, MAX_SERVER_MESSAGE) {
                Ok(Some(f)) => return Ok(f),
                Ok(None) => {}
                Err(source) => {
                    return Err(ServerError::Protocol {
                        addr: self.info.addr.clone(),
                        source,
                    })
                }
            }
            self.fill().await?;
        }
    }

    /// Reads more bytes into the buffer; EOF is an error.
    pub(crate) async fn fill(&mut self) -> Result<(), ServerError> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// [`Self::fill`] as a poll function, for waits on several sockets at once.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ServerError>> {
        crate::socket::make_room(&mut self.rbuf, 4096, 16 * 1024);
        Poll::Ready(
            match ready!(crate::socket::poll_read_into(
                &mut self.stream,
                &mut self.rbuf,
                cx
            )) {
                Ok(0) => Err(self.io_error(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => Ok(()),
                Err(e) => Err(self.io_error(e)),
            },
        )
    }

    /// Writes all bytes.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> Result<(), ServerError> {
        let taken = self.write_now(bytes)?;
        self.write_rest(&bytes[taken..]).await
    }

    /// Writes what the socket takes right now (see [`crate::socket::write_now`]): how many bytes
    /// went. Callers on the hot path await [`Self::write_rest`] only for a rest, so the usual
    /// write builds no future.
    pub(crate) fn write_now(&mut self, bytes: &[u8]) -> Result<usize, ServerError> {
        match crate::socket::write_now(&self.stream, bytes) {
            Ok(rest) => Ok(bytes.len() - rest.len()),
            Err(e) => Err(self.io_error(e)),
        }
    }

    /// Writes all of `rest`, waiting for the socket as needed.
    pub(crate) async fn write_rest(&mut self, rest: &[u8]) -> Result<(), ServerError> {
        if rest.is_empty() {
            return Ok(());
        }
        match self.stream.write_all(rest).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.io_error(e)),
        }
    }

    pub(crate) fn io_error(&self, source: std::io::Error) -> ServerError {
        ServerError::Io {
            addr: self.info.addr.clone(),
            source,
        }
    }

    /// A non-blocking liveness check for an idle connection: an idle server sends nothing, so any
    /// readable byte (usually a FATAL before close) or EOF means the connection is gone.
    pub(crate) fn is_idle_and_open(&mut self) -> bool {
        if !self.rbuf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}
