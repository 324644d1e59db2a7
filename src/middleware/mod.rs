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
//! A check that may have to wait (a password hash checked off the shard's
//! thread) is a [`Guard`] instead: it lets a request through, denies it,
//! or returns a future to wait for, and `handler.guard(g)` puts it in
//! front of a handler. [`Auth`] is one.
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

/// Hooks around a handler. `on_request` runs first: `Err` answers at once
/// (the handler is not called, nor this middleware's `on_response`);
/// `Ok` carries what `on_response` will need to the handler's answer.
pub trait Middleware: 'static {
    /// What `on_request` hands to `on_response`: keep it small (an id, an
    /// origin, a start time); it lives as long as the request.
    type Carry;

    /// Before the handler: look at or change the request, or answer.
    fn on_request(&self, req: &mut Request) -> Result<Self::Carry, Response>;

    /// After the handler: change its response.
    fn on_response(&self, carry: Self::Carry, resp: Response) -> Response {
        let _ = carry;
        resp
    }
}

/// Does nothing: the empty chain.
impl Middleware for () {
    type Carry = ();

    #[inline]
    fn on_request(&self, _: &mut Request) -> Result<(), Response> {
        Ok(())
    }
}

/// `None` passes everything through, so a chain built from configuration
/// keeps one type whatever is switched on.
impl<M: Middleware> Middleware for Option<M> {
    type Carry = Option<M::Carry>;

    #[inline]
    fn on_request(&self, req: &mut Request) -> Result<Self::Carry, Response> {
        match self {
            Some(m) => m.on_request(req).map(Some),
            None => Ok(None),
        }
    }

    #[inline]
    fn on_response(&self, carry: Self::Carry, resp: Response) -> Response {
        match (self, carry) {
            (Some(m), Some(c)) => m.on_response(c, resp),
            _ => resp,
        }
    }
}

/// `A` around `B`: `A` sees the request first and the response last. When
/// `B` answers early, `A`'s `on_response` still sees that answer.
impl<A: Middleware, B: Middleware> Middleware for (A, B) {
    type Carry = (A::Carry, B::Carry);

    #[inline]
    fn on_request(&self, req: &mut Request) -> Result<Self::Carry, Response> {
        let a = self.0.on_request(req)?;
        match self.1.on_request(req) {
            Ok(b) => Ok((a, b)),
            Err(early) => Err(self.0.on_response(a, early)),
        }
    }

    #[inline]
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

/// Runs `m`'s `on_request`, then `call` (the handler) unless it answered;
/// the future applies `on_response` to the handler's response.
#[inline]
pub(crate) fn layered_call<'a, M, F, Fut>(
    m: &'a M,
    mut req: Request,
    call: F,
) -> LayeredFuture<'a, M, Fut>
where
    M: Middleware,
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    match m.on_request(&mut req) {
        Ok(carry) => LayeredFuture::Inner {
            inner: call(req),
            middleware: m,
            carry: Some(carry),
        },
        Err(answer) => LayeredFuture::Answered {
            answer: Some(answer),
        },
    }
}

pin_project! {
    /// The future of a [`Layered`] handler: the inner handler's future and
    /// the carry, or the middleware's own answer.
    #[project = LayeredProj]
    // The macro takes no docs on variant fields.
    #[allow(missing_docs)]
    pub enum LayeredFuture<'a, M: Middleware, F> {
        /// The handler runs.
        Inner {
            #[pin]
            inner: F,
            middleware: &'a M,
            carry: Option<M::Carry>,
        },
        /// The middleware answered.
        Answered { answer: Option<Response> },
    }
}

impl<M: Middleware, F: Future<Output = Response>> Future for LayeredFuture<'_, M, F> {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        match self.project() {
            LayeredProj::Inner {
                inner,
                middleware,
                carry,
            } => inner.poll(cx).map(|resp| match carry.take() {
                Some(c) => middleware.on_response(c, resp),
                None => resp,
            }),
            // Polled again after it finished: the answer is gone.
            LayeredProj::Answered { answer } => {
                Poll::Ready(answer.take().unwrap_or_else(polled_after_completion))
            }
        }
    }
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
    type Future<'a, F: Future<Output = Response>> = LayeredFuture<'a, M, F>;

    #[inline]
    fn wrap<'a, F, C>(&'a self, req: Request, call: C) -> LayeredFuture<'a, M, F>
    where
        F: Future<Output = Response>,
        C: FnOnce(Request) -> F,
    {
        layered_call(&self.0, req, call)
    }
}

/// What a [`Guard`] decides about a request.
pub enum Check {
    /// Let it through to the handler.
    Pass,
    /// Answer this instead (a 401, a 403).
    Deny(Response),
    /// Wait for this to decide (work done off the shard's thread, such as
    /// a password hash); the handler runs only if it says `Ok`.
    Wait(Pin<Box<dyn Future<Output = Result<(), Response>>>>),
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Check::Pass => "Pass",
            Check::Deny(_) => "Deny",
            Check::Wait(_) => "Wait",
        })
    }
}

/// A check before a handler that may have to wait: authentication. Unlike
/// a [`Middleware`] it cannot change the response, and it may return a
/// future to wait for (only then does the request wait in a box).
pub trait Guard: 'static {
    /// Looks at the request (and may add to its extensions) and decides.
    fn check(&self, req: &mut Request) -> Check;
}

/// `None` lets everything through.
impl<G: Guard> Guard for Option<G> {
    #[inline]
    fn check(&self, req: &mut Request) -> Check {
        match self {
            Some(g) => g.check(req),
            None => Check::Pass,
        }
    }
}

/// A handler behind a [`Guard`]: see [`HandlerExt::guard`].
#[derive(Debug, Clone)]
pub struct Guarded<G, H> {
    guard: G,
    inner: H,
}

impl<G, H> Guarded<G, H> {
    /// The handler inside.
    pub fn inner(&self) -> &H {
        &self.inner
    }
}

impl<G: Guard, H: Handler> Handler for Guarded<G, H> {
    fn call(&self, mut req: Request) -> impl Future<Output = Response> {
        let call = move |req| self.inner.call(req);
        match self.guard.check(&mut req) {
            Check::Pass => GuardedFuture::Running { inner: call(req) },
            Check::Deny(answer) => GuardedFuture::Answered {
                answer: Some(answer),
            },
            Check::Wait(wait) => GuardedFuture::Waiting {
                wait,
                next: Some((req, call)),
            },
        }
    }
}

pin_project! {
    /// The future of a [`Guarded`] handler.
    #[project = GuardedProj]
    #[allow(missing_docs)]
    pub enum GuardedFuture<C, F> {
        /// The guard's check is running; then the handler.
        Waiting {
            wait: Pin<Box<dyn Future<Output = Result<(), Response>>>>,
            next: Option<(Request, C)>,
        },
        /// The handler runs.
        Running {
            #[pin]
            inner: F,
        },
        /// The guard answered.
        Answered { answer: Option<Response> },
    }
}

impl<C, F> Future for GuardedFuture<C, F>
where
    C: FnOnce(Request) -> F,
    F: Future<Output = Response>,
{
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        loop {
            match self.as_mut().project() {
                GuardedProj::Waiting { wait, next } => match wait.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(answer)) => return Poll::Ready(answer),
                    Poll::Ready(Ok(())) => match next.take() {
                        Some((req, call)) => self.set(GuardedFuture::Running { inner: call(req) }),
                        None => return Poll::Ready(polled_after_completion()),
                    },
                },
                GuardedProj::Running { inner } => return inner.poll(cx),
                GuardedProj::Answered { answer } => {
                    return Poll::Ready(answer.take().unwrap_or_else(polled_after_completion))
                }
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

/// `.layer(m)` and `.guard(g)` on any handler.
pub trait HandlerExt: Handler + Sized {
    /// This handler with `m` around it (and around everything this
    /// handler answers itself, such as a router's 404s and 405s). Called
    /// again, the new middleware goes outside the earlier ones.
    fn layer<M: Middleware>(self, m: M) -> Layered<M, Self> {
        Layered::new(m, self)
    }

    /// This handler behind `g`, which may deny a request or make it wait
    /// (see [`Guard`]). Around a router, it sees every request, the
    /// router's 404s included; an [`Auth`] only guards the prefixes it has
    /// rules for.
    fn guard<G: Guard>(self, g: G) -> Guarded<G, Self> {
        Guarded {
            guard: g,
            inner: self,
        }
    }
}

impl<H: Handler> HandlerExt for H {}
