//! SQL analysis on the real PostgreSQL grammar (pg_query): which statements change session state.
//!
//! In transaction pooling a client's statements run on whichever server is free, so the proxy must
//! know, per SQL text, what a statement does to the *session*: remember and replay settings, pin
//! the client to its server when the state cannot be replayed, and follow SQL-level `DEALLOCATE`.
//!
//! Module map (in the order a query flows through them):
//! - [`prefilter`]: allocation-free keyword check that lets most queries skip the parser.
//! - [`analyze`]: parse with pg_query and classify each top-level statement.
//! - `walk` (+ generated `children`): explicit-stack walk over every node of a statement.
//! - [`effect`]: the result types ([`SessionEffect`], [`PinReason`], [`TransactionOp`], [`Analysis`]).
//! - [`cache`]: the [`Analyzer`], prefilter + bounded LRU cache of analyses keyed by exact text.
#![forbid(unsafe_code)]

pub mod analyze;
pub mod cache;
#[allow(clippy::all)]
mod children;
pub mod effect;
pub mod prefilter;
mod walk;

pub use analyze::analyze_uncached;
pub use cache::Analyzer;
pub use effect::{Analysis, PinReason, SessionEffect, TransactionOp};
pub use prefilter::may_affect_session;
