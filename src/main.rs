//! The `edgeshard` binary: command line → config, start the shards with the
//! built-in API, wait for SIGTERM/SIGINT, drain, exit.

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    edgeshard::shutdown::main(
        "edgeshard",
        edgeshard::builtin::route_table,
        edgeshard::builtin::app,
    )
}
