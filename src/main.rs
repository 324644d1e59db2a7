//! The `edgeshard` binary: the built-in API and static files, run by the
//! daemon under the name `edgeshard`.

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Unlike the library (and the benchmark binary), `edgeshard` logs each
    // request to stdout unless told otherwise (`--access-log off|PATH`).
    let mut defaults = edgeshard::Config::default();
    defaults.access_log.target = edgeshard::config::AccessLogTarget::Stdout;
    edgeshard::daemon::main(
        "edgeshard",
        defaults,
        edgeshard::builtin::routes,
        edgeshard::builtin::app,
    )
}
