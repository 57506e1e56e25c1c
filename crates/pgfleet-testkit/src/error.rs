//! The testkit's error type: the shared local-cluster library's [`Error`], re-exported so tests
//! can match on its variants (`Error::Command { .. }` for a failed psql, …).

pub use pgfleet_localpg::Error;
