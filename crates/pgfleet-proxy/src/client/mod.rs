//! One client connection from accept to close: startup packet, authentication, then either the
//! admin console or a pooled session.

mod auth_flow;
mod conn;
mod handshake;

pub use auth_flow::VerifierCache;
pub use conn::ClientConn;
pub(crate) use handshake::handle_connection;
