//! No heap allocation per request on the keep-alive path: the connection
//! state machine runs over an in-memory transport under a counting
//! allocator. Serving 10 100 requests must allocate exactly as often as
//! serving 100 (the difference would be per-request allocations).
//! The same transport counts `write` calls: a pipelined batch is one write.

use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

mod counting_alloc;

use counting_alloc::CountingAllocator;
use edgeshard::internals::{serve_connection, Shared};
use edgeshard::metrics::Metrics;
use edgeshard::{routes, Config, Handler, Request, Response, StatusCode};
use futures_lite::{AsyncRead, AsyncWrite};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

/// Hands out `request` once per read, `reads` times, then end of stream.
/// Writes are counted and the last one kept, without allocating.
struct ScriptedConn {
    request: &'static [u8],
    reads_left: usize,
    writes: usize,
    written: usize,
    last: [u8; 512],
    last_len: usize,
}

impl ScriptedConn {
    fn new(request: &'static [u8], reads: usize) -> ScriptedConn {
        ScriptedConn {
            request,
            reads_left: reads,
            writes: 0,
            written: 0,
            last: [0; 512],
            last_len: 0,
        }
    }
}

impl AsyncRead for ScriptedConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.reads_left == 0 {
            return Poll::Ready(Ok(0));
        }
        self.reads_left -= 1;
        let n = self.request.len();
        assert!(buf.len() >= n, "read buffer smaller than one request");
        buf[..n].copy_from_slice(self.request);
        Poll::Ready(Ok(n))
    }
}

impl edgeshard::Transport for ScriptedConn {}
impl edgeshard::Transport for &mut ScriptedConn {}

impl AsyncWrite for ScriptedConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.writes += 1;
        self.written += buf.len();
        let n = buf.len().min(512);
        self.last[..n].copy_from_slice(&buf[..n]);
        self.last_len = n;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

async fn healthz(req: Request) -> Response {
    if req.path() == "/healthz" {
        Response::text("ok")
    } else {
        Response::new(StatusCode::NOT_FOUND)
    }
}

/// Serves `reads` reads of `request` on one connection; returns the
/// allocations made on this thread and the finished transport.
fn serve(request: &'static [u8], reads: usize) -> (u64, ScriptedConn) {
    serve_with(healthz, request, reads)
}

fn serve_with<H: Handler>(handler: H, request: &'static [u8], reads: usize) -> (u64, ScriptedConn) {
    let config = Config::default();
    let metrics = Rc::new(Metrics::new(0, 0));
    let shard = Shared::new(config.limits, config.timeouts, metrics.clone(), None);
    let handler = Rc::new(handler);
    let mut conn = ScriptedConn::new(request, reads);
    let before = CountingAllocator::this_thread();
    futures_lite::future::block_on(serve_connection(&mut conn, shard.clone(), handler));
    let allocations = CountingAllocator::this_thread() - before;
    assert_eq!(
        metrics.requests(),
        (reads * request.windows(4).filter(|w| w == b"\r\n\r\n").count()) as u64
    );
    (allocations, conn)
}

const ONE: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\n\r\n";

#[test]
fn keep_alive_requests_allocate_nothing_per_request() {
    // Warm-up: the first connection pays for one-time lazy initialisation.
    serve(ONE, 10);
    let (few, _) = serve(ONE, 100);
    let (many, conn) = serve(ONE, 10_100);
    assert_eq!(
        many,
        few,
        "10 000 extra requests made {} extra allocations",
        many as i64 - few as i64
    );
    let last = String::from_utf8_lossy(&conn.last[..conn.last_len]).into_owned();
    assert!(
        last.starts_with("HTTP/1.1 200 OK\r\n") && last.ends_with("\r\n\r\nok"),
        "{last}"
    );
    assert_eq!(conn.writes, 10_100, "one write per keep-alive request");
}

/// Sixteen pipelined requests, delivered in one read.
const SIXTEEN: &[u8] =
    b"GET /healthz HTTP/1.1\r\nHost: b\r\n\r\nGET /healthz HTTP/1.1\r\nHost: b\r\n\r\n\
GET /healthz HTTP/1.1\r\nHost: b\r\n\r\nGET /healthz HTTP/1.1\r\nHost: b\r\n\r\n\
GET /healthz HTTP/1.1\r\nHost: b\r\n\r\nGET /healthz HTTP/1.1\r\nHost: b\r\n\r\n\
GET /healthz HTTP/1.1\r\nHost: b\r\n\r\nGET /healthz HTTP/1.1\r\nHost: b\r\n\r\n\
GET /healthz HTTP/1.1\r\nHost: b\r\n\r\nGET /healthz HTTP/1.1\r\nHost: b\r\n\r\n\
GET /healthz HTTP/1.1\r\nHost: b\r\n\r\nGET /healthz HTTP/1.1\r\nHost: b\r\n\r\n\
GET /healthz HTTP/1.1\r\nHost: b\r\n\r\nGET /healthz HTTP/1.1\r\nHost: b\r\n\r\n\
GET /healthz HTTP/1.1\r\nHost: b\r\n\r\nGET /healthz HTTP/1.1\r\nHost: b\r\n\r\n";

#[test]
fn a_pipelined_batch_is_answered_in_one_write_without_allocating() {
    serve(SIXTEEN, 2);
    let (few, _) = serve(SIXTEEN, 10);
    let (many, conn) = serve(SIXTEEN, 1_010);
    assert_eq!(many, few, "pipelined batches allocate per request");
    assert_eq!(
        conn.writes, 1_010,
        "each batch of 16 must leave in exactly one write"
    );
    let one_response = conn.written / (1_010 * 16);
    assert_eq!(conn.written, one_response * 1_010 * 16);
}

async fn user(req: Request) -> Response {
    // Reading a param borrows from the path: no copy, no allocation.
    match req.param("id").as_deref() {
        Some("42") => Response::text("user 42"),
        _ => Response::new(StatusCode::NOT_FOUND),
    }
}

const USER: &[u8] = b"GET /api/users/42 HTTP/1.1\r\nHost: bench\r\n\r\n";

#[test]
fn routed_requests_with_params_allocate_nothing_per_request() {
    let router = || {
        routes! {
            "GET /healthz" => healthz,
            "GET /api/users/{id}" => user,
            "POST /api/users" => user,
        }
    };
    serve_with(router(), USER, 10);
    let (few, _) = serve_with(router(), USER, 100);
    let (many, conn) = serve_with(router(), USER, 10_100);
    assert_eq!(many, few, "routing allocated per request");
    let last = String::from_utf8_lossy(&conn.last[..conn.last_len]).into_owned();
    assert!(last.ends_with("\r\n\r\nuser 42"), "{last}");
}

const FILE_1K: &[u8] = b"GET /1k.bin HTTP/1.1\r\nHost: bench\r\n\r\n";
const MISSING: &[u8] = b"GET /missing.txt HTTP/1.1\r\nHost: bench\r\n\r\n";

/// Static files through a router's fallback: a small cached file and a
/// cached miss (404). The cache reloads an entry every 900 ms, which does
/// allocate, so the check allows a few reloads' worth, far below one
/// allocation per request.
#[test]
fn static_files_and_404s_allocate_nothing_per_request() {
    use clap::Parser;
    let dir = std::env::temp_dir().join(format!("edgeshard-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("1k.bin"), vec![b'x'; 1024]).unwrap();
    let flags = edgeshard::config::Flags::parse_from(["x", "--root", dir.to_str().unwrap()]);
    let files = Config::from_flags(flags)
        .unwrap()
        .prepare()
        .unwrap()
        .static_files;
    let app = || {
        routes! {
            "GET /healthz" => healthz,
        }
        .fallback(edgeshard::static_files::StaticFiles::new(
            &files,
            Rc::new(Metrics::new(0, 0)),
        ))
    };
    for (request, status) in [(FILE_1K, "200 OK"), (MISSING, "404 Not Found")] {
        serve_with(app(), request, 10);
        let (few, _) = serve_with(app(), request, 100);
        let (many, conn) = serve_with(app(), request, 10_100);
        assert!(
            many.saturating_sub(few) < 200,
            "10 000 extra requests made {} extra allocations ({status})",
            many as i64 - few as i64
        );
        let last = String::from_utf8_lossy(&conn.last[..conn.last_len]).into_owned();
        assert!(
            last.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{last}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
