//! A test build of the `edgeshard` binary: the built-in app plus
//! `GET /stall/{ms}`, which blocks its shard's thread for that many
//! milliseconds — what a shard stuck in a handler looks like to the
//! systemd watchdog (`tests/service.rs`). Never serve this.
//!
//! ```text
//! cargo run --example stall -- --listen 127.0.0.1:8080
//! ```

use std::process::ExitCode;
use std::time::Duration;

use edgeshard::route::{HasRoutes, RouteInfo};
use edgeshard::{routes, Handler, Request, Response, StatusCode};

async fn stall(req: Request) -> Response {
    let ms: u64 = req.param("ms").and_then(|m| m.parse().ok()).unwrap_or(0);
    // Deliberately blocking: the shard runs nothing else meanwhile.
    std::thread::sleep(Duration::from_millis(ms.min(60_000)));
    Response::new(StatusCode::OK).with_body("text/plain", "stalled\n")
}

fn app(rest: impl Handler) -> impl Handler + HasRoutes {
    routes! {
        "GET /stall/{ms}" => stall,
    }
    .fallback(rest)
}

fn table() -> &'static [RouteInfo<'static>] {
    app(edgeshard::route::NotFound).routes()
}

fn main() -> ExitCode {
    let mut defaults = edgeshard::Config::default();
    defaults.access_log.target = edgeshard::config::AccessLogTarget::Off;
    edgeshard::daemon::main("stall", defaults, table, |ctx| {
        app(edgeshard::builtin::app(ctx))
    })
}
