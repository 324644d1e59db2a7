//! The one thing that crosses from the signal thread into the shards: a
//! trigger that, once fired, wakes every shard waiting on it.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};

/// A one-shot, cross-thread shutdown trigger.
#[derive(Debug, Clone, Default)]
pub struct ShutdownTrigger {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    fired: AtomicBool,
    /// A stop was announced: not ready for new work, though the trigger
    /// may not have fired yet (`--shutdown-delay`).
    stopping: AtomicBool,
    waiters: Mutex<Vec<Waker>>,
}

impl ShutdownTrigger {
    /// A trigger that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Says a stop is coming: from now on the server is not
    /// [`ready`](ShutdownTrigger::ready), though it keeps serving until
    /// the trigger fires.
    pub fn announce(&self) {
        self.inner.stopping.store(true, Ordering::Release);
    }

    /// Whether the server takes new work (`/readyz`): no stop announced,
    /// no drain started.
    pub fn ready(&self) -> bool {
        !self.inner.stopping.load(Ordering::Acquire) && !self.fired()
    }

    /// Fires the trigger: every current and future waiter completes.
    pub fn fire(&self) {
        self.inner.fired.store(true, Ordering::Release);
        let waiters = std::mem::take(
            &mut *self
                .inner
                .waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for w in waiters {
            w.wake();
        }
    }

    /// Whether the trigger has fired.
    pub fn fired(&self) -> bool {
        self.inner.fired.load(Ordering::Acquire)
    }

    /// Completes once the trigger fires.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.fired() {
                return Poll::Ready(());
            }
            let mut waiters = self
                .inner
                .waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Checked again under the lock: `fire` may have run in between.
            if self.fired() {
                return Poll::Ready(());
            }
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_until_a_stop_is_announced_or_the_drain_starts() {
        let t = ShutdownTrigger::new();
        assert!(t.ready());
        t.announce();
        assert!(!t.ready() && !t.fired(), "announced, still serving");
        let t = ShutdownTrigger::new();
        t.fire();
        assert!(!t.ready(), "draining");
    }

    #[test]
    fn fire_wakes_a_waiter_on_another_thread() {
        let t = ShutdownTrigger::new();
        let t2 = t.clone();
        let waiter = std::thread::spawn(move || futures_lite::future::block_on(t2.wait()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        t.fire();
        waiter.join().expect("waiter finished");
        // Waiting after the fact completes at once.
        futures_lite::future::block_on(t.wait());
    }
}
