//! The process: command line → configuration → shards → signals. The
//! `edgeshard` binary and `examples/bench.rs` are each one call to
//! [`main`] with their own name and app; everything they print starts with
//! that name.

use std::path::Path;
use std::process::ExitCode;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::config::{Command, Config, ConfigError, ConfigFile, Flags, Prepared};
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
    let mut flags = Flags::from_env();
    let routes = routes();
    if flags.print_routes {
        print!("{}", format_routes(routes));
        return ExitCode::SUCCESS;
    }
    if let Some(Command::CheckConfig { file }) = flags.command.take() {
        return check_config(defaults, routes, &file);
    }
    let file = match flags.config.as_deref().map(ConfigFile::read).transpose() {
        Ok(f) => f,
        Err(e) => {
            log::warning!("{e}");
            return ExitCode::from(2);
        }
    };
    // An error in a setting the flags did not give came from the file.
    let blame = |e: ConfigError, gave: &dyn Fn(&str) -> bool| match &file {
        Some(f) if !gave(&e.flag) => f.relocate(e),
        _ => e,
    };
    let given = {
        let settings = ["--access-log", "--auth", "--trusted-proxy"];
        let gave: Vec<&str> = settings.into_iter().filter(|s| flags.gave(s)).collect();
        move |s: &str| s.starts_with("--") && (!settings.contains(&s) || gave.contains(&s))
    };
    let prepared = Config::load(defaults, file.as_ref(), flags)
        .and_then(|c| c.check_routes(routes).map(|()| c))
        .and_then(|c| c.prepare().map(|p| (c, p)))
        .map_err(|e| blame(e, &given));
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

/// `check-config FILE`: the file over `defaults`, validated and its
/// files checked without binding or starting anything; prints the
/// configuration in effect. Exit 0, or 2 with what is wrong.
fn check_config(defaults: Config, routes: &[RouteInfo<'static>], path: &Path) -> ExitCode {
    let checked = ConfigFile::read(path).and_then(|file| {
        let mut config = defaults;
        file.apply(&mut config)?;
        config
            .validate()
            .and_then(|()| config.check_routes(routes))
            .and_then(|()| config.check_files())
            .map_err(|e| file.relocate(e))?;
        Ok(config)
    });
    match checked {
        Ok(config) => {
            print!("{}", config.to_toml());
            eprintln!(
                "{}: {}: the configuration is valid",
                log::name(),
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::warning!("{e}");
            ExitCode::from(2)
        }
    }
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
    let config_delay = config.shutdown_delay;
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
    if let Some(a) = server.metrics_addr() {
        println!("{}: metrics on http://{a}/metrics", log::name());
    }
    let trigger = server.shutdown_trigger();
    let reopen = server.log_reopener();
    let delay = config_delay;
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
                    // `/readyz` says 503 from now; the listeners stay
                    // open for the delay, so a balancer can see it.
                    trigger.announce();
                    if delay.is_zero() {
                        trigger.fire();
                    } else {
                        println!(
                            "{}: stopping in {}: /readyz answers 503 meanwhile",
                            log::name(),
                            crate::config::show_duration(delay)
                        );
                        let trigger = trigger.clone();
                        std::thread::spawn(move || {
                            std::thread::sleep(delay);
                            trigger.fire();
                        });
                    }
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
