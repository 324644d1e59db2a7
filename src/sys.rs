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

/// Wraps a bound, listening socket as glommio's listener. Must be called on
/// the glommio executor that will accept from it.
pub fn glommio_listener(socket: socket2::Socket) -> glommio::net::TcpListener {
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` was just released by `socket`, so we own it exclusively;
    // it is a bound, listening TCP socket, which is what glommio expects,
    // and glommio's listener closes it on drop.
    unsafe { glommio::net::TcpListener::from_raw_fd(fd) }
}

/// A global allocator that counts allocations (per thread and in total) and
/// forwards them to the system allocator. For tests and benchmarks that
/// prove a path allocates nothing; the server itself uses mimalloc.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator;

static TOTAL_ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

std::thread_local! {
    // Const-initialised and without a destructor: safe to touch from inside
    // the allocator (it never allocates itself).
    static THREAD_ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl CountingAllocator {
    /// Allocations (including reallocations) by every thread so far.
    pub fn total() -> u64 {
        TOTAL_ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Allocations (including reallocations) by the calling thread so far.
    pub fn this_thread() -> u64 {
        THREAD_ALLOCATIONS.try_with(|c| c.get()).unwrap_or(0)
    }

    fn count() {
        TOTAL_ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = THREAD_ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every method forwards to `std::alloc::System` with the caller's
// arguments unchanged, so `System`'s guarantees carry over; counting touches
// only an atomic and a const thread-local, neither of which allocates.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        Self::count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract for `layout`.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        Self::count();
        // SAFETY: as for `alloc`.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        Self::count();
        // SAFETY: `ptr`/`layout` came from `System` through us; the caller
        // upholds `realloc`'s contract for `new_size`.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}
