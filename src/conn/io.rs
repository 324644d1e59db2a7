//! Reads and writes on the connection's transport that a deadline, a drain
//! or the drain deadline can cut short. Data that is already there is always
//! taken first: an interrupt only ends a wait.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use futures_lite::{AsyncRead, AsyncWrite};

use super::table::{Interrupt, Phase, SlotHandle};

/// Why a read or write did not complete.
#[derive(Debug)]
pub enum Stop {
    /// The transport failed.
    Io(io::Error),
    /// A deadline, drain or close interrupted the wait.
    Interrupted(Interrupt),
}

/// Reads up to `want` bytes onto the end of `buf`; `Ok(0)` is end of stream.
pub async fn read_into<S: AsyncRead + Unpin>(
    io: &mut S,
    slot: &SlotHandle,
    buf: &mut BytesMut,
    want: usize,
) -> Result<usize, Stop> {
    if slot.closing() {
        return Err(Stop::Interrupted(Interrupt::Close));
    }
    // Reclaims the buffer in place once earlier requests' `Bytes` are dropped.
    buf.reserve(want);
    let start = buf.len();
    // `poll_read` wants initialised memory; zeroing `want` bytes (2 KiB at
    // first, adaptive after) is cheaper than a syscall.
    buf.resize(start + want, 0);
    let dst = &mut buf[start..];
    let res = poll_fn(|cx| match Pin::new(&mut *io).poll_read(cx, dst) {
        Poll::Ready(r) => Poll::Ready(r.map_err(Stop::Io)),
        Poll::Pending => match slot.take_interrupt() {
            Some(i) => Poll::Ready(Err(Stop::Interrupted(i))),
            None => {
                slot.park(cx.waker());
                Poll::Pending
            }
        },
    })
    .await;
    buf.truncate(start + *res.as_ref().unwrap_or(&0));
    res
}

/// Writes all of `buf`. The caller has entered [`Phase::Write`]; every bit of
/// progress restarts the `write_timeout` clock, so only a stalled write times out.
pub async fn write_all<S: AsyncWrite + Unpin>(
    io: &mut S,
    slot: &SlotHandle,
    mut buf: &[u8],
    write_timeout: Duration,
) -> Result<(), Stop> {
    while !buf.is_empty() {
        if slot.closing() {
            return Err(Stop::Interrupted(Interrupt::Close));
        }
        let n = poll_fn(|cx| match Pin::new(&mut *io).poll_write(cx, buf) {
            Poll::Ready(Ok(0)) => Poll::Ready(Err(Stop::Io(io::ErrorKind::WriteZero.into()))),
            Poll::Ready(r) => Poll::Ready(r.map_err(Stop::Io)),
            Poll::Pending => match slot.take_interrupt() {
                Some(i) => Poll::Ready(Err(Stop::Interrupted(i))),
                None => {
                    slot.park(cx.waker());
                    Poll::Pending
                }
            },
        })
        .await?;
        buf = &buf[n..];
        if !buf.is_empty() {
            slot.enter(Phase::Write, Some(write_timeout));
        }
    }
    Ok(())
}

/// Shuts down the write side (FIN after all queued data).
pub async fn shutdown_write<S: AsyncWrite + Unpin>(io: &mut S) -> io::Result<()> {
    poll_fn(|cx| Pin::new(&mut *io).poll_close(cx)).await
}
