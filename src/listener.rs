//! Listening sockets and the accept loop.
//!
//! Sockets are built here with socket2 rather than by glommio, whose `bind`
//! hard-codes a backlog of 1024 and would silently share a port another
//! process already serves: before binding our SO_REUSEPORT sockets we probe
//! the address with a plain socket, which fails if anyone listens there.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use glommio::sync::Semaphore;
use glommio::timer::Timer;
use socket2::{Domain, Protocol, Socket as RawSocket, Type};

use crate::conn::{serve_holding, Shared};
use crate::handler::{ConnInfo, Handler};
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
    handler: Rc<H>,
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
