//! Reads and writes on the connection's transport that a deadline, a drain
//! or the drain deadline can cut short. Data that is already there is always
//! taken first: an interrupt only ends a wait.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures_lite::AsyncWrite;

use super::pool::ReadPool;
use super::table::{Interrupt, Phase, SlotHandle};
use crate::transport::Transport;

/// Why a read or write did not complete.
#[derive(Debug)]
pub enum Stop {
    /// The transport failed (how does not matter: the connection closes).
    Io,
    /// A deadline, drain or close interrupted the wait.
    Interrupted(Interrupt),
}

/// Reads up to `want` bytes onto the end of `buf`; `Ok(0)` is end of stream.
pub async fn read_into<S: Transport>(
    io: &mut S,
    slot: &SlotHandle,
    buf: &mut BytesMut,
    want: usize,
) -> Result<usize, Stop> {
    if slot.closing() {
        return Err(Stop::Interrupted(Interrupt::Close));
    }
    poll_fn(|cx| {
        let p = io.poll_read_onto(cx, buf, want);
        interruptible(slot, cx, p)
    })
    .await
}

/// Waits for the next request's first bytes with no buffer of its own:
/// see [`ReadPool`]. The bytes read become `buf` (empty before).
pub(crate) async fn read_pooled<S: Transport>(
    io: &mut S,
    slot: &SlotHandle,
    pool: &ReadPool,
    buf: &mut BytesMut,
) -> Result<usize, Stop> {
    if slot.closing() {
        return Err(Stop::Interrupted(Interrupt::Close));
    }
    poll_fn(|cx| {
        let mut b = pool.take();
        match io.poll_read_onto(cx, &mut b, pool.size()) {
            Poll::Ready(Ok(n)) => {
                *buf = b;
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(_)) => {
                pool.put_back(b);
                Poll::Ready(Err(Stop::Io))
            }
            Poll::Pending => {
                pool.put_back(b);
                interruptible(slot, cx, Poll::Pending)
            }
        }
    })
    .await
}

/// Writes all of `buf`; with `more`, tells the transport that more data
/// (a file body) follows at once. The caller has entered [`Phase::Write`];
/// every bit of progress restarts the `write_timeout` clock, so only a
/// stalled write times out.
pub async fn write_all<S: Transport>(
    io: &mut S,
    slot: &SlotHandle,
    mut buf: &[u8],
    write_timeout: Duration,
    more: bool,
) -> Result<(), Stop> {
    while !buf.is_empty() {
        if slot.closing() {
            return Err(Stop::Interrupted(Interrupt::Close));
        }
        let n = poll_fn(|cx| {
            let p = if more {
                io.poll_write_more(cx, buf)
            } else {
                Pin::new(&mut *io).poll_write(cx, buf)
            };
            match p {
                Poll::Ready(Ok(0)) => Poll::Ready(Err(Stop::Io)),
                p => interruptible(slot, cx, p),
            }
        })
        .await?;
        buf = &buf[n..];
        if !buf.is_empty() {
            slot.enter(Phase::Write, Some(write_timeout));
        }
    }
    Ok(())
}

/// A transport's poll as a wait that a deadline, a drain or a close can
/// end: when the transport has nothing yet, the interrupt (if any) is the
/// answer; else the slot holds the waker for one.
pub(crate) fn interruptible<T>(
    slot: &SlotHandle,
    cx: &Context<'_>,
    poll: Poll<io::Result<T>>,
) -> Poll<Result<T, Stop>> {
    match poll {
        Poll::Ready(r) => Poll::Ready(r.map_err(|_| Stop::Io)),
        Poll::Pending => match slot.take_interrupt() {
            Some(i) => Poll::Ready(Err(Stop::Interrupted(i))),
            None => {
                slot.park(cx.waker());
                Poll::Pending
            }
        },
    }
}

/// Shuts down the write side (FIN after all queued data).
pub async fn shutdown_write<S: AsyncWrite + Unpin>(io: &mut S) -> io::Result<()> {
    poll_fn(|cx| Pin::new(&mut *io).poll_close(cx)).await
}
