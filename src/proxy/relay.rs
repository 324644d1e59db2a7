//! An upstream response's body, read as the client takes it: the
//! connection asks for the next piece only after writing the last, so a
//! slow client slows the upstream read and memory stays bounded (one read
//! buffer, at most 64 KiB). A clean end gives the upstream connection back
//! to its pool; a timeout between bytes, a close before the promised end or
//! broken chunking ends the stream with an error (the client's connection
//! is then aborted, not finished as if the body were whole).

use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::Stream;

use super::pool::UpConn;
use super::MountState;
use crate::deadline::Deadline;
use crate::http::body::ChunkedDecoder;
use crate::http::client::ResponseFraming;
use crate::transport::Transport;

/// Largest read from an upstream (bytes).
pub(super) const READ_MAX: usize = 64 * 1024;

/// One request in flight to upstream `i` of a mount: counted while it
/// lives (least-outstanding balancing).
#[derive(Debug)]
pub(super) struct Lease {
    pub(super) mount: Rc<MountState>,
    pub(super) i: usize,
}

impl Lease {
    pub(super) fn new(mount: Rc<MountState>, i: usize) -> Lease {
        let up = &mount.upstreams[i];
        up.outstanding.set(up.outstanding.get() + 1);
        Lease { mount, i }
    }

    /// Gives a connection whose exchange ended cleanly back to the pool.
    pub(super) fn put_back(&self, conn: UpConn) {
        let up = &self.mount.upstreams[self.i];
        up.pool.put(conn);
        up.stats.set_idle(up.pool.len());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let up = &self.mount.upstreams[self.i];
        up.outstanding.set(up.outstanding.get().saturating_sub(1));
    }
}

enum Framing {
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    UntilClose,
}

/// The body stream.
pub(super) struct UpstreamBody {
    conn: Option<UpConn>,
    framing: Framing,
    keep_alive: bool,
    idle: Duration,
    timer: Option<Deadline>,
    decoded: BytesMut,
    lease: Option<Lease>,
}

impl UpstreamBody {
    pub(super) fn new(
        conn: UpConn,
        framing: ResponseFraming,
        keep_alive: bool,
        idle: Duration,
        lease: Lease,
    ) -> UpstreamBody {
        let framing = match framing {
            ResponseFraming::Length(n) => Framing::Length(n),
            ResponseFraming::Chunked => {
                Framing::Chunked(Box::new(ChunkedDecoder::new(usize::MAX, 64 * 1024)))
            }
            ResponseFraming::UntilClose | ResponseFraming::None => Framing::UntilClose,
        };
        UpstreamBody {
            conn: Some(conn),
            framing,
            keep_alive,
            idle,
            timer: None,
            decoded: BytesMut::new(),
            lease: Some(lease),
        }
    }

    /// The body ended where its framing said: the connection may serve
    /// another request.
    fn finish(&mut self) {
        if let (Some(conn), Some(lease)) = (self.conn.take(), self.lease.take()) {
            if self.keep_alive {
                lease.put_back(conn);
            }
        }
    }

    fn fail(&mut self, e: io::Error) -> Poll<Option<io::Result<Bytes>>> {
        self.conn = None;
        self.lease = None;
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for UpstreamBody {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            // What the buffer holds first: a piece (and whether it ends
            // the body), or how much to read.
            let (piece, ended, want) = match &mut this.framing {
                Framing::Length(left) => {
                    let take = (*left).min(conn.buf.len() as u64);
                    *left -= take;
                    let piece = conn.buf.split_to(take as usize).freeze();
                    (piece, *left == 0, (*left).min(READ_MAX as u64) as usize)
                }
                Framing::Chunked(d) => match d.decode(&mut conn.buf, &mut this.decoded) {
                    Ok(done) => (this.decoded.split().freeze(), done, READ_MAX),
                    Err(e) => return this.fail(io::Error::new(io::ErrorKind::InvalidData, e)),
                },
                Framing::UntilClose => (conn.buf.split().freeze(), false, READ_MAX),
            };
            if ended {
                this.finish();
            }
            if !piece.is_empty() {
                return Poll::Ready(Some(Ok(piece)));
            }
            let Some(conn) = this.conn.as_mut().filter(|_| !ended) else {
                return Poll::Ready(None);
            };
            match conn.sock.poll_read_onto(cx, &mut conn.buf, want) {
                Poll::Ready(Ok(0)) => {
                    if matches!(this.framing, Framing::UntilClose) {
                        this.conn = None;
                        this.lease = None;
                        return Poll::Ready(None);
                    }
                    return this.fail(io::ErrorKind::UnexpectedEof.into());
                }
                Poll::Ready(Ok(_)) => this.timer = None,
                Poll::Ready(Err(e)) => return this.fail(e),
                Poll::Pending => {
                    let idle = this.idle;
                    let timer = this.timer.get_or_insert_with(|| Deadline::after(idle));
                    if timer.poll(cx).is_ready() {
                        return this.fail(io::ErrorKind::TimedOut.into());
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
