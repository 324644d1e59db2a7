//! The process: command line → configuration → shards → signals. The
//! `edgeshard` binary and `examples/bench.rs` are each one call to
//! [`main`] with their own name and app; everything they print starts with
//! that name.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub mod notify;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR2};

use crate::config::{Command, Config, ConfigError, ConfigFile, Flags, Prepared};
use crate::handler::Handler;
use crate::listener::{Handover, Inherited};
use crate::log;
use crate::route::{format_routes, RouteInfo};
use crate::shard::{start_handed, Heartbeats, Reloaded, Reloader, ShardContext};
use crate::shutdown::ShutdownTrigger;
use crate::static_files::Resolver;
use crate::sys;
use notify::Notify;

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
    // While this is the only thread (see the function).
    sys::register_membarrier();
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
    let loader = Loader::new(defaults, flags, routes);
    let prepared = loader.load(|c| c.prepare().map(|p| (c, p)));
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
        log::info!("serving {} at {}", m.real_dir.display(), m.prefix);
    }
    for m in &prepared.proxy.mounts {
        let s = m.settings();
        let ups: Vec<String> = s.upstreams.iter().map(|u| u.to_string()).collect();
        log::info!("proxying {} to {}", s.prefix, ups.join(", "));
    }
    if !files.mounts.is_empty() && files.resolver == Resolver::PathWalk {
        log::info!(
            "openat2 is not available (Linux < 5.6?): static files are resolved \
             with a checked path walk instead of the kernel's RESOLVE_BENEATH"
        );
    }
    // SIGHUP: the file read again, the same flags over it.
    let reload = move || loader.load(Ok).map_err(|e| e.to_string());
    run(config, prepared, Some(Box::new(reload)), make_handler)
}

/// Where the configuration comes from: the defaults, the file the flags
/// name (read at each load), the flags over it, checked against the
/// routes. Start-up and every reload load it the same way.
struct Loader {
    defaults: Config,
    flags: Flags,
    routes: &'static [RouteInfo<'static>],
    /// Which of [`Loader::SHARED`] the command line gave.
    gave: Vec<&'static str>,
}

impl Loader {
    /// Settings whose errors carry the flag's name wherever the value
    /// came from (opening the access log, the auth files): such an error
    /// is the flag's only if the command line gave it, else the file's.
    const SHARED: [&'static str; 3] = ["--access-log", "--auth", "--trusted-proxy"];

    fn new(defaults: Config, flags: Flags, routes: &'static [RouteInfo<'static>]) -> Loader {
        let gave = Self::SHARED.into_iter().filter(|s| flags.gave(s)).collect();
        Loader {
            defaults,
            flags,
            routes,
            gave,
        }
    }

    /// Reads the file, lays the flags over it and checks the routes, then
    /// `then` (opening what it names, at start-up). An error in a setting
    /// the flags did not give came from the file: it names its line.
    fn load<T>(
        &self,
        then: impl FnOnce(Config) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        let file = self
            .flags
            .config
            .as_deref()
            .map(ConfigFile::read)
            .transpose()?;
        let given =
            |s: &str| s.starts_with("--") && (!Self::SHARED.contains(&s) || self.gave.contains(&s));
        Config::load(self.defaults.clone(), file.as_ref(), self.flags.clone())
            .and_then(|c| c.check_routes(self.routes).map(|()| c))
            .and_then(then)
            .map_err(|e| match &file {
                Some(f) if !given(&e.flag) => f.relocate(e),
                _ => e,
            })
    }
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
            log::warning!("{}: the configuration is valid", path.display());
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
/// process exit code. (What [`main`] runs, without its configuration
/// reload on SIGHUP.)
pub fn run_until_signal<F, H>(config: Config, prepared: Prepared, make_handler: F) -> ExitCode
where
    F: Fn(&ShardContext) -> H + Send + Sync + 'static,
    H: Handler,
{
    run(config, prepared, None, make_handler)
}

/// Reads the configuration again (SIGHUP).
type LoadAgain = Box<dyn Fn() -> Result<Config, String> + Send>;

/// How long an upgrade waits for the new process to say it is ready.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(40);

/// The process's life under a service manager or a shell:
/// - listens on the sockets handed over by systemd or by the process it
///   upgrades, if any ([`Inherited`]), else binds its own;
/// - tells the manager (`NOTIFY_SOCKET`) `READY=1` once every shard
///   listens, `RELOADING=1` around a reload, `STOPPING=1` at a stop, and
///   `WATCHDOG=1` while every shard shows it runs ([`watchdog`]);
/// - SIGHUP: reads the configuration again and gives it to the shards;
/// - SIGUSR2: starts the same binary (the file at the same path, which
///   may be new) with the listening sockets; once it is ready, hands it
///   the service (`MAINPID=`) and drains;
/// - SIGTERM, SIGINT: `/readyz` says 503, the shutdown delay passes, the
///   drain closes the listeners and waits for requests under way.
fn run<F, H>(
    config: Config,
    prepared: Prepared,
    load_again: Option<LoadAgain>,
    make_handler: F,
) -> ExitCode
where
    F: Fn(&ShardContext) -> H + Send + Sync + 'static,
    H: Handler,
{
    let name = log::name();
    // Registered before the shards start so no signal finds the default action.
    let signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR2]);
    let mut signals = match signals {
        Ok(s) => s,
        Err(e) => {
            log::warning!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let manager = Notify::from_env();
    let parent = Notify::from_var(notify::UPGRADE_NOTIFY);
    std::env::remove_var(notify::UPGRADE_NOTIFY);
    let inherited = match Inherited::from_env() {
        Ok(i) => i,
        Err(e) => {
            log::warning!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(i) = &inherited {
        let addrs: Vec<String> = i.addrs().iter().map(|a| a.to_string()).collect();
        log::info!(
            "listening on the sockets handed over by {}: {}{}",
            i.from,
            addrs.join(", "),
            if i.has_metrics() {
                " and the metrics address"
            } else {
                ""
            }
        );
        if parent.is_none()
            && i.addrs() != config.listen
            && config.listen != [crate::config::DEFAULT_LISTEN]
        {
            log::info!("the configured listen addresses are not used");
        }
    }
    // The path as it is now: an upgrade starts whatever file is there then.
    let exe = std::env::current_exe();
    let delay = config.shutdown_delay;
    let mut server = match start_handed(config, prepared, inherited, make_handler) {
        Ok(s) => s,
        Err(e) => {
            log::warning!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for shard in server.shards() {
        for addr in server.local_addrs() {
            log::info!(
                "shard {} on core {} listening on {addr}",
                shard.id,
                shard.core
            );
        }
    }
    if let Some(a) = server.metrics_addr() {
        log::info!("metrics on http://{a}/metrics");
    }
    let addrs: Vec<String> = server.local_addrs().iter().map(|a| a.to_string()).collect();
    let status = format!(
        "serving on {} with {} shard(s)",
        addrs.join(", "),
        server.shards().len()
    );
    if let Some(p) = &parent {
        p.tell("READY=1");
    }
    if let Some(m) = &manager {
        // After an upgrade the old process names this one the main process
        // once it hears READY=1 on its own socket; this says so too, for a
        // manager that hears this message first.
        let mainpid = match parent {
            Some(_) => format!("MAINPID={}\n", std::process::id()),
            None => String::new(),
        };
        m.tell(&format!("{mainpid}READY=1\nSTATUS={status}"));
    }
    let trigger = server.shutdown_trigger();
    if let (Some(interval), Some(_)) = (notify::watchdog_interval(), &manager) {
        let (beats, trigger) = (server.heartbeats(), trigger.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("{name}-watchdog"))
            .spawn(move || watchdog(interval, beats, trigger));
        if let Err(e) = spawned {
            log::warning!("cannot start the watchdog thread: {e}");
        }
    }
    let mut life = Life {
        handover: server.take_handover(),
        trigger,
        delay,
        reloader: server.reloader(),
        load_again,
        manager,
        exe,
        status,
        stopping: false,
    };
    let signal_thread = std::thread::Builder::new()
        .name(format!("{name}-signals"))
        .spawn(move || {
            for signal in signals.forever() {
                life.on(signal);
            }
        });
    if let Err(e) = signal_thread {
        log::warning!("cannot start the signal thread: {e}; stopping");
        server.shutdown();
    }
    match server.join() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::warning!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// What the signal thread acts on.
struct Life {
    /// The listening sockets' descriptors while this process owns them.
    handover: Option<Handover>,
    trigger: ShutdownTrigger,
    delay: Duration,
    reloader: Reloader,
    load_again: Option<LoadAgain>,
    manager: Option<Notify>,
    exe: std::io::Result<PathBuf>,
    status: String,
    stopping: bool,
}

impl Life {
    fn on(&mut self, signal: i32) {
        match signal {
            SIGHUP if !self.stopping => self.reload(),
            SIGUSR2 if !self.stopping => self.upgrade(),
            SIGHUP | SIGUSR2 => {
                log::info!("stopping: signal {signal} ignored");
            }
            // A second signal while draining: stop now.
            _ if self.stopping => std::process::exit(1),
            _ => self.stop(),
        }
    }

    fn tell(&self, lines: &str) {
        if let Some(m) = &self.manager {
            m.tell(lines);
        }
    }

    fn reload(&mut self) {
        self.tell(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading",
            notify::monotonic_usec()
        ));
        let outcome = match &self.load_again {
            Some(load) => load().and_then(|c| {
                let delay = c.shutdown_delay;
                self.reloader.reload(c).map(|r| (r, delay))
            }),
            None => self
                .reloader
                .reload_log()
                .map(|()| (Reloaded::default(), self.delay)),
        };
        match outcome {
            Ok((reloaded, delay)) => {
                self.delay = delay;
                log::info!("SIGHUP: the configuration is reloaded");
                if !reloaded.kept.is_empty() {
                    log::info!(
"SIGHUP: these settings changed but take a restart to apply (or an upgrade, \
                         SIGUSR2, except listen and metrics.listen: the new process keeps \
                         the sockets); they keep their running values: {}",
                        reloaded.kept.join(", ")
                    );
                }
                self.tell(&format!("READY=1\nSTATUS={}", self.status));
            }
            Err(e) => {
                log::warning!(
                    "SIGHUP: the new configuration is refused; the running one stays: {e}"
                );
                self.tell(&format!(
                    "READY=1\nSTATUS={}; the last reload was refused: {e}",
                    self.status
                ));
            }
        }
    }

    fn upgrade(&mut self) {
        let Some(handover) = &self.handover else {
            log::info!("SIGUSR2: already handed over; ignored");
            return;
        };
        let exe = match &self.exe {
            Ok(p) => p.clone(),
            Err(e) => {
                log::warning!("SIGUSR2: cannot upgrade: the path of this binary is unknown: {e}");
                return;
            }
        };
        log::info!(
            "SIGUSR2: starting {} with the listening sockets",
            exe.display()
        );
        match start_successor(&exe, handover) {
            Ok(pid) => {
                log::info!(
"upgrade: pid {pid} is ready and serves; this process (pid {}) drains and exits",
                    std::process::id()
                );
                self.tell(&format!("MAINPID={pid}"));
                self.stopping = true;
                // The new process accepts on these sockets now.
                self.handover = None;
                self.trigger.announce();
                self.trigger.fire();
            }
            Err(e) => {
                log::warning!("upgrade failed; this process keeps serving: {e}");
            }
        }
    }

    fn stop(&mut self) {
        self.stopping = true;
        self.tell("STOPPING=1\nSTATUS=draining");
        // `/readyz` says 503 from now; the listeners stay open for the
        // delay, so a balancer can see it.
        self.trigger.announce();
        let handover = self.handover.take();
        if self.delay.is_zero() {
            drop(handover);
            self.trigger.fire();
            return;
        }
        log::info!(
            "stopping in {}: /readyz answers 503 meanwhile",
            crate::config::show_duration(self.delay)
        );
        let (trigger, delay) = (self.trigger.clone(), self.delay);
        let delayed = std::thread::Builder::new()
            .name(format!("{}-stop", log::name()))
            .spawn(move || {
                std::thread::sleep(delay);
                drop(handover);
                trigger.fire();
            });
        if let Err(e) = delayed {
            log::warning!("cannot wait out the shutdown delay ({e}): draining now");
            self.trigger.fire();
        }
    }
}

/// Starts `exe` with this process's arguments, the listening sockets and
/// a socket to say it is ready on; waits for that, for its exit or for
/// [`UPGRADE_TIMEOUT`]. Returns its pid once it is ready.
fn start_successor(exe: &Path, handover: &Handover) -> Result<u32, String> {
    let ready = notify::Listener::bind("upgrade")
        .map_err(|e| format!("cannot make the socket the new process reports on: {e}"))?;
    handover
        .set_inheritable(true)
        .map_err(|e| format!("cannot pass the listening sockets: {e}"))?;
    let spawned = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .envs(handover.env())
        .env(notify::UPGRADE_NOTIFY, ready.name())
        // WATCHDOG_PID names this process: the new one pings for itself.
        .env_remove("WATCHDOG_PID")
        .stdin(std::process::Stdio::null())
        .spawn();
    // Only this thread starts processes: nothing else inherits them.
    if let Err(e) = handover.set_inheritable(false) {
        log::warning!("upgrade: cannot mark the listening sockets close-on-exec again: {e}");
    }
    let mut child = spawned.map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let pid = child.id();
    let until = Instant::now() + UPGRADE_TIMEOUT;
    loop {
        let step = (Instant::now() + Duration::from_millis(100)).min(until);
        match ready.recv_until(step) {
            Ok(Some(msg)) if msg.lines().any(|l| l == "READY=1") => return Ok(pid),
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "waiting for the new process (pid {pid}): {e}; stopped it"
                ));
            }
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(format!(
                    "the new process (pid {pid}) exited ({status}) before it was ready; its own message says why"
                ))
            }
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for the new process (pid {pid}): {e}")),
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the new process (pid {pid}) was not ready within {UPGRADE_TIMEOUT:?}; stopped it"
            ));
        }
    }
}

/// Tells the manager `WATCHDOG=1` every half `interval` while every shard
/// has ticked recently; a shard that has not (its thread is stuck) holds
/// the pings back, and the manager restarts the service once `interval`
/// passes without one. Once a stop has begun it pings regardless: the
/// drain has its own deadline.
fn watchdog(interval: Duration, beats: Heartbeats, trigger: ShutdownTrigger) {
    let Some(manager) = Notify::from_env() else {
        return;
    };
    let every = interval / 2;
    // A running shard ticks at least every 250 ms.
    let limit = every.max(Duration::from_secs(1));
    let mut held = false;
    loop {
        std::thread::sleep(every);
        let stalled = beats.stalled(limit);
        if stalled.is_empty() || trigger.fired() {
            if held {
                log::info!("every shard runs again; watchdog pings resume");
                held = false;
            }
            manager.tell("WATCHDOG=1");
            continue;
        }
        if !held {
            let which: Vec<String> = stalled
                .iter()
                .map(|(i, quiet)| format!("shard {i} ({} ms)", quiet.as_millis()))
                .collect();
            log::warning!(
                "{} has not run for longer than {} ms: withholding the watchdog ping",
                which.join(", "),
                limit.as_millis()
            );
            manager.tell(&format!("STATUS=stalled: {}", which.join(", ")));
            held = true;
        }
    }
}
