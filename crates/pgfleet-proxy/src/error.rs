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
    /// A server's ErrorResponse (the whole message), to pass to the client as it is.
    #[error("server error: {}", reported_message(.0))]
    Reported(bytes::Bytes),
}

/// The message field of a raw ErrorResponse.
fn reported_message(raw: &bytes::Bytes) -> String {
    raw.get(5..)
        .and_then(|body| pgfleet_wire::backend::ErrorFields::decode(body).ok())
        .and_then(|f| f.get(b'M').map(str::to_owned))
        .unwrap_or_default()
}

impl ProxyError {
    /// Which side caused it.
    pub fn side(&self) -> Side {
        match self {
            ProxyError::ClientProtocol(_) | ProxyError::Client { .. } | ProxyError::ClientIo(_) => {
                Side::Client
            }
            ProxyError::Server(_) | ProxyError::Reported(_) => Side::Server,
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
            // The client gets the server's own code with the raw message; this is for logs.
            ProxyError::Reported(_) => "XX000",
        }
    }

    /// The message a client sees.
    ///
    /// Errors that mirror PostgreSQL's own (authentication, unknown database, protocol violations)
    /// keep PostgreSQL's wording so drivers and people recognise them; pgfleet's own say `pgfleet:`.
    pub fn client_message(&self) -> String {
        // (A `Reported` error is sent to the client as the server's raw message instead: see
        // `encode_for_client`.)
        match self {
            ProxyError::Client { message, .. } => message.clone(),
            ProxyError::ClientProtocol(e) => e.to_string(),
            ProxyError::Server(e) => format!("pgfleet: {}", e.client_message()),
            ProxyError::Reported(raw) => reported_message(raw),
            other => format!("pgfleet: {other}"),
        }
    }
}

impl ProxyError {
    /// Appends the ErrorResponse the client sees.
    pub fn encode_for_client(&self, out: &mut bytes::BytesMut) {
        match self {
            ProxyError::Reported(raw) => out.extend_from_slice(raw),
            e => {
                pgfleet_wire::backend::encode_error(out, "ERROR", e.sqlstate(), &e.client_message())
            }
        }
    }
}
