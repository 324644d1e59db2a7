//! Middleware for some routes only, inside `routes!`: a route's own
//! (`"GET /me" => me [guard(auth)]`) or a group's (`[layer(audit)] { … }`).
//! The table stays one table: groups are flattened into it, so conflicts
//! and precedence are checked across every route as before.
//!
//! Each `layer(…)` or `guard(…)` in the macro is built once, with the
//! router, and shared (an `Rc`) by the routes it covers; a request through
//! a scoped route clones that `Rc` (no atomics) into its future.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::handler::Request;
use crate::middleware::{Check, Guard, GuardedFuture, Middleware};
use crate::response::Response;

/// Something `routes!` can put around some routes.
pub trait Scope: 'static {
    /// The future of a route inside this scope.
    type Future<F, C>: Future<Output = Response>
    where
        F: Future<Output = Response>,
        C: FnOnce(Request) -> F;

    /// Runs the scope's check on `req`, then (if it lets the request
    /// through) `call`.
    fn wrap<F, C>(self: Rc<Self>, req: Request, call: C) -> Self::Future<F, C>
    where
        F: Future<Output = Response>,
        C: FnOnce(Request) -> F;
}

/// A [`Middleware`] around some routes: `layer(m)` in `routes!`.
#[derive(Debug)]
pub struct LayerScope<M>(pub M);

/// A [`Guard`] in front of some routes: `guard(g)` in `routes!`.
#[derive(Debug)]
pub struct GuardScope<G>(pub G);

impl<M: Middleware> Scope for LayerScope<M> {
    type Future<F, C>
        = ScopedFuture<M, F>
    where
        F: Future<Output = Response>,
        C: FnOnce(Request) -> F;

    fn wrap<F, C>(self: Rc<Self>, mut req: Request, call: C) -> ScopedFuture<M, F>
    where
        F: Future<Output = Response>,
        C: FnOnce(Request) -> F,
    {
        match self.0.on_request(&mut req) {
            Ok(carry) => ScopedFuture::Inner {
                inner: call(req),
                scope: self,
                carry: Some(carry),
            },
            Err(answer) => ScopedFuture::Answered {
                answer: Some(answer),
            },
        }
    }
}

impl<G: Guard> Scope for GuardScope<G> {
    type Future<F, C>
        = GuardedFuture<C, F>
    where
        F: Future<Output = Response>,
        C: FnOnce(Request) -> F;

    fn wrap<F, C>(self: Rc<Self>, mut req: Request, call: C) -> GuardedFuture<C, F>
    where
        F: Future<Output = Response>,
        C: FnOnce(Request) -> F,
    {
        match self.0.check(&mut req) {
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
    /// A route's future inside a [`LayerScope`]: the route's own future
    /// with the middleware's carry, or the middleware's answer.
    #[project = ScopedProj]
    #[allow(missing_docs)]
    pub enum ScopedFuture<M: Middleware, F> {
        /// The route runs.
        Inner {
            #[pin]
            inner: F,
            scope: Rc<LayerScope<M>>,
            carry: Option<M::Carry>,
        },
        /// The middleware answered.
        Answered { answer: Option<Response> },
    }
}

impl<M: Middleware, F: Future<Output = Response>> Future for ScopedFuture<M, F> {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        match self.project() {
            ScopedProj::Inner {
                inner,
                scope,
                carry,
            } => inner.poll(cx).map(|resp| match carry.take() {
                Some(c) => scope.0.on_response(c, resp),
                None => resp,
            }),
            ScopedProj::Answered { answer } => Poll::Ready(answer.take().unwrap_or_else(|| {
                Response::error(
                    crate::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "polled after completion",
                )
            })),
        }
    }
}
