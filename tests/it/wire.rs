//! Raw bytes over real sockets to an in-process server: keep-alive,
//! pipelining, bodies, HEAD/204/304, streams, and handler failures.

use crate::common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use edgeshard::{Request, Response};

#[test]
fn healthz_exact_bytes_and_keep_alive_reuse() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    for _ in 0..5 {
        assert_healthz(&mut s);
    }
    // Still open: a sixth request on the same socket works too.
    s.write_all(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response("404 Not Found", "404 Not Found\n", "")
    );
}

#[test]
fn sixteen_pipelined_requests_get_sixteen_ordered_responses() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    let mut batch = Vec::new();
    for i in 0..16 {
        // Alternate paths so order is visible in the bodies.
        if i % 2 == 0 {
            batch.extend_from_slice(HEALTHZ);
        } else {
            batch.extend_from_slice(
                format!("GET /missing-{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
            );
        }
    }
    s.write_all(&batch).unwrap();
    for i in 0..16 {
        let expected = if i % 2 == 0 {
            text_response("200 OK", "ok", "")
        } else {
            text_response("404 Not Found", "404 Not Found\n", "")
        };
        assert_eq!(normalize(&read_response(&mut s)), expected, "response {i}");
    }
}

#[test]
fn connection_close_is_honoured_and_announced() {
    let server = TestServer::start(|_| {});
    let got = exchange_to_close(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    // The pipelined request after `Connection: close` is not answered.
    assert_eq!(got, text_response("200 OK", "ok", "Connection: close\r\n"));
}

#[test]
fn http10_closes_by_default_and_keeps_alive_on_request() {
    let server = TestServer::start(|_| {});
    let got = exchange_to_close(&server, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(got, text_response("200 OK", "ok", "Connection: close\r\n"));

    let mut s = server.connect();
    for _ in 0..2 {
        s.write_all(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        assert_eq!(
            normalize(&read_response(&mut s)),
            text_response("200 OK", "ok", "Connection: keep-alive\r\n")
        );
    }
}

#[test]
fn content_length_body_is_read_and_next_request_is_framed_right() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/x-test\r\nContent-Length: 11\r\n\r\nhello world")
        .unwrap();
    s.write_all(HEALTHZ).unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        "HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: <date>\r\nContent-Type: text/x-test\r\n\
         Content-Length: 11\r\nX-Body-Len: 11\r\n\r\nhello world"
    );
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response("200 OK", "ok", "")
    );
}

#[test]
fn body_arriving_in_pieces() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b"56789").unwrap();
    let got = normalize(&read_response(&mut s));
    assert!(got.ends_with("X-Body-Len: 10\r\n\r\n0123456789"), "{got}");
}

#[test]
fn chunked_body_with_trailers_then_pipelined_request() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n",
    )
    .unwrap();
    s.write_all(HEALTHZ).unwrap();
    let got = normalize(&read_response(&mut s));
    assert!(
        got.ends_with("Content-Length: 11\r\nX-Body-Len: 11\r\n\r\nhello world"),
        "{got}"
    );
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response("200 OK", "ok", "")
    );
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_response(&mut s), b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"data").unwrap();
    let got = normalize(&read_response(&mut s));
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n") && got.ends_with("\r\n\r\ndata"),
        "{got}"
    );

    // Chunked bodies get it too.
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s), b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"2\r\nok\r\n0\r\n\r\n").unwrap();
    assert!(normalize(&read_response(&mut s)).ends_with("\r\n\r\nok"));
}

#[test]
fn expect_100_continue_with_body_already_sent_gets_no_interim_response() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
    )
    .unwrap();
    let got = normalize(&read_response(&mut s));
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n") && got.ends_with("hi"),
        "{got}"
    );
}

#[test]
fn oversized_body_is_refused_before_100_continue() {
    let server = TestServer::start(|c| c.limits.max_body = 100);
    let got = exchange_to_close(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 101\r\n\r\n",
    );
    assert_eq!(
        got,
        error_response("413 Content Too Large", "request body too large")
    );
}

#[test]
fn oversized_chunked_body_gets_413_and_close() {
    let server = TestServer::start(|c| c.limits.max_body = 8);
    let got = exchange_to_close(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
    );
    assert_eq!(
        got,
        error_response("413 Content Too Large", "request body too large")
    );
}

#[test]
fn body_at_the_limit_is_accepted() {
    let server = TestServer::start(|c| c.limits.max_body = 100_000);
    let mut s = server.connect();
    let body = vec![b'z'; 100_000];
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    s.write_all(&body).unwrap();
    let got = read_response(&mut s);
    assert!(got.ends_with(&body));
}

#[test]
fn head_gets_get_headers_and_no_body() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    s.write_all(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    s.write_all(HEALTHZ).unwrap();
    // HEAD's response has the GET Content-Length but no body; the next response follows at once.
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let expected_len =
        text_response("200 OK", "", "").len() + text_response("200 OK", "ok", "").len();
    while normalize(&all).len() < expected_len {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        all.extend_from_slice(&buf[..n]);
    }
    let head_resp = text_response("200 OK", "ok", "").replace("\r\n\r\nok", "\r\n\r\n");
    assert_eq!(
        normalize(&all),
        head_resp + &text_response("200 OK", "ok", "")
    );
}

#[test]
fn no_content_and_not_modified_carry_no_body_or_length() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    s.write_all(
        b"GET /nocontent HTTP/1.1\r\nHost: t\r\n\r\nGET /notmodified HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    s.write_all(HEALTHZ).unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        "HTTP/1.1 204 No Content\r\nServer: edgeshard\r\nDate: <date>\r\n\r\n"
    );
    assert_eq!(
        normalize(&read_response(&mut s)),
        "HTTP/1.1 304 Not Modified\r\nServer: edgeshard\r\nDate: <date>\r\nETag: \"v1\"\r\n\r\n"
    );
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response("200 OK", "ok", "")
    );
}

#[test]
fn streamed_body_is_chunked_for_11_and_close_delimited_for_10() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        "HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: <date>\r\nContent-Type: text/plain\r\n\
         Transfer-Encoding: chunked\r\n\r\n4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n"
    );
    let got = exchange_to_close(
        &server,
        b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(
        got,
        "HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: <date>\r\nContent-Type: text/plain\r\n\
         Connection: close\r\n\r\none,two,three"
    );
}

#[test]
fn large_bodies_arrive_whole() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    s.write_all(b"GET /big?n=3000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    s.write_all(HEALTHZ).unwrap();
    let got = read_response(&mut s);
    assert!(got.ends_with(&vec![b'x'; 3_000_000]));
    assert!(String::from_utf8_lossy(&got[..200]).contains("Content-Length: 3000000\r\n"));
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response("200 OK", "ok", "")
    );
}

#[test]
fn handler_panic_is_a_500_and_the_shard_keeps_serving() {
    let server = TestServer::start(|_| {});
    let got = exchange_to_close(&server, b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        got,
        error_response("500 Internal Server Error", "the handler failed")
    );
    let mut s = server.connect();
    assert_healthz(&mut s);
}

/// A handler whose `call` panics before it returns a future: routing runs
/// there now (the router is no longer an `async fn`), so creating the
/// future must be guarded like polling it.
struct PanicsInCall;

impl edgeshard::Handler for PanicsInCall {
    #[allow(clippy::manual_async_fn)]
    fn call(&self, req: Request) -> impl std::future::Future<Output = Response> {
        if req.path() == "/panic-in-call" {
            panic!("test handler panics on purpose, before its future exists");
        }
        async move { test_handler(req).await }
    }
}

#[test]
fn handler_panic_while_making_its_future_is_a_500_too() {
    let config = edgeshard::Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        shards: std::num::NonZeroUsize::new(1),
        ..edgeshard::Config::default()
    };
    let server = TestServer::with_handler(config, |_| PanicsInCall);
    let got = exchange_to_close(&server, b"GET /panic-in-call HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        got,
        error_response("500 Internal Server Error", "the handler failed")
    );
    let mut s = server.connect();
    assert_healthz(&mut s);
}

#[test]
fn response_splitting_header_becomes_a_500() {
    let server = TestServer::start(|_| {});
    let got = exchange_to_close(&server, b"GET /badheader HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        got,
        error_response("500 Internal Server Error", "the handler failed")
    );
}

#[test]
fn handler_can_close_the_connection() {
    let server = TestServer::start(|_| {});
    let got = exchange_to_close(&server, b"GET /close HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(got, text_response("200 OK", "bye", "Connection: close\r\n"));
}

#[test]
fn responses_to_a_batch_come_back_together_even_when_handlers_wait() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    s.write_all(
        b"GET /slow?ms=30 HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    let first = normalize(&read_response(&mut s));
    assert_eq!(first, text_response("200 OK", "slept", ""));
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response("200 OK", "ok", "")
    );
}

#[test]
fn date_header_advances_with_the_clock() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    let date = |raw: &[u8]| {
        let text = String::from_utf8_lossy(raw).into_owned();
        let at = text.find("\r\nDate: ").expect("a Date header") + 8;
        text[at..at + 29].to_string()
    };
    s.write_all(HEALTHZ).unwrap();
    let first = date(&read_response(&mut s));
    std::thread::sleep(Duration::from_millis(2100));
    s.write_all(HEALTHZ).unwrap();
    let later = date(&read_response(&mut s));
    assert_ne!(first, later, "the Date header did not move in 2.1 s");
}

#[test]
fn request_with_fin_right_behind_is_answered_then_closed_at_once() {
    // The request and the FIN arrive before the shard looks, so the read
    // that takes the request is short and no further readiness edge will
    // come for the FIN: the shard must still see the end of the stream now,
    // not at the idle timeout.
    let server = TestServer::start(|c| c.timeouts.idle = Duration::from_secs(30));
    let ok = text_response("200 OK", "ok", "");
    for round in 0..10 {
        // On a new connection, and on one that has already been served.
        let mut s = server.connect();
        if round % 2 == 1 {
            s.write_all(HEALTHZ).unwrap();
            assert_eq!(normalize(&read_response(&mut s)), ok);
        }
        s.write_all(HEALTHZ).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let start = std::time::Instant::now();
        let got = read_to_close(&mut s);
        assert_eq!(normalize(&got), ok, "round {round}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "round {round}: closed only after {:?}",
            start.elapsed()
        );
    }
}
