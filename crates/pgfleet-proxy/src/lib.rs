//! The pgfleet data path, in flow order:
//!
//! - [`listen`]: accept loop, connection limit, graceful shutdown ([`Proxy`]).
//! - [`client`]: startup packet, SSL/GSS refusal, cancel forwarding, authentication ([`auth`]).
//! - [`session`]: one client's session: settings replay, pinning, server checkout per transaction.
//! - [`execute`]: translating client messages (prepared statement renaming) and routing server answers
//!   through the expected-response queue.
//! - [`server`]: server connections: login, framing, per-connection state; the pool manager.
//! - [`pools`]: pools per (user, database, cluster); [`prepared`]: the shared statement table.
//! - [`sharding`]: sharded and placed databases: a shard router per database, what a route means
//!   for one session (the session carries it out in `session/shards.rs`).
//! - [`fanout`]: statements that need several shards: merged SELECTs, writes in two-phase
//!   commit, recovery of in-doubt transactions (the session drives it in `session/fanout.rs`).
//! - [`settings`]: a set of session settings that compares in one step; `socket`: writing without
//!   a readiness wait when the socket takes it all, read buffers that start over when empty, and
//!   reads as poll functions (one `poll_fn` waits on a session's client and server).
//! - [`runtime`]: explicit shared state ([`Runtime`]); [`clients`], [`stats`]: what the admin console shows.
//! - [`tenancy`]: tenant identification, the tenant directory cache, tenant contexts and the
//!   statement guard (the session carries them out in `session/tenant.rs`).
//! - [`console`]: the admin database's query loop, answered by a [`console::Console`].

#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod clients;
pub mod console;
mod error;
pub(crate) mod execute;
pub mod fanout;
pub mod listen;
mod outline;
pub mod pools;
pub mod prepared;
pub mod replication;
pub mod route;
pub mod runtime;
pub mod server;
pub mod session;
pub mod settings;
pub mod sharding;
mod socket;
pub mod stats;
pub mod tenancy;

pub use error::{ProxyError, Side};
pub use listen::Proxy;
pub use runtime::Runtime;
