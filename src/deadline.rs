//! Deadlines for the waits of a proxied request (connect, response head,
//! body reads): nearly every one is met, so what matters is what setting
//! one up and dropping it costs.
//!
//! A glommio `Timer` is an allocation, an insertion into and a removal
//! from the reactor's ordered map, and sometimes a ring submission:
//! about 960 instructions, 6% of a proxied request's
//! (`perf/callgrind.py --proxy`). A long wait (at least [`COARSE_FROM`]) instead takes a slot
//! in this shard's list, stamped with the coarse clock, which the shard's
//! tick sweeps: it fires at the first tick after it is due, so up to one
//! tick (at most 250 ms) late, and never early. Shorter waits keep a
//! `Timer`, whose precision they need.
//!
//! The list is per thread: a deadline belongs to the shard whose task
//! made it, and only a shard's tick ([`expire`]) fires them.

use std::cell::RefCell;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use glommio::timer::Timer;
use slab::Slab;

use crate::sys;

/// Waits this long or longer use the shard's list.
pub const COARSE_FROM: Duration = Duration::from_secs(1);

/// The coarse clock ticks every few milliseconds (a jiffy) and lags the
/// fine one by up to one: a due time this much later is never early.
const COARSE_PAD_MS: u64 = 10;

struct Entry {
    due_ms: u64,
    waker: Waker,
    fired: bool,
}

thread_local! {
    static LIST: RefCell<Slab<Entry>> = const { RefCell::new(Slab::new()) };
}

/// A deadline `limit` from when it is first polled pending.
#[derive(Debug)]
pub struct Deadline {
    limit: Duration,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Not yet waited on: no clock read yet.
    Unarmed,
    /// In the shard's list under this key.
    Coarse(usize),
    Fine(Timer),
    Passed,
}

impl Deadline {
    /// A deadline `limit` after its first poll.
    pub fn after(limit: Duration) -> Deadline {
        Deadline {
            limit,
            state: State::Unarmed,
        }
    }

    /// Ready once the deadline has passed; until then the task is woken
    /// when it does.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.state {
            State::Passed => Poll::Ready(()),
            State::Unarmed if self.limit < COARSE_FROM => {
                let mut timer = Timer::new(self.limit);
                let poll = std::future::Future::poll(std::pin::Pin::new(&mut timer), cx);
                self.state = State::Fine(timer);
                poll.map(drop)
            }
            State::Unarmed => {
                let due_ms = sys::coarse_millis()
                    .saturating_add(u64::try_from(self.limit.as_millis()).unwrap_or(u64::MAX))
                    .saturating_add(COARSE_PAD_MS);
                let key = LIST.with(|l| {
                    l.borrow_mut().insert(Entry {
                        due_ms,
                        waker: cx.waker().clone(),
                        fired: false,
                    })
                });
                self.state = State::Coarse(key);
                Poll::Pending
            }
            State::Fine(timer) => {
                let poll = std::future::Future::poll(std::pin::Pin::new(timer), cx);
                if poll.is_ready() {
                    self.state = State::Passed;
                }
                poll.map(drop)
            }
            State::Coarse(key) => {
                let key = *key;
                let fired = LIST.with(|l| {
                    let mut list = l.borrow_mut();
                    let entry = &mut list[key];
                    if entry.fired {
                        list.remove(key);
                        return true;
                    }
                    if !entry.waker.will_wake(cx.waker()) {
                        entry.waker = cx.waker().clone();
                    }
                    false
                });
                if fired {
                    self.state = State::Passed;
                    return Poll::Ready(());
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let State::Coarse(key) = self.state {
            // `try_with`: a task dropped while its thread's locals go.
            let _ = LIST.try_with(|l| {
                l.borrow_mut().try_remove(key);
            });
        }
    }
}

/// Fires the deadlines of this thread that are due, waking their tasks;
/// the shard's tick calls it. Returns how many fired.
pub fn expire() -> usize {
    let now = sys::coarse_millis();
    let due: Vec<Waker> = LIST.with(|l| {
        let mut list = l.borrow_mut();
        if list.is_empty() {
            return Vec::new();
        }
        list.iter_mut()
            .filter(|(_, e)| !e.fired && e.due_ms <= now)
            .map(|(_, e)| {
                e.fired = true;
                e.waker.clone()
            })
            .collect()
    });
    // Woken outside the borrow: a woken task may make or drop deadlines.
    let n = due.len();
    for waker in due {
        waker.wake();
    }
    n
}

/// Deadlines waiting in this thread's list.
#[cfg(test)]
fn waiting() -> usize {
    LIST.with(|l| l.borrow().len())
}

#[cfg(test)]
mod tests {
    //! Without an executor: the list is plain code, and these also run
    //! for aarch64 under qemu-user, which has no io_uring. The short waits'
    //! `Timer` is covered by the proxy's timeout tests.
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    #[derive(Default)]
    struct Woken(AtomicBool);

    impl std::task::Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn poll(d: &mut Deadline, woken: &Arc<Woken>) -> Poll<()> {
        let waker = Waker::from(woken.clone());
        d.poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_long_deadline_fires_at_the_first_sweep_after_it_is_due_never_before() {
        let woken = Arc::new(Woken::default());
        let start = Instant::now();
        let mut d = Deadline::after(COARSE_FROM);
        assert!(poll(&mut d, &woken).is_pending());
        assert_eq!(waiting(), 1);
        // Sweeps until one fires, as the tick does.
        let fired_at = loop {
            if expire() > 0 {
                break start.elapsed();
            }
            assert!(!woken.0.load(Ordering::SeqCst), "woken without a sweep");
            assert!(poll(&mut d, &woken).is_pending(), "ready before a sweep");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(fired_at >= COARSE_FROM, "{fired_at:?}");
        assert!(
            fired_at < COARSE_FROM + Duration::from_secs(1),
            "{fired_at:?}"
        );
        assert!(woken.0.load(Ordering::SeqCst), "the task was woken");
        // Ready, then the slot is gone; a second sweep fires nothing.
        assert!(poll(&mut d, &woken).is_ready());
        assert_eq!(waiting(), 0);
        assert!(poll(&mut d, &woken).is_ready());
        assert_eq!(expire(), 0);
    }

    #[test]
    fn a_deadline_past_what_milliseconds_in_a_u64_hold_never_fires() {
        let woken = Arc::new(Woken::default());
        // 2^64 ms and 384 more: cut to 64 bits, that would be 384 ms.
        let mut far = Deadline::after(Duration::from_secs(18_446_744_073_709_552));
        let mut max = Deadline::after(Duration::MAX);
        assert!(poll(&mut far, &woken).is_pending());
        assert!(poll(&mut max, &woken).is_pending());
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(expire(), 0);
        assert!(poll(&mut far, &woken).is_pending());
    }

    #[test]
    fn a_dropped_deadline_leaves_the_list() {
        let woken = Arc::new(Woken::default());
        let mut long = Deadline::after(Duration::from_secs(30));
        let never_polled = Deadline::after(Duration::from_secs(30));
        assert!(poll(&mut long, &woken).is_pending());
        assert_eq!(waiting(), 1, "only a deadline waited on is listed");
        drop(long);
        drop(never_polled);
        assert_eq!(waiting(), 0);
    }
}
