//! The integration tests that share a process: raw bytes over real
//! sockets, real clients, the binary itself. One binary rather than one
//! per file: CI links it once and its tests run side by side (a clean
//! `cargo test` took 3 min 34 s as eleven binaries, 3 min 8 s as one).
//!
//! Kept apart, each in a binary of its own: `alloc.rs` and
//! `idle_memory.rs` (they install a counting global allocator),
//! `idle_cpu.rs` and `static_timing.rs` (they measure the process's CPU
//! time, which must be theirs alone), `compile_fail.rs` (it runs the
//! compiler for a minute), and `panic_log.rs` (it points stderr at a file).

#[path = "../common/mod.rs"]
mod common;
#[path = "../static_common/mod.rs"]
mod static_common;

mod access_log;
mod api;
mod auth;
mod bad_input;
mod browser;
mod clients;
mod compress;
mod corners;
mod lifecycle;
mod metrics;
mod middleware;
mod process;
mod proxy;
mod request_facts;
mod routes;
mod static_files;
mod timeouts;
mod wire;
