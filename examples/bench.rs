//! The benchmark app that `perf/` and users point wrk at:
//! `GET /plaintext` → `Hello, World!` (text/plain) and `GET /json` →
//! `{"message":"Hello, World!"}`, serialized per request; other paths go to
//! the static files (`--root`, `--mount`, else the embedded site). Same
//! command line as the `edgeshard` binary.
//!
//! ```text
//! cargo run --release --example bench -- --listen 127.0.0.1:8080 --shards 1
//! ```

use std::process::ExitCode;

use edgeshard::proxy::ProxyMounts;
use edgeshard::route::{HasRoutes, NotFound};
use edgeshard::static_files::StaticFiles;
use edgeshard::{routes, Handler, Json, Request, Response, StatusCode};
use serde::Serialize;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn plaintext(_: Request) -> Response {
    Response::new(StatusCode::OK).with_body("text/plain", "Hello, World!")
}

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

async fn json(_: Request) -> Json<Message> {
    Json(Message {
        message: "Hello, World!",
    })
}

fn app(files: impl Handler) -> impl Handler + HasRoutes {
    routes! {
        "GET /plaintext" => plaintext,
        "GET /json" => json,
    }
    .fallback(files)
}

fn main() -> ExitCode {
    edgeshard::daemon::main(
        "bench",
        edgeshard::Config::default(),
        || app(NotFound).routes(),
        |ctx| {
            let files = StaticFiles::new(&ctx.static_files, ctx.metrics.clone());
            app(ProxyMounts::new(&ctx.proxy, &ctx.poller, files))
        },
    )
}
