//! The metadata database: state shared by every pgfleet instance and tool, kept in PostgreSQL in
//! one schema `pgfleet` that this crate alone owns and migrates.
//!
//! Module map:
//! - [`endpoint`]: logging in to a server, and finding a cluster's primary (tools only; the proxy
//!   has its own monitor);
//! - `schema`: the `pgfleet` schema's own versioned migrations, applied idempotently under an
//!   advisory lock when a [`MetaStore`] connects;
//! - [`store`]: [`MetaStore`], the connection everything else goes through;
//! - [`tenants`]: the tenant directory (CRUD; every change is announced with NOTIFY on
//!   [`TENANTS_CHANNEL`]);
//! - [`listen`]: [`TenantChanges`], a LISTEN connection that yields changed tenant names;
//! - [`decisions`]: the decision log of pgfleet's two-phase commits (a row = commit);
//! - [`ledger`]: the fleet migration ledger (`pgfleet migrate` skips targets when nothing is pending);
//! - `error`: [`MetaError`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod decisions;
pub mod endpoint;
mod error;
pub mod ledger;
pub mod listen;
mod schema;
pub mod store;
pub mod tenants;

pub use decisions::Decision;
pub use endpoint::{connect, find_primary, Endpoint, Login};
pub use error::MetaError;
pub use ledger::LedgerEntry;
pub use listen::TenantChanges;
pub use schema::SCHEMA_VERSION;
pub use store::MetaStore;
pub use tenants::{NewTenant, Tenant, TenantState, TENANTS_CHANNEL};
