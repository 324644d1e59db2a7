//! The process: command line → configuration → shards → signals. The
//! `edgeshard` binary and `examples/bench.rs` are each one call to
//! [`main`] with their own name and app; everything they print starts with
//! that name.

use std::process::ExitCode;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::config::{Config, Flags, Prepared};
use crate::handler::Handler;
use crate::log;
use crate::route::{format_routes, RouteInfo};
use crate::shard::{start_prepared, ShardContext};
use crate::static_files::Resolver;
use crate::sys;

/// A whole `main`: parses the command line ([`Flags`]) and lays it over
/// `defaults` (the binary's own: `edgeshard` logs access to stdout, the
/// benchmark does not), prints `routes()` for `--print-routes`,
/// validates the flags (a proxy mount must not overlap a route) and opens
/// the mounts, the access log and resolves the upstreams (exit 2 naming
/// the flag if one is wrong), turns transparent huge pages off
/// (`PR_SET_THP_DISABLE`) and runs until a signal ([`run_until_signal`]).
/// Messages start with `name`.
pub fn main<F, H>(
    name: &'static str,
    defaults: Config,
    routes: impl FnOnce() -> &'static [RouteInfo<'static>],
    make_handler: F,
) -> ExitCode
where
    F: Fn(&ShardContext) -> H + Send + Sync + 'static,
    H: Handler,
{
    log::set_name(name);
    let flags = Flags::from_env();
    let routes = routes();
    if flags.print_routes {
        print!("{}", format_routes(routes));
        return ExitCode::SUCCESS;
    }
    let prepared = Config::from_flags_over(defaults, flags)
        .and_then(|c| c.check_routes(routes).map(|()| c))
        .and_then(|c| c.prepare().map(|p| (c, p)));
    let (config, prepared) = match prepared {
        Ok(both) => both,
        Err(e) => {
            log::warning!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = sys::disable_huge_pages() {
        log::warning!("could not turn transparent huge pages off: {e}");
    }
    let files = &prepared.static_files;
    for m in &files.mounts {
        println!("{name}: serving {} at {}", m.real_dir.display(), m.prefix);
    }
    for m in &prepared.proxy.mounts {
        let s = m.settings();
        let ups: Vec<String> = s.upstreams.iter().map(|u| u.to_string()).collect();
        println!("{name}: proxying {} to {}", s.prefix, ups.join(", "));
    }
    if !files.mounts.is_empty() && files.resolver == Resolver::PathWalk {
        println!(
            "{name}: openat2 is not available (Linux < 5.6?): static files are resolved \
             with a checked path walk instead of the kernel's RESOLVE_BENEATH"
        );
    }
    run_until_signal(config, prepared, make_handler)
}

/// Runs a server until SIGTERM or SIGINT, then drains it; a second signal
/// exits at once. SIGHUP reopens the access log file (after logrotate
/// moved it). Prints one line per shard and address at start. Returns the
/// process exit code.
pub fn run_until_signal<F, H>(config: Config, prepared: Prepared, make_handler: F) -> ExitCode
where
    F: Fn(&ShardContext) -> H + Send + Sync + 'static,
    H: Handler,
{
    // Registered before the shards start so no signal finds the default action.
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            log::warning!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match start_prepared(config, prepared, make_handler) {
        Ok(s) => s,
        Err(e) => {
            log::warning!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for shard in server.shards() {
        for addr in server.local_addrs() {
            println!(
                "{}: shard {} on core {} listening on {addr}",
                log::name(),
                shard.id,
                shard.core
            );
        }
    }
    let trigger = server.shutdown_trigger();
    let reopen = server.log_reopener();
    std::thread::spawn(move || {
        let mut stopping = false;
        for signal in signals.forever() {
            match signal {
                SIGHUP => match &reopen {
                    Some(r) => r.request(),
                    None => log::warning!("SIGHUP: there is no access log file to reopen"),
                },
                // A second signal while draining: stop now.
                _ if stopping => std::process::exit(1),
                _ => {
                    stopping = true;
                    trigger.fire();
                }
            }
        }
    });
    match server.join() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::warning!("{e}");
            ExitCode::FAILURE
        }
    }
}
