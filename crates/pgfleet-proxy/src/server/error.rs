//! Errors talking to a PostgreSQL server.

use pgfleet_wire::backend::ErrorFields;
use pgfleet_wire::WireError;

/// A server connection failure, with the endpoint it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// TCP connect failed.
    #[error("failed to connect to server {addr}: {source}")]
    Connect {
        /// host:port.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server rejected the login (its own ErrorResponse).
    #[error("server {addr} refused login: {}", fields.get(b'M').unwrap_or("no message"))]
    Login {
        /// host:port.
        addr: String,
        /// The server's error.
        fields: ErrorFields,
    },
    /// The server asks for a password and pgfleet has none for this user.
    #[error("server {addr} asks for a password for user `{user}` but the config has none usable (set users.<name>.server_password)")]
    NoPassword {
        /// host:port.
        addr: String,
        /// The server user.
        user: String,
    },
    /// The server asked for an authentication method pgfleet does not speak.
    #[error("server {addr} asks for an unsupported authentication method ({method})")]
    UnsupportedAuth {
        /// host:port.
        addr: String,
        /// Method description.
        method: String,
    },
    /// SCRAM exchange with the server failed.
    #[error("SCRAM authentication with server {addr} failed: {message}")]
    Scram {
        /// host:port.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// The server sent bytes that are not valid protocol.
    #[error("server {addr} sent an invalid message: {source}")]
    Protocol {
        /// host:port.
        addr: String,
        /// Decode error.
        source: WireError,
    },
    /// The server sent a message that makes no sense at this point.
    #[error("server {addr} sent an unexpected message '{}'", char::from(*tag).escape_default())]
    Unexpected {
        /// host:port.
        addr: String,
        /// Message type.
        tag: u8,
    },
    /// One of pgfleet's own queries failed on the server.
    #[error("query on server {addr} failed: {}", fields.get(b'M').unwrap_or("no message"))]
    Query {
        /// host:port.
        addr: String,
        /// The server's error.
        fields: ErrorFields,
    },
    /// Reading or writing the socket failed, or the server closed it.
    #[error("lost connection to server {addr}: {source}")]
    Io {
        /// host:port.
        addr: String,
        /// The OS error (UnexpectedEof when the server closed the connection).
        source: std::io::Error,
    },
}

impl ServerError {
    /// Whether the failure happened before any client query reached the server.
    pub fn before_any_query(&self) -> bool {
        matches!(
            self,
            ServerError::Connect { .. }
                | ServerError::Login { .. }
                | ServerError::NoPassword { .. }
                | ServerError::UnsupportedAuth { .. }
                | ServerError::Scram { .. }
        )
    }

    /// Whether the endpoint could not be reached at all (refused, reset, timed out), as opposed to
    /// refusing this login: a reason to ban it and try another.
    pub fn endpoint_unreachable(&self) -> bool {
        matches!(self, ServerError::Connect { .. } | ServerError::Io { .. })
    }

    /// SQLSTATE for a client affected by this failure.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ServerError::Connect { .. } => "08006",
            ServerError::Login { .. } | ServerError::NoPassword { .. } => "08004",
            ServerError::UnsupportedAuth { .. } | ServerError::Scram { .. } => "08004",
            ServerError::Protocol { .. } | ServerError::Unexpected { .. } => "08P01",
            ServerError::Query { .. } => "XX000",
            ServerError::Io { .. } => "08006",
        }
    }

    /// Client-facing text: names the endpoint, never a password.
    pub fn client_message(&self) -> String {
        self.to_string()
    }
}
