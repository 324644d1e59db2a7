//! Routing: the compiled table that `routes!` emits, and the [`Router`]
//! handler that walks it. The semantics (Go 1.22 `ServeMux`: precedence,
//! conflicts, 405 with `Allow`, trailing-slash and clean-path redirects)
//! live in the `edgeshard-routing` crate, shared with the macro and with
//! [`RuntimeTrie`] for routes that come from configuration.

mod scope;

use std::future::Future;

use edgeshard_routing::percent::has_encoded_dot_segment;

#[doc(hidden)]
pub use scope::scoped;

#[doc(hidden)]
pub use crate::future::Either;
pub use crate::future::IntoResponseFuture;
use crate::handler::{with_whole_body, Handler, Request, RouteParams};
use crate::http::StatusCode;
use crate::middleware::{Layered, Middleware, NoLayer, RouteLayer, RouteWrap};
use crate::response::{IntoResponse, Response};

#[doc(hidden)]
pub use edgeshard_routing::table;
pub use edgeshard_routing::{
    decide, decide_knowing, Decision, Matcher, Params, Pattern, RouteInfo, RuntimeTrie, Table,
};

/// A handler the router can call: `async fn(Request)` or
/// `async fn(Request, S)`, where `S` is the router's state (cloned per
/// call; use `Rc<...>` for shared per-shard state). `M` only tells the two
/// shapes apart.
pub trait RouteHandler<S, M> {
    /// Calls the handler.
    fn call_route(&self, req: Request, state: S) -> impl Future<Output = Response>;
}

impl<F, Fut, R, S> RouteHandler<S, (Request,)> for F
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = R>,
    R: IntoResponse,
{
    #[inline(always)]
    fn call_route(&self, req: Request, _state: S) -> impl Future<Output = Response> {
        with_whole_body(req, |req| IntoResponseFuture::new(self(req)))
    }
}

impl<F, Fut, R, S> RouteHandler<S, (Request, S)> for F
where
    F: Fn(Request, S) -> Fut,
    Fut: Future<Output = R>,
    R: IntoResponse,
{
    #[inline(always)]
    fn call_route(&self, req: Request, state: S) -> impl Future<Output = Response> {
        with_whole_body(req, |req| IntoResponseFuture::new(self(req, state)))
    }
}

/// A [`streaming`](crate::handler::streaming) function as a route: its
/// body is not read for it.
impl<F, Fut, R, S> RouteHandler<S, crate::handler::Streaming<()>> for crate::handler::Streaming<F>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = R>,
    R: IntoResponse,
{
    fn call_route(&self, req: Request, _state: S) -> impl Future<Output = Response> {
        IntoResponseFuture::new((self.inner())(req))
    }
}

/// The router `routes!` builds: a static table, the state handed to
/// handlers, the generated `match` from route index to handler call, and
/// the handler for paths no route matches (404 unless set with
/// [`Router::fallback`]).
pub struct Router<S, D, F = NotFound, L = NoLayer> {
    table: &'static Table<'static>,
    state: S,
    dispatch: D,
    fallback: F,
    /// Middleware around matched routes only ([`Router::route_layer`]).
    routes_layer: L,
}

/// The default fallback: `404 Not Found`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl Handler for NotFound {
    async fn call(&self, _req: Request) -> Response {
        StatusCode::NOT_FOUND.into_response()
    }
}

impl<S, D, F, L> Router<S, D, F, L> {
    /// Sends requests that no route matches (Go's "404" case; a path that
    /// matches with another method still gets 405) to `fallback`, such as
    /// [`StaticFiles`](crate::static_files::StaticFiles). Routes win.
    pub fn fallback<G: Handler>(self, fallback: G) -> Router<S, D, G, L> {
        Router {
            table: self.table,
            state: self.state,
            dispatch: self.dispatch,
            fallback,
            routes_layer: self.routes_layer,
        }
    }
}

impl<S, D, F> Router<S, D, F, NoLayer> {
    /// Puts `m` around the matched routes only: not around the router's
    /// own 404s, 405s and redirects, nor the fallback, so (say) an
    /// authentication check does not turn a 404 into a 401. For a
    /// middleware around everything, use
    /// [`HandlerExt::layer`](crate::middleware::HandlerExt::layer).
    pub fn route_layer<M: Middleware>(self, m: M) -> Router<S, D, F, RouteLayer<M>> {
        Router {
            table: self.table,
            state: self.state,
            dispatch: self.dispatch,
            fallback: self.fallback,
            routes_layer: RouteLayer(m),
        }
    }
}

impl<S, D, F, M: Middleware> Router<S, D, F, RouteLayer<M>> {
    /// Another middleware around the matched routes, outside those
    /// already there.
    pub fn route_layer<N: Middleware>(self, n: N) -> Router<S, D, F, RouteLayer<(N, M)>> {
        Router {
            table: self.table,
            state: self.state,
            dispatch: self.dispatch,
            fallback: self.fallback,
            routes_layer: RouteLayer((n, self.routes_layer.0)),
        }
    }
}

impl<S, D> Router<S, D> {
    /// Used by `routes!`. The bound is here as well as on the `Handler`
    /// impl so the generated closure's argument types are inferred.
    pub fn new<Fut>(table: &'static Table<'static>, state: S, dispatch: D) -> Self
    where
        D: Fn(u32, Request, S) -> Fut,
        Fut: Future<Output = Response>,
    {
        Router {
            table,
            state,
            dispatch,
            fallback: NotFound,
            routes_layer: NoLayer,
        }
    }
}

/// A handler that can show its routing table (for `--print-routes`, benches).
pub trait HasRoutes {
    /// The compiled table.
    fn table(&self) -> &'static Table<'static>;

    /// The routes, in declaration order.
    fn routes(&self) -> &'static [RouteInfo<'static>] {
        &self.table().routes
    }
}

impl<S, D, F, L> HasRoutes for Router<S, D, F, L> {
    fn table(&self) -> &'static Table<'static> {
        self.table
    }
}

/// A router with middleware around it still shows its table.
impl<M, H: HasRoutes> HasRoutes for Layered<M, H> {
    fn table(&self) -> &'static Table<'static> {
        self.inner().table()
    }
}

/// The compiled table behind a router.
pub fn table_of(router: &impl HasRoutes) -> &'static Table<'static> {
    router.table()
}

impl<S, D, F, L, Fut> Handler for Router<S, D, F, L>
where
    S: Clone + 'static,
    D: Fn(u32, Request, S) -> Fut + 'static,
    Fut: Future<Output = Response>,
    F: Handler,
    L: RouteWrap,
{
    /// Not `async`: the decision is made here, and the future returned is
    /// the route's or the fallback's own, so no layer holds another copy
    /// of the request.
    fn call(&self, mut req: Request) -> impl Future<Output = Response> {
        let mut params = Params::new();
        let decision = {
            let head = req.head();
            decide_knowing(
                self.table,
                head.host(),
                head.method_str(),
                head.path(),
                head.query(),
                &mut params,
                // The parser has seen whether the path is clean already.
                head.path_is_plain(),
            )
        };
        let answer = match decision {
            Decision::Route(r) => {
                let route = &self.table.routes[r as usize];
                req.conn_key().note_route(route.pattern.as_ref());
                req.set_params(RouteParams::new(route, params));
                return Either::Left {
                    inner: self
                        .routes_layer
                        .wrap(req, |req| (self.dispatch)(r, req, self.state.clone())),
                };
            }
            Decision::NotFound => {
                return Either::Right {
                    inner: Either::Left {
                        inner: self.fallback.call(req),
                    },
                }
            }
            // A decoded `.`/`..` segment makes the path unclean, so it always
            // lands here; checking only here keeps the check off the hot path.
            Decision::Redirect(_) if has_encoded_dot_segment(req.path()) => encoded_dot_segment(),
            Decision::Redirect(location) => Response::redirect(req.method(), location),
            Decision::MethodNotAllowed(allow) => Response::method_not_allowed(allow),
        };
        Either::Right {
            inner: Either::Right {
                inner: std::future::ready(answer),
            },
        }
    }
}

/// A `.` or `..` segment spelled with `%2e`: refused rather than cleaned
/// (see [`has_encoded_dot_segment`]).
#[cold]
fn encoded_dot_segment() -> Response {
    Response::error(StatusCode::BAD_REQUEST, "encoded dot segment in the path")
}

/// The fallback arm of the generated dispatch; unreachable for tables the
/// macro built.
#[doc(hidden)]
#[cold]
pub fn unknown_route() -> Response {
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// Prints a route table: methods, pattern, handler; one route per line.
pub fn format_routes(routes: &[RouteInfo<'_>]) -> String {
    let methods = |r: &RouteInfo<'_>| match r.method.as_deref() {
        None => "*".to_string(),
        Some("GET") => "GET, HEAD".to_string(),
        Some(m) => m.to_string(),
    };
    let w_method = routes
        .iter()
        .map(|r| methods(r).len())
        .max()
        .unwrap_or(0)
        .max(7);
    let w_pattern = routes
        .iter()
        .map(|r| r.pattern.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let mut out = format!(
        "{:<w_method$}  {:<w_pattern$}  HANDLER\n",
        "METHODS", "PATTERN"
    );
    for r in routes {
        out.push_str(&format!(
            "{:<w_method$}  {:<w_pattern$}  {}\n",
            methods(r),
            r.pattern,
            r.handler
        ));
    }
    out
}
