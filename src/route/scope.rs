//! Middleware for some routes only, inside `routes!`: a route's own
//! (`"GET /me" => me [layer(auth)]`) or a group's (`[layer(audit)] { … }`).
//! The table stays one table: groups are flattened into it, so conflicts
//! and precedence are checked across every route as before.
//!
//! Each `layer(…)` in the macro is built once, with the router, and shared
//! (an `Rc`) by the routes it covers; a request through a scoped route
//! clones that `Rc` (no atomics) into its future.

use std::future::Future;
use std::rc::Rc;

use crate::handler::Request;
use crate::middleware::{layered_call, LayeredFuture, Middleware};
use crate::response::Response;

/// Runs `m` around `call` for one request of a scoped route (what
/// `routes!` expands a scope to).
#[doc(hidden)]
#[inline]
pub fn scoped<M, F, C>(m: Rc<M>, req: Request, call: C) -> LayeredFuture<Rc<M>, M, F>
where
    M: Middleware,
    F: Future<Output = Response>,
    C: FnOnce(Request) -> F,
{
    layered_call(m, req, call)
}
