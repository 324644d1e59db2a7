//! The gateway from the seed documents, in edgeshard: the pattern Go
//! developers build with `httputil.ReverseProxy` behind `StripPrefix`.
//!
//! - `/app1/…` and `/app2/…`: a bearer token required, then proxied to
//!   each app's own upstream with the prefix stripped
//! - `GET /api/health`: a JSON health answer from the gateway itself
//! - anything else: the static site (`--root DIR`, or the embedded demo)
//!
//! ```text
//! APP1=http://127.0.0.1:9001 APP2=http://127.0.0.1:9002 TOKENS=tokens.txt \
//!   cargo run --release --example gateway -- --listen 127.0.0.1:8080 --root ./site
//! curl -H "Authorization: Bearer $(head -1 tokens.txt)" http://127.0.0.1:8080/app1/users
//! ```
//!
//! `TOKENS` is a file with one token per line (as `--auth PREFIX=bearer:FILE`
//! reads it). Every flag of the `edgeshard` binary works here too
//! (`--access-log`, `--rate-limit`, `--proxy-balance`, …, though the
//! `--proxy-*` settings apply to `--proxy` mounts only). The same gateway
//! with the binary alone, the proxies as mounts in front of the static files:
//!
//! ```text
//! edgeshard --proxy /app1/=http://127.0.0.1:9001 --proxy /app2/=http://127.0.0.1:9002 \
//!   --auth /app1/=bearer:tokens.txt --auth /app2/=bearer:tokens.txt --root ./site
//! ```

use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;

use edgeshard::middleware::{Auth, AuthRule, HandlerExt};
use edgeshard::proxy::{MountSettings, PreparedMount, Proxy, UpstreamUrl};
use edgeshard::route::{HasRoutes, NotFound, RouteInfo};
use edgeshard::static_files::StaticFiles;
use edgeshard::{routes, Handler, Json, Request, Response};
use serde::Serialize;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The two apps' mounts, their upstreams resolved once for every shard.
struct Apps {
    app1: PreparedMount,
    app2: PreparedMount,
}

fn upstream(var: &str, default: &str) -> Result<UpstreamUrl, String> {
    let url = std::env::var(var).unwrap_or_else(|_| default.to_string());
    UpstreamUrl::parse(&url).map_err(|e| format!("{var}: {e}"))
}

fn apps() -> Result<Apps, String> {
    let mount = |prefix: &str, var: &str, default: &str| {
        let settings = MountSettings::new(prefix, vec![upstream(var, default)?]);
        PreparedMount::new(settings, &[])
    };
    Ok(Apps {
        app1: mount("/app1/", "APP1", "http://127.0.0.1:9001")?,
        app2: mount("/app2/", "APP2", "http://127.0.0.1:9002")?,
    })
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    shard: usize,
}

async fn health(_: Request, shard: Rc<usize>) -> Response {
    Json(Health {
        status: "ok",
        shard: *shard,
    })
    .into_response_no_store()
}

trait NoStore {
    fn into_response_no_store(self) -> Response;
}

impl<T: Serialize> NoStore for Json<T> {
    fn into_response_no_store(self) -> Response {
        edgeshard::IntoResponse::into_response(self).with_header("Cache-Control", "no-store")
    }
}

/// The routes: the proxies are handlers like any other.
fn router(
    shard: usize,
    app1: Proxy,
    app2: Proxy,
    fallback: impl Handler,
) -> impl Handler + HasRoutes {
    routes! {
        state = Rc::new(shard);
        "GET /api/health" => health,
        "/app1/" => app1,
        "/app2/" => app2,
    }
    .fallback(fallback)
}

fn main() -> ExitCode {
    let apps = match apps() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let mut defaults = edgeshard::Config::default();
    defaults.access_log.target = edgeshard::config::AccessLogTarget::Stdout;
    if let Ok(tokens) = std::env::var("TOKENS") {
        for prefix in ["/app1/", "/app2/"] {
            match AuthRule::parse(&format!("{prefix}=bearer:{tokens}")) {
                Ok(rule) => defaults.middleware.auth.rules.push(rule),
                Err(e) => {
                    eprintln!("gateway: TOKENS: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    } else {
        eprintln!("gateway: TOKENS is not set: /app1/ and /app2/ are open to anyone");
    }
    edgeshard::daemon::main("gateway", defaults, routes_for_print, move |ctx| {
        let app1 = Proxy::new(&apps.app1, ctx.poller.clone());
        let app2 = Proxy::new(&apps.app2, ctx.poller.clone());
        let files = StaticFiles::new(&ctx.static_files, ctx.metrics.clone());
        // Authentication in front of everything; its rules name the prefixes.
        router(ctx.id, app1, app2, files).layer(ctx.auth.clone().map(Auth::new))
    })
}

/// The route table, for `--print-routes` (and the daemon's check that
/// no `--proxy` mount overlaps a route). The table is the same for every
/// router `router` makes; these proxies are never called.
fn routes_for_print() -> &'static [RouteInfo<'static>] {
    let (Ok(apps), Ok(poller)) = (apps(), edgeshard::poller::Poller::new()) else {
        eprintln!("gateway: cannot build the routes");
        std::process::exit(2);
    };
    let app1 = Proxy::new(&apps.app1, poller.clone());
    let app2 = Proxy::new(&apps.app2, poller);
    router(0, app1, app2, NotFound).routes()
}
