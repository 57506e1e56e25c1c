//! Carrying out a client's requests on a server connection: translating client messages (statement
//! renaming, re-preparing, session effects) and routing the server's answers back through the
//! expected-response queue.

pub(crate) mod exchange;
pub(crate) mod request;
