//! Waiting for a slot: a FIFO queue of wait cells that a returning connection is handed to
//! directly, and the cell a caller keeps between checkouts so that a wait allocates nothing.
//! Deadlines are the pool's to watch (one task per pool with waiters), not each caller's: a wait
//! touches no timer.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::pool::Pooled;

/// What a queued caller has been given, or is still waiting for.
pub(crate) enum Wait<C> {
    /// Not queued.
    Idle,
    /// Queued; the waker to call once something is handed over.
    Waiting(Option<Waker>),
    /// A slot was handed over, with the connection that came back (`None`: a bare slot, e.g. the
    /// returned connection was discarded or the pool grew).
    Granted(Option<Box<Pooled<C>>>),
    /// The pool closed while the caller waited.
    Closed,
    /// The caller's deadline passed before anything was handed over.
    TimedOut,
}

/// How a wait ended without a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    Closed,
    TimedOut,
}

/// One queued caller. The pool's queue and the caller share it; the pool's state lock is taken
/// before the cell's whenever both are held.
pub(crate) struct WaitCell<C> {
    pub(crate) wait: Mutex<Wait<C>>,
}

impl<C> WaitCell<C> {
    pub(crate) fn new() -> Arc<WaitCell<C>> {
        Arc::new(WaitCell {
            wait: Mutex::new(Wait::Idle),
        })
    }

    /// A new cell, waiting already.
    pub(crate) fn queued() -> Arc<WaitCell<C>> {
        Arc::new(WaitCell {
            wait: Mutex::new(Wait::Waiting(None)),
        })
    }

    /// Hands `grant` over if the caller still waits; returns its waker (to call once no lock is
    /// held), or gives `grant` back when the caller is gone.
    pub(crate) fn grant(
        &self,
        grant: Option<Box<Pooled<C>>>,
    ) -> Result<Option<Waker>, Option<Box<Pooled<C>>>> {
        let mut w = self.wait.lock();
        match &mut *w {
            Wait::Waiting(waker) => {
                let waker = waker.take();
                *w = Wait::Granted(grant);
                Ok(waker)
            }
            _ => Err(grant),
        }
    }

    /// Tells a waiting caller that the pool closed.
    pub(crate) fn close(&self) -> Option<Waker> {
        self.end(Wait::Closed)
    }

    /// Tells a waiting caller that its deadline passed.
    pub(crate) fn time_out(&self) -> Option<Waker> {
        self.end(Wait::TimedOut)
    }

    fn end(&self, ended: Wait<C>) -> Option<Waker> {
        let mut w = self.wait.lock();
        match &mut *w {
            Wait::Waiting(waker) => {
                let waker = waker.take();
                *w = ended;
                waker
            }
            _ => None,
        }
    }

    /// What the caller got, if anything yet; registers `cx`'s waker otherwise.
    pub(crate) fn poll_granted(
        &self,
        cx: &Context<'_>,
    ) -> Poll<Result<Option<Box<Pooled<C>>>, Ended>> {
        let mut w = self.wait.lock();
        match &mut *w {
            Wait::Waiting(waker) => {
                match waker {
                    Some(old) if old.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Wait::Granted(_) => match std::mem::replace(&mut *w, Wait::Idle) {
                Wait::Granted(g) => Poll::Ready(Ok(g)),
                _ => unreachable!("matched Granted above"),
            },
            Wait::TimedOut => {
                *w = Wait::Idle;
                Poll::Ready(Err(Ended::TimedOut))
            }
            Wait::Closed | Wait::Idle => {
                *w = Wait::Idle;
                Poll::Ready(Err(Ended::Closed))
            }
        }
    }
}

/// What a caller keeps from one checkout to the next (see [`crate::Pool::get_timed`]): its wait
/// cell, reused for every wait (the queue holds it only while the caller waits).
pub struct Waiter<C> {
    pub(crate) cell: Arc<WaitCell<C>>,
}

impl<C> Waiter<C> {
    /// A new waiter.
    pub fn new() -> Waiter<C> {
        Waiter {
            cell: WaitCell::new(),
        }
    }

    /// The cell to queue: this waiter's own unless an earlier wait still shares it (not
    /// expected: a wait given up takes its cell out of the queue).
    pub(crate) fn fresh_cell(&mut self) -> Arc<WaitCell<C>> {
        if Arc::strong_count(&self.cell) != 1 {
            self.cell = WaitCell::new();
        }
        *self.cell.wait.lock() = Wait::Waiting(None);
        self.cell.clone()
    }
}

impl<C> Default for Waiter<C> {
    fn default() -> Self {
        Waiter::new()
    }
}
