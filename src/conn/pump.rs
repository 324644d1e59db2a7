//! Request bodies: taken whole when they are already in the read buffer
//! (the common case), else read while the handler runs, as it asks for
//! them (see [`crate::handler::RequestBody`]): `100 Continue` when the
//! body is first asked for, the body timeout and minimum rate while
//! reading, the handler's deadline while waiting for it to ask. What a
//! handler leaves unread is read and thrown away when it is small, so the
//! connection can stay open; larger remains close it (lingering).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use super::io::{read_into, write_all, Stop};
use super::read::next_read_size;
use super::table::{Interrupt, Phase, SlotHandle};
use super::{Conn, End, Shared, MAX_READ};
use crate::handler::{BodyReadError, Pipe};
use crate::http::body::ChunkedDecoder;
use crate::http::{Framing, RequestHead, StatusCode};
use crate::json::is_json_content_type;
use crate::transport::Transport;

/// The most a handler may leave unread for the connection to stay open:
/// read and thrown away after it returns (Go reads up to 256 KiB too).
const DISCARD_MAX: u64 = 256 * 1024;

/// A request's body as the connection hands it over.
pub(super) enum Taken {
    /// Read already (or none).
    Whole(Bytes),
    /// Still (partly) on the connection.
    Pending(Rc<Pipe>, BodySpec),
}

/// What the body reader needs from the head.
#[derive(Debug, Clone, Copy)]
pub(super) struct BodySpec {
    chunked: bool,
    expect_continue: bool,
}

/// How the body ended, once the handler returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyEnd {
    /// Read to its end (by the handler or thrown away): the connection may stay.
    Complete,
    /// Not read: the response closes the connection, which lingers.
    Unread,
    /// The body failed: the connection ends this way instead of the
    /// handler's response.
    Failed(End),
}

impl<S: Transport> Conn<S> {
    /// The body of the request `head` starts: whole when it is all in the
    /// read buffer and within `--max-body`, else left on the connection
    /// for the handler (a proxy's limit may differ).
    pub(super) fn take_body(&mut self, head: &RequestHead, shared: &Shared) -> Taken {
        let framing = head.framing();
        if framing == Framing::None {
            return Taken::Whole(Bytes::new());
        }
        self.json_errors = head
            .header("content-type")
            .is_some_and(is_json_content_type);
        let max = shared.limits.max_body as u64;
        match framing {
            Framing::Length(n) if n <= max && self.rbuf.len() as u64 >= n => {
                Taken::Whole(self.rbuf.split_to(n as usize).freeze())
            }
            _ => Taken::Pending(
                Pipe::new(
                    match framing {
                        Framing::Length(n) => Some(n),
                        _ => None,
                    },
                    max,
                ),
                BodySpec {
                    chunked: framing == Framing::Chunked,
                    expect_continue: head.expects_continue(),
                },
            ),
        }
    }
}

/// The pump reading a body for its handler (see [`pump`]).
pub(super) type Pump<'a> = Pin<Box<dyn Future<Output = Result<(), End>> + 'a>>;

/// Where the pump is when the handler returns.
pub(super) enum Pumping<'a> {
    /// There was none.
    None,
    /// Still reading.
    Running(Pump<'a>),
    /// It ended: the body was read, or failed.
    Done(Result<(), End>),
}

/// How the body ended, once its handler returned (or was ended: `ended`).
/// Left unread but small, the body is read and thrown away first.
pub(super) async fn settle(
    ended: bool,
    pumped: Pumping<'_>,
    pipe: &Pipe,
    slot: &SlotHandle,
    shared: &Shared,
) -> BodyEnd {
    if ended {
        pipe.close();
        return BodyEnd::Unread;
    }
    let end = match pumped {
        Pumping::Done(Ok(())) => BodyEnd::Complete,
        Pumping::Done(Err(end)) => BodyEnd::Failed(end),
        // The handler refused the body before it was read (its length
        // is over the limit): answered as it always was.
        _ if pipe.failure() == Some(BodyReadError::TooLarge) => BodyEnd::Failed(too_large()),
        _ if pipe.is_finished() => BodyEnd::Complete,
        Pumping::Running(pump) if pipe.remaining().is_none_or(|left| left <= DISCARD_MAX) => {
            pipe.discard_rest(DISCARD_MAX);
            match pump.await {
                Ok(()) => BodyEnd::Complete,
                Err(End::Linger) => BodyEnd::Unread,
                Err(end) => BodyEnd::Failed(end),
            }
        }
        _ => {
            pipe.close();
            BodyEnd::Unread
        }
    };
    slot.enter(Phase::Handler, shared.timeouts.handler);
    end
}

#[cold]
fn too_large() -> End {
    End::Reject(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
}

/// Moves the body from the connection into `pipe`: what the read buffer
/// holds at once, then a read whenever the handler asks and little
/// waits. A failure is told to the pipe (so the handler sees it) and
/// returned as the connection's ending.
pub(super) async fn pump<S: Transport>(
    io: &mut S,
    slot: &SlotHandle,
    rbuf: &mut BytesMut,
    mut read_size: usize,
    pipe: &Pipe,
    spec: BodySpec,
    shared: &Shared,
) -> Result<(), End> {
    let mut decoder = spec
        .chunked
        .then(|| ChunkedDecoder::new(usize::MAX, shared.limits.max_header_bytes));
    let mut decoded = BytesMut::new();
    let mut paused = None;
    loop {
        // What the read buffer holds first.
        let done = match &mut decoder {
            None => {
                let left = pipe.remaining().unwrap_or(0);
                let take = left.min(rbuf.len() as u64) as usize;
                if take > 0 {
                    pipe.push(rbuf.split_to(take).freeze())
                        .map_err(|e| failed(pipe, e))?;
                }
                left == take as u64
            }
            Some(d) => {
                let done = d.decode(rbuf, &mut decoded).map_err(|e| {
                    pipe.fail(BodyReadError::Invalid);
                    End::Reject(e.status(), e.reason())
                })?;
                if !decoded.is_empty() {
                    pipe.push(decoded.split().freeze())
                        .map_err(|e| failed(pipe, e))?;
                }
                done
            }
        };
        if done {
            pipe.finish();
            return Ok(());
        }
        // Waiting for the handler to ask is the handler's time.
        if slot.phase() == Phase::Body {
            paused = Some(slot.pause_body(shared.timeouts.handler));
        } else {
            slot.enter(Phase::Handler, shared.timeouts.handler);
        }
        let first = pipe.wanted().await;
        if first && spec.expect_continue && pipe.received() == 0 {
            slot.enter(Phase::Write, Some(shared.timeouts.write));
            write_all(
                io,
                slot,
                b"HTTP/1.1 100 Continue\r\n\r\n",
                shared.timeouts.write,
                false,
            )
            .await
            .map_err(|_| {
                pipe.fail(BodyReadError::Closed);
                End::Abort
            })?;
        }
        // The body's deadline counts from its first wait, as a whole body's does.
        match paused {
            None => slot.enter_body(shared.timeouts.body),
            Some(p) => slot.resume_body(p),
        }
        let want = pipe
            .remaining()
            .map_or(read_size, |left| left.min(read_size as u64) as usize)
            .clamp(1, MAX_READ);
        match read_into(io, slot, rbuf, want).await {
            Ok(0) => {
                pipe.fail(BodyReadError::Closed);
                return Err(End::Quiet);
            }
            Ok(n) => {
                shared.metrics.count_received(n);
                slot.body_progress(n);
                read_size = next_read_size(read_size, n, want);
            }
            Err(Stop::Interrupted(Interrupt::Timeout(_))) => {
                pipe.fail(BodyReadError::TimedOut);
                return Err(End::Reject(
                    StatusCode::REQUEST_TIMEOUT,
                    "request body not received in time",
                ));
            }
            Err(_) => {
                pipe.fail(BodyReadError::Closed);
                return Err(End::Abort);
            }
        }
    }
}

/// The ending for a body the pipe refused.
fn failed(pipe: &Pipe, e: BodyReadError) -> End {
    pipe.fail(e);
    match e {
        BodyReadError::TooLarge => too_large(),
        // Past what is thrown away after the handler: close instead.
        _ => End::Linger,
    }
}
