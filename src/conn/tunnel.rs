//! After a `101 Switching Protocols`: the connection's bytes are copied
//! both ways between the client and the other end (the proxy's upstream)
//! until both have closed, each close passed on as a half-close (FIN), or
//! until nothing moves for the tunnel's idle timeout. At most 16 KiB wait
//! in each direction: a side that does not read stops the other's reads.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_lite::AsyncWrite;

use super::table::Phase;
use super::{Conn, End, Shared};
use crate::response::Upgraded;
use crate::transport::Transport;

/// Most bytes read at once, each way.
const PIECE: usize = 16 * 1024;

/// One direction of the copy.
#[derive(Default)]
struct Way {
    buf: BytesMut,
    /// The reading side has closed.
    eof: bool,
    /// The FIN has been passed on.
    shut: bool,
}

impl Way {
    fn done(&self) -> bool {
        self.shut
    }

    /// Reads from `from`, writes to `to`, passes a close on. `Ready(Err)`
    /// ends the tunnel; `Ready(Ok(true))` is progress.
    fn poll_step<R: Transport, W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut R,
        to: &mut W,
    ) -> Poll<std::io::Result<bool>> {
        let mut moved = false;
        loop {
            if !self.buf.is_empty() {
                match Pin::new(&mut *to).poll_write(cx, &self.buf) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                    }
                    Poll::Ready(Ok(n)) => {
                        let _ = self.buf.split_to(n);
                        moved = true;
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break,
                }
            }
            if self.eof {
                if !self.shut {
                    // A failed half-close means the other side is gone too.
                    let _ = Pin::new(&mut *to).poll_close(cx);
                    self.shut = true;
                    moved = true;
                }
                break;
            }
            match from.poll_read_onto(cx, &mut self.buf, PIECE) {
                Poll::Ready(Ok(0)) => {
                    self.eof = true;
                    moved = true;
                }
                Poll::Ready(Ok(_)) => moved = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        if moved {
            Poll::Ready(Ok(true))
        } else {
            Poll::Pending
        }
    }
}

impl<S: Transport> Conn<S> {
    /// Copies both ways until both sides have closed, one fails, the
    /// tunnel sits idle past its timeout or the drain deadline passes.
    /// Returns the bytes sent to the client.
    pub(super) async fn tunnel(&mut self, up: Upgraded, shared: &Shared) -> Result<u64, End> {
        self.flush(shared).await?;
        let (mut sock, early, idle, _keep) = up.into_parts();
        let mut to_client = Way::default();
        to_client.buf.extend_from_slice(&early);
        // What the client sent after its request head is the tunnel's.
        let mut to_upstream = Way {
            buf: self.rbuf.split(),
            ..Way::default()
        };
        let (io, slot) = (&mut self.io, &self.slot);
        slot.enter(Phase::Write, Some(idle));
        let mut sent = 0u64;
        let end = poll_fn(|cx| loop {
            let before = to_client.buf.len();
            let a = to_client.poll_step(cx, &mut sock, io);
            let b = to_upstream.poll_step(cx, io, &mut sock);
            sent += before.saturating_sub(to_client.buf.len()) as u64;
            match (a, b) {
                (Poll::Ready(Err(_)), _) | (_, Poll::Ready(Err(_))) => {
                    return Poll::Ready(End::Abort)
                }
                (Poll::Ready(Ok(_)), _) | (_, Poll::Ready(Ok(_))) => {
                    if to_client.done() && to_upstream.done() {
                        return Poll::Ready(End::Done);
                    }
                    slot.enter(Phase::Write, Some(idle));
                    continue;
                }
                _ => {}
            }
            return match slot.take_interrupt() {
                Some(_) => Poll::Ready(End::Abort),
                None => {
                    slot.park(cx.waker());
                    Poll::Pending
                }
            };
        })
        .await;
        match end {
            End::Done => Ok(sent),
            other => Err(other),
        }
    }
}
