//! Shards: one glommio `LocalExecutor` per core, each with its own listeners,
//! connection table, Date cache and counters. Nothing here is shared between
//! shards except the shutdown trigger and the start-up report.

use std::cell::Cell;
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

use crate::config::{Config, Limits, Timeouts};
use crate::conn::io::{ReadPool, WritePool};
use crate::conn::table::ConnTable;
use crate::handler::Handler;
use crate::http::date::DateCache;
use crate::listener::{accept_loop, bind_all, BindError};
use crate::mesh::{new_mesh, Mesh, ShardStats};
use crate::poller::{Poller, Socket as Registered};
use crate::shutdown::ShutdownTrigger;
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

/// State owned by one shard and shared by its connections.
#[derive(Debug)]
pub struct ShardState {
    /// Shard number, from 0.
    pub id: usize,
    /// The CPU this shard is pinned to.
    pub core: usize,
    /// When the shard started.
    pub started: Instant,
    /// Request size limits.
    pub limits: Limits,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// The Date header, reformatted at most once a second.
    pub date: DateCache,
    /// Live connections, their deadlines and shutdown state.
    pub conns: Rc<ConnTable>,
    /// Read buffers lent to connections waiting for a request.
    pub(crate) read_pool: ReadPool,
    /// Write buffers of connections between responses.
    pub(crate) write_pool: WritePool,
    requests: Cell<u64>,
    file_opens: Cell<u64>,
    reported_invalid: Cell<bool>,
}

impl ShardState {
    /// State for shard `id` on CPU `core`.
    pub fn new(id: usize, core: usize, config: &Config) -> Rc<ShardState> {
        Rc::new(ShardState {
            id,
            core,
            started: Instant::now(),
            limits: config.limits,
            timeouts: config.timeouts,
            date: DateCache::new(),
            conns: Rc::new(ConnTable::new(&config.timeouts)),
            read_pool: ReadPool::new(crate::conn::INITIAL_READ),
            write_pool: WritePool::default(),
            requests: Cell::new(0),
            file_opens: Cell::new(0),
            reported_invalid: Cell::new(false),
        })
    }

    /// Requests answered by this shard.
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// This shard's counters.
    pub fn stats(&self) -> ShardStats {
        ShardStats {
            shard: self.id,
            core: self.core,
            requests: self.requests(),
            connections: self.conns.len(),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            file_opens: self.file_opens.get(),
        }
    }

    /// Counts one file-system open by the static-file handler.
    pub fn count_file_open(&self) {
        self.file_opens.set(self.file_opens.get() + 1);
    }

    pub(crate) fn count_request(&self) {
        self.requests.set(self.requests.get() + 1);
    }

    /// A handler built an invalid response; say so once per shard.
    #[cold]
    pub(crate) fn report_invalid_response(&self, why: &str) {
        if !self.reported_invalid.replace(true) {
            eprintln!(
                "edgeshard: shard {}: handler returned an invalid response ({why}); answered 500",
                self.id
            );
        }
    }
}

/// What a handler factory gets on each shard: its state, and its end of
/// the mesh for questions to the other shards.
#[derive(Debug, Clone)]
pub struct ShardContext {
    /// The shard's own state and counters.
    pub state: Rc<ShardState>,
    /// Messages to the other shards.
    pub mesh: Rc<Mesh>,
    /// The server's configuration (static mounts, limits, …).
    pub config: Arc<Config>,
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
    shards: Vec<ShardInfo>,
    trigger: ShutdownTrigger,
    threads: Vec<ExecutorJoinHandle<()>>,
}

impl ServerHandle {
    /// The addresses listened on, with port 0 resolved.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
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

    /// Waits for every shard to exit.
    pub fn join(self) -> Result<(), String> {
        let mut first_err = None;
        for (i, t) in self.threads.into_iter().enumerate() {
            if let Err(e) = t.join() {
                first_err.get_or_insert(format!("shard {i}: {e}"));
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Starts the shards. `make_handler` builds each shard's handler on that
/// shard's thread, so handlers may hold `Rc` state.
pub fn start<F, H>(config: Config, make_handler: F) -> Result<ServerHandle, StartError>
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

    let trigger = ShutdownTrigger::new();
    let mesh = new_mesh(n);
    let make_handler = Arc::new(make_handler);
    let shared_config = Arc::new(config.clone());
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut handle = ServerHandle {
        addrs,
        shards: Vec::with_capacity(n),
        trigger: trigger.clone(),
        threads: Vec::with_capacity(n),
    };
    for (id, sockets) in sockets.into_iter().enumerate() {
        let core = cores[id % cores.len()];
        let (config, shared_config, make, trigger, ready, mesh) = (
            config.clone(),
            shared_config.clone(),
            make_handler.clone(),
            trigger.clone(),
            ready_tx.clone(),
            mesh.clone(),
        );
        let spawned = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("edgeshard-{id}"))
            .io_memory(IO_MEMORY)
            .preempt_timer(PREEMPT_AFTER)
            .spawn(move || async move {
                if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                    let _ = ready.send(Err((id, format!("cannot pin to CPU {core}"))));
                    return;
                }
                let state = ShardState::new(id, core, &config);
                let mesh = match Mesh::join(mesh, state.clone()).await {
                    Ok(m) => m,
                    Err(why) => {
                        let _ = ready.send(Err((id, why)));
                        return;
                    }
                };
                let handler = make(&ShardContext {
                    state: state.clone(),
                    mesh,
                    config: shared_config,
                });
                run_shard(state, sockets, config, handler, trigger, ready).await;
            });
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

/// One shard's life: serve until the trigger fires, then drain.
async fn run_shard<H: Handler>(
    state: Rc<ShardState>,
    sockets: Vec<Socket>,
    config: Config,
    handler: H,
    trigger: ShutdownTrigger,
    ready: mpsc::Sender<Result<(), (usize, String)>>,
) {
    let handler = Rc::new(handler);
    let max_conns = config.max_conns.get() as u64;
    let slots = Rc::new(Semaphore::new(max_conns));
    let listeners = match register_listeners(sockets) {
        Ok(l) => l,
        Err(why) => {
            let _ = ready.send(Err((state.id, why)));
            return;
        }
    };
    let ticker = glommio::spawn_local(tick(state.clone(), listeners.0.clone()));
    let poller = glommio::spawn_local(listeners.0.run());
    let accepting: Vec<_> = listeners
        .1
        .into_iter()
        .map(|listener| {
            glommio::spawn_local(accept_loop(
                listener,
                state.clone(),
                handler.clone(),
                slots.clone(),
            ))
        })
        .collect();
    let _ = ready.send(Ok(()));
    drop(ready);

    trigger.wait().await;
    // Stop accepting: cancelling the loops drops (closes) the listeners.
    for task in accepting {
        task.cancel().await;
    }
    state.conns.begin_drain();
    let all_closed = async {
        let _ = slots.acquire(max_conns).await;
        true
    };
    let deadline = async {
        Timer::new(config.timeouts.drain).await;
        false
    };
    if !all_closed.or(deadline).await {
        state.conns.close_all();
        // Interrupted connections drop their sockets as soon as they run.
        let closed = async {
            let _ = slots.acquire(max_conns).await;
        };
        let grace = async {
            Timer::new(Duration::from_millis(100)).await;
        };
        closed.or(grace).await;
    }
    ticker.cancel().await;
    poller.cancel().await;
}

/// The shard's poller, with its listening sockets registered.
fn register_listeners(sockets: Vec<Socket>) -> Result<(Rc<Poller>, Vec<Registered>), String> {
    let poller = Poller::new().map_err(|e| format!("cannot create an epoll instance: {e}"))?;
    let listeners = sockets
        .into_iter()
        .map(|s| poller.register(s.into()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("cannot register a listening socket with epoll: {e}"))?;
    Ok((poller, listeners))
}

/// The shard's clock: advances the connection table's deadlines and the
/// cached Date. Socket events that have come in are delivered first, so a
/// connection whose data has arrived is not taken for a stalled one.
async fn tick(state: Rc<ShardState>, poller: Rc<Poller>) {
    let period = state.conns.tick_period();
    loop {
        Timer::new(period).await;
        poller.catch_up();
        state.conns.tick(Instant::now());
        state.date.refresh();
    }
}
