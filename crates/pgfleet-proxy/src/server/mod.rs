//! Server connections: login to PostgreSQL, framing, per-connection session state (settings we set,
//! statements we prepared), and the pool manager that opens them.

mod conn;
mod error;
mod login;
mod manager;
mod query;
mod state;

pub(crate) use conn::MAX_SERVER_MESSAGE;
pub use conn::{ServerConn, ServerInfo, ServerState};
pub use error::ServerError;
pub(crate) use login::login;
pub use manager::{ServerManager, ServerRegistry, ServerTarget};
pub use query::Rows;
