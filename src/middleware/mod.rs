//! Middleware: what runs before a handler (and may answer instead of it)
//! and after it (and may change its response), composed at compile time.
//!
//! A [`Middleware`] is a pair of synchronous hooks rather than a handler
//! wrapping a handler in another `async` block: each such layer would keep
//! its own copy of the request (over 300 bytes) alive for as long as the
//! request runs. [`Layered`] calls the hooks around any [`Handler`] and
//! returns a named future ([`LayeredFuture`]) that holds only the
//! middleware's small [`Middleware::Carry`].
//!
//! Composition is static: `(A, B)` is `A` around `B`, `Option<M>` passes
//! through when `None` (so a chain built from flags keeps one type), `()`
//! does nothing. Scopes:
//!
//! - [`HandlerExt::layer`]: around a whole handler, the router's own 404,
//!   405 and redirects included (CORS needs this, or a preflight is a 405);
//! - [`Router::route_layer`](crate::route::Router::route_layer): around
//!   matched routes only (so authentication does not turn a 404 into a 401).
//!
//! Per-request values go in the request's extensions.
//!
//! A check that must wait (a password hash, checked off the shard's
//! thread) lets `on_request` pass and hands [`Middleware::wait`] the work
//! to wait for: the handler runs once it says `Ok`. Only then does a
//! request wait in a box; [`Auth`] is such a middleware.
//!
//! Writing one, in ten lines: a header on every response, and a 403 for
//! requests without a token.
//!
//! ```
//! use edgeshard::middleware::Middleware;
//! use edgeshard::{Request, Response, StatusCode};
//!
//! struct Guard;
//!
//! impl Middleware for Guard {
//!     type Carry = ();
//!     fn on_request(&self, req: &mut Request) -> Result<(), Response> {
//!         match req.header("x-token") {
//!             Some(_) => Ok(()),
//!             None => Err(Response::error(StatusCode::FORBIDDEN, "no token")),
//!         }
//!     }
//!     fn on_response(&self, _: (), resp: Response) -> Response {
//!         resp.with_header("X-Guarded", "yes")
//!     }
//! }
//! ```
//!
//! and `handler.layer(Guard)` (with [`HandlerExt`] in scope) uses it.

mod auth;
mod compress;
mod cors;
mod rate_limit;
mod request_id;
mod security;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

pub use auth::{
    Auth, AuthConfig, AuthError, AuthRule, AuthScheme, AuthSettings, AuthUser, JwtClaims,
    CACHE_TTL as AUTH_CACHE_TTL,
};
pub use compress::{Compress, CompressSettings, DEFAULT_MIN_SIZE as DEFAULT_COMPRESS_MIN};
pub use cors::{Cors, CorsError, CorsSettings, Origins};
pub use rate_limit::{
    parse_rate, Cidr, RateLimit, RateLimitSettings,
    DEFAULT_MAX_CLIENTS as DEFAULT_RATE_LIMIT_CLIENTS,
};
pub use request_id::{IdCarry, RequestId, RequestIds};
pub use security::{BadValue, SecurityHeaders, SecuritySettings};

use crate::handler::{Handler, Request};
use crate::response::Response;

/// Work a middleware waits for before the handler runs (see
/// [`Middleware::wait`]): `Err` answers instead.
pub type Wait = Pin<Box<dyn Future<Output = Result<(), Response>>>>;

/// Hooks around a handler. `on_request` runs first: `Err` answers at once
/// (the handler is not called, nor this middleware's `on_response`);
/// `Ok` carries what `on_response` will need to the handler's answer.
pub trait Middleware: 'static {
    /// What `on_request` hands to `on_response`: keep it small (an id, an
    /// origin, a start time); it lives as long as the request.
    type Carry;

    /// Before the handler: look at or change the request, or answer.
    fn on_request(&self, req: &mut Request) -> Result<Self::Carry, Response>;

    /// After `on_request` let the request through: work to wait for
    /// before the handler runs, if any (taken out of the carry, where
    /// `on_request` left it). Most middleware have none; the default says so.
    #[inline]
    fn wait(&self, carry: &mut Self::Carry) -> Option<Wait> {
        let _ = carry;
        None
    }

    /// After the handler: change its response.
    fn on_response(&self, carry: Self::Carry, resp: Response) -> Response {
        let _ = carry;
        resp
    }
}

/// Does nothing: the empty chain.
impl Middleware for () {
    type Carry = ();

    #[inline(always)]
    fn on_request(&self, _: &mut Request) -> Result<(), Response> {
        Ok(())
    }
}

/// `None` passes everything through, so a chain built from configuration
/// keeps one type whatever is switched on.
impl<M: Middleware> Middleware for Option<M> {
    type Carry = Option<M::Carry>;

    #[inline(always)]
    fn on_request(&self, req: &mut Request) -> Result<Self::Carry, Response> {
        match self {
            Some(m) => m.on_request(req).map(Some),
            None => Ok(None),
        }
    }

    #[inline(always)]
    fn wait(&self, carry: &mut Self::Carry) -> Option<Wait> {
        match (self, carry) {
            (Some(m), Some(c)) => m.wait(c),
            _ => None,
        }
    }

    #[inline(always)]
    fn on_response(&self, carry: Self::Carry, resp: Response) -> Response {
        match (self, carry) {
            (Some(m), Some(c)) => m.on_response(c, resp),
            _ => resp,
        }
    }
}

/// `A` around `B`: `A` sees the request first and the response last. When
/// `B` answers early, `A`'s `on_response` still sees that answer. Their
/// waits run one after the other, `A`'s first (both `on_request`s have run
/// by then).
impl<A: Middleware, B: Middleware> Middleware for (A, B) {
    type Carry = (A::Carry, B::Carry);

    #[inline(always)]
    fn on_request(&self, req: &mut Request) -> Result<Self::Carry, Response> {
        let a = self.0.on_request(req)?;
        match self.1.on_request(req) {
            Ok(b) => Ok((a, b)),
            Err(early) => Err(self.0.on_response(a, early)),
        }
    }

    #[inline(always)]
    fn wait(&self, (a, b): &mut Self::Carry) -> Option<Wait> {
        match (self.0.wait(a), self.1.wait(b)) {
            (None, None) => None,
            (Some(w), None) | (None, Some(w)) => Some(w),
            (Some(first), Some(then)) => Some(Box::pin(async move {
                first.await?;
                then.await
            })),
        }
    }

    #[inline(always)]
    fn on_response(&self, (a, b): Self::Carry, resp: Response) -> Response {
        self.0.on_response(a, self.1.on_response(b, resp))
    }
}

/// A handler with a middleware around it: see [`HandlerExt::layer`].
#[derive(Debug, Clone)]
pub struct Layered<M, H> {
    middleware: M,
    inner: H,
}

impl<M, H> Layered<M, H> {
    /// `inner` with `middleware` around it.
    pub fn new(middleware: M, inner: H) -> Layered<M, H> {
        Layered { middleware, inner }
    }

    /// The handler inside.
    pub fn inner(&self) -> &H {
        &self.inner
    }
}

impl<M: Middleware, H: Handler> Handler for Layered<M, H> {
    /// Not `async`: `on_request` runs here, and the future returned is the
    /// handler's own with the carry beside it.
    fn call(&self, req: Request) -> impl Future<Output = Response> {
        layered_call(&self.middleware, req, move |req| self.inner.call(req))
    }
}

/// Runs `m`'s `on_request`, then makes the handler's future with `call`
/// unless it answered; the future waits for what the middleware must wait
/// for (if anything) before it polls the handler's, and applies
/// `on_response` to the handler's response. `m` is anything that leads to
/// the middleware: a reference, or an `Rc` of a route scope.
///
/// A handler does its work when polled, so making its future before the
/// wait is over runs nothing of it (a router decides the route, no more);
/// if the wait answers, the future is dropped unpolled. Built this way,
/// the common path (nothing to wait for) is the same code as without the
/// hook: keeping the request aside for a possible wait cost every request
/// a copy of it.
// Always: the chain's hooks are small dispatchers, and each one left out
// of line passes the response by value (a copy) to the next.
#[inline(always)]
pub(crate) fn layered_call<P, M, F, C>(m: P, mut req: Request, call: C) -> LayeredFuture<P, M, F>
where
    P: std::ops::Deref<Target = M>,
    M: Middleware,
    C: FnOnce(Request) -> F,
    F: Future<Output = Response>,
{
    match m.on_request(&mut req) {
        Ok(mut carry) => {
            let wait = m.wait(&mut carry);
            LayeredFuture::Inner {
                wait,
                inner: call(req),
                middleware: m,
                carry: Some(carry),
            }
        }
        Err(answer) => LayeredFuture::Answered {
            answer: Some(answer),
        },
    }
}

pin_project! {
    /// The future of a [`Layered`] handler (and of a route scope): the
    /// inner handler's future and the carry (and what the middleware waits
    /// for before it), or the middleware's own answer.
    #[project = LayeredProj]
    // The macro takes no docs on variant fields.
    #[allow(missing_docs)]
    pub enum LayeredFuture<P, M: Middleware, F> {
        /// The handler runs (once `wait`, if any, has said `Ok`).
        Inner {
            wait: Option<Wait>,
            #[pin]
            inner: F,
            middleware: P,
            carry: Option<M::Carry>,
        },
        /// The middleware answered.
        Answered { answer: Option<Response> },
    }
}

impl<P, M, F> Future for LayeredFuture<P, M, F>
where
    P: std::ops::Deref<Target = M>,
    M: Middleware,
    F: Future<Output = Response>,
{
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        match self.project() {
            LayeredProj::Inner {
                wait,
                inner,
                middleware,
                carry,
            } => {
                if let Some(w) = wait {
                    match w.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(())) => *wait = None,
                        // Answered after all: the handler's future is
                        // dropped unpolled; the middleware sees the answer.
                        Poll::Ready(Err(answer)) => {
                            *wait = None;
                            return Poll::Ready(match carry.take() {
                                Some(c) => middleware.on_response(c, answer),
                                None => answer,
                            });
                        }
                    }
                }
                inner.poll(cx).map(|resp| match carry.take() {
                    Some(c) => middleware.on_response(c, resp),
                    None => resp,
                })
            }
            // Polled again after it finished: the answer is gone.
            LayeredProj::Answered { answer } => {
                Poll::Ready(answer.take().unwrap_or_else(polled_after_completion))
            }
        }
    }
}

#[cold]
fn polled_after_completion() -> Response {
    Response::error(
        crate::http::StatusCode::INTERNAL_SERVER_ERROR,
        "polled after completion",
    )
}

/// What a [`Router`](crate::route::Router) wraps its matched routes' futures
/// in: nothing ([`NoLayer`], the routes' own futures as they are) or a
/// middleware ([`RouteLayer`]).
pub trait RouteWrap: 'static {
    /// The wrapped future of a route's future `F`.
    type Future<'a, F: Future<Output = Response>>: Future<Output = Response>
    where
        Self: 'a;

    /// Runs the middleware's `on_request` (if any), then `call`.
    fn wrap<'a, F, C>(&'a self, req: Request, call: C) -> Self::Future<'a, F>
    where
        F: Future<Output = Response>,
        C: FnOnce(Request) -> F;
}

/// No middleware around matched routes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLayer;

impl RouteWrap for NoLayer {
    type Future<'a, F: Future<Output = Response>> = F;

    #[inline]
    fn wrap<F, C>(&self, req: Request, call: C) -> F
    where
        F: Future<Output = Response>,
        C: FnOnce(Request) -> F,
    {
        call(req)
    }
}

/// A middleware around matched routes only.
#[derive(Debug, Clone)]
pub struct RouteLayer<M>(pub M);

impl<M: Middleware> RouteWrap for RouteLayer<M> {
    type Future<'a, F: Future<Output = Response>> = LayeredFuture<&'a M, M, F>;

    #[inline]
    fn wrap<F, C>(&self, req: Request, call: C) -> LayeredFuture<&M, M, F>
    where
        F: Future<Output = Response>,
        C: FnOnce(Request) -> F,
    {
        layered_call(&self.0, req, call)
    }
}

/// `.layer(m)` on any handler.
pub trait HandlerExt: Handler + Sized {
    /// This handler with `m` around it (and around everything this
    /// handler answers itself, such as a router's 404s and 405s). Called
    /// again, the new middleware goes outside the earlier ones.
    fn layer<M: Middleware>(self, m: M) -> Layered<M, Self> {
        Layered::new(m, self)
    }
}

impl<H: Handler> HandlerExt for H {}
