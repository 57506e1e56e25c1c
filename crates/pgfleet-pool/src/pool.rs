//! The pool: checkout with timeout, LIFO idle list, FIFO waiters served by direct hand-off,
//! lifetimes and idle reaping.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::wait::{Ended, Wait, WaitCell, Waiter};
use crate::{CheckoutError, Guard, Manager, Settings};

/// What [`Pool::get_preferring`] prefers: a test of an idle connection.
pub type Prefer<'a, C> = &'a (dyn Fn(&C) -> bool + Sync);

/// Idle connections [`Pool::get_preferring`] looks at, most recently used first.
pub const AFFINITY_SCAN: usize = 8;

pub(crate) struct Pooled<C> {
    pub(crate) conn: C,
    pub(crate) created: Instant,
    last_used: Instant,
}

pub(crate) struct Inner<M: Manager> {
    manager: M,
    settings: Mutex<Settings>,
    /// The durations a checkout reads, copied from `settings`: plain loads, where the lock would
    /// be a cache line every checkout on every thread writes.
    limits: Limits,
    /// Slots, idle connections and waiters under one lock: a connection coming back goes straight
    /// to the first waiter.
    state: Mutex<State<M::Conn>>,
    /// Open connections, idle or busy (connects in progress included).
    open: AtomicUsize,
    closed: AtomicBool,
    stats: Counters,
    /// Wakes the deadline watch early: a waiter with an earlier deadline than the one it sleeps
    /// until, or the pool closed (see [`watch_deadlines`]).
    watch_wake: tokio::sync::Notify,
}

/// A slot is the right to hold one connection (or to open one): `size` of them exist. Each is
/// free, held (by a [`Guard`] or a checkout opening a connection), or handed to a waiter.
pub(crate) struct State<C> {
    /// LIFO: the most recently used connection is reused first, so the rest age out under low
    /// load. Boxed: a checkout and a return move a pointer, not the whole connection.
    idle: Vec<Box<Pooled<C>>>,
    /// Free slots.
    free: usize,
    /// Slots to remove as they come back (the pool shrank while they were held).
    retire: usize,
    /// Callers waiting for a slot, first come first served.
    waiters: VecDeque<Queue<C>>,
    /// When the deadline watch will look at the queue next; `None`: no watch is running.
    watch: Option<Instant>,
}

/// A place in the wait queue.
pub(crate) struct Queue<C> {
    cell: Arc<WaitCell<C>>,
    /// When the wait times out (`None`: a timeout past the clock's range, never).
    deadline: Option<Instant>,
}

impl<C> State<C> {
    fn pop_idle(&mut self, prefer: Option<Prefer<'_, C>>) -> Option<Box<Pooled<C>>> {
        if let Some(prefer) = prefer {
            let n = self.idle.len();
            if let Some(i) = (n.saturating_sub(AFFINITY_SCAN)..n)
                .rev()
                .find(|&i| prefer(&self.idle[i].conn))
            {
                return Some(self.idle.remove(i));
            }
        }
        self.idle.pop()
    }

    /// What the deadline watch needs for a waiter about to be queued with `deadline`.
    fn watch_for(&mut self, deadline: Option<Instant>) -> Watch {
        match (self.watch, deadline) {
            (_, None) => Watch::Asleep,
            (None, Some(d)) => {
                self.watch = Some(d);
                Watch::Start
            }
            (Some(at), Some(d)) if d < at => {
                self.watch = Some(d);
                Watch::Wake
            }
            (Some(_), Some(_)) => Watch::Asleep,
        }
    }
}

/// What a newly queued waiter asks of the deadline watch.
enum Watch {
    /// Nothing: it will look at the queue by this waiter's deadline.
    Asleep,
    /// No watch is running: start one.
    Start,
    /// The watch sleeps past this waiter's deadline: wake it.
    Wake,
}

/// The pool's deadline watch, running while anyone waits: times out each waiter at its deadline
/// (one timer for the whole queue; a checkout itself touches none). It sleeps until the earliest
/// deadline in the queue, and ends once the queue is empty or the pool closed.
async fn watch_deadlines<M: Manager>(inner: Arc<Inner<M>>) {
    while let Some(next) = inner.expire_waiters(Instant::now()) {
        tokio::select! {
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(next)) => {}
            _ = inner.watch_wake.notified() => {}
        }
    }
}

/// Durations in nanoseconds (see [`Inner::limits`]).
#[derive(Default)]
struct Limits {
    checkout_timeout: AtomicU64,
    connect_timeout: AtomicU64,
    lifetime: AtomicU64,
}

impl Limits {
    fn new(s: &Settings) -> Limits {
        let l = Limits::default();
        l.store(s);
        l
    }

    fn store(&self, s: &Settings) {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.checkout_timeout
            .store(nanos(s.checkout_timeout), Ordering::Relaxed);
        self.connect_timeout
            .store(nanos(s.connect_timeout), Ordering::Relaxed);
        self.lifetime.store(nanos(s.lifetime), Ordering::Relaxed);
    }

    fn get(d: &AtomicU64) -> Duration {
        Duration::from_nanos(d.load(Ordering::Relaxed))
    }
}

/// A slot taken for a checkout: given back when dropped (a failed connect, a checkout dropped
/// while it connects), unless it became a [`Guard`]'s.
struct Slot<'a, M: Manager> {
    inner: &'a Arc<Inner<M>>,
}

impl<M: Manager> Slot<'_, M> {
    /// The checked-out connection, which gives the slot back when dropped.
    fn into_guard(self, conn: Box<Pooled<M::Conn>>) -> Guard<M> {
        let pool = self.inner.clone();
        std::mem::forget(self);
        Guard {
            conn: Some(conn),
            pool: Some(pool),
        }
    }
}

impl<M: Manager> Drop for Slot<'_, M> {
    fn drop(&mut self) {
        self.inner.give_back(None);
    }
}

/// A caller in the wait queue: takes itself out again when dropped before it got its slot (a
/// cancelled checkout), giving back whatever was handed to it meanwhile.
struct Queued<'a, M: Manager> {
    inner: &'a Inner<M>,
    cell: Arc<WaitCell<M::Conn>>,
    /// Still in the queue, or holding what was handed over (cleared once the wait is over).
    armed: bool,
}

impl<M: Manager> Drop for Queued<'_, M> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(granted) = self.inner.withdraw(&self.cell) {
            self.inner.give_back(granted);
        }
    }
}

#[derive(Default)]
struct Counters {
    checkouts: AtomicU64,
    connects: AtomicU64,
    connect_errors: AtomicU64,
    timeouts: AtomicU64,
    discarded: AtomicU64,
    wait_micros: AtomicU64,
}

/// A point-in-time view of a pool, for the admin console and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Configured maximum.
    pub size: usize,
    /// Open connections (idle + busy).
    pub open: usize,
    /// Idle connections.
    pub idle: usize,
    /// Checked-out connections.
    pub busy: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
    /// Successful checkouts since start.
    pub checkouts: u64,
    /// Connections opened since start.
    pub connects: u64,
    /// Failed connection attempts since start.
    pub connect_errors: u64,
    /// Checkouts that timed out.
    pub timeouts: u64,
    /// Connections discarded as broken or expired.
    pub discarded: u64,
    /// Total time callers spent waiting, in microseconds.
    pub wait_micros: u64,
}

/// What a checkout ends with.
pub type Checkout<M> = Result<Guard<M>, CheckoutError<<M as Manager>::Error>>;

/// A pool of connections to one endpoint. Cheap to clone.
pub struct Pool<M: Manager> {
    inner: Arc<Inner<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
        }
    }
}

impl<M: Manager> Pool<M> {
    /// A new, empty pool. Call [`Pool::maintain`] periodically to honour `min_idle` and timeouts.
    pub fn new(manager: M, settings: Settings) -> Pool<M> {
        Pool {
            inner: Arc::new(Inner {
                manager,
                limits: Limits::new(&settings),
                state: Mutex::new(State {
                    idle: Vec::new(),
                    free: settings.size,
                    retire: 0,
                    waiters: VecDeque::new(),
                    watch: None,
                }),
                settings: Mutex::new(settings),
                open: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                stats: Counters::default(),
                watch_wake: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The connection manager.
    pub fn manager(&self) -> &M {
        &self.inner.manager
    }

    /// Current settings.
    pub fn settings(&self) -> Settings {
        self.inner.settings.lock().clone()
    }

    /// Checks out a connection: an idle one if usable, else a new one, waiting up to the checkout
    /// timeout for a free slot.
    pub fn get(&self) -> impl Future<Output = Checkout<M>> + Send + '_ {
        self.checkout(None, None)
    }

    /// As [`Pool::get`], taking among the [`AFFINITY_SCAN`] most recently used idle connections
    /// the first one `prefer` accepts (one already in the caller's state, so that nothing needs
    /// to be sent to bring it there), else the most recently used one.
    pub fn get_preferring<'a>(
        &'a self,
        prefer: Option<Prefer<'a, M::Conn>>,
    ) -> impl Future<Output = Checkout<M>> + Send + 'a {
        self.checkout(prefer, None)
    }

    /// As [`Pool::get_preferring`], waiting (when all slots are taken) with the `waiter` the caller
    /// keeps from one checkout to the next: its cell is reused (see [`Waiter`]).
    ///
    /// These three return the checkout's own future (no wrapping `async fn`): one state machine
    /// less to build and poll per checkout.
    pub fn get_timed<'a>(
        &'a self,
        prefer: Option<Prefer<'a, M::Conn>>,
        waiter: &'a mut Waiter<M::Conn>,
    ) -> impl Future<Output = Checkout<M>> + Send + 'a {
        self.checkout(prefer, Some(waiter))
    }

    async fn checkout(
        &self,
        prefer: Option<Prefer<'_, M::Conn>>,
        mut waiter: Option<&mut Waiter<M::Conn>>,
    ) -> Checkout<M> {
        let inner = &self.inner;
        let start = Instant::now();
        // A free slot (and the idle connection to try first), or a place in the queue.
        let mut watch = Watch::Asleep;
        let queued_cell = {
            let mut state = inner.state.lock();
            // Checked under the lock: `close` sets the flag before it takes the lock to empty the
            // queue, so a caller queued after that point cannot be left behind.
            if inner.closed.load(Ordering::Acquire) {
                return Err(CheckoutError::Closed);
            }
            if state.free > 0 {
                state.free -= 1;
                Ok(state.pop_idle(prefer))
            } else {
                let cell = match &mut waiter {
                    Some(w) => w.fresh_cell(),
                    None => WaitCell::queued(),
                };
                let deadline = start.checked_add(Limits::get(&inner.limits.checkout_timeout));
                watch = state.watch_for(deadline);
                state.waiters.push_back(Queue {
                    cell: cell.clone(),
                    deadline,
                });
                Err(cell)
            }
        };
        match watch {
            Watch::Asleep => {}
            Watch::Start => {
                tokio::spawn(watch_deadlines(inner.clone()));
            }
            Watch::Wake => inner.watch_wake.notify_one(),
        }
        let (mut candidate, now) = match queued_cell {
            Ok(c) => (c, start),
            Err(cell) => {
                let mut queued = Queued {
                    inner,
                    cell,
                    armed: true,
                };
                let res = std::future::poll_fn(|cx| queued.cell.poll_granted(cx)).await;
                queued.armed = false;
                drop(queued);
                let now = Instant::now();
                inner.stats.wait_micros.fetch_add(
                    now.saturating_duration_since(start).as_micros() as u64,
                    Ordering::Relaxed,
                );
                match res {
                    Ok(granted) => (granted, now),
                    Err(Ended::Closed) => return Err(CheckoutError::Closed),
                    Err(Ended::TimedOut) => {
                        inner.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                        let s = self.stats();
                        return Err(CheckoutError::Timeout {
                            waited: now.saturating_duration_since(start),
                            size: s.size,
                            busy: s.busy,
                            waiting: s.waiting,
                        });
                    }
                }
            }
        };
        let slot = Slot { inner };
        while let Some(mut c) = candidate {
            if inner.expired(&c, now) || !inner.manager.is_usable(&mut c.conn) {
                inner.on_discard();
                candidate = inner.state.lock().pop_idle(prefer);
                continue;
            }
            inner.stats.checkouts.fetch_add(1, Ordering::Relaxed);
            return Ok(slot.into_guard(c));
        }
        let conn = inner
            .open_one(Limits::get(&inner.limits.connect_timeout))
            .await?;
        inner.stats.checkouts.fetch_add(1, Ordering::Relaxed);
        Ok(slot.into_guard(conn))
    }

    /// Closes idle connections past their idle timeout (keeping `min_idle`) or lifetime, then opens
    /// connections until `min_idle` are idle. Errors while opening are counted and otherwise ignored:
    /// the next checkout reports them to a client.
    pub async fn maintain(&self) {
        let inner = &self.inner;
        let s = self.settings();
        let now = Instant::now();
        {
            let mut state = inner.state.lock();
            let idle = &mut state.idle;
            let before = idle.len();
            let mut keep = idle.len();
            idle.retain(|c| {
                let idle_expired = !s.idle_timeout.is_zero()
                    && now.duration_since(c.last_used) >= s.idle_timeout
                    && keep > s.min_idle;
                let drop_it = idle_expired || inner.expired(c, now);
                if drop_it {
                    keep -= 1;
                }
                !drop_it
            });
            let removed = before - idle.len();
            inner.open.fetch_sub(removed, Ordering::AcqRel);
        }
        while !inner.closed.load(Ordering::Acquire) {
            {
                let mut state = inner.state.lock();
                if state.idle.len() >= s.min_idle || state.free == 0 {
                    break;
                }
                state.free -= 1;
            }
            let slot = Slot { inner };
            match inner.open_one(s.connect_timeout).await {
                Ok(c) => {
                    std::mem::forget(slot);
                    inner.give_back(Some(c));
                }
                Err(_) => break,
            }
        }
    }

    /// Applies new settings. Growing adds slots at once (to the waiters first); shrinking removes
    /// free slots at once and the rest as busy connections come back.
    pub fn set_settings(&self, new: Settings) {
        let old_size = {
            let mut s = self.inner.settings.lock();
            let old = s.size;
            *s = new.clone();
            self.inner.limits.store(&new);
            old
        };
        if new.size > old_size {
            let added = {
                let mut state = self.inner.state.lock();
                let cancelled = (new.size - old_size).min(state.retire);
                state.retire -= cancelled;
                new.size - old_size - cancelled
            };
            for _ in 0..added {
                self.inner.give_back(None);
            }
        } else if new.size < old_size {
            let mut state = self.inner.state.lock();
            let excess = old_size - new.size;
            let now_free = excess.min(state.free);
            state.free -= now_free;
            state.retire += excess - now_free;
            if state.idle.len() > new.size {
                let extra = state.idle.len() - new.size;
                state.idle.drain(..extra);
                self.inner.open.fetch_sub(extra, Ordering::AcqRel);
            }
        }
    }

    /// Closes the pool: waiting and future checkouts fail, idle connections are dropped, busy ones are
    /// dropped when returned.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let (drained, waiters) = {
            let mut state = self.inner.state.lock();
            (
                std::mem::take(&mut state.idle),
                std::mem::take(&mut state.waiters),
            )
        };
        self.inner.open.fetch_sub(drained.len(), Ordering::AcqRel);
        for w in waiters {
            if let Some(waker) = w.cell.close() {
                waker.wake();
            }
        }
        // A deadline watch still asleep ends now.
        self.inner.watch_wake.notify_one();
    }

    /// Drops every idle connection (e.g. after the server restarted).
    pub fn drain_idle(&self) {
        let drained: Vec<_> = std::mem::take(&mut self.inner.state.lock().idle);
        self.inner.open.fetch_sub(drained.len(), Ordering::AcqRel);
    }

    /// Counters and gauges.
    pub fn stats(&self) -> PoolStats {
        let inner = &self.inner;
        let (idle, waiting) = {
            let state = inner.state.lock();
            (state.idle.len(), state.waiters.len())
        };
        let open = inner.open.load(Ordering::Acquire);
        let size = inner.settings.lock().size;
        PoolStats {
            size,
            open,
            idle,
            busy: open.saturating_sub(idle),
            waiting,
            checkouts: inner.stats.checkouts.load(Ordering::Relaxed),
            connects: inner.stats.connects.load(Ordering::Relaxed),
            connect_errors: inner.stats.connect_errors.load(Ordering::Relaxed),
            timeouts: inner.stats.timeouts.load(Ordering::Relaxed),
            discarded: inner.stats.discarded.load(Ordering::Relaxed),
            wait_micros: inner.stats.wait_micros.load(Ordering::Relaxed),
        }
    }
}

impl<M: Manager> Inner<M> {
    fn expired(&self, c: &Pooled<M::Conn>, now: Instant) -> bool {
        let lifetime = Limits::get(&self.limits.lifetime);
        !lifetime.is_zero() && now.duration_since(c.created) >= lifetime
    }

    async fn open_one(
        &self,
        connect_timeout: Duration,
    ) -> Result<Box<Pooled<M::Conn>>, CheckoutError<M::Error>> {
        self.open.fetch_add(1, Ordering::AcqRel);
        let res = tokio::time::timeout(connect_timeout, self.manager.connect()).await;
        match res {
            Ok(Ok(conn)) => {
                self.stats.connects.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                Ok(Box::new(Pooled {
                    conn,
                    created: now,
                    last_used: now,
                }))
            }
            Ok(Err(e)) => {
                self.open.fetch_sub(1, Ordering::AcqRel);
                self.stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                Err(CheckoutError::Connect(e))
            }
            Err(_) => {
                self.open.fetch_sub(1, Ordering::AcqRel);
                self.stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                Err(CheckoutError::ConnectTimeout(connect_timeout))
            }
        }
    }

    /// Gives a slot back with the connection it held, if any: to the first waiter (which checks
    /// the connection itself), else to the free slots and the connection to the idle list, unless
    /// it is expired or the pool closed. One lock either way. True when a waiter took it.
    pub(crate) fn give_back(&self, mut conn: Option<Box<Pooled<M::Conn>>>) -> bool {
        if conn.is_some() && self.closed.load(Ordering::Acquire) {
            conn = None;
            self.on_discard();
        }
        // A connection closed here: dropped (its socket closed) only once the lock is released.
        let mut closed = None;
        let mut state = self.state.lock();
        if state.retire > 0 {
            // The slot goes; its connection stays idle while the idle list has room.
            state.retire -= 1;
            if let Some(c) = conn {
                closed = if state.idle.len() < self.settings_size() {
                    self.park_idle(&mut state, c)
                } else {
                    self.on_discard();
                    Some(c)
                };
            }
            drop(state);
            drop(closed);
            return false;
        }
        while let Some(Queue { cell: w, .. }) = state.waiters.pop_front() {
            let granted = w.grant(conn);
            // The queue's reference goes before the waiter can run again: its next wait reuses
            // the cell only when nobody else holds it.
            drop(w);
            match granted {
                Ok(waker) => {
                    drop(state);
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                    return true;
                }
                // Not waiting any more (it is taking itself out): the next one.
                Err(back) => conn = back,
            }
        }
        state.free += 1;
        if let Some(c) = conn {
            closed = self.park_idle(&mut state, c);
        }
        drop(state);
        drop(closed);
        false
    }

    /// Puts a returned connection on the idle list, or counts it discarded when it is past its
    /// lifetime and returns it (for the caller to close once the lock is released).
    fn park_idle(
        &self,
        state: &mut State<M::Conn>,
        mut conn: Box<Pooled<M::Conn>>,
    ) -> Option<Box<Pooled<M::Conn>>> {
        let now = Instant::now();
        if self.expired(&conn, now) {
            self.on_discard();
            return Some(conn);
        }
        conn.last_used = now;
        state.idle.push(conn);
        None
    }

    fn settings_size(&self) -> usize {
        self.settings.lock().size
    }

    /// Takes a waiter out of the queue; returns what was handed to it meanwhile (`Some`), which the
    /// caller then owns.
    fn withdraw(&self, cell: &WaitCell<M::Conn>) -> Option<Option<Box<Pooled<M::Conn>>>> {
        let mut state = self.state.lock();
        let mut w = cell.wait.lock();
        match std::mem::replace(&mut *w, Wait::Idle) {
            Wait::Granted(g) => Some(g),
            Wait::Waiting(_) => {
                drop(w);
                state
                    .waiters
                    .retain(|q| !std::ptr::eq(Arc::as_ptr(&q.cell), cell));
                None
            }
            Wait::Closed | Wait::TimedOut | Wait::Idle => None,
        }
    }

    /// Times out the waiters whose deadline is past `now`; returns when to look again (`None`:
    /// no deadline left to watch, or the pool closed; the watch ends).
    fn expire_waiters(&self, now: Instant) -> Option<Instant> {
        let mut wakers = Vec::new();
        let next = {
            let mut state = self.state.lock();
            if self.closed.load(Ordering::Acquire) {
                state.watch = None;
                return None;
            }
            state.waiters.retain(|q| match q.deadline {
                Some(d) if d <= now => {
                    wakers.extend(q.cell.time_out());
                    false
                }
                _ => true,
            });
            let next = state.waiters.iter().filter_map(|q| q.deadline).min();
            state.watch = next;
            next
        };
        for waker in wakers {
            waker.wake();
        }
        next
    }

    pub(crate) fn on_discard(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.stats.discarded.fetch_add(1, Ordering::Relaxed);
    }
}
