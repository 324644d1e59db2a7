//! One task per busy connection: read → parse → body → handler → encode →
//! write. Between requests a connection sleeps, with no task when it can
//! (see `serve_holding`).
//!
//! Every complete request already in the read buffer is answered before the
//! connection waits again, and their responses leave together: the write
//! buffer is flushed only when more input is needed (or it grows past
//! 64 KiB, `FLUSH_AT`), so a pipelined batch costs one `send`.
//!
//! By stage: this file holds the entry points, the connection's state and
//! its request loop; [`read`] waits for heads and bodies, [`respond`] runs
//! the handler and encodes its answer, [`write`] sends it, [`end`] says
//! goodbye. [`table`] keeps every connection's deadline, [`shared`] what a
//! shard's connections share, [`pool`] the buffers they borrow.

mod access;
mod end;
mod io;
mod pool;
mod pump;
mod read;
mod respond;
mod shared;
mod table;
mod timeouts;
mod tunnel;
mod write;

use std::rc::Rc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::handler::{ConnEntry, ConnInfo, Handler, Swappable};
use crate::http::date::DateMarks;
use crate::http::{parse_head, ParseError, StatusCode};
use crate::transport::Transport;
pub use shared::Shared;
use table::SlotHandle;
pub use timeouts::{
    Timeouts, BODY_RATE_GRACE, DEFAULT_BODY_TIMEOUT, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MIN_BODY_RATE, DEFAULT_WRITE_TIMEOUT,
};

/// First read size (bytes); a typical request head is a few hundred.
pub(crate) const INITIAL_READ: usize = 4 * 1024;
/// Largest single read (bytes), reached by doubling while reads fill up.
const MAX_READ: usize = 64 * 1024;
/// Flush the write buffer once it holds this much, even mid-batch (bytes).
const FLUSH_AT: usize = 64 * 1024;

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Peer closed, idle timeout, or drain: close without a response.
    Quiet,
    /// Answer with this error, then close.
    Reject(StatusCode, &'static str),
    /// A response with `Connection: close` was sent.
    Done,
    /// A response with `Connection: close` was sent and part of the
    /// request body was not read: linger so it does not become a reset.
    Linger,
    /// I/O failed or the drain deadline passed: drop the socket now.
    Abort,
    /// Idle for a tick: not an end, the connection goes to sleep.
    Sleep,
}

/// Serves HTTP/1.x on one connection until it closes, on any
/// [`Transport`] (tests' in-memory streams; the shard's own sockets go
/// through `serve_holding`, which can also sleep without a task). The
/// connection is registered with the shard's table at once and has no
/// addresses ([`ConnInfo::UNKNOWN`]'s). (Not an `async fn`: its arguments
/// would be stored twice in the future, as arguments and inside the
/// connection.)
pub fn serve_connection<S, H>(
    io: S,
    shared: Rc<Shared>,
    handler: Rc<H>,
) -> impl std::future::Future<Output = ()>
where
    S: Transport,
    H: Handler,
{
    let info = ConnInfo {
        id: shared.next_conn_id(),
        ..ConnInfo::UNKNOWN
    };
    let mut conn = Conn::new(io, info, &shared);
    let handler = Swappable::from_rc(handler);
    async move {
        let end = loop {
            if let Err(end) = conn.busy(&shared, &handler).await {
                break end;
            }
            if let Err(end) = conn.sleep(&shared).await {
                break end;
            }
        };
        conn.close(end, &shared).await;
    }
}

/// [`serve_connection`] for the shard's own connections: holds `guard`
/// (the accept loop's permit) until the connection closes, and sleeps
/// without a task when the transport can report a read edge to the
/// connection's slot ([`Transport::wake_on_readable`]). The slot then keeps
/// the connection, and spawns a task that carries on from [`serve_from`] on
/// a read edge or an interrupt: an idle connection costs its state without
/// buffers, 112 bytes, rather than a task holding a future (384).
pub(crate) fn serve_holding<S, H, G>(
    io: S,
    info: ConnInfo,
    shared: Rc<Shared>,
    handler: Rc<Swappable<H>>,
    guard: G,
) -> impl std::future::Future<Output = ()>
where
    S: Transport + 'static,
    H: Handler,
    G: 'static,
{
    let conn = Conn::new(io, info, &shared);
    serve_from(conn, shared, handler, guard, false)
}

/// A connection's life in [`serve_holding`], from its start or (`asleep`)
/// from a wake-up.
async fn serve_from<S, H, G>(
    mut conn: Conn<S>,
    shared: Rc<Shared>,
    handler: Rc<Swappable<H>>,
    guard: G,
    mut asleep: bool,
) where
    S: Transport + 'static,
    H: Handler,
    G: 'static,
{
    let end = loop {
        if asleep {
            if let Err(end) = conn.sleep(&shared).await {
                break end;
            }
        }
        if let Err(end) = conn.busy(&shared, &handler).await {
            break end;
        }
        // Only an idle wait is told to sleep: nothing read, nothing to send.
        let idle = conn.rbuf.is_empty() && conn.wbuf.is_empty();
        let slot = conn.slot.shared();
        if idle && slot.may_sleep() && conn.io.wake_on_readable(slot.clone()) {
            // Kept without its (empty) buffers: 112 bytes rather than 176.
            let asleep = conn.into_asleep(&shared);
            slot.sleep(Box::new(move || {
                let conn = Conn::from_asleep(asleep);
                glommio::spawn_local(serve_from(conn, shared, handler, guard, true)).detach();
            }));
            return;
        }
        // The transport cannot, or bytes may be there: wait in the task.
        asleep = true;
    };
    conn.close(end, &shared).await;
    drop(guard);
}

/// A connection asleep without a task: a [`Conn`] without its buffers,
/// which it has lent to the shard's pools.
struct Asleep<S> {
    io: S,
    slot: SlotHandle,
    entry: ConnEntry,
    read_size: usize,
    served: u64,
}

struct Conn<S> {
    io: S,
    slot: SlotHandle,
    /// Its addresses and id in the shard's registry, which requests reach
    /// by the entry's key.
    entry: ConnEntry,
    /// Bytes read and not yet parsed; heads and bodies are split off it.
    rbuf: BytesMut,
    /// Encoded responses waiting for the next flush.
    wbuf: Vec<u8>,
    /// Where their Dates are, to bring up to the second of the flush.
    dates: DateMarks,
    /// Next read size, adapted to how full reads come back.
    read_size: usize,
    /// Responses sent on this connection.
    served: u64,
    /// Body bytes of a relayed response that failed part way, for its
    /// log line.
    relayed: u64,
    /// The current request declared a JSON body: errors answer in JSON.
    json_errors: bool,
    /// With an access log: the request being answered, and the answered
    /// ones whose responses have not left yet. Boxed, and made at the first
    /// request: without a log, a connection carries one null pointer.
    log: Option<Box<LogQueue>>,
}

/// What the connection keeps for its access log lines (nothing without one).
#[derive(Default)]
struct LogQueue {
    /// The request being answered: its head and when it was parsed.
    current: Option<(Bytes, Instant)>,
    /// Answered requests whose responses wait in the write buffer.
    waiting: Vec<Answered>,
}

/// An answered request, for its log line once the response has left.
struct Answered {
    head: Bytes,
    start: Instant,
    status: u16,
    bytes: u64,
    id: Option<Bytes>,
    upstream: Option<Bytes>,
}

impl<S: Transport> Conn<S> {
    fn new(io: S, info: ConnInfo, shared: &Shared) -> Conn<S> {
        shared.metrics.count_connection();
        Conn::from_asleep(Asleep {
            io,
            slot: shared.conns.register(),
            entry: ConnEntry::register(info),
            read_size: INITIAL_READ,
            served: 0,
        })
    }

    /// What is kept of the connection while it sleeps without a task.
    /// Its buffers must be empty (they go back to the pools).
    fn into_asleep(mut self, shared: &Shared) -> Asleep<S> {
        self.lend_buffers(shared);
        Asleep {
            io: self.io,
            slot: self.slot,
            entry: self.entry,
            read_size: self.read_size,
            served: self.served,
        }
    }

    /// A connection with what was kept of it (or, from `new`, nothing
    /// yet), and no buffers: they come from the pools when needed.
    fn from_asleep(a: Asleep<S>) -> Conn<S> {
        Conn {
            io: a.io,
            slot: a.slot,
            entry: a.entry,
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
            dates: DateMarks::default(),
            read_size: a.read_size,
            served: a.served,
            relayed: 0,
            // Each request decides its own error format.
            json_errors: false,
            log: None,
        }
    }

    /// Answers requests until the connection ends (`Err`) or the shard's
    /// tick finds it idle (`Ok`: it may sleep). Answering takes a large
    /// state machine (the handler's future, the encoder's: 1.6 KiB with the
    /// bench app's routes); it lives in a box for the busy period only.
    async fn busy<H: Handler>(
        &mut self,
        shared: &Shared,
        handler: &Swappable<H>,
    ) -> Result<(), End> {
        match Box::pin(self.run(shared, handler)).await {
            End::Sleep if self.slot.draining() => Err(End::Quiet),
            End::Sleep => Ok(()),
            end => Err(end),
        }
    }

    /// Sends what `end` calls for, then closes. Boxed: a connection ends
    /// once, and its ending (an error response, lingering) should not make
    /// every connection's future bigger.
    async fn close(&mut self, end: End, shared: &Shared) {
        Box::pin(self.finish(end, shared)).await
    }

    /// The request loop: parse a head from what has been read (or wait for
    /// more), read its body, answer it; until the connection ends.
    /// Each request is answered by the handler current when its head has
    /// been parsed (a reload may replace it between two requests).
    async fn run<H: Handler>(&mut self, shared: &Shared, handler: &Swappable<H>) -> End {
        loop {
            let head = match parse_head(&mut self.rbuf, &shared.limits) {
                Ok(Some(head)) => {
                    if shared.access_log.is_some() {
                        self.log.get_or_insert_with(Box::default).current =
                            Some((head.as_bytes().clone(), Instant::now()));
                    }
                    head
                }
                Ok(None) => match self.fill_head(shared).await {
                    Ok(()) => continue,
                    Err(end) => return end,
                },
                Err(e) => {
                    if e == ParseError::PathAboveRoot {
                        let peer = self.entry.key().info().peer;
                        shared.report_refused(e.reason(), peer, &self.rbuf);
                    }
                    return End::Reject(e.status(), e.reason());
                }
            };
            let body = self.take_body(&head, shared);
            let handler = &*handler.get();
            let answered = match body {
                pump::Taken::Whole(_) => {
                    self.respond::<H, false>(head, body, shared, handler).await
                }
                // Boxed, and an instance of its own: rare, and larger.
                _ => Box::pin(self.respond::<H, true>(head, body, shared, handler)).await,
            };
            match answered {
                Ok(true) => {}
                Ok(false) => return End::Done,
                Err(end) => return end,
            }
        }
    }
}
