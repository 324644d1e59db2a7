//! Shards: one glommio `LocalExecutor` per core, each with its own
//! listeners, poller, connection state and counters, and the handler its
//! factory built on it. Nothing here is shared between shards except the
//! configuration (read-only), the shutdown trigger and the start-up report.

use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use glommio::sync::Semaphore;
use glommio::timer::Timer;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use socket2::Socket;

use crate::access_log::{AccessLog, Outlet, Reopen, FINAL_WRITE};
use crate::admin::Admin;
use crate::config::{Config, ConfigError, Prepared};
use crate::conn::Shared;
use crate::handler::{Handler, Swappable};
use crate::listener::{accept_loop, bind_all, BindError, Handover, Inherited, METRICS_NAME};
use crate::mesh::{new_mesh, Ask, Inbox, Mesh, MeshHandle, Report};
use crate::metrics::Metrics;
use crate::middleware::AuthConfig;
use crate::poller::{Poller, Socket as Registered};
use crate::proxy::PreparedProxy;
use crate::shutdown::ShutdownTrigger;
use crate::static_files::StaticConfig;
use crate::sys;

/// I/O memory glommio registers per ring (bytes). We do no DMA file I/O,
/// so glommio's minimum; its default of 10 MiB would not fit an 8 MiB
/// RLIMIT_MEMLOCK even for one shard.
const IO_MEMORY: usize = 64 * 1024;
/// Locked memory one shard may be charged (bytes): the I/O memory is
/// registered with three rings (3 × 64 KiB), plus the rings themselves on
/// kernels before 5.12, which charge them too; rounded up.
pub const MEMLOCK_PER_SHARD: u64 = 256 * 1024;
/// glommio refuses to create an executor below this RLIMIT_MEMLOCK (bytes).
pub const GLOMMIO_MIN_MEMLOCK: u64 = 512 * 1024;
/// How long a task may run before `yield_if_needed` gives way (glommio's
/// default is 100 ms). A connection sending a large file to a fast reader
/// yields at these points, so it holds its shard for at most this long.
const PREEMPT_AFTER: Duration = Duration::from_millis(10);
/// How long a drain leaves idle keep-alive connections open (at most half
/// the drain timeout): a client that sends within it gets an answer with
/// `Connection: close`.
pub const DRAIN_IDLE_GRACE: Duration = Duration::from_millis(500);
/// How long start-up waits for every shard to report ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What a handler factory gets on each shard, built before it runs: the
/// shard's number and CPU, its poller (for the handler's own sockets,
/// such as upstream connections), its counters, its end of the mesh, and
/// the configuration with what it opened.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ShardContext {
    /// Shard number, from 0.
    pub id: usize,
    /// The CPU this shard is pinned to.
    pub core: usize,
    /// The shard's epoll: sockets registered here wait like the shard's own.
    pub poller: Rc<Poller>,
    /// The shard's counters.
    pub metrics: Rc<Metrics>,
    /// Messages to the other shards.
    pub mesh: Rc<Mesh>,
    /// The server's configuration (limits, timeouts, …).
    pub config: Arc<Config>,
    /// The static-file mounts, their directories open.
    pub static_files: Arc<StaticConfig>,
    /// The auth files the configuration names, read and checked.
    pub auth: Option<Arc<AuthConfig>>,
    /// The proxy mounts, their upstreams resolved (build a
    /// [`ProxyMounts`](crate::proxy::ProxyMounts) or a
    /// [`Proxy`](crate::proxy::Proxy) per shard from them).
    pub proxy: Arc<PreparedProxy>,
    /// The server's shutdown trigger: [`ShutdownTrigger::ready`] says
    /// whether a stop has been announced (what `/readyz` answers).
    pub shutdown: ShutdownTrigger,
}

/// Where a shard runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardInfo {
    /// Shard number.
    pub id: usize,
    /// The CPU it is pinned to.
    pub core: usize,
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// RLIMIT_MEMLOCK is below what the shards need.
    Memlock {
        /// The limit in force after raising the soft limit to the hard one.
        have: u64,
        /// What the shards need.
        need: u64,
        /// How many shards were asked for.
        shards: usize,
    },
    /// The configuration is invalid, or something it names cannot be opened.
    Config(ConfigError),
    /// A listening socket could not be set up.
    Bind(BindError),
    /// The CPUs this process may use could not be read.
    Cpus,
    /// A shard failed to start.
    Shard(usize, String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Memlock { have, need, shards } => write!(
                f,
                "locked-memory limit (RLIMIT_MEMLOCK) is {} KiB; {shards} shard(s) need {} KiB for io_uring.\n\
                 Raise it: `ulimit -l {}` in the shell, LimitMEMLOCK={}K in the systemd unit, \
                 or a memlock line in /etc/security/limits.conf; or run fewer shards with --shards",
                have / 1024,
                need / 1024,
                need / 1024,
                need / 1024
            ),
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Bind(e) => write!(f, "{e}"),
            StartError::Cpus => write!(f, "cannot read the CPUs this process may run on"),
            StartError::Shard(id, why) => write!(f, "shard {id} failed to start: {why}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Locked memory `shards` shards need (bytes).
pub fn memlock_needed(shards: usize) -> u64 {
    (shards as u64 * MEMLOCK_PER_SHARD).max(GLOMMIO_MIN_MEMLOCK)
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    addrs: Vec<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    shards: Vec<ShardInfo>,
    trigger: ShutdownTrigger,
    threads: Vec<ExecutorJoinHandle<()>>,
    access_log: Option<Arc<Outlet>>,
    handover: Option<Handover>,
    heartbeats: Heartbeats,
    reloader: Reloader,
}

impl ServerHandle {
    /// The addresses listened on, with port 0 resolved.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The admin address `/metrics` is served on (`--metrics-listen`),
    /// with port 0 resolved.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The shards and their cores.
    pub fn shards(&self) -> &[ShardInfo] {
        &self.shards
    }

    /// A trigger that starts a graceful shutdown from any thread.
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        self.trigger.clone()
    }

    /// Starts a graceful shutdown: stop accepting, close idle connections,
    /// let in-flight requests finish until the drain timeout.
    pub fn shutdown(&self) {
        self.trigger.fire();
    }

    /// A handle that makes every shard reopen its access log file before
    /// its next write (what SIGHUP does, after logrotate); `None` without
    /// an access log.
    pub fn log_reopener(&self) -> Option<Reopen> {
        self.access_log.as_ref().map(|o| o.reopen())
    }

    /// A handle that gives the running shards a new configuration.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Each shard's last sign of life, for a watchdog.
    pub fn heartbeats(&self) -> Heartbeats {
        self.heartbeats.clone()
    }

    /// Descriptors of the listening sockets, for a binary upgrade to hand
    /// over (the first call takes them). While they are held, a listener
    /// a draining shard closes stays open: drop them to stop taking
    /// connections, unless a new process now accepts on them.
    pub fn take_handover(&mut self) -> Option<Handover> {
        self.handover.take()
    }

    /// Waits for every shard to exit, then (for at most two seconds) for
    /// the access log's writer thread to write the shards' last lines.
    pub fn join(self) -> Result<(), String> {
        let mut first_err = None;
        for (i, t) in self.threads.into_iter().enumerate() {
            if let Err(e) = t.join() {
                first_err.get_or_insert(format!("shard {i}: {e}"));
            }
        }
        if let Some(outlet) = &self.access_log {
            outlet.finish(FINAL_WRITE);
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Starts the shards: validates `config`, opens what it names
/// ([`Config::prepare`]), then [`start_prepared`].
pub fn start<F, H>(config: Config, make_handler: F) -> Result<ServerHandle, StartError>
where
    F: Fn(&ShardContext) -> H + Send + Sync + 'static,
    H: Handler,
{
    config.validate().map_err(StartError::Config)?;
    let prepared = config.prepare().map_err(StartError::Config)?;
    launch(config, prepared, None, make_handler)
}

/// Starts the shards with a configuration already prepared (the daemon
/// prepares first, to report mounts before it binds). `make_handler`
/// builds each shard's handler on that shard's thread, once the shard's
/// poller, counters and mesh exist, so handlers may hold `Rc` state and
/// register their own sockets.
pub fn start_prepared<F, H>(
    config: Config,
    prepared: Prepared,
    make_handler: F,
) -> Result<ServerHandle, StartError>
where
    F: Fn(&ShardContext) -> H + Send + Sync + 'static,
    H: Handler,
{
    start_handed(config, prepared, None, make_handler)
}

/// As [`start_prepared`], listening on the sockets `inherited` hands over
/// (socket activation, a binary upgrade) instead of binding the
/// configured addresses.
pub fn start_handed<F, H>(
    config: Config,
    prepared: Prepared,
    inherited: Option<Inherited>,
    make_handler: F,
) -> Result<ServerHandle, StartError>
where
    F: Fn(&ShardContext) -> H + Send + Sync + 'static,
    H: Handler,
{
    config.validate().map_err(StartError::Config)?;
    launch(config, prepared, inherited, make_handler)
}

/// Binds and starts the shards of a validated, prepared configuration.
fn launch<F, H>(
    config: Config,
    prepared: Prepared,
    inherited: Option<Inherited>,
    make_handler: F,
) -> Result<ServerHandle, StartError>
where
    F: Fn(&ShardContext) -> H + Send + Sync + 'static,
    H: Handler,
{
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .filter(|c| !c.is_empty())
        .ok_or(StartError::Cpus)?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let n = config.shards.map_or(cores.len(), |n| n.get());
    // Done already by the daemon, while it had one thread; a library user
    // whose process has more pays a grace period here rather than on a shard.
    sys::register_membarrier();
    let limit =
        sys::raise_memlock().map_err(|e| StartError::Shard(0, format!("getrlimit: {e}")))?;
    // Best effort: a hard limit below --max-conns shows up as EMFILE, which
    // the accept loop reports and survives.
    let _ = sys::raise_nofile();
    let need = memlock_needed(n);
    if let Some(have) = limit.soft.filter(|&have| have < need) {
        return Err(StartError::Memlock {
            have,
            need,
            shards: n,
        });
    }
    let (addrs, sockets, handed_admin) = match inherited {
        Some(handed) => handed.deal(n).map_err(StartError::Bind)?,
        None => {
            let (addrs, sockets) =
                bind_all(&config.listen, n, config.backlog).map_err(StartError::Bind)?;
            let sockets = sockets
                .into_iter()
                .map(|s| s.into_iter().zip(addrs.iter().copied()).collect())
                .collect();
            (addrs, sockets, None)
        }
    };
    // A handed-over admin socket is the metrics address, as if configured.
    let handed_metrics = handed_admin.as_ref().map(|(_, a)| *a);
    // The admin address: one socket, for shard 0.
    let mut admin = match (handed_admin, config.metrics_listen) {
        (Some(handed), _) => Some(handed),
        (None, Some(a)) => {
            let (bound, mut sockets) =
                bind_all(&[a], 1, config.backlog).map_err(StartError::Bind)?;
            sockets
                .pop()
                .and_then(|mut s| s.pop())
                .zip(bound.first().copied())
        }
        (None, None) => None,
    };
    let configured = config.clone();
    let mut config = config;
    if handed_metrics.is_some() {
        config.metrics_listen = handed_metrics;
    }
    let mut handover = Handover::default();
    let dups = sockets
        .iter()
        .flatten()
        .map(|(s, _)| (s, "listen"))
        .chain(admin.iter().map(|(s, _)| (s, METRICS_NAME)))
        .try_for_each(|(s, name)| handover.push(s, name));
    if let Err(e) = dups {
        let addr = addrs.first().copied().unwrap_or(([0, 0, 0, 0], 0).into());
        return Err(StartError::Bind(BindError::Io(
            addr,
            "duplicate the descriptor of",
            e,
        )));
    }

    let trigger = ShutdownTrigger::new();
    let heartbeats = Heartbeats::new(n);
    let control: Arc<[Inbox<Control>]> = (0..n).map(|_| Inbox::default()).collect();
    let mesh = new_mesh(n);
    let make_handler = Arc::new(make_handler);
    let config = Arc::new(config);
    let static_files = Arc::new(prepared.static_files);
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut handle = ServerHandle {
        addrs: addrs.clone(),
        metrics_addr: admin.as_ref().map(|(_, a)| *a),
        shards: Vec::with_capacity(n),
        trigger: trigger.clone(),
        threads: Vec::with_capacity(n),
        access_log: prepared.access_log.clone(),
        handover: Some(handover),
        heartbeats: heartbeats.clone(),
        reloader: Reloader {
            control: control.clone(),
            current: Arc::new(Mutex::new(configured)),
            handed_metrics,
            access_log: prepared.access_log.clone(),
        },
    };
    for (id, sockets) in sockets.into_iter().enumerate() {
        let core = cores[id % cores.len()];
        let shard = Start {
            id,
            core,
            sockets,
            admin: admin.take(),
            config: config.clone(),
            static_files: static_files.clone(),
            access_log: prepared.access_log.clone(),
            auth: prepared.auth.clone(),
            proxy: prepared.proxy.clone(),
            mesh: mesh.clone(),
            control: control.clone(),
            trigger: trigger.clone(),
            ready: ready_tx.clone(),
            heart: (heartbeats.clone(), id),
        };
        let make = make_handler.clone();
        let spawned = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("edgeshard-{id}"))
            .io_memory(IO_MEMORY)
            .preempt_timer(PREEMPT_AFTER)
            .spawn(move || shard.run(move |ctx| (*make)(ctx)));
        match spawned {
            Ok(t) => handle.threads.push(t),
            Err(e) => return Err(abort_start(handle, id, e.to_string())),
        }
        handle.shards.push(ShardInfo { id, core });
    }
    drop(ready_tx);
    for _ in 0..n {
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err((id, why))) => return Err(abort_start(handle, id, why)),
            // A shard thread ended without reporting: glommio refused to build it.
            Err(_) => {
                let why = "executor did not start (see the error above)".to_string();
                return Err(abort_start(handle, 0, why));
            }
        }
    }
    Ok(handle)
}

#[cold]
fn abort_start(handle: ServerHandle, id: usize, why: String) -> StartError {
    handle.shutdown();
    let why = match handle.join() {
        Err(join_err) => format!("{why}; {join_err}"),
        Ok(()) => why,
    };
    StartError::Shard(id, why)
}

/// Connections the admin address takes at once (scrapers, probes).
const ADMIN_CONNS: u64 = 64;

/// What one shard's thread starts from.
struct Start {
    id: usize,
    core: usize,
    /// The shard's listening sockets, each with the address it is bound to.
    sockets: Vec<(Socket, SocketAddr)>,
    /// The admin address's socket (shard 0's, with `--metrics-listen`).
    admin: Option<(Socket, SocketAddr)>,
    config: Arc<Config>,
    static_files: Arc<StaticConfig>,
    access_log: Option<Arc<Outlet>>,
    auth: Option<Arc<AuthConfig>>,
    proxy: Arc<PreparedProxy>,
    mesh: MeshHandle,
    /// Every shard's inbox of new configurations (this one's is `[id]`).
    control: Arc<[Inbox<Control>]>,
    trigger: ShutdownTrigger,
    ready: mpsc::Sender<Result<(), (usize, String)>>,
    /// The shard's heartbeat and its number in it.
    heart: (Heartbeats, usize),
}

impl Start {
    /// One shard's life, in order: pin to its CPU; make its poller,
    /// counters and connection state; take its place in the mesh; build the handler
    /// (which may use all of those); register the listeners; serve until
    /// the trigger fires; drain.
    async fn run<H: Handler>(self, make: impl Fn(&ShardContext) -> H + 'static) {
        let (id, core) = (self.id, self.core);
        let fail = |why: String| {
            let _ = self.ready.send(Err((id, why)));
        };
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            return fail(format!("cannot pin to CPU {core}"));
        }
        let poller = match Poller::new() {
            Ok(p) => p,
            Err(e) => return fail(format!("cannot create an epoll instance: {e}")),
        };
        let metrics = match self.config.metrics {
            true => Metrics::new(id, core),
            false => Metrics::new(id, core).without_routes(),
        };
        let metrics = Rc::new(metrics);
        // What is built per shard without being handed the counters (a
        // proxy mount's upstreams) finds them here.
        crate::metrics::set_current(metrics.clone());
        let access_log = self.access_log.map(|o| AccessLog::new(o, id));
        let shared = Shared::new(
            self.config.limits,
            self.config.timeouts,
            metrics.clone(),
            access_log.clone(),
        );
        let stats = {
            let (metrics, shared) = (metrics.clone(), shared.clone());
            Box::new(move |what| match what {
                Ask::Stats => Report::Stats(metrics.stats(shared.connections())),
                Ask::Metrics => Report::Metrics(Box::new(metrics.snapshot(shared.connections()))),
            })
        };
        let mesh = Mesh::join(self.mesh, id, stats);
        let mesh_end = mesh.clone();
        let admin = Admin::new(metrics.clone(), mesh.clone(), self.trigger.clone());
        let ctx = ShardContext {
            id,
            core,
            poller: poller.clone(),
            metrics,
            mesh,
            config: self.config.clone(),
            static_files: self.static_files.clone(),
            auth: self.auth.clone(),
            proxy: self.proxy.clone(),
            shutdown: self.trigger.clone(),
        };
        let handler = Rc::new(Swappable::new(make(&ctx)));
        let control = glommio::spawn_local(take_reloads(
            ctx,
            make,
            handler.clone(),
            self.control.clone(),
        ));
        let listeners = match register(&poller, self.sockets) {
            Ok(l) => l,
            Err(e) => {
                return fail(format!(
                    "cannot register a listening socket with epoll: {e}"
                ))
            }
        };
        let admin_listener = match self.admin {
            Some((socket, bound)) => match poller.register_listener(socket.into()) {
                Ok(l) => Some((l, bound)),
                Err(e) => return fail(format!("cannot register the metrics socket: {e}")),
            },
            None => None,
        };
        let max_conns = self.config.max_conns.get() as u64;
        let slots = Rc::new(Semaphore::new(max_conns));
        let ticker = glommio::spawn_local(tick(shared.clone(), poller.clone(), self.heart));
        let log_writer = access_log
            .as_ref()
            .map(|log| glommio::spawn_local(log.clone().run()));
        let polling = glommio::spawn_local(poller.run());
        let mut accepting: Vec<_> = listeners
            .into_iter()
            .map(|(listener, bound)| {
                let serve = accept_loop(
                    listener,
                    bound,
                    shared.clone(),
                    handler.clone(),
                    slots.clone(),
                );
                glommio::spawn_local(serve)
            })
            .collect();
        if let Some((listener, bound)) = admin_listener {
            let serve = accept_loop(
                listener,
                bound,
                shared.clone(),
                Rc::new(Swappable::new(admin)),
                Rc::new(Semaphore::new(ADMIN_CONNS)),
            );
            accepting.push(glommio::spawn_local(serve));
        }
        let _ = self.ready.send(Ok(()));
        drop(self.ready);

        self.trigger.wait().await;
        // Stop accepting: cancelling the loops drops (closes) the listeners.
        for task in accepting {
            task.cancel().await;
        }
        shared.conns.begin_drain();
        let drain_ends = Instant::now() + self.config.timeouts.drain;
        // Busy keep-alive connections close after their next response
        // (`Connection: close`). An idle one closed now could cross a
        // request its client is sending at that moment, which would then
        // get no answer; one still idle after the grace has been quiet
        // for that long, and is closed.
        let grace = DRAIN_IDLE_GRACE.min(self.config.timeouts.drain / 2);
        // One wait for every slot, polled through the three phases (a
        // second `acquire` of them all after the first had completed was
        // seen never to complete).
        let mut all_closed = std::pin::pin!(async {
            let _ = slots.acquire(max_conns).await;
        });
        if !within(grace, all_closed.as_mut()).await {
            shared.conns.close_idle();
            let left = drain_ends.saturating_duration_since(Instant::now());
            if !within(left, all_closed.as_mut()).await {
                shared.conns.close_all();
                // Interrupted connections drop their sockets as soon as they run.
                within(Duration::from_millis(100), all_closed.as_mut()).await;
            }
        }
        if let (Some(log), Some(writer)) = (access_log, log_writer) {
            log.stop();
            // Bounded: a target that hangs must not keep the process up.
            let written = std::pin::pin!(async {
                writer.await;
            });
            if !within(FINAL_WRITE, written).await {
                crate::log::warning!(
                    "shard {id}: access log: the last lines were not written within {FINAL_WRITE:?}"
                );
            }
        }
        mesh_end.close();
        self.control[id].close();
        control.cancel().await;
        ticker.cancel().await;
        polling.cancel().await;
    }
}

/// The listening sockets, registered with the shard's poller.
fn register(
    poller: &Rc<Poller>,
    sockets: Vec<(Socket, SocketAddr)>,
) -> std::io::Result<Vec<(Registered, SocketAddr)>> {
    sockets
        .into_iter()
        .map(|(s, bound)| Ok((poller.register_listener(s.into())?, bound)))
        .collect()
}

/// The shard's clock: advances the connection table's deadlines and the
/// cached Date. Socket events that have come in are delivered first, so a
/// connection whose data has arrived is not taken for a stalled one.
/// Each tick also shows the shard is alive ([`Heartbeats`]).
async fn tick(shared: Rc<Shared>, poller: Rc<Poller>, heart: (Heartbeats, usize)) {
    let period = shared.conns.tick_period();
    loop {
        Timer::new(period).await;
        poller.catch_up();
        shared.tick(Instant::now());
        crate::deadline::expire();
        heart.0.beat(heart.1);
    }
}

/// When each shard last ticked (at most `MAX_TICK`, 250 ms, apart while it
/// runs): a shard whose thread is stuck stops beating, which the
/// daemon's watchdog sees. Atomics, written once per tick per shard.
#[derive(Debug, Clone)]
pub struct Heartbeats(Arc<[AtomicU64]>);

impl Heartbeats {
    fn new(shards: usize) -> Heartbeats {
        let now = sys::coarse_millis();
        Heartbeats((0..shards).map(|_| AtomicU64::new(now)).collect())
    }

    fn beat(&self, shard: usize) {
        if let Some(b) = self.0.get(shard) {
            b.store(sys::coarse_millis(), Ordering::Relaxed);
        }
    }

    /// The shards that have not beaten for longer than `limit`, each with
    /// how long it has been.
    pub fn stalled(&self, limit: Duration) -> Vec<(usize, Duration)> {
        let now = sys::coarse_millis();
        self.0
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let quiet = Duration::from_millis(now.saturating_sub(b.load(Ordering::Relaxed)));
                (quiet > limit).then_some((i, quiet))
            })
            .collect()
    }
}

/// What the daemon (or a library user) sends the shards.
enum Control {
    Reload(Arc<Reload>),
}

/// A new configuration with what it opened, and where each shard says
/// it took it.
struct Reload {
    config: Arc<Config>,
    static_files: Arc<StaticConfig>,
    auth: Option<Arc<AuthConfig>>,
    proxy: Arc<PreparedProxy>,
    done: Mutex<mpsc::Sender<Result<usize, String>>>,
}

/// A shard's task that builds a new handler for each reload.
async fn take_reloads<H: Handler>(
    mut ctx: ShardContext,
    make: impl Fn(&ShardContext) -> H,
    handler: Rc<Swappable<H>>,
    control: Arc<[Inbox<Control>]>,
) {
    let id = ctx.id;
    loop {
        for Control::Reload(r) in control[id].take().await {
            ctx.config = r.config.clone();
            ctx.static_files = r.static_files.clone();
            ctx.auth = r.auth.clone();
            ctx.proxy = r.proxy.clone();
            let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| make(&ctx)));
            let outcome = match built {
                Ok(h) => {
                    handler.replace(h);
                    Ok(id)
                }
                Err(_) => Err(format!(
                    "shard {id}: building the handler panicked; it keeps the old one"
                )),
            };
            let done = r
                .done
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let _ = done.send(outcome);
        }
    }
}

/// How long a reload waits for every shard to take the new configuration.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Gives a running server a new configuration: static mounts, proxy
/// mounts, auth, middleware. Cloned freely; usable from any thread.
#[derive(Clone)]
pub struct Reloader {
    control: Arc<[Inbox<Control>]>,
    /// The configuration as given (before handed-over sockets).
    current: Arc<Mutex<Config>>,
    /// The metrics address handed over, which the shards use whatever
    /// the configuration says.
    handed_metrics: Option<SocketAddr>,
    access_log: Option<Arc<Outlet>>,
}

impl fmt::Debug for Reloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloader")
            .field("shards", &self.control.len())
            .finish()
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reloaded {
    /// Settings that changed in the new configuration but take a restart
    /// (or an upgrade) to change: they keep their old values.
    pub kept: Vec<String>,
}

impl Reloader {
    /// Checks and opens what `config` names, then has every shard build
    /// its handler anew from it; requests under way finish with the old
    /// one, connections stay open. The access log file is reopened, at
    /// its new path if it names another file. Settings the running server
    /// cannot change ([`Reloaded::kept`]: addresses, shard count, limits,
    /// timeouts, the access log's format or kind, metrics) keep their
    /// values. On an error nothing changes.
    pub fn reload(&self, config: Config) -> Result<Reloaded, String> {
        let mut config = config;
        let (mut kept, old_log) = {
            let old = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            (keep_fixed(&old, &mut config), old.access_log.clone())
        };
        config.validate().map_err(|e| e.to_string())?;
        let as_given = config.clone();
        if self.handed_metrics.is_some() {
            config.metrics_listen = self.handed_metrics;
        }
        let prepared = config.prepare_without_log().map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel();
        let reload = Arc::new(Reload {
            config: Arc::new(config.clone()),
            static_files: Arc::new(prepared.static_files),
            auth: prepared.auth,
            proxy: prepared.proxy,
            done: Mutex::new(tx),
        });
        let mut waiting = 0;
        for (id, inbox) in self.control.iter().enumerate() {
            if !inbox.offer(Control::Reload(reload.clone())) {
                return Err(format!(
                    "shard {id} is not taking new configurations (stopping?)"
                ));
            }
            waiting += 1;
        }
        let until = Instant::now() + RELOAD_TIMEOUT;
        let mut failed = None;
        while waiting > 0 {
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Ok(_)) => waiting -= 1,
                Ok(Err(why)) => {
                    waiting -= 1;
                    failed.get_or_insert(why);
                }
                Err(_) => {
                    return Err(format!(
                        "{waiting} shard(s) did not take the new configuration within {RELOAD_TIMEOUT:?}"
                    ))
                }
            }
        }
        if let Some(why) = failed {
            return Err(why);
        }
        let mut as_given = as_given;
        match &self.access_log {
            Some(outlet) if as_given.access_log != old_log => {
                // A log file's new path applies now; the rest waits.
                if let Err(why) = outlet.retarget(&as_given.access_log) {
                    kept.push(format!("[log] ({why})"));
                    as_given.access_log = old_log;
                }
            }
            Some(outlet) => outlet.reopen().request(),
            None if as_given.access_log != old_log => {
                kept.push("[log] (an access log off at start stays off until a restart)".into());
                as_given.access_log = old_log;
            }
            None => {}
        }
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = as_given;
        Ok(Reloaded { kept })
    }
}

impl Reloader {
    /// Only reopens the access log file (a server whose configuration is
    /// not read from anywhere it could change).
    pub fn reload_log(&self) -> Result<(), String> {
        match &self.access_log {
            Some(outlet) => {
                outlet.reopen().request();
                Ok(())
            }
            None => Err("there is no access log file to reopen".into()),
        }
    }
}

/// Copies into `new` the settings a running server cannot change, from
/// `old`; returns the names of those that differed.
fn keep_fixed(old: &Config, new: &mut Config) -> Vec<String> {
    let mut kept = Vec::new();
    macro_rules! keep {
        ($($field:ident => $name:literal),* $(,)?) => {$(
            if old.$field != new.$field {
                kept.push($name.to_string());
                new.$field = old.$field.clone();
            }
        )*};
    }
    keep!(
        listen => "listen",
        shards => "shards",
        backlog => "backlog",
        max_conns => "max_conns",
        limits => "[limits]",
        timeouts => "[timeouts]",
        metrics => "metrics.enabled",
        metrics_listen => "metrics.listen",
    );
    // Read by the daemon at a stop, not by the shards: it may change.
    kept
}

/// Whether `fut` completes within `limit` (it is left where it got to).
async fn within<F: std::future::Future<Output = ()>>(
    limit: Duration,
    fut: std::pin::Pin<&mut F>,
) -> bool {
    let done = async {
        fut.await;
        true
    };
    let late = async {
        Timer::new(limit).await;
        false
    };
    done.or(late).await
}
