//! Behaviour of the pool with an in-memory connection type (the pool knows no SQL, so no database is
//! involved here; the proxy's integration tests cover real PostgreSQL connections).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pgfleet_pool::{CheckoutError, Manager, Pool, Settings, Waiter};

#[derive(Default)]
struct Counter {
    made: AtomicUsize,
    fail: AtomicBool,
}

struct Conn {
    id: usize,
    usable: bool,
}

struct M(Arc<Counter>);

impl Manager for M {
    type Conn = Conn;
    type Error = &'static str;
    async fn connect(&self) -> Result<Conn, &'static str> {
        if self.0.fail.load(Ordering::SeqCst) {
            return Err("refused");
        }
        Ok(Conn {
            id: self.0.made.fetch_add(1, Ordering::SeqCst),
            usable: true,
        })
    }
    fn is_usable(&self, c: &mut Conn) -> bool {
        c.usable
    }
}

fn settings(size: usize) -> Settings {
    Settings {
        size,
        checkout_timeout: Duration::from_millis(100),
        ..Settings::default()
    }
}

/// Settings whose checkouts wait long enough for a test to act while they wait.
fn patient(size: usize) -> Settings {
    Settings {
        checkout_timeout: Duration::from_secs(5),
        ..settings(size)
    }
}

/// Starts a checkout in a task and returns once it waits in the queue; the task yields the id of
/// the connection it got.
async fn queued_checkout(
    pool: &Pool<M>,
) -> tokio::task::JoinHandle<Result<usize, CheckoutError<&'static str>>> {
    let before = pool.stats().waiting;
    let p = pool.clone();
    let task = tokio::spawn(async move { p.get().await.map(|g| g.id) });
    while pool.stats().waiting <= before {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    task
}

#[tokio::test]
async fn reuses_connections_and_bounds_size() {
    let counter = Arc::new(Counter::default());
    let pool = Pool::new(M(counter.clone()), settings(2));
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    assert_ne!(a.id, b.id);
    let err = pool.get().await.err().unwrap();
    match err {
        CheckoutError::Timeout { size, busy, .. } => assert_eq!((size, busy), (2, 2)),
        other => panic!("unexpected {other:?}"),
    }
    let a_id = a.id;
    drop(a);
    let c = pool.get().await.unwrap();
    assert_eq!(c.id, a_id, "an idle connection is reused");
    assert_eq!(counter.made.load(Ordering::SeqCst), 2);
    drop((b, c));
    assert_eq!(pool.stats().idle, 2);
}

#[tokio::test]
async fn waiters_get_returned_connections() {
    let pool = Pool::new(M(Arc::default()), patient(1));
    let a = pool.get().await.unwrap();
    let waiter = queued_checkout(&pool).await;
    assert_eq!(pool.stats().waiting, 1);
    drop(a);
    assert_eq!(waiter.await.unwrap().unwrap(), 0);
}

#[tokio::test]
async fn release_says_whether_a_waiting_checkout_took_the_connection() {
    let pool = Pool::new(M(Arc::default()), patient(1));
    let a = pool.get().await.unwrap();
    let waiter = queued_checkout(&pool).await;
    assert!(a.release(), "the waiting checkout takes it");
    assert_eq!(waiter.await.unwrap().unwrap(), 0);
    let b = pool.get().await.unwrap();
    assert!(!b.release(), "nobody waits: it goes to the idle list");
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.busy, stats.open), (1, 0, 1));
    // The slot came back exactly once (not again when the released guard was dropped): one
    // checkout gets it, a second one waits.
    let c = pool.get().await.unwrap();
    assert_eq!(c.id, 0);
    let second = tokio::time::timeout(Duration::from_millis(200), pool.get()).await;
    assert!(second.is_err(), "a pool of one has one slot");
    assert_eq!(pool.stats().busy, 1);
}

#[tokio::test]
async fn discarded_and_unusable_connections_are_replaced() {
    let counter = Arc::new(Counter::default());
    let pool = Pool::new(M(counter.clone()), settings(1));
    let a = pool.get().await.unwrap();
    a.discard();
    assert_eq!(pool.stats().open, 0);
    let mut b = pool.get().await.unwrap();
    b.usable = false;
    drop(b);
    let c = pool.get().await.unwrap();
    assert_eq!(c.id, 2);
    assert_eq!(pool.stats().discarded, 2);
}

#[tokio::test]
async fn connect_errors_surface_and_free_the_slot() {
    let counter = Arc::new(Counter::default());
    counter.fail.store(true, Ordering::SeqCst);
    let pool = Pool::new(M(counter.clone()), settings(1));
    assert!(matches!(
        pool.get().await,
        Err(CheckoutError::Connect("refused"))
    ));
    counter.fail.store(false, Ordering::SeqCst);
    assert!(pool.get().await.is_ok());
    assert_eq!(pool.stats().connect_errors, 1);
}

#[tokio::test]
async fn maintain_fills_min_idle_and_reaps_idle_timeout() {
    let pool = Pool::new(
        M(Arc::default()),
        Settings {
            min_idle: 2,
            idle_timeout: Duration::from_millis(20),
            ..settings(4)
        },
    );
    pool.maintain().await;
    assert_eq!(pool.stats().idle, 2);
    let (a, b, c) = (
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    );
    drop((a, b, c));
    assert_eq!(pool.stats().idle, 3);
    tokio::time::sleep(Duration::from_millis(30)).await;
    pool.maintain().await;
    assert_eq!(pool.stats().idle, 2, "idle timeout keeps min_idle");
}

#[tokio::test]
async fn lifetime_expires_connections_on_return() {
    let pool = Pool::new(
        M(Arc::default()),
        Settings {
            lifetime: Duration::from_millis(10),
            ..settings(1)
        },
    );
    let a = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(a);
    assert_eq!(pool.stats().open, 0);
}

#[tokio::test]
async fn resize_and_close() {
    let pool = Pool::new(M(Arc::default()), settings(1));
    let a = pool.get().await.unwrap();
    pool.set_settings(settings(2));
    let b = pool.get().await.unwrap();
    drop((a, b));
    pool.set_settings(settings(1));
    assert_eq!(pool.stats().idle, 1);
    pool.close();
    assert!(matches!(pool.get().await, Err(CheckoutError::Closed)));
}

#[tokio::test]
async fn preferred_idle_connection_is_taken_first() {
    let pool = Pool::new(M(Arc::default()), settings(4));
    let held: Vec<_> = checkout_n(&pool, 3).await;
    let ids: Vec<usize> = held.iter().map(|g| g.id).collect();
    drop(held);
    // LIFO without a preference: the last returned.
    let last = *ids.last().unwrap();
    assert_eq!(pool.get().await.unwrap().id, last);
    // With one: the connection it accepts, wherever it is among the idle ones.
    let want = ids[0];
    let prefer = move |c: &Conn| c.id == want;
    let g = pool.get_preferring(Some(&prefer)).await.unwrap();
    assert_eq!(g.id, want);
    // None acceptable: the most recently used.
    let none = |_: &Conn| false;
    let h = pool.get_preferring(Some(&none)).await.unwrap();
    assert_eq!(h.id, last);
    assert_eq!(pool.stats().idle, 1);
}

#[tokio::test]
async fn a_kept_waiter_times_every_wait_and_a_dropped_wait_leaves_nothing_behind() {
    let counter = Arc::new(Counter::default());
    let pool = Pool::new(M(counter.clone()), settings(1));
    let mut waiter = Waiter::new();
    let held = pool.get_timed(None, &mut waiter).await.unwrap();
    // The same timer times out two waits in a row (the second after it fired once).
    for _ in 0..2 {
        let start = std::time::Instant::now();
        let err = pool.get_timed(None, &mut waiter).await.err().unwrap();
        assert!(matches!(err, CheckoutError::Timeout { .. }), "{err:?}");
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    }
    // A wait given up half way (its future dropped) is no longer counted and holds no slot.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(20), pool.get_timed(None, &mut waiter)).await;
    assert!(gave_up.is_err());
    assert_eq!(pool.stats().waiting, 0);
    drop(held);
    let again = pool.get_timed(None, &mut waiter).await.unwrap();
    assert_eq!(again.id, 0, "the one connection, reused");
    assert_eq!(pool.stats().busy, 1);
}

#[tokio::test]
async fn a_wait_that_starts_under_an_earlier_deadline_still_waits_its_whole_timeout() {
    let pool = Pool::new(M(Arc::default()), settings(1));
    let mut waiter = Waiter::new();
    let held = pool.get().await.unwrap();
    // The first wait arms the timer for t+100ms and is served at about t+50ms.
    let p2 = pool.clone();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Held again, so that the next wait has to time out.
        let again = p2.get().await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(again);
    });
    let first = pool.get_timed(None, &mut waiter).await.unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The second wait starts near t+70ms, while the timer still points at t+100ms: it must wait
    // until its own deadline, about t+170ms.
    let start = std::time::Instant::now();
    let err = pool.get_timed(None, &mut waiter).await.err().unwrap();
    assert!(matches!(err, CheckoutError::Timeout { .. }), "{err:?}");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(100),
        "cut short: {waited:?}"
    );
    release.abort();
}

#[tokio::test]
async fn returned_connections_go_to_waiters_in_arrival_order() {
    let pool = Pool::new(M(Arc::default()), patient(1));
    let held = pool.get().await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for n in 0..3 {
        let (p, tx) = (pool.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            let g = p.get().await.unwrap();
            tx.send((n, g.id)).unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }));
        // Queue them one after the other.
        while pool.stats().waiting < n + 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    drop(held);
    for want in 0..3 {
        let (n, id) = rx.recv().await.unwrap();
        assert_eq!(
            (n, id),
            (want, 0),
            "first come, first served, the one connection"
        );
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(pool.stats().waiting, 0);
    assert_eq!(pool.stats().idle, 1);
}

#[tokio::test]
async fn close_wakes_waiters_and_growing_serves_them() {
    let pool = Pool::new(M(Arc::default()), patient(1));
    let held = pool.get().await.unwrap();
    let grown = queued_checkout(&pool).await;
    pool.set_settings(patient(2));
    assert_eq!(
        grown.await.unwrap().unwrap(),
        1,
        "the new slot opened a connection"
    );
    // Shrunk back to one while both are held: the first to come back retires its slot.
    let second = pool.get().await.unwrap();
    pool.set_settings(patient(1));
    drop(second);
    let closed = queued_checkout(&pool).await;
    pool.close();
    assert!(matches!(closed.await.unwrap(), Err(CheckoutError::Closed)));
    drop(held);
    assert_eq!(
        pool.stats().open,
        0,
        "closing dropped the idle connection, and the held one when it came back"
    );
}

async fn checkout_n(pool: &Pool<M>, n: usize) -> Vec<pgfleet_pool::Guard<M>> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(pool.get().await.expect("checkout"));
    }
    v
}

#[tokio::test]
async fn a_shorter_timeout_after_a_reload_is_kept_while_an_older_wait_has_a_later_deadline() {
    let pool = Pool::new(M(Arc::default()), patient(1));
    let held = pool.get().await.unwrap();
    // A waiter with the 5 s timeout: the pool's deadline watch sleeps until then.
    let p2 = pool.clone();
    let long = tokio::spawn(async move { p2.get().await.map(|g| g.id) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(pool.stats().waiting, 1);
    // RELOAD shortens the timeout: the next waiter gives up after 100 ms, not 5 s.
    pool.set_settings(settings(1));
    let start = std::time::Instant::now();
    let err = pool.get().await.err().unwrap();
    assert!(matches!(err, CheckoutError::Timeout { .. }), "{err:?}");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(100) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    // The older waiter is still in line and gets the connection when it comes back.
    assert_eq!(pool.stats().waiting, 1);
    drop(held);
    assert_eq!(long.await.unwrap().unwrap(), 0);
    assert_eq!(pool.stats().timeouts, 1);
}
