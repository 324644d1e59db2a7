//! The shard's table of live connections: where each one is in its life, the
//! deadline for that phase, and the waker to interrupt it with.
//!
//! One periodic tick per shard checks every deadline, so the request path
//! never creates a timer: entering a phase is two `Cell` writes. The same
//! table lets a shutdown close idle connections and, at the drain deadline,
//! all of them.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

use slab::Slab;

use super::timeouts::{Timeouts, BODY_RATE_GRACE};
use crate::transport::LocalWake;

/// Where a connection is, as far as deadlines and shutdown care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the first byte of a request.
    Idle,
    /// Part of a request head has arrived.
    Head,
    /// Reading a request body.
    Body,
    /// The handler is running; no deadline.
    Handler,
    /// Writing responses.
    Write,
    /// Response sent, write side shut; discarding what the client still sends.
    Linger,
}

/// Why a connection's pending I/O was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// The deadline of this phase passed.
    Timeout(Phase),
    /// The server is draining and the connection is idle.
    Drain,
    /// The drain deadline passed: close now.
    Close,
    /// Idle at a tick: the connection may put its request machinery away
    /// and sleep (see `serve_holding`).
    Sleep,
}

/// One connection's entry.
#[derive(Debug)]
pub struct Slot {
    phase: Cell<Phase>,
    deadline: Cell<Option<Instant>>,
    body_started: Cell<Instant>,
    body_bytes: Cell<u64>,
    interrupt: Cell<Option<Interrupt>>,
    /// [`Interrupt::Sleep`] was sent in this idle period.
    sleep_sent: Cell<bool>,
    waiter: RefCell<Waiter>,
}

/// Who an interrupt wakes.
enum Waiter {
    None,
    /// The connection's task, parked in a wait.
    Task(Waker),
    /// A connection asleep without a task: called, it spawns one that
    /// carries on (see [`Slot::sleep`]).
    Asleep(Box<dyn FnOnce()>),
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Waiter::None => "None",
            Waiter::Task(_) => "Task",
            Waiter::Asleep(_) => "Asleep",
        })
    }
}

impl Slot {
    fn new(now: Instant) -> Slot {
        Slot {
            phase: Cell::new(Phase::Idle),
            deadline: Cell::new(None),
            body_started: Cell::new(now),
            body_bytes: Cell::new(0),
            interrupt: Cell::new(None),
            sleep_sent: Cell::new(false),
            waiter: RefCell::new(Waiter::None),
        }
    }

    /// Interrupts the wait and clears the deadline. A connection asleep
    /// without a task is handed back, to be resumed once the table is no
    /// longer borrowed (its task runs at once, and may close).
    #[must_use]
    fn fire(&self, why: Interrupt) -> Option<Box<dyn FnOnce()>> {
        self.deadline.set(None);
        self.signal(why)
    }

    /// Interrupts the wait, keeping the deadline; see [`Slot::fire`].
    #[must_use]
    fn signal(&self, why: Interrupt) -> Option<Box<dyn FnOnce()>> {
        self.interrupt.set(Some(why));
        // Taken out first: the waiter's wake or drop must not happen under the borrow.
        let waiter = std::mem::replace(&mut *self.waiter.borrow_mut(), Waiter::None);
        match waiter {
            Waiter::None => None,
            Waiter::Task(w) => {
                w.wake();
                None
            }
            Waiter::Asleep(resume) => Some(resume),
        }
    }

    /// Whether no interrupt is waiting to be seen: the connection may sleep.
    pub(crate) fn may_sleep(&self) -> bool {
        self.interrupt.get().is_none()
    }

    /// Keeps `resume`, a connection asleep without a task, until the next
    /// interrupt or read edge calls it (once). It spawns the task that
    /// carries on; until then the slot owns the connection, and an
    /// interrupt reaches it as it would a waiting task.
    pub(crate) fn sleep(&self, resume: Box<dyn FnOnce()>) {
        *self.waiter.borrow_mut() = Waiter::Asleep(resume);
    }
}

/// A read edge on the socket of a connection asleep without a task.
impl LocalWake for Slot {
    fn wake(self: Rc<Self>) {
        let waiter = std::mem::replace(&mut *self.waiter.borrow_mut(), Waiter::None);
        match waiter {
            Waiter::Asleep(resume) => resume(),
            // Woken by an interrupt first; a task waits (or none does).
            other => *self.waiter.borrow_mut() = other,
        }
    }
}

/// Longest tick. It also bounds how long an idle connection keeps its
/// request machinery (see [`Interrupt::Sleep`]); four wake-ups a second of
/// an otherwise idle shard cost nothing worth saving.
pub const MAX_TICK: Duration = Duration::from_millis(250);

/// Per-shard table of connections.
#[derive(Debug)]
pub struct ConnTable {
    slots: RefCell<Slab<Rc<Slot>>>,
    /// Coarse clock, advanced by [`ConnTable::tick`].
    now: Cell<Instant>,
    /// Tick period; deadlines are padded by it so none fires early.
    tick: Duration,
    draining: Cell<bool>,
    min_body_rate: u64,
}

impl ConnTable {
    /// A table whose tick suits these timeouts: a quarter of the shortest,
    /// between 5 ms and [`MAX_TICK`] (that, with the defaults).
    pub fn new(timeouts: &Timeouts) -> ConnTable {
        let tick = (timeouts.shortest() / 4).clamp(Duration::from_millis(5), MAX_TICK);
        ConnTable {
            slots: RefCell::new(Slab::new()),
            now: Cell::new(Instant::now()),
            tick,
            draining: Cell::new(false),
            min_body_rate: timeouts.min_body_rate,
        }
    }

    /// How often [`ConnTable::tick`] should run.
    pub fn tick_period(&self) -> Duration {
        self.tick
    }

    /// Adds a connection; it leaves the table when the handle drops.
    pub fn register(self: &Rc<Self>) -> SlotHandle {
        let slot = Rc::new(Slot::new(self.now.get()));
        let key = self.slots.borrow_mut().insert(slot.clone());
        SlotHandle {
            table: self.clone(),
            key,
            slot,
        }
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.slots.borrow().len()
    }

    /// Whether no connection is live.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.get()
    }

    /// Advances the clock and interrupts every connection past its deadline
    /// or, in a body, below the minimum rate after the grace period. A
    /// connection found idle is told once that it may sleep
    /// ([`Interrupt::Sleep`]); its deadline stands. A busy keep-alive
    /// connection is idle at some ticks too, and then pays one allocation
    /// (and a new task, if it slept without one) for its next request: at
    /// most once per tick.
    pub fn tick(&self, now: Instant) {
        self.now.set(now);
        // Asleep while draining a connection would close (see `close_idle`).
        let draining = self.draining.get();
        self.interrupt_each(|slot| {
            if slot.interrupt.get().is_some() {
                return None;
            }
            let phase = slot.phase.get();
            let expired = slot.deadline.get().is_some_and(|d| now >= d);
            if expired || (phase == Phase::Body && self.body_too_slow(slot, now)) {
                slot.fire(Interrupt::Timeout(phase))
            } else if phase == Phase::Idle && !draining && !slot.sleep_sent.replace(true) {
                slot.signal(Interrupt::Sleep)
            } else {
                None
            }
        });
    }

    /// Runs `interrupt` on every slot, then resumes the connections it
    /// found asleep without a task. Only after the table's borrow: each
    /// spawns its task, which glommio runs at once, and which may close.
    fn interrupt_each(&self, interrupt: impl Fn(&Slot) -> Option<Box<dyn FnOnce()>>) {
        let resumes: Vec<_> = self
            .slots
            .borrow()
            .iter()
            .filter_map(|(_, slot)| interrupt(slot))
            .collect();
        for resume in resumes {
            resume();
        }
    }

    fn body_too_slow(&self, slot: &Slot, now: Instant) -> bool {
        if self.min_body_rate == 0 {
            return false;
        }
        let elapsed = now.saturating_duration_since(slot.body_started.get());
        elapsed > BODY_RATE_GRACE
            && (slot.body_bytes.get() as f64) < self.min_body_rate as f64 * elapsed.as_secs_f64()
    }

    /// Starts a drain: from now on every response says `Connection:
    /// close` and its connection closes after it. Idle connections are
    /// left open until [`ConnTable::close_idle`]: a keep-alive client
    /// whose next request is already on its way gets an answer rather
    /// than a closed socket (see `Start::run`).
    pub fn begin_drain(&self) {
        self.draining.set(true);
    }

    /// Closes the connections waiting for a request (during a drain).
    pub fn close_idle(&self) {
        self.interrupt_each(|slot| match slot.phase.get() {
            Phase::Idle => slot.fire(Interrupt::Drain),
            _ => None,
        });
    }

    /// Interrupts every connection: the drain deadline has passed.
    pub fn close_all(&self) {
        self.draining.set(true);
        self.interrupt_each(|slot| slot.fire(Interrupt::Close));
    }
}

/// A body phase set aside while the handler runs.
#[derive(Debug, Clone, Copy)]
pub struct BodyPause {
    deadline: Option<Instant>,
    at: Instant,
}

/// A connection's handle on its slot.
#[derive(Debug)]
pub struct SlotHandle {
    table: Rc<ConnTable>,
    key: usize,
    slot: Rc<Slot>,
}

impl Drop for SlotHandle {
    fn drop(&mut self) {
        self.table.slots.borrow_mut().remove(self.key);
    }
}

impl SlotHandle {
    /// The current phase.
    #[inline]
    pub fn phase(&self) -> Phase {
        self.slot.phase.get()
    }

    /// Moves to `phase` with a deadline `limit` from now (none if `None`).
    /// A pending timeout from an earlier phase is forgotten; a drain or close is not.
    #[inline]
    pub fn enter(&self, phase: Phase, limit: Option<Duration>) {
        let slot = &self.slot;
        slot.phase.set(phase);
        slot.sleep_sent.set(false);
        slot.deadline
            .set(limit.map(|d| self.table.now.get() + d + self.table.tick));
        if let Some(Interrupt::Timeout(_)) = slot.interrupt.get() {
            slot.interrupt.set(None);
        }
    }

    /// Enters the body phase and starts measuring its rate.
    pub fn enter_body(&self, limit: Duration) {
        self.enter(Phase::Body, Some(limit));
        self.slot.body_started.set(self.table.now.get());
        self.slot.body_bytes.set(0);
    }

    /// Leaves the body phase for the handler's (waiting for it to ask for
    /// more): what [`SlotHandle::resume_body`] needs to carry on.
    pub fn pause_body(&self, handler_limit: Option<Duration>) -> BodyPause {
        let pause = BodyPause {
            deadline: self.slot.deadline.get(),
            at: self.table.now.get(),
        };
        self.enter(Phase::Handler, handler_limit);
        pause
    }

    /// Back in the body phase after a pause: its deadline and its rate's
    /// clock move on by the pause, so time the handler took to ask is not
    /// the client's.
    pub fn resume_body(&self, pause: BodyPause) {
        let paused = self.table.now.get().saturating_duration_since(pause.at);
        self.enter(Phase::Body, None);
        self.slot.deadline.set(pause.deadline.map(|d| d + paused));
        let s = &self.slot;
        s.body_started.set(s.body_started.get() + paused);
    }

    /// Records body bytes received, for the minimum-rate check.
    #[inline]
    pub fn body_progress(&self, n: usize) {
        let s = &self.slot;
        s.body_bytes.set(s.body_bytes.get() + n as u64);
    }

    /// Whether the server is draining.
    #[inline]
    pub fn draining(&self) -> bool {
        self.table.is_draining()
    }

    /// Whether the drain deadline has passed and the connection must close now.
    #[inline]
    pub fn closing(&self) -> bool {
        self.slot.interrupt.get() == Some(Interrupt::Close)
    }

    /// The interrupt that applies to the current phase, consumed. A timeout
    /// from another phase, or a drain outside `Idle`, is stale and dropped:
    /// a draining connection closes at its next idle point on its own.
    #[inline]
    pub fn take_interrupt(&self) -> Option<Interrupt> {
        let i = self.slot.interrupt.get()?;
        let phase = self.phase();
        match i {
            Interrupt::Close => return Some(i),
            Interrupt::Timeout(p) if p == phase => {}
            Interrupt::Drain | Interrupt::Sleep if phase == Phase::Idle => {}
            _ => {
                self.slot.interrupt.set(None);
                return None;
            }
        }
        self.slot.interrupt.set(None);
        Some(i)
    }

    /// Remembers the waker to call on an interrupt.
    #[inline]
    pub fn park(&self, waker: &Waker) {
        let mut w = self.slot.waiter.borrow_mut();
        match &*w {
            Waiter::Task(old) if old.will_wake(waker) => {}
            _ => *w = Waiter::Task(waker.clone()),
        }
    }

    /// The slot itself, for a connection going to sleep without a task
    /// ([`Slot::sleep`]) and its transport's read edge.
    pub(crate) fn shared(&self) -> Rc<Slot> {
        self.slot.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(ms: u64) -> Rc<ConnTable> {
        let t = Duration::from_millis(ms);
        Rc::new(ConnTable::new(&Timeouts {
            header: t,
            body: t,
            min_body_rate: 1000,
            idle: t,
            write: t,
            drain: t,
            handler: Some(t),
        }))
    }

    #[test]
    fn deadline_fires_after_not_before() {
        let t = table(100);
        let h = t.register();
        let start = t.now.get();
        h.enter(Phase::Head, Some(Duration::from_millis(100)));
        t.tick(start + Duration::from_millis(99));
        assert_eq!(h.take_interrupt(), None);
        t.tick(start + Duration::from_millis(100) + t.tick_period());
        assert_eq!(h.take_interrupt(), Some(Interrupt::Timeout(Phase::Head)));
    }

    #[test]
    fn drain_interrupts_only_idle_connections_and_close_sticks() {
        let t = table(100);
        let idle = t.register();
        let busy = t.register();
        idle.enter(Phase::Idle, None);
        busy.enter(Phase::Handler, None);
        t.begin_drain();
        t.tick(t.now.get());
        assert_eq!(
            idle.take_interrupt(),
            None,
            "idle ones stay until close_idle"
        );
        t.close_idle();
        assert_eq!(idle.take_interrupt(), Some(Interrupt::Drain));
        assert_eq!(busy.take_interrupt(), None);
        t.close_all();
        busy.enter(Phase::Write, None);
        assert!(busy.closing());
        assert_eq!(busy.take_interrupt(), Some(Interrupt::Close));
        assert_eq!(busy.take_interrupt(), Some(Interrupt::Close));
    }

    #[test]
    fn stale_interrupts_are_dropped() {
        let t = table(100);
        let h = t.register();
        let start = t.now.get();
        h.enter(Phase::Idle, Some(Duration::from_millis(1)));
        t.begin_drain();
        t.close_idle();
        // The connection got a request just as the drain began: it is in a head now.
        h.enter(Phase::Head, None);
        assert_eq!(h.take_interrupt(), None);
        h.enter(Phase::Body, Some(Duration::from_millis(1)));
        t.tick(start + Duration::from_secs(1));
        h.enter(Phase::Write, None);
        assert_eq!(h.take_interrupt(), None);
    }

    #[test]
    fn slow_body_is_interrupted_after_grace() {
        let t = table(60_000);
        let h = t.register();
        let start = t.now.get();
        h.enter_body(Duration::from_secs(600));
        h.body_progress(100);
        t.tick(start + BODY_RATE_GRACE / 2);
        assert_eq!(h.take_interrupt(), None);
        t.tick(start + BODY_RATE_GRACE + Duration::from_secs(1));
        assert_eq!(h.take_interrupt(), Some(Interrupt::Timeout(Phase::Body)));
    }

    #[test]
    fn idle_connections_are_told_to_sleep_once_per_idle_period() {
        let t = table(100);
        let idle = t.register();
        let busy = t.register();
        let start = t.now.get();
        idle.enter(Phase::Idle, Some(Duration::from_millis(100)));
        busy.enter(Phase::Handler, None);
        t.tick(start + Duration::from_millis(10));
        assert_eq!(idle.take_interrupt(), Some(Interrupt::Sleep));
        assert_eq!(busy.take_interrupt(), None);
        // Once per idle period, and the idle deadline still stands.
        t.tick(start + Duration::from_millis(20));
        assert_eq!(idle.take_interrupt(), None);
        t.tick(start + Duration::from_millis(100) + t.tick_period());
        assert_eq!(idle.take_interrupt(), Some(Interrupt::Timeout(Phase::Idle)));
        // A new idle period (after a request) sleeps again.
        idle.enter(Phase::Head, None);
        idle.enter(Phase::Idle, None);
        t.tick(start + Duration::from_secs(1));
        assert_eq!(idle.take_interrupt(), Some(Interrupt::Sleep));
        // Outside Idle a Sleep is stale.
        idle.enter(Phase::Idle, None);
        t.tick(start + Duration::from_secs(2));
        idle.enter(Phase::Head, None);
        assert_eq!(idle.take_interrupt(), None);
    }

    #[test]
    fn slots_leave_the_table_on_drop() {
        let t = table(100);
        let a = t.register();
        let b = t.register();
        assert_eq!(t.len(), 2);
        drop(a);
        drop(b);
        assert!(t.is_empty());
    }
}
