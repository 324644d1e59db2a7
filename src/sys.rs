//! The only `unsafe` in edgeshard, and every syscall wrapper: resource
//! limits, the socket calls (epoll, accept, recv, send, sendfile) and the
//! static-file calls (openat2, fstat, pread, getdents), mostly through
//! rustix's safe API. Each `unsafe` block says why it is sound.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::event::epoll;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit as RawRlimit};

/// A resource limit in bytes (or count); `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// The limit the kernel enforces now.
    pub soft: Option<u64>,
    /// The ceiling an unprivileged process may raise `soft` to.
    pub hard: Option<u64>,
}

/// Raises a limit's soft value to its hard value; returns the limit now in force.
fn raise_soft_to_hard(resource: Resource) -> io::Result<Rlimit> {
    let lim = getrlimit(resource);
    if lim.current != lim.maximum {
        setrlimit(
            resource,
            RawRlimit {
                current: lim.maximum,
                maximum: lim.maximum,
            },
        )?;
    }
    Ok(Rlimit {
        soft: lim.maximum,
        hard: lim.maximum,
    })
}

/// Raises RLIMIT_MEMLOCK's soft limit to its hard limit and returns the
/// limit now in force. io_uring registered buffers are charged against it.
pub fn raise_memlock() -> io::Result<Rlimit> {
    raise_soft_to_hard(Resource::Memlock)
}

/// Raises RLIMIT_NOFILE's soft limit to its hard limit (like nginx's
/// `worker_rlimit_nofile`): every connection is a descriptor, and the common
/// soft default of 1024 is far below `--max-conns`. Returns the soft limit
/// now in force.
pub fn raise_nofile() -> io::Result<Option<u64>> {
    raise_soft_to_hard(Resource::Nofile).map(|l| l.soft)
}

/// Turns transparent huge pages off for this process (`PR_SET_THP_DISABLE`).
/// A server's heap is many small objects; with 2 MiB pages one touched byte
/// makes 2 MiB resident, so idle connections would cost whatever page the
/// allocator last touched rather than what they hold. mimalloc is also built
/// without its own `MADV_HUGEPAGE` calls (the `no_thp` feature); this covers
/// hosts whose THP mode is `always`.
pub fn disable_huge_pages() -> io::Result<()> {
    rustix::thread::disable_transparent_huge_pages(true).map_err(io::Error::from)
}

/// The bytes as a `str` if they are ASCII, else `""`. A SIMD `is_ascii`
/// check is far cheaper than `str::from_utf8` on the short fields of a
/// request head, which the parser has already checked to be ASCII.
#[inline]
pub fn ascii_str(bytes: &[u8]) -> &str {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8, and we just checked them.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    } else {
        ""
    }
}

// ---------------------------------------------------------------------------
// Static files: opening beneath a root, metadata, sendfile.

/// How files are opened beneath a mount's root directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: the kernel
    /// refuses any path, `..` or symlink that leads outside the root.
    Openat2,
    /// For kernels without openat2 (before 5.6): the path is resolved with
    /// `realpath`, checked to lie under the root's real path, and the
    /// result opened with `O_NOFOLLOW`. A symlink swapped in between the
    /// check and the open could still escape; openat2 has no such window.
    PathWalk,
}

fn open_flags() -> rustix::fs::OFlags {
    use rustix::fs::OFlags;
    // O_NONBLOCK: opening a FIFO must not block the shard; it has no effect
    // on regular files. O_NOCTTY: a terminal device never becomes ours.
    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY
}

/// Whether this kernel has openat2 (probed once by opening `.` of `root`).
pub fn detect_resolver(root: std::os::fd::BorrowedFd<'_>) -> Resolver {
    use rustix::fs::{Mode, ResolveFlags};
    match rustix::fs::openat2(
        root,
        ".",
        open_flags(),
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    ) {
        // ENOSYS: no openat2; EPERM: a seccomp filter that predates it.
        Err(e) if e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::PERM => {
            Resolver::PathWalk
        }
        _ => Resolver::Openat2,
    }
}

/// Opens the directory `path` (for a mount's root), read-only.
pub fn open_dir(path: &std::path::Path) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens `rel` (relative, no leading `/`; empty for the root itself)
/// beneath `root`. `root_path` is the root's canonical path, used only by
/// [`Resolver::PathWalk`]. Symlinks inside the root work; one that leads
/// outside fails with `EXDEV` (openat2) or `EACCES` (path walk).
pub fn open_beneath(
    resolver: Resolver,
    root: std::os::fd::BorrowedFd<'_>,
    root_path: &std::path::Path,
    rel: &[u8],
) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use std::os::unix::ffi::OsStrExt;
    let rel = if rel.is_empty() { &b"."[..] } else { rel };
    match resolver {
        Resolver::Openat2 => Ok(rustix::fs::openat2(
            root,
            rel,
            open_flags(),
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        )?),
        Resolver::PathWalk => {
            let real = std::fs::canonicalize(root_path.join(std::ffi::OsStr::from_bytes(rel)))?;
            if !real.starts_with(root_path) {
                return Err(io::Error::from_raw_os_error(libc::EACCES));
            }
            Ok(rustix::fs::open(
                &real,
                open_flags() | OFlags::NOFOLLOW,
                Mode::empty(),
            )?)
        }
    }
}

/// What the static-file cache needs to know about an open file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    /// A regular file.
    pub is_file: bool,
    /// A directory.
    pub is_dir: bool,
    /// Size in bytes.
    pub size: u64,
    /// Inode number: with size and mtime, what the ETag is made of.
    pub ino: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Nanoseconds part of the modification time.
    pub mtime_nsec: u32,
}

/// `fstat` of an open file.
pub fn file_meta(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<FileMeta> {
    let st = rustix::fs::fstat(fd)?;
    let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
    Ok(FileMeta {
        is_file: kind == rustix::fs::FileType::RegularFile,
        is_dir: kind == rustix::fs::FileType::Directory,
        size: st.st_size.max(0) as u64,
        ino: st.st_ino,
        mtime: st.st_mtime as i64,
        mtime_nsec: st.st_mtime_nsec as u32,
    })
}

/// Reads up to `buf.len()` bytes at `offset`; fewer only at end of file.
pub fn pread_full(
    fd: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
    mut offset: u64,
) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(fd, &mut buf[done..], offset) {
            Ok(0) => break,
            Ok(n) => {
                done += n;
                offset += n as u64;
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

/// The names and kinds (directory or not) in an open directory.
pub fn read_dir_names(
    fd: std::os::fd::BorrowedFd<'_>,
    limit: usize,
) -> io::Result<Vec<(Vec<u8>, bool)>> {
    let mut dir = rustix::fs::Dir::read_from(fd)?;
    let mut out = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if out.len() == limit {
            break;
        }
        let is_dir = entry.file_type() == rustix::fs::FileType::Directory;
        out.push((name.to_vec(), is_dir));
    }
    Ok(out)
}

/// A new epoll instance (close-on-exec).
pub fn epoll_create() -> io::Result<OwnedFd> {
    Ok(epoll::create(epoll::CreateFlags::CLOEXEC)?)
}

/// Registers `fd` with `epoll`, edge-triggered, for input, output, the
/// peer's half-close and errors; events carry `token`.
pub fn epoll_add(epoll_fd: BorrowedFd<'_>, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
    use epoll::EventFlags as F;
    epoll_add_with(epoll_fd, fd, token, F::IN | F::OUT | F::RDHUP | F::ET)
}

/// Adds a listening socket: readable edges only, and exclusive
/// (`EPOLLEXCLUSIVE`): when several shards' epolls hold one socket (a
/// socket-activated one, or one an upgrade shares for a moment) a new
/// connection wakes one shard that is waiting, not all of them.
pub fn epoll_add_listener(
    epoll_fd: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
    token: u64,
) -> io::Result<()> {
    use epoll::EventFlags as F;
    epoll_add_with(epoll_fd, fd, token, F::IN | F::ET | F::EXCLUSIVE)
}

/// Takes a descriptor out of an epoll.
pub fn epoll_del(epoll_fd: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(epoll::delete(epoll_fd, fd)?)
}

fn epoll_add_with(
    epoll_fd: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
    token: u64,
    flags: epoll::EventFlags,
) -> io::Result<()> {
    Ok(epoll::add(
        epoll_fd,
        fd,
        epoll::EventData::new_u64(token),
        flags,
    )?)
}

/// What one epoll event says about a registered descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The `token` it was registered with.
    pub token: u64,
    /// Input, an error, or a hang-up: a read will not wait.
    pub read: bool,
    /// Room to send, an error, or a hang-up: a write will not wait.
    pub write: bool,
    /// The peer has shut down its side, or the socket failed: after the
    /// data already queued, reads return end of stream (or the error)
    /// without a further edge.
    pub closed: bool,
}

/// Takes the events ready within `ms` milliseconds into `events`, replacing
/// what it held: with 0, those ready now; else it blocks the thread until
/// the first comes or the time is up.
pub fn epoll_wait_ms(
    epoll_fd: BorrowedFd<'_>,
    events: &mut epoll::EventVec,
    ms: u16,
) -> io::Result<()> {
    Ok(epoll::wait(epoll_fd, events, i32::from(ms))?)
}

/// The readiness an event reports.
pub fn readiness(event: &epoll::Event) -> Readiness {
    use epoll::EventFlags as F;
    let flags = event.flags;
    let closed = flags.intersects(F::RDHUP | F::HUP | F::ERR);
    Readiness {
        token: event.data.u64(),
        read: closed || flags.contains(F::IN),
        write: flags.intersects(F::OUT | F::HUP | F::ERR),
        closed,
    }
}

/// A second descriptor for the same open file (close-on-exec).
pub fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(fd, 0)?)
}

/// glommio's stream over `fd`, which it takes. glommio arms an io_uring
/// readiness poll on the descriptor as the stream is made; the poller uses
/// that to park on its epoll (see [`crate::poller`]). Must be called on a
/// glommio executor.
pub fn glommio_stream(fd: OwnedFd) -> glommio::net::TcpStream {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` was just released by an `OwnedFd`, so it is open and
    // owned by nothing else; the stream now owns it and closes it on drop.
    // glommio assumes a socket but only ever polls it, calls `recv` on it
    // (which fails with ENOTSOCK on anything else: an error, not UB) and
    // closes it.
    unsafe { glommio::net::TcpStream::from_raw_fd(raw) }
}

/// Accepts a connection: non-blocking, close-on-exec. The peer's address
/// comes with it (from the same `accept4` call); `None` for a socket that
/// is not IPv4 or IPv6.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<(OwnedFd, Option<SocketAddr>)> {
    use rustix::net::SocketFlags;
    let (fd, peer) =
        rustix::net::acceptfrom_with(listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
    Ok((fd, peer.and_then(inet)))
}

/// The local address a socket is bound to (`getsockname`).
pub fn local_addr(sock: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    let addr = rustix::net::getsockname(sock)?;
    inet(addr).ok_or_else(|| io::Error::other("not an IPv4 or IPv6 socket"))
}

fn inet(addr: rustix::net::SocketAddrAny) -> Option<SocketAddr> {
    match addr {
        rustix::net::SocketAddrAny::V4(a) => Some(SocketAddr::V4(a)),
        rustix::net::SocketAddrAny::V6(a) => Some(SocketAddr::V6(a)),
        _ => None,
    }
}

/// A non-blocking, close-on-exec TCP socket with a connect to `addr`
/// under way (or, on loopback, perhaps already done): see
/// [`connect_finished`].
pub fn connect_start(addr: SocketAddr) -> io::Result<OwnedFd> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let fd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) | Err(rustix::io::Errno::INPROGRESS) => Ok(fd),
        Err(e) => Err(e.into()),
    }
}

/// Whether a connect begun by [`connect_start`] has finished: `Ok` once
/// connected, its error if it failed, `WouldBlock` while under way.
pub fn connect_finished(sock: BorrowedFd<'_>) -> io::Result<()> {
    rustix::net::sockopt::get_socket_error(sock)??;
    match rustix::net::getpeername(sock) {
        Ok(_) => Ok(()),
        Err(rustix::io::Errno::NOTCONN) => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(e.into()),
    }
}

/// Turns off Nagle's algorithm: responses leave as soon as they are written.
pub fn set_nodelay(sock: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::net::sockopt::set_tcp_nodelay(sock, true)?)
}

/// Whether an idle connection can take a request: open, with nothing
/// to read (a peek that would block). A FIN, an error or stray bytes
/// (a late response, a close notice) mean it cannot.
pub fn idle_and_open(sock: BorrowedFd<'_>) -> bool {
    let mut byte = [0u8; 1];
    let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
    matches!(
        rustix::net::recv(sock, &mut byte, flags),
        Err(rustix::io::Errno::AGAIN)
    )
}

/// `recv` without waiting.
pub fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::net::recv(
        sock,
        buf,
        rustix::net::RecvFlags::DONTWAIT,
    )?)
}

/// `recv` without waiting, of up to `want` bytes onto the end of `buf`,
/// into its spare capacity as it is: nothing is zeroed first. Reads less
/// than `want` if `buf` has less room (the caller reserves).
pub fn recv_onto(
    sock: BorrowedFd<'_>,
    buf: &mut bytes::BytesMut,
    want: usize,
) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let room = spare.len().min(want);
    let (filled, _) =
        rustix::net::recv_uninit(sock, &mut spare[..room], rustix::net::RecvFlags::DONTWAIT)?;
    let n = filled.len();
    // SAFETY: `recv_uninit` initialised the first `n` bytes of the spare
    // capacity (`filled`), which directly follow the `len()` bytes already
    // initialised, and `n <= room <= capacity - len`.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// `send` without waiting or SIGPIPE; with `more`, `MSG_MORE`: the kernel
/// holds a partial segment back because more (a sendfile body) follows.
pub fn send(sock: BorrowedFd<'_>, buf: &[u8], more: bool) -> io::Result<usize> {
    use rustix::net::SendFlags;
    let mut flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
    if more {
        flags |= SendFlags::MORE;
    }
    Ok(rustix::net::send(sock, buf, flags)?)
}

/// Shuts down the write side (FIN after all queued data).
pub fn shutdown_write(sock: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::net::shutdown(sock, rustix::net::Shutdown::Write)?)
}

/// `sendfile(sock, file, &offset, count)` on a non-blocking socket; the
/// offset advances by what was sent. `WouldBlock` when the socket is full.
pub fn sendfile(
    sock: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    Ok(rustix::fs::sendfile(sock, file, Some(offset), count)?)
}

/// Seconds since the Unix epoch, from `CLOCK_REALTIME` (a vDSO read);
/// 0 for a clock set before 1970.
pub fn unix_secs() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    u64::try_from(t.tv_sec).unwrap_or(0)
}

/// A cheap monotonic clock in milliseconds (`CLOCK_MONOTONIC_COARSE`,
/// a vDSO read of the last tick): for cache freshness, not for deadlines.
pub fn coarse_millis() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    t.tv_sec as u64 * 1000 + t.tv_nsec as u64 / 1_000_000
}

/// Registers the process for private expedited memory barriers, which
/// glommio's executors use (the first one registers otherwise). With more
/// than one thread in the process the kernel makes registration wait for
/// an RCU grace period (10 ms on this machine, a third of start-up); with
/// one it does not. So it is done first thing, before any thread exists;
/// later calls return at once. Best effort: glommio falls back without it.
pub fn register_membarrier() {
    let _ =
        rustix::process::membarrier(rustix::process::MembarrierCommand::RegisterPrivateExpedited);
}

/// Takes ownership of descriptor `raw`, handed to this process at exec
/// (socket activation, a binary upgrade), if it is open. Call it at most
/// once per number: the descriptor is closed when the result drops.
pub fn adopt_fd(raw: i32) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    if raw < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: `fcntl(F_GETFD)` only reads the descriptor's flags; on a
    // number that is not open it fails with EBADF and touches nothing.
    if unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is open (checked above) and was handed to this process
    // by its parent for it to own; nothing else in the process knows the
    // number (the callers take each one once, at start-up, from the
    // environment naming it), so the `OwnedFd` is its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Sets or clears close-on-exec (clears it on descriptors a child started
/// with exec is to inherit).
pub fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = match on {
        true => rustix::io::FdFlags::CLOEXEC,
        false => rustix::io::FdFlags::empty(),
    };
    Ok(rustix::io::fcntl_setfd(fd, flags)?)
}

/// The address of a listening TCP socket; an error saying what else it is.
pub fn listening_tcp_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    use rustix::net::sockopt;
    let not = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
    if sockopt::get_socket_type(fd).map_err(|_| not("not a socket"))?
        != rustix::net::SocketType::STREAM
    {
        return Err(not("not a stream socket"));
    }
    let addr = local_addr(fd).map_err(|_| not("not an IPv4 or IPv6 socket"))?;
    if !sockopt::get_socket_acceptconn(fd)? {
        return Err(not("not listening"));
    }
    Ok(addr)
}

/// Makes a descriptor non-blocking (sockets handed over may be blocking).
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    Ok(rustix::fs::fcntl_setfl(
        fd,
        flags | rustix::fs::OFlags::NONBLOCK,
    )?)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use bytes::BytesMut;

    #[test]
    fn recv_onto_appends_what_arrived_within_want_and_room() {
        let (mut tx, rx) = UnixStream::pair().expect("socketpair");
        let mut buf = BytesMut::with_capacity(8);
        buf.extend_from_slice(b"ab");
        tx.write_all(b"cdefghijkl").expect("write");
        // Up to `want`.
        assert_eq!(super::recv_onto(rx.as_fd(), &mut buf, 3).expect("recv"), 3);
        assert_eq!(&buf[..], b"abcde");
        // Up to the room left (8 - 5), however much is wanted.
        assert_eq!(
            super::recv_onto(rx.as_fd(), &mut buf, 100).expect("recv"),
            3
        );
        assert_eq!(&buf[..], b"abcdefgh");
        buf.reserve(16);
        assert_eq!(super::recv_onto(rx.as_fd(), &mut buf, 16).expect("recv"), 4);
        assert_eq!(&buf[..], b"abcdefghijkl");
        // Nothing there: would block, and the buffer is as it was.
        let err = super::recv_onto(rx.as_fd(), &mut buf, 16).expect_err("empty");
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        assert_eq!(&buf[..], b"abcdefghijkl");
        // End of stream.
        drop(tx);
        assert_eq!(super::recv_onto(rx.as_fd(), &mut buf, 16).expect("eof"), 0);
        assert_eq!(buf.len(), 12);
    }
}
