//! What the pool needs from a connection type.

use std::future::Future;

/// Opens and checks connections of one endpoint.
pub trait Manager: Send + Sync + 'static {
    /// The pooled connection.
    type Conn: Send + 'static;
    /// Why a connect failed.
    type Error: Send + 'static;

    /// Opens a new connection.
    fn connect(&self) -> impl Future<Output = Result<Self::Conn, Self::Error>> + Send;

    /// A cheap, non-blocking check done at checkout: false discards the connection (e.g. the peer closed
    /// it while it sat idle).
    fn is_usable(&self, conn: &mut Self::Conn) -> bool;
}
