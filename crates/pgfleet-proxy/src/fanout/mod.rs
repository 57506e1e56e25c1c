//! Cross-shard execution (issue 4): a statement that needs several shards, outside a
//! transaction block. Module map:
//! - [`request`]: a client request read as one statement (simple or extended protocol);
//! - [`copy_rows`]: splitting COPY FROM STDIN rows by shard as they stream;
//! - [`explain`]: what EXPLAIN shows above the shards' plans;
//! - [`legs`]: the shards' server connections of one request;
//! - [`read`]: the merged SELECT loop (reads only the shards the merge wants rows from);
//! - [`tags`]: combined CommandComplete tags;
//! - [`twophase`]: names, the decision log, transactions in flight (SHOW TRANSACTIONS);
//! - [`recover`]: finishing in-doubt transactions after a crash.
//!
//! The session drives these in `session/fanout.rs`.

pub mod copy_rows;
pub mod explain;
pub mod legs;
pub mod read;
pub mod recover;
pub mod request;
pub mod tags;
pub mod twophase;
