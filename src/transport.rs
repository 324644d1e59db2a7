//! The byte stream a connection is served over: the shard's own sockets
//! ([`crate::poller::Socket`]), glommio's `TcpStream`, or a test's
//! in-memory stream (later, a TLS stream over any of them). The defaults
//! copy through `poll_read`/`poll_write`; a socket overrides them to read
//! into spare capacity, send files with `sendfile` and sleep on a read edge.

use std::os::fd::BorrowedFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_lite::{AsyncRead, AsyncWrite};

/// A wake-up that is not a task's waker: what a connection asleep without
/// a task leaves with its transport. Shard-local, so it may hold `Rc`s.
pub trait LocalWake {
    /// Called once, on the transport's next read edge (or FIN or error).
    fn wake(self: Rc<Self>);
}

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
