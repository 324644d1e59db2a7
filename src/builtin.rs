//! The main binary's built-in API, declared with `routes!`:
//!
//! - `GET /healthz` → `ok` until the process exits
//! - `GET /readyz` → `ready`, or 503 once a stop is announced (SIGTERM,
//!   for the `--shutdown-delay` before the drain, and during the drain)
//! - `GET /api/stats` → per-shard request counts and uptime, gathered from
//!   every shard by message
//!
//!   (all three `Cache-Control: no-store`: they describe the server now)
//! - `POST /api/echo` → the request body back, with its content type
//! - anything else → static files (`--root`, `--mount`, or the embedded site)

use std::rc::Rc;

use bytes::Bytes;
use serde::Serialize;

use crate::admin::{self, uncached};
use crate::handler::{Handler, Request};
use crate::http::StatusCode;
use crate::json::Json;
use crate::mesh::Mesh;
use crate::metrics::{Metrics, ShardStats};
use crate::middleware::{Auth, Compress, Cors, HandlerExt, RateLimit, RequestIds, SecurityHeaders};
use crate::proxy::ProxyMounts;
use crate::response::{IntoResponse, Response, OCTET_STREAM};
use crate::route::{format_routes, HasRoutes, NotFound, RouteInfo};
use crate::shard::ShardContext;
use crate::shutdown::ShutdownTrigger;
use crate::static_files::StaticFiles;

/// What the built-in handlers share on one shard.
#[derive(Debug)]
pub struct Builtin {
    metrics: Rc<Metrics>,
    /// `None` only outside a running server (`--print-routes`).
    mesh: Option<Rc<Mesh>>,
    /// Whether a stop was announced (`None` as `mesh`).
    shutdown: Option<ShutdownTrigger>,
    /// `/metrics` is served on an address of its own.
    metrics_elsewhere: bool,
}

/// The built-in API for one shard.
/// Paths no route matches go to the static files: `--root`/`--mount`
/// directories, or the embedded demo site when there are none.
///
/// Around it all, the middleware the configuration asks for, outermost
/// first: request ids, security headers, CORS (so a preflight is answered
/// before routing could turn it into a 405), the rate limit, compression
/// (it sees the app's own response), the auth rules (innermost).
pub fn app(ctx: &ShardContext) -> impl Handler + HasRoutes {
    let files = StaticFiles::new(&ctx.static_files, ctx.metrics.clone());
    // Proxy mounts before the static files (the configuration keeps
    // their prefixes apart, and apart from the routes).
    let files = ProxyMounts::new(&ctx.proxy, &ctx.poller, files);
    let routes = router(
        Rc::new(Builtin {
            metrics: ctx.metrics.clone(),
            mesh: Some(ctx.mesh.clone()),
            shutdown: Some(ctx.shutdown.clone()),
            metrics_elsewhere: ctx.config.metrics_listen.is_some(),
        }),
        files,
    );
    routes.layer(middleware(ctx))
}

/// The binary's chain: each part `None` when switched off.
type Chain = (
    Option<RequestIds>,
    (
        Option<SecurityHeaders>,
        (
            Option<Cors>,
            (Option<RateLimit>, (Option<Compress>, Option<Auth>)),
        ),
    ),
);

fn middleware(ctx: &ShardContext) -> Chain {
    let mw = &ctx.config.middleware;
    let request_ids = mw.request_id.then(|| RequestIds::new(ctx.id));
    let security = SecurityHeaders::new(&mw.security).ok();
    let cors = mw.cors.as_ref().and_then(|c| Cors::new(c).ok());
    // Inside CORS: a 429 carries the CORS headers a browser needs to read it.
    let rate_limit = mw.rate_limit.as_ref().map(RateLimit::new);
    let compress = mw.compress.clone().map(Compress::new);
    // Innermost: a refused login is rate limited, and a preflight (which
    // carries no credentials) is answered by CORS before it.
    let auth = ctx.auth.clone().map(Auth::new);
    (
        request_ids,
        (security, (cors, (rate_limit, (compress, auth)))),
    )
}

/// The built-in routes.
pub fn routes() -> &'static [RouteInfo<'static>] {
    let builtin = Builtin {
        metrics: Rc::new(Metrics::new(0, 0)),
        mesh: None,
        shutdown: None,
        metrics_elsewhere: false,
    };
    router(Rc::new(builtin), NotFound).routes()
}

/// The built-in route table, as `--print-routes` shows it.
pub fn route_table() -> String {
    format_routes(routes())
}

fn router(state: Rc<Builtin>, fallback: impl Handler) -> impl Handler + HasRoutes {
    crate::routes! {
        state = state;
        "GET /healthz" => healthz,
        "GET /readyz" => readyz,
        "GET /metrics" => metrics,
        "GET /api/stats" => api_stats,
        "POST /api/echo" => echo,
    }
    .fallback(fallback)
}

async fn healthz(_: Request) -> Response {
    uncached("ok")
}

/// `/readyz` (see [`admin::readyz`]).
async fn readyz(_: Request, b: Rc<Builtin>) -> Response {
    admin::readyz(b.shutdown.as_ref())
}

/// `/metrics` (see [`admin::metrics`]); a 404 here when the metrics have
/// an address of their own (`--metrics-listen`).
async fn metrics(_: Request, b: Rc<Builtin>) -> Response {
    if b.metrics_elsewhere {
        return StatusCode::NOT_FOUND.into_response();
    }
    admin::metrics(&b.metrics, b.mesh.as_deref()).await
}

/// The `/api/stats` body.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Every shard that answered, by shard number.
    pub shards: Vec<ShardStats>,
    /// Shards in the server (some may not have answered in time).
    pub shards_total: usize,
    /// Sum of the reported shards' requests.
    pub total_requests: u64,
    /// Seconds since the answering shard started.
    pub uptime_seconds: f64,
}

async fn api_stats(_: Request, b: Rc<Builtin>) -> Response {
    let shards = match &b.mesh {
        Some(mesh) => mesh.gather_stats().await,
        None => vec![b.metrics.stats(0)],
    };
    uncached(Json(Stats {
        shards_total: b.mesh.as_ref().map_or(1, |m| m.shards()),
        total_requests: shards.iter().map(|s| s.requests).sum(),
        uptime_seconds: b.metrics.started().elapsed().as_secs_f64(),
        shards,
    }))
}

async fn echo(req: Request) -> Response {
    let content_type = req.header("content-type").map_or(
        Bytes::from_static(OCTET_STREAM.as_bytes()),
        Bytes::copy_from_slice,
    );
    Response::new(StatusCode::OK)
        .with_body(OCTET_STREAM, req.body().clone())
        .with_header("Content-Type", content_type)
}
