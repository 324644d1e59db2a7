//! The `edgeshard` binary: command line → config, start the shards, wait
//! for SIGTERM/SIGINT, drain, exit.

use std::process::ExitCode;

use clap::Parser;
use edgeshard::config::{Args, Config};
use edgeshard::{Method, Request, Response, StatusCode};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The built-in API until the router lands: `GET /healthz` → `ok`, else 404.
async fn builtin(req: Request) -> Response {
    match (req.method(), req.path()) {
        (Method::Get | Method::Head, "/healthz") => Response::text("ok"),
        _ => edgeshard::IntoResponse::into_response(StatusCode::NOT_FOUND),
    }
}

fn main() -> ExitCode {
    let config = match Config::from_args(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edgeshard: {e}");
            return ExitCode::from(2);
        }
    };
    // Registered before the shards start so no signal finds the default action.
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("edgeshard: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match edgeshard::start(config, |_shard| builtin) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("edgeshard: {e}");
            return ExitCode::FAILURE;
        }
    };
    for shard in server.shards() {
        for addr in server.local_addrs() {
            println!(
                "edgeshard: shard {} on core {} listening on {addr}",
                shard.id, shard.core
            );
        }
    }
    let trigger = server.shutdown_trigger();
    std::thread::spawn(move || {
        let mut pending = signals.forever();
        if pending.next().is_some() {
            trigger.fire();
        }
        // A second signal while draining: stop now.
        if pending.next().is_some() {
            std::process::exit(1);
        }
    });
    match server.join() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgeshard: {e}");
            ExitCode::FAILURE
        }
    }
}
