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
    /// `None` once [`Guard::release`] gave the slot back.
    pub(crate) pool: Option<Arc<Inner<M>>>,
}

impl<M: Manager> Guard<M> {
    /// Marks the connection as unfit for reuse: it is closed instead of returned.
    pub fn discard(mut self) {
        if self.conn.take().is_some() {
            if let Some(pool) = &self.pool {
                pool.on_discard();
            }
        }
    }

    /// Returns the connection to the pool, as dropping the guard does: true when it went straight
    /// to a waiting checkout (the pool is contended).
    pub fn release(mut self) -> bool {
        match self.pool.take() {
            Some(pool) => pool.give_back(self.conn.take()),
            None => false,
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
        // The slot goes back with the connection (none after `discard`), unless `release` gave
        // it back already.
        if let Some(pool) = self.pool.take() {
            pool.give_back(self.conn.take());
        }
    }
}
