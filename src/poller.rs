//! Socket readiness for one shard: one edge-triggered epoll, every socket
//! registered with it once, one task that reads its events.
//!
//! glommio's `TcpStream` arms a fresh io_uring poll each time a socket must
//! wait, with a new reference-counted source, a submission, a completion
//! and two clock reads: about 2,700 instructions per keep-alive request,
//! as much as parsing, routing and encoding it. Here a socket that must
//! wait stores its waker in a slab; the shard's [`Poller::run`] task takes
//! the epoll's events without blocking and wakes who they concern, as long
//! as there are any.
//!
//! How the shard looks for events depends on whether traffic flows:
//! - While it does (a look found events), each round is one `epoll_wait`
//!   with a timeout of [`HOT_WAIT_MS`], as nginx's loop makes: it returns
//!   at once with the events that are ready, or sleeps in the kernel until
//!   the first comes. Parking through glommio costs about a dozen syscalls
//!   per idle gap (see `Poller::park`), and under wrk's keep-alive load a
//!   shard parked once every 15 to 175 requests.
//! - Once a whole [`HOT_WAIT_MS`] has passed without an event, it looks
//!   without waiting, and when there is nothing it parks on the epoll
//!   descriptor through glommio: one io_uring poll per idle period, not
//!   one per wait, and nothing runs until there is work.
//!
//! A wait in `epoll_wait` holds the shard's thread, so it is kept short,
//! and glommio's own work cuts it shorter: io_uring hands a completion
//! (a timer, glommio's 10 ms preemption timer among them) to the thread as
//! task work, which interrupts `epoll_wait`, and the poller then yields to
//! glommio. What is left waiting is a task woken by another task, or a
//! cross-shard message, for at most [`HOT_WAIT_MS`] and only in the
//! millisecond after traffic stops; while it flows, each wait ends within
//! the gap between two requests.
//!
//! A connection asleep between requests has no task to wake: its socket's
//! entry holds the connection's slot instead ([`LocalWake`]), and a read
//! edge makes the slot spawn the task that carries on.
//!
//! Edge-triggered means an event comes when something changes, so a socket
//! is only marked "not ready" to read when a call says so: `EAGAIN`, or a
//! read that returned less than asked (the queue was empty at that moment;
//! new data brings a new edge). A short read is not trusted once the peer's
//! FIN or an error has been seen, since those bring no further edge.
//! Writes always try the call first and wait only after `EAGAIN`.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};
use rustix::event::epoll::EventVec;
use slab::Slab;

use crate::sys;
use crate::transport::{LocalWake, Transport};

/// Most events taken per `epoll_wait`.
const EVENTS: usize = 256;
/// Out of descriptors to park with, how often the epoll is looked at.
const DEGRADED_WAIT: Duration = Duration::from_millis(1);
/// While traffic flows, the longest wait in `epoll_wait` (milliseconds,
/// its smallest unit) before the shard parks through glommio instead.
pub const HOT_WAIT_MS: u16 = 1;

/// A shard's epoll and the wakers of the sockets registered with it.
pub struct Poller {
    epoll: OwnedFd,
    /// Where `epoll_wait` puts events.
    events: RefCell<EventVec>,
    /// A duplicate of `epoll` for the next [`Poller::park`].
    spare: RefCell<Option<OwnedFd>>,
    entries: RefCell<Slab<Entry>>,
    /// Sleeping connections an event concerns, kept for its capacity.
    sleepers: RefCell<Vec<Rc<dyn LocalWake>>>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("epoll", &self.epoll)
            .field("sockets", &self.len())
            .finish_non_exhaustive()
    }
}

/// One registered socket's readiness and waiters.
#[derive(Debug)]
struct Entry {
    /// No read has said "would block" (or drained the queue) since the
    /// last edge. Writes keep no such flag: they always try the call.
    readable: bool,
    /// FIN or an error was seen: reads never wait again.
    closed: bool,
    /// The task waiting to read (or accept), or a sleeping connection's slot.
    reader: Reader,
    /// The task waiting for room to send.
    writer: Option<Waker>,
}

/// What a read edge wakes.
enum Reader {
    None,
    Task(Waker),
    /// A connection asleep without a task (see [`Socket::wake_on_readable`]).
    Sleeper(Rc<dyn LocalWake>),
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reader::None => "None",
            Reader::Task(_) => "Task",
            Reader::Sleeper(_) => "Sleeper",
        })
    }
}

impl Reader {
    /// Wakes a task; a sleeper is handed back, to be woken once the
    /// entries are no longer borrowed (its task runs at once).
    #[must_use]
    fn wake(&mut self) -> Option<Rc<dyn LocalWake>> {
        match std::mem::replace(self, Reader::None) {
            Reader::None => None,
            Reader::Task(w) => {
                w.wake();
                None
            }
            Reader::Sleeper(s) => Some(s),
        }
    }

    fn park(&mut self, waker: &Waker) {
        match self {
            Reader::Task(w) if w.will_wake(waker) => {}
            _ => *self = Reader::Task(waker.clone()),
        }
    }
}

fn wake(waiter: &mut Option<Waker>) {
    if let Some(w) = waiter.take() {
        w.wake();
    }
}

fn park(waiter: &mut Option<Waker>, waker: &Waker) {
    match waiter {
        Some(w) if w.will_wake(waker) => {}
        _ => *waiter = Some(waker.clone()),
    }
}

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Read,
    Write,
}

impl Poller {
    /// A poller with a new epoll instance.
    pub fn new() -> io::Result<Rc<Poller>> {
        let epoll = sys::epoll_create()?;
        Ok(Rc::new(Poller {
            spare: RefCell::new(Some(sys::dup(epoll.as_fd())?)),
            epoll,
            events: RefCell::new(EventVec::with_capacity(EVENTS)),
            entries: RefCell::new(Slab::new()),
            sleepers: RefCell::new(Vec::new()),
        }))
    }

    /// Registers a non-blocking socket; it is deregistered (and closed)
    /// when the returned [`Socket`] is dropped.
    pub fn register(self: &Rc<Self>, fd: OwnedFd) -> io::Result<Socket> {
        self.add(fd, false)
    }

    /// Registers a listening socket: as [`Poller::register`], with an
    /// exclusive wake-up, so that a socket several shards accept from
    /// wakes one of them per connection rather than all.
    pub fn register_listener(self: &Rc<Self>, fd: OwnedFd) -> io::Result<Socket> {
        self.add(fd, true)
    }

    fn add(self: &Rc<Self>, fd: OwnedFd, listener: bool) -> io::Result<Socket> {
        let token = self.entries.borrow_mut().insert(Entry {
            readable: true,
            closed: false,
            reader: Reader::None,
            writer: None,
        });
        let add = if listener {
            sys::epoll_add_listener
        } else {
            sys::epoll_add
        };
        if let Err(e) = add(self.epoll.as_fd(), fd.as_fd(), token as u64) {
            self.entries.borrow_mut().remove(token);
            return Err(e);
        }
        Ok(Socket {
            fd,
            token,
            poller: self.clone(),
            listener,
        })
    }

    /// Connects to `addr` (non-blocking, `TCP_NODELAY` set), registered
    /// with this poller: a handler's own upstream connection, waiting on
    /// the shard's epoll like every accepted socket. Completes when the
    /// connection is made or fails.
    pub async fn connect(self: &Rc<Self>, addr: SocketAddr) -> io::Result<Socket> {
        let sock = self.register(sys::connect_start(addr)?)?;
        // The connect's completion is the first write edge.
        poll_fn(|cx| {
            self.poll_io(
                sock.token,
                Way::Write,
                cx,
                || sys::connect_finished(sock.fd.as_fd()),
                |_| false,
            )
        })
        .await?;
        let _ = sys::set_nodelay(sock.fd.as_fd());
        Ok(sock)
    }

    /// Sockets registered now.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether no socket is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Delivers the epoll's events until cancelled, between rounds of the
    /// tasks they woke: while traffic flows, waiting for them in
    /// `epoll_wait`; else looking without waiting, and parked on the epoll
    /// descriptor when there are none (see the module's documentation).
    /// Runs as one task per shard.
    pub async fn run(self: Rc<Self>) {
        let mut flowing = false;
        loop {
            if flowing {
                // Tasks queued behind this one go first: the wait below
                // holds the thread.
                futures_lite::future::yield_now().await;
                // One call per round, as nginx makes: it returns at once
                // when events are ready.
                if self.wait_briefly() == Some(0) {
                    // A quiet millisecond: the traffic has stopped.
                    flowing = false;
                }
            } else if self.catch_up() > 0 {
                flowing = true;
                futures_lite::future::yield_now().await;
            } else {
                self.park().await;
            }
        }
    }

    /// Waits in `epoll_wait` for up to [`HOT_WAIT_MS`], blocking the
    /// thread, and delivers what came. `Some(0)`: nothing came in that
    /// time. `None`: a completion on one of glommio's rings cut the wait
    /// short (io_uring hands completions to the thread as task work, which
    /// interrupts `epoll_wait`), so glommio has something to do.
    fn wait_briefly(&self) -> Option<usize> {
        match self.take_events(HOT_WAIT_MS) {
            Ok(n) => Some(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
            // As in `catch_up`: parking would report the epoll ready again.
            Err(_) => Some(0),
        }
    }

    /// Takes the events ready now, without waiting, and wakes the sockets
    /// they concern; returns how many there were. The shard's tick calls
    /// this before it checks deadlines, so that a request which has
    /// arrived is read rather than timed out.
    pub fn catch_up(&self) -> usize {
        loop {
            match self.take_events(0) {
                Ok(n) => return n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // With a valid epoll and buffer this does not happen; if
                // it did, parking would report the epoll ready again.
                Err(_) => return 0,
            }
        }
    }

    /// Takes the events ready within `ms` milliseconds (0: now, without
    /// waiting) and delivers them; returns how many there were.
    fn take_events(&self, ms: u16) -> io::Result<usize> {
        let mut events = self.events.borrow_mut();
        sys::epoll_wait_ms(self.epoll.as_fd(), &mut events, ms)?;
        Ok(self.deliver(&events))
    }

    /// Marks and wakes what `events` concern; returns how many there were.
    fn deliver(&self, events: &EventVec) -> usize {
        let mut sleepers = std::mem::take(&mut *self.sleepers.borrow_mut());
        let n = self.mark(events, &mut sleepers);
        // Each spawns its connection's task, which glommio runs at once:
        // it reads, and may close its socket, so not under `entries`' borrow.
        for s in sleepers.drain(..) {
            s.wake();
        }
        *self.sleepers.borrow_mut() = sleepers;
        n
    }

    /// Marks what `events` concern and wakes their tasks; sleepers go to
    /// `sleepers`. Returns how many events there were.
    fn mark(&self, events: &EventVec, sleepers: &mut Vec<Rc<dyn LocalWake>>) -> usize {
        let mut entries = self.entries.borrow_mut();
        let mut n = 0;
        for event in events {
            n += 1;
            let r = sys::readiness(&event);
            // A socket closed since the event was queued: its token may
            // even be another socket's now, which then wakes for nothing
            // and finds nothing: harmless.
            let Some(entry) = entries.get_mut(r.token as usize) else {
                continue;
            };
            entry.closed |= r.closed;
            if r.read {
                entry.readable = true;
                sleepers.extend(entry.reader.wake());
            }
            if r.write {
                wake(&mut entry.writer);
            }
        }
        n
    }

    /// Waits, through glommio, until the epoll has events.
    ///
    /// glommio has no public way to await an arbitrary descriptor, but its
    /// `TcpStream`, made from a descriptor, arms an io_uring readiness poll
    /// on it at once, and a read waits for that poll first. On an epoll
    /// descriptor the read then fails (it is not a socket), which is our
    /// signal. The stream takes a duplicate of the epoll descriptor and
    /// closes it when dropped.
    ///
    /// The duplicate for the next wait is made as soon as this one's is
    /// closed, before any other task of the shard runs: out of file
    /// descriptors (EMFILE), the accept loop cannot take the slot just
    /// freed. Should it fail anyway, the shard looks at the epoll again
    /// after [`DEGRADED_WAIT`] instead of parking, and keeps serving.
    ///
    /// A park and the wake-up after it cost about a dozen syscalls (counted
    /// with `perf stat` on the syscall tracepoints under wrk): glommio
    /// re-arms its preemption timers and links its rings on the way in and
    /// out (7–8 `io_uring_enter`), often adds a `membarrier`, and this
    /// function adds the failed `recv`, the `close` and the `dup`.
    async fn park(&self) {
        let Some(fd) = self
            .spare
            .take()
            .or_else(|| sys::dup(self.epoll.as_fd()).ok())
        else {
            glommio::timer::Timer::new(DEGRADED_WAIT).await;
            return;
        };
        let mut waiter = sys::glommio_stream(fd);
        let mut byte = [0u8; 1];
        // Either result means the poll fired; the next `epoll_wait` tells.
        let _ = waiter.read(&mut byte).await;
        drop(waiter);
        *self.spare.borrow_mut() = sys::dup(self.epoll.as_fd()).ok();
    }

    /// Makes `call` on a registered socket, waiting on `way`'s edge when
    /// it would block. Reads wait without calling while the socket is known
    /// drained; a read result that `drained` says emptied the queue marks
    /// it so (unless FIN or an error came, which bring no new edge). Writes
    /// always try: the kernel signals room only once a third of the send
    /// buffer is free, and a write woken by its deadline should still take
    /// what room there is.
    fn poll_io<T>(
        &self,
        token: usize,
        way: Way,
        cx: &Context<'_>,
        mut call: impl FnMut() -> io::Result<T>,
        drained: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        let mut entries = self.entries.borrow_mut();
        let Some(entry) = entries.get_mut(token) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let reading = way == Way::Read;
        loop {
            if reading && !entry.readable {
                entry.reader.park(cx.waker());
                return Poll::Pending;
            }
            match call() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if reading {
                        entry.readable = false;
                        entry.reader.park(cx.waker());
                    } else {
                        park(&mut entry.writer, cx.waker());
                    }
                    return Poll::Pending;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(v) if reading && !entry.closed && drained(&v) => {
                    entry.readable = false;
                    return Poll::Ready(Ok(v));
                }
                r => return Poll::Ready(r),
            }
        }
    }
}

/// A non-blocking socket registered with its shard's [`Poller`]: a
/// connection, or a listener to [`Socket::accept`] from.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    token: usize,
    poller: Rc<Poller>,
    /// Taken out of the epoll explicitly when dropped: a listening
    /// socket's file stays open elsewhere (another shard's descriptor,
    /// the upgrade's duplicates, the new process), and an epoll keeps a
    /// registration until the file closes. A stale exclusive one would
    /// take wake-ups meant for the shards still accepting.
    listener: bool,
}

impl Socket {
    /// Accepts a connection (non-blocking, `TCP_NODELAY` set), registered
    /// with the same poller, and its peer's address (`None` if it is not
    /// IPv4 or IPv6); waits while there is none.
    pub async fn accept(&self) -> io::Result<(Socket, Option<SocketAddr>)> {
        let (fd, peer) = poll_fn(|cx| {
            self.poller.poll_io(
                self.token,
                Way::Read,
                cx,
                || sys::accept(self.fd.as_fd()),
                |_| false,
            )
        })
        .await?;
        // Best effort: a socket that refuses NODELAY still works.
        let _ = sys::set_nodelay(fd.as_fd());
        Ok((self.poller.register(fd)?, peer))
    }

    /// Whether the poller knows the socket has nothing to read: a read came
    /// back short or empty since its last read edge, and it has seen no
    /// FIN or error. (A FIN the epoll has not reported yet is not known.)
    pub fn known_quiet(&self) -> bool {
        self.poller
            .entries
            .borrow()
            .get(self.token)
            .is_some_and(|e| !e.readable && !e.closed)
    }

    /// The local address the socket is bound to (one `getsockname`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::local_addr(self.fd.as_fd())
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // A connection's descriptor closes after this, which takes it out
        // of the epoll (nothing else holds it open); a listener's may not.
        if self.listener {
            let _ = sys::epoll_del(self.poller.epoll.as_fd(), self.fd.as_fd());
        }
        self.poller.entries.borrow_mut().try_remove(self.token);
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let (this, asked) = (&*self, buf.len());
        // A short read took all there was: the next one would block.
        this.poller.poll_io(
            this.token,
            Way::Read,
            cx,
            || sys::recv(this.fd.as_fd(), buf),
            |&n| n > 0 && n < asked,
        )
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, buf, false)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(sys::shutdown_write(self.fd.as_fd()))
    }
}

impl Socket {
    fn poll_send(&self, cx: &Context<'_>, buf: &[u8], more: bool) -> Poll<io::Result<usize>> {
        self.poller.poll_io(
            self.token,
            Way::Write,
            cx,
            || sys::send(self.fd.as_fd(), buf, more),
            |_| false,
        )
    }
}

impl Transport for Socket {
    fn poll_read_onto(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        want: usize,
    ) -> Poll<io::Result<usize>> {
        // Without room, `recv` would read nothing and look like EOF.
        buf.reserve(want);
        // As in `poll_read`: a short read took all there was.
        self.poller.poll_io(
            self.token,
            Way::Read,
            cx,
            || sys::recv_onto(self.fd.as_fd(), buf, want),
            |&n| n > 0 && n < want,
        )
    }

    fn poll_write_more(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send(cx, buf, true)
    }

    fn poll_sendfile(
        &mut self,
        cx: &mut Context<'_>,
        file: BorrowedFd<'_>,
        offset: &mut u64,
        count: usize,
    ) -> Option<Poll<io::Result<usize>>> {
        let sock = self.fd.as_fd();
        Some(self.poller.poll_io(
            self.token,
            Way::Write,
            cx,
            || sys::sendfile(sock, file, offset, count),
            |_| false,
        ))
    }

    /// Sleeps on the socket's next read edge. Refused while the socket may
    /// be readable already (no call has come back empty since the last
    /// edge) or has seen FIN or an error: there is no edge to wait for.
    fn wake_on_readable(&self, wake: Rc<dyn LocalWake>) -> bool {
        let mut entries = self.poller.entries.borrow_mut();
        match entries.get_mut(self.token) {
            Some(e) if !e.readable && !e.closed => {
                e.reader = Reader::Sleeper(wake);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    use super::*;

    fn read(sock: &mut Socket, buf: &mut BytesMut) -> Option<io::Result<usize>> {
        let once = poll_fn(|cx| sock.poll_read_onto(cx, buf, 4096));
        futures_lite::future::block_on(futures_lite::future::poll_once(once))
    }

    #[test]
    fn a_read_onto_a_buffer_without_room_makes_room_rather_than_reading_nothing() {
        let poller = Poller::new().expect("epoll");
        let (mut peer, ours) = UnixStream::pair().expect("socketpair");
        let mut sock = poller.register(OwnedFd::from(ours)).expect("register");
        peer.write_all(b"GET / HTTP/1.1\r\n").expect("write");
        // No capacity at all: a `recv` into nothing would return 0, EOF.
        let mut buf = BytesMut::new();
        assert_eq!(read(&mut sock, &mut buf).expect("ready").expect("read"), 16);
        assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n");
        // Full to its capacity: the new bytes go after the old ones. The
        // short read above marked the socket drained: until the poller
        // delivers an edge, the read waits.
        let mut full = BytesMut::with_capacity(4);
        full.extend_from_slice(b"abcd");
        assert_eq!(full.len(), full.capacity());
        peer.write_all(b"Host: x\r\n\r\n").expect("write");
        assert!(read(&mut sock, &mut full).is_none());
        poller.catch_up();
        assert_eq!(
            read(&mut sock, &mut full).expect("ready").expect("read"),
            11
        );
        assert_eq!(&full[..], b"abcdHost: x\r\n\r\n");
        drop(peer);
        poller.catch_up();
        assert_eq!(read(&mut sock, &mut full).expect("ready").expect("eof"), 0);
    }
}
