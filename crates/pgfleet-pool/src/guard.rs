//! The checked-out connection handle.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Instant;

use crate::pool::{Inner, Pooled};
use crate::Manager;

/// A checked-out connection. Dropping it returns the connection to the pool, unless
/// [`Guard::discard`] was called (the connection is then closed), and frees its slot.
pub struct Guard<M: Manager> {
    pub(crate) conn: Option<Box<Pooled<M::Conn>>>,
    pub(crate) pool: Arc<Inner<M>>,
}

impl<M: Manager> Guard<M> {
    /// Marks the connection as unfit for reuse: it is closed instead of returned.
    pub fn discard(mut self) {
        if self.conn.take().is_some() {
            self.pool.on_discard();
        }
    }

    /// When the connection was opened.
    pub fn created(&self) -> Option<Instant> {
        self.conn.as_ref().map(|c| c.created)
    }
}

impl<M: Manager> Deref for Guard<M> {
    type Target = M::Conn;
    fn deref(&self) -> &M::Conn {
        // Invariant: `conn` is only None after `discard`, which consumes the guard.
        match &self.conn {
            Some(c) => &c.conn,
            None => unreachable!("guard used after discard"),
        }
    }
}

impl<M: Manager> DerefMut for Guard<M> {
    fn deref_mut(&mut self) -> &mut M::Conn {
        match &mut self.conn {
            Some(c) => &mut c.conn,
            None => unreachable!("guard used after discard"),
        }
    }
}

impl<M: Manager> Drop for Guard<M> {
    fn drop(&mut self) {
        // The slot goes back with the connection (none after `discard`).
        self.pool.give_back(self.conn.take());
    }
}
