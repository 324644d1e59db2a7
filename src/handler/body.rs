//! A request body still on its connection, read piece by piece.
//!
//! Most requests arrive with their body (if any) already read: the
//! connection hands a handler the whole of it ([`Request::body`]). A body
//! that is not all there yet is left on the connection instead, behind a
//! [`RequestBody`]: route functions and closures still get it whole (it is
//! read for them, up to `--max-body`, before they run), while a handler
//! that streams (the proxy) takes it with [`Request::take_body_stream`] and
//! reads it as it arrives, with its own limit. The connection reads only
//! when the handler asks for more and less than [`HIGH_WATER`] bytes wait:
//! a slow reader slows the client (backpressure), and `100 Continue` goes
//! out only when the body is first asked for, as Go's server does it.
//!
//! The pipe between the two is one `Rc` on the shard: the handler's side
//! ([`RequestBody`]) and the connection's (`Pipe`'s filling methods) run
//! in the same task.
//!
//! [`Request::body`]: super::Request::body
//! [`Request::take_body_stream`]: super::Request::take_body_stream

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use crate::http::StatusCode;

/// The connection stops reading while this many decoded bytes wait for
/// the handler (bytes).
pub(crate) const HIGH_WATER: usize = 64 * 1024;

/// Why a streamed request body ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyReadError {
    /// Larger than the limit (the declared length, or the bytes so far).
    TooLarge,
    /// The body's framing is broken (a bad chunk): the connection answers
    /// 400 and closes.
    Invalid,
    /// The client sent too slowly, or stopped.
    TimedOut,
    /// The client closed the connection, or it failed.
    Closed,
    /// The connection stopped reading it: the handler had returned.
    NotRead,
}

impl BodyReadError {
    /// The status that describes the failure (the connection answers with
    /// it itself: a handler's response to a failed body is not sent).
    pub fn status(self) -> StatusCode {
        match self {
            BodyReadError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyReadError::TimedOut => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for BodyReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyReadError::TooLarge => "request body too large",
            BodyReadError::Invalid => "malformed request body",
            BodyReadError::TimedOut => "request body not received in time",
            BodyReadError::Closed => "the client closed the connection during the body",
            BodyReadError::NotRead => "the request body was no longer being read",
        })
    }
}

impl std::error::Error for BodyReadError {}

/// The two ends' shared state.
#[derive(Debug)]
struct State {
    /// Decoded pieces not yet taken by the reader.
    chunks: VecDeque<Bytes>,
    buffered: usize,
    /// Body bytes decoded so far.
    received: u64,
    /// The declared `Content-Length` (`None`: chunked).
    length: Option<u64>,
    limit: u64,
    /// Every byte of the body has been decoded.
    finished: bool,
    failed: Option<BodyReadError>,
    /// The reader has asked for bytes at least once (`100 Continue`).
    asked: bool,
    /// The reader waits for bytes.
    wanted: bool,
    /// The handler is done: the connection reads the rest to throw away.
    discarding: bool,
    /// While discarding: the most `received` may reach.
    discard_until: u64,
    reader: Option<Waker>,
    filler: Option<Waker>,
}

/// The connection's end of a request body it reads for a handler.
#[derive(Debug)]
pub(crate) struct Pipe {
    s: RefCell<State>,
}

fn wake(w: &mut Option<Waker>) {
    if let Some(w) = w.take() {
        w.wake();
    }
}

impl Pipe {
    /// A pipe for a body of `length` bytes (`None`: chunked), readable
    /// whole up to `limit` unless the reader sets another.
    pub(crate) fn new(length: Option<u64>, limit: u64) -> Rc<Pipe> {
        Rc::new(Pipe {
            s: RefCell::new(State {
                chunks: VecDeque::new(),
                buffered: 0,
                received: 0,
                length,
                limit,
                finished: false,
                failed: None,
                asked: false,
                wanted: false,
                discarding: false,
                discard_until: 0,
                reader: None,
                filler: None,
            }),
        })
    }

    /// Ready when the connection should read more: the reader asked (or
    /// the rest is being discarded) and few bytes wait. The first `true`
    /// means the body has just been asked for (time for `100 Continue`).
    pub(crate) fn poll_wanted(&self, cx: &Context<'_>) -> Poll<bool> {
        let mut s = self.s.borrow_mut();
        if s.discarding || (s.wanted && s.buffered < HIGH_WATER) {
            let first = !s.asked;
            s.asked = true;
            return Poll::Ready(first);
        }
        s.filler = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Waits until the connection should read more.
    pub(crate) async fn wanted(&self) -> bool {
        poll_fn(|cx| self.poll_wanted(cx)).await
    }

    /// Bytes of the body still expected after what was decoded (`None`
    /// when chunked).
    pub(crate) fn remaining(&self) -> Option<u64> {
        let s = self.s.borrow();
        s.length.map(|n| n - s.received)
    }

    /// Body bytes decoded so far.
    pub(crate) fn received(&self) -> u64 {
        self.s.borrow().received
    }

    /// Hands decoded body bytes to the reader (dropped while discarding).
    /// Past the limit, the body fails as too large.
    pub(crate) fn push(&self, piece: Bytes) -> Result<(), BodyReadError> {
        let mut s = self.s.borrow_mut();
        s.received += piece.len() as u64;
        if s.discarding {
            return match s.received > s.discard_until {
                true => Err(BodyReadError::NotRead),
                false => Ok(()),
            };
        }
        if s.received > s.limit {
            s.failed = Some(BodyReadError::TooLarge);
            wake(&mut s.reader);
            return Err(BodyReadError::TooLarge);
        }
        if !piece.is_empty() {
            s.buffered += piece.len();
            s.chunks.push_back(piece);
            s.wanted = false;
            wake(&mut s.reader);
        }
        Ok(())
    }

    /// The whole body has been decoded.
    pub(crate) fn finish(&self) {
        let mut s = self.s.borrow_mut();
        s.finished = true;
        wake(&mut s.reader);
    }

    /// The body cannot be read to its end.
    pub(crate) fn fail(&self, e: BodyReadError) {
        let mut s = self.s.borrow_mut();
        s.failed.get_or_insert(e);
        wake(&mut s.reader);
    }

    /// What ended the body early, if anything did.
    pub(crate) fn failure(&self) -> Option<BodyReadError> {
        self.s.borrow().failed
    }

    /// Whether the whole body has been decoded.
    pub(crate) fn is_finished(&self) -> bool {
        self.s.borrow().finished
    }

    /// The handler is done: what is left is read and thrown away, up to
    /// `max` more bytes, and anyone still reading gets
    /// [`BodyReadError::NotRead`].
    pub(crate) fn discard_rest(&self, max: u64) {
        let mut s = self.s.borrow_mut();
        s.discarding = true;
        s.discard_until = s.received + max;
        s.chunks.clear();
        s.buffered = 0;
    }

    /// The connection stopped reading (the handler returned and the rest
    /// is not read): a reader still holding the body gets an error.
    pub(crate) fn close(&self) {
        let mut s = self.s.borrow_mut();
        if !s.finished {
            s.failed.get_or_insert(BodyReadError::NotRead);
        }
        wake(&mut s.reader);
    }

    fn poll_chunk(&self, cx: &Context<'_>) -> Poll<Result<Option<Bytes>, BodyReadError>> {
        let mut s = self.s.borrow_mut();
        if let Some(piece) = s.chunks.pop_front() {
            s.buffered -= piece.len();
            return Poll::Ready(Ok(Some(piece)));
        }
        if let Some(e) = s.failed {
            return Poll::Ready(Err(e));
        }
        if s.finished {
            return Poll::Ready(Ok(None));
        }
        if s.length.is_some_and(|n| n > s.limit) || s.discarding {
            let e = if s.discarding {
                BodyReadError::NotRead
            } else {
                BodyReadError::TooLarge
            };
            s.failed = Some(e);
            return Poll::Ready(Err(e));
        }
        s.wanted = true;
        s.reader = Some(cx.waker().clone());
        wake(&mut s.filler);
        Poll::Pending
    }
}

/// A request body the handler reads as it arrives. Each piece is a
/// `Bytes` of what one read of the connection decoded (at most 64 KiB);
/// the connection reads only while the handler asks.
#[derive(Debug)]
pub struct RequestBody {
    pipe: Rc<Pipe>,
}

impl RequestBody {
    pub(crate) fn new(pipe: Rc<Pipe>) -> RequestBody {
        RequestBody { pipe }
    }

    /// The declared length (`Content-Length`); `None` for a chunked body.
    pub fn length(&self) -> Option<u64> {
        self.pipe.s.borrow().length
    }

    /// Body bytes the connection has decoded so far.
    pub fn received(&self) -> u64 {
        self.pipe.received()
    }

    /// The most this body may carry (bytes): `--max-body` unless set
    /// here. A body that declares more fails at its first read, one that
    /// sends more when it gets there, with [`BodyReadError::TooLarge`] (the
    /// connection answers 413 and closes).
    pub fn set_limit(&mut self, limit: u64) {
        self.pipe.s.borrow_mut().limit = limit;
    }

    /// The next piece of the body; `Ok(None)` at its end.
    pub fn poll_chunk(&mut self, cx: &Context<'_>) -> Poll<Result<Option<Bytes>, BodyReadError>> {
        self.pipe.poll_chunk(cx)
    }

    /// The next piece of the body; `Ok(None)` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BodyReadError> {
        poll_fn(|cx| self.pipe.poll_chunk(cx)).await
    }

    /// Reads the rest of the body into one buffer (within the limit).
    pub async fn whole(mut self) -> Result<Bytes, BodyReadError> {
        let first = match self.chunk().await? {
            None => return Ok(Bytes::new()),
            Some(b) => b,
        };
        let Some(second) = self.chunk().await? else {
            return Ok(first);
        };
        let expected = self.length().unwrap_or(0) as usize;
        let mut all = BytesMut::with_capacity(expected.max(first.len() + second.len()));
        all.extend_from_slice(&first);
        all.extend_from_slice(&second);
        while let Some(b) = self.chunk().await? {
            all.extend_from_slice(&b);
        }
        Ok(all.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    #[test]
    fn pieces_arrive_in_order_and_the_end_is_seen() {
        let pipe = Pipe::new(Some(6), 100);
        let body = RequestBody::new(pipe.clone());
        pipe.push(Bytes::from_static(b"abc")).unwrap();
        pipe.push(Bytes::from_static(b"def")).unwrap();
        pipe.finish();
        assert_eq!(block_on(body.whole()).unwrap(), "abcdef");
    }

    #[test]
    fn a_declared_length_over_the_limit_fails_before_any_read() {
        let pipe = Pipe::new(Some(1000), 100);
        let mut body = RequestBody::new(pipe.clone());
        let waker = Waker::noop();
        let cx = Context::from_waker(waker);
        assert_eq!(
            body.poll_chunk(&cx),
            Poll::Ready(Err(BodyReadError::TooLarge))
        );
        // Raised, it would have been read.
        let pipe = Pipe::new(Some(1000), 100);
        let mut body = RequestBody::new(pipe.clone());
        body.set_limit(1000);
        assert!(body.poll_chunk(&cx).is_pending());
        assert_eq!(pipe.poll_wanted(&cx), Poll::Ready(true));
        assert_eq!(pipe.poll_wanted(&cx), Poll::Ready(false));
    }

    #[test]
    fn bytes_past_the_limit_fail_a_chunked_body() {
        let pipe = Pipe::new(None, 4);
        let body = RequestBody::new(pipe.clone());
        pipe.push(Bytes::from_static(b"abc")).unwrap();
        assert_eq!(
            pipe.push(Bytes::from_static(b"de")),
            Err(BodyReadError::TooLarge)
        );
        assert_eq!(block_on(body.whole()), Err(BodyReadError::TooLarge));
    }

    #[test]
    fn the_connection_reads_only_when_asked_and_below_the_high_water_mark() {
        let pipe = Pipe::new(None, u64::MAX);
        let mut body = RequestBody::new(pipe.clone());
        let cx = Context::from_waker(Waker::noop());
        assert!(pipe.poll_wanted(&cx).is_pending());
        assert!(body.poll_chunk(&cx).is_pending());
        assert!(pipe.poll_wanted(&cx).is_ready());
        pipe.push(Bytes::from(vec![0u8; HIGH_WATER])).unwrap();
        // Pushing satisfied the reader: no more reads until it asks again.
        assert!(pipe.poll_wanted(&cx).is_pending());
        assert!(matches!(body.poll_chunk(&cx), Poll::Ready(Ok(Some(_)))));
        assert!(body.poll_chunk(&cx).is_pending());
        assert!(pipe.poll_wanted(&cx).is_ready());
    }

    #[test]
    fn a_reader_left_behind_gets_an_error_not_a_hang() {
        let pipe = Pipe::new(Some(10), 100);
        let body = RequestBody::new(pipe.clone());
        pipe.close();
        assert_eq!(block_on(body.whole()), Err(BodyReadError::NotRead));
    }
}
