//! PostgreSQL protocol 3.0 messages, both directions, without any I/O.
//!
//! Module map:
//! - [`tag`]: the one place where message type bytes are spelled out.
//! - [`frame`]: splitting a byte buffer into whole messages ([`Frame`]) without copying.
//! - [`startup`]: the untagged first packet (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest).
//! - [`frontend`]: decoding and encoding client → server messages (Query, Parse, Bind, …).
//! - [`backend`]: decoding and encoding server → client messages (ErrorResponse, ReadyForQuery, …).
//! - [`rows`]: query results — RowDescription and DataRow views and encoders.
//! - [`error`]: the crate's error type.
//!
//! See the PostgreSQL documentation, chapter 55 "Frontend/Backend Protocol", section 55.7
//! "Message Formats" for the layouts implemented here.

#![forbid(unsafe_code)]

pub mod backend;
pub mod error;
pub mod frame;
pub mod frontend;
pub mod rows;
pub mod startup;
pub mod tag;

mod cursor;

pub use error::WireError;
pub use frame::{split_frame, Frame};
pub use startup::{split_startup, StartupPacket};
