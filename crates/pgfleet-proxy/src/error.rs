//! The proxy's error type. Every error knows which side caused it, whether a retry is safe, and what
//! the client sees (SQLSTATE + message): internals and passwords never reach a client.

use pgfleet_wire::WireError;

/// Which side of the proxy an error came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client broke the protocol, failed authentication or disconnected.
    Client,
    /// A PostgreSQL server failed, refused or disconnected.
    Server,
    /// pgfleet itself (pool exhausted, shutting down, configuration).
    Internal,
}

/// An error on the data path.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Malformed client input (08P01).
    #[error("{0}")]
    ClientProtocol(#[from] WireError),
    /// Client sent something valid but not allowed here.
    #[error("{message}")]
    Client {
        /// SQLSTATE.
        code: &'static str,
        /// Message shown to the client.
        message: String,
    },
    /// The client connection broke.
    #[error("client connection: {0}")]
    ClientIo(std::io::Error),
    /// Connecting or talking to a server failed.
    #[error("{0}")]
    Server(#[from] crate::server::ServerError),
    /// No server connection became free in time (53300).
    #[error("{0}")]
    PoolExhausted(String),
    /// pgfleet is shutting down (57P01).
    #[error("pgfleet is shutting down")]
    ShuttingDown,
}

impl ProxyError {
    /// Which side caused it.
    pub fn side(&self) -> Side {
        match self {
            ProxyError::ClientProtocol(_) | ProxyError::Client { .. } | ProxyError::ClientIo(_) => {
                Side::Client
            }
            ProxyError::Server(_) => Side::Server,
            ProxyError::PoolExhausted(_) | ProxyError::ShuttingDown => Side::Internal,
        }
    }

    /// Whether the client may simply try again (nothing ran on a server).
    pub fn retry_safe(&self) -> bool {
        matches!(
            self,
            ProxyError::PoolExhausted(_) | ProxyError::ShuttingDown
        ) || matches!(self, ProxyError::Server(e) if e.before_any_query())
    }

    /// SQLSTATE for the client.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ProxyError::ClientProtocol(e) => e.sqlstate(),
            ProxyError::Client { code, .. } => code,
            ProxyError::ClientIo(_) => "08006",
            ProxyError::Server(e) => e.sqlstate(),
            ProxyError::PoolExhausted(_) => "53300",
            ProxyError::ShuttingDown => "57P01",
        }
    }

    /// The message a client sees.
    ///
    /// Errors that mirror PostgreSQL's own (authentication, unknown database, protocol violations)
    /// keep PostgreSQL's wording so drivers and people recognise them; pgfleet's own say `pgfleet:`.
    pub fn client_message(&self) -> String {
        match self {
            ProxyError::Client { message, .. } => message.clone(),
            ProxyError::ClientProtocol(e) => e.to_string(),
            ProxyError::Server(e) => format!("pgfleet: {}", e.client_message()),
            other => format!("pgfleet: {other}"),
        }
    }
}
