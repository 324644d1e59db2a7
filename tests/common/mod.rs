//! Shared by the wire tests: an in-process server with a test handler, and a
//! raw-bytes client. Responses are compared byte for byte, with only the
//! Date value replaced by `<date>` (after checking it is an IMF-fixdate).
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgeshard::{Config, IntoResponse, Request, Response, ServerHandle, StatusCode};

/// Whether `program` runs and succeeds with `args` (a probe like `--version`).
pub fn runs(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether a test that needs `program` can run. `.ci/run` installs every
/// such program, so with `CI` set a missing one fails the test; elsewhere
/// the test is skipped with a message.
pub fn have(program: &str, args: &[&str]) -> bool {
    let ok = runs(program, args);
    if !ok {
        missing(program);
    }
    ok
}

/// Says `program` is missing: a failure under CI, else a skipped test.
pub fn missing(program: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{program} is missing; .ci/run installs it"
    );
    eprintln!("skipping: {program} is not installed");
}

/// The defaults on one shard at an ephemeral loopback port.
pub fn one_shard() -> Config {
    Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        shards: NonZeroUsize::new(1),
        ..Config::default()
    }
}

/// A server on 127.0.0.1 with an ephemeral port; shut down and joined on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    handle: Option<ServerHandle>,
}

impl TestServer {
    /// One shard, defaults otherwise, with `tweak` applied to the config.
    pub fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = one_shard();
        tweak(&mut config);
        TestServer::with_handler(config, |_shard| test_handler)
    }

    /// `config` with the handlers `make_handler` builds on each shard.
    pub fn with_handler<F, H>(config: Config, make_handler: F) -> TestServer
    where
        F: Fn(&edgeshard::ShardContext) -> H + Send + Sync + 'static,
        H: edgeshard::Handler,
    {
        let handle = edgeshard::start(config, make_handler).expect("server starts");
        TestServer {
            addr: handle.local_addrs()[0],
            handle: Some(handle),
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// Begins a graceful shutdown and returns the handle to join.
    pub fn shutdown(mut self) -> ServerHandle {
        let h = self.handle.take().unwrap();
        h.shutdown();
        h
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
            let _ = h.join();
        }
    }
}

fn query_num(req: &Request, key: &str) -> usize {
    req.query()
        .and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The routes the wire tests exercise.
pub async fn test_handler(req: Request) -> Response {
    match req.path() {
        "/healthz" => Response::text("ok"),
        "/echo" => {
            let ct = req
                .header("content-type")
                .map(|v| v.to_vec())
                .unwrap_or_default();
            Response::new(StatusCode::OK)
                .with_body("application/octet-stream", req.body().clone())
                .with_header("Content-Type", ct)
                .with_header("X-Body-Len", req.body().len().to_string())
        }
        "/slow" => {
            glommio::timer::sleep(Duration::from_millis(query_num(&req, "ms") as u64)).await;
            Response::text("slept")
        }
        "/stream" => Response::new(StatusCode::OK).with_stream(
            "text/plain",
            futures_lite::stream::iter([&b"one,"[..], b"two,", b"three"].map(Bytes::from_static)),
        ),
        "/slowstream" => {
            let pause = Duration::from_millis(query_num(&req, "ms") as u64);
            let ticks = futures_lite::stream::unfold(0, move |i| async move {
                if i == 3 {
                    return None;
                }
                glommio::timer::sleep(pause).await;
                Some((Bytes::from_static(b"tick,"), i + 1))
            });
            Response::new(StatusCode::OK).with_stream("text/plain", ticks)
        }
        "/big" => Response::new(StatusCode::OK)
            .with_body("application/octet-stream", vec![b'x'; query_num(&req, "n")]),
        "/bigstream" => {
            let chunks = query_num(&req, "chunks");
            let piece = Bytes::from(vec![b'y'; 64 * 1024]);
            Response::new(StatusCode::OK).with_stream(
                "application/octet-stream",
                futures_lite::stream::repeat(piece).take(chunks),
            )
        }
        "/panic" => panic!("test handler panics on purpose"),
        "/nocontent" => StatusCode::NO_CONTENT.into_response(),
        "/notmodified" => Response::new(StatusCode::NOT_MODIFIED).with_header("ETag", "\"v1\""),
        "/badheader" => Response::text("x").with_header("X-Evil", "a\r\nSet-Cookie: b"),
        "/close" => Response::text("bye").with_close(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

use futures_lite::StreamExt;

/// Reads until the peer closes (or 10 s pass, which fails the test).
pub fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    let start = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
            Err(e) => panic!(
                "read failed after {:?}: {e}; got so far: {:?}",
                start.elapsed(),
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// Whether the peer has closed: a read returns EOF (or reset) within `wait`.
pub fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 1024];
    let r = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    r
}

/// Reads exactly one response (a 1xx counts as one). Returns its raw bytes.
pub fn read_response(s: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            Ok(_) => panic!("closed inside a head: {:?}", String::from_utf8_lossy(&raw)),
            Err(e) => panic!(
                "reading a head: {e}; got {:?}",
                String::from_utf8_lossy(&raw)
            ),
        }
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    if status < 200 || status == 204 || status == 304 {
        return raw;
    }
    if let Some(len) = header_value(&head, "content-length") {
        let len: usize = len.parse().unwrap();
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).expect("body");
        raw.extend_from_slice(&body);
    } else if header_value(&head, "transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                s.read_exact(&mut byte).unwrap();
                line.push(byte[0]);
            }
            raw.extend_from_slice(&line);
            let size =
                usize::from_str_radix(std::str::from_utf8(&line).unwrap().trim(), 16).unwrap();
            let mut chunk = vec![0u8; size + 2];
            s.read_exact(&mut chunk).unwrap();
            raw.extend_from_slice(&chunk);
            if size == 0 {
                break;
            }
        }
    } else {
        raw.extend_from_slice(&read_to_close(s));
    }
    raw
}

fn header_value(lower_head: &str, name: &str) -> Option<String> {
    lower_head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        (n == name).then(|| v.trim().to_string())
    })
}

/// Replaces every `Date:` value with `<date>` after checking its shape.
pub fn normalize(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw).into_owned();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("\r\nDate: ") {
        let start = i + "\r\nDate: ".len();
        let date = &rest[start..start + 29];
        assert!(
            date.ends_with(" GMT") && &date[3..5] == ", ",
            "bad Date {date:?}"
        );
        out.push_str(&rest[..start]);
        out.push_str("<date>");
        rest = &rest[start + 29..];
    }
    out.push_str(rest);
    out
}

/// The exact bytes edgeshard sends for a small text response.
pub fn text_response(status: &str, body: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nServer: edgeshard\r\nDate: <date>\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// The exact bytes of an error response that closes the connection.
pub fn error_response(status: &str, detail: &str) -> String {
    text_response(
        status,
        &format!("{status}: {detail}\n"),
        "Connection: close\r\n",
    )
}

/// Sends `req` on a new connection and reads until the server closes.
pub fn exchange_to_close(server: &TestServer, req: &[u8]) -> String {
    let mut s = server.connect();
    s.write_all(req).unwrap();
    normalize(&read_to_close(&mut s))
}

pub const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

/// Sends `GET /healthz` on `s` and checks the exact `200 ok` response of
/// [`test_handler`].
pub fn assert_healthz(s: &mut TcpStream) {
    s.write_all(HEALTHZ).unwrap();
    assert_eq!(
        normalize(&read_response(s)),
        text_response("200 OK", "ok", "")
    );
}

/// Sends `GET /healthz` on `s` and checks the exact response of the
/// binary's built-in `/healthz`, which no cache may keep, with the
/// security headers switched off (as `static_common::config_from` does).
pub fn assert_builtin_healthz(s: &mut TcpStream) {
    s.write_all(HEALTHZ).unwrap();
    assert_eq!(
        normalize(&read_response(s)),
        text_response("200 OK", "ok", "Cache-Control: no-store\r\n")
    );
}

/// The security headers the binary adds by default, after a response's own.
pub const SECURITY_LINES: &str =
    "X-Content-Type-Options: nosniff\r\nReferrer-Policy: strict-origin-when-cross-origin\r\n";

/// [`assert_builtin_healthz`] for the binary as it runs by default: with
/// its security headers.
pub fn assert_default_healthz(s: &mut TcpStream) {
    s.write_all(HEALTHZ).unwrap();
    assert_eq!(
        normalize(&read_response(s)),
        text_response(
            "200 OK",
            "ok",
            &format!("Cache-Control: no-store\r\n{SECURITY_LINES}")
        )
    );
}
