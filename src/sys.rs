//! The only `unsafe` in edgeshard, plus the thin syscall wrappers around it:
//! resource limits and fd hand-offs that the safe crates we use do not cover.
//! Each `unsafe` block says why it is sound.

use std::io;
use std::os::fd::{FromRawFd, IntoRawFd};

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit as RawRlimit};

/// A resource limit in bytes (or count); `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// The limit the kernel enforces now.
    pub soft: Option<u64>,
    /// The ceiling an unprivileged process may raise `soft` to.
    pub hard: Option<u64>,
}

/// Raises RLIMIT_MEMLOCK's soft limit to its hard limit and returns the
/// limit now in force. io_uring registered buffers are charged against it.
pub fn raise_memlock() -> io::Result<Rlimit> {
    let lim = getrlimit(Resource::Memlock);
    let raised = RawRlimit {
        current: lim.maximum,
        maximum: lim.maximum,
    };
    if lim.current != lim.maximum {
        setrlimit(Resource::Memlock, raised.clone())?;
    }
    Ok(Rlimit {
        soft: raised.current,
        hard: raised.maximum,
    })
}

/// Wraps a bound, listening socket as glommio's listener. Must be called on
/// the glommio executor that will accept from it.
pub fn glommio_listener(socket: socket2::Socket) -> glommio::net::TcpListener {
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` was just released by `socket`, so we own it exclusively;
    // it is a bound, listening TCP socket, which is what glommio expects,
    // and glommio's listener closes it on drop.
    unsafe { glommio::net::TcpListener::from_raw_fd(fd) }
}
