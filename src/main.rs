//! The `edgeshard` binary: command line → config, start the shards with the
//! built-in API, wait for SIGTERM/SIGINT, drain, exit.

use std::process::ExitCode;

use clap::Parser;
use edgeshard::config::{Args, Config};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_routes {
        print!("{}", edgeshard::builtin::route_table());
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edgeshard: {e}");
            return ExitCode::from(2);
        }
    };
    edgeshard::shutdown::run_until_signal(config, edgeshard::builtin::app)
}
