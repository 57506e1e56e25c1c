//! The pool: checkout with timeout, LIFO idle list, lifetimes and idle reaping.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::time::Sleep;

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
    /// LIFO: the most recently used connection is reused first, so the rest age out under low load.
    /// Boxed: a checkout and a return move a pointer, not the whole connection.
    idle: Mutex<Vec<Box<Pooled<M::Conn>>>>,
    pub(crate) permits: Arc<Semaphore>,
    /// Open connections, idle or busy (connects in progress included).
    open: AtomicUsize,
    waiting: AtomicUsize,
    closed: AtomicBool,
    stats: Counters,
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

/// A slot of the pool, taken from the semaphore with its permit forgotten (a checkout then moves
/// no reference count): given back when dropped, unless it became a [`Guard`]'s.
struct Slot<'a, M: Manager> {
    inner: &'a Arc<Inner<M>>,
}

impl<'a, M: Manager> Slot<'a, M> {
    fn new(inner: &'a Arc<Inner<M>>, permit: tokio::sync::SemaphorePermit<'_>) -> Slot<'a, M> {
        permit.forget();
        Slot { inner }
    }

    /// The checked-out connection, which gives the slot back when dropped.
    fn into_guard(self, conn: Box<Pooled<M::Conn>>) -> Guard<M> {
        let pool = self.inner.clone();
        std::mem::forget(self);
        Guard {
            conn: Some(conn),
            pool,
        }
    }
}

impl<M: Manager> Drop for Slot<'_, M> {
    fn drop(&mut self) {
        self.inner.permits.add_permits(1);
    }
}

/// Counts a caller in `waiting` while it waits for a slot, also when its checkout is dropped
/// mid-wait (a cancelled future).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(waiting: &'a AtomicUsize) -> Waiting<'a> {
        waiting.fetch_add(1, Ordering::AcqRel);
        Waiting(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
        let permits = Arc::new(Semaphore::new(settings.size));
        Pool {
            inner: Arc::new(Inner {
                manager,
                limits: Limits::new(&settings),
                settings: Mutex::new(settings),
                idle: Mutex::new(Vec::new()),
                permits,
                open: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                stats: Counters::default(),
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
    pub async fn get(&self) -> Result<Guard<M>, CheckoutError<M::Error>> {
        self.get_preferring(None).await
    }

    /// As [`Pool::get`], taking among the [`AFFINITY_SCAN`] most recently used idle connections
    /// the first one `prefer` accepts (one already in the caller's state, so that nothing needs
    /// to be sent to bring it there), else the most recently used one.
    pub async fn get_preferring(
        &self,
        prefer: Option<Prefer<'_, M::Conn>>,
    ) -> Result<Guard<M>, CheckoutError<M::Error>> {
        self.checkout(prefer, None).await
    }

    /// As [`Pool::get_preferring`], timing a wait for a free slot with `timer`, which the caller
    /// keeps from one checkout to the next. Moving a registered timer to a later deadline is one
    /// atomic operation; a new timer for every wait is inserted into the runtime's timer wheel
    /// and removed again each time. Once the checkout is done the timer stays set: when its
    /// deadline passes it wakes the caller's task once, for nothing (harmless).
    pub async fn get_timed(
        &self,
        prefer: Option<Prefer<'_, M::Conn>>,
        timer: Pin<&mut Sleep>,
    ) -> Result<Guard<M>, CheckoutError<M::Error>> {
        self.checkout(prefer, Some(timer)).await
    }

    async fn checkout(
        &self,
        prefer: Option<Prefer<'_, M::Conn>>,
        timer: Option<Pin<&mut Sleep>>,
    ) -> Result<Guard<M>, CheckoutError<M::Error>> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(CheckoutError::Closed);
        }
        // One clock reading serves the wait's length and the lifetime checks below.
        let (slot, now) = match inner.permits.try_acquire() {
            Ok(p) => (Slot::new(inner, p), Instant::now()),
            Err(_) => {
                let timeout = Limits::get(&inner.limits.checkout_timeout);
                let start = Instant::now();
                let waiting = Waiting::new(&inner.waiting);
                let res = match timer {
                    Some(mut timer) => {
                        let from = tokio::time::Instant::from_std(start);
                        // As tokio's own timeout: a deadline past the clock's range is 30 years.
                        let deadline = from
                            .checked_add(timeout)
                            .unwrap_or_else(|| from + Duration::from_secs(30 * 365 * 86_400));
                        timer.as_mut().reset(deadline);
                        let mut acquire = std::pin::pin!(inner.permits.acquire());
                        std::future::poll_fn(|cx| match acquire.as_mut().poll(cx) {
                            Poll::Ready(p) => Poll::Ready(Ok(p)),
                            Poll::Pending => timer.as_mut().poll(cx).map(|()| Err(())),
                        })
                        .await
                    }
                    None => tokio::time::timeout(timeout, inner.permits.acquire())
                        .await
                        .map_err(|_| ()),
                };
                drop(waiting);
                let now = Instant::now();
                inner.stats.wait_micros.fetch_add(
                    now.saturating_duration_since(start).as_micros() as u64,
                    Ordering::Relaxed,
                );
                match res {
                    Ok(Ok(p)) => (Slot::new(inner, p), now),
                    Ok(Err(_)) => return Err(CheckoutError::Closed),
                    Err(_) => {
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
        while let Some(mut c) = inner.pop_idle(prefer) {
            if inner.expired(&c, now) || !inner.manager.is_usable(&mut c.conn) {
                inner.on_discard();
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
            let mut idle = inner.idle.lock();
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
        while !inner.closed.load(Ordering::Acquire) && inner.idle.lock().len() < s.min_idle {
            let Ok(permit) = inner.permits.clone().try_acquire_owned() else {
                break;
            };
            match inner.open_one(s.connect_timeout).await {
                Ok(c) => {
                    inner.give_back(c);
                    drop(permit);
                }
                Err(_) => break,
            }
        }
    }

    /// Applies new settings. Growing adds slots at once; shrinking removes free slots at once and the
    /// rest as busy connections come back.
    pub fn set_settings(&self, new: Settings) {
        let old_size = {
            let mut s = self.inner.settings.lock();
            let old = s.size;
            *s = new.clone();
            self.inner.limits.store(&new);
            old
        };
        if new.size > old_size {
            self.inner.permits.add_permits(new.size - old_size);
        } else if new.size < old_size {
            let excess = old_size - new.size;
            let forgotten = self.inner.permits.forget_permits(excess);
            let rest = excess - forgotten;
            if rest > 0 {
                let permits = self.inner.permits.clone();
                tokio::spawn(async move {
                    if let Ok(p) = permits.acquire_many_owned(rest as u32).await {
                        p.forget();
                    }
                });
            }
            self.inner.trim_idle(new.size);
        }
    }

    /// Closes the pool: waiting and future checkouts fail, idle connections are dropped, busy ones are
    /// dropped when returned.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.permits.close();
        let drained: Vec<_> = std::mem::take(&mut *self.inner.idle.lock());
        self.inner.open.fetch_sub(drained.len(), Ordering::AcqRel);
    }

    /// Drops every idle connection (e.g. after the server restarted).
    pub fn drain_idle(&self) {
        let drained: Vec<_> = std::mem::take(&mut *self.inner.idle.lock());
        self.inner.open.fetch_sub(drained.len(), Ordering::AcqRel);
    }

    /// Counters and gauges.
    pub fn stats(&self) -> PoolStats {
        let inner = &self.inner;
        let idle = inner.idle.lock().len();
        let open = inner.open.load(Ordering::Acquire);
        let size = inner.settings.lock().size;
        PoolStats {
            size,
            open,
            idle,
            busy: open.saturating_sub(idle),
            waiting: inner.waiting.load(Ordering::Acquire),
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
    fn pop_idle(&self, prefer: Option<Prefer<'_, M::Conn>>) -> Option<Box<Pooled<M::Conn>>> {
        let mut idle = self.idle.lock();
        if let Some(prefer) = prefer {
            let n = idle.len();
            if let Some(i) = (n.saturating_sub(AFFINITY_SCAN)..n)
                .rev()
                .find(|&i| prefer(&idle[i].conn))
            {
                return Some(idle.remove(i));
            }
        }
        idle.pop()
    }

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

    pub(crate) fn give_back(&self, mut conn: Box<Pooled<M::Conn>>) {
        let now = Instant::now();
        if self.closed.load(Ordering::Acquire) || self.expired(&conn, now) {
            self.on_discard();
            return;
        }
        conn.last_used = now;
        self.idle.lock().push(conn);
    }

    pub(crate) fn on_discard(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.stats.discarded.fetch_add(1, Ordering::Relaxed);
    }

    fn trim_idle(&self, size: usize) {
        let mut idle = self.idle.lock();
        if idle.len() > size {
            let extra = idle.len() - size;
            idle.drain(..extra);
            self.open.fetch_sub(extra, Ordering::AcqRel);
        }
    }
}
