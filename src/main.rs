//! The `edgeshard` binary: the built-in API and static files, run by the
//! daemon under the name `edgeshard`.

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    edgeshard::daemon::main(
        "edgeshard",
        edgeshard::builtin::route_table,
        edgeshard::builtin::app,
    )
}
