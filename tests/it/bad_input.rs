//! Every bad-input rule over a real socket: the exact small response, then
//! the connection closes. A valid request pipelined behind the bad one must
//! never be answered (it could be a smuggled request).

use crate::common;

use std::io::Write;
use std::time::Duration;

use common::*;

/// (what, request bytes, status line, detail)
const CASES: &[(&str, &[u8], &str, &str)] = &[
    (
        "obs-fold",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: one\r\n two\r\n\r\n",
        "400 Bad Request",
        "obsolete line folding",
    ),
    (
        "whitespace before colon",
        b"GET / HTTP/1.1\r\nHost : t\r\n\r\n",
        "400 Bad Request",
        "whitespace before colon in header field",
    ),
    (
        "bare LF",
        b"GET / HTTP/1.1\nHost: t\n\n",
        "400 Bad Request",
        "bare LF where CRLF is required",
    ),
    (
        "bare CR",
        b"GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n",
        "400 Bad Request",
        "bare CR where CRLF is required",
    ),
    (
        "malformed request line",
        b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
        "400 Bad Request",
        "malformed request line",
    ),
    (
        "malformed header",
        b"GET / HTTP/1.1\r\nHost: t\r\nno colon\r\n\r\n",
        "400 Bad Request",
        "malformed header field",
    ),
    (
        "malformed target",
        b"GET nope HTTP/1.1\r\nHost: t\r\n\r\n",
        "400 Bad Request",
        "malformed request target",
    ),
    (
        "CL with TE",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "400 Bad Request",
        "Content-Length together with Transfer-Encoding",
    ),
    (
        "duplicate CL",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        "400 Bad Request",
        "duplicate Content-Length",
    ),
    (
        "non-digit CL",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\nx",
        "400 Bad Request",
        "invalid Content-Length",
    ),
    (
        "signed CL",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +1\r\n\r\nx",
        "400 Bad Request",
        "invalid Content-Length",
    ),
    (
        "chunked not last",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "400 Bad Request",
        "chunked must be the final transfer coding, once",
    ),
    (
        "invalid chunk size",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n",
        "400 Bad Request",
        "invalid chunk size",
    ),
    (
        "chunk size overflow",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n",
        "400 Bad Request",
        "chunk size overflow",
    ),
    (
        "chunk data without CRLF",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiXX0\r\n\r\n",
        "400 Bad Request",
        "chunk data not followed by CRLF",
    ),
    (
        "missing Host",
        b"GET / HTTP/1.1\r\n\r\n",
        "400 Bad Request",
        "missing Host header",
    ),
    (
        "duplicate Host",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "400 Bad Request",
        "duplicate Host header",
    ),
    (
        "TE in HTTP/1.0",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "400 Bad Request",
        "Transfer-Encoding in an HTTP/1.0 request",
    ),
    (
        "unknown transfer coding",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "501 Not Implemented",
        "unsupported transfer coding",
    ),
    (
        "HTTP/2 preface",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "505 HTTP Version Not Supported",
        "unsupported HTTP version",
    ),
    (
        "HTTP/1.32",
        b"GET / HTTP/1.32\r\nHost: t\r\n\r\n",
        "505 HTTP Version Not Supported",
        "unsupported HTTP version",
    ),
    (
        "CONNECT",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "405 Method Not Allowed",
        "CONNECT is not supported",
    ),
    (
        "unknown expectation",
        b"POST / HTTP/1.1\r\nHost: t\r\nExpect: tea\r\nContent-Length: 1\r\n\r\nx",
        "417 Expectation Failed",
        "unsupported expectation",
    ),
];

#[test]
fn each_bad_request_gets_its_exact_response_and_a_close() {
    let server = TestServer::start(|_| {});
    for (what, req, status, detail) in CASES {
        let mut bytes = req.to_vec();
        // A smuggling attempt would hide a second request here.
        bytes.extend_from_slice(HEALTHZ);
        let got = exchange_to_close(&server, &bytes);
        assert_eq!(got, error_response(status, detail), "case: {what}");
    }
}

#[test]
fn http09_request_is_refused_with_505() {
    let server = TestServer::start(|_| {});
    let got = exchange_to_close(&server, b"GET /\r\n\r\n");
    assert_eq!(
        got,
        error_response("505 HTTP Version Not Supported", "unsupported HTTP version")
    );
}

#[test]
fn request_line_over_max_uri_is_414() {
    let server = TestServer::start(|c| c.limits.max_uri = 1024);
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(1100));
    let got = exchange_to_close(&server, long.as_bytes());
    assert_eq!(
        got,
        error_response("414 URI Too Long", "request line too long")
    );
    // Still arriving, with no end of line in sight: refused without waiting for it.
    let mut s = server.connect();
    s.write_all(format!("GET /{}", "a".repeat(5000)).as_bytes())
        .unwrap();
    assert_eq!(
        normalize(&read_to_close(&mut s)),
        error_response("414 URI Too Long", "request line too long")
    );
}

#[test]
fn default_limits_8k_uri_and_16k_headers() {
    let server = TestServer::start(|_| {});
    let ok_uri = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(8000));
    let mut s = server.connect();
    s.write_all(ok_uri.as_bytes()).unwrap();
    assert!(normalize(&read_response(&mut s)).starts_with("HTTP/1.1 404 Not Found\r\n"));
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(8200));
    assert_eq!(
        exchange_to_close(&server, long_uri.as_bytes()),
        error_response("414 URI Too Long", "request line too long")
    );
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nCookie: {}\r\n\r\n",
        "c".repeat(17000)
    );
    assert_eq!(
        exchange_to_close(&server, big.as_bytes()),
        error_response(
            "431 Request Header Fields Too Large",
            "header section too large"
        )
    );
}

#[test]
fn header_section_over_limit_is_431() {
    let server = TestServer::start(|c| c.limits.max_header_bytes = 1024);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(2000)
    );
    let got = exchange_to_close(&server, big.as_bytes());
    assert_eq!(
        got,
        error_response(
            "431 Request Header Fields Too Large",
            "header section too large"
        )
    );
    // Endless headers are refused as soon as they pass the limit.
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").unwrap();
    // 50 fields of 100 bytes: past 1 KiB long before the 100-field limit.
    for i in 0..50 {
        if s.write_all(format!("X-{i:02}: {}\r\n", "v".repeat(93)).as_bytes())
            .is_err()
        {
            break;
        }
    }
    assert_eq!(
        normalize(&read_to_close(&mut s)),
        error_response(
            "431 Request Header Fields Too Large",
            "header section too large"
        )
    );
}

#[test]
fn more_than_100_headers_is_431() {
    let server = TestServer::start(|_| {});
    let mut req = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
    for i in 0..100 {
        req.push_str(&format!("X-{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let got = exchange_to_close(&server, req.as_bytes());
    assert_eq!(
        got,
        error_response(
            "431 Request Header Fields Too Large",
            "too many header fields"
        )
    );
}

#[test]
fn bad_trailers_are_refused() {
    let server = TestServer::start(|c| c.limits.max_header_bytes = 64);
    let got = exchange_to_close(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n bad: fold\r\n\r\n",
    );
    assert_eq!(
        got,
        error_response("400 Bad Request", "malformed trailer field")
    );
    let long = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: {}\r\n\r\n",
        "t".repeat(100)
    );
    let got = exchange_to_close(&server, long.as_bytes());
    assert_eq!(
        got,
        error_response(
            "431 Request Header Fields Too Large",
            "trailer section too large"
        )
    );
}

#[test]
fn error_after_pipelined_good_requests_keeps_their_responses_first() {
    let server = TestServer::start(|_| {});
    let mut req = HEALTHZ.to_vec();
    req.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    let got = exchange_to_close(&server, &req);
    assert_eq!(
        got,
        text_response("200 OK", "ok", "")
            + &error_response("400 Bad Request", "missing Host header")
    );
}

#[test]
fn garbage_does_not_hang_or_kill_the_shard() {
    let server = TestServer::start(|_| {});
    for junk in [
        &b"\x00\x01\x02\x03\r\n\r\n"[..],
        b"\r\n\r\n\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let mut s = server.connect();
        s.write_all(junk).unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        assert!(
            closed_within(&mut s, Duration::from_secs(5)),
            "{junk:?} left the connection open"
        );
    }
    let mut s = server.connect();
    assert_healthz(&mut s);
}
