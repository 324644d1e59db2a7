//! One task per busy connection: read → parse → body → handler → encode →
//! write. Between requests a connection sleeps, with no task when it can
//! (see `serve_holding`).
//!
//! Every complete request already in the read buffer is answered before the
//! connection waits again, and their responses leave together: the write
//! buffer is flushed only when more input is needed (or it grows past
//! 64 KiB, `FLUSH_AT`), so a pipelined batch costs one `send`.

pub mod io;
pub mod table;

use std::os::fd::BorrowedFd;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncWrite, FutureExt, StreamExt};

use crate::handler::{Handler, Request};
use crate::http::body::ChunkedDecoder;
use crate::http::encode::{encode_chunk, encode_head, BodyLength, HeadMeta, LAST_CHUNK};
use crate::http::{parse_head, Framing, Method, RequestHead, StatusCode, Version};
use crate::json::{is_json_content_type, json_error};
use crate::poller::LocalWake;
use crate::response::{Body, FileBody, FilePart, Response, TEXT_PLAIN};
use crate::shard::ShardState;
use io::{interruptible, read_into, read_pooled, shutdown_write, write_all, Stop};
use table::{Interrupt, Phase, SlotHandle};

/// First read size (bytes); a typical request head is a few hundred.
pub(crate) const INITIAL_READ: usize = 4 * 1024;
/// Largest single read (bytes), reached by doubling while reads fill up.
const MAX_READ: usize = 64 * 1024;
/// Flush the write buffer once it holds this much, even mid-batch (bytes).
const FLUSH_AT: usize = 64 * 1024;
/// Bodies up to this size are copied behind their head (one `send`);
/// larger ones are sent from their own buffer after the head.
const COPY_LIMIT: usize = 16 * 1024;
/// After a closing response, how long we keep reading (and discarding) so
/// the client sees our response rather than a reset.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// After a closing response, the most we discard (bytes).
const LINGER_MAX: usize = 256 * 1024;
/// Most bytes one `sendfile` call may send before the connection lets
/// other tasks on the shard run: a client on a fast link cannot hold the
/// shard for a whole large file.
const SENDFILE_CHUNK: usize = 512 * 1024;
/// Transports without `sendfile` get file bodies read and written in
/// pieces of this size.
const COPY_CHUNK: usize = 16 * 1024;

/// A connection's byte stream. Sockets send file bodies with `sendfile`
/// and a head before one with `MSG_MORE`; other transports (tests'
/// in-memory streams) keep the defaults, which copy through `poll_write`.
pub trait Transport: AsyncRead + AsyncWrite + Unpin {
    /// Like `poll_read`, onto the end of `buf`: up to `want` bytes (more
    /// than zero), reserving room for them if `buf` lacks it (which takes
    /// the buffer back in place once earlier requests' `Bytes` are
    /// dropped). The default zeroes that room and calls `poll_read`; a
    /// socket reads into the spare capacity as it is.
    fn poll_read_onto(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        want: usize,
    ) -> Poll<std::io::Result<usize>> {
        let start = buf.len();
        buf.resize(start + want, 0);
        let p = Pin::new(&mut *self).poll_read(cx, &mut buf[start..]);
        let n = match &p {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        buf.truncate(start + n);
        p
    }

    /// Like `poll_write`, but more data follows at once (a file body):
    /// a socket may hold a partial segment back for it.
    fn poll_write_more(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self).poll_write(cx, buf)
    }

    /// Sends up to `count` bytes of `file` from `*offset`, which advances
    /// by what was sent, waiting for room like `poll_write`. `None`: this
    /// transport cannot, and the bytes are read and copied instead.
    fn poll_sendfile(
        &mut self,
        _cx: &mut Context<'_>,
        _file: BorrowedFd<'_>,
        _offset: &mut u64,
        _count: usize,
    ) -> Option<Poll<std::io::Result<usize>>> {
        None
    }

    /// Leaves `wake` to be called when the transport next has bytes (or
    /// EOF) to read, so a connection can sleep without a task. `false`:
    /// this transport cannot, or may have bytes already; the connection
    /// then waits in its task.
    fn wake_on_readable(&self, _wake: Rc<dyn LocalWake>) -> bool {
        false
    }
}

/// glommio's stream works as a transport, without `sendfile`; the server
/// itself uses [`crate::poller::Socket`].
impl Transport for glommio::net::TcpStream {}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Peer closed, idle timeout, or drain: close without a response.
    Quiet,
    /// Answer with this error, then close.
    Reject(StatusCode, &'static str),
    /// A response with `Connection: close` was sent.
    Done,
    /// I/O failed or the drain deadline passed: drop the socket now.
    Abort,
    /// Idle for a tick: not an end, the connection goes to sleep.
    Sleep,
}

/// Serves HTTP/1.x on one connection until it closes. Runs on any
/// [`Transport`]; the shard passes its [`crate::poller::Socket`]s (through
/// `serve_holding`, which can also sleep without a task). The connection
/// is registered with the shard's table at once; the future does the rest.
/// (Not an `async fn`: its arguments would be stored twice in the future,
/// as arguments and inside the connection.)
pub fn serve_connection<S, H>(
    io: S,
    shard: Rc<ShardState>,
    handler: Rc<H>,
) -> impl std::future::Future<Output = ()>
where
    S: Transport,
    H: Handler,
{
    let mut conn = Conn::new(io, &shard);
    async move {
        let end = loop {
            if let Err(end) = conn.busy(&shard, &*handler).await {
                break end;
            }
            if let Err(end) = conn.sleep(&shard).await {
                break end;
            }
        };
        conn.close(end, &shard).await;
    }
}

/// [`serve_connection`] for the shard's own connections: holds `guard`
/// (the accept loop's permit) until the connection closes, and sleeps
/// without a task when the transport can report a read edge to the
/// connection's slot ([`Transport::wake_on_readable`]). The slot then keeps
/// the connection, and spawns a task that carries on from [`serve_from`] on
/// a read edge or an interrupt: an idle connection costs its state without
/// buffers, 96 bytes, rather than a task holding a future (384).
pub(crate) fn serve_holding<S, H, G>(
    io: S,
    shard: Rc<ShardState>,
    handler: Rc<H>,
    guard: G,
) -> impl std::future::Future<Output = ()>
where
    S: Transport + 'static,
    H: Handler,
    G: 'static,
{
    let conn = Conn::new(io, &shard);
    serve_from(conn, shard, handler, guard, false)
}

/// A connection's life in [`serve_holding`], from its start or (`asleep`)
/// from a wake-up.
async fn serve_from<S, H, G>(
    mut conn: Conn<S>,
    shard: Rc<ShardState>,
    handler: Rc<H>,
    guard: G,
    mut asleep: bool,
) where
    S: Transport + 'static,
    H: Handler,
    G: 'static,
{
    let end = loop {
        if asleep {
            if let Err(end) = conn.sleep(&shard).await {
                break end;
            }
        }
        if let Err(end) = conn.busy(&shard, &*handler).await {
            break end;
        }
        // Only an idle wait is told to sleep: nothing read, nothing to send.
        let idle = conn.rbuf.is_empty() && conn.wbuf.is_empty();
        let slot = conn.slot.shared();
        if idle && slot.may_sleep() && conn.io.wake_on_readable(slot.clone()) {
            // Kept without its (empty) buffers: 96 bytes rather than 160.
            let asleep = conn.into_asleep(&shard);
            slot.sleep(Box::new(move || {
                let conn = Conn::from_asleep(asleep);
                glommio::spawn_local(serve_from(conn, shard, handler, guard, true)).detach();
            }));
            return;
        }
        // The transport cannot, or bytes may be there: wait in the task.
        asleep = true;
    };
    conn.close(end, &shard).await;
    drop(guard);
}

/// A connection asleep without a task: a [`Conn`] without its buffers,
/// which it has lent to the shard's pools.
struct Asleep<S> {
    io: S,
    slot: SlotHandle,
    read_size: usize,
    served: u64,
}

struct Conn<S> {
    io: S,
    slot: SlotHandle,
    /// Bytes read and not yet parsed; heads and bodies are split off it.
    rbuf: BytesMut,
    /// Encoded responses waiting for the next flush.
    wbuf: Vec<u8>,
    /// Next read size, adapted to how full reads come back.
    read_size: usize,
    /// Responses sent on this connection.
    served: u64,
    /// The current request declared a JSON body: errors answer in JSON.
    json_errors: bool,
}

impl<S: Transport> Conn<S> {
    fn new(io: S, shard: &Rc<ShardState>) -> Conn<S> {
        Conn::from_asleep(Asleep {
            io,
            slot: shard.conns.register(),
            read_size: INITIAL_READ,
            served: 0,
        })
    }

    /// What is kept of the connection while it sleeps without a task.
    /// Its buffers must be empty (they go back to the pools).
    fn into_asleep(mut self, shard: &ShardState) -> Asleep<S> {
        self.lend_buffers(shard);
        Asleep {
            io: self.io,
            slot: self.slot,
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
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
            read_size: a.read_size,
            served: a.served,
            // Each request decides its own error format.
            json_errors: false,
        }
    }

    /// Answers requests until the connection ends (`Err`) or the shard's
    /// tick finds it idle (`Ok`: it may sleep). Answering takes a large
    /// state machine (the handler's future, the encoder's: 1.6 KiB with the
    /// bench app's routes); it lives in a box for the busy period only.
    async fn busy<H: Handler>(&mut self, shard: &ShardState, handler: &H) -> Result<(), End> {
        match Box::pin(self.run(shard, handler)).await {
            End::Sleep if self.slot.draining() => Err(End::Quiet),
            End::Sleep => Ok(()),
            end => Err(end),
        }
    }

    /// Sends what `end` calls for, then closes. Boxed: a connection ends
    /// once, and its ending (an error response, lingering) should not make
    /// every connection's future bigger.
    async fn close(&mut self, end: End, shard: &ShardState) {
        Box::pin(self.finish(end, shard)).await
    }

    async fn run<H: Handler>(&mut self, shard: &ShardState, handler: &H) -> End {
        loop {
            let head = match parse_head(&mut self.rbuf, &shard.limits) {
                Ok(Some(head)) => head,
                Ok(None) => match self.fill_head(shard).await {
                    Ok(()) => continue,
                    Err(end) => return end,
                },
                Err(e) => return End::Reject(e.status(), e.reason()),
            };
            let body = match self.read_body(&head, shard).await {
                Ok(body) => body,
                Err(end) => return end,
            };
            match self.respond(head, body, shard, handler).await {
                Ok(true) => {}
                Ok(false) => return End::Done,
                Err(end) => return end,
            }
        }
    }

    /// Flushes what is pending, then waits for more of a request head.
    async fn fill_head(&mut self, shard: &ShardState) -> Result<(), End> {
        self.flush(shard).await?;
        let t = &shard.timeouts;
        if self.rbuf.is_empty() {
            if self.slot.draining() {
                return Err(End::Quiet);
            }
            let limit = if self.served == 0 { t.header } else { t.idle };
            self.slot.enter(Phase::Idle, Some(limit));
        } else if self.slot.phase() != Phase::Head {
            self.slot.enter(Phase::Head, Some(t.header));
        }
        // Between requests, unless reads have grown past the pool's size,
        // the connection lends its buffer to the pool and waits without one.
        let idle = self.rbuf.is_empty() && self.read_size == shard.read_pool.size();
        let got = if idle {
            self.lend_buffers(shard);
            let pool = &shard.read_pool;
            read_pooled(&mut self.io, &self.slot, pool, &mut self.rbuf)
                .await
                .inspect(|&n| self.adapt_read_size(n, pool.size()))
        } else {
            self.read(self.read_size).await
        };
        self.after_wait(got, shard)
    }

    /// Waits, outside the boxed request machinery, for the next request's
    /// first bytes: the tick found the connection idle (phase `Idle`).
    async fn sleep(&mut self, shard: &ShardState) -> Result<(), End> {
        // Already done unless reads had grown past the pool's size.
        self.lend_buffers(shard);
        let pool = &shard.read_pool;
        loop {
            let got = read_pooled(&mut self.io, &self.slot, pool, &mut self.rbuf).await;
            if !matches!(got, Err(Stop::Interrupted(Interrupt::Sleep))) {
                return self.after_wait(got, shard);
            }
        }
    }

    /// Gives the emptied read and write buffers to the shard's pools while
    /// the connection waits for a request (`flush` has emptied `wbuf`).
    fn lend_buffers(&mut self, shard: &ShardState) {
        shard.write_pool.put(std::mem::take(&mut self.wbuf));
        // A buffer with no memory (already lent) would only be refilled anew.
        if self.rbuf.capacity() > 0 {
            shard.read_pool.put_empty(std::mem::take(&mut self.rbuf));
        }
    }

    /// What a wait for request bytes came to.
    fn after_wait(&mut self, got: Result<usize, Stop>, shard: &ShardState) -> Result<(), End> {
        let t = &shard.timeouts;
        match got {
            Ok(0) => Err(End::Quiet),
            Ok(_) => {
                if self.slot.phase() == Phase::Idle {
                    self.slot.enter(Phase::Head, Some(t.header));
                }
                Ok(())
            }
            Err(Stop::Interrupted(Interrupt::Sleep)) => Err(End::Sleep),
            Err(Stop::Interrupted(Interrupt::Timeout(Phase::Head))) => Err(End::Reject(
                StatusCode::REQUEST_TIMEOUT,
                "request head not received in time",
            )),
            Err(Stop::Interrupted(Interrupt::Timeout(_) | Interrupt::Drain)) => Err(End::Quiet),
            Err(_) => Err(End::Abort),
        }
    }

    async fn read_body(&mut self, head: &RequestHead, shard: &ShardState) -> Result<Bytes, End> {
        self.json_errors = head.framing() != Framing::None
            && head
                .header("content-type")
                .is_some_and(is_json_content_type);
        let limits = &shard.limits;
        match head.framing() {
            Framing::None => Ok(Bytes::new()),
            Framing::Length(n) if n > limits.max_body as u64 => Err(End::Reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            )),
            Framing::Length(n) => {
                let n = n as usize;
                if self.rbuf.len() < n {
                    self.await_body(head, shard).await?;
                    self.rbuf.reserve(n - self.rbuf.len());
                    while self.rbuf.len() < n {
                        let want = (n - self.rbuf.len()).clamp(INITIAL_READ, MAX_READ);
                        self.read_body_bytes(want).await?;
                    }
                }
                Ok(self.rbuf.split_to(n).freeze())
            }
            // Boxed: chunked request bodies are rare, and the decoder's state
            // would otherwise enlarge every connection's future.
            Framing::Chunked => Box::pin(self.read_chunked(head, shard)).await,
        }
    }

    async fn read_chunked(&mut self, head: &RequestHead, shard: &ShardState) -> Result<Bytes, End> {
        let limits = &shard.limits;
        let mut decoder = ChunkedDecoder::new(limits.max_body, limits.max_header_bytes);
        let mut out = BytesMut::new();
        let mut waited = false;
        loop {
            match decoder.decode(&mut self.rbuf, &mut out) {
                Ok(true) => return Ok(out.freeze()),
                Ok(false) => {}
                Err(e) => return Err(End::Reject(e.status(), e.reason())),
            }
            if !waited {
                self.await_body(head, shard).await?;
                waited = true;
            }
            self.read_body_bytes(self.read_size).await?;
        }
    }

    /// The body is not all here: answer `100 Continue` if asked, and start its clock.
    async fn await_body(&mut self, head: &RequestHead, shard: &ShardState) -> Result<(), End> {
        if head.expects_continue() {
            self.wbuf
                .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.flush(shard).await?;
        }
        self.slot.enter_body(shard.timeouts.body);
        Ok(())
    }

    async fn read_body_bytes(&mut self, want: usize) -> Result<(), End> {
        match self.read(want).await {
            Ok(0) => Err(End::Quiet),
            Ok(n) => {
                self.slot.body_progress(n);
                Ok(())
            }
            Err(Stop::Interrupted(Interrupt::Timeout(_))) => Err(End::Reject(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time",
            )),
            Err(_) => Err(End::Abort),
        }
    }

    /// Runs the handler and queues its response. `Ok(true)`: keep the connection.
    async fn respond<H: Handler>(
        &mut self,
        head: RequestHead,
        body: Bytes,
        shard: &ShardState,
        handler: &H,
    ) -> Result<bool, End> {
        let head_only = head.method() == Method::Head;
        let version = head.version();
        let keep_alive = head.keep_alive();
        self.slot.enter(Phase::Handler, None);
        // `call` does work before its future exists (the router decides
        // there), so making the future is guarded as well as polling it.
        let request = Request::new(head, body);
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(request))) {
            Ok(call) => AssertUnwindSafe(call).catch_unwind().await,
            Err(panic) => Err(panic),
        };
        let response = match outcome {
            Ok(r) => match r.invalid() {
                None => r,
                Some(why) => {
                    shard.report_invalid_response(why);
                    internal_error()
                }
            },
            // The panic hook has already printed the message.
            Err(_) => internal_error(),
        };
        shard.count_request();
        self.served += 1;
        // The next request decides its own error format.
        self.json_errors = false;
        let close = !keep_alive || response.closes() || self.slot.draining();
        // Most responses are encoded whole here, without a nested future.
        let (close, rest) = self.encode_response(response, version, head_only, close, shard);
        if let Some((body, length)) = rest {
            self.send_body(body, length, shard).await?;
        }
        if !close && self.wbuf.len() >= FLUSH_AT {
            self.flush(shard).await?;
        }
        Ok(!close)
    }

    /// Encodes `resp`'s head into the write buffer, and its body when that
    /// is empty or small and in memory: no waiting. Returns whether the
    /// connection closes after it, and the body still to send (large, a
    /// stream or a file) with its framing.
    fn encode_response(
        &mut self,
        resp: Response,
        version: Version,
        head_only: bool,
        mut close: bool,
        shard: &ShardState,
    ) -> (bool, Option<(Body, BodyLength)>) {
        let status = resp.status();
        let length = match resp.body() {
            _ if status.forbids_body() => BodyLength::Forbidden,
            Body::Empty => BodyLength::Known(0),
            Body::Full(b) => BodyLength::Known(b.len() as u64),
            Body::File(f) => BodyLength::Known(f.len()),
            Body::Stream(_) if version == Version::Http11 => BodyLength::Chunked,
            Body::Stream(_) => BodyLength::UntilClose,
        };
        close |= length == BodyLength::UntilClose && !head_only;
        let meta = HeadMeta {
            status,
            content_type: resp.content_type_line(),
            length,
            close,
            keep_alive_header: !close && version == Version::Http10,
            preformatted: resp.preformatted(),
        };
        if self.wbuf.capacity() == 0 {
            self.wbuf = shard.write_pool.take();
        }
        encode_head(&mut self.wbuf, &meta, &shard.date.get(), resp.headers());
        if head_only || length == BodyLength::Forbidden {
            return (close, None);
        }
        match resp.into_body() {
            Body::Empty => (close, None),
            Body::Full(b) if b.len() <= COPY_LIMIT => {
                self.wbuf.extend_from_slice(&b);
                (close, None)
            }
            body => (close, Some((body, length))),
        }
    }

    /// Sends a body [`Conn::encode_response`] left, after its head.
    async fn send_body(
        &mut self,
        body: Body,
        length: BodyLength,
        shard: &ShardState,
    ) -> Result<(), End> {
        match body {
            Body::Empty => Ok(()),
            Body::Full(b) => {
                self.flush(shard).await?;
                self.write_direct(&b, shard).await
            }
            // Boxed, like the file branch: their futures are large, and a
            // connection's future is as large as its largest state, idle or not.
            Body::Stream(stream) => {
                let chunked = length == BodyLength::Chunked;
                Box::pin(self.write_stream(stream, chunked, shard)).await
            }
            Body::File(f) => Box::pin(self.write_file(f, shard)).await,
        }
    }

    /// Sends a streamed body: chunked (HTTP/1.1) or raw until close.
    async fn write_stream(
        &mut self,
        mut stream: std::pin::Pin<Box<dyn futures_lite::Stream<Item = Bytes>>>,
        chunked: bool,
        shard: &ShardState,
    ) -> Result<(), End> {
        loop {
            // Waiting on the handler's stream is handler time: no write deadline.
            self.slot.enter(Phase::Handler, None);
            let Some(piece) = stream.next().await else {
                break;
            };
            if chunked {
                encode_chunk(&mut self.wbuf, &piece);
            } else {
                self.wbuf.extend_from_slice(&piece);
            }
            if self.wbuf.len() >= FLUSH_AT {
                self.flush(shard).await?;
            }
        }
        if chunked {
            self.wbuf.extend_from_slice(LAST_CHUNK);
        }
        Ok(())
    }

    /// Sends a file body after its head (already in `wbuf`).
    async fn write_file(&mut self, body: FileBody, shard: &ShardState) -> Result<(), End> {
        let (file, parts) = body.into_parts();
        for part in parts {
            match part {
                FilePart::Bytes(b) => self.wbuf.extend_from_slice(&b),
                FilePart::Range { offset, len } => {
                    self.send_file_range(&file, offset, len, shard).await?
                }
            }
        }
        Ok(())
    }

    /// Sends `len` bytes of `file` from `offset`. What is pending goes
    /// first with "more follows" (so the head and the first body bytes
    /// share a packet), then `sendfile` in chunks of at most
    /// [`SENDFILE_CHUNK`], yielding to the shard between them. A full socket
    /// parks the connection until there is room: a slow client costs no CPU
    /// while it waits. Transports without `sendfile` get the bytes copied.
    async fn send_file_range(
        &mut self,
        file: &std::os::fd::OwnedFd,
        mut offset: u64,
        len: u64,
        shard: &ShardState,
    ) -> Result<(), End> {
        use std::os::fd::AsFd;
        let end = offset + len;
        self.flush_with(true, shard).await?;
        // Even with nothing flushed: a stalled client times out here too.
        self.slot.enter(Phase::Write, Some(shard.timeouts.write));
        while offset < end {
            if self.slot.closing() {
                return Err(End::Abort);
            }
            let want = (end - offset).min(SENDFILE_CHUNK as u64) as usize;
            let (io, slot) = (&mut self.io, &self.slot);
            let sent = std::future::poll_fn(|cx| {
                match io.poll_sendfile(cx, file.as_fd(), &mut offset, want) {
                    None => Poll::Ready(None),
                    Some(p) => interruptible(slot, cx, p).map(Some),
                }
            })
            .await;
            match sent {
                None => {
                    return self
                        .copy_file_range(file, offset, end - offset, shard)
                        .await
                }
                // The file shrank under us: the promised length cannot be kept.
                Some(Ok(0)) | Some(Err(_)) => return Err(End::Abort),
                Some(Ok(_)) => {
                    self.slot.enter(Phase::Write, Some(shard.timeouts.write));
                    glommio::yield_if_needed().await;
                }
            }
        }
        Ok(())
    }

    /// Copies file bytes through the transport's own write, for transports
    /// without `sendfile`.
    async fn copy_file_range(
        &mut self,
        file: &std::os::fd::OwnedFd,
        mut offset: u64,
        len: u64,
        shard: &ShardState,
    ) -> Result<(), End> {
        use std::os::fd::AsFd;
        let end = offset + len;
        while offset < end {
            let n = (end - offset).min(COPY_CHUNK as u64) as usize;
            let start = self.wbuf.len();
            self.wbuf.resize(start + n, 0);
            let got = crate::sys::pread_full(file.as_fd(), &mut self.wbuf[start..], offset);
            match got {
                Ok(got) if got == n => offset += n as u64,
                // Shrunk or unreadable after the head promised a length.
                _ => {
                    self.wbuf.truncate(start);
                    return Err(End::Abort);
                }
            }
            self.flush(shard).await?;
        }
        Ok(())
    }

    async fn read(&mut self, want: usize) -> Result<usize, Stop> {
        let n = read_into(&mut self.io, &self.slot, &mut self.rbuf, want).await?;
        self.adapt_read_size(n, want);
        Ok(n)
    }

    /// Reads that fill up double the next one; small ones halve it.
    fn adapt_read_size(&mut self, n: usize, want: usize) {
        if n == want {
            self.read_size = (self.read_size * 2).min(MAX_READ);
        } else if n < self.read_size / 4 {
            self.read_size = (self.read_size / 2).max(INITIAL_READ);
        }
    }

    async fn flush(&mut self, shard: &ShardState) -> Result<(), End> {
        self.flush_with(false, shard).await
    }

    /// Sends `wbuf`; with `more`, a file body follows at once.
    async fn flush_with(&mut self, more: bool, shard: &ShardState) -> Result<(), End> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        self.slot.enter(Phase::Write, Some(shard.timeouts.write));
        let res = write_all(
            &mut self.io,
            &self.slot,
            &self.wbuf,
            shard.timeouts.write,
            more,
        )
        .await;
        self.wbuf.clear();
        if self.wbuf.capacity() > 4 * FLUSH_AT {
            self.wbuf.shrink_to(FLUSH_AT);
        }
        res.map_err(|_| End::Abort)
    }

    async fn write_direct(&mut self, data: &[u8], shard: &ShardState) -> Result<(), End> {
        self.slot.enter(Phase::Write, Some(shard.timeouts.write));
        write_all(&mut self.io, &self.slot, data, shard.timeouts.write, false)
            .await
            .map_err(|_| End::Abort)
    }

    /// Sends what the ending calls for, then closes.
    async fn finish(&mut self, end: End, shard: &ShardState) {
        match end {
            End::Abort => {}
            // `busy` turns it into a sleep; as Quiet if it ever got here.
            End::Quiet | End::Sleep => {
                let _ = self.flush(shard).await;
            }
            End::Reject(status, reason) => {
                shard.count_request();
                let resp = if self.json_errors {
                    json_error(status, reason).with_close()
                } else {
                    error_response(status, reason)
                };
                // Earlier pipelined responses are still in `wbuf`, ahead of this one.
                let (_, rest) = self.encode_response(resp, Version::Http11, false, true, shard);
                if let Some((body, length)) = rest {
                    if self.send_body(body, length, shard).await.is_err() {
                        return;
                    }
                }
                // The request's body may be unread: always linger.
                self.linger(shard).await;
            }
            // Like nginx's `lingering_close on`: linger only if the client
            // has sent more than we answered (pipelined after a close).
            End::Done if !self.rbuf.is_empty() => self.linger(shard).await,
            End::Done => {
                if self.flush(shard).await.is_ok() {
                    let _ = shutdown_write(&mut self.io).await;
                }
            }
        }
    }

    /// Flushes, shuts the write side, and reads until the client closes (bounded),
    /// so unread request bytes do not turn our close into a reset that could
    /// destroy the response before the client reads it.
    async fn linger(&mut self, shard: &ShardState) {
        if self.flush(shard).await.is_err() || shutdown_write(&mut self.io).await.is_err() {
            return;
        }
        self.slot.enter(Phase::Linger, Some(LINGER_TIMEOUT));
        let mut discarded = 0;
        while discarded < LINGER_MAX {
            self.rbuf.clear();
            match read_into(&mut self.io, &self.slot, &mut self.rbuf, INITIAL_READ).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n,
            }
        }
    }
}

/// A small, clear error response: `<code> <reason>: <detail>\n`.
#[cold]
fn error_response(status: StatusCode, detail: &str) -> Response {
    Response::new(status).with_body(TEXT_PLAIN, format!("{status}: {detail}\n"))
}

#[cold]
fn internal_error() -> Response {
    error_response(StatusCode::INTERNAL_SERVER_ERROR, "the handler failed").with_close()
}
