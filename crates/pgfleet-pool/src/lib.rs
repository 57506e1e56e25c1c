//! A generic async connection pool that knows nothing about SQL.
//!
//! Module map:
//! - [`manager`]: the [`Manager`] trait a connection type implements (connect, cheap usability check).
//! - [`settings`]: sizes and timeouts, changeable at run time (reload).
//! - [`pool`]: the [`Pool`] itself (checkout queue with timeout, idle list, lifetimes, maintenance).
//! - [`wait`]: the wait queue's cells and the [`Waiter`] a caller keeps between checkouts.
//! - [`guard`]: the [`Guard`], the RAII handle that returns a connection on drop.
//! - [`error`]: why a checkout failed ([`CheckoutError`]).
//!
//! The pool counts connections in `size` slots: a checked-out connection holds a slot, an idle one
//! does not, and a connection is only opened by a slot holder that found no idle connection, so
//! idle plus busy never exceeds `size`. Slots, idle connections and the FIFO wait queue sit under one lock;
//! a connection that comes back while callers wait goes to the first of them directly (slot and
//! connection together), without passing through the idle list.

#![forbid(unsafe_code)]

pub mod error;
pub mod guard;
pub mod manager;
pub mod pool;
pub mod settings;
pub mod wait;

pub use error::CheckoutError;
pub use guard::Guard;
pub use manager::Manager;
pub use pool::{Pool, PoolStats, Prefer};
pub use settings::Settings;
pub use wait::Waiter;
