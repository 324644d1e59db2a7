//! The `Handler` abstraction: an async function from a [`Request`] to
//! anything that converts into a [`Response`].
//!
//! Handlers run on one shard and need not be `Send`: each shard builds its
//! own instance, so per-shard state can live in `Rc`/`Cell` without locks.

mod body;
mod conn_info;
mod request;

use std::future::Future;

pub(crate) use body::Pipe;
pub use body::{BodyReadError, RequestBody};
pub(crate) use conn_info::ConnEntry;
pub use conn_info::ConnInfo;
pub use request::{Request, RouteParams};

use crate::future::{Either, IntoResponseFuture};
use crate::response::{IntoResponse, Response};

/// Something that answers requests on one shard.
pub trait Handler: 'static {
    /// Answers one request.
    fn call(&self, req: Request) -> impl Future<Output = Response>;
}

/// Any `Fn(Request) -> impl Future<Output = impl IntoResponse>` is a handler.
impl<F, Fut, R> Handler for F
where
    F: Fn(Request) -> Fut + 'static,
    Fut: Future<Output = R>,
    R: IntoResponse,
{
    #[inline(always)]
    fn call(&self, req: Request) -> impl Future<Output = Response> {
        with_whole_body(req, |req| IntoResponseFuture::new(self(req)))
    }
}

/// A handler function that reads its own request body, as it arrives
/// ([`Request::take_body_stream`]), rather than getting it whole: for
/// uploads larger than `--max-body`, or passed on as they come.
///
/// ```
/// use edgeshard::{handler_streaming, Request, Response};
///
/// let count = handler_streaming(|mut req: Request| async move {
///     let mut n = 0;
///     if let Some(mut body) = req.take_body_stream() {
///         body.set_limit(1 << 30);
///         while let Ok(Some(piece)) = body.chunk().await {
///             n += piece.len();
///         }
///     } else {
///         n = req.body().len();
///     }
///     Response::text(n.to_string())
/// });
/// # let _ = count;
/// ```
pub fn streaming<F>(f: F) -> Streaming<F> {
    Streaming(f)
}

/// A function whose request bodies are not read for it: see [`streaming`].
#[derive(Debug, Clone, Copy)]
pub struct Streaming<F>(F);

impl<F, Fut, R> Handler for Streaming<F>
where
    F: Fn(Request) -> Fut + 'static,
    Fut: Future<Output = R>,
    R: IntoResponse,
{
    fn call(&self, req: Request) -> impl Future<Output = Response> {
        IntoResponseFuture::new((self.0)(req))
    }
}

impl<F> Streaming<F> {
    /// The function.
    pub fn inner(&self) -> &F {
        &self.0
    }
}

/// Calls `call` with the request's body read whole: at once when it came
/// whole (nearly always), else after reading it (see [`RequestBody`]).
/// What closures and route functions go through, so `req.body()` and
/// `req.json()` always see the whole body.
#[inline(always)]
pub(crate) fn with_whole_body<G, Fut>(req: Request, call: G) -> impl Future<Output = Response>
where
    G: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    if !req.body_pending() {
        return Either::Left { inner: call(req) };
    }
    // Boxed: reading first holds the request, the function and its future
    // at once; inline, that would enlarge (and be copied with) every
    // request's future, pending body or not.
    Either::Right {
        inner: Box::pin(async move {
            let mut req = req;
            match req.read_body().await {
                Ok(()) => call(req).await,
                // The connection answers a failed body itself; this is
                // for requests served some other way.
                Err(e) => Response::error(e.status(), &e.to_string()).with_close(),
            }
        }),
    }
}

/// A shard's handler, which a reload replaces: each request takes the
/// one current when its head has been parsed (one reference count), and
/// an old handler lives on until the last request using it is answered.
pub(crate) struct Swappable<H> {
    current: std::cell::RefCell<std::rc::Rc<H>>,
}

impl<H> Swappable<H> {
    pub(crate) fn new(handler: H) -> Self {
        Swappable {
            current: std::cell::RefCell::new(std::rc::Rc::new(handler)),
        }
    }

    pub(crate) fn from_rc(handler: std::rc::Rc<H>) -> Self {
        Swappable {
            current: std::cell::RefCell::new(handler),
        }
    }

    /// The handler now.
    #[inline]
    pub(crate) fn get(&self) -> std::rc::Rc<H> {
        self.current.borrow().clone()
    }

    /// Replaces it; the old one drops once no connection holds it.
    pub(crate) fn replace(&self, handler: H) {
        *self.current.borrow_mut() = std::rc::Rc::new(handler);
    }
}
