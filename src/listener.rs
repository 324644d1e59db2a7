//! Listening sockets and the accept loop.
//!
//! Sockets are built here with socket2 rather than by glommio, whose `bind`
//! hard-codes a backlog of 1024 and would silently share a port another
//! process already serves: before binding our SO_REUSEPORT sockets we probe
//! the address with a plain socket, which fails if anyone listens there.
//!
//! Or they are not built at all: systemd (socket activation) or the
//! process being upgraded hands them over at exec (`Inherited`), and they
//! are dealt out to the shards without closing any. `Handover` keeps a
//! duplicate of every listening socket for the next upgrade.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::rc::Rc;
use std::time::Duration;

use glommio::sync::Semaphore;
use glommio::timer::Timer;
use socket2::{Domain, Protocol, Socket as RawSocket, Type};

use crate::conn::{serve_holding, Shared};
use crate::handler::{ConnInfo, Handler, Swappable};
use crate::log;
use crate::poller::Socket;

/// Pause after accept fails for lack of file descriptors or memory: long
/// enough not to spin, short enough to resume quickly once fds free up.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Why listening failed.
#[derive(Debug)]
pub enum BindError {
    /// Another process already serves this address.
    InUse(SocketAddr),
    /// Any other socket error, with the address and the step that failed.
    Io(SocketAddr, &'static str, io::Error),
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::InUse(a) => write!(
                f,
                "address {a} is already in use by another process; stop it or choose another --listen"
            ),
            BindError::Io(a, step, e) => write!(f, "cannot {step} {a}: {e}"),
        }
    }
}

impl std::error::Error for BindError {}

/// Binds `shards` SO_REUSEPORT listeners on each address. Returns the
/// addresses as bound (port 0 resolved) and, per shard, one socket per address.
pub(crate) fn bind_all(
    addrs: &[SocketAddr],
    shards: usize,
    backlog: u32,
) -> Result<(Vec<SocketAddr>, Vec<Vec<RawSocket>>), BindError> {
    let mut bound = Vec::with_capacity(addrs.len());
    let mut per_shard: Vec<Vec<RawSocket>> = (0..shards).map(|_| Vec::new()).collect();
    for &addr in addrs {
        let addr = probe(addr)?;
        for sockets in per_shard.iter_mut() {
            sockets.push(reuseport_listener(addr, backlog)?);
        }
        bound.push(addr);
    }
    Ok((bound, per_shard))
}

/// Binds a socket without SO_REUSEPORT: it fails if anyone listens on the
/// address. Returns the address with port 0 resolved; the socket is closed.
fn probe(addr: SocketAddr) -> Result<SocketAddr, BindError> {
    let sock = new_socket(addr)?;
    if let Err(e) = sock.bind(&addr.into()) {
        return Err(match e.kind() {
            io::ErrorKind::AddrInUse => BindError::InUse(addr),
            _ => BindError::Io(addr, "bind", e),
        });
    }
    sock.local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| {
            BindError::Io(
                addr,
                "read the bound address of",
                io::Error::other("not an inet socket"),
            )
        })
}

fn new_socket(addr: SocketAddr) -> Result<RawSocket, BindError> {
    let domain = Domain::for_address(addr);
    let sock = RawSocket::new(domain, Type::STREAM.cloexec(), Some(Protocol::TCP))
        .map_err(|e| BindError::Io(addr, "create a socket for", e))?;
    // Lets a restarted server bind while old connections sit in TIME_WAIT.
    sock.set_reuse_address(true)
        .map_err(|e| BindError::Io(addr, "set SO_REUSEADDR on", e))?;
    Ok(sock)
}

fn reuseport_listener(addr: SocketAddr, backlog: u32) -> Result<RawSocket, BindError> {
    let sock = new_socket(addr)?;
    sock.set_reuse_port(true)
        .map_err(|e| BindError::Io(addr, "set SO_REUSEPORT on", e))?;
    sock.set_nonblocking(true)
        .map_err(|e| BindError::Io(addr, "set O_NONBLOCK on", e))?;
    sock.bind(&addr.into()).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => BindError::InUse(addr),
        _ => BindError::Io(addr, "bind", e),
    })?;
    sock.listen(backlog.min(i32::MAX as u32) as i32)
        .map_err(|e| BindError::Io(addr, "listen on", e))?;
    Ok(sock)
}

/// Accepts connections until the task is cancelled, one connection task per
/// accepted socket, at most `slots`' worth at once. `bound` is the address
/// the listener is bound to: each connection's local address, unless that
/// is a wildcard (`0.0.0.0`, `::`), when the connection's own is read
/// (one `getsockname` per connection).
pub(crate) async fn accept_loop<H: Handler>(
    listener: Socket,
    bound: SocketAddr,
    shared: Rc<Shared>,
    handler: Rc<Swappable<H>>,
    slots: Rc<Semaphore>,
) {
    let mut starved = false;
    loop {
        // At the cap this waits until a connection closes.
        let Ok(permit) = slots.acquire_static_permit(1).await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                starved = false;
                let local = if bound.ip().is_unspecified() {
                    stream.local_addr().unwrap_or(bound)
                } else {
                    bound
                };
                let info = ConnInfo::new(
                    peer.unwrap_or(ConnInfo::UNKNOWN.peer),
                    local,
                    shared.next_conn_id(),
                );
                let (shared, handler) = (shared.clone(), handler.clone());
                let serve = serve_holding(stream, info, shared, handler, permit);
                glommio::spawn_local(serve).detach();
            }
            Err(e) => {
                drop(permit);
                if is_transient(&e) {
                    continue;
                }
                // EMFILE, ENFILE, ENOBUFS, ENOMEM and the unexpected: say so
                // once per episode, keep serving, try again shortly.
                if !starved {
                    log::warning!(
                        "shard {}: accept failed: {e}; pausing accepts, existing connections are served",
                        shared.metrics.shard()
                    );
                    starved = true;
                }
                Timer::new(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Errors that concern only the one connection being accepted.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EINTR | libc::EAGAIN | libc::EPROTO | libc::EPERM)
    )
}

/// Names a handed-over socket goes by: `metrics` is the admin address
/// (`--metrics-listen`); any other name is a main listener.
pub const METRICS_NAME: &str = "metrics";
/// The upgrade's own variables: `fd:name,…`, and the pid of the process
/// that set them (only its direct child takes the descriptors).
const FDS_VAR: &str = "EDGESHARD_FDS";
const FDS_PARENT_VAR: &str = "EDGESHARD_FDS_PARENT";

/// Listening sockets this process was handed at exec instead of binding
/// its own: by systemd's socket activation (`LISTEN_PID`, `LISTEN_FDS`,
/// `LISTEN_FDNAMES`) or by the process it upgrades.
#[derive(Debug)]
pub struct Inherited {
    /// Who handed them over, for messages.
    pub from: &'static str,
    sockets: Vec<(RawSocket, SocketAddr, String)>,
}

impl Inherited {
    /// The sockets the environment hands over, if it does; the variables
    /// are removed so that no child of this process takes them for its
    /// own. An error names the variable or descriptor that is wrong.
    pub fn from_env() -> Result<Option<Inherited>, String> {
        let upgrade = std::env::var(FDS_VAR).ok();
        let parent = std::env::var(FDS_PARENT_VAR).ok();
        let listen_pid = std::env::var("LISTEN_PID").ok();
        let listen_fds = std::env::var("LISTEN_FDS").ok();
        let names = std::env::var("LISTEN_FDNAMES").ok();
        for var in [
            FDS_VAR,
            FDS_PARENT_VAR,
            "LISTEN_PID",
            "LISTEN_FDS",
            "LISTEN_FDNAMES",
        ] {
            std::env::remove_var(var);
        }
        if let Some(list) = upgrade {
            // Only for the child of the process that set it: a process
            // started by that child must not take descriptors it lacks.
            let ppid = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32);
            if parent.and_then(|p| p.parse::<u32>().ok()) != Some(ppid) {
                return Ok(None);
            }
            let mut fds = Vec::new();
            for item in list.split(',').filter(|s| !s.is_empty()) {
                let (fd, name) = item.split_once(':').unwrap_or((item, "listen"));
                let fd = fd
                    .parse::<i32>()
                    .map_err(|_| format!("{FDS_VAR}: {item:?} is not fd:name"))?;
                fds.push((fd, name.to_string()));
            }
            return Inherited::adopt("the process upgraded from", fds).map(Some);
        }
        let Some(count) = listen_fds else {
            return Ok(None);
        };
        // sd_listen_fds(3): the variables are for this process only.
        if listen_pid.and_then(|p| p.parse::<u32>().ok()) != Some(std::process::id()) {
            return Ok(None);
        }
        let count: i32 = count
            .parse()
            .ok()
            .filter(|&n| (1..=1024).contains(&n))
            .ok_or_else(|| format!("LISTEN_FDS={count:?} is not a count of descriptors"))?;
        let names: Vec<String> = names
            .map(|n| n.split(':').map(str::to_string).collect())
            .unwrap_or_default();
        let fds = (0..count)
            .map(|i| {
                let name = names.get(i as usize).cloned().unwrap_or_default();
                (3 + i, name)
            })
            .collect();
        Inherited::adopt("systemd (LISTEN_FDS)", fds).map(Some)
    }

    fn adopt(from: &'static str, fds: Vec<(i32, String)>) -> Result<Inherited, String> {
        let mut sockets = Vec::with_capacity(fds.len());
        let mut seen = Vec::with_capacity(fds.len());
        for (fd, name) in fds {
            // Each number once (it is closed when its owner drops), and
            // never stdin, stdout or stderr.
            if fd < 3 || seen.contains(&fd) {
                return Err(format!(
                    "descriptor {fd} from {from}: not a listening socket to take"
                ));
            }
            seen.push(fd);
            let owned = crate::sys::adopt_fd(fd)
                .map_err(|e| format!("descriptor {fd} from {from}: {e}"))?;
            let addr = crate::sys::listening_tcp_addr(owned.as_fd())
                .and_then(|a| {
                    crate::sys::set_cloexec(owned.as_fd(), true)?;
                    crate::sys::set_nonblocking(owned.as_fd())?;
                    Ok(a)
                })
                .map_err(|e| match name.as_str() {
                    "" => format!("descriptor {fd} from {from}: {e}"),
                    _ => format!("descriptor {fd} ({name:?}) from {from}: {e}"),
                })?;
            sockets.push((RawSocket::from(owned), addr, name));
        }
        Ok(Inherited { from, sockets })
    }

    /// The main listeners' addresses, in the order handed over.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for (_, a, name) in &self.sockets {
            if name != METRICS_NAME && !addrs.contains(a) {
                addrs.push(*a);
            }
        }
        addrs
    }

    /// Whether an admin (`metrics`) socket was handed over.
    pub fn has_metrics(&self) -> bool {
        self.sockets.iter().any(|(_, _, n)| n == METRICS_NAME)
    }

    /// Deals the main sockets out to `shards` shards: one address after
    /// another, each shard gets one socket or more of it. With at least
    /// as many sockets as shards (a reuseport group from an upgrade) each
    /// socket goes to one shard and none is closed (closing one would drop
    /// the connections queued on it); with fewer (systemd's one socket),
    /// shards share them, each with a descriptor of its own. Also returns
    /// the admin socket, if any.
    #[allow(clippy::type_complexity)]
    pub(crate) fn deal(
        self,
        shards: usize,
    ) -> Result<
        (
            Vec<SocketAddr>,
            Vec<Vec<(RawSocket, SocketAddr)>>,
            Option<(RawSocket, SocketAddr)>,
        ),
        BindError,
    > {
        let addrs = self.addrs();
        let mut per_shard: Vec<Vec<(RawSocket, SocketAddr)>> =
            (0..shards).map(|_| Vec::new()).collect();
        let mut admin = None;
        let mut by_addr: Vec<Vec<RawSocket>> = addrs.iter().map(|_| Vec::new()).collect();
        for (sock, addr, name) in self.sockets {
            if name == METRICS_NAME {
                admin.get_or_insert((sock, addr));
            } else if let Some(i) = addrs.iter().position(|a| *a == addr) {
                by_addr[i].push(sock);
            }
        }
        for (addr, socks) in addrs.iter().zip(by_addr) {
            let m = socks.len();
            if m >= shards {
                for (j, s) in socks.into_iter().enumerate() {
                    per_shard[j % shards].push((s, *addr));
                }
            } else {
                for (i, sockets) in per_shard.iter_mut().enumerate() {
                    let s = socks[i % m]
                        .try_clone()
                        .map_err(|e| BindError::Io(*addr, "duplicate the descriptor of", e))?;
                    sockets.push((s, *addr));
                }
            }
        }
        Ok((addrs, per_shard, admin))
    }
}

/// Descriptors of every listening socket a server uses, for a binary
/// upgrade to hand to the new process (close-on-exec until then).
#[derive(Debug, Default)]
pub struct Handover {
    fds: Vec<(std::os::fd::OwnedFd, &'static str)>,
}

impl Handover {
    pub(crate) fn push(&mut self, sock: &RawSocket, name: &'static str) -> io::Result<()> {
        self.fds.push((crate::sys::dup(sock.as_fd())?, name));
        Ok(())
    }

    /// How many descriptors.
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// Lets the descriptors pass an exec (`false`: close-on-exec again).
    pub fn set_inheritable(&self, inherit: bool) -> io::Result<()> {
        for (fd, _) in &self.fds {
            crate::sys::set_cloexec(fd.as_fd(), !inherit)?;
        }
        Ok(())
    }

    /// The variables that hand the descriptors to a child of this process.
    pub fn env(&self) -> [(&'static str, String); 2] {
        let list: Vec<String> = self
            .fds
            .iter()
            .map(|(fd, name)| format!("{}:{name}", fd.as_raw_fd()))
            .collect();
        [
            (FDS_VAR, list.join(",")),
            (FDS_PARENT_VAR, std::process::id().to_string()),
        ]
    }
}
