//! The benchmark app that `perf/` and users point wrk at:
//! `GET /plaintext` → `Hello, World!` (text/plain) and `GET /json` →
//! `{"message":"Hello, World!"}`, serialized per request. Same command line
//! as the `edgeshard` binary.
//!
//! ```text
//! cargo run --release --example bench -- --listen 127.0.0.1:8080 --shards 1
//! ```

use std::process::ExitCode;

use clap::Parser;
use edgeshard::config::{Args, Config};
use edgeshard::route::{format_routes, HasRoutes};
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

fn app() -> impl Handler + HasRoutes {
    routes! {
        "GET /plaintext" => plaintext,
        "GET /json" => json,
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_routes {
        print!("{}", format_routes(app().routes()));
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    edgeshard::shutdown::run_until_signal(config, |_| app())
}
