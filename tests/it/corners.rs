//! Protocol corners outside checkers found (REDbot, h11, Go's ServeMux
//! tables, hostile requests), each on the wire with its exact bytes:
//! `OPTIONS *`, Host values that are not a host, a raw space in the
//! target, paths that climb above the root, the 405 of a slashed path, and
//! a `Date` that never lags the second its response leaves in.

use crate::common;
use crate::static_common;

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use edgeshard::{routes, Config, Request};
use static_common::Server;

/// The binary's app (built-in routes, then the embedded site).
fn builtin() -> Server {
    Server::with_flags(&[])
}

/// The exact `OPTIONS *` answer.
const OPTIONS_STAR: &str = "HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: <date>\r\n\
     Content-Length: 0\r\nAllow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n\r\n";

#[test]
fn options_star_is_answered_by_the_server_before_routing() {
    let srv = builtin();
    let mut s = srv.connect();
    s.write_all(b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(normalize(&read_response(&mut s)), OPTIONS_STAR);
    // The connection stays open; a body sent with it is read and dropped.
    s.write_all(b"OPTIONS * HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert_eq!(normalize(&read_response(&mut s)), OPTIONS_STAR);
    assert_builtin_healthz(&mut s);

    // HTTP/1.0 without keep-alive: the same answer, then a close.
    let got = exchange_to_close(&srv, b"OPTIONS * HTTP/1.0\r\n\r\n");
    assert_eq!(
        got,
        OPTIONS_STAR.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
    );
}

#[test]
fn any_other_method_with_an_asterisk_is_a_400() {
    let srv = builtin();
    for method in ["GET", "HEAD", "POST", "DELETE", "PURGE"] {
        let req = format!("{method} * HTTP/1.1\r\nHost: t\r\n\r\n");
        let got = exchange_to_close(&srv, req.as_bytes());
        assert_eq!(
            got,
            error_response("400 Bad Request", "malformed request target"),
            "{method}"
        );
    }
}

#[test]
fn a_raw_space_in_the_target_is_a_malformed_request_line() {
    let srv = TestServer::start(|_| {});
    for req in [
        &b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"GET /a b c HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / FOO\r\nHost: t\r\n\r\n",
    ] {
        assert_eq!(
            exchange_to_close(&srv, req),
            error_response("400 Bad Request", "malformed request line"),
            "{:?}",
            String::from_utf8_lossy(req)
        );
    }
    // A version that is well formed but not ours is still a 505.
    assert_eq!(
        exchange_to_close(&srv, b"GET / HTTP/2.0\r\nHost: t\r\n\r\n"),
        error_response("505 HTTP Version Not Supported", "unsupported HTTP version")
    );
}

#[test]
fn host_values_that_are_not_a_host_are_refused() {
    let srv = TestServer::start(|_| {});
    let bad_hosts = [
        "a/b", "user@t", "t?x", "t#f", "t\tx", ":80", "t:http", "t:65536", "t:1:2", "[::1", "::1]",
        "[::1]x", "a%zz",
    ];
    for host in bad_hosts {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(
            exchange_to_close(&srv, req.as_bytes()),
            error_response("400 Bad Request", "invalid Host header"),
            "{host:?}"
        );
    }
    // The authority of an absolute-form target is checked the same way.
    for target in [
        "http:///x",
        "http://user@t/x",
        "http://t:99999/x",
        "http://[::1/x",
    ] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(
            exchange_to_close(&srv, req.as_bytes()),
            error_response("400 Bad Request", "invalid authority in the request target"),
            "{target}"
        );
    }
    // Hosts that are hosts are served, on one connection.
    let mut s = srv.connect();
    for host in [
        "t",
        "t:8080",
        "127.0.0.1:1",
        "[::1]:80",
        "[fe80::1%25lo]",
        "xn--caf-dma.example",
        "",
    ] {
        write!(s, "GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        assert_eq!(
            normalize(&read_response(&mut s)),
            text_response("200 OK", "ok", ""),
            "{host:?}"
        );
    }
    s.write_all(b"GET http://t:81/healthz HTTP/1.1\r\nHost: other\r\n\r\n")
        .unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response("200 OK", "ok", "")
    );
}

#[test]
fn paths_that_climb_above_the_root_are_refused_and_others_are_cleaned() {
    let srv = builtin();
    for target in [
        "/../etc/passwd",
        "/a/../../x",
        "/..",
        "/%2e%2e/etc/passwd",
        "http://t/../etc/passwd",
        "http://t/a/../../x?y",
    ] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(
            exchange_to_close(&srv, req.as_bytes()),
            error_response("400 Bad Request", "path climbs above the root"),
            "{target}"
        );
    }
    // Unclean paths that stay inside keep Go's redirect, on one connection.
    let mut s = srv.connect();
    for (target, location) in [
        ("//x", "/x"),
        ("/a/./b", "/a/b"),
        ("/a/../b?q=1", "/b?q=1"),
        ("/a/..", "/"),
    ] {
        write!(s, "GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let body = format!("301 Moved Permanently: {location}\n");
        assert_eq!(
            normalize(&read_response(&mut s)),
            text_response(
                "301 Moved Permanently",
                &body,
                &format!("Location: {location}\r\n")
            ),
            "{target}"
        );
    }
}

async fn slashed(_: Request) -> &'static str {
    "slashed"
}

#[test]
fn a_405_counts_the_methods_of_the_path_with_a_slash() {
    let config = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        shards: std::num::NonZeroUsize::new(1),
        ..Config::default()
    };
    let srv = TestServer::with_handler(config, |_| {
        routes! {
            "GET /r/" => slashed,
        }
    });
    let mut s = srv.connect();
    s.write_all(b"PUT /r HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response(
            "405 Method Not Allowed",
            "405 Method Not Allowed\n",
            "Allow: GET, HEAD\r\n"
        )
    );
    // GET still redirects to the slashed path; a path with no route is a 404.
    s.write_all(b"GET /r HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response(
            "301 Moved Permanently",
            "301 Moved Permanently: /r/\n",
            "Location: /r/\r\n"
        )
    );
    s.write_all(b"PUT /q HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response("404 Not Found", "404 Not Found\n", "")
    );
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The `Date` of a raw response, in seconds since the epoch.
fn date_of(raw: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(raw);
    let at = text.find("\r\nDate: ").expect("a Date") + 8;
    let date = &text[at..at + 29];
    httpdate(date)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(d: &str) -> u64 {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day: u64 = d[5..7].parse().unwrap();
    let month = MONTHS.iter().position(|m| *m == &d[8..11]).unwrap() as u64 + 1;
    let year: u64 = d[12..16].parse().unwrap();
    let (h, m, s): (u64, u64, u64) = (
        d[17..19].parse().unwrap(),
        d[20..22].parse().unwrap(),
        d[23..25].parse().unwrap(),
    );
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + h * 3600 + m * 60 + s
}

/// Sleeps until `lead` seconds before the next whole second.
fn sleep_until_before_next_second(lead: f64) {
    let t = now();
    let mut wait = t.ceil() - lead - t;
    if wait < 0.0 {
        wait += 1.0;
    }
    std::thread::sleep(Duration::from_secs_f64(wait));
}

#[test]
fn no_date_is_earlier_than_the_second_its_response_left_in() {
    let srv = TestServer::start(|_| {});
    let mut s = srv.connect();
    // Requests one after another across four second boundaries: each Date
    // is at least the second the request was sent in and at most the one
    // its response arrived in.
    let mut checked = 0;
    for _ in 0..4 {
        sleep_until_before_next_second(0.01);
        let end = now() + 0.03;
        while now() < end {
            let sent = now();
            s.write_all(HEALTHZ).unwrap();
            let raw = read_response(&mut s);
            let got = now();
            let date = date_of(&raw);
            assert!(
                date >= sent.floor() as u64 && date <= got.floor() as u64,
                "Date {date} for a request sent at {sent:.4} and answered at {got:.4}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 8,
        "only {checked} requests crossed the boundaries"
    );

    // A pipelined pair whose first answer is ready before a boundary but
    // held behind a slow second one: both leave after the boundary, and
    // both carry the second they left in.
    for _ in 0..2 {
        sleep_until_before_next_second(0.15);
        let sent = now();
        let mut pair = HEALTHZ.to_vec();
        pair.extend_from_slice(b"GET /slow?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n");
        s.write_all(&pair).unwrap();
        let first = read_response(&mut s);
        let got = now();
        let second = read_response(&mut s);
        assert!(got.floor() > sent.floor(), "the boundary was crossed");
        for raw in [&first, &second] {
            let date = date_of(raw);
            assert!(
                date > sent.floor() as u64 && date <= now().floor() as u64,
                "Date {date}: pair sent at {sent:.4}, first answer read at {got:.4}"
            );
        }
    }
}
