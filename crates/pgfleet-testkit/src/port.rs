//! Free TCP ports on 127.0.0.1.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, PoisonError};

use crate::{Error, Result};

/// Ports this process already handed out: the kernel may return a port again as soon as our probe
/// listener closes, before the server that got it has bound it. Other processes can still race us;
/// the caller retries the start with a new port.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port that was free a moment ago (bind 127.0.0.1:0 and ask the kernel).
pub(crate) fn free_port() -> Result<u16> {
    for _ in 0..50 {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .map_err(Error::io("bind 127.0.0.1:0 to find a free port"))?;
        let port = listener
            .local_addr()
            .map_err(Error::io("read the address of a 127.0.0.1:0 listener"))?
            .port();
        let mut seen = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err(Error::Io {
        action: "find a free port on 127.0.0.1".into(),
        source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
    })
}
