//! `pgfleet tenant` as a library: provisioning tenants of a database with tenancy (create, list,
//! show, suspend, resume, drop) and the row-level security policies of the row model. Decisions
//! (which shard, what SQL, whether a policy is right) are pure functions; the I/O around them is
//! thin, over tokio-postgres. See docs/tenancy.md, "pgfleet tenant".
//!
//! Module map:
//! - [`scope`]: which database a command manages, where a tenant goes (shard by hash of its name,
//!   or pinned) and where it lives (cluster, shard) (pure);
//! - [`login`]: the server login tools use, and the roles the proxy logs in as (pure);
//! - [`lifecycle`]: a tenant's schema or database, the SQL that creates and drops it, state
//!   changes (pure);
//! - [`provision`]: [`Tenants`], the commands over the tenant directory and the servers (I/O);
//! - [`policy`]: the expected `pgfleet_tenant_isolation` policy, comparing it with what a table
//!   has, and the SQL that fixes it (pure);
//! - [`rls`]: reading tables, policies and roles from every shard, applying the fixes (I/O);
//! - [`report`]: printable text for list, show and policies (pure);
//! - `error`: [`TenantError`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod lifecycle;
pub mod login;
pub mod policy;
pub mod provision;
pub mod report;
pub mod rls;
pub mod scope;

pub use error::TenantError;
pub use lifecycle::TenantObject;
pub use login::{proxy_roles, tool_login};
pub use provision::{CreateOptions, Created, Dropped, StateOutcome, Tenants};
pub use rls::{check_policies, PolicyReport};
pub use scope::choose_database;
