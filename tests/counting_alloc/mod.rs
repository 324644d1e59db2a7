//! A global allocator that counts allocations (per thread and in total)
//! and live bytes, forwarding to the system allocator: for the tests that
//! prove a path allocates nothing, or measure what a connection holds.
//! Test-only, so it is not in the library (whose `unsafe` is confined to
//! its syscall module); the server itself uses mimalloc.
#![allow(dead_code, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator;

static TOTAL_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

std::thread_local! {
    // Const-initialised and without a destructor: safe to touch from inside
    // the allocator (it never allocates itself).
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

impl CountingAllocator {
    /// Allocations (including reallocations) by every thread so far.
    pub fn total() -> u64 {
        TOTAL_ALLOCATIONS.load(Ordering::Relaxed)
    }

    /// Allocations (including reallocations) by the calling thread so far.
    pub fn this_thread() -> u64 {
        THREAD_ALLOCATIONS.try_with(|c| c.get()).unwrap_or(0)
    }

    /// Bytes allocated and not yet freed, by every thread (requested
    /// sizes, without the allocator's own rounding and overhead).
    pub fn live_bytes() -> i64 {
        LIVE_BYTES.load(Ordering::Relaxed)
    }

    fn count() {
        TOTAL_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        let _ = THREAD_ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }

    fn live(delta: i64) {
        LIVE_BYTES.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; counting touches only an
// atomic and a const thread-local, neither of which allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count();
        Self::live(layout.size() as i64);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count();
        Self::live(layout.size() as i64);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::live(-(layout.size() as i64));
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count();
        Self::live(new_size as i64 - layout.size() as i64);
        // SAFETY: `ptr`/`layout` came from `System` through us; the caller
        // upholds `realloc`'s contract for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
