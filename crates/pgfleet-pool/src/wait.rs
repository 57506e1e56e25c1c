//! Waiting for a slot: a FIFO queue of wait cells that a returning connection is handed to
//! directly, and the state a caller keeps between checkouts so that a wait allocates nothing and
//! moves no timer most of the time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::time::Sleep;

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
        let mut w = self.wait.lock();
        match &mut *w {
            Wait::Waiting(waker) => {
                let waker = waker.take();
                *w = Wait::Closed;
                waker
            }
            _ => None,
        }
    }

    /// What the caller got, if anything yet; registers `cx`'s waker otherwise.
    pub(crate) fn poll_granted(
        &self,
        cx: &Context<'_>,
    ) -> Poll<Result<Option<Box<Pooled<C>>>, ()>> {
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
            Wait::Closed | Wait::Idle => {
                *w = Wait::Idle;
                Poll::Ready(Err(()))
            }
        }
    }
}

/// What a caller keeps from one checkout to the next (see [`crate::Pool::get_timed`]): its wait
/// cell, reused for every wait, and a timer. A new timer per wait would be inserted into the
/// runtime's timer wheel and removed again each time; this one is moved only when it has fired or
/// would fire too late, so a wait that begins while an earlier wait's deadline is still ahead
/// leaves it as it is and, should it fire first, sets it again to its own deadline. A timer left
/// set after a checkout wakes its task once, for nothing, when it fires.
pub struct Waiter<C> {
    pub(crate) cell: Arc<WaitCell<C>>,
    timer: Pin<Box<Sleep>>,
}

impl<C> Waiter<C> {
    /// A new waiter (call inside a tokio runtime: it holds a timer).
    pub fn new() -> Waiter<C> {
        Waiter {
            cell: WaitCell::new(),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// A waiter for one wait, around a cell queued already.
    pub(crate) fn with_cell(cell: Arc<WaitCell<C>>) -> Waiter<C> {
        Waiter {
            cell,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
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

    /// Arms the timer for a wait that began at `start` and ends at `start + timeout`.
    pub(crate) fn arm(&mut self, start: Instant, timeout: Duration) {
        let deadline = deadline(start, timeout);
        let current = self.timer.deadline();
        if current <= tokio::time::Instant::from_std(start) || current > deadline {
            self.timer.as_mut().reset(deadline);
        }
    }

    /// Whether the wait that began at `start` has timed out; registers `cx` with the timer
    /// otherwise.
    pub(crate) fn poll_timeout(
        &mut self,
        cx: &mut Context<'_>,
        start: Instant,
        timeout: Duration,
    ) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            // It fired: at this wait's deadline, or at an earlier wait's.
            let deadline = deadline(start, timeout);
            if tokio::time::Instant::now() >= deadline {
                return true;
            }
            self.timer.as_mut().reset(deadline);
        }
    }
}

impl<C> Default for Waiter<C> {
    fn default() -> Self {
        Waiter::new()
    }
}

/// `start + timeout`; as tokio's own timeout, a deadline past the clock's range is 30 years.
fn deadline(start: Instant, timeout: Duration) -> tokio::time::Instant {
    let from = tokio::time::Instant::from_std(start);
    from.checked_add(timeout)
        .unwrap_or_else(|| from + Duration::from_secs(30 * 365 * 86_400))
}
