//! edgeshard: a thread-per-core HTTP/1.1 origin server and library for Linux
//! edge nodes, built on io_uring with glommio.
//!
//! ```text
//!  kernel: SO_REUSEPORT spreads new connections over the shards' listeners
//!    │
//!  daemon     ── flags → Config → prepare (open mounts) → start shards → signals
//!  shard      ── one glommio LocalExecutor per core, pinned; builds, in order,
//!    │            its poller, metrics, connection state and mesh end, then the
//!    │            app's handler (ShardContext), then serves
//!    │  listener  ── accept loop, connection cap, EMFILE back-off; ConnInfo
//!    │  conn      ── read → parse → respond (handler) → write → end;
//!    │                 pipelined requests answered in one write
//!    │  poller    ── the shard's edge-triggered epoll: accepted, listening and
//!    │                 handlers' own sockets wait on it, via the Transport trait
//!    │  http      ── request heads (httparse + RFC 9112 rules), bodies, encode, Date
//!    │  route     ── routes!'s compile-time table (Go ServeMux semantics) → handler
//!    │  handler   ── async fn(Request) -> impl IntoResponse │ static_files (cache, sendfile)
//!    ▼
//!  kernel: send / sendfile
//! ```
//!
//! Modules import downward only (`module_cycles.py` finds no cycle); from
//! the top:
//!
//! | module | owns |
//! |---|---|
//! | [`daemon`] | the process: flags → config → start → signals; the binaries call [`daemon::main`] |
//! | [`builtin`] | the binary's own API: `/healthz`, `/api/stats`, `/api/echo` |
//! | `shard` | executors, pinning, start order, drain; [`ShardContext`] for the app factory |
//! | [`mesh`] | messages between shards (stats gathered for `/api/stats`) |
//! | `listener` | socket setup (reuseport, backlog, in-use probe), accept loop, cap |
//! | [`config`] | flags as written ([`config::Flags`]) → validated [`Config`] → prepared (mounts open) |
//! | [`access_log`] | the access log: line formats, each shard's buffer, the file and stdout writers, SIGHUP reopening |
//! | `conn` | the connection by stage (`read`, `respond`, `write`, `end`), its deadline `table` and [`Timeouts`](config::Timeouts), what a shard's connections share (`shared`), buffer `pool`s |
//! | [`proxy`] | the reverse proxy: mounts, per-shard upstream pools, balancing, passive health, streamed bodies, tunnels |
//! | [`static_files`] | mounts, path safety, file cache, conditionals, ranges, precompressed variants, the embedded site |
//! | [`route`] | [`routes!`]'s compiled table and the [`route::Router`] handler |
//! | [`json`] | [`Json`] responses and [`Request::json`] bodies |
//! | `handler` | the [`Handler`] trait, [`Request`] with its route pattern and [`ConnInfo`] (kept in a per-shard registry), [`RequestBody`] for bodies read as they arrive |
//! | `future`, `response` | named response futures; [`Response`] (with [`Response::error`], [`Response::redirect`]), [`Body`], [`IntoResponse`] |
//! | [`poller`] | the shard's epoll and its [`poller::Socket`]s |
//! | `transport` | the [`Transport`] trait a connection is served over |
//! | `deadline` | deadlines of a second or more, swept by the shard's tick |
//! | [`metrics`] | per-shard counters in `Cell`s |
//! | [`http`] | request heads (`head`, `parse`) with their [`Extensions`], bodies (chunked), response heads (`encode`; upstream ones in [`http::client`]), Date, status codes, [`http::Limits`] |
//! | `shutdown`, `log` | the drain trigger; one-line messages prefixed with the program's name |
//! | `sys` | the only `unsafe`, and every syscall wrapper: rlimits, epoll, accept, openat2, sendfile, `MSG_MORE` |
//!
//! Nothing on the request path is shared between shards: each owns its
//! listeners, poller, buffers, Date cache, connection table and counters.
//!
//! ```no_run
//! use edgeshard::{Config, Request, Response};
//!
//! let server = edgeshard::start(Config::default(), |_shard| {
//!     |req: Request| async move { Response::text(format!("you asked for {}", req.path())) }
//! })?;
//! server.join()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

// Lets `routes!` (which names `::edgeshard::...`) be used inside this crate.
extern crate self as edgeshard;

pub mod access_log;
pub mod admin;
pub mod builtin;
pub mod config;
mod conn;
pub mod daemon;
mod deadline;
mod future;
mod handler;
pub mod http;
pub mod json;
mod listener;
mod log;
pub mod mesh;
pub mod metrics;
pub mod middleware;
pub mod poller;
pub mod proxy;
mod response;
pub mod route;
mod shard;
mod shutdown;
pub mod static_files;
#[allow(unsafe_code)]
mod sys;
mod transport;

pub use config::Config;
pub use edgeshard_macros::routes;
pub use handler::{
    streaming as handler_streaming, BodyReadError, ConnInfo, Handler, Request, RequestBody,
    RouteParams, Streaming,
};
pub use http::Extensions;
pub use http::{Method, StatusCode, Version};
pub use json::Json;
pub use listener::{BindError, Handover, Inherited};
pub use response::{
    Body, FileBody, FilePart, IntoResponse, RelayBody, Response, Upgraded, OCTET_STREAM, TEXT_PLAIN,
};
pub use shard::{
    start, start_handed, start_prepared, Heartbeats, Reloaded, Reloader, ServerHandle,
    ShardContext, ShardInfo, StartError,
};
pub use shutdown::ShutdownTrigger;
pub use transport::{LocalWake, Transport};

/// Not part of the API: what this crate's tests and benchmarks reach
/// inside for (the connection over an in-memory transport, the parsers on
/// bytes). Anything here may change without notice.
#[doc(hidden)]
pub mod internals {
    pub use crate::conn::{serve_connection, Shared};
    pub use crate::http::body::ChunkedDecoder;
    pub use crate::http::parse::parse_head;
}
