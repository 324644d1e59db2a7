//! Responding: the handler runs (a panic or an invalid response becomes a
//! 500), and its response is encoded into the write buffer, with its body
//! when that is small and in memory.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::FutureExt;
use pin_project_lite::pin_project;

use super::pump::{pump, settle, BodyEnd, Pumping, Taken};
use super::table::{Interrupt, Phase, SlotHandle};
use super::{Conn, End, Shared, FLUSH_AT};
use crate::handler::{Handler, Request};
use crate::http::encode::{encode_head, BodyLength, HeadMeta};
use crate::http::{Method, RequestHead, StatusCode, Version};
use crate::response::{Body, Response};
use crate::transport::Transport;

/// Bodies up to this size are copied behind their head (one `send`);
/// larger ones are sent from their own buffer after the head.
const COPY_LIMIT: usize = 16 * 1024;

impl<S: Transport> Conn<S> {
    /// Runs the handler and queues its response. `Ok(true)`: keep the
    /// connection. `PENDING`: the body is still on the connection (a
    /// separate instance, so the common one carries none of the pump's
    /// state: with it, every request cost ~600 more instructions).
    pub(super) async fn respond<H: Handler, const PENDING: bool>(
        &mut self,
        head: RequestHead,
        body: Taken,
        shared: &Shared,
        handler: &H,
    ) -> Result<bool, End> {
        let head_only = head.method() == Method::Head;
        let method = head.method();
        // Only with the metrics on: two clock reads a request.
        let started = shared.metrics.enabled().then(std::time::Instant::now);
        let mut route = None;
        let version = head.version();
        let keep_alive = head.keep_alive();
        // The parser lets a `*` target through for OPTIONS only.
        // Set apart, not returned with the response: a tuple holding the
        // response would copy it.
        let mut id = None;
        let mut upstream = None;
        let mut body_end = BodyEnd::Complete;
        let response = if head.method() == Method::Options && head.target() == "*" {
            server_options()
        } else {
            // The handler's deadline, if any, is the connection table's.
            self.slot.enter(Phase::Handler, shared.timeouts.handler);
            // For the log if the handler panics: a reference, not a copy.
            let raw = head.as_bytes().clone();
            // The key read here and again below, not kept across the
            // handler's await: kept, it cost a copy of the request head.
            let (body, pending) = match body {
                Taken::Whole(body) => (body, None),
                Taken::Pending(..) if !PENDING => unreachable_pending(),
                Taken::Pending(pipe, spec) => {
                    // Unread until the handler reads it.
                    body_end = BodyEnd::Unread;
                    (bytes::Bytes::new(), Some((pipe, spec)))
                }
            };
            let mut request = Request::on(head, body, self.entry.key());
            if PENDING {
                if let Some((pipe, _)) = &pending {
                    request.set_pending(pipe.clone());
                }
            }
            // `call` does work before its future exists (the router decides
            // there), so making the future is guarded as well as polling it.
            let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(request)))
            {
                Ok(call) if !PENDING => {
                    bounded_plain(&self.slot, AssertUnwindSafe(call).catch_unwind()).await
                }
                Ok(call) => {
                    // A body still on the connection is read while the
                    // handler runs, as it asks: boxed, as it is rare.
                    let mut pumped = match &pending {
                        None => Pumping::None,
                        Some((pipe, spec)) => {
                            let read_size = self.read_size;
                            let (io, rbuf) = (&mut self.io, &mut self.rbuf);
                            let pump = pump(io, &self.slot, rbuf, read_size, pipe, *spec, shared);
                            Pumping::Running(Box::pin(pump))
                        }
                    };
                    let limit = shared.timeouts.handler;
                    // Built in the call (a `let` of it costs a copy of the
                    // handler's future), and with an output as small as
                    // before the pump existed: past 128 bytes, every move
                    // of it is a `memcpy` call.
                    let outcome = bounded(
                        &self.slot,
                        AssertUnwindSafe(call).catch_unwind(),
                        &mut pumped,
                        limit,
                    )
                    .await;
                    if let Some((pipe, _)) = &pending {
                        let ended = outcome.is_err();
                        body_end = Box::pin(settle(ended, pumped, pipe, &self.slot, shared)).await;
                    }
                    outcome
                }
                Err(panic) => Ok(Err(panic)),
            };
            if let BodyEnd::Failed(end) = body_end {
                // The body failed (too large, malformed, too slow, the
                // client gone): the connection answers that, not the handler.
                return Err(end);
            }
            // The request-id middleware noted the id for the logs; it is
            // taken whether or not there is an access log.
            let key = self.entry.key();
            id = key.take_request_id();
            upstream = key.take_upstream();
            route = key.take_route();
            match outcome {
                Ok(Ok(r)) => match r.invalid() {
                    None => r,
                    Some(why) => {
                        shared.report_invalid_response(why);
                        internal_error()
                    }
                },
                // The panic hook has already printed the message; say
                // which request it was.
                Ok(Err(_)) => {
                    shared.report_panic(&raw, key.info().peer, id.as_ref());
                    internal_error()
                }
                // The handler's future was dropped: it is cancelled.
                Err(Interrupt::Timeout(_)) => handler_timed_out(),
                // The drain deadline passed.
                Err(_) => return Err(End::Abort),
            }
        };
        shared.metrics.count_request();
        self.served += 1;
        // The next request decides its own error format.
        self.json_errors = false;
        let unread = body_end == BodyEnd::Unread;
        let close = !keep_alive || response.closes() || self.slot.draining() || unread;
        let status = response.status();
        if let Some(t) = started {
            let route = route.unwrap_or(crate::metrics::OTHER_ROUTE);
            shared.metrics.observe(route, method, status, t.elapsed());
            if let Some(up) = &upstream {
                shared.metrics.count_upstream(up);
            }
        }
        // Most responses are encoded whole here, without a nested future.
        let (close, rest, mut bytes) =
            self.encode_response(response, version, head_only, close, shared);
        if let Some((body, length)) = rest {
            match self.send_body(body, length, shared).await {
                Ok(sent) => bytes = sent,
                Err(end) => {
                    // A relayed body cut short is logged as such, with what
                    // was sent; the connection ends without completing it.
                    if let Some(up) = upstream.filter(|_| shared.access_log.is_some()) {
                        let mut note = up.to_vec();
                        note.extend_from_slice(b" response cut short");
                        let sent = std::mem::take(&mut self.relayed);
                        self.answered(status, sent, id, Some(note.into()));
                    }
                    return Err(end);
                }
            }
        }
        shared.metrics.count_body_sent(bytes);
        if shared.access_log.is_some() {
            self.answered(status, bytes, id, upstream);
            if self.wbuf.is_empty() {
                // The body went on its own and took the head with it: the
                // response has left.
                self.log_sent(shared);
            }
        }
        if unread {
            return Err(End::Linger);
        }
        if !close && (self.wbuf.len() >= FLUSH_AT || self.dates.is_full()) {
            self.flush(shared).await?;
        }
        Ok(!close)
    }

    /// Encodes `resp`'s head into the write buffer, and its body when that
    /// is empty or small and in memory: no waiting. Returns whether the
    /// connection closes after it, the body still to send (large, a stream
    /// or a file) with its framing, and the body bytes encoded (0 when a
    /// body is left to send: [`Conn::send_body`] counts those).
    pub(super) fn encode_response(
        &mut self,
        resp: Response,
        version: Version,
        head_only: bool,
        mut close: bool,
        shared: &Shared,
    ) -> (bool, Option<(Body, BodyLength)>, u64) {
        let status = resp.status();
        if matches!(resp.body(), Body::Tunnel(_)) {
            return self.encode_upgrade(resp, shared);
        }
        let length = match resp.body() {
            _ if status.forbids_body() => BodyLength::Forbidden,
            Body::Empty => BodyLength::Known(0),
            Body::Full(b) => BodyLength::Known(b.len() as u64),
            Body::File(f) => BodyLength::Known(f.len()),
            Body::Stream(_) if version == Version::Http11 => BodyLength::Chunked,
            Body::Stream(_) => BodyLength::UntilClose,
            Body::Tunnel(_) => BodyLength::Forbidden,
            Body::Relay(r) => match r.length() {
                Some(n) => BodyLength::Known(n),
                None if version == Version::Http11 => BodyLength::Chunked,
                None => BodyLength::UntilClose,
            },
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
            self.wbuf = shared.write_pool.take();
        }
        let date_at = encode_head(&mut self.wbuf, &meta, &shared.date.get(), resp.headers());
        self.dates.mark(date_at, shared.date.secs());
        if head_only || length == BodyLength::Forbidden {
            return (close, None, 0);
        }
        match resp.into_body() {
            Body::Empty => (close, None, 0),
            Body::Full(b) if b.len() <= COPY_LIMIT => {
                self.wbuf.extend_from_slice(&b);
                (close, None, b.len() as u64)
            }
            body => (close, Some((body, length)), 0),
        }
    }
}

impl<S: Transport> Conn<S> {
    /// A `101` whose connection becomes a tunnel: its head as the handler
    /// made it (its `Connection: Upgrade` among its lines), then the
    /// tunnel; the connection serves no more requests.
    #[cold]
    fn encode_upgrade(
        &mut self,
        resp: Response,
        shared: &Shared,
    ) -> (bool, Option<(Body, BodyLength)>, u64) {
        let meta = HeadMeta {
            status: resp.status(),
            content_type: None,
            length: BodyLength::Forbidden,
            close: false,
            keep_alive_header: false,
            preformatted: resp.preformatted(),
        };
        if self.wbuf.capacity() == 0 {
            self.wbuf = shared.write_pool.take();
        }
        let date_at = encode_head(&mut self.wbuf, &meta, &shared.date.get(), resp.headers());
        self.dates.mark(date_at, shared.date.secs());
        (true, Some((resp.into_body(), BodyLength::Forbidden)), 0)
    }
}

/// The methods `OPTIONS *` lists: the standard ones edgeshard passes to
/// handlers. CONNECT it refuses itself; TRACE reaches handlers too but is
/// not advertised (it is what cross-site-tracing scanners look for).
const SERVER_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH";

/// `OPTIONS *` asks about the server as a whole (RFC 9110 §9.3.7): it has
/// no path to route, so it is answered here, as Go's server does.
#[cold]
fn server_options() -> Response {
    Response::new(StatusCode::OK).with_header("Allow", SERVER_METHODS)
}

pin_project! {
    /// A handler's future that the connection's interrupts can end: its
    /// handler deadline passing, or the drain deadline closing it. Only a
    /// future that is not ready looks at the slot. With a request body
    /// still on the connection, it also drives the pump that reads it as
    /// the handler asks. (A named future, not an `async fn`: that would be
    /// one more frame holding the handler's.)
    struct Bounded<'a, 'p, F> {
        #[pin]
        fut: F,
        slot: &'a SlotHandle,
        pump: Option<&'p mut Pumping<'a>>,
        handler_limit: Option<std::time::Duration>,
    }
}

fn bounded<'a, 'p, F: Future>(
    slot: &'a SlotHandle,
    fut: F,
    pump: &'p mut Pumping<'a>,
    handler_limit: Option<std::time::Duration>,
) -> Bounded<'a, 'p, F> {
    Bounded {
        fut,
        slot,
        pump: Some(pump),
        handler_limit,
    }
}

impl<F: Future> Future for Bounded<'_, '_, F> {
    type Output = Result<F::Output, Interrupt>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Poll::Ready(out) = this.fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(out));
            }
            if let Some(pump) = this.pump.as_deref_mut() {
                if let Pumping::Running(p) = pump {
                    if let Poll::Ready(r) = p.as_mut().poll(cx) {
                        *pump = Pumping::Done(r);
                        this.slot.enter(Phase::Handler, *this.handler_limit);
                        // The handler may be waiting for what just ended.
                        continue;
                    }
                }
            }
            return match this.slot.take_interrupt() {
                Some(i) => Poll::Ready(Err(i)),
                None => {
                    this.slot.park(cx.waker());
                    Poll::Pending
                }
            };
        }
    }
}

/// The handler's future bounded by the connection's interrupts, with no
/// pump beside it.
fn bounded_plain<F: Future>(slot: &SlotHandle, fut: F) -> Bounded<'_, '_, F> {
    Bounded {
        fut,
        slot,
        pump: None,
        handler_limit: None,
    }
}

#[cold]
fn unreachable_pending() -> ! {
    unreachable!("a pending body goes to respond::<_, true>")
}

#[cold]
fn handler_timed_out() -> Response {
    Response::error(StatusCode::SERVICE_UNAVAILABLE, "the handler timed out")
}

#[cold]
fn internal_error() -> Response {
    Response::error(StatusCode::INTERNAL_SERVER_ERROR, "the handler failed").with_close()
}
