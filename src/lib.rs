//! edgeshard: a thread-per-core HTTP/1.1 origin server and library for Linux
//! edge nodes, built on io_uring with glommio.
//!
//! ```text
//!  kernel: SO_REUSEPORT spreads new connections over the shards' listeners
//!    │
//!  shard (one glommio LocalExecutor per core, pinned with core_affinity)
//!    │  listener  ── accept loop, connection cap, EMFILE back-off
//!    │  conn      ── one task per connection: read → parse → body → handler → write
//!    │                 pipelined requests parsed from one read, answered in one write
//!    │  http      ── httparse on a BytesMut; heads keep offsets into frozen Bytes
//!    │  route     ── compile-time trie → handler; unmatched paths → static files
//!    │  handler   ── async fn(Request) -> impl IntoResponse │ static files (cache, sendfile)
//!    │  encode    ── status line + headers into the connection's write buffer
//!    ▼
//!  kernel: send / sendfile
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`builtin`] | the binary's own API: `/healthz`, `/api/stats`, `/api/echo` |
//! | [`config`] | command line as written → validated [`Config`] |
//! | [`shard`] | executors, CPU pinning, per-shard state, start-up and drain |
//! | [`listener`] | socket setup (reuseport, backlog, in-use probe), accept loop, cap |
//! | [`mesh`] | messages between shards (stats gathered for `/api/stats`) |
//! | [`shutdown`] | the cross-thread trigger that starts a graceful drain |
//! | [`conn`] | the connection state machine; `conn::table` holds deadlines |
//! | [`http`] | parse (heads), body (chunked), encode, date, status, errors |
//! | [`handler`] | the [`Handler`] trait and [`Request`] |
//! | [`response`] | [`Response`], [`Body`] and [`IntoResponse`] |
//! | [`json`] | [`Json`] responses and [`Request::json`] bodies |
//! | [`route`] | [`routes!`]'s compiled table and the [`route::Router`] handler |
//! | [`static_files`] | mounts, path safety, file cache, conditionals, ranges, precompressed variants, the embedded site |
//! | [`sys`] | the only `unsafe`, and every syscall wrapper: rlimits, fd hand-offs, openat2, sendfile, `MSG_MORE` |
//!
//! Nothing on the request path is shared between shards: each owns its
//! listeners, buffers, Date cache, connection table and counters.
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

// Lets `routes!` (which names `::edgeshard::...`) be used inside this crate.
extern crate self as edgeshard;

pub mod builtin;
pub mod config;
pub mod conn;
pub mod handler;
pub mod http;
pub mod json;
pub mod listener;
pub mod mesh;
pub mod poller;
pub mod response;
pub mod route;
pub mod shard;
pub mod shutdown;
pub mod static_files;
pub mod sys;

pub use config::Config;
pub use conn::{serve_connection, Transport};
pub use edgeshard_macros::routes;
pub use handler::{Handler, Request};
pub use http::{Method, StatusCode, Version};
pub use json::Json;
pub use response::{Body, IntoResponse, Response};
pub use shard::{start, ServerHandle, ShardContext, ShardInfo, StartError};
pub use shutdown::ShutdownTrigger;
