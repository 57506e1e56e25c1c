//! Keeping rarely run code out of the per-transaction path.
//!
//! A session's loop (`Session::serve`, `Session::pump`) is one state machine: every future it
//! awaits is compiled into its poll function, which grew to tens of KiB, the few hot blocks of a
//! plain transaction spread over a dozen pages between the code of sharding, tenancy, routing and
//! error paths. [`outlined`] wraps such a future: its poll function stays a function of its own,
//! marked cold, and the branch that reaches it is laid out away from the hot path.
//!
//! What it measured (docs/benchmarks.md, session 17): the pump's poll function went from 54 to
//! 38 KiB and the code pages a transaction runs from 74 to 66, with TPS unchanged. It stays
//! because it costs nothing and keeps the loops' code to what a transaction runs, not because it
//! made pgfleet faster.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project_lite::pin_project! {
    /// A future polled through a cold function that is never inlined (see [`outlined`]).
    #[must_use = "futures do nothing unless awaited"]
    pub(crate) struct Outlined<F> {
        #[pin]
        inner: F,
    }
}

/// Wraps `inner`, a future that a session's loop awaits only on paths a transaction on a
/// single-server database does not take (errors, shutdown, reloads, partial writes, tenancy,
/// shards, routing between replicas), so that its code is not compiled into the loop's poll
/// function. For the sessions that do take such a path, it costs one call per poll. An
/// `#[inline(never)]` on an `async fn` would not do it: the attribute applies to the function that
/// builds the future, not to the future's poll.
pub(crate) fn outlined<F: Future>(inner: F) -> Outlined<F> {
    Outlined { inner }
}

impl<F: Future> Future for Outlined<F> {
    type Output = F::Output;

    #[cold]
    #[inline(never)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}
