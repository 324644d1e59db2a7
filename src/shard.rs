//! Shards: one glommio `LocalExecutor` per core, each with its own
//! listeners, poller, connection state and counters, and the handler its
//! factory built on it. Nothing here is shared between shards except the
//! configuration (read-only), the shutdown trigger and the start-up report.

use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
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
use crate::handler::Handler;
use crate::listener::{accept_loop, bind_all, BindError};
use crate::mesh::{new_mesh, Ask, Mesh, MeshHandle, Report};
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
    launch(config, prepared, make_handler)
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
    config.validate().map_err(StartError::Config)?;
    launch(config, prepared, make_handler)
}

/// Binds and starts the shards of a validated, prepared configuration.
fn launch<F, H>(
    config: Config,
    prepared: Prepared,
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
    let (addrs, sockets) = bind_all(&config.listen, n, config.backlog).map_err(StartError::Bind)?;
    // The admin address: one socket, for shard 0.
    let mut admin = match config.metrics_listen {
        Some(a) => {
            let (bound, mut sockets) =
                bind_all(&[a], 1, config.backlog).map_err(StartError::Bind)?;
            sockets
                .pop()
                .and_then(|mut s| s.pop())
                .zip(bound.first().copied())
        }
        None => None,
    };

    let trigger = ShutdownTrigger::new();
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
    };
    for (id, sockets) in sockets.into_iter().enumerate() {
        let core = cores[id % cores.len()];
        let shard = Start {
            id,
            core,
            sockets: sockets.into_iter().zip(addrs.iter().copied()).collect(),
            admin: admin.take(),
            config: config.clone(),
            static_files: static_files.clone(),
            access_log: prepared.access_log.clone(),
            auth: prepared.auth.clone(),
            proxy: prepared.proxy.clone(),
            mesh: mesh.clone(),
            trigger: trigger.clone(),
            ready: ready_tx.clone(),
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
    trigger: ShutdownTrigger,
    ready: mpsc::Sender<Result<(), (usize, String)>>,
}

impl Start {
    /// One shard's life, in order: pin to its CPU; make its poller,
    /// counters and connection state; join the mesh; build the handler
    /// (which may use all of those); register the listeners; serve until
    /// the trigger fires; drain.
    async fn run<H: Handler>(self, make: impl FnOnce(&ShardContext) -> H) {
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
        // Joining waits for every shard; one that failed to start never
        // joins, and start-up then fires the trigger: stop waiting.
        let joined = async { Some(Mesh::join(self.mesh, stats).await) };
        let stopped = async {
            self.trigger.wait().await;
            None
        };
        let mesh = match joined.or(stopped).await {
            Some(Ok(m)) => m,
            Some(Err(why)) => return fail(why),
            None => return fail("stopped before every shard had started".into()),
        };
        let admin = Admin::new(metrics.clone(), mesh.clone(), self.trigger.clone());
        let handler = make(&ShardContext {
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
        });
        let listeners = match register(&poller, self.sockets) {
            Ok(l) => l,
            Err(e) => {
                return fail(format!(
                    "cannot register a listening socket with epoll: {e}"
                ))
            }
        };
        let admin_listener = match self.admin {
            Some((socket, bound)) => match poller.register(socket.into()) {
                Ok(l) => Some((l, bound)),
                Err(e) => return fail(format!("cannot register the metrics socket: {e}")),
            },
            None => None,
        };
        let max_conns = self.config.max_conns.get() as u64;
        let slots = Rc::new(Semaphore::new(max_conns));
        let handler = Rc::new(handler);
        let ticker = glommio::spawn_local(tick(shared.clone(), poller.clone()));
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
                Rc::new(admin),
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
        let all_closed = async {
            let _ = slots.acquire(max_conns).await;
            true
        };
        let deadline = async {
            Timer::new(self.config.timeouts.drain).await;
            false
        };
        if !all_closed.or(deadline).await {
            shared.conns.close_all();
            // Interrupted connections drop their sockets as soon as they run.
            let closed = async {
                let _ = slots.acquire(max_conns).await;
            };
            let grace = async {
                Timer::new(Duration::from_millis(100)).await;
            };
            closed.or(grace).await;
        }
        if let (Some(log), Some(writer)) = (access_log, log_writer) {
            log.stop();
            // Bounded: a target that hangs must not keep the process up.
            let written = async {
                writer.await;
                true
            };
            let late = async {
                Timer::new(FINAL_WRITE).await;
                false
            };
            if !written.or(late).await {
                crate::log::warning!(
                    "shard {id}: access log: the last lines were not written within {FINAL_WRITE:?}"
                );
            }
        }
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
        .map(|(s, bound)| Ok((poller.register(s.into())?, bound)))
        .collect()
}

/// The shard's clock: advances the connection table's deadlines and the
/// cached Date. Socket events that have come in are delivered first, so a
/// connection whose data has arrived is not taken for a stalled one.
async fn tick(shared: Rc<Shared>, poller: Rc<Poller>) {
    let period = shared.conns.tick_period();
    loop {
        Timer::new(period).await;
        poller.catch_up();
        shared.tick(Instant::now());
    }
}
